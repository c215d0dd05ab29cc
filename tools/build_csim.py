#!/usr/bin/env python3
"""Build the C-simulation library of the HLS kernels (libe2csim) with g++, into the per-user cache.

    python tools/build_csim.py [--force] [--testbenches]

A no-op when a build of the same sources is in the cache (its key covers every source, the flags and
the compiler); prints the paths. The cache is $E2TRAIN_CACHE_DIR, else $XDG_CACHE_HOME/e2train, else
~/.cache/e2train. The logic lives in ``e2train.fabric.csim_build`` so that the csim backend can build
on first use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host"))

from e2train.fabric.csim_build import KERNELS, BuildError, build_library, build_testbench  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    ap.add_argument("--testbenches", action="store_true", help="also build the C++ testbenches (tb_<kernel>-<key> in the cache)")
    args = ap.parse_args(argv)
    try:
        lib = build_library(force=args.force, log=print)
        print(f"build_csim: {lib} is up to date")
        if args.testbenches:
            for k in KERNELS:
                print(f"build_csim: {build_testbench(k, force=args.force)}")
    except BuildError as exc:
        print(f"build_csim: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
