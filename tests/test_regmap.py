"""The register maps of the HLS tops: Vitis HLS layout rules, the C signatures, and docs/register-map.md."""

import re
from pathlib import Path

import pytest

from e2train.board import regmap

ROOT = Path(__file__).resolve().parent.parent


def _c_arguments(top: str) -> list[str]:
    """Argument names of a top, read from its definition in hls/src/<kernel>.cpp."""
    kernel = top.removesuffix("_top")
    text = (ROOT / "hls" / "src" / f"{kernel}.cpp").read_text()
    m = re.search(rf"\bint\s+{top}\s*\(([^)]*)\)\s*{{", text)
    assert m, f"definition of {top} not found"
    return [re.findall(r"(\w+)\s*$", a.strip())[0] for a in m.group(1).split(",")]


def _s_axilite_ports(top: str) -> set[str]:
    kernel = top.removesuffix("_top")
    text = (ROOT / "hls" / "src" / f"{kernel}.cpp").read_text()
    ports = set(re.findall(r"#pragma HLS INTERFACE mode=s_axilite port=(\w+)", text))
    if "E2_SHAPE_INTERFACE" in text:  # the shape ports every top shares (hls/include/e2_types.h)
        types = (ROOT / "hls" / "include" / "e2_types.h").read_text()
        ports |= set(re.findall(r"E2_PRAGMA\(HLS INTERFACE mode=s_axilite port=(\w+)\)", types))
    return ports


def _m_axi_ports(top: str) -> set[str]:
    kernel = top.removesuffix("_top")
    text = (ROOT / "hls" / "src" / f"{kernel}.cpp").read_text()
    return set(re.findall(r"#pragma HLS INTERFACE mode=m_axi port=(\w+)", text))


@pytest.mark.parametrize("top", list(regmap.TOPS))
def test_argument_lists_match_the_c_tops(top):
    names = [n for n, kind in regmap.TOPS[top] if kind != "return"]
    assert names == _c_arguments(top)
    pointers = {n for n, kind in regmap.TOPS[top] if kind == "pointer"}
    assert pointers == _m_axi_ports(top)
    # every non-pointer argument and the return value are on the s_axilite bundle
    others = {n for n, kind in regmap.TOPS[top] if kind != "pointer"} - {"ap_return"}
    assert others | {"return"} == _s_axilite_ports(top)


def test_conv_fwd_offsets_follow_the_vitis_rules():
    r = regmap.REGMAPS["conv_fwd_top"]
    assert r["ap_return"].offset == 0x10
    assert r["x"].words == {"lo": 0x18, "hi": 0x1C}  # 0x20 reserved
    assert r["w"].offset == 0x24 and r["y"].offset == 0x30
    assert r["n"].offset == 0x3C and r["c"].offset == 0x44  # 0x40 reserved
    assert r["stride"].offset == 0x6C
    assert regmap.span("conv_fwd_top") == 0x74


def test_psg_outputs_have_data_and_ctrl_words():
    r = regmap.REGMAPS["conv_bwd_weight_psg_top"]
    assert r["predicted"].words == {"data": 0x9C, "ctrl": 0xA0}
    assert r["max_abs_msb"].words == {"data": 0xA4, "ctrl": 0xA8}
    assert r["predicted"].access == "R" and r["beta_q"].access == "W"


@pytest.mark.parametrize("top", list(regmap.TOPS))
def test_offsets_are_word_aligned_and_disjoint(top):
    used = set()
    for reg in regmap.REGMAPS[top].values():
        assert reg.offset % 4 == 0 and reg.offset >= regmap.FIRST_ARG
        words = set(range(reg.offset, reg.offset + regmap.SIZES[reg.kind], 4))
        assert not words & used
        used |= words
    assert max(used) + 4 == regmap.span(top)


def test_unknown_top_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown HLS top"):
        regmap.layout("conv_nope_top")


def test_docs_section_is_the_generated_one():
    doc = (ROOT / "docs" / "register-map.md").read_text()
    section = regmap.markdown()
    assert section in doc, "docs/register-map.md is out of date: regenerate its '## HLS kernel tops' section"
    # and the offsets a reader sees are the machine-readable ones
    assert "| 0x9C | predicted | R |" in doc


def test_docs_state_the_contract_version_register_as_regmap_does():
    doc = (ROOT / "docs" / "register-map.md").read_text()
    assert regmap.contract_register_markdown() in doc, (
        "docs/register-map.md is out of date: regenerate its '## Contract version register' section"
    )
    assert "| 0x40030000 | GPIO_DATA | R |" in doc


# -- the hand-written PSG engine: its Verilog, docs/register-map.md and the testbench use one map ------

ENGINE_V = (ROOT / "hw" / "rtl" / "psg_wgrad_engine.v").read_text()


def _engine_words() -> set[int]:
    """Byte offsets of every word of the engine's map (the 64-bit counters take two)."""
    words = {int(r) for r in regmap.EngineReg}
    return words | {int(r) + 4 for r in regmap.ENGINE_COUNTERS}


def test_engine_map_is_what_the_verilog_decodes():
    read_mux = ENGINE_V[ENGINE_V.index("case (s_axi_control_araddr[6:2])"):]
    read_mux = read_mux[: read_mux.index("endcase")]
    assert {int(a, 16) * 4 for a in re.findall(r"5'h([0-9A-F]{2}):", read_mux)} == _engine_words()
    # the version fields it reports
    assert re.search(rf"REGMAP_VERSION\s*=\s*8'd{regmap.ENGINE_REGMAP_VERSION};", ENGINE_V)
    assert re.search(r"5'h15: s_axi_control_rdata <= \{24'd0, CONTRACT_VERSION\}", ENGINE_V)
    assert int(regmap.EngineReg.CONTRACT_VERSION) == 0x15 * 4
    assert re.search(r"MODE_FULL = 2'd(\d), MODE_PROBE = 2'd(\d)", ENGINE_V).groups() == (
        str(regmap.ENGINE_MODES["full"]), str(regmap.ENGINE_MODES["probe"]))


def test_engine_map_is_the_documented_one():
    doc = (ROOT / "docs" / "register-map.md").read_text()
    section = doc[doc.index("## PSG weight-gradient engine"):]
    section = section[: section.index("### Streams")]
    rows = re.findall(r"^\| (0x[0-9A-F]{2})(?:, 0x[0-9A-F]{2})? \| (\w+)", section, re.M)
    assert {name: int(off, 16) for off, name in rows} == {r.name: int(r) for r in regmap.EngineReg}
    assert "(3: CONTRACT_VERSION added" in section and regmap.ENGINE_REGMAP_VERSION == 3
    for bit, name in enumerate(("PASS2_WAIT", "ARG_ERROR", "FRAME_ERROR", "PASS2_SKIPPED", "DIAGONAL")):
        assert f"{bit} `{name}`" in section and regmap.EngineStatus[name] == 1 << bit


def test_engine_config_fields_decode():
    words = {regmap.EngineReg.CONFIG0: (288 << 16) | (32 << 8) | 16, regmap.EngineReg.CONFIG1: (3 << 24) | (32 << 16) | (4 << 8) | 8}
    assert regmap.decode_engine_config(words) == {"P": 16, "OMAX": 32, "KMAX": 288, "XPB": 8, "GPB": 4, "KD": 32, "version": 3}
