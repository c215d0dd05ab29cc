"""The optimizer plug-in point: ``optimizer_factory(model, cfg) -> torch.optim.Optimizer``.

The loop sets every param group's ``lr`` each iteration to ``group["initial_lr"] * schedule factor``, so
a plug-in optimizer (PSG: sign updates) only has to read ``group["lr"]`` in its ``step()``. If the
optimizer has a ``layer_stats()`` method, its per-layer statistics are logged and put in report.json
next to those of the conv layers. The PSG optimizer also carries its parsed options (``run_options``), from which
``training.setup.build_callbacks`` lists SWA and the bit-width report: the loop calls them, the optimizer
itself only steps.
"""

from __future__ import annotations

import math

from typing import Callable

import torch

from ..checkpoint import CheckpointError
from ..errors import ConfigError
from ..models.convs import resolve_callable


def sgd_factory(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    o = cfg["optim"]
    if o["options"]:
        raise ConfigError(f"optim.options are not used by plain SGD (optim.name = \"sgd\"), got {sorted(o['options'])}")
    return torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"], nesterov=o["nesterov"])


OPTIMIZER_FACTORIES: dict[str, Callable] = {"sgd": sgd_factory}


def register_optimizer_factory(name: str, factory: Callable) -> None:
    OPTIMIZER_FACTORIES[name] = factory


def optimizer_factory_for(cfg: dict) -> Callable:
    """The factory that ``optim.name`` names (ConfigError when there is none)."""
    try:
        return resolve_callable(cfg["optim"]["name"], OPTIMIZER_FACTORIES, "optimizer")
    except ValueError as exc:
        raise ConfigError(f"optim.name: {exc}") from None


def make_optimizer(model: torch.nn.Module, cfg: dict, factory: Callable | None = None) -> torch.optim.Optimizer:
    """``factory`` (default: ``optim.name``'s) applied to the model; every group remembers its initial lr."""
    try:
        opt = (factory or optimizer_factory_for(cfg))(model, cfg)
    except (ConfigError, CheckpointError):
        raise
    except ValueError as exc:  # torch's own checks (a negative lr, ...) and a factory's options
        raise ConfigError(f"optim: {exc}") from None
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])
    return opt


def lr_factor(iteration: int, total: int, steps, decay: float, kind: str = "step", warmup: float = 0.0,
              hold_from: float = 1.0, hold_lr: float = 0.0) -> float:
    """Multiplier of the initial lr at ``iteration`` of ``total``.

    ``step``: times ``decay`` at each fraction in ``steps`` (the paper's schedule, made for 64k iterations).
    ``cosine``: half a cosine from 1 to ``hold_lr`` between the warm-up and ``hold_from``; short
    schedules (a few thousand iterations) reach a much better accuracy with it than with two steps,
    which spend half the run at the top lr.
    ``warmup`` (a fraction of ``total``) ramps linearly from 1/warmup_iterations up to the schedule.
    From ``hold_from`` (a fraction of ``total``; 1.0: never) the factor stays at ``hold_lr``: SWA
    averages its snapshots at a constant lr (Izmailov et al.; SWALP), not over an annealed tail.
    """
    n_warm = int(round(warmup * total))
    n_hold = int(round(hold_from * total))
    if iteration < n_warm:
        return (iteration + 1) / n_warm
    if iteration >= n_hold:
        return hold_lr
    if kind == "cosine":
        span = max(n_hold - n_warm, 1)
        return hold_lr + (1.0 - hold_lr) * 0.5 * (1.0 + math.cos(math.pi * (iteration - n_warm) / span))
    return decay ** sum(1 for f in steps if iteration >= int(round(f * total)))
