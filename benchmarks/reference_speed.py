"""Time the reference fabric's three kernels on ResNet-20 layers at batch 128 (one process, this CPU).

    .venv/bin/python benchmarks/reference_speed.py [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from e2train.fabric import get_fabric
from e2train.fabric.networks import distinct_convs, resnet_cifar_convs
from e2train.fabric.selftest import layer_calls, random_layer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    fab = get_fabric("reference")
    rng = np.random.default_rng(0)
    print(f"{'layer':18s} {'shape':28s} {'fwd s':>7s} {'bwd_data s':>10s} {'psg s':>7s} {'GMAC/s':>7s}")
    for s in distinct_convs(resnet_cifar_convs(20, batch=args.batch)):
        x, w, g = random_layer(rng, s.n, s.c, s.o, s.h, s.k, s.stride)
        t = []
        for call in layer_calls(fab, s, x, w, g):
            t0 = time.perf_counter()
            call()
            t.append(time.perf_counter() - t0)
        # psg computes two weight-gradient sums (MSB and full): 4 layer-MACs in all
        gmacs = 4 * s.macs / sum(t) / 1e9
        shape = f"{s.c}->{s.o} {s.h}x{s.w} k{s.k} s{s.stride}"
        print(f"{s.name:18s} {shape:28s} {t[0]:7.3f} {t[1]:10.3f} {t[2]:7.3f} {gmacs:7.2f}")


if __name__ == "__main__":
    main()
