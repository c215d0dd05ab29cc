#!/usr/bin/env python3
"""SLU real skipping: time per training iteration with a share of the gated blocks executed vs. all.

ResNet-20 (default: the training table's model), batch 128, CPU. The gated model's decisions are
forced: in every gated block a random 60 % of the samples run (SLU at 40 % skip; gather, branch, scatter
in forward and backward), which executes 0.655 of the plain network's forward MACs, gates included.
Compared with the same gated model running every block, and with the plain network (no gates). Timings
are interleaved (A, B, C, A, B, C, ...) and the median is taken, so load from other processes hits all
alike; on a shared machine use ``--threads 1 --clock cpu``.

    .venv/bin/python benchmarks/slu_skip.py [--depth 20] [--batch 128] [--executed 0.6] [--reps 7]

Goal: ratio (60 % executed / plain network) <= 0.80 on ResNet-20.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from e2train.models import build_model
from e2train.models.macs import MacCounter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--executed", type=float, default=0.6, help="share of samples each gated block runs")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time (use with --threads 1 on a shared machine)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    gated = build_model(f"resnet{a.depth}", gating="slu")
    plain = build_model(f"resnet{a.depth}")
    n_gated = len(gated.gated_blocks)
    k = round(a.executed * a.batch)
    half = torch.zeros(n_gated, a.batch, dtype=torch.bool)
    for b in range(n_gated):
        half[b, torch.randperm(a.batch)[:k]] = True
    full = torch.ones(n_gated, a.batch, dtype=torch.bool)

    def step(model, forced):
        model.force_gates = forced
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        t = clock()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        return clock() - t

    cases = {"plain network": (plain, None), "gated, all blocks": (gated, full), f"gated, {a.executed:.0%} of samples per gated block": (gated, half)}
    for model, forced in cases.values():  # warm-up
        step(model, forced)
    times = {name: [] for name in cases}
    for _ in range(a.reps):
        for name, (model, forced) in cases.items():
            times[name].append(step(model, forced))
            print(f"  {name}: {times[name][-1] * 1e3:.1f} ms", flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    # executed share of the forward MACs at the forced decisions, gate overhead included
    counter = MacCounter(gated)
    counter.begin_step()
    gated.force_gates = half
    with torch.no_grad():
        gated(x)
    counter.active = False
    executed_macs = sum(counter.step.values())
    counter.close()
    pc = MacCounter(plain)
    pc.begin_step()
    with torch.no_grad():
        plain(x)
    pc.active = False
    plain_macs = sum(pc.step.values())
    print(f"ResNet-{a.depth}, batch {a.batch}, {torch.get_num_threads()} thread(s), {a.clock} clock, median of {a.reps} training iterations")
    for name, t in med.items():
        print(f"  {name:42s} {t * 1e3:8.1f} ms")
    hname = list(cases)[2]
    print(f"executed forward MACs (gates included) / plain network: {executed_macs / plain_macs:.3f}")
    print(f"ratio {hname} / plain network: {med[hname] / med['plain network']:.3f}  (goal <= 0.80 on ResNet-20)")
    print(f"ratio {hname} / gated, all blocks: {med[hname] / med['gated, all blocks']:.3f}")


if __name__ == "__main__":
    main()
