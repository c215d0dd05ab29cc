"""The torch fabric against the reference, bit for bit, in float64 on the CPU."""

import itertools

import numpy as np
import pytest
import torch

from operands import LAYER_KINDS
from operands import layer_operands as operands

from e2train.fabric import get_fabric, networks
from e2train.fabric import torch_backend

ref = get_fabric("reference")
fab = get_fabric("torch")

# (N, C, O, H, W, k, stride): 1x1 and 3x3, both strides, odd / even / rectangular / tiny sizes.
SHAPES = [
    (n, c, o, h, w, k, s)
    for (n, c, o), (h, w), k, s in itertools.product(
        [(1, 1, 1), (2, 3, 5), (3, 8, 4)], [(1, 1), (2, 3), (5, 5), (7, 4), (8, 8), (9, 6)], (1, 3), (1, 2)
    )
]


def assert_same(x, wt, g, k, s, beta_q=3277):
    h, w = x.shape[2:]
    y = fab.conv_fwd(x, wt, s)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref.conv_fwd(x, wt, s))
    gx = fab.conv_bwd_data(g, wt, s, (h, w))
    assert gx.dtype == np.int64 and gx.shape == x.shape
    np.testing.assert_array_equal(gx, ref.conv_bwd_data(g, wt, s, (h, w)))
    full, rfull = fab.conv_bwd_weight_psg(x, g, k, s, beta_q, "full"), ref.conv_bwd_weight_psg(x, g, k, s, beta_q, "full")
    assert full.g_full.dtype == np.int64 and full.sign.dtype == np.int8 and full.predicted == 0 and full.mode == "full"
    np.testing.assert_array_equal(full.g_full, rfull.g_full)
    np.testing.assert_array_equal(full.sign, rfull.sign)
    psg, rpsg = fab.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg"), ref.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg")
    assert psg.sign.dtype == np.int8 and psg.mode == "psg"
    np.testing.assert_array_equal(psg.sign, rpsg.sign)
    np.testing.assert_array_equal(psg.g_msb, rpsg.g_msb)
    assert psg.predicted == rpsg.predicted and psg.max_abs_msb == rpsg.max_abs_msb
    return psg


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_matches_reference_on_many_shapes(kind):
    rng = np.random.default_rng(LAYER_KINDS.index(kind))
    for shape in SHAPES:
        n, c, o, h, w, k, s = shape
        x, wt, g = operands(rng, *shape, kind)
        assert_same(x, wt, g, k, s)


@pytest.mark.parametrize("beta_q", [0, 1, 3277, 6554, 32768, 65535, 65536])
def test_psg_choice_matches_reference_for_every_beta(beta_q):
    rng = np.random.default_rng(beta_q)
    x, wt, g = operands(rng, 4, 6, 5, 8, 8, 3, 1, "sparse")
    psg = assert_same(x, wt, g, 3, 1, beta_q)
    if beta_q == 65536:  # only weights at the maximum can be confident
        assert psg.predicted == np.count_nonzero((np.abs(psg.g_msb) == psg.max_abs_msb) & (psg.g_msb != 0))


def test_real_resnet20_layers_at_batch_32():
    rng = np.random.default_rng(20)
    seen = set()
    for layer in networks.resnet_cifar_convs(20, batch=32):
        key = (layer.c, layer.o, layer.h, layer.k, layer.stride)
        if key in seen:
            continue
        seen.add(key)
        x, wt, g = operands(rng, layer.n, layer.c, layer.o, layer.h, layer.w, layer.k, layer.stride, "random")
        assert_same(x, wt, g, layer.k, layer.stride)


def test_worst_case_stem_weight_gradient_at_batch_128():
    # The tightest accumulator of the contract: the stem's MSB weight gradient reaches -2**29 exactly.
    x = np.full((128, 3, 32, 32), -128, np.int8)
    g = np.full((128, 16, 32, 32), -32768, np.int16)
    r = fab.conv_bwd_weight_psg(x, g, 3, 1, 3277, "psg")
    assert r.max_abs_msb == 128 * 32 * 32 * 8 * 512 == 2**29
    np.testing.assert_array_equal(r.g_msb, ref.conv_bwd_weight_psg(x, g, 3, 1, 3277, "psg").g_msb)
    assert r.g_full.max() == 128 * 32 * 32 * 128 * 32768


def test_chunked_sums_stay_exact(monkeypatch):
    # Shrink the exact range so that every kernel has to split its sum; the result must not change.
    rng = np.random.default_rng(7)
    x, wt, g = operands(rng, 5, 7, 6, 9, 7, 3, 2, "random")
    expect = [ref.conv_fwd(x, wt, 2), ref.conv_bwd_data(g, wt, 2, (9, 7)), ref.conv_bwd_weight_psg(x, g, 3, 2, 3277)]
    calls = []
    real = torch_backend.tk.conv_fwd

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(torch_backend, "_LIMIT", 9 * 128 * 128 * 2 + 1)  # two channels per call
    monkeypatch.setattr(torch_backend.tk, "conv_fwd", counting)
    np.testing.assert_array_equal(fab.conv_fwd(x, wt, 2), expect[0])
    assert len(calls) == 4  # 7 channels in chunks of 2
    monkeypatch.setattr(torch_backend, "_LIMIT", 20 * 128 * 32768 * 2 + 1)  # a few images per call
    np.testing.assert_array_equal(fab.conv_bwd_data(g, wt, 2, (9, 7)), expect[1])
    r = fab.conv_bwd_weight_psg(x, g, 3, 2, 3277)
    np.testing.assert_array_equal(r.g_full, expect[2].g_full)
    np.testing.assert_array_equal(r.sign, expect[2].sign)
    monkeypatch.setattr(torch_backend, "_LIMIT", 100)
    with pytest.raises(OverflowError, match="exact range"):
        fab.conv_fwd(x, wt, 2)


def test_invalid_device_is_refused():
    # the argument checks every backend shares are in test_backend_conformance.py
    with pytest.raises(ValueError, match="invalid device"):
        get_fabric("torch", device="nonsense")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float64_matches_reference():
    gpu = get_fabric("torch", device="cuda")
    rng = np.random.default_rng(11)
    for shape in SHAPES[::5]:
        x, wt, g = operands(rng, *shape, "random")
        k, s = shape[5], shape[6]
        np.testing.assert_array_equal(gpu.conv_fwd(x, wt, s), ref.conv_fwd(x, wt, s))
        np.testing.assert_array_equal(gpu.conv_bwd_data(g, wt, s, x.shape[2:]), ref.conv_bwd_data(g, wt, s, x.shape[2:]))
        np.testing.assert_array_equal(gpu.conv_bwd_weight_psg(x, g, k, s, 3277).sign, ref.conv_bwd_weight_psg(x, g, k, s, 3277).sign)
