"""The PSG / 8-bit convolution against the reference kernels, by hand, and against torch autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from e2train import fixed
from e2train.fabric import get_fabric, networks
from e2train.fabric import torch_kernels as tk
from e2train.psg import QuantConv2d, make_engine
from e2train.psg.quant import ExponentTracker, quantize_float

ref = get_fabric("reference")

# real ResNet-20 layers (stem, 3x3, strided 3x3, 1x1 projection, last stage) at a small batch
LAYERS = [s for s in networks.resnet_cifar_convs(20, batch=6) if s.name in
          ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer2.0.shortcut", "layer3.2.conv2")]


def layer(shape, precision="float64", **kw):
    eng = make_engine("torch", precision)
    m = QuantConv2d(shape.c, shape.o, shape.k, shape.stride, shape.name, engine=eng, **kw).double()
    return m


def run(m, x, g, need_x_grad=True):
    x = x.clone().requires_grad_(need_x_grad)
    y = m(x)
    y.backward(g)
    return y.detach(), (x.grad if need_x_grad else None), m.weight.grad.clone()


def np_q(t, bits):
    q, e = fixed.quantize(t.detach().numpy(), bits)
    return q, e


def operands(shape, seed, relu=True):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape.n, shape.c, shape.h, shape.w, generator=gen, dtype=torch.float64)
    if relu:
        x = x.clamp_min(0)
    g = torch.randn(shape.n, shape.o, shape.ho, shape.wo, generator=gen, dtype=torch.float64) * 1e-3
    return x, g


@pytest.mark.parametrize("shape", LAYERS, ids=lambda s: s.name)
def test_psg_matches_reference_kernels_on_real_layers(shape):
    m = layer(shape)
    m.train()
    x, g = operands(shape, 1)
    y, gx, gw = run(m, x, g)
    xq, ex = np_q(x, 8)
    wq, ew = np_q(m.weight, 8)
    gq, eg = np_q(g, 16)
    np.testing.assert_array_equal(y.numpy(), np.ldexp(ref.conv_fwd(xq, wq, shape.stride).astype(np.float64), ex + ew))
    np.testing.assert_array_equal(gx.numpy(), np.ldexp(ref.conv_bwd_data(gq, wq, shape.stride, (shape.h, shape.w)).astype(np.float64), eg + ew))
    r = ref.conv_bwd_weight_psg(xq, gq, shape.k, shape.stride, 3277, "psg")
    np.testing.assert_array_equal(gw.numpy(), r.sign.astype(np.float64))
    st = m.layer_stats()
    assert st["psg_predicted"] == r.predicted and st["psg_weights"] == r.total
    assert 0 < r.predicted < r.total  # both branches of the choice are exercised
    assert (st["e_x"], st["e_w"], st["e_g"]) == (ex, ew, eg)


@pytest.mark.parametrize("restrict", [True, False])
def test_float32_fast_path_agrees_with_reference(restrict):
    shape = LAYERS[1]
    m = QuantConv2d(shape.c, shape.o, shape.k, shape.stride, engine=make_engine("torch", restrict=restrict))
    x, g = operands(shape, 2)
    _, gx, gw = run(m, x.float(), g.float())
    xq, _ = np_q(x.float().double(), 8)
    wq, _ = np_q(m.weight.double(), 8)
    gq, _ = np_q(g.float().double(), 16)
    r = ref.conv_bwd_weight_psg(xq, gq, shape.k, shape.stride, 3277, "psg")
    # float32 sums of up to 2**26 are not exact: signs may differ only where G is tiny
    assert np.mean(gw.numpy() == r.sign) > 0.99
    assert abs(m.layer_stats()["psg_predicted"] - r.predicted) <= 0.01 * r.total


@pytest.mark.parametrize("beta", [0.05, 0.3, 1.0])
def test_restricted_phase2_equals_full_phase2(monkeypatch, beta):
    from e2train.fabric import torch_engine

    monkeypatch.setattr(torch_engine, "_RESTRICT_MAX", 1.0)  # take the channel block whenever it is smaller
    shape = LAYERS[2]
    x, g = operands(shape, 3)
    out = []
    for restrict in (True, False):
        torch.manual_seed(0)
        m = layer(shape, beta=beta)
        m.engine.restrict = restrict
        out.append(run(m, x, g))
    for a, b in zip(*out):
        assert torch.equal(a, b)


def _msb_batch_sizes(monkeypatch):
    """Records the batch size of every G_msb weight-gradient call of the torch engine."""
    sizes = []
    conv_backward = tk.conv_backward

    def spy(g, x, w, stride, k, in_shape, need_data=True, need_weight=True):
        if w is None and not need_data and bool((g.abs() <= 512).all()):  # g_msb: int10; phase 2 has int16 g
            sizes.append(x.shape[0])
        return conv_backward(g, x, w, stride, k, in_shape, need_data, need_weight)

    monkeypatch.setattr(tk, "conv_backward", spy)
    return sizes


@pytest.mark.parametrize("shape", LAYERS[1:3], ids=lambda s: s.name)
def test_phase1_leaves_out_samples_whose_msbs_are_zero(monkeypatch, shape):
    # samples scaled to below 1/16 of the tensor's max have x_msb = 0 everywhere: phase 1 skips them,
    # and the signs, the predicted count and g_x stay those of the reference kernels (float64: exact)
    sizes = _msb_batch_sizes(monkeypatch)
    x, g = operands(shape, 6)
    x[1::2] *= 1 / 64
    m = layer(shape)
    y, gx, gw = run(m, x, g)
    assert sizes == [shape.n - shape.n // 2]  # the quiet half was left out
    xq, ex = np_q(x, 8)
    wq, ew = np_q(m.weight, 8)
    gq, eg = np_q(g, 16)
    r = ref.conv_bwd_weight_psg(xq, gq, shape.k, shape.stride, 3277, "psg")
    np.testing.assert_array_equal(gw.numpy(), r.sign.astype(np.float64))
    np.testing.assert_array_equal(gx.numpy(), np.ldexp(ref.conv_bwd_data(gq, wq, shape.stride, (shape.h, shape.w)).astype(np.float64), eg + ew))
    assert m.layer_stats()["psg_predicted"] == r.predicted and 0 < r.predicted < r.total


def test_phase1_with_every_msb_zero_predicts_nothing(monkeypatch):
    # with the "previous" exponent a quiet batch after a loud one has x_msb = 0 everywhere: no G_msb
    # call at all, no weight predicted, every sign from G_full (as the reference kernels give)
    sizes = _msb_batch_sizes(monkeypatch)
    shape = LAYERS[1]
    m = layer(shape, exponent="previous")
    x, g = operands(shape, 7)
    run(m, x, g)
    assert sizes == [shape.n]
    m.reset_stats()
    m.weight.grad = None
    x_quiet = x * (1 / 64)
    _, _, gw = run(m, x_quiet, g)
    assert sizes == [shape.n]  # no second G_msb call
    xq, _, _ = quantize_float(x_quiet, 8, m.x_exp.last_exponent)
    gq, _ = np_q(g, 16)
    r = ref.conv_bwd_weight_psg(xq.numpy().astype(np.int8), gq, shape.k, shape.stride, 3277, "psg")
    assert r.predicted == 0 and m.layer_stats()["psg_predicted"] == 0
    np.testing.assert_array_equal(gw.numpy(), r.sign.astype(np.float64))


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_g_x_identical_to_8bit_baseline(precision):
    shape = LAYERS[2]
    x, g = operands(shape, 4)
    dt = torch.float64 if precision == "float64" else torch.float32
    psg = QuantConv2d(shape.c, shape.o, shape.k, shape.stride, mode="psg", engine=make_engine("torch", precision)).to(dt)
    fx8 = QuantConv2d(shape.c, shape.o, shape.k, shape.stride, mode="fixed8", grad_bits=16, engine=make_engine("torch", precision)).to(dt)
    with torch.no_grad():
        fx8.weight.copy_(psg.weight)
    y1, gx1, gw1 = run(psg, x.to(dt), g.to(dt))
    y2, gx2, gw2 = run(fx8, x.to(dt), g.to(dt))
    assert torch.equal(y1, y2) and torch.equal(gx1, gx2)
    # the baseline's weight gradient is G_full * 2**(e_x + e_g); PSG's is a sign that agrees where not predicted
    assert set(gw1.unique().tolist()) <= {-1.0, 0.0, 1.0}
    agree = (torch.sign(gw2) == gw1).double().mean()
    assert agree > 0.5


def test_fixed8_gradients_equal_autograd_of_the_quantised_forward():
    # grad_bits = 0: float g_y; the function must give exactly the VJP of conv(Q(x), Q(w)) with
    # a straight-through quantiser (gradient check in float64 against torch autograd).
    shape = LAYERS[3]
    m = layer(shape, mode="fixed8", grad_bits=0)
    x, g = operands(shape, 5, relu=False)
    y, gx, gw = run(m, x, g)
    xd = fixed.dequantize(*np_q(x, 8))
    wd = fixed.dequantize(*np_q(m.weight, 8))
    xt = torch.from_numpy(xd).requires_grad_()
    wt = torch.from_numpy(wd).requires_grad_()
    yt = F.conv2d(xt, wt, stride=shape.stride, padding=(shape.k - 1) // 2)
    yt.backward(g)
    assert torch.equal(y, yt.detach())
    assert torch.equal(gx, xt.grad)
    assert torch.equal(gw, wt.grad)
    # with int16 g_y the baseline's gradients are those of the quantised g_y
    m16 = layer(shape, mode="fixed8", grad_bits=16)
    with torch.no_grad():
        m16.weight.copy_(m.weight)
    _, gx16, gw16 = run(m16, x, g)
    gd = torch.from_numpy(fixed.dequantize(*np_q(g, 16)))
    xt.grad = wt.grad = None
    F.conv2d(xt, wt, stride=shape.stride, padding=(shape.k - 1) // 2).backward(gd)
    assert torch.equal(gx16, xt.grad) and torch.equal(gw16, wt.grad)


@pytest.mark.parametrize("shape", LAYERS[1:3], ids=lambda s: s.name)
def test_kernels_are_adjoint_in_float64(shape):
    # <fwd(x, w), g> = <x, bwd_data(g, w)> = <w, G(x, g)>, exactly: the backward is the forward's gradient
    gen = torch.Generator().manual_seed(6)
    x = torch.randint(-128, 128, (shape.n, shape.c, shape.h, shape.w), generator=gen).double()
    w = torch.randint(-128, 128, (shape.o, shape.c, shape.k, shape.k), generator=gen).double()
    g = torch.randint(-32768, 32768, (shape.n, shape.o, shape.ho, shape.wo), generator=gen).double()
    eng = make_engine("torch", "float64")
    y = eng.forward(x, w, shape.stride, 0)
    gx, wg = eng.backward(g, x, w, shape.stride, True, "full", 0)
    a, b, c = (y * g).sum(), (x * gx).sum(), (w * wg.value).sum()
    assert a == b == c and abs(a) < 2**53


def test_first_layer_computes_no_input_gradient():
    shape = LAYERS[0]
    m = layer(shape)
    x, g = operands(shape, 7)
    _, gx, _ = run(m, x, g, need_x_grad=False)
    assert gx is None
    assert "backward_data" not in m.bit_macs()


# ------------------------------------------------------------------ hand-built statistics


def test_predictor_ratio_on_a_hand_built_case():
    # 1x1 conv, one pixel, one image: G[o,c] = g[o] * x[c]; quantisation is the identity
    # (max|x| = 127 -> e_x = 0, max|g| = 32767 -> e_g = 0).
    m = QuantConv2d(3, 2, 1, 1, beta=0.05, engine=make_engine("torch", "float64")).double()
    x = torch.tensor([127.0, 16.0, 7.0], dtype=torch.float64).view(1, 3, 1, 1)
    g = torch.tensor([32767.0, -64.0], dtype=torch.float64).view(1, 2, 1, 1)
    _, _, gw = run(m, x, g)
    # x_msb = [7 (saturated), 1, 0]; g_msb = [511 (saturated), -1]; G_msb = [[3577, 511, 0], [-7, -1, 0]]; max 3577.
    # confident iff |G_msb| * 65536 >= 3277 * 3577 (i.e. |G_msb| >= 178.9): 3577 and 511 only.
    assert m.layer_stats()["psg_predicted"] == 2
    # the rest take sgn(G_full): G_full[1] = -64 * [127, 16, 7] -> -1; G_full[0, 2] = 32767 * 7 -> +1
    assert gw.view(2, 3).tolist() == [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]
    assert m.layer_stats()["psg_predicted_ratio"] == 2 / 6
    # a second step adds up: predicted and weights accumulate
    run(m, x, g)
    st = m.layer_stats()
    assert (st["psg_predicted"], st["psg_weights"], st["psg_last_ratio"]) == (4, 12, 2 / 6)
    # MACs by width: 6 weights x 1 pixel each; 4 fell back per step
    macs = m.bit_macs()
    assert macs["forward"] == {"8x8": 12}
    assert macs["backward_data"] == {"16x8": 12}
    assert macs["backward_weight"] == {"4x10": 12, "8x16": 8}


def test_zero_predictor_never_takes_the_predicted_sign():
    # |x| < 16 everywhere: x >> 4 is 0 or -1; a G_msb of 0 must fall back even at beta = 0
    m = QuantConv2d(2, 1, 1, 1, beta=0.0, engine=make_engine("torch", "float64")).double()
    x = torch.tensor([127.0, 5.0], dtype=torch.float64).view(1, 2, 1, 1)
    g = torch.tensor([-32767.0], dtype=torch.float64).view(1, 1, 1, 1)
    _, _, gw = run(m, x, g)
    # x >> 4 = [7, 0]: G_msb = [-3577, 0]; the zero falls back to sgn(-32767 * 5) = -1
    assert gw.view(-1).tolist() == [-1.0, -1.0]
    assert m.layer_stats()["psg_predicted"] == 1


def test_saturation_counter_with_the_previous_exponent_policy():
    t = ExponentTracker(8, "previous")
    q, e = t(torch.tensor([1.0, -2.0, 127.0]))  # first call: own max -> e = 0, nothing saturates
    assert e == 0 and q.tolist() == [1.0, -2.0, 127.0] and t.saturated == 0
    q, e = t(torch.tensor([200.0, -300.0, 5.0, 127.4]))  # e from the previous max (127): 0
    assert e == 0 and q.tolist() == [127.0, -128.0, 5.0, 127.0]
    assert (t.saturated, t.total) == (2, 7)
    q, e = t(torch.tensor([1.0]))  # previous max 300 -> e = 2: 1/4 rounds half up to 0
    assert e == 2 and q.tolist() == [0.0] and t.saturated == 2
    with pytest.raises(ValueError, match="policy"):
        ExponentTracker(8, "guess")


def test_layer_counts_saturation_per_tensor():
    m = QuantConv2d(1, 1, 1, 1, exponent="previous", engine=make_engine("torch", "float64")).double()
    run(m, torch.full((1, 1, 2, 2), 1.0, dtype=torch.float64), torch.full((1, 1, 2, 2), 1.0, dtype=torch.float64))
    run(m, torch.tensor([[[[4.0, 1.0], [0.5, 2.0]]]], dtype=torch.float64), torch.full((1, 1, 2, 2), 1.0, dtype=torch.float64))
    st = m.layer_stats()
    # step 1 fixes e_x for max 1.0; step 2's 4.0 and 2.0 exceed 127 * 2**e_x and saturate
    assert (st["x_saturated"], st["x_total"], st["g_saturated"], st["g_total"]) == (2, 8, 0, 8)


def test_contract_exponent_never_saturates_and_quantises_like_fixed():
    gen = torch.Generator().manual_seed(8)
    for dt in (torch.float32, torch.float64):
        for scale in (1e-30, 1e-3, 1.0, 1e5):
            x = torch.randn(10000, generator=gen, dtype=torch.float64).to(dt) * scale
            for bits in (8, 16):
                q, e, sat = quantize_float(x, bits)
                qr, er = fixed.quantize(x.numpy(), bits)
                assert sat == 0 and e == er and torch.equal(q.long(), torch.from_numpy(qr).long())


def test_quantisation_is_exact_on_every_rounding_edge():
    for dt in (torch.float32, torch.float64):
        base = torch.arange(-600, 600, dtype=dt) / 4
        near = [base, torch.nextafter(base, base + 1), torch.nextafter(base, base - 1),
                torch.nextafter(torch.tensor([0.5, -0.5], dtype=dt), torch.zeros(2, dtype=dt))]
        v = torch.cat(near)
        for e in (-124, -20, 0, 9, 100):
            x = v * 2.0**e
            if not torch.isfinite(x).all():
                continue
            q, _, _ = quantize_float(x, 16, e)
            qr, _ = fixed.quantize(x.numpy(), 16, e)
            assert torch.equal(q.long(), torch.from_numpy(qr).long()), (dt, e)
        # the one value that floor(v + 1/2) gets wrong is present and fixed
        bad = torch.nextafter(torch.tensor(0.5, dtype=dt), torch.tensor(0.0, dtype=dt)).view(1)
        assert quantize_float(bad, 16, 0)[0].item() == 0.0
        assert quantize_float(bad, 16, 0, exact=False)[0].item() == 1.0  # what the fast path skips


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mode"):
        QuantConv2d(1, 1, 3, 1, mode="int4")
    with pytest.raises(ValueError, match="grad_bits"):
        QuantConv2d(1, 1, 3, 1, grad_bits=8)
    with pytest.raises(ValueError, match="PSG needs int16"):
        QuantConv2d(1, 1, 3, 1, mode="psg", grad_bits=0)
    with pytest.raises(ValueError, match="k in"):
        QuantConv2d(1, 1, 5, 1)
    with pytest.raises(ValueError, match="precision"):
        make_engine("torch", "float16")
    with pytest.raises(ValueError, match="int16 gradients only"):
        QuantConv2d(1, 1, 3, 1, mode="fixed8", grad_bits=0, engine=make_engine("reference"))
    m = QuantConv2d(1, 1, 3, 1)
    with pytest.raises(FloatingPointError, match="inf"):
        m(torch.tensor([[[[float("inf")]]]]))


def test_contract_msbs_remove_the_floor_bias_of_the_v1_ablation():
    # one pixel, g_y of -1 in the int16 grid (tiny, negative) against x = 127: v1's floor (the
    # msb = "floor" ablation) makes g >> 6 = -1 and predicts a confident negative sign from noise;
    # the contract's (v2) rounding to nearest gives 0
    x = torch.tensor([127.0], dtype=torch.float64).view(1, 1, 1, 1)
    g = torch.tensor([32767.0, -1.0], dtype=torch.float64).view(1, 2, 1, 1)
    out = {}
    for msb in ("floor", "nearest"):
        m = QuantConv2d(1, 2, 1, 1, beta=0.0, engine=make_engine("torch", "float64", msb=msb)).double()
        _, _, gw = run(m, x, g)
        out[msb] = (gw.view(-1).tolist(), m.layer_stats()["psg_predicted"])
    assert out["floor"] == ([1.0, -1.0], 2)  # G_msb = [7*511, 7*(-1)]: both predicted
    assert out["nearest"] == ([1.0, -1.0], 1)  # (-1+32)>>6 = 0: the second falls back to sgn(G_full)
    # rounding saturates at the MSB width: (127+8)>>4 = 8 -> 7, (32767+32)>>6 = 512 -> 511
    eng = make_engine("torch", "float64", msb="nearest")
    assert eng._msb(torch.tensor([127.0, -128.0]), 8, 4).tolist() == [7.0, -8.0]
    assert eng._msb(torch.tensor([32767.0, -32768.0, 31.0, 32.0]), 16, 10).tolist() == [511.0, -512.0, 0.0, 1.0]
    assert make_engine("torch").msb == "nearest"  # the contract is the default
    with pytest.raises(ValueError, match="contract v2's MSBs"):
        make_engine("reference", msb="floor")
    make_engine("reference", msb="nearest").close()
    with pytest.raises(ValueError, match="msb must be"):
        make_engine("torch", msb="up")


def test_unsigned_x_experiment_doubles_the_resolution_of_post_relu_inputs():
    # x = 6 after a ReLU (a second sample of 127 fixes the grid): v2's min((6 + 8) >> 4, 7) = 0 predicts
    # nothing; the torch-only experiment's min((6 + 4) >> 3, 15) = 1 predicts the sign of g_y, which
    # only the first sample carries. A tensor holding a negative value keeps v2.
    g = torch.tensor([32767.0, -32767.0], dtype=torch.float64).view(1, 2, 1, 1)
    out = {}
    for msb, xs in (("nearest", [6.0, 127.0]), ("unsigned_x", [6.0, 127.0]), ("unsigned_x", [6.0, -127.0])):
        x = torch.tensor(xs, dtype=torch.float64).view(2, 1, 1, 1)
        m = QuantConv2d(1, 2, 1, 1, beta=0.0, engine=make_engine("torch", "float64", msb=msb)).double()
        _, _, gw = run(m, x, torch.cat([g, torch.zeros_like(g)]))
        out[msb, xs[1]] = (gw.view(-1).tolist(), m.layer_stats()["psg_predicted"])
    assert out["nearest", 127.0] == ([1.0, -1.0], 0)
    assert out["unsigned_x", 127.0] == ([1.0, -1.0], 2)
    assert out["unsigned_x", -127.0] == ([1.0, -1.0], 0)
    # the rule itself, saturation included
    eng = make_engine("torch", "float64", msb="unsigned_x")
    assert eng._msb(torch.tensor([0.0, 3.0, 4.0, 11.0, 12.0, 123.0, 124.0, 127.0]), 8, 5).tolist() == [0, 0, 1, 1, 2, 15, 15, 15]
    with pytest.raises(ValueError, match="contract v2's MSBs"):
        make_engine("reference", msb="unsigned_x")


def test_evaluation_passes_leave_the_previous_exponent_alone():
    m = QuantConv2d(1, 1, 1, 1, exponent="previous", engine=make_engine("torch", "float64")).double()
    run(m, torch.full((1, 1, 2, 2), 1.0, dtype=torch.float64), torch.ones(1, 1, 2, 2, dtype=torch.float64))
    m.eval()
    with torch.no_grad():
        m(torch.full((1, 1, 2, 2), 100.0, dtype=torch.float64))
    m.train()
    assert m.x_exp.previous_max == 1.0 and m.layer_stats()["x_total"] == 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float32_layer_agrees_with_the_exact_cpu_layer():
    shape = LAYERS[2]
    x, g = operands(shape, 9)
    exact = layer(shape)
    fast = QuantConv2d(shape.c, shape.o, shape.k, shape.stride, engine=make_engine("torch")).cuda()
    with torch.no_grad():
        fast.weight.copy_(exact.weight.float())
    _, gx64, gw64 = run(exact, x, g)
    _, gx32, gw32 = run(fast, x.float().cuda(), g.float().cuda())
    assert (gw32.cpu().double() == gw64).double().mean() > 0.99  # phase 2 whole on CUDA, TF32 off
    assert torch.allclose(gx32.cpu().double(), gx64, rtol=1e-5, atol=1e-12)
