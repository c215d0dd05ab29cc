"""``e2train fabric selftest``: run the kernels of one backend on random data against the reference."""

from __future__ import annotations

import time


def register(sub) -> None:
    p = sub.add_parser("fabric", help="fabric backends: self-test against the reference model")
    fsub = p.add_subparsers(dest="fabric_command", metavar="ACTION")
    st = fsub.add_parser("selftest", help="run the three kernels on random layers and compare with the reference")
    st.add_argument("--backend", default="reference", help="reference, csim, torch, pynq or cpu (the integer CPU engine's library; default: reference)")
    st.add_argument("--seed", type=int, default=0)
    st.set_defaults(func=_selftest)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _selftest(args) -> int:
    import numpy as np

    from . import get_fabric
    from .selftest import run_selftest  # loads fixed, and with it torch where it is installed

    t0 = time.perf_counter()
    fab = get_fabric(args.backend)
    failures = run_selftest(fab, np.random.default_rng(args.seed), log=print)
    status = "FAILED" if failures else "ok"
    print(f"fabric selftest [{fab.name}]: {status} ({time.perf_counter() - t0:.2f} s)")
    return 1 if failures else 0
