"""Trainer callbacks: what runs beside the training steps, in one list that the loop calls.

``training.setup.build_callbacks`` makes the list from the config; the loop calls, in list order:

| hook | when |
|---|---|
| ``on_train_start(trainer)`` | each ``run()`` starts (also a resumed one: ``trainer.iteration`` says where) |
| ``on_iteration_end(trainer)`` | after each iteration (``trainer.iteration`` already counts it; SMD-dropped ones too) |
| ``on_eval_start`` / ``on_eval_end(trainer)`` | around each evaluation of the loop (periodic and final) |
| ``on_train_end(trainer)`` | the schedule is done, before the final evaluation |
| ``on_counts(trainer, counts) -> dict`` | keys added to the counted work, that energy estimates read (every metric line, the report) |
| ``on_report(trainer, report) -> dict`` | keys added to report.json |
| ``state_dict()`` / ``load_state_dict(state)`` | a callback with a ``key`` keeps its state in checkpoints under it |

Every hook is a no-op on ``Callback``; a callback overrides what it needs.
"""

from __future__ import annotations

import contextlib
import math
import os

import torch


class Callback:
    key: str | None = None  # set by a callback with state to checkpoint: its name in the checkpoint

    def on_train_start(self, trainer) -> None:
        pass

    def on_iteration_end(self, trainer) -> None:
        pass

    def on_eval_start(self, trainer) -> None:
        pass

    def on_eval_end(self, trainer) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass

    def on_counts(self, trainer, counts: dict) -> dict:
        return {}

    def on_report(self, trainer, report: dict) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Callbacks:
    """The trainer's callbacks, called in order."""

    def __init__(self, items=()):
        self.items: list[Callback] = list(items)

    def __iter__(self):
        return iter(self.items)

    def get(self, cls):
        """The first callback of type ``cls``, or None."""
        return next((c for c in self.items if isinstance(c, cls)), None)

    def fire(self, hook: str, trainer) -> None:
        for c in self.items:
            getattr(c, hook)(trainer)

    def collect(self, hook: str, trainer, data: dict) -> dict:
        """The keys that the callbacks' ``on_counts`` / ``on_report`` add to ``data``."""
        extra: dict = {}
        for c in self.items:
            extra.update(getattr(c, hook)(trainer, data))
        return extra

    @contextlib.contextmanager
    def evaluation(self, trainer):
        self.fire("on_eval_start", trainer)
        try:
            yield
        finally:
            self.fire("on_eval_end", trainer)

    def state_dict(self) -> dict:
        return {c.key: c.state_dict() for c in self.items if c.key}

    def load_state_dict(self, states: dict) -> None:
        keys = {c.key for c in self.items if c.key}
        if keys != set(states):
            missing, extra = sorted(keys - set(states)), sorted(set(states) - keys)
            raise ValueError(f"checkpoint and configuration disagree on the callbacks' state (configured, not in "
                             f"the checkpoint: {missing}; in the checkpoint, not configured: {extra})")
        for c in self.items:
            if c.key:
                c.load_state_dict(states[c.key])


class SwaCallback(Callback):
    """Stochastic weight averaging (``psg.swa``): snapshots over the last part of the schedule; at the end,
    the last iterate is evaluated, the averaged weights are swapped in with fresh BN statistics and saved
    as swa_checkpoint.pt, and the final evaluation sees them. The average is checkpointed (key ``swa``),
    so a resumed run ends exactly like an uninterrupted one."""

    key = "swa"
    CHECKPOINT = "swa_checkpoint.pt"

    def __init__(self, averager):
        self.averager = averager
        self.top1_last_iterate = None

    def on_iteration_end(self, trainer) -> None:
        self.averager.after_iteration(trainer.model, trainer.iteration)

    def on_train_end(self, trainer) -> None:
        if trainer.val_set is None:
            return
        self.top1_last_iterate = trainer.evaluate()["top1"]
        n = self.averager.bn_batches or math.ceil(len(trainer.train_set) / trainer.batches.batch_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(trainer.cfg["run"]["seed"])  # gate draws during the BN pass
            self.averager.swap_in(trainer.model, (trainer.batches.batch(i)[0].to(trainer.device) for i in range(n)))
        trainer.save(os.path.join(trainer.out, self.CHECKPOINT))

    def on_report(self, trainer, report: dict) -> dict:
        return {"swa": {"snapshots": self.averager.n_averaged, "top1_last_iterate": self.top1_last_iterate,
                        "checkpoint": self.CHECKPOINT}}

    def state_dict(self) -> dict:
        return self.averager.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averager.load_state_dict(state)


class BitWidths(Callback):
    """MACs by operand bit width and the bit-weighted savings (``psg.accounting``); the energy estimates
    weigh MACs by these widths, so they join the counts of every metric line too."""

    def on_counts(self, trainer, counts: dict) -> dict:
        from ..psg.accounting import bit_width_report

        return bit_width_report(trainer.model, counts)


class FabricReport(Callback):
    """report.json's ``fabric``: how busy the fabric behind the convs was over the run, where the fabric
    counts its busy time (pynq: ap_start to ap_done); None otherwise."""

    def __init__(self, engine):
        self.fabric = getattr(engine, "fabric", None)

    def on_report(self, trainer, report: dict) -> dict:
        fab = self.fabric
        if fab is None or getattr(fab, "busy_s", None) is None:
            return {"fabric": None}
        wall = trainer.stats["wall_seconds"]
        return {"fabric": {"backend": fab.name, "kernel_runs": fab.calls, "busy_seconds": fab.busy_s,
                           "busy_fraction": fab.busy_s / wall if wall > 0 else None}}


class MeterWindows(Callback):
    """Windows of the power meter (``trainer.meter``, a ``power.training.MeteredRun`` when the run is
    metered: ``train --meter``): one per epoch of ``len(train) // batch`` iterations (the last may be cut
    short) and one per evaluation; report.json's ``measured_joules`` at the end. Inert without a meter."""

    def __init__(self):
        self.per_epoch = 1

    def on_train_start(self, trainer) -> None:
        meter = trainer.meter
        if meter is None:
            return
        self.per_epoch = max(1, len(trainer.train_set) // trainer.cfg["schedule"]["batch_size"])
        meter.from_iteration = trainer.iteration  # a resumed run measures only what it trains itself
        meter.begin("epoch", trainer.iteration // self.per_epoch)

    def on_iteration_end(self, trainer) -> None:
        meter, i = trainer.meter, trainer.iteration
        if meter is not None and i % self.per_epoch == 0:
            meter.end("epoch", i // self.per_epoch - 1)
            if i < trainer.end:
                meter.begin("epoch", i // self.per_epoch)

    def on_eval_start(self, trainer) -> None:
        if trainer.meter is not None:
            trainer.meter.begin("eval", trainer.iteration)

    def on_eval_end(self, trainer) -> None:
        if trainer.meter is not None:
            trainer.meter.end("eval", trainer.iteration)

    def on_report(self, trainer, report: dict) -> dict:
        return {} if trainer.meter is None else {"measured_joules": trainer.meter.finish()}
