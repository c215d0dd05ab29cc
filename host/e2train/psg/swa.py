"""Stochastic weight averaging (Izmailov et al. 2018) through ``torch.optim.swa_utils``.

The averaged weights are snapshots of the model taken at ``samples`` evenly spaced iterations over the
last ``1 - start`` of the schedule. Before the final evaluation they replace the model's weights and
the BatchNorm statistics are recomputed for them (``swa_utils.update_bn``) on training batches: an
average of weights is a new network whose activations the old running statistics do not describe.
"""

from __future__ import annotations

import math

import torch
from torch.optim import swa_utils


def snapshot_iterations(total: int, start: float, samples: int) -> list[int]:
    """Iteration counts (after the step) at which to average: evenly spaced, the last one ``total``."""
    if not 0.0 <= start < 1.0:
        raise ValueError(f"swa_start must be in [0, 1), got {start}")
    if samples < 1:
        raise ValueError(f"swa_samples must be >= 1, got {samples}")
    first = int(round(start * total))
    span = total - first
    if span <= 0:
        return [total]
    return sorted({first + math.ceil((j + 1) * span / samples) for j in range(samples)})


class SwaAverager:
    """Keeps the running average of a model's parameters and swaps it in before evaluation."""

    def __init__(self, model: torch.nn.Module, total: int, start: float = 0.75, samples: int = 20, bn_batches: int = 0):
        self.at = set(snapshot_iterations(total, start, samples))
        self.bn_batches = bn_batches
        self.averaged = swa_utils.AveragedModel(model)

    @property
    def n_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def after_iteration(self, model: torch.nn.Module, iteration: int) -> bool:
        if iteration in self.at:
            self.averaged.update_parameters(model)
            return True
        return False

    def swap_in(self, model: torch.nn.Module, batches) -> None:
        """Copy the averaged parameters into ``model`` and recompute its BN statistics on ``batches``."""
        if self.n_averaged == 0:
            raise RuntimeError("SWA has averaged no snapshot yet")
        with torch.no_grad():
            for p, avg in zip(model.parameters(), self.averaged.module.parameters()):
                p.copy_(avg)
        swa_utils.update_bn(batches, model)

    def state_dict(self) -> dict:
        return {"averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state["averaged"])
