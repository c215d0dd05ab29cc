"""Counts times an energy table: joules per layer and phase, split into compute, on-chip and off-chip."""

from __future__ import annotations

from dataclasses import dataclass, field

from .counts import PhaseCount, Schedule, model_convs, network_counts
from .tables import EnergyTable

PJ = 1e-12


@dataclass
class PhaseEnergy:
    layer: str
    phase: str
    macs: float
    compute_j: float
    onchip_j: float
    offchip_j: float

    @property
    def total_j(self) -> float:
        return self.compute_j + self.onchip_j + self.offchip_j


@dataclass
class Estimate:
    table: str
    iterations: float  # executed iterations the per-iteration figures are multiplied by
    phases: list[PhaseEnergy] = field(default_factory=list)  # per executed iteration
    static_j: float = 0.0  # static power x wall time, when a time was given

    def total(self, part: str = "total_j") -> float:
        return sum(getattr(p, part) for p in self.phases) * self.iterations + (self.static_j if part == "total_j" else 0.0)

    @property
    def joules(self) -> float:
        return self.total()

    @property
    def macs(self) -> float:
        return sum(p.macs for p in self.phases) * self.iterations

    def by_phase(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.phases:
            out[p.phase] = out.get(p.phase, 0.0) + p.total_j * self.iterations
        return out


def compute_pj(c: PhaseCount, table: EnergyTable) -> float:
    if table.mac_pj and all(k in table.mac_pj for k in c.by_width):
        return sum(table.mac_pj[k] * n for k, n in c.by_width.items())
    return sum(table.op(o.kind, *o.bits) * o.count for o in c.ops)


def estimate_counts(counts: list[PhaseCount], table: EnergyTable, iterations: float = 1.0,
                    seconds: float | None = None) -> Estimate:
    est = Estimate(table.name, iterations)
    for c in counts:
        est.phases.append(PhaseEnergy(c.layer, c.phase, c.macs, compute_pj(c, table) * PJ,
                                      c.onchip_bits / 64 * table.onchip_pj_per_64b * PJ,
                                      c.offchip_bits / 64 * table.dram_pj_per_64b * PJ))
    if seconds is not None:
        est.static_j = table.static_watts * seconds
    return est


def estimate_run(model: str, sched: Schedule, table: EnergyTable, batch: int = 128, image: int = 32,
                 seconds: float | None = None) -> Estimate:
    """A whole training run from the model and its schedule, without training."""
    counts = network_counts(model_convs(model, batch, image), sched)
    return estimate_counts(counts, table, sched.executed_iterations, seconds)


def baseline_schedule(sched: Schedule) -> Schedule:
    """The 32-bit SGD baseline of a schedule: fp32, every batch, every block, over ``baseline_iterations``
    (E2-Train's SMD runs schedule 4/3 as many iterations as the baseline they are compared with)."""
    iters = sched.baseline_iterations or sched.iterations
    return Schedule("fp32", iters, 0.0, 1.0, 0.0, sched.onchip_reuse)
