"""The energy model's counts against a hand count of a tiny network, and its energies by hand."""

import pytest

from e2train.energy.counts import Schedule, layer_counts, model_convs, network_counts
from e2train.energy.model import estimate_counts, estimate_run, baseline_schedule
from e2train.energy.tables import HOROWITZ45
from e2train.contract import ConvShape

STEM = ConvShape("conv1", n=2, c=3, o=4, h=5, w=5, k=3, stride=1)
BLOCK = ConvShape("layer1.0.conv1", n=2, c=4, o=4, h=5, w=5, k=3, stride=2)


def hand_macs(s):
    """Count the multiply-accumulates of a dense conv by walking every output and tap (padding included)."""
    pad = (s.k - 1) // 2
    n = 0
    for _ in range(s.n):
        for _ in range(s.o):
            for oh in range(0, s.h + 2 * pad - s.k + 1, s.stride):
                for ow in range(0, s.w + 2 * pad - s.k + 1, s.stride):
                    n += s.c * s.k * s.k
    return n


def test_macs_match_a_hand_count():
    assert hand_macs(STEM) == 2 * 4 * 5 * 5 * 3 * 9 == 5400
    assert hand_macs(BLOCK) == 2 * 4 * 3 * 3 * 4 * 9 == 2592  # 5x5 at stride 2 -> 3x3
    for s in (STEM, BLOCK):
        for c in layer_counts(s, "fp32"):
            assert c.macs == hand_macs(s)


def test_traffic_by_hand_fixed8_and_psg():
    fwd, bwd, wgt = layer_counts(STEM, "fixed8")
    x, w, y = 2 * 3 * 5 * 5, 4 * 3 * 3 * 3, 2 * 4 * 5 * 5  # 150, 108, 200 elements
    assert fwd.offchip_bits == 8 * x + 8 * w + 32 * y == 8464
    assert bwd.offchip_bits == 16 * y + 8 * w + 64 * x
    assert wgt.offchip_bits == 8 * x + 16 * y + 64 * w
    assert (fwd.onchip_bits, bwd.onchip_bits, wgt.onchip_bits) == (16 * 5400, 24 * 5400, 24 * 5400)
    *_, psg = layer_counts(STEM, "psg", predicted_ratio=0.75)
    ops = {(o.kind, o.bits): 0 for o in psg.ops}
    for o in psg.ops:
        ops[(o.kind, o.bits)] += o.count
    # predictor on every MAC; a quarter of them fall back to the three remaining partial products
    assert ops == {("int_mult", (4, 10)): 5400 + 1350, ("int_add", (32,)): 5400, ("int_mult", (4, 6)): 2 * 1350,
                   ("int_add", (48,)): 3 * 1350}
    assert psg.offchip_bits == (8 * x + 16 * y) * 1.25 + 8 * w


def test_energy_by_hand_with_horowitz():
    *_, psg = layer_counts(STEM, "psg", predicted_ratio=0.75)
    est = estimate_counts([psg], HOROWITZ45)
    mult_4x10, mult_4x6 = 0.2 * 40 / 64, 0.2 * 24 / 64  # pJ: 8x8 = 0.2 scaled by the operand-width product
    add_32, add_48 = 0.1, 0.1 + 16 * (0.1 - 0.03) / 24  # pJ: linear in width through 8 -> 0.03, 32 -> 0.1
    hand = 5400 * (mult_4x10 + add_32) + 1350 * (2 * mult_4x6 + mult_4x10 + 3 * add_48)
    assert est.phases[0].compute_j == pytest.approx(hand * 1e-12)
    assert est.phases[0].offchip_j == pytest.approx(psg.offchip_bits / 64 * 1950e-12)
    fp = estimate_counts(layer_counts(STEM, "fp32")[:1], HOROWITZ45)
    assert fp.phases[0].compute_j == pytest.approx(5400 * (3.7 + 0.9) * 1e-12)
    assert fp.phases[0].onchip_j == pytest.approx(5400 * 20e-12)  # two 32-bit operands = one 64-bit read


def test_slu_scales_block_layers_only_and_smd_scales_iterations():
    sched = Schedule("fixed8", iterations=100, smd_drop=0.5, slu_executed_ratio=0.6)
    counts = network_counts([STEM, BLOCK], sched)
    by_layer = {c.layer: c.macs for c in counts if c.phase == "forward"}
    assert by_layer == {"conv1": 5400, "layer1.0.conv1": pytest.approx(0.6 * 2592)}
    est = estimate_counts(counts, HOROWITZ45, sched.executed_iterations)
    assert est.iterations == 50 and est.macs == pytest.approx(50 * 3 * (5400 + 0.6 * 2592))


def test_resnet20_forward_macs_are_the_known_figure():
    macs = sum(s.macs for s in model_convs("resnet20", batch=1))
    assert 40.5e6 < macs < 42e6  # 40.6 M for the convs, plus the 1x1 projection shortcuts


def test_whole_run_without_training_saves_against_sgd():
    sched = Schedule("psg", 85333, 0.5, 0.6, 0.6, baseline_iterations=64000)
    est = estimate_run("resnet20", sched, HOROWITZ45, batch=128)
    base = estimate_run("resnet20", baseline_schedule(sched), HOROWITZ45, batch=128)
    assert base.iterations == 64000 and est.iterations == pytest.approx(42666.5)
    assert 0.0 < est.joules < base.joules
    with pytest.raises(ValueError, match="6n\\+2"):
        model_convs("resnet21")
    with pytest.raises(ValueError, match="precision"):
        layer_counts(STEM, "int4")
