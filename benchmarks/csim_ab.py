"""Two builds of the csim library against each other, in one process, their calls alternating.

    .venv/bin/python benchmarks/csim_ab.py OLD.so NEW.so [--rounds 8] [--batch 32]

For tuning the kernels: on a shared or drifting machine, two runs of benchmarks/csim_speed.py minutes
apart differ by more than most changes do, so this loads both libraries side by side (the cache keeps
each build under its key, and `python tools/build_csim.py` prints the current one's path), runs the three kernels of every ResNet-20 conv layer
through one and then the other, round after round, and keeps the best CPU time of each. Prints the
seconds per kernel and NEW / OLD. One thread, as csim_speed.py. Timing only: either build may be of an
older contract version (the bits are not compared).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from e2train.fabric import csim  # noqa: E402
from e2train.fabric.networks import resnet_cifar_convs  # noqa: E402
from e2train.fabric.selftest import layer_calls, random_layer  # noqa: E402

KERNELS = ("fwd", "bwd_data", "psg")


def kernel_seconds(fab, layers) -> list[float]:
    t = [0.0] * len(KERNELS)
    for s, x, w, g in layers:
        for i, call in enumerate(layer_calls(fab, s, x, w, g)):
            t0 = time.process_time()
            call()
            t[i] += time.process_time() - t0
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    fabs = {
        name: csim.CsimFabric("cpu", library=csim.CsimLibrary(os.path.abspath(path), any_contract=True))
        for name, path in (("old", args.old), ("new", args.new))
    }
    rng = np.random.default_rng(0)
    layers = [(s, *random_layer(rng, s.n, s.c, s.o, s.h, s.k, s.stride)) for s in resnet_cifar_convs(20, batch=args.batch)]
    best = {k: [float("inf")] * len(KERNELS) for k in fabs}
    for _ in range(args.rounds):
        for name, fab in fabs.items():
            best[name] = [min(a, b) for a, b in zip(best[name], kernel_seconds(fab, layers))]
    print(f"ResNet-20 conv layers at batch {args.batch}, best of {args.rounds} alternating rounds, CPU seconds")
    for name in fabs:
        row = "  ".join(f"{k} {v:.4f}" for k, v in zip(KERNELS, best[name]))
        print(f"{name:4s} {row}  total {sum(best[name]):.4f}")
    ratios = "  ".join(f"{k} {n / o:.3f}" for k, o, n in zip(KERNELS, best["old"], best["new"]))
    print(f"new / old time: {ratios}  total {sum(best['new']) / sum(best['old']):.3f}")


if __name__ == "__main__":
    main()
