"""Where the csim library's sources are found and where its builds go: a per-user cache keyed by the
sources, not a folder of the checkout (the package must work when installed from a wheel)."""

import os
import shutil
from pathlib import Path

from e2train.fabric import csim_build

ROOT = Path(__file__).resolve().parent.parent


def test_cache_dir_env_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("E2TRAIN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert csim_build.cache_dir() == tmp_path / "home" / ".cache" / "e2train"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert csim_build.cache_dir() == tmp_path / "xdg" / "e2train"
    monkeypatch.setenv("E2TRAIN_CACHE_DIR", str(tmp_path / "mine"))
    assert csim_build.cache_dir() == tmp_path / "mine"


def test_sources_env_then_installed_copy_then_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("E2TRAIN_HLS_DIR", raising=False)
    assert csim_build.hls_dir() == ROOT / "hls"  # this checkout: no copy inside the package
    installed = tmp_path / "site" / "e2train" / "hls"
    (installed / "src").mkdir(parents=True)
    monkeypatch.setattr(csim_build, "PACKAGE_HLS", installed)
    assert csim_build.hls_dir() == installed
    assert csim_build.vendor_dir() == installed / "vendor" / "ap_types"
    monkeypatch.setenv("E2TRAIN_HLS_DIR", str(tmp_path / "elsewhere"))
    assert csim_build.hls_dir() == tmp_path / "elsewhere"


def test_library_lands_in_the_cache_under_its_key():
    lib = csim_build.build_library()
    assert lib.parent == csim_build.cache_dir()
    key = csim_build._key(csim_build.compiler(), ["-shared", *csim_build.UNITS])
    assert lib.name == f"libe2csim-{key[:16]}.so"
    assert ROOT / "hls" not in lib.parents  # not a folder of the checkout


def test_key_does_not_depend_on_where_the_sources_lie(tmp_path, monkeypatch):
    cxx = csim_build.compiler()
    key = csim_build._key(cxx, ["-shared"])
    copy = tmp_path / "moved" / "hls"
    shutil.copytree(ROOT / "hls", copy, ignore=shutil.ignore_patterns("build"))
    monkeypatch.setenv("E2TRAIN_HLS_DIR", str(copy))
    assert csim_build._key(cxx, ["-shared"]) == key


def test_old_builds_beyond_the_limit_are_dropped_by_last_use(tmp_path, monkeypatch):
    monkeypatch.setenv("E2TRAIN_CACHE_DIR", str(tmp_path))
    names = [f"libe2csim-{i:016x}.so" for i in range(csim_build.KEEP_BUILDS + 2)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (1000 + i, 1000))  # used in this order
    (tmp_path / "tb_conv_fwd-0000000000000000").write_bytes(b"")  # another program: not counted
    csim_build._mark_used(tmp_path / names[0])  # the oldest, used again
    left = sorted(p.name for p in tmp_path.glob("libe2csim-*"))
    assert len(left) == csim_build.KEEP_BUILDS
    assert names[0] in left and names[1] not in left and names[2] not in left
    assert (tmp_path / "tb_conv_fwd-0000000000000000").exists()
    assert (tmp_path / names[0]).stat().st_mtime == 1000  # the build time stays
