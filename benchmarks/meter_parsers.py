"""Throughput of the meter parsers on a stream of valid frames with 10 % noise between them.

    .venv/bin/python benchmarks/meter_parsers.py [--frames N]

Prints, per meter, frames decoded per second and MB/s of input: the headroom over the meters' own rates
(at most a few frames per second) that the reader thread has for resynchronising on bad input.
"""

from __future__ import annotations

import argparse
import random
import time

from e2train.power.rdtech import MODELS, UMParser, build_frame
from e2train.power.wattsup import WattsUpParser, format_record
from e2train.power.wt310 import WT310Parser, format_response


def stream(make_frame, n: int, rng: random.Random) -> bytes:
    parts = []
    for k in range(n):
        if rng.random() < 0.1:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))))
        parts.append(make_frame(k))
    return b"".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    args = ap.parse_args()
    rng = random.Random(0)
    cases = {
        "wattsup": (lambda: WattsUpParser(), lambda k: format_record(50 + k % 7, 120.0, 0.42)),
        "um24c": (lambda: UMParser("um24c"), lambda k: build_frame(MODELS["um24c"], 5.0, 0.5 + (k % 7) / 100)),
        "um34c": (lambda: UMParser("um34c"), lambda k: build_frame(MODELS["um34c"], 5.0, 0.5 + (k % 7) / 100)),
        "wt310": (lambda: WT310Parser(), lambda k: format_response(230.0, 0.035 + (k % 7) / 1000, 7.5)),
    }
    for name, (make_parser, make_frame) in cases.items():
        data = stream(make_frame, args.frames, rng)
        p = make_parser()
        t0 = time.perf_counter()
        got = 0
        for i in range(0, len(data), 4096):  # reads of up to 4 KiB, as a serial port delivers them
            got += len(p.feed(data[i:i + 4096]))
        dt = time.perf_counter() - t0
        print(f"{name:8s} {got:6d}/{args.frames} frames in {dt:.3f} s: {got / dt:10.0f} frames/s, "
              f"{len(data) / dt / 1e6:6.2f} MB/s")


if __name__ == "__main__":
    main()
