"""The synthesizable HLS tops (ap_int types, hardware tiles; the csim program "tops") give the same bits
as the CPU schedules of the same sums (the program "cpu") and the reference: the CPU schedules are a
faithful stand-in for the hardware kernels."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operands import FILLS, fill

from e2train.contract import E2_BAD_ARG, E2_BAD_SHAPE, ConvShape
from e2train.fabric import FabricError, get_fabric, out_size

ref = get_fabric("reference")


@pytest.fixture(scope="module")
def fabs():
    return get_fabric("csim", program="cpu"), get_fabric("csim", program="tops")


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(1, 2), st.integers(1, 5), st.integers(1, 10), st.integers(1, 12), st.integers(1, 12),
    st.sampled_from([1, 3]), st.sampled_from([1, 2]), st.sampled_from([0, 3277, 32768, 65536]),
    st.sampled_from(FILLS), st.sampled_from(FILLS), st.integers(0, 2**32 - 1),
)
def test_ap_tops_equal_fast_path_and_reference(fabs, n, c, o, h, w, k, s, beta_q, fx, fg, seed):
    fast, ap = fabs
    rng = np.random.default_rng(seed)
    x = fill(rng, fx, (n, c, h, w), np.int8)
    wt = fill(rng, "rand", (o, c, k, k), np.int8)
    g = fill(rng, fg, (n, o, out_size(h, k, s), out_size(w, k, s)), np.int16)
    y = ap.conv_fwd(x, wt, s)
    assert same(y, fast.conv_fwd(x, wt, s)) and same(y, ref.conv_fwd(x, wt, s))
    gx = ap.conv_bwd_data(g, wt, s, (h, w))
    assert same(gx, fast.conv_bwd_data(g, wt, s, (h, w))) and same(gx, ref.conv_bwd_data(g, wt, s, (h, w)))
    for mode in ("psg", "full"):
        a = ap.conv_bwd_weight_psg(x, g, k, s, beta_q, mode)
        b = fast.conv_bwd_weight_psg(x, g, k, s, beta_q, mode)
        r = ref.conv_bwd_weight_psg(x, g, k, s, beta_q, mode)
        assert same(a.sign, b.sign) and same(a.sign, r.sign)
        assert a.predicted == b.predicted == r.predicted
        if mode == "full":
            assert same(a.g_full, r.g_full) and same(b.g_full, r.g_full)
        else:
            assert same(a.g_msb, r.g_msb) and same(b.g_msb, r.g_msb)
            assert a.max_abs_msb == b.max_abs_msb == r.max_abs_msb


@pytest.mark.parametrize("kind", ["min", "max", "edges"])
def test_ap_tops_at_the_largest_plane_with_extremes(fabs, kind):
    """Every operand at one extreme, or half of them at the MSB predictor's edges (ties, saturated band)."""
    fast, ap = fabs
    rng = np.random.default_rng(7)
    x = fill(rng, kind, (1, 3, 32, 32), np.int8)
    w = fill(rng, kind, (9, 3, 3, 3), np.int8)
    g = fill(rng, kind, (1, 9, 16, 16), np.int16)
    assert same(ap.conv_fwd(x, w, 2), ref.conv_fwd(x, w, 2))
    assert same(ap.conv_bwd_data(g, w, 2, (32, 32)), ref.conv_bwd_data(g, w, 2, (32, 32)))
    a = ap.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    b = fast.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    r = ref.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    assert same(a.sign, r.sign) and a.predicted == r.predicted and same(a.g_msb, r.g_msb)
    assert same(b.sign, r.sign) and b.predicted == r.predicted and same(b.g_msb, r.g_msb)


def test_ap_tops_refuse_planes_beyond_their_buffers(fabs):
    _, ap = fabs
    assert ap.max_hw == 32
    with pytest.raises(FabricError, match="holds inputs up to 32x32"):
        ap.conv_fwd(np.zeros((1, 1, 33, 4), np.int8), np.zeros((1, 1, 3, 3), np.int8), 1)
    # and the top itself answers E2_BAD_SHAPE (1) / E2_BAD_ARG (2) through ap_return, touching nothing
    x = np.zeros((1, 1, 33, 4), np.int8)
    y = np.full((1, 1, 33, 4), 7, np.int32)
    w = np.zeros((1, 1, 3, 3), np.int8)
    assert ap.program.conv_fwd(x, w, y, ConvShape("big", n=1, c=1, o=1, h=33, w=4, k=3, stride=1)) == E2_BAD_SHAPE == 1
    x4 = np.ascontiguousarray(x[:, :, :4])
    assert ap.program.conv_fwd(x4, w, y, ConvShape("k5", n=1, c=1, o=1, h=4, w=4, k=5, stride=1)) == E2_BAD_ARG == 2
    assert (y == 7).all()


def test_unknown_program_is_an_error_and_the_old_names_still_work():
    with pytest.raises(ValueError, match="program must be 'tops' .* or 'cpu' .*, got 'fpga'"):
        get_fabric("csim", program="fpga")
    with pytest.raises(ValueError, match="program"):
        get_fabric("csim", path="fpga")
    assert get_fabric("csim", path="ap").program_name == "tops"
    assert get_fabric("csim", path="fast").program_name == "cpu"
