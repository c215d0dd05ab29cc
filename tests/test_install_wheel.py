"""An installed e2train works outside the repository: a wheel built from a copy of the sources, installed
into a fresh venv, runs `e2train fabric selftest` on both csim programs, building the library from the
HLS sources the wheel carries into a cache of its own (minutes: it compiles the library from scratch)."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what a source distribution holds (MANIFEST.in), so the build cannot lean on the rest of the checkout
SDIST = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "host", "tools/fetch_ap_types.py",
         "hls/include", "hls/src", "hls/csim", "hls/tb", "hls/vendor/ap_types")


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.mark.slow
def test_wheel_installs_and_its_csim_builds_from_package_data(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    if not (ROOT / "hls" / "vendor" / "ap_types" / "ap_int.h").is_file():
        pytest.skip("ap_types headers not fetched (python tools/fetch_ap_types.py)")
    src = tmp_path / "src"
    for part in SDIST:
        (src / part).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / part, src / part)
    # offline: the build uses this interpreter's setuptools, the install no index
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", src])
    wheel = next((tmp_path / "dist").glob("e2train-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    # numpy, torch, ... from this interpreter's site-packages, after the venv's own (a .pth file adds no
    # editable install of e2train: the .pth files of an added folder are not read)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "E2TRAIN_CACHE_DIR": str(tmp_path / "cache")}
    where = _run([py, "-c", "import e2train.fabric.csim_build as b; print(b.hls_dir())"], cwd=work, env=env)
    assert Path(where.strip()) == site / "e2train" / "hls"
    out = _run([env_dir / "bin" / "e2train", "fabric", "selftest", "--backend", "csim"], cwd=work, env=env)
    assert "fabric selftest [csim]: ok" in out
    tops = "from e2train.fabric import get_fabric; from e2train.fabric.selftest import run_selftest; import numpy as np; " \
           "print(run_selftest(get_fabric('csim', program='tops'), np.random.default_rng(0)))"
    assert _run([py, "-c", tops], cwd=work, env=env).strip() == "[]"
    assert list((tmp_path / "cache").glob("libe2csim-*.so"))
