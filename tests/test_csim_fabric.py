"""The csim backend (the HLS C++ compiled by g++, its CPU schedules by default) against the reference,
bit for bit. What every backend must do alike is in test_backend_conformance.py."""

import ctypes.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operands import FILLS, fill, make

from e2train import fixed
from e2train.fabric import FabricError, get_fabric, out_size
from e2train.fabric.selftest import msb_edge_values

ref = get_fabric("reference")


@pytest.fixture(scope="module")
def csim():
    return get_fabric("csim")


layers = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 6),  # input channels
    st.integers(1, 11),  # output channels (crosses the tile sizes 2, 4, 8)
    st.integers(1, 13),  # height
    st.integers(1, 13),  # width
    st.sampled_from([1, 3]),
    st.sampled_from([1, 2]),
    st.sampled_from(FILLS),
    st.sampled_from(FILLS),
    st.sampled_from(FILLS),
    st.integers(0, 2**32 - 1),
)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers)
def test_conv_fwd_matches_reference(csim, layer):
    x, w, _, _, s = make(layer)
    assert same(csim.conv_fwd(x, w, s), ref.conv_fwd(x, w, s))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers)
def test_conv_bwd_data_matches_reference(csim, layer):
    x, w, g, _, s = make(layer)
    hw = x.shape[2:]
    assert same(csim.conv_bwd_data(g, w, s, hw), ref.conv_bwd_data(g, w, s, hw))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers, st.sampled_from([0, 1, 3277, 6554, 32768, 65535, 65536]))
def test_conv_bwd_weight_psg_matches_reference(csim, layer, beta_q):
    x, _, g, k, s = make(layer)
    got = csim.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg")
    want = ref.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg")
    assert same(got.sign, want.sign)
    assert got.predicted == want.predicted
    assert same(got.g_msb, want.g_msb) and got.max_abs_msb == want.max_abs_msb
    full = csim.conv_bwd_weight_psg(x, g, k, s, beta_q, "full")
    rfull = ref.conv_bwd_weight_psg(x, g, k, s, beta_q, "full")
    assert same(full.g_full, rfull.g_full) and same(full.sign, rfull.sign) and full.predicted == 0


def test_resnet_sized_layer_with_extremes(csim):
    """A 16-channel 32 x 32 layer: at random, with every operand at either extreme, and with half the
    operands at the MSB predictor's edges (ties, saturated band, most negative values)."""
    rng = np.random.default_rng(5)
    for kind in ("rand", "min", "max", "edges"):
        x = fill(rng, kind, (4, 16, 32, 32), np.int8)
        w = fill(rng, kind, (16, 16, 3, 3), np.int8)
        g = fill(rng, kind, (4, 16, 32, 32), np.int16)
        assert same(csim.conv_fwd(x, w, 1), ref.conv_fwd(x, w, 1))
        assert same(csim.conv_bwd_data(g, w, 1, (32, 32)), ref.conv_bwd_data(g, w, 1, (32, 32)))
        a = csim.conv_bwd_weight_psg(x, g, 3, 1, 3277)
        b = ref.conv_bwd_weight_psg(x, g, 3, 1, 3277)
        assert same(a.sign, b.sign) and a.predicted == b.predicted and same(a.g_msb, b.g_msb)


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (1, 1), (1, 2)])
@pytest.mark.parametrize("kind", ["rand", "min", "sparse", "edges"])
def test_channel_counts_across_the_cpu_tiles(csim, k, s, kind):
    """Channel counts that cross the g++ build's tiles (forward: blocks of 4 outputs over input-channel
    pairs, hls/csim/fwd_lanes.h; backward-data 8 output pairs x 4 inputs: hls/csim/mac_avx2.h) with
    remainders, and plane sizes whose positions end in a partial vector."""
    rng = np.random.default_rng(11)
    n, c, o = 2, 11, 35
    for h, w in ((9, 7), (5, 5)):
        x, wt, g, _, _ = make((n, c, o, h, w, k, s, kind, kind, kind, int(rng.integers(2**32))))
        assert same(csim.conv_fwd(x, wt, s), ref.conv_fwd(x, wt, s))
        assert same(csim.conv_bwd_data(g, wt, s, (h, w)), ref.conv_bwd_data(g, wt, s, (h, w)))


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (1, 1), (1, 2)])
def test_forward_across_image_groups_and_row_bands(csim, k, s):
    """The AVX2 forward (hls/csim/fwd_lanes.h) holds 8 images in its lanes and packs the input in bands
    of rows that fit 512 kB: 9 images are a full group and a group of 1; 63 channels of 66 columns
    make a band of a few rows (several bands, the last one short); 66 columns end in a partial vector
    of the 8 x 8 transposes, and at stride 2 the 33 output columns are odd."""
    rng = np.random.default_rng(12)
    for kind in ("rand", "min"):
        x, wt, _, _, _ = make((9, 63, 6, 21, 66, k, s, kind, kind, "zeros", int(rng.integers(2**32))))
        assert same(csim.conv_fwd(x, wt, s), ref.conv_fwd(x, wt, s))


def test_extreme_values_by_hand(csim):
    """-128 * -128 everywhere: a 3x3 interior output is 9 * 16384; -32768 * -128 in backward-data."""
    x = np.full((1, 1, 3, 3), -128, np.int8)
    w = np.full((1, 1, 3, 3), -128, np.int8)
    y = csim.conv_fwd(x, w, 1)
    assert y[0, 0, 1, 1] == 9 * 16384 and y[0, 0, 0, 0] == 4 * 16384
    g = np.full((1, 1, 3, 3), -32768, np.int16)
    gx = csim.conv_bwd_data(g, w, 1, (3, 3))
    assert gx[0, 0, 1, 1] == 9 * 4194304 and gx.dtype == np.int64
    full = csim.conv_bwd_weight_psg(x, g, 3, 1, 3277, "full")
    assert full.g_full[0, 0, 1, 1] == 9 * 4194304 and full.g_full[0, 0, 0, 0] == 4 * 4194304


def test_all_zero_inputs(csim):
    x = np.zeros((2, 3, 5, 5), np.int8)
    g = np.zeros((2, 4, 5, 5), np.int16)
    r = csim.conv_bwd_weight_psg(x, g, 3, 1, 3277)
    # G_msb = 0 never takes the predicted sign; G_full = 0 gives sign 0
    assert r.predicted == 0 and r.max_abs_msb == 0 and not r.sign.any()
    assert not csim.conv_fwd(x, np.ones((4, 3, 3, 3), np.int8), 1).any()


def tie_inputs():
    # x = 16 -> x_msb = 1; g = 64 m + d, |d| < 32 -> g_msb = m: G_msb of the four 1x1 weights is (4, -2, 1, 0)
    x = np.full((1, 1, 1, 1), 16, np.int8)
    g = np.array([4 * 64, -2 * 64, 64 + 5, 31], np.int16).reshape(1, 4, 1, 1)
    return x, g


def test_psg_threshold_tie_counts_as_confident(csim):
    x, g = tie_inputs()
    r = csim.conv_bwd_weight_psg(x, g, 1, 1, 32768)  # beta = 1/2: |-2| * 65536 == 32768 * 4
    assert r.g_msb.reshape(-1).tolist() == [4, -2, 1, 0]
    assert r.predicted == 2  # 4 and the tie -2; 1 is below; 0 never
    assert r.sign.reshape(-1).tolist() == [1, -1, 1, 1]  # 1 and 0 from G_full = 69*16 and 31*16
    one_more = csim.conv_bwd_weight_psg(x, g, 1, 1, 32769)  # just above the tie
    assert one_more.predicted == 1
    for beta_q, predicted in ((0, 3), (65536, 1)):
        r = csim.conv_bwd_weight_psg(x, g, 1, 1, beta_q)
        want = ref.conv_bwd_weight_psg(x, g, 1, 1, beta_q)
        assert r.predicted == want.predicted == predicted and same(r.sign, want.sign)


def test_psg_mode_leaves_g_full_unset_and_full_mode_sets_it(csim):
    x, g = tie_inputs()
    assert csim.conv_bwd_weight_psg(x, g, 1, 1, 3277).g_full is None
    full = csim.conv_bwd_weight_psg(x, g, 1, 1, 3277, "full")
    assert full.g_full.reshape(-1).tolist() == [4 * 64 * 16, -2 * 64 * 16, 69 * 16, 31 * 16]


def test_stride2_input_size_decides_the_shape(csim):
    g = np.arange(4, dtype=np.int16).reshape(1, 1, 2, 2)
    w = np.ones((1, 2, 3, 3), np.int8)
    for hw in ((3, 3), (4, 4), (3, 4)):
        assert same(csim.conv_bwd_data(g, w, 2, hw), ref.conv_bwd_data(g, w, 2, hw))


def test_inputs_beyond_the_buffers_are_refused(csim):
    big = csim.max_hw + 1
    with pytest.raises(FabricError, match="holds inputs up to"):
        csim.conv_fwd(np.zeros((1, 1, big, 2), np.int8), np.zeros((1, 1, 1, 1), np.int8), 1)


def test_large_planes_use_the_second_instance(csim):
    """Planes over 128 x 128 run on the kernels' large-plane instance (up to 512 x 512)."""
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (1, 2, 130, 7), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 2, 3, 3), dtype=np.int8)
    g = rng.integers(-32768, 32768, (1, 3, 65, 4), dtype=np.int16)
    assert csim.max_hw == 512
    assert same(csim.conv_fwd(x, w, 2), ref.conv_fwd(x, w, 2))
    assert same(csim.conv_bwd_data(g, w, 2, (130, 7)), ref.conv_bwd_data(g, w, 2, (130, 7)))
    a, b = csim.conv_bwd_weight_psg(x, g, 3, 2, 3277), ref.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    assert same(a.sign, b.sign) and a.predicted == b.predicted


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (1, 1)])
def test_weight_gradient_of_a_batch_that_does_not_fit_one_plane(csim, k, s):
    """17 images of 128 x 128: the weight-gradient kernel stacks 15 (16 for 1x1) per plane, in two passes."""
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (17, 2, 128, 128), dtype=np.int8)
    g = rng.integers(-32768, 32768, (17, 3, out_size(128, k, s), out_size(128, k, s)), dtype=np.int16)
    for mode in ("psg", "full"):
        a, b = csim.conv_bwd_weight_psg(x, g, k, s, 3277, mode), ref.conv_bwd_weight_psg(x, g, k, s, 3277, mode)
        assert same(a.sign, b.sign) and a.predicted == b.predicted
        if mode == "full":
            assert same(a.g_full, b.g_full)
        else:
            assert same(a.g_msb, b.g_msb) and a.max_abs_msb == b.max_abs_msb


def test_a_shape_that_could_overflow_is_refused_not_wrapped(csim):
    # 128 * 64 * 64 terms of at most 8 * 512: 2**31, one past the 32-bit MSB accumulator
    x = np.zeros((128, 1, 64, 64), np.int8)
    g = np.zeros((128, 1, 64, 64), np.int16)
    with pytest.raises(OverflowError, match="weight_msb"):
        csim.conv_bwd_weight_psg(x, g, 3, 1, 3277)
    # mode full only needs the 48-bit accumulator, which holds it
    assert csim.conv_bwd_weight_psg(x, g, 3, 1, 3277, "full").g_full.shape == (1, 1, 3, 3)


def test_portable_build_matches_reference(tmp_path, monkeypatch):
    """Built for plain x86-64 (no AVX2), the CPU schedules are the kernels' own loops instead of
    hls/csim/fwd_lanes.h and hls/csim/mac_avx2.h: what a machine without AVX2 gets. Same bits."""
    from e2train.fabric import csim, csim_build

    monkeypatch.setenv("E2TRAIN_CSIM_ARCH", "x86-64")
    monkeypatch.setenv("E2TRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(csim_build, "UNITS", {"csim/e2_csim.cpp": False})  # the CPU schedules only
    lib = csim.CsimLibrary(csim_build.build_library())
    assert lib.avx2_passes == 0
    portable = csim.CsimFabric("cpu", library=lib)
    rng = np.random.default_rng(3)
    for k, s in ((3, 1), (3, 2), (1, 1), (1, 2)):
        for kind in ("rand", "min", "max", "edges"):
            x, w, g, _, _ = make((2, 11, 35, 9, 7, k, s, kind, kind, kind, int(rng.integers(2**32))))
            assert same(portable.conv_fwd(x, w, s), ref.conv_fwd(x, w, s))
            assert same(portable.conv_bwd_data(g, w, s, (9, 7)), ref.conv_bwd_data(g, w, s, (9, 7)))
            a, b = portable.conv_bwd_weight_psg(x, g, k, s, 3277), ref.conv_bwd_weight_psg(x, g, k, s, 3277)
            assert same(a.sign, b.sign) and a.predicted == b.predicted and same(a.g_msb, b.g_msb)
    assert_msb_split_matches_fixed(lib, "cpu")


def test_avx2_machines_run_the_avx2_passes(csim):
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    if " avx2" not in flags:
        pytest.skip("this CPU has no AVX2: the portable loops run (test_portable_build_matches_reference)")
    assert csim.lib.avx2_passes == 1


def assert_msb_split_matches_fixed(lib, program):
    """The library's MSB predictor on every int8 and int16 value equals fixed.msb, and the remainder
    value - 2**s * msb equals fixed.lsb (contract v2: rounded, saturated, signed remainder)."""
    prog = lib.program(program)
    for dtype, bits, msb_bits in ((np.int8, fixed.X_BITS, fixed.X_MSB_BITS), (np.int16, fixed.G_BITS, fixed.G_MSB_BITS)):
        v = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, dtype=dtype)
        m = prog.x_msb(v) if dtype is np.int8 else prog.g_msb(v)
        assert np.array_equal(m, fixed.msb(v, bits, msb_bits))
        rem = v.astype(np.int64) - (m.astype(np.int64) << (bits - msb_bits))
        assert np.array_equal(rem, fixed.lsb(v, bits, msb_bits))


@pytest.mark.parametrize("program", ["cpu", "tops"])
def test_msb_split_of_every_value(csim, program):
    """Both type families (NativeTypes for the CPU schedules, ApTypes for the tops) through the one
    helper the plane loaders call (e2::msb_round, hls/include/e2_types.h)."""
    assert_msb_split_matches_fixed(csim.lib, program)
    x_edges, g_edges = msb_edge_values(np.int8), msb_edge_values(np.int16)
    assert {-128, -8, 8, 24, 120, 127} <= set(x_edges.tolist())
    assert {-32768, -32, 96, 32736, 32767} <= set(g_edges.tolist())


def test_library_of_another_contract_version_is_refused(monkeypatch, csim):
    from e2train.fabric import csim as csim_module

    assert csim.lib.contract_version == fixed.CONTRACT_VERSION == 2
    monkeypatch.setattr(fixed, "CONTRACT_VERSION", 3)
    with pytest.raises(csim_module.ContractMismatch, match=r"implements contract v2, but e2train.fixed states contract v3"):
        csim_module.CsimLibrary(csim.lib.path)
    # a library without e2_contract_version predates the versions: v1 (any shared library without it will do)
    monkeypatch.setattr(fixed, "CONTRACT_VERSION", 2)
    libc = ctypes.util.find_library("c")
    with pytest.raises(csim_module.ContractMismatch, match=r"contract v1, but .* contract v2: rebuild"):
        csim_module.CsimLibrary(libc)
    csim_module.CsimLibrary(libc, any_contract=True)  # timing an old build (benchmarks/csim_ab.py)
