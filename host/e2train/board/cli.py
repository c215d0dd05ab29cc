"""``e2train board info | flash | selftest``: what is loaded, load a bitstream, check the kernels.

``--device sim`` runs each command against the simulated board (anywhere); the default is the board.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..fabric import BackendUnavailable
from .errors import BoardError
from .executors import EXECUTOR_ALIASES, EXECUTORS
from .manifest import hwh_path_for, load_manifest, sha256_file


def register(sub) -> None:
    p = sub.add_parser("board", help="the ZedBoard (or the simulated board): info, flash, selftest")
    bsub = p.add_subparsers(dest="board_command", metavar="ACTION")

    def common(q, bitfile_help):
        q.add_argument("--device", choices=("board", "sim"), default="board", help="the ZedBoard (default) or the simulated board")
        q.add_argument("--manifest", default=None, help="bitstream manifest (default: bitstreams/manifest.json)")
        q.add_argument("--bitfile", default=None, help=bitfile_help)
        q.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check against the manifest")

    info = bsub.add_parser("info", help="the manifest, the bitstream files and what is loaded")
    common(info, "bitstream to describe (default: the manifest's, beside it)")
    info.set_defaults(func=_info)

    flash = bsub.add_parser("flash", help="check a bitstream against the manifest and load it")
    common(flash, "bitstream to load (default: the manifest's, beside it)")
    flash.set_defaults(func=_flash)

    st = bsub.add_parser("selftest", help="run each kernel on random layers against the reference model")
    common(st, "bitstream to load first (board default: the manifest's; sim default: none)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one kernel run (default 30)")
    st.add_argument("--executor", choices=(*EXECUTORS, *EXECUTOR_ALIASES), default="auto",
                    help="what runs the simulated kernels: csim (the CPU schedules), csim-tops (the HLS tops; "
                         "csim-ap is its old name) or reference")
    st.set_defaults(func=_selftest)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _open(args, **extra):
    from .fabric import PynqFabric

    device = "sim" if args.device == "sim" else None
    return PynqFabric(device=device, bitfile=args.bitfile, manifest=args.manifest, verify=args.verify, **extra)


def _guard(fn):
    """Board, bitstream and availability problems are one clear line on stderr and exit code 1."""

    def run(args) -> int:
        try:
            return fn(args)
        except (BoardError, BackendUnavailable) as exc:
            print(f"e2train board: error: {exc}", file=sys.stderr)
            return 1

    return run


@_guard
def _info(args) -> int:
    m = load_manifest(args.manifest)
    print(f"manifest      {m.path}")
    print(
        f"design        {m.design} v{m.design_version}, register map v{m.regmap_version}, contract v{m.contract_version}, "
        f"{m.part} at {m.clock_mhz:g} MHz"
    )
    bit = args.bitfile or m.default_bitfile()
    for key, f in (("bit", bit), ("hwh", hwh_path_for(bit))):
        want = m.files[key]["sha256"]
        if not f.exists():
            state = "missing"
        elif not want:
            state = "present, no sha256 recorded in the manifest"
        else:
            state = "matches the manifest" if sha256_file(f) == want else "DOES NOT match the manifest"
        print(f"{key:13s} {f}: {state}")
    for k in m.kernels.values():
        print(f"kernel        {k.kernel:20s} {k.instance} ({k.top}) at {k.base_address:#010x}")
    if args.device == "sim":
        fab = _open(args)
        d = fab.describe()
        print(f"loaded        simulated board, kernels run by {d['executor']}, PYNQ API: {d['api']}, contract {d['contract']}")
        return 0
    from .pynq_api import import_pynq

    pynq = import_pynq()
    if pynq is None:
        print("loaded        unknown: the pynq package is not installed (not a PYNQ board?); try --device sim")
        return 0
    dev = pynq.Device.active_device
    print(f"loaded        {getattr(dev, 'bitfile_name', None) or 'nothing'} on {dev.name if hasattr(dev, 'name') else dev.tag}")
    return 0


@_guard
def _flash(args) -> int:
    t0 = time.perf_counter()
    if args.bitfile is None:  # flashing always loads a file, on the simulated board too
        args.bitfile = load_manifest(args.manifest).default_bitfile()
    fab = _open(args)
    where = "the simulated board" if args.device == "sim" else "the board"
    print(f"loaded {fab.bitfile} on {where} ({time.perf_counter() - t0:.2f} s)")
    for kernel, at in fab.describe()["kernels"].items():
        print(f"  {kernel:20s} {at}")
    return 0


@_guard
def _selftest(args) -> int:
    from ..fabric.selftest import run_selftest

    t0 = time.perf_counter()
    fab = _open(args, timeout=args.timeout, executor=args.executor) if args.device == "sim" else _open(args, timeout=args.timeout)
    d = fab.describe()
    print(f"board selftest on {d['device']}" + (f" (kernels run by {d['executor']})" if d["executor"] else ""))
    failures = run_selftest(fab, np.random.default_rng(args.seed), log=print)
    fab.close()
    print(
        f"board selftest: {'FAILED' if failures else 'ok'} ({fab.calls} kernel runs, "
        f"{fab.busy_s:.3f} s busy, {time.perf_counter() - t0:.2f} s total)"
    )
    return 1 if failures else 0
