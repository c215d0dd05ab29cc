"""Build the C-simulation library of the HLS kernels (``hls/``) with g++, cached by content.

The library holds two programs over the same kernel templates (``csim_lib``): the CPU schedules of
the sums (``hls/csim/e2_csim.cpp``) and the synthesizable HLS tops themselves (the ``e2_ap_*``
functions of ``hls/csim/e2_csim_ap.cpp``). It is built into a per-user cache (``cache_dir()``:
``$E2TRAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/e2train``, else ``~/.cache/e2train``) under a name
keyed by a sha256 over every source, the translation units, the flags and the compiler, so a change
to any of them builds a new library beside the old one, and checkouts or installs with the same
sources share one build.

The sources are found by ``hls_dir()``: ``$E2TRAIN_HLS_DIR``, else the copy installed with the
package (``e2train/hls`` in a wheel, with the fetched ap_types headers), else the ``hls/`` folder of
the source checkout this module lives in (an editable install).

Warnings are errors in our files (-Wall -Wextra -Werror); the vendor ap_types headers come in through
-isystem. Two exceptions, both for translation units that instantiate ap_int arithmetic:
-Wno-maybe-uninitialized and -Wno-uninitialized, because g++ 12 reports reads of the
uninitialised words inside ap_private's own operators (vendor code), not in ours. -Wno-unknown-pragmas
everywhere: the ``#pragma HLS`` lines are for Vitis HLS.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..contract import KERNELS

_HERE = Path(__file__).resolve()
PACKAGE_HLS = _HERE.parents[1] / "hls"  # e2train/hls: the sources a wheel installs (setup.py copies them)
CHECKOUT_HLS = _HERE.parents[3] / "hls"  # hls/ of the source checkout (editable installs, the tests)
LIBRARY_NAME = "libe2csim"
KEEP_BUILDS = 8  # builds of other sources kept in the cache (worktrees, branches), most recent first

# translation unit (relative to hls/) -> does it instantiate ap_int arithmetic
UNITS = {
    "csim/e2_csim.cpp": False,
    "csim/e2_csim_ap.cpp": True,
    **{f"src/{k}.cpp": True for k in KERNELS},
}
SOURCE_DIRS = ("include", "src", "csim")  # what the library is built from (the key covers them)


def hls_dir() -> Path:
    """The HLS sources: $E2TRAIN_HLS_DIR, the package's installed copy, or the source checkout's hls/."""
    env = os.environ.get("E2TRAIN_HLS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (PACKAGE_HLS / "src").is_dir():
        return PACKAGE_HLS
    return CHECKOUT_HLS


def vendor_dir() -> Path:
    """The fetched ap_types headers (tools/fetch_ap_types.py puts them there)."""
    return hls_dir() / "vendor" / "ap_types"


def cache_dir() -> Path:
    """Where built libraries and testbenches go: $E2TRAIN_CACHE_DIR, else $XDG_CACHE_HOME/e2train,
    else ~/.cache/e2train."""
    env = os.environ.get("E2TRAIN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "e2train"


class BuildError(RuntimeError):
    """The library or a testbench could not be built (compiler or headers missing, compile error)."""


def compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise BuildError(
            f"C++ compiler {cxx!r} not found on PATH: the csim backend needs g++ (Debian: apt-get install g++), "
            "or set CXX to another compiler"
        )
    return path


def check_headers() -> None:
    hls, vendor = hls_dir(), vendor_dir()
    if not (hls / "src").is_dir():
        raise BuildError(
            f"HLS sources not found in {hls / 'src'}: install e2train from a wheel (which carries them), "
            "work in a source checkout, or point E2TRAIN_HLS_DIR at an hls/ folder"
        )
    if not (vendor / "ap_int.h").is_file():
        raise BuildError(
            f"ap_types headers missing in {vendor}: run `python tools/fetch_ap_types.py --dest {vendor}` "
            "(./install.sh does it) to fetch them from the pinned hls4ml wheel"
        )


def arch_flags() -> list[str]:
    """-march=native by default (the library is built on the machine that runs it); E2TRAIN_CSIM_ARCH overrides."""
    arch = os.environ.get("E2TRAIN_CSIM_ARCH", "native")
    return [f"-march={arch}"] if arch else []


def native_target(cxx: str, flags: list[str]) -> str:
    """What ``-march=native`` in ``flags`` means on this CPU (the compiler's resolved -march and ISA
    switches), for the cache key: a cache shared between machines (an NFS home) must not hand an
    AVX-512 build to a CPU without it. Empty when the flags name no native target."""
    if "-march=native" not in flags:
        return ""
    proc = subprocess.run([cxx, "-march=native", "-Q", "--help=target"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else "native"


def common_flags(hls: Path | None = None) -> list[str]:
    """Compiler flags for the sources in ``hls`` (default: ``hls_dir()``)."""
    hls = hls_dir() if hls is None else hls
    vendor = hls / "vendor" / "ap_types"
    return [
        "-std=c++14",
        "-O3",
        "-fPIC",
        *arch_flags(),
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unknown-pragmas",
        f"-I{hls / 'include'}",
        f"-I{hls / 'include' / 'sim'}",  # our hls_stream.h; Vitis HLS uses its own
        f"-I{hls / 'src'}",
        "-isystem",
        str(vendor),
    ]


AP_FLAGS = ["-Wno-maybe-uninitialized", "-Wno-uninitialized"]


def sources(subdirs=SOURCE_DIRS) -> list[Path]:
    hls = hls_dir()
    found = []
    for sub in subdirs:
        d = hls / sub
        if d.is_dir():
            found += sorted(p for p in d.rglob("*") if p.suffix in (".h", ".hpp", ".cpp"))
    return found


def _key(cxx: str, extra: list[str], subdirs=SOURCE_DIRS) -> str:
    """sha256 over the compiler, the flags, ``extra`` (units, target) and the sources' contents. The
    flags are taken for a placeholder folder: where the sources lie does not change the build."""
    hls = hls_dir()
    h = hashlib.sha256()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    h.update(version.encode())
    flags = common_flags(Path("/hls")) + AP_FLAGS + extra
    h.update(" ".join(flags).encode())
    h.update(native_target(cxx, flags).encode())
    for p in sources(subdirs):
        h.update(p.relative_to(hls).as_posix().encode())
        h.update(p.read_bytes())
    stamp = vendor_dir() / ".fetched"
    h.update(stamp.read_bytes() if stamp.is_file() else b"")
    return h.hexdigest()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"compile failed: {' '.join(cmd)}\n{proc.stderr.strip()[-4000:]}")


class _Lock:
    """An exclusive file lock so that parallel test processes build once."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = open(self.path, "w")
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()


def _cached(stem: str, key: str, suffix: str = "") -> Path:
    """The cache entry of a build of ``stem`` whose key is ``key``."""
    return cache_dir() / f"{stem}-{key[:16]}{suffix}"


def _mark_used(target: Path) -> None:
    """Builds are kept by last use (their access time, set here; the build time stays the mtime):
    the oldest beyond KEEP_BUILDS builds of the same program go."""
    os.utime(target, (time.time(), target.stat().st_mtime))
    stem = target.name.rsplit("-", 1)[0]
    others = sorted(
        (p for p in target.parent.glob(f"{stem}-*") if p.is_file() and p.suffix in ("", ".so")),
        key=lambda p: p.stat().st_atime, reverse=True,
    )
    for old in others[KEEP_BUILDS:]:
        old.unlink(missing_ok=True)


def build_cached(target: Path, force: bool, make) -> Path:
    """Under the cache's lock: unless ``target`` is there (or ``force``), ``make(out)`` builds into ``out``
    in a temporary folder beside it, which then replaces ``target`` in one rename (a reader never sees
    half a file); either way ``target`` is marked used. Returns ``target``."""
    with _Lock(cache_dir() / ".lock"):
        if force or not target.is_file():
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                out = Path(tmp) / target.name
                make(out)
                os.replace(out, target)
        _mark_used(target)
    return target


def build_library(force: bool = False, log=None) -> Path:
    """Build the csim library into the cache unless a build of the same sources is there; its path."""
    cxx = compiler()
    check_headers()
    hls = hls_dir()
    units = {hls / rel: uses_ap for rel, uses_ap in UNITS.items()}
    target = _cached(LIBRARY_NAME, _key(cxx, ["-shared", *UNITS]), ".so")

    def make(out: Path) -> None:
        if log:
            log(f"build_csim: compiling {len(units)} translation units with {cxx} into {target}")
        objs = []
        cmds = []
        for src, uses_ap in units.items():
            obj = out.parent / (src.stem + ".o")
            objs.append(obj)
            cmds.append([cxx, *common_flags(hls), *(AP_FLAGS if uses_ap else []), "-c", str(src), "-o", str(obj)])
        with ThreadPoolExecutor(max_workers=max(1, min(len(cmds), os.cpu_count() or 1))) as ex:
            for fut in [ex.submit(_run, c) for c in cmds]:
                fut.result()
        _run([cxx, "-shared", "-o", str(out), *map(str, objs)])

    return build_cached(target, force, make)


def build_testbench(kernel: str, force: bool = False) -> Path:
    """Build the C++ testbench ``hls/tb/tb_<kernel>.cpp`` with the kernel's top into the cache."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    cxx = compiler()
    check_headers()
    hls = hls_dir()
    target = _cached(f"tb_{kernel}", _key(cxx, [kernel], ("include", "src", "tb")))
    return build_cached(target, force, lambda out: _run([
        cxx, *common_flags(hls), *AP_FLAGS, str(hls / "tb" / f"tb_{kernel}.cpp"), str(hls / "src" / f"{kernel}.cpp"),
        "-o", str(out)]))
