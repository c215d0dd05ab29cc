"""Operation and memory-traffic counts per conv layer and training phase, at their bit widths.

A training iteration of one conv layer has three phases, each with as many MACs as the forward pass
(``ConvShape.macs``; padded taps included, as dense hardware computes them):

============== ================================ ================================ ==============================
phase          fp32 (the SGD baseline)          fixed8 (8-bit, full gradients)   psg (E2-Train)
============== ================================ ================================ ==============================
forward        fp32 mult + fp32 add             int8 x int8, int32 add            as fixed8
backward_data  fp32 mult + fp32 add             int16 x int8, 48-bit add          as fixed8
backward_weight fp32 mult + fp32 add            int8 x int16, 48-bit add          every MAC: int4 x int10 + int32 add
                                                                                  (the predictor); the fraction
                                                                                  (1 - predicted) of weights that
                                                                                  fall back: the other three partial
                                                                                  products 4x6, 4x10, 4x6 + three
                                                                                  48-bit adds
============== ================================ ================================ ==============================

Memory traffic per phase: off-chip (DRAM) reads each input tensor once and writes the output once
at the width it is stored (int32 forward accumulators, int64 backward accumulators, int8 signs);
on-chip, every MAC reads its two operands from the local buffer (no register reuse assumed: an
upper bound that ``onchip_reuse`` divides). PSG's fall-back pass re-reads x and g for its fraction.
Host-side work (BN, ReLU, pooling, the classifier, the SLU gates) is not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..contract import PHASES, ConvShape
PRECISIONS = ("fp32", "fixed8", "psg")


@dataclass(frozen=True)
class OpCount:
    """``count`` operations of one kind: ('int_mult', a, b), ('int_add', bits), ('fp_mult', 32), ..."""

    kind: str
    bits: tuple[int, ...]
    count: float


@dataclass
class PhaseCount:
    layer: str
    phase: str
    macs: float
    ops: list[OpCount] = field(default_factory=list)
    offchip_bits: float = 0.0
    onchip_bits: float = 0.0
    by_width: dict[str, float] = field(default_factory=dict)  # "8x8" -> MACs at those operand widths


def _mac(kind: str, a: int, b: int, acc: int, n: float) -> list[OpCount]:
    if kind == "fp":
        return [OpCount("fp_mult", (a,), n), OpCount("fp_add", (a,), n)]
    return [OpCount("int_mult", (a, b), n), OpCount("int_add", (acc,), n)]


def layer_counts(s: ConvShape, precision: str = "psg", predicted_ratio: float = 0.0,
                 onchip_reuse: float = 1.0, scale: float = 1.0) -> list[PhaseCount]:
    """Counts of one iteration of one layer; ``scale`` multiplies everything (SLU execution ratio)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not 0.0 <= predicted_ratio <= 1.0:
        raise ValueError(f"psg predicted ratio must be in [0, 1], got {predicted_ratio}")
    macs = s.macs * scale
    x = s.n * s.c * s.h * s.w * scale
    w = s.o * s.c * s.k * s.k * scale
    y = s.n * s.o * s.ho * s.wo * scale
    out: list[PhaseCount] = []
    if precision == "fp32":
        for phase, (i1, i2, o) in zip(PHASES, ((x, w, y), (y, w, x), (x, y, w))):
            out.append(PhaseCount(s.name, phase, macs, _mac("fp", 32, 32, 32, macs), 32 * (i1 + i2 + o),
                                  64 * macs / onchip_reuse, {"fp32": macs}))
        return out
    out.append(PhaseCount(s.name, "forward", macs, _mac("int", 8, 8, 32, macs), 8 * x + 8 * w + 32 * y,
                          16 * macs / onchip_reuse, {"8x8": macs}))
    out.append(PhaseCount(s.name, "backward_data", macs, _mac("int", 16, 8, 48, macs), 16 * y + 8 * w + 64 * x,
                          24 * macs / onchip_reuse, {"16x8": macs}))
    if precision == "fixed8":
        out.append(PhaseCount(s.name, "backward_weight", macs, _mac("int", 8, 16, 48, macs),
                              8 * x + 16 * y + 64 * w, 24 * macs / onchip_reuse, {"8x16": macs}))
        return out
    fall = macs * (1.0 - predicted_ratio)
    ops = _mac("int", 4, 10, 32, macs) + [
        OpCount("int_mult", (4, 6), fall), OpCount("int_mult", (4, 10), fall), OpCount("int_mult", (4, 6), fall),
        OpCount("int_add", (48,), 3 * fall),
    ]
    offchip = (8 * x + 16 * y) * (1.0 + (1.0 - predicted_ratio)) + 8 * w
    onchip = (14 * macs + 24 * fall) / onchip_reuse
    out.append(PhaseCount(s.name, "backward_weight", macs, ops, offchip, onchip,
                          {"4x10": macs, "8x16_fallback": fall}))
    return out


def is_block_layer(name: str) -> bool:
    """Convs inside a residual block (the ones SLU can skip); the stem and head always run."""
    return name.startswith("layer") or name.startswith("blocks.")


@dataclass
class Schedule:
    """How a run trains: the precision, the iterations scheduled and the three savings knobs."""

    precision: str = "psg"
    iterations: int = 64000
    smd_drop: float = 0.0  # probability of dropping a mini-batch
    slu_executed_ratio: float = 1.0  # fraction of block computation that ran
    predicted_ratio: float = 0.0  # PSG: fraction of weights that took the predicted sign
    onchip_reuse: float = 1.0
    baseline_iterations: int | None = None  # the SGD baseline's schedule (default: the same iterations)

    @property
    def executed_iterations(self) -> float:
        return self.iterations * (1.0 - self.smd_drop)


def network_counts(convs: list[ConvShape], sched: Schedule) -> list[PhaseCount]:
    """Counts of one executed iteration of the whole network, SLU applied to the block convs."""
    out: list[PhaseCount] = []
    for s in convs:
        scale = sched.slu_executed_ratio if is_block_layer(s.name) else 1.0
        out += layer_counts(s, sched.precision, sched.predicted_ratio, sched.onchip_reuse, scale)
    return out


def model_convs(model: str, batch: int = 128, image: int = 32) -> list[ConvShape]:
    """Conv shapes of ``resnetN`` (CIFAR, 6n+2) or ``mobilenetv2``."""
    from ..fabric.networks import mobilenetv2_cifar_convs, parse_model_name, resnet_cifar_convs

    arch, depth = parse_model_name(model)
    if arch == "resnet":
        return resnet_cifar_convs(depth, batch, image)
    return mobilenetv2_cifar_convs(batch, image)
