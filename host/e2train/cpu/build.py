"""Build the integer CPU engine's library (``csrc/e2cpu.cpp``) with g++, cached by content.

Two variants of the one source: ``native`` (-march=native: AVX2 / VNNI paths where the CPU has them,
the plain C++ loops where it lacks AVX2) and ``portable`` (-DE2CPU_PORTABLE, the baseline x86-64 or
whatever the compiler targets: plain C++ only). The key of a build is a sha256 over the compiler's
version, the flags and the source, stored beside the library as the csim library's is
(``e2train.fabric.csim_build``); a changed source or flag rebuilds it. Nothing built is committed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from ..fabric.csim_build import BuildError, _install, _Lock, _run, _up_to_date, compiler

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
BUILD = Path(__file__).resolve().parent / "build"
VARIANTS = ("native", "portable")


def flags(variant: str) -> list[str]:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    common = ["-std=c++17", "-O3", "-fPIC", "-shared", "-fopenmp", "-Wall", "-Wextra", "-Werror"]
    if variant == "portable":
        return [*common, "-DE2CPU_PORTABLE"]
    arch = os.environ.get("E2TRAIN_CPU_ARCH", "native")  # as E2TRAIN_CSIM_ARCH for the csim library
    return [*common, f"-march={arch}"] if arch else common


def sources() -> list[Path]:
    return sorted(p for p in SOURCE_DIR.iterdir() if p.suffix in (".h", ".cpp"))


def _key(cxx: str, variant: str) -> str:
    h = hashlib.sha256()
    h.update(subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.encode())
    h.update(" ".join(flags(variant)).encode())
    for p in sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def library_path(variant: str) -> Path:
    return BUILD / f"libe2cpu_{variant}.so"


def build_library(variant: str = "native", force: bool = False) -> Path:
    """Build ``build/libe2cpu_<variant>.so`` unless it is up to date; returns its path (BuildError if not)."""
    cxx = compiler()
    key = _key(cxx, variant)
    target = library_path(variant)
    with _Lock(BUILD / ".lock"):
        if not force and _up_to_date(target, key):
            return target
        with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
            out = Path(tmp) / target.name
            _run([cxx, *flags(variant), str(SOURCE_DIR / "e2cpu.cpp"), "-o", str(out)])
            _install(out, target, key)
    return target


__all__ = ["BUILD", "BuildError", "VARIANTS", "build_library", "flags", "library_path"]
