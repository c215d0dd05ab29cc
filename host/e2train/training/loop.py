"""The training loop: iteration-based schedule, SMD, SLU / stochastic depth, checkpoints, resume, report.

Everything random is a function of (run.seed, iteration): which samples form a batch, their
augmentation, whether SMD drops it, the gates' Bernoulli draws and stochastic depth's draws. With the
model, optimizer and counters restored from a checkpoint, a resumed run therefore repeats the
uninterrupted run exactly.

On several processes (``world``, see ``.distributed``) every rank runs this loop on its share of each
batch; rank 0 alone writes checkpoints, metrics and the report, with counters summed over the ranks.

What runs beside the steps (SWA, the bit-width and fabric reports, the power meter's windows) is the
trainer's list of callbacks (``.callbacks``), called where the loop says so. The trainer builds the
run's conv engine (``.setup``) and closes it in ``close()``: use it as ``with Trainer(...) as t``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import torch

from .. import __version__
from ..checkpoint import CheckpointError, load_checkpoint, save_atomic
from ..data import ImageSet
from ..data.batches import BatchSchedule, mix_seed
from ..energy.report import REPORT_TABLES, energy_fields
from ..models.macs import PHASES, MacCounter, full_macs_per_sample, training_macs
from .config import scheduled_iterations, with_defaults
from .distributed import Replica, World, check_batch, cross_entropy_share, evaluate_sharded, merged_counters
from .distributed import describe as describe_dist
from .distributed import local_counters, prepare_model, restore_counters
from .evaluate import evaluate
from .optim import lr_factor, make_optimizer, optimizer_factory_for
from .setup import build_callbacks, build_engine, build_from_config, load_data, pick_device
from .slu import branch_macs, slu_loss
from .smd import smd_drop

CHECKPOINT = "checkpoint.pt"
# config keys that may differ between a run and its resumption (they do not change the numbers)
RESUME_FREE = {("run", "progress"), ("run", "log_every"), ("run", "eval_every"), ("run", "threads"),
               ("dist", "timeout"), ("dist", "backend")}


class Divergence(RuntimeError):
    """The loss became NaN/inf or exceeded schedule.divergence_loss."""


class Trainer:
    def __init__(self, cfg: dict, out_dir: str, data: tuple | None = None, optimizer_factory=None, log=None,
                 world: World | None = None):
        self.engine = None
        try:
            self._build(cfg, out_dir, data, optimizer_factory, log, world)
        except BaseException:
            self.close()
            raise

    def _build(self, cfg, out_dir, data, optimizer_factory, log, world) -> None:
        self.cfg = cfg
        self.out = out_dir
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.world = world or World()
        check_batch(cfg, self.world.size)
        run = cfg["run"]
        if run["threads"] > 0:
            torch.set_num_threads(run["threads"])
        self.device = pick_device(run["device"])
        torch.manual_seed(mix_seed(run["seed"], 0))  # model initialisation
        train, val, num_classes = data if data is not None else load_data(cfg)
        self.train_set: ImageSet = train
        self.val_set: ImageSet | None = val
        self.engine = build_engine(cfg)  # one for every conv layer; close() releases it
        self.model = build_from_config(cfg, num_classes, self.engine).to(self.device)
        self.per_sample = full_macs_per_sample(self.model)
        self.first_layers = {n for n, s in self.model.specs.items() if s.first}
        self.counter = MacCounter(self.model)
        prepare_model(self.model, self.world, cfg)
        factory = optimizer_factory or optimizer_factory_for(cfg)
        self.optimizer = make_optimizer(self.model, cfg, factory)
        self.callbacks = build_callbacks(cfg, self.model, self.engine, self.optimizer)
        s = cfg["schedule"]
        self.total = scheduled_iterations(cfg)
        self.batches = BatchSchedule(train, s["batch_size"], run["seed"], augment=cfg["data"]["augment"],
                                     shard=(self.world.rank, self.world.size))
        blocks = branch_macs(self.model, self.per_sample)
        self.block_macs = blocks
        gated = set(id(b) for b in self.model.gated_blocks)
        self.gated_macs = [m for m, b in zip(blocks, self.model.res_blocks) if id(b) in gated]
        self.replica = Replica(self.model, self.gated_macs, self.world, self.optimizer, cfg)
        self.iteration = 0
        self.end = self.total  # where the current run() stops
        self.meter = None  # a power.training.MeteredRun when the run is metered (train --meter)
        self.stats = {
            "smd_dropped": 0, "executed_iterations": 0,
            "skippable_macs_total": 0, "skippable_macs_ran": 0, "block_pairs_total": 0, "block_pairs_ran": 0,
            "wall_seconds": 0.0,
            "cpu_seconds": 0.0,  # this process's CPU time (all threads): unlike the wall, not counting a stopped process
        }
        if self.world.is_main:
            os.makedirs(out_dir, exist_ok=True)

    def close(self) -> None:
        """Release the conv engine (a fabric's library, DMA buffers, worker thread); once is enough."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.out, CHECKPOINT)

    def state(self) -> dict:
        return {
            "version": __version__,
            "config": self.cfg,
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "callbacks": self.callbacks.state_dict(),
            "macs": self.counter.state_dict(),
            "stats": dict(self.stats),
            "num_classes": self.model.fc.out_features,
        } | self._rank_state()

    def _rank_state(self) -> dict:
        """A distributed run's checkpoint also holds every rank's counters (all ranks call this)."""
        w = self.world
        if w.size == 1:
            return {}
        return {"world_size": w.size, "ranks": w.gather_objects(local_counters(self.model, self.counter)),
                "traffic": dict(w.traffic)}

    def save(self, path: str | None = None) -> None:
        """Every rank calls this; rank 0 writes (atomically) ``path`` or the checkpoint."""
        state = self.state()
        if self.world.is_main:
            save_atomic(state, path or self.checkpoint_path)

    def resume(self) -> bool:
        """Load ``out/checkpoint.pt`` if there is one; False when starting fresh. In a distributed run rank 0
        reads it and every rank gets it."""
        path = self.checkpoint_path
        ck = self.world.on_main(lambda: load_checkpoint(path) if os.path.exists(path) else None, (CheckpointError,))
        if ck is None:
            return False
        # an older checkpoint lacks keys added since: compare them at the defaults it trained with
        diffs = [
            f"{sec}.{k}: checkpoint {v!r}, now {self.cfg[sec].get(k)!r}"
            for sec, table in with_defaults(ck["config"]).items()
            for k, v in table.items()
            if (sec, k) not in RESUME_FREE and self.cfg.get(sec, {}).get(k) != v
        ]
        if diffs:
            raise CheckpointError(f"{self.checkpoint_path} was written by a different configuration: " + "; ".join(diffs))
        ranks = ck.get("world_size", 1)
        if ranks != self.world.size:
            raise CheckpointError(f"{self.checkpoint_path} was written by a run on {ranks} process(es), and each keeps "
                                  f"its own counters: resume it on {ranks} (now {self.world.size})")
        self.model.load_state_dict(ck["model"])
        optimizer, callbacks = dict(ck["optimizer"]), dict(ck.get("callbacks", {}))
        if "swa" in optimizer:  # written before SWA was a callback: the average rode in the optimizer's state
            callbacks["swa"] = optimizer.pop("swa")
        self.optimizer.load_state_dict(optimizer)
        try:
            self.callbacks.load_state_dict(callbacks)
        except ValueError as exc:
            raise CheckpointError(f"{self.checkpoint_path}: {exc}") from None
        self.counter.load_state_dict(ck["macs"])
        if "ranks" in ck:
            restore_counters(self.model, self.counter, ck["ranks"][self.world.rank])
            self.world.traffic.update(ck["traffic"])
        self.stats.update(ck["stats"])
        self.iteration = ck["iteration"]
        if self.world.is_main:
            self._truncate_metrics(self.iteration)
        return True

    # ---- metrics ------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> str:
        return os.path.join(self.out, "metrics.jsonl")

    def _write_metric(self, rec: dict) -> None:
        if not self.world.is_main:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _truncate_metrics(self, upto: int) -> None:
        """Drop metric lines past the checkpoint: the resumed run writes them again."""
        if not os.path.exists(self.metrics_path):
            return
        keep = []
        with open(self.metrics_path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by the kill
                if rec.get("iteration", 0) <= upto:
                    keep.append(line if line.endswith("\n") else line + "\n")
        with open(self.metrics_path, "w") as f:
            f.writelines(keep)

    def layer_stats(self) -> dict:
        stats = self.model.layer_stats()
        fn = getattr(self.optimizer, "layer_stats", None)
        if callable(fn):
            for name, row in (fn() or {}).items():
                stats.setdefault(name, {}).update(row)
        return stats

    # ---- one iteration ------------------------------------------------------------------------
    def set_lr(self, i: int) -> float:
        s = self.cfg["schedule"]
        f = lr_factor(i, self.total, s["lr_steps"], s["lr_decay"], s["lr_schedule"], s["warmup"], s["hold_from"], s["hold_lr"])
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f
        return self.optimizer.param_groups[0]["lr"]

    def step(self, i: int) -> dict | None:
        """Iteration ``i``; None if SMD dropped its batch."""
        cfg = self.cfg
        self.set_lr(i)
        if smd_drop(cfg["run"]["seed"], i, cfg["smd"]["p"]):
            self.stats["smd_dropped"] += 1
            return None
        x, y = self.batches.batch(i)  # this rank's share of the batch
        x, y = x.to(self.device), y.to(self.device)
        torch.manual_seed(mix_seed(cfg["run"]["seed"], 4, i))  # gate and stochastic-depth draws
        self.model.train()
        self.counter.begin_step()
        try:
            out, c = self.replica(x)
            ce = cross_entropy_share(out, y, self.batches.batch_size)
            # one exchange per step: the loss, C, and the counts the logs and the report sum over ranks
            executed = self._executed(x.shape[0])
            correct = int((out.detach().argmax(1) == y).sum())
            sums = self.world.sum([float(ce.detach()), 0.0 if c is None else float(c.detach()), correct, *executed])
            ce_all, c_all, correct = sums[:3]
            ran, total, pairs_ran, pairs = (int(v) for v in sums[3:])
            loss, lv = ce, ce_all
            if c is not None:  # the regulariser at the ranks' C (the mean of theirs), its gradient through this rank's gates
                n = self.world.size
                c_mean = c_all / n
                loss = ce + slu_loss(c + (c_mean - c.detach()), cfg["slu"]["alpha"], cfg["slu"]["target"]) / n
                lv = ce_all + float(slu_loss(torch.tensor(c_mean), cfg["slu"]["alpha"], cfg["slu"]["target"]))
            if not math.isfinite(lv) or lv > cfg["schedule"]["divergence_loss"]:
                raise Divergence(f"training loss is {lv} at iteration {i + 1} (limit {cfg['schedule']['divergence_loss']})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.replica.after_backward()
            self.optimizer.step()
        finally:
            self.counter.end_step(backward=True)
        self.stats["executed_iterations"] += 1
        self.stats["skippable_macs_ran"] += ran
        self.stats["skippable_macs_total"] += total
        self.stats["block_pairs_ran"] += pairs_ran
        self.stats["block_pairs_total"] += pairs
        acc = correct / self.batches.batch_size
        return {"loss": lv, "ce": ce_all, "acc": acc, "ran": ran, "total": total}

    def _executed(self, n: int) -> tuple[int, int, int, int]:
        """(MACs of skippable blocks that ran, MACs they would take, block-sample pairs ran, pairs)."""
        m = self.model
        if m.last_gates is not None:
            ran = sum(mac * int(d.sum()) for mac, d in zip(self.gated_macs, m.last_gates.decisions))
            pairs_ran = sum(int(d.sum()) for d in m.last_gates.decisions)
            return ran, sum(self.gated_macs) * n, pairs_ran, len(self.gated_macs) * n
        if m.last_sd is not None:
            drop = [(mac, keep) for mac, p, keep in zip(self.block_macs, m.sd_survival, m.last_sd) if p < 1.0]
            ran = sum(mac * n for mac, keep in drop if keep)
            return ran, sum(mac for mac, _ in drop) * n, sum(n for _, k in drop if k), len(drop) * n
        return 0, 0, 0, 0

    # ---- the run ------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> dict | None:
        """Train to the end of the schedule (or to ``stop_at`` iterations, for tests); returns the report."""
        run = self.cfg["run"]
        end = self.total if stop_at is None else min(stop_at, self.total)
        if self.iteration == 0:
            self._truncate_metrics(0)  # a fresh run in a used folder: the old run's lines go
        t0, c0 = time.perf_counter(), time.process_time()
        base_wall, base_cpu = self.stats["wall_seconds"], self.stats["cpu_seconds"]

        def clock() -> None:
            self.stats["wall_seconds"] = base_wall + time.perf_counter() - t0
            self.stats["cpu_seconds"] = base_cpu + time.process_time() - c0

        bar = None
        if run["progress"] and self.world.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.total, initial=self.iteration, desc=run["name"], unit="it", dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr)
        window = {"loss": 0.0, "ce": 0.0, "acc": 0.0, "n": 0, "ran": 0, "total": 0}
        self.end = end
        self.callbacks.fire("on_train_start", self)
        try:
            while self.iteration < end:
                i = self.iteration
                try:
                    res = self.step(i)
                except Divergence as exc:
                    self._write_metric({"iteration": i + 1, "event": "diverged", "message": str(exc)})
                    kept = f"the last good checkpoint is {self.checkpoint_path}" if os.path.exists(self.checkpoint_path) else "no checkpoint was written yet"
                    raise Divergence(f"{exc}; stopped, {kept}") from None
                self.iteration = i + 1
                self.callbacks.fire("on_iteration_end", self)  # SWA snapshots, the meter's epoch windows
                if res is not None:
                    for k in ("loss", "ce", "acc"):
                        window[k] += res[k]
                    window["n"] += 1
                    window["ran"] += res["ran"]
                    window["total"] += res["total"]
                if bar is not None:
                    bar.update(1)
                if run["log_every"] and self.iteration % run["log_every"] == 0 or self.iteration == self.total:
                    clock()
                    rec = self._log_record(window)
                    self._write_metric(rec)
                    if bar is not None and window["n"]:
                        bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['acc']:.3f}", exec=f"{rec['executed_ratio']:.2f}", drop=self.stats["smd_dropped"])
                    window = dict.fromkeys(window, 0)
                    window.update(loss=0.0, ce=0.0, acc=0.0)
                if run["eval_every"] and self.iteration % run["eval_every"] == 0 and self.val_set is not None and self.iteration < self.total:
                    with self.callbacks.evaluation(self):
                        ev = self.evaluate()
                    with merged_counters(self.world, self.model, self.counter):
                        joules = self.estimated_joules()
                    self._write_metric({"iteration": self.iteration, "val_top1": ev["top1"], "val_top5": ev["top5"],
                                        "estimated_joules": joules})
                if (run["checkpoint_every"] and self.iteration % run["checkpoint_every"] == 0) or self.iteration == self.total:
                    clock()
                    self.save()
        finally:
            if bar is not None:
                bar.close()
        if self.iteration < self.total:
            return None
        traffic = dict(self.world.traffic)  # the training steps' (before SWA's BN pass and the evaluation)
        t1 = time.perf_counter()
        self.callbacks.fire("on_train_end", self)  # SWA: the last iterate's top-1, then the averaged weights
        with self.callbacks.evaluation(self):
            ev = self.evaluate() if self.val_set is not None else {}
        clock()
        with merged_counters(self.world, self.model, self.counter):  # rank 0: the sums over the ranks
            report = self.report(ev, eval_seconds=time.perf_counter() - t1)
        if self.world.size > 1:
            report["dist"] = describe_dist(self.world, self.cfg, self.stats["executed_iterations"], self.replica, traffic)
        report.update(self.callbacks.collect("on_report", self, report))  # SWA, the fabric, measured joules
        report = self.world.broadcast_object(report if self.world.is_main else None)
        if self.world.is_main:
            with open(os.path.join(self.out, "report.json"), "w") as f:
                json.dump(report, f, indent=2)
        return report

    def evaluate(self) -> dict:
        """Top-1/top-5 on the evaluation images (on every rank together in a distributed run)."""
        return evaluate_sharded(evaluate, self.model, self.val_set, self.cfg["data"]["eval_batch"], self.device, self.world)

    def _log_record(self, w: dict) -> dict:
        n = max(w["n"], 1)
        rec = {
            "iteration": self.iteration,
            "lr": self.optimizer.param_groups[0]["lr"],
            "loss": w["loss"] / n, "ce": w["ce"] / n, "acc": w["acc"] / n, "steps": w["n"],
            "executed_ratio": (w["ran"] / w["total"]) if w["total"] else 1.0,
            "smd_dropped": self.stats["smd_dropped"],
            "wall_seconds": round(self.stats["wall_seconds"], 3),
            "cpu_seconds": round(self.stats["cpu_seconds"], 3),
        }
        with merged_counters(self.world, self.model, self.counter):  # rank 0: the sums over the ranks
            rec["estimated_joules"] = self.estimated_joules()
            ls = self.layer_stats()
        if ls:
            rec["layer_stats"] = ls
        return rec

    def counts(self) -> dict:
        """The counted work so far, as report.json holds it: MACs per phase and layer, the baseline's."""
        cfg = self.cfg
        phases = self.counter.phase_totals()
        batch = cfg["schedule"]["batch_size"]
        # the baseline: the plain network (no gates), every block, every batch of the un-scaled schedule
        base_phase = training_macs(self.per_sample, batch * cfg["schedule"]["iterations"], self.first_layers)
        baseline = sum(base_phase.values())
        executed = sum(phases.values())
        s = self.stats
        gate_macs = {ph: sum(row[ph] for n, row in self.counter.totals.items() if self.model.specs[n].kind in ("gate", "gate_rnn")) for ph in PHASES}
        return {
            "arch": cfg["model"]["arch"],
            "iterations": self.total,
            "baseline_iterations": cfg["schedule"]["iterations"],
            "executed_iterations": s["executed_iterations"],
            "smd_dropped": s["smd_dropped"],
            "slu_executed_ratio": (s["skippable_macs_ran"] / s["skippable_macs_total"]) if s["skippable_macs_total"] else 1.0,
            "executed_block_ratio": (s["block_pairs_ran"] / s["block_pairs_total"]) if s["block_pairs_total"] else 1.0,
            "macs": phases,
            "macs_per_layer": {k: dict(v) for k, v in sorted(self.counter.totals.items())},
            "gate_macs": gate_macs,
            "baseline_macs": baseline,
            "baseline_macs_per_phase": base_phase,
            "mac_savings": 1.0 - executed / baseline,
            "config": cfg,
        }

    def estimated_joules(self) -> float:
        """The headline estimate (energy.report.REPORT_TABLES[0]) of the work counted so far: the x axis of
        the metric lines' ``estimated_joules``."""
        rep = self.counts()
        rep.update(self.callbacks.collect("on_counts", self, rep))
        return energy_fields(rep, REPORT_TABLES[:1])["estimated_energy"]["joules"]

    def report(self, ev: dict, eval_seconds: float = 0.0) -> dict:
        cfg = self.cfg
        counts = self.counts()
        report = {
            "name": cfg["run"]["name"],
            "arch": cfg["model"]["arch"],
            "gating": cfg["model"]["gating"],
            "dataset": cfg["data"]["dataset"],
            "top1": ev.get("top1"),
            "top5": ev.get("top5"),
            "eval_split": ("validation" if cfg["data"]["val_split"] > 0 or cfg["data"]["dataset"] == "synthetic" else "test"),
            "eval_samples": ev.get("samples"),
            "eval_executed_block_ratio": ev.get("executed_block_ratio"),
            **{k: v for k, v in counts.items() if k not in ("arch", "config")},
            "wall_seconds": self.stats["wall_seconds"],
            "cpu_seconds": self.stats["cpu_seconds"],
            "eval_seconds": eval_seconds,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "layer_stats": self.layer_stats(),
            "config": cfg,
        }
        report.update(self.callbacks.collect("on_counts", self, report))  # the bit widths
        # estimated energy of the run and of its fp32 SGD baseline (measured joules, if any, stay apart)
        report.update(energy_fields(report))
        return report
