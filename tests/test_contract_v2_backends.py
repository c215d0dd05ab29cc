"""Contract v2 across every backend: randomised layers whose operands sit on the predictor's corners
(the saturation band, the rounding ties, the most negative values, all-extreme tensors) give the same
bits on reference, torch (float64), csim (fast path and the synthesizable ap tops) and the pynq driver
on the simulated board. The RTL engine is held to the same reference in tests/test_rtl_engine.py."""

import numpy as np
import pytest

from e2train import fixed
from e2train.fabric import get_fabric, out_size

ref = get_fabric("reference")

# values where v2's rounding or saturation decides the MSB (and their neighbours)
X_CORNERS = np.array([-128, -127, -25, -24, -23, -9, -8, -7, 0, 7, 8, 9, 23, 24, 25, 119, 120, 121, 126, 127], np.int8)
G_CORNERS = np.array(
    [-32768, -32767, -97, -96, -95, -33, -32, -31, 0, 31, 32, 33, 95, 96, 97, 32735, 32736, 32737, 32766, 32767], np.int16
)
# (N, C, O, H, W, k, stride): odd sizes, both kernels and strides, batch 1
LAYERS = [(1, 3, 4, 7, 5, 3, 1), (2, 4, 3, 9, 8, 3, 2), (3, 5, 6, 6, 7, 1, 2), (2, 2, 5, 5, 5, 1, 1)]


def corner_operands(rng, n, c, o, h, w, k, s, kind):
    ho, wo = out_size(h, k, s), out_size(w, k, s)
    if kind == "corners":  # every element a corner value
        x = rng.choice(X_CORNERS, (n, c, h, w))
        g = rng.choice(G_CORNERS, (n, o, ho, wo))
    elif kind == "mixed":  # corners scattered among uniform values
        x = np.where(rng.random((n, c, h, w)) < 0.5, rng.choice(X_CORNERS, (n, c, h, w)),
                     rng.integers(-128, 128, (n, c, h, w))).astype(np.int8)
        g = np.where(rng.random((n, o, ho, wo)) < 0.5, rng.choice(G_CORNERS, (n, o, ho, wo)),
                     rng.integers(-32768, 32768, (n, o, ho, wo))).astype(np.int16)
    elif kind == "max":  # all at the top: every MSB saturated
        x, g = np.full((n, c, h, w), 127, np.int8), np.full((n, o, ho, wo), 32767, np.int16)
    else:  # all at the bottom: the largest products
        x, g = np.full((n, c, h, w), -128, np.int8), np.full((n, o, ho, wo), -32768, np.int16)
    wt = rng.integers(-128, 128, (o, c, k, k), dtype=np.int8)
    return x, wt, g


def _backend(name):
    if name == "torch":
        return get_fabric("torch")
    if name in ("csim-fast", "csim-ap"):
        return get_fabric("csim", path=name.split("-")[1])
    return get_fabric("pynq", device="sim")


@pytest.fixture(scope="module", params=["torch", "csim-fast", "csim-ap", "pynq-sim"])
def fab(request):
    f = _backend(request.param)
    yield f
    f.close()


@pytest.mark.parametrize("kind", ["corners", "mixed", "max", "min"])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: "N{}C{}O{}H{}W{}k{}s{}".format(*l))
def test_backend_equals_reference_on_the_predictor_corners(fab, layer, kind):
    n, c, o, h, w, k, s = layer
    rng = np.random.default_rng(hash((layer, kind)) % 2**32)
    x, wt, g = corner_operands(rng, n, c, o, h, w, k, s, kind)
    for beta_q in (0, 3277, 65536):
        r, f = ref.conv_bwd_weight_psg(x, g, k, s, beta_q), fab.conv_bwd_weight_psg(x, g, k, s, beta_q)
        assert f.sign.dtype == np.int8
        np.testing.assert_array_equal(f.sign, r.sign)
        assert f.predicted == r.predicted
        if f.g_msb is not None:
            np.testing.assert_array_equal(f.g_msb, r.g_msb)
    np.testing.assert_array_equal(fab.conv_fwd(x, wt, s), ref.conv_fwd(x, wt, s))
    np.testing.assert_array_equal(fab.conv_bwd_data(g, wt, s, (h, w)), ref.conv_bwd_data(g, wt, s, (h, w)))


def test_reference_predictor_is_the_v2_rule_on_the_corners():
    # the golden model itself: G_msb of a 1x1 conv of one pixel is x_msb * g_msb, with v2's MSBs
    x = X_CORNERS.reshape(1, -1, 1, 1)
    g = G_CORNERS.reshape(1, -1, 1, 1)
    r = ref.conv_bwd_weight_psg(x, g, 1, 1, 3277)
    xm = np.minimum((X_CORNERS.astype(np.int64) + 8) >> 4, 7)
    gm = np.minimum((G_CORNERS.astype(np.int64) + 32) >> 6, 511)
    np.testing.assert_array_equal(r.g_msb[:, :, 0, 0], np.outer(gm, xm))
    assert fixed.CONTRACT_VERSION == 2
