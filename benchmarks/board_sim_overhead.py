"""What the pynq driver costs on top of the kernels: the simulated board (driver + csim behind the
start bit) against the csim backend called directly, on ResNet-20 layers (one process, this CPU).

    .venv/bin/python benchmarks/board_sim_overhead.py [--batch 32] [--repeat 3]

The ratio is driver overhead here (copies into the DDR buffers, flush/invalidate, register traffic);
on the board the copies are ARM memcpy and the kernels run in the PL, so this is not a board figure.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from e2train.fabric import get_fabric
from e2train.fabric.networks import distinct_convs, resnet_cifar_convs
from e2train.fabric.selftest import layer_calls, random_layer


def best_of(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    csim = get_fabric("csim")
    board = get_fabric("pynq", device="sim", executor="csim")
    rng = np.random.default_rng(0)
    total_c = total_b = 0.0
    print(f"{'layer (C,O,H,k,s)':22s} {'csim s':>8s} {'sim board s':>12s} {'ratio':>6s}")
    for s in distinct_convs(resnet_cifar_convs(20, batch=args.batch)):
        x, w, g = random_layer(rng, s.n, s.c, s.o, s.h, s.k, s.stride)

        def calls(fab):
            for call in layer_calls(fab, s, x, w, g):
                call()

        tc, tb = best_of(args.repeat, lambda: calls(csim)), best_of(args.repeat, lambda: calls(board))
        total_c, total_b = total_c + tc, total_b + tb
        key = (s.c, s.o, s.h, s.k, s.stride)
        print(f"{str(key):22s} {tc:8.4f} {tb:12.4f} {tb / tc:6.2f}")
    print(f"all three kernels, every distinct layer: csim {total_c:.3f} s, simulated board {total_b:.3f} s, "
          f"ratio {total_b / total_c:.2f}")


if __name__ == "__main__":
    main()
