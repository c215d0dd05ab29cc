"""The integer CPU engine (e2train.cpu): its kernels and its quantisation bit for bit against the reference,
in both builds (native: AVX2 / VNNI on this machine where it has them; portable: plain C++), and training
through it bit-identical to the torch engine in float64."""


import numpy as np
import pytest
import torch

from e2train import fixed
from e2train.cpu.engine import CpuEngine
from e2train.cpu.fabric import CpuFabric
from e2train.cpu.library import load
from e2train.data import make_synthetic
from e2train.fabric import get_fabric
from e2train.fabric.base import out_size
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import run_selftest
from e2train.psg import make_conv_factory
from e2train.psg.engines import TorchEngine, make_engine, resolve_backend
from e2train.psg.quant import quantize_float
from operands import FILLS, fill
from tiny_runs import train_tiny

VARIANTS = ("native", "portable")
REF = ReferenceFabric()
BETAS = (0, 1, 3277, 30000, 65536)


@pytest.fixture(scope="module", params=VARIANTS)
def fab(request):
    return CpuFabric(request.param)


def test_builds_differ_where_they_should():
    native, portable = load("native"), load("portable")
    assert portable.simd == "portable C++"
    flags = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    if " avx2" in flags:
        assert native.simd.startswith("AVX2")
    assert native.lib._name != portable.lib._name


def _layer(rng, n, c, o, h, w, k, s, kx, kg, kw="rand"):
    x = fill(rng, kx, (n, c, h, w), np.int8)
    wt = fill(rng, kw, (o, c, k, k), np.int8)
    g = fill(rng, kg, (n, o, out_size(h, k, s), out_size(w, k, s)), np.int16)
    return x, wt, g


def _check_all(fab, x, w, g, k, s):
    h, wd = x.shape[2:]
    assert np.array_equal(fab.conv_fwd(x, w, s), REF.conv_fwd(x, w, s))
    gx = fab.conv_bwd_data(g, w, s, (h, wd))
    assert gx.dtype == np.int64 and np.array_equal(gx, REF.conv_bwd_data(g, w, s, (h, wd)))
    full = fab.conv_bwd_weight_psg(x, g, k, s, 0, "full")
    assert np.array_equal(full.g_full, REF.conv_bwd_weight_psg(x, g, k, s, 0, "full").g_full)
    for beta in BETAS:
        a, b = fab.conv_bwd_weight_psg(x, g, k, s, beta), REF.conv_bwd_weight_psg(x, g, k, s, beta)
        assert np.array_equal(a.g_msb, b.g_msb) and a.max_abs_msb == b.max_abs_msb
        assert np.array_equal(a.sign, b.sign) and a.predicted == b.predicted, beta


@pytest.mark.parametrize("k", (1, 3))
@pytest.mark.parametrize("s", (1, 2))
def test_kernels_equal_reference_on_random_layers(fab, k, s):
    """Odd and tiny sizes (1x1 images, one channel, batch 1), channel counts off the register blocks,
    every operand fill: random, all most-negative, all max, zeros, sparse, MSB ties and saturated band."""
    rng = np.random.default_rng(100 * k + s)
    shapes = [(1, 1, 1, 1, 1), (1, 3, 5, 7, 7), (2, 7, 13, 9, 5), (3, 16, 16, 8, 8), (1, 19, 6, 11, 4), (2, 9, 33, 3, 6)]
    for i, (n, c, o, h, w) in enumerate(shapes):
        kx, kg = FILLS[i % len(FILLS)], FILLS[(i * 5 + 3) % len(FILLS)]
        _check_all(fab, *_layer(rng, n, c, o, h, w, k, s, kx, kg), k, s)


def test_kernels_equal_reference_on_msb_edges_and_extremes(fab):
    rng = np.random.default_rng(7)
    for kx, kg, kw in (("edges", "edges", "rand"), ("min", "min", "min"), ("max", "min", "max"), ("edges", "max", "min")):
        for k, s in ((3, 1), (3, 2), (1, 2)):
            _check_all(fab, *_layer(rng, 2, 5, 6, 9, 8, k, s, kx, kg, kw), k, s)


def test_long_sums_are_cut_before_32_bits(fab):
    """Backward data over 600 output channels (more than one 32-bit pass) and a weight gradient over
    4,900 positions of one sample (more than one 32-bit run), with the most negative operands."""
    rng = np.random.default_rng(3)
    x, w, g = _layer(rng, 1, 2, 600, 3, 3, 3, 1, "rand", "min", "min")
    h = x.shape[2]
    assert np.array_equal(fab.conv_bwd_data(g, w, 1, (h, h)), REF.conv_bwd_data(g, w, 1, (h, h)))
    x, w, g = _layer(rng, 1, 1, 2, 70, 70, 3, 1, "min", "min")
    assert np.array_equal(fab.conv_bwd_weight_psg(x, g, 3, 1, 0, "full").g_full,
                          REF.conv_bwd_weight_psg(x, g, 3, 1, 0, "full").g_full)
    a, b = fab.conv_bwd_weight_psg(x, g, 3, 1, 3277), REF.conv_bwd_weight_psg(x, g, 3, 1, 3277)
    assert np.array_equal(a.g_msb, b.g_msb)


def test_sample_groups_and_parity_planes(fab):
    """The shifted-plane schedule's own cases: weight gradients over several sample groups with a short
    last one and left-out samples among them, stride-2 parity planes of odd sizes (3x3 and 1x1)."""
    rng = np.random.default_rng(5)
    for n, c, o, h, w, k, s in ((40, 8, 8, 16, 16, 3, 1), (60, 6, 10, 15, 13, 3, 2), (50, 16, 16, 12, 11, 1, 2)):
        x, wt, g = _layer(rng, n, c, o, h, w, k, s, "rand", "rand")
        x[::3] = 0  # all-zero x_msb: left out of phase 1
        _check_all(fab, x, wt, g, k, s)


def test_resnet20_layer_equals_reference():
    """A real stage-2 layer of ResNet-20 (several sample groups, both threads)."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 128, size=(24, 32, 16, 16), dtype=np.int8)
    x[rng.random(x.shape) < 0.6] = 0
    w = rng.integers(-128, 128, size=(32, 32, 3, 3), dtype=np.int8)
    g = rng.integers(-2000, 2000, size=(24, 32, 16, 16), dtype=np.int16)
    _check_all(CpuFabric(), x, w, g, 3, 1)


def test_selftest_passes_through_get_fabric():
    fab = get_fabric("cpu")
    assert fab.name == "cpu"
    assert run_selftest(fab, np.random.default_rng(0)) == []


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_quantize_equals_the_contract(variant, dtype):
    """Round half up at every tie, the value just below 1/2, saturation with a given exponent (counted),
    the exponent far out of float32's normal range: the same integers as quant.quantize_float and fixed."""
    lib = load(variant)
    gen = torch.Generator().manual_seed(1)
    ties = (torch.arange(-300, 300, dtype=dtype) + 0.5) * 2.0**-3
    below = torch.nextafter(torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype)) * torch.tensor([1.0, -1.0], dtype=dtype)
    x = torch.cat([ties, below * 2.0**-3, torch.randn(5000, generator=gen, dtype=dtype) * 7, torch.tensor([0.0, -0.0], dtype=dtype)])
    for bits in (8, 16):
        for e in (None, -3, -6, 2):
            want, e_used, sat = quantize_float(x, bits, e)
            q, n_sat = lib.quantize(x, bits, e_used)
            assert q.dtype == (torch.int8 if bits == 8 else torch.int16)
            assert torch.equal(q.to(dtype), want), (bits, e)
            assert n_sat == sat
            ref = fixed.quantize(x.double().numpy(), bits, e_used)[0]
            assert np.array_equal(q.numpy(), ref)
    tiny = torch.tensor([3e-30, -3e-30, 1e-30 * 2**100 * 0.5], dtype=dtype)
    q, _ = lib.quantize(tiny, 8, -130)
    assert np.array_equal(q.numpy(), fixed.quantize(tiny.double().numpy(), 8, -130)[0])


def test_engine_matches_torch_float64_engine_on_float_operands():
    """The TorchEngine interface: integer-valued float operands in, the same tensors out."""
    rng = np.random.default_rng(5)
    cpu, t64 = CpuEngine(), TorchEngine("float64")
    for k, s, need in ((3, 1, True), (3, 2, False), (1, 2, True)):
        x, w, g = (torch.from_numpy(a.astype(np.float32)) for a in _layer(rng, 3, 6, 10, 9, 9, k, s, "edges", "edges"))
        assert torch.equal(cpu.forward(x, w, s, -9), t64.forward(x, w, s, -9))
        for mode in ("psg", "full"):
            gx_a, wa = cpu.backward(g, x, w, s, need, mode, 3277, -20)
            gx_b, wb = t64.backward(g, x, w, s, need, mode, 3277, -20)
            assert (gx_a is None) == (not need) and (gx_b is None) == (not need)
            if need:
                assert gx_a.dtype == torch.float32 and torch.equal(gx_a, gx_b)
            assert torch.equal(wa.value, wb.value) and int(wa.predicted) == int(wb.predicted)


def test_backend_choice():
    assert resolve_backend("auto") == ("torch" if torch.cuda.is_available() else "cpu")
    assert resolve_backend("auto", msb="floor") == "torch"
    assert resolve_backend("auto", restrict=False) == "torch"
    assert resolve_backend("auto", "float32") == "torch"
    assert resolve_backend("csim") == "csim"
    assert make_engine("cpu").name == "cpu"
    assert make_conv_factory(mode="fixed8", grad_bits=0, backend="auto").engine.name == "torch"
    # the default is auto: the integer engine on a CPU machine, faster per step there (docs/psg.md)
    assert make_conv_factory().engine.name == ("torch" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="torch-engine ablation"):
        make_engine("cpu", msb="floor")
    with pytest.raises(ValueError, match="precision"):
        make_engine("cpu", "float32")


def _train(tmp_path, data, conv_options, name):
    t, losses, report = train_tiny(tmp_path, data, conv_options, name, iterations=3, batch=8, eval_batch=16)
    return t.model, losses, report


@pytest.mark.parametrize("exponent", ("max", "previous"))
def test_training_is_bit_identical_to_torch_float64(tmp_path, exponent):
    """Losses, every weight and BN statistic, the predictor counts and the saturation counters (the
    ``previous`` policy saturates) agree with the torch engine in float64."""
    data = (make_synthetic(24, seed=1), make_synthetic(16, seed=2), 10)
    a, la, ra = _train(tmp_path, data, f'{{backend="torch", precision="float64", exponent="{exponent}"}}', "torch64")
    b, lb, rb = _train(tmp_path, data, f'{{backend="cpu", exponent="{exponent}"}}', "cpu")
    assert len(la) == 3 and la == lb
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        if isinstance(sa[k], torch.Tensor):
            assert torch.equal(sa[k], sb[k]), k
    assert ra["psg_predicted_ratio"] == rb["psg_predicted_ratio"] and ra["top1"] == rb["top1"]
    assert a.layer_stats() == b.layer_stats()
    assert next(m.engine for m in b.modules() if hasattr(m, "engine")).name == "cpu"
