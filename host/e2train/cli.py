"""The ``e2train`` command line: one entry point, each concern registering its own subcommands.

A command module exposes ``register(subparsers)``, which adds its parsers and sets ``func`` on them;
``func(args)`` returns the process exit code. Registering imports no heavy dependency (``--help``
answers at once); the commands import what they need when they run. A part whose third-party
dependency is not installed (torch on the ZedBoard) is left out and named in the help.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from . import __version__

# Modules that add subcommands; each is optional so that the CLI works while a part is absent.
COMMAND_MODULES = (
    "e2train.training.cli",  # train, eval, demo
    "e2train.fabric.cli",  # fabric selftest
    "e2train.power.cli",  # meter record | simulate
    "e2train.energy.cli",  # energy report | table3 | calibrate
    "e2train.board.cli",  # board info | flash | selftest
)
# what a part's commands import when they run: looked up (not imported) before the part is offered
NEEDS = {"e2train.training.cli": ("torch",)}


def _missing(name: str) -> str | None:
    return next((dep for dep in NEEDS.get(name, ()) if importlib.util.find_spec(dep) is None), None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="e2train",
        description="Energy-efficient CNN training after E2-Train: SMD, SLU and PSG, from PyTorch to the ZedBoard.",
    )
    parser.add_argument("--version", action="version", version=f"e2train {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    unavailable = []
    for name in COMMAND_MODULES:
        missing = _missing(name)
        if missing:
            unavailable.append(f"{name.split('.')[1]} (needs {missing})")
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part of the package is not in this version
            if exc.name and exc.name.split(".")[0] != "e2train":
                # a third-party dependency of that part is missing here (e.g. torch on the ZedBoard,
                # where the board commands need numpy and pynq only)
                unavailable.append(f"{name.split('.')[1]} (needs {exc.name})")
                continue
            raise
        module.register(sub)
    if unavailable:
        parser.epilog = "not available here: " + ", ".join(unavailable)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: e2train train --nproc N relaunches it
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("e2train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
