"""The energy model (docs/energy.md): operation and traffic counts per layer and phase at their bit
widths, energy tables (Horowitz 45 nm, ZedBoard estimates, TOML-calibrated), run reports, Table 3."""

from .counts import PHASES, PhaseCount, Schedule, layer_counts, model_convs, network_counts
from .model import Estimate, baseline_schedule, estimate_counts, estimate_run
from .tables import HOROWITZ45, TABLES, ZEDBOARD, EnergyTable, load_table

__all__ = [
    "Estimate", "EnergyTable", "HOROWITZ45", "PHASES", "PhaseCount", "Schedule", "TABLES", "ZEDBOARD",
    "baseline_schedule", "estimate_counts", "estimate_run", "layer_counts", "load_table", "model_convs",
    "network_counts",
]
