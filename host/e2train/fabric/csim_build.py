"""Build the C-simulation library of the HLS kernels (``hls/``) with g++, cached by content.

The library holds two paths over the same kernel templates: the fast one (``NativeTypes``, CPU tile
sizes; ``hls/csim/e2_csim.cpp``) and the synthesizable tops themselves (``ApTypes``; the ``e2_ap_*``
functions of ``hls/csim/e2_csim_ap.cpp``). It is rebuilt when any source, the flags or the compiler
change: the key is a sha256 over all of them, stored beside the library.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HLS = ROOT / "hls"
VENDOR = HLS / "vendor" / "ap_types"
BUILD = HLS / "build"
LIBRARY = BUILD / "libe2csim.so"
KERNELS = ("conv_fwd", "conv_bwd_data", "conv_bwd_weight_psg")

# translation unit -> does it instantiate ap_int arithmetic
UNITS = {
    HLS / "csim" / "e2_csim.cpp": False,
    HLS / "csim" / "e2_csim_ap.cpp": True,
    **{HLS / "src" / f"{k}.cpp": True for k in KERNELS},
}


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
    if not (VENDOR / "ap_int.h").is_file():
        raise BuildError(
            f"ap_types headers missing in {VENDOR}: run `python tools/fetch_ap_types.py` "
            "(./install.sh does it) to fetch them from the pinned hls4ml wheel"
        )
    if not (HLS / "src").is_dir():
        raise BuildError(f"HLS sources not found in {HLS / 'src'}: the csim backend needs a source checkout of e2train")


def arch_flags() -> list[str]:
    """-march=native by default (the library is built on the machine that runs it); E2TRAIN_CSIM_ARCH overrides."""
    arch = os.environ.get("E2TRAIN_CSIM_ARCH", "native")
    return [f"-march={arch}"] if arch else []


def common_flags() -> list[str]:
    return [
        "-std=c++14",
        "-O3",
        "-fPIC",
        *arch_flags(),
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unknown-pragmas",
        f"-I{HLS / 'include'}",
        f"-I{HLS / 'include' / 'sim'}",  # our hls_stream.h; Vitis HLS uses its own
        f"-I{HLS / 'src'}",
        "-isystem",
        str(VENDOR),
    ]


AP_FLAGS = ["-Wno-maybe-uninitialized", "-Wno-uninitialized"]


def sources(subdirs=("include", "src", "csim")) -> list[Path]:
    found = []
    for sub in subdirs:
        d = HLS / sub
        if d.is_dir():
            found += sorted(p for p in d.rglob("*") if p.suffix in (".h", ".hpp", ".cpp"))
    return found


def _key(cxx: str, extra: list[str], subdirs=("include", "src", "csim")) -> str:
    h = hashlib.sha256()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    h.update(version.encode())
    h.update(" ".join(common_flags() + AP_FLAGS + extra).encode())
    for p in sources(subdirs):
        h.update(p.relative_to(HLS).as_posix().encode())
        h.update(p.read_bytes())
    stamp = VENDOR / ".fetched"
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


def _up_to_date(target: Path, key: str) -> bool:
    stamp = target.with_name(target.name + ".key")
    return target.is_file() and stamp.is_file() and stamp.read_text().strip() == key


def _install(tmp: Path, target: Path, key: str) -> None:
    os.replace(tmp, target)
    target.with_name(target.name + ".key").write_text(key + "\n")


def build_library(force: bool = False, log=None) -> Path:
    """Build ``hls/build/libe2csim.so`` unless it is up to date; returns its path."""
    cxx = compiler()
    check_headers()
    key = _key(cxx, ["-shared"])
    with _Lock(BUILD / ".lock"):
        if not force and _up_to_date(LIBRARY, key):
            return LIBRARY
        if log:
            log(f"build_csim: compiling {len(UNITS)} translation units with {cxx} (cached afterwards)")
        with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
            objs = []
            cmds = []
            for src, uses_ap in UNITS.items():
                obj = Path(tmp) / (src.stem + ".o")
                objs.append(obj)
                cmds.append([cxx, *common_flags(), *(AP_FLAGS if uses_ap else []), "-c", str(src), "-o", str(obj)])
            with ThreadPoolExecutor(max_workers=max(1, min(len(cmds), os.cpu_count() or 1))) as ex:
                for fut in [ex.submit(_run, c) for c in cmds]:
                    fut.result()
            out = Path(tmp) / LIBRARY.name
            _run([cxx, "-shared", "-o", str(out), *map(str, objs)])
            _install(out, LIBRARY, key)
    return LIBRARY


def build_testbench(kernel: str, force: bool = False) -> Path:
    """Build the C++ testbench ``hls/tb/tb_<kernel>.cpp`` with the kernel's top into ``hls/build/``."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    cxx = compiler()
    check_headers()
    target = BUILD / f"tb_{kernel}"
    key = _key(cxx, [kernel], ("include", "src", "tb"))
    with _Lock(BUILD / ".lock"):
        if not force and _up_to_date(target, key):
            return target
        with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
            out = Path(tmp) / target.name
            _run([cxx, *common_flags(), *AP_FLAGS, str(HLS / "tb" / f"tb_{kernel}.cpp"), str(HLS / "src" / f"{kernel}.cpp"),
                  "-o", str(out)])
            _install(out, target, key)
    return target
