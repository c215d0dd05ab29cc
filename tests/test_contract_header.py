"""The C headers of the kernels state the contract's constants as e2train.contract and e2train.fixed do:
the version, the widths of the ApTypes family, the MSB shifts, the return codes, the modes, the
kernel sizes and strides, the range of beta_q and the tops' plane limit (parsed from the text, so
this runs without a compiler)."""

import re
from pathlib import Path

from e2train import contract, fixed

HLS = Path(__file__).resolve().parent.parent / "hls"
TYPES = (HLS / "include" / "e2_types.h").read_text()
PSG = (HLS / "src" / "conv_bwd_weight_psg.h").read_text()


def const(name: str, text: str = TYPES) -> int:
    """The value of ``const int NAME = <expr>;`` (an integer or a shift)."""
    m = re.search(rf"const int {name} = ([^;]+);", text)
    assert m, f"{name} not found"
    return int(eval(m.group(1), {}))  # the expressions are integer literals and shifts


def ap_width(typedef: str) -> int:
    body = re.search(r"struct ApTypes \{(.*?)\};", TYPES, re.S).group(1)
    return int(re.search(rf"typedef ap_int<(\d+)> {typedef};", body).group(1))


def test_contract_version():
    assert int(re.search(r"#define E2_CONTRACT_VERSION (\d+)", TYPES).group(1)) == fixed.CONTRACT_VERSION


def test_widths_of_the_tops_types():
    assert ap_width("x_t") == fixed.X_BITS and ap_width("w_t") == fixed.W_BITS and ap_width("g_t") == fixed.G_BITS
    assert ap_width("xm_t") == fixed.X_MSB_BITS and ap_width("gm_t") == fixed.G_MSB_BITS
    assert ap_width("acc32_t") == fixed.ACC_FWD_BITS == fixed.ACC_MSB_BITS
    assert ap_width("acc48_t") == fixed.ACC_BWD_BITS
    # the MSB predictors take the top bits: int8 -> int4 and int16 -> int10
    assert re.search(rf"x_msb_of.*msb_round<{fixed.X_BITS}, {fixed.X_BITS - fixed.X_MSB_BITS}>", TYPES)
    assert re.search(rf"g_msb_of.*msb_round<{fixed.G_BITS}, {fixed.G_BITS - fixed.G_MSB_BITS}>", TYPES)


def test_return_codes_modes_and_ranges():
    for name in ("E2_OK", "E2_BAD_SHAPE", "E2_BAD_ARG", "E2_NO_MEMORY"):
        assert const(name) == getattr(contract, name), name
    assert set(contract.RETURN_CODES) == {contract.E2_OK, contract.E2_BAD_SHAPE, contract.E2_BAD_ARG, contract.E2_NO_MEMORY}
    assert {"psg": const("MODE_PSG"), "full": const("MODE_FULL")} == contract.MODES
    assert const("MAX_HW") == contract.TOP_MAX_HW
    assert const("BETA_ONE", PSG) == contract.BETA_Q_MAX == 1 << fixed.BETA_FRAC_BITS
    args_ok = re.search(r"conv_args_ok\(int k, int stride\) \{ return (.*?); \}", TYPES).group(1)
    assert sorted(int(v) for v in re.findall(r"k == (\d+)", args_ok)) == list(contract.KERNEL_SIZES)
    assert sorted(int(v) for v in re.findall(r"stride == (\d+)", args_ok)) == list(contract.STRIDES)


def test_kernels_are_the_tops_and_the_library_entry_points():
    for kernel in contract.KERNELS:
        assert (HLS / "src" / f"{kernel}.cpp").is_file()
        assert re.search(rf"\bint {kernel}_top\(", (HLS / "src" / f"{kernel}.cpp").read_text())
        assert re.search(rf"\bint e2_{kernel}\(", (HLS / "csim" / "e2_csim.cpp").read_text())
        assert re.search(rf"\bint e2_ap_{kernel}\(", (HLS / "csim" / "e2_csim_ap.cpp").read_text())
