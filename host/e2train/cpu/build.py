"""Build the integer CPU engine's library (``csrc/e2cpu.cpp``) with g++, cached by content.

Two variants of the one source: ``native`` (-march=native: AVX2 / VNNI paths where the CPU has them,
the plain C++ loops where it lacks AVX2) and ``portable`` (-DE2CPU_PORTABLE, the baseline x86-64 or
whatever the compiler targets: plain C++ only). A build lands in the per-user cache of the csim
library (``e2train.fabric.csim_build.cache_dir``) under a key over the compiler's version, the flags
(with what -march=native means on this CPU) and the source; a changed source, flag or CPU builds anew.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from ..fabric.csim_build import BuildError, _cached, _run, build_cached, compiler, native_target

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"  # package data: a wheel carries it
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
    h.update(native_target(cxx, flags(variant)).encode())
    for p in sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def library_path(variant: str, cxx: str | None = None) -> Path:
    """Where the build of ``variant`` for the current sources, flags and CPU lives in the cache."""
    return _cached(f"libe2cpu_{variant}", _key(cxx or compiler(), variant), ".so")


def build_library(variant: str = "native", force: bool = False) -> Path:
    """Build ``libe2cpu_<variant>`` into the cache unless it is there; returns its path (BuildError if not)."""
    cxx = compiler()
    return build_cached(library_path(variant, cxx), force,
                        lambda out: _run([cxx, *flags(variant), str(SOURCE_DIR / "e2cpu.cpp"), "-o", str(out)]))


__all__ = ["BuildError", "VARIANTS", "build_library", "flags", "library_path"]
