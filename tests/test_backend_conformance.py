"""What every fabric backend must do alike (docs/contracts.md sections 3-4): refuse bad arguments with
the same errors, leave its inputs alone, take non-contiguous arrays, refuse a result that would
overflow, and give the reference's bits, also where contract v2's predictor is easiest to get wrong
(its saturation band, its rounding ties, the most negative values). Each test runs on every backend
of BACKENDS; a new backend joins with one line there. What only one backend has (its tiles, its
buffers, its device) stays in that backend's own test file."""

import numpy as np
import pytest
from operands import CORNER_KINDS, corner_operands, layer_operands

from e2train.fabric import FabricError, get_fabric
from e2train.fabric.selftest import run_selftest

ref = get_fabric("reference")

# (id, backend, options): one line per backend
BACKENDS = [
    ("reference", "reference", {}),
    ("torch", "torch", {}),
    ("csim-cpu", "csim", {"program": "cpu"}),  # the CPU schedules of the sums (hls/csim/e2_csim.cpp)
    ("csim-tops", "csim", {"program": "tops"}),  # the HLS tops themselves (hls/csim/e2_csim_ap.cpp)
    ("pynq-sim", "pynq", {"device": "sim"}),  # the board driver on the simulated board
    ("cpu", "cpu", {}),  # the integer CPU training engine (e2train.cpu) as a fabric
]


@pytest.fixture(scope="module", params=BACKENDS, ids=[b[0] for b in BACKENDS])
def fab(request):
    _, name, options = request.param
    f = get_fabric(name, **options)
    yield f
    f.close()


def _x(shape=(1, 1, 4, 4), dtype=np.int8):
    return np.zeros(shape, dtype)


def _w(shape=(1, 1, 3, 3), dtype=np.int8):
    return np.zeros(shape, dtype)


BAD_CALLS = [
    (lambda f: f.conv_fwd(_x(dtype=np.int16), _w(), 1), "x must have dtype int8"),
    (lambda f: f.conv_fwd(_x(), _w(dtype=np.float32), 1), "w must have dtype int8"),
    (lambda f: f.conv_fwd(_x((1, 4, 4)), _w(), 1), "4 dimensions"),
    (lambda f: f.conv_fwd(_x((1, 2, 4, 4)), _w(), 1), "channels"),
    (lambda f: f.conv_fwd(_x(), _w(), 3), "stride"),
    (lambda f: f.conv_fwd(_x(), _w((1, 1, 5, 5)), 1), "kernel size"),
    (lambda f: f.conv_fwd(_x(), _w((1, 1, 3, 1)), 1), "square"),
    (lambda f: f.conv_fwd([[1]], _w(), 1), "numpy array"),
    (lambda f: f.conv_fwd(_x((0, 1, 4, 4)), _w(), 1), "empty"),
    (lambda f: f.conv_bwd_data(_x(dtype=np.int16), _w(), 2, (4, 4)), "spatial size"),
    (lambda f: f.conv_bwd_data(_x((1, 2, 4, 4), np.int16), _w(), 1, (4, 4)), "outputs"),
    (lambda f: f.conv_bwd_data(_x(), _w(), 1, (4, 4)), "g must have dtype int16"),
    (lambda f: f.conv_bwd_data(_x(dtype=np.int16), _w(), 1, 4), "in_hw"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x(dtype=np.int16), 3, 1, 70000), "beta_q"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x(dtype=np.int16), 3, 1, -1), "beta_q"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x(dtype=np.int16), 3, 1, 0.05), "beta_q"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x(dtype=np.int16), 3, 1, 3277, "half"), "mode"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x((1, 1, 2, 2), np.int16), 3, 1, 3277), "spatial size"),
    (lambda f: f.conv_bwd_weight_psg(_x((2, 1, 4, 4)), _x(dtype=np.int16), 3, 1, 3277), "batch"),
    (lambda f: f.conv_bwd_weight_psg(_x(), _x(dtype=np.int16), 2, 1, 3277), "kernel size"),
    # two input channels, one output (as the torch and csim files had them)
    (lambda f: f.conv_fwd(_x((1, 2, 4, 4), np.int16), _w((1, 2, 3, 3)), 1), "dtype"),
    (lambda f: f.conv_fwd(_x((1, 2, 4, 4)), _w((1, 2, 3, 3)), 3), "stride"),
    (lambda f: f.conv_bwd_weight_psg(_x((1, 2, 4, 4)), _x(dtype=np.int16), 3, 1, 70000), "beta_q"),
]


@pytest.mark.parametrize("call,match", BAD_CALLS, ids=[f"{i}-{m}" for i, (_, m) in enumerate(BAD_CALLS)])
def test_bad_arguments_are_refused_alike(fab, call, match):
    with pytest.raises(FabricError, match=match):
        call(fab)


def test_inputs_are_not_modified(fab):
    rng = np.random.default_rng(3)
    x, wt, g = layer_operands(rng, 2, 3, 4, 6, 6, 3, 1, "random")
    copies = [a.copy() for a in (x, wt, g)]
    fab.conv_fwd(x, wt, 1)
    fab.conv_bwd_data(g, wt, 1, (6, 6))
    fab.conv_bwd_weight_psg(x, g, 3, 1, 3277)
    for a, b in zip((x, wt, g), copies):
        np.testing.assert_array_equal(a, b)
    # stride 2
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 3, 6, 6), dtype=np.int8)
    g = rng.integers(-32768, 32768, (2, 4, 3, 3), dtype=np.int16)
    w = rng.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    copies = [a.copy() for a in (x, g, w)]
    fab.conv_fwd(x, w, 2)
    fab.conv_bwd_data(g, w, 2, (6, 6))
    fab.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    assert all(np.array_equal(a, b) for a, b in zip((x, g, w), copies))


def test_non_contiguous_inputs(fab):
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (2, 3, 8, 8), dtype=np.int8)[:, :, ::2, ::2]
    w = rng.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    y = fab.conv_fwd(x, w, 1)
    want = ref.conv_fwd(x, w, 1)
    assert y.dtype == want.dtype and y.shape == want.shape and np.array_equal(y, want)


def test_overflow_is_refused_like_the_reference(fab):
    # 2**17 input channels of -128 * -128 overflow the int32 forward accumulator.
    c = 1 << 17
    x = np.full((1, c, 1, 1), -128, np.int8)
    w = np.full((1, c, 1, 1), -128, np.int8)
    with pytest.raises(OverflowError, match="conv_fwd"):
        ref.conv_fwd(x, w, 1)
    with pytest.raises(OverflowError, match="conv_fwd"):
        fab.conv_fwd(x, w, 1)


def test_selftest_passes(fab):
    """What `e2train fabric selftest --backend NAME` checks: random layers and the adjoint identity."""
    assert run_selftest(fab, np.random.default_rng(0)) == []


# (N, C, O, H, W, k, stride): odd sizes, both kernels and strides, batch 1
CORNER_LAYERS = [(1, 3, 4, 7, 5, 3, 1), (2, 4, 3, 9, 8, 3, 2), (3, 5, 6, 6, 7, 1, 2), (2, 2, 5, 5, 5, 1, 1)]


@pytest.mark.parametrize("kind", CORNER_KINDS)
@pytest.mark.parametrize("layer", CORNER_LAYERS, ids=lambda l: "N{}C{}O{}H{}W{}k{}s{}".format(*l))
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
