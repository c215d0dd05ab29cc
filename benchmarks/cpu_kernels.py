"""GMAC/s of the integer cpu engine's kernels per ResNet-20 layer shape, beside torch's float convolution.

    PYTHONPATH=host .venv/bin/python benchmarks/cpu_kernels.py [--batch 128] [--threads 1] [--reps 3]

For each shape (stage 1-3, stride 1 and 2, 3x3 and the 1x1 shortcuts) and kernel: forward (int8 x int8),
backward data (int16 x int8), G_msb (the predictor: x_msb x g_msb, no sample skipped), G_full (every
weight unsure) against torch float32's forward, its backward for the input and for the weight. Times
are process CPU time (robust on a loaded machine; use --threads 1), median of --reps calls; a MAC is one
product of the convolution (N * O * C * k * k * H' * W'), whatever the kernel skips. The last line
sums the times over the layers of each shape (one kernel call per layer: a step's worth).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import torch
import torch.nn.functional as F

from e2train.cpu.library import load
from e2train.fabric.networks import distinct_convs, resnet_cifar_convs



def shapes(batch: int) -> list[tuple[str, int, int, int, int, int, int]]:
    """(name, C, O, H, k, stride, how many layers) for each distinct conv shape of ResNet-20 but the stem."""
    layers = resnet_cifar_convs(20, batch)
    key = lambda s: (s.c, s.o, s.h, s.k, s.stride)  # noqa: E731
    count = Counter(key(s) for s in layers)
    return [(f"{s.c}-{s.o} {s.h}x{s.w} {s.k}x{s.k}" + (f" /{s.stride}" if s.stride > 1 else ""), *key(s), count[key(s)])
            for s in distinct_convs(layers) if s.c > 3]


def cpu_time(fn, reps: int) -> float:
    fn()  # warm-up: scratch buffers, library build
    times = []
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variant", default=None, help="native or portable (default: E2TRAIN_CPU_SIMD, else native)")
    ap.add_argument("--only", default="", help="run the shapes whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lib = load(args.variant)
    gen = torch.Generator().manual_seed(0)
    print(f"cpu engine: {lib.simd}; batch {args.batch}; {args.threads} thread(s); CPU time, median of {args.reps}")
    print(f"{'shape':24s} {'GMAC':>6s} | {'fwd':>6s} {'bwd_d':>6s} {'G_msb':>6s} {'G_full':>6s} | "
          f"{'t.fwd':>6s} {'t.bwdd':>6s} {'t.bwdw':>6s}  (GMAC/s)")
    totals = [0.0] * 7
    for name, c, o, h, k, s, layers in shapes(args.batch):
        if args.only not in name:
            continue
        n, ho = args.batch, (h + 2 * ((k - 1) // 2) - k) // s + 1
        x = torch.randint(0, 128, (n, c, h, h), generator=gen, dtype=torch.int8)
        x[torch.rand(x.shape, generator=gen) < 0.5] = 0  # after a ReLU: about half zero
        w = torch.randint(-128, 128, (o, c, k, k), generator=gen, dtype=torch.int8)
        g = torch.randint(-3000, 3000, (n, o, ho, ho), generator=gen, dtype=torch.int16)
        macs = n * o * c * k * k * ho * ho
        xf, wf, gf = x.float(), w.float(), g.float()
        yf = F.conv2d(xf, wf, stride=s, padding=(k - 1) // 2)

        def tback(mask):
            return torch.ops.aten.convolution_backward(gf, xf, wf, None, [s, s], [(k - 1) // 2] * 2, [1, 1], False,
                                                       [0, 0], 1, mask)

        runs = [
            lambda: lib.conv_fwd(x, w, s),
            lambda: lib.conv_bwd_data(g, w, s, (h, h)),
            lambda: lib.conv_bwd_weight(x, g, k, s, msb=True),
            lambda: lib.conv_bwd_weight(x, g, k, s, msb=False),
            lambda: F.conv2d(xf, wf, stride=s, padding=(k - 1) // 2),
            lambda: tback([True, False, False]),
            lambda: tback([False, True, False]),
        ]
        assert yf.shape == (n, o, ho, ho)
        secs = [cpu_time(r, args.reps) for r in runs]
        for i, t in enumerate(secs):
            totals[i] += t * layers
        rates = " ".join(f"{macs / t / 1e9:6.1f}" for t in secs[:4]) + " | " + " ".join(f"{macs / t / 1e9:6.1f}" for t in secs[4:])
        print(f"{name:24s} {macs / 1e9:6.3f} | {rates}")
    print("total ms, every layer of the network but the stem: " + " ".join(f"{lbl} {t * 1000:.0f}" for lbl, t in
                                  zip(("fwd", "bwd_d", "G_msb", "G_full", "t.fwd", "t.bwdd", "t.bwdw"), totals)))


if __name__ == "__main__":
    main()
