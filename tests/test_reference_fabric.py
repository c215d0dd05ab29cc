"""The reference fabric against hand-worked cases, a loop-by-loop model and the adjoint identities."""

import numpy as np
import pytest

import naive_conv
from operands import G_CORNERS, X_CORNERS
from e2train import fixed
from e2train.fabric import BackendUnavailable, PsgResult, get_fabric

ref = get_fabric("reference")


def i8(a):
    return np.array(a, dtype=np.int8)


def i16(a):
    return np.array(a, dtype=np.int16)


# ---------------------------------------------------------------- hand-worked cases


def test_fwd_1x1_is_a_channel_mix():
    x = i8([[[[1, 2], [3, 4]], [[-1, 0], [5, -6]]]])
    w = i8([[[[2]], [[3]]]])
    y = ref.conv_fwd(x, w, 1)
    assert y.dtype == np.int32 and y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[2 - 3, 4 + 0], [6 + 15, 8 - 18]])


def test_fwd_3x3_zero_padding_borders():
    y = ref.conv_fwd(np.ones((1, 1, 3, 3), np.int8), np.ones((1, 1, 3, 3), np.int8), 1)
    np.testing.assert_array_equal(y[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


def test_fwd_stride2_picks_the_right_pixels():
    x = np.arange(16, dtype=np.int8).reshape(1, 1, 4, 4)
    centre = np.zeros((1, 1, 3, 3), np.int8)
    centre[0, 0, 1, 1] = 1
    np.testing.assert_array_equal(ref.conv_fwd(x, centre, 2)[0, 0], [[0, 2], [8, 10]])
    corner = np.zeros((1, 1, 3, 3), np.int8)
    corner[0, 0, 0, 0] = 1  # reads x[2h'-1, 2w'-1]: the padding for h'=0
    np.testing.assert_array_equal(ref.conv_fwd(x, corner, 2)[0, 0], [[0, 0], [0, 5]])
    x5 = np.arange(25, dtype=np.int8).reshape(1, 1, 5, 5)  # odd size: H' = 3
    np.testing.assert_array_equal(ref.conv_fwd(x5, centre, 2)[0, 0], [[0, 2, 4], [10, 12, 14], [20, 22, 24]])
    one = np.ones((1, 1, 1, 1), np.int8)
    np.testing.assert_array_equal(ref.conv_fwd(x5, one, 2)[0, 0], x5[0, 0, ::2, ::2])


def test_bwd_data_scatters_back_with_stride_and_size():
    g = i16([[[[1, 2], [3, 4]]]])
    centre = np.zeros((1, 1, 3, 3), np.int8)
    centre[0, 0, 1, 1] = 1
    gx = ref.conv_bwd_data(g, centre, 2, (4, 4))
    assert gx.dtype == np.int64 and gx.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(gx[0, 0], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    corner = np.zeros((1, 1, 3, 3), np.int8)
    corner[0, 0, 0, 0] = 1
    gx = ref.conv_bwd_data(g, corner, 2, (4, 4))
    expected = np.zeros((4, 4), np.int64)
    expected[1, 1] = 4  # only g[1,1] lands inside; the others fall on the padding
    np.testing.assert_array_equal(gx[0, 0], expected)
    # H = 3 also gives H' = 2 at stride 2: in_hw decides the shape
    assert ref.conv_bwd_data(g, centre, 2, (3, 3)).shape == (1, 1, 3, 3)
    ones = np.ones((1, 1, 3, 3), np.int8)
    np.testing.assert_array_equal(
        ref.conv_bwd_data(np.ones((1, 1, 3, 3), np.int16), ones, 1, (3, 3))[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    )


def test_weight_gradient_full_hand_case():
    x = i8([[[[1, 2], [3, 4]]]])
    g = i16([[[[1, 0], [0, 0]]]])
    r = ref.conv_bwd_weight_psg(x, g, 3, 1, 3277, mode="full")
    assert r.mode == "full" and r.predicted == 0 and r.g_full.dtype == np.int64
    np.testing.assert_array_equal(r.g_full[0, 0], [[0, 0, 0], [0, 1, 2], [0, 3, 4]])
    np.testing.assert_array_equal(r.sign, np.sign(r.g_full))
    assert r.sign.dtype == np.int8


# ---------------------------------------------------------------- PSG selection rule


def _psg_case():
    """N=2, C=1, O=2, 1x1 pixels, k=1: G_msb = [64, -3], G_full = [65536, 428] (signs disagree on o=1)."""
    x = i8([[[[-16]]], [[[7]]]])  # x_msb = [-1, 0] (7 rounds to 0), x_lsb = [0, 7]
    g = i16([[[[-4096]], [[192]]], [[[0]], [[500]]]])  # g_msb o=0: [-64, 0]; o=1: [3, 8]
    return x, g


def test_psg_threshold_at_its_exact_boundary():
    x, g = _psg_case()
    full = ref.conv_bwd_weight_psg(x, g, 1, 1, 0, mode="full").g_full
    np.testing.assert_array_equal(full.ravel(), [65536, 428])
    # |G_msb| * 65536 >= beta_q * max: 3 * 65536 = 196608 = 3072 * 64 -> confident at 3072
    at = ref.conv_bwd_weight_psg(x, g, 1, 1, 3072)
    np.testing.assert_array_equal(at.g_msb.ravel(), [64, -3])
    assert at.max_abs_msb == 64
    np.testing.assert_array_equal(at.sign.ravel(), [1, -1])  # predicted sign, against G_full's
    assert at.predicted == 2
    above = ref.conv_bwd_weight_psg(x, g, 1, 1, 3073)
    np.testing.assert_array_equal(above.sign.ravel(), [1, 1])  # falls back to sgn(G_full) = +1
    assert above.predicted == 1 and above.predicted_ratio == 0.5


def test_zero_msb_gradient_never_takes_the_predicted_sign():
    x = i8([[[[-16]]], [[[7]]]])
    g = i16([[[[-4096]], [[0]]], [[[0]], [[135]]]])  # o=1: G_msb = 0 (x_msb(7) = 0), G_full = 7 * 135 = 945
    r = ref.conv_bwd_weight_psg(x, g, 1, 1, 0)  # beta 0: every nonzero G_msb is confident
    np.testing.assert_array_equal(r.g_msb.ravel(), [64, 0])
    np.testing.assert_array_equal(r.sign.ravel(), [1, 1])
    assert r.predicted == 1


def test_psg_all_zero_gradient():
    x = np.full((2, 3, 4, 4), 100, np.int8)
    g = np.zeros((2, 5, 4, 4), np.int16)
    r = ref.conv_bwd_weight_psg(x, g, 3, 1, 3277)
    assert r.predicted == 0 and r.max_abs_msb == 0
    assert not r.sign.any() and r.sign.shape == (5, 3, 3, 3)


def test_reference_predictor_is_the_v2_rule_on_the_corners():
    # the golden model itself: G_msb of a 1x1 conv of one pixel is x_msb * g_msb, with v2's MSBs
    x = X_CORNERS.reshape(1, -1, 1, 1)
    g = G_CORNERS.reshape(1, -1, 1, 1)
    r = ref.conv_bwd_weight_psg(x, g, 1, 1, 3277)
    xm = np.minimum((X_CORNERS.astype(np.int64) + 8) >> 4, 7)
    gm = np.minimum((G_CORNERS.astype(np.int64) + 32) >> 6, 511)
    np.testing.assert_array_equal(r.g_msb[:, :, 0, 0], np.outer(gm, xm))
    assert fixed.CONTRACT_VERSION == 2


def test_psg_result_type():
    x, g = _psg_case()
    r = ref.conv_bwd_weight_psg(x, g, 1, 1, 3277)
    assert isinstance(r, PsgResult) and r.total == 2 and r.sign.dtype == np.int8


# ---------------------------------------------------------------- against the loop model

SHAPES = [
    # N, C, O, H, W, k, s
    (1, 1, 1, 1, 1, 1, 1),
    (1, 1, 1, 1, 1, 3, 1),
    (2, 3, 2, 5, 5, 3, 1),
    (2, 2, 3, 5, 4, 3, 2),
    (1, 3, 2, 6, 6, 3, 2),
    (2, 4, 3, 5, 5, 1, 2),
    (3, 2, 2, 4, 3, 1, 1),
    (1, 2, 2, 2, 2, 3, 2),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_loop_model(shape):
    n, c, o, h, wd, k, s = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-128, 128, size=(n, c, h, wd), dtype=np.int8)
    w = rng.integers(-128, 128, size=(o, c, k, k), dtype=np.int8)
    ho, wo = naive_conv.out_size(h, k, s), naive_conv.out_size(wd, k, s)
    g = rng.integers(-32768, 32768, size=(n, o, ho, wo), dtype=np.int16)
    np.testing.assert_array_equal(ref.conv_fwd(x, w, s), naive_conv.conv_fwd(x, w, s))
    np.testing.assert_array_equal(ref.conv_bwd_data(g, w, s, (h, wd)), naive_conv.conv_bwd_data(g, w, s, (h, wd)))
    full = naive_conv.conv_bwd_weight(x, g, k, s)
    r = ref.conv_bwd_weight_psg(x, g, k, s, 3277, mode="psg")
    np.testing.assert_array_equal(r.g_full, full)
    msb = naive_conv.conv_bwd_weight(fixed.msb(x, 8, 4), fixed.msb(g, 16, 10), k, s)
    np.testing.assert_array_equal(r.g_msb, msb)
    top = np.abs(msb).max()
    conf = (msb != 0) & (np.abs(msb) * 65536 >= 3277 * top)
    np.testing.assert_array_equal(r.sign, np.where(conf, np.sign(msb), np.sign(full)))
    assert r.predicted == conf.sum()


@pytest.mark.parametrize("shape", [(4, 8, 6, 8, 8, 3, 1), (3, 6, 10, 9, 7, 3, 2), (5, 16, 8, 4, 4, 1, 2)])
def test_adjoint_identities(shape):
    """<conv_fwd(x,w), g> = <x, conv_bwd_data(g,w)> = <w, G_full(x,g)>, in exact integers."""
    n, c, o, h, wd, k, s = shape
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(n, c, h, wd), dtype=np.int8)
    w = rng.integers(-128, 128, size=(o, c, k, k), dtype=np.int8)
    y = ref.conv_fwd(x, w, s)
    g = rng.integers(-32768, 32768, size=y.shape, dtype=np.int16)
    gx = ref.conv_bwd_data(g, w, s, (h, wd))
    gw = ref.conv_bwd_weight_psg(x, g, k, s, 3277, mode="full").g_full

    def dot(a, b):
        return sum(int(u) * int(v) for u, v in zip(a.ravel().tolist(), b.ravel().tolist()))

    lhs = dot(y, g)
    assert lhs == dot(x, gx) == dot(w, gw)
    assert lhs != 0


def test_reference_matches_loops_on_extreme_values():
    x = np.full((2, 3, 4, 4), -128, np.int8)
    w = np.full((2, 3, 3, 3), -128, np.int8)
    g = np.full((2, 2, 4, 4), -32768, np.int16)
    np.testing.assert_array_equal(ref.conv_fwd(x, w, 1), naive_conv.conv_fwd(x, w, 1))
    np.testing.assert_array_equal(ref.conv_bwd_data(g, w, 1, (4, 4)), naive_conv.conv_bwd_data(g, w, 1, (4, 4)))
    np.testing.assert_array_equal(
        ref.conv_bwd_weight_psg(x, g, 3, 1, 3277, "full").g_full, naive_conv.conv_bwd_weight(x, g, 3, 1)
    )


# ---------------------------------------------------------------- errors (the argument checks of every
# backend are in test_backend_conformance.py)


def test_get_fabric_errors():
    with pytest.raises(ValueError, match="unknown fabric backend"):
        get_fabric("fpga9000")
    assert get_fabric("reference").name == "reference"


def test_unavailable_backend_is_a_clear_error(monkeypatch):
    from e2train import fabric

    monkeypatch.setitem(fabric.BACKENDS, "csim", ("e2train.fabric.not_here", "X"))
    with pytest.raises(BackendUnavailable, match="not implemented"):
        get_fabric("csim")
