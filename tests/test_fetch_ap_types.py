"""tools/fetch_ap_types.py: verified, selective, idempotent; clear errors offline or on a bad wheel."""

import hashlib
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("fetch_ap_types", ROOT / "tools" / "fetch_ap_types.py")
fetch_ap_types = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_ap_types)


def fake_wheel(path: Path) -> Path:
    """A wheel shaped like hls4ml's, with the headers the tool requires and some it must leave out."""
    with zipfile.ZipFile(path, "w") as zf:
        prefix = fetch_ap_types.PREFIX
        for name in fetch_ap_types.REQUIRED + ("ap_fixed_base.h", "hls_stream.h"):
            zf.writestr(prefix + name, f"// {name}\n")
        zf.writestr("hls4ml/__init__.py", "")
        zf.writestr("hls4ml/templates/vivado/nnet_utils/nnet_dense.h", "")
    return path


def test_wrong_sha256_is_refused(tmp_path):
    wheel = fake_wheel(tmp_path / fetch_ap_types.WHEEL_NAME)
    with pytest.raises(fetch_ap_types.FetchError, match="refusing"):
        fetch_ap_types.fetch(tmp_path / "dest", wheel=wheel, quiet=True)
    assert not (tmp_path / "dest").exists()


def test_extracts_only_ap_types_without_hls_stream_and_is_idempotent(tmp_path, monkeypatch):
    wheel = fake_wheel(tmp_path / fetch_ap_types.WHEEL_NAME)
    monkeypatch.setattr(fetch_ap_types, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    dest = tmp_path / "vendor" / "ap_types"
    fetch_ap_types.fetch(dest, wheel=wheel, quiet=True)
    names = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert "hls_stream.h" not in names and "nnet_dense.h" not in " ".join(names)
    assert {"ap_int.h", "ap_fixed.h", "etc/ap_private.h", "ap_fixed_base.h"} <= set(names)
    # second run: complete, so no wheel and no network are needed
    monkeypatch.setattr(fetch_ap_types, "download_wheel", lambda _: pytest.fail("downloaded again"))
    assert fetch_ap_types.fetch(dest, quiet=True) == dest


def test_offline_is_a_clear_error(tmp_path, monkeypatch):
    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement hls4ml==1.3.0"

    monkeypatch.setattr(fetch_ap_types.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(fetch_ap_types.FetchError, match="offline.*--wheel"):
        fetch_ap_types.fetch(tmp_path / "dest", quiet=True)


def test_cli_reports_errors_with_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "fetch_ap_types.py"), "--dest", str(tmp_path / "d"),
                           "--wheel", str(tmp_path / "missing.whl")], capture_output=True, text=True)
    assert proc.returncode == 1 and "wheel not found" in proc.stderr


def test_installed_headers_come_from_the_verified_wheel():
    dest = fetch_ap_types.DEFAULT_DEST
    if not fetch_ap_types.is_complete(dest):
        pytest.skip("ap_types headers not fetched here (run ./install.sh)")
    assert (dest / fetch_ap_types.STAMP).read_text().strip() == fetch_ap_types.WHEEL_SHA256
    assert not (dest / "hls_stream.h").exists()
    assert "Apache License" in (dest / "ap_int.h").read_text()
