"""Time one training step of ResNet-20 at batch 128 on the CPU: PSG convs against plain float convs.

    .venv/bin/python benchmarks/psg_step.py [--quick] [--threads N] [--batch 128]

Both networks start from the same weights and train on the same synthetic images; their steps are
interleaved (float, PSG, float, PSG, ...) so that a change in machine load hits both alike, and the
median step time of each is compared. PSG runs twice: on the torch engine (float convolutions of the
quantised values) and on the integer cpu engine (e2train.cpu, where its library builds). A PSG step is forward (int8 x int8), one backward call for g_x
(and G_full where phase 2 needs it) and the G_msb weight-gradient call (on the samples whose x_msb is
not all zero), plus the quantisation passes; the ratio depends on how many weights fall back, so the
predictor ratio at the time of measurement is printed beside it. The last line is ``ratio: X (wall; cpu time Y, E engine)``
(PSG step / float step, wall-clock medians, then process CPU time, the measure to quote on a loaded
machine and with one thread) for the engine E that a PSG config gets by default here (``auto``: the
integer cpu engine on a CPU machine); the goal is X <= 1.3 (the paper's released code runs two forward and two of each backward convolution).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from e2train.data import make_synthetic
from e2train.data.augment import Normalizer
from e2train.models import build_model, plain_conv
from e2train.cpu.engine import available as cpu_available
from e2train.psg import make_conv_factory
from e2train.psg.engines import resolve_backend


def step(model, opt, x, y) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed steps each (about a minute)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=0, help="timed steps per network (default 10, 3 with --quick)")
    ap.add_argument("--with-fixed8", action="store_true", help="also time the 8-bit baseline (quantisation without the predictor)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warm, timed = (1, 3) if args.quick else (2, 10)
    timed = args.steps or timed

    data = make_synthetic(args.batch, seed=0)
    x = Normalizer()(torch.from_numpy(data.images))
    y = torch.from_numpy(data.labels).long()
    nets = {}
    kinds = [("float", plain_conv), ("psg", make_conv_factory(backend="torch"))]
    if cpu_available():
        kinds.append(("psg-cpu", make_conv_factory(backend="cpu")))
    default = "psg-cpu" if resolve_backend("auto") == "cpu" else "psg"
    if args.with_fixed8:
        kinds.insert(1, ("fixed8", make_conv_factory(mode="fixed8", backend="torch")))
    for label, factory in kinds:
        torch.manual_seed(0)
        model = build_model("resnet20", conv_factory=factory)
        nets[label] = (model, torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4))
    times = {k: [] for k in nets}
    for i in range(warm + timed):
        for label, (model, opt) in nets.items():
            wall, cpu = step(model, opt, x, y)
            if i >= warm:
                times[label].append((wall, cpu))
    pred = {label: [m.layer_stats()["psg_last_ratio"] for m in nets[label][0].layer_modules().values()
                    if hasattr(m, "bit_macs")] for label in nets if label.startswith("psg")}

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"ResNet-20, batch {args.batch}, {timed} timed steps each after {warm} warm-up (interleaved)")
    med = {}
    for label, rows in times.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        med[label] = (wall, cpu)
        print(f"{label:7s} step: wall {wall * 1000:8.1f} ms (min {min(r[0] for r in rows) * 1000:.1f}), cpu {cpu * 1000:8.1f} ms")
    for label, p in pred.items():
        print(f"{label} predictor ratio at the last step: mean over layers {statistics.mean(p):.3f} (min {min(p):.3f})")
    if "fixed8" in med:
        print(f"fixed8 / float: wall {med['fixed8'][0] / med['float'][0]:.3f}, cpu {med['fixed8'][1] / med['float'][1]:.3f}")
    for label in ("psg", "psg-cpu"):
        if label in med:
            engine = "torch engine" if label == "psg" else f"cpu engine ({next(m.engine for m in nets[label][0].modules() if hasattr(m, 'engine')).simd})"
            print(f"{label} / float ({engine}): wall {med[label][0] / med['float'][0]:.3f}, "
                  f"cpu time {med[label][1] / med['float'][1]:.3f}")
    print(f"default PSG engine here: {'cpu' if default == 'psg-cpu' else 'torch'}")
    # wall first (what the line has always held); on a loaded machine the CPU-time ratio is the measure
    print(f"ratio: {med[default][0] / med['float'][0]:.3f} (wall; cpu time {med[default][1] / med['float'][1]:.3f}, "
          f"{'cpu' if default == 'psg-cpu' else 'torch'} engine)")


if __name__ == "__main__":
    main()
