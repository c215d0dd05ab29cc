"""Building the csim library: cached by content, rebuilt on a source change, clear errors when the
compiler or the ap_types headers are missing."""

import shutil
from pathlib import Path

import pytest

from e2train.fabric import BackendUnavailable, csim_build

ROOT = Path(__file__).resolve().parent.parent


def test_library_is_cached():
    lib = csim_build.build_library()
    before = lib.stat().st_mtime_ns
    assert csim_build.build_library() == lib
    assert lib.stat().st_mtime_ns == before  # nothing recompiled


def test_key_changes_with_a_source_and_the_flags(tmp_path, monkeypatch):
    hls = tmp_path / "hls"
    shutil.copytree(ROOT / "hls", hls, ignore=shutil.ignore_patterns("build", "vendor"))
    monkeypatch.setenv("E2TRAIN_HLS_DIR", str(hls))
    cxx = csim_build.compiler()
    key = csim_build._key(cxx, [])
    assert csim_build._key(cxx, []) == key
    src = hls / "src" / "conv_fwd.h"
    src.write_text(src.read_text() + "\n// a change\n")
    assert csim_build._key(cxx, []) != key
    changed = csim_build._key(cxx, [])
    monkeypatch.setenv("E2TRAIN_CSIM_ARCH", "x86-64")
    assert csim_build._key(cxx, []) != changed


def test_missing_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-g++-e2train")
    with pytest.raises(csim_build.BuildError, match="compiler 'no-such-g\\+\\+-e2train' not found"):
        csim_build.build_library()


def test_missing_headers_is_a_clear_error_and_backend_unavailable(tmp_path, monkeypatch):
    from e2train.fabric import csim

    hls = tmp_path / "hls"  # sources without the fetched headers
    shutil.copytree(ROOT / "hls", hls, ignore=shutil.ignore_patterns("build", "vendor"))
    monkeypatch.setenv("E2TRAIN_HLS_DIR", str(hls))
    with pytest.raises(csim_build.BuildError, match="fetch_ap_types.py"):
        csim_build.build_library()
    monkeypatch.setattr(csim, "_lib", None)
    with pytest.raises(BackendUnavailable, match="ap_types headers missing"):
        csim.load_library()


def test_compile_error_is_reported_and_keeps_the_old_library(tmp_path, monkeypatch):
    lib = csim_build.build_library()
    good = lib.read_bytes()
    hls = tmp_path / "hls"
    shutil.copytree(ROOT / "hls", hls, ignore=shutil.ignore_patterns("build", "vendor"))
    (hls / "vendor").symlink_to(ROOT / "hls" / "vendor")
    (hls / "csim" / "e2_csim.cpp").write_text("int broken( {\n")
    monkeypatch.setenv("E2TRAIN_HLS_DIR", str(hls))
    monkeypatch.setattr(csim_build, "UNITS", {"csim/e2_csim.cpp": False})
    monkeypatch.setattr(csim_build, "common_flags", lambda hls=hls: ["-std=c++14", "-fPIC", f"-I{hls / 'include'}"])
    with pytest.raises(csim_build.BuildError, match="compile failed"):
        csim_build.build_library(force=True)
    assert lib.read_bytes() == good


def test_unknown_testbench_kernel():
    with pytest.raises(ValueError, match="unknown kernel"):
        csim_build.build_testbench("conv_nope")
