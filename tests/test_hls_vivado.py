"""Vitis HLS on the kernels (only where vitis_hls is on PATH): C simulation on the golden vectors,
synthesis for the xc7z020, IP export, and the generated register map against regmap.py."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2train.board import regmap
from e2train.fabric.csim_build import KERNELS

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.vivado,
    pytest.mark.skipif(shutil.which("vitis_hls") is None, reason="vitis_hls is not on PATH"),
]


@pytest.fixture(scope="module")
def golden():
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_golden.py")], check=True)


@pytest.mark.parametrize("kernel", KERNELS)
def test_vitis_csim_csynth_export(golden, kernel):
    env = dict(os.environ, E2_HLS_STEPS="csim csynth export")
    proc = subprocess.run(["vitis_hls", "-f", str(ROOT / "hls" / "tcl" / f"{kernel}.tcl")], env=env,
                          capture_output=True, text=True, cwd=ROOT / "hls")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "all match" in proc.stdout
    top = f"{kernel}_top"
    headers = list((ROOT / "hls" / "build" / "vitis" / kernel).rglob(f"x{top}_hw.h"))
    assert headers, "export produced no driver header"
    text = headers[0].read_text()
    for reg in regmap.REGMAPS[top].values():
        suffix = "AP_RETURN" if reg.kind == "return" else f"{reg.name.upper()}_DATA"
        m = re.search(rf"#define\s+X\w*_ADDR_{suffix}\s+0x([0-9a-fA-F]+)", text)
        assert m, f"{suffix} not in {headers[0].name}"
        assert int(m.group(1), 16) == reg.offset, f"{top}.{reg.name}"
