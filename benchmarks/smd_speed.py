#!/usr/bin/env python3
"""SMD: wall time of 100 scheduled training iterations at p = 0.5 vs. p = 0 (the full loop: batch loading,
augmentation, forward, backward, optimizer step), ResNet-20 at batch 128 on the synthetic images, CPU.
Also prints the time to load and augment one batch against one training step.

    .venv/bin/python benchmarks/smd_speed.py [--iterations 100] [--arch resnet20] [--batch 128]

Goal: ratio <= 0.55.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from e2train.training import load_config
from e2train.training.loop import Trainer


def timed(p: float, a, out: str, clock) -> tuple[float, int]:
    cfg = load_config(None, [
        "run.progress=false", "run.log_every=0", "run.checkpoint_every=0", f"run.threads={a.threads}",
        "data.dataset=synthetic", "data.synthetic_train=2000", "data.synthetic_val=100",
        f"model.arch={a.arch}", f"schedule.iterations={a.iterations}", f"schedule.batch_size={a.batch}", f"smd.p={p}",
    ])
    tr = Trainer(cfg, out)
    tr.step(0) if p == 0 else None  # warm-up outside the timing (p = 0 run only; it is the slower one)
    t = clock()
    for i in range(a.iterations):
        tr.step(i)
    return clock() - t, tr.stats["smd_dropped"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--arch", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time (use with --threads 1 on a shared machine)")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    with tempfile.TemporaryDirectory() as d:
        t0, _ = timed(0.0, a, d, clock)
        t5, dropped = timed(0.5, a, d, clock)
        cfg = load_config(None, ["run.progress=false", "data.dataset=synthetic", "data.synthetic_train=2000", "data.synthetic_val=100", f"schedule.batch_size={a.batch}"])
        tr = Trainer(cfg, d)
        t = clock()
        for i in range(20):
            tr.batches.batch(i)
        load = (clock() - t) / 20
    print(f"{a.arch}, batch {a.batch}, {torch.get_num_threads()} thread(s), {a.clock} clock, {a.iterations} scheduled iterations")
    print(f"  p = 0.0: {t0:8.2f} s")
    print(f"  p = 0.5: {t5:8.2f} s  ({dropped} of {a.iterations} batches dropped)")
    print(f"  loading + augmenting one batch: {load * 1e3:.1f} ms; one training step at p = 0: {t0 / a.iterations * 1e3:.0f} ms")
    print(f"ratio p=0.5 / p=0: {t5 / t0:.3f}  (goal <= 0.55; the expected ratio is the share of batches kept, {1 - dropped / a.iterations:.2f})")


if __name__ == "__main__":
    main()
