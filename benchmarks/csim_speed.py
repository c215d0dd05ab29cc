"""Throughput of the csim kernels (the HLS C++ compiled by g++) beside the reference, on one core.

    .venv/bin/python benchmarks/csim_speed.py [--batch 32] [--repeat 3]

For every distinct conv shape of ResNet-20 at the given batch: seconds per call (best of --repeat) of
conv_fwd, conv_bwd_data and conv_bwd_weight_psg (mode psg, beta 0.05) for both backends, GMAC/s, and the
csim / reference speed ratio. The two backends' calls alternate (reference, csim, reference, ...). The psg kernel does two weight-gradient sums (MSB, then full where
needed); GMAC/s counts one layer-MAC per kernel so that the columns compare like with like.
Then the kernel time of one training iteration: every conv layer of ResNet-20 once through the three
kernels (the host's BN, ReLU, pooling, loss and optimizer are not in it).
BLAS and OpenMP are held to one thread (set before numpy loads), so both backends run on one core.
Times are CPU seconds of this process by default (``--clock cpu``: on a shared machine, time spent
waiting for a core does not count); ``--clock wall`` takes wall-clock time instead.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from e2train.fabric import get_fabric  # noqa: E402
from e2train.fabric.networks import resnet_cifar_convs  # noqa: E402
from e2train.fabric.selftest import layer_calls, random_layer  # noqa: E402

KERNELS = ("fwd", "bwd_data", "psg")


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def time_layer(fabs, s, x, w, g, repeat, clock):
    """Best time of each kernel for each backend; the backends' calls alternate, so that a change in
    the machine's load (this one's varies by tens of percent over minutes) hits both alike."""
    calls = {name: layer_calls(fab, s, x, w, g) for name, fab in fabs.items()}
    best = {name: [float("inf")] * 3 for name in fabs}
    for _ in range(repeat):
        for i in range(3):
            for name in fabs:
                t0 = clock()
                calls[name][i]()
                best[name][i] = min(best[name][i], clock() - t0)
    return best


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = ap.parse_args()
    clock = CLOCKS[args.clock]
    ref, csim = get_fabric("reference"), get_fabric("csim")
    rng = np.random.default_rng(0)
    layers = resnet_cifar_convs(20, batch=args.batch)
    print(f"ResNet-20 conv shapes at batch {args.batch}, one thread, {cpu_name()}, {args.clock} time, "
          f"best of {args.repeat}, load average {os.getloadavg()[0]:.1f}")
    passes = ("AVX2 (forward: hls/csim/fwd_lanes.h; backward-data, weight gradient: hls/csim/mac_avx2.h)"
              if csim.lib.avx2_passes else "the kernels' own loops (no AVX2)")
    print(f"csim kernels: {passes}")
    print(f"{'layer':18s} {'shape':22s} " + " ".join(f"{k + ' ref/csim GMAC/s':>26s}" for k in KERNELS))
    per_shape = {}
    tot_mac = {"ref": [0.0] * 3, "csim": [0.0] * 3}
    tot_t = {"ref": [0.0] * 3, "csim": [0.0] * 3}
    for s in layers:
        key = (s.c, s.o, s.h, s.k, s.stride)
        if key not in per_shape:
            x, w, g = random_layer(rng, s.n, s.c, s.o, s.h, s.k, s.stride)
            per_shape[key] = time_layer({"ref": ref, "csim": csim}, s, x, w, g, args.repeat, clock)
            t = per_shape[key]
            cols = []
            for i in range(3):
                r, c = s.macs / t["ref"][i] / 1e9, s.macs / t["csim"][i] / 1e9
                cols.append(f"{r:7.2f} / {c:7.2f} ({c / r:5.1f}x)")
            shape = f"{s.c}->{s.o} {s.h}x{s.w} k{s.k} s{s.stride}"
            print(f"{s.name:18s} {shape:22s} " + " ".join(f"{col:>26s}" for col in cols))
        for b in ("ref", "csim"):
            for i in range(3):
                tot_t[b][i] += per_shape[key][b][i]
                tot_mac[b][i] += s.macs
    print()
    print("whole network (every conv layer once per kernel):")
    for i, k in enumerate(KERNELS):
        r = tot_mac["ref"][i] / tot_t["ref"][i] / 1e9
        c = tot_mac["csim"][i] / tot_t["csim"][i] / 1e9
        print(f"  {k:9s} reference {r:6.2f} GMAC/s  csim {c:6.2f} GMAC/s  ratio {c / r:5.2f}x (goal >= 10x)")
    it_ref, it_csim = sum(tot_t["ref"]), sum(tot_t["csim"])
    print(f"  conv kernels of one training iteration: reference {it_ref:.3f} s, csim {it_csim:.3f} s "
          f"(ratio {it_ref / it_csim:.2f}x; goal: a whole iteration through csim < 5 s)")


if __name__ == "__main__":
    main()
