"""tools/utilization.py: yosys synth_xilinx estimate of the engine on the xc7z020."""

import json
import shutil
import subprocess
import sys

import pytest

from rtl_helpers import REPO

TOOL = REPO / "tools" / "utilization.py"
LIMIT_PERCENT = 70.0


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)


def _need_yosys():
    if shutil.which("yosys") is None:
        pytest.skip("yosys not on PATH")


def _check(rep):
    assert set(rep["percent"]) == {"LUT", "FF", "DSP", "BRAM"}
    for k, avail in {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM": 140}.items():
        assert rep["available"][k] == avail
        assert rep["percent"][k] == pytest.approx(100.0 * rep["used"][k] / avail, abs=0.01)
    assert rep["used"]["LUT"] > 0 and rep["used"]["FF"] > 0
    # every multiplier of the engine is a shift-add over a 4- or 5-bit operand: no DSP48 anywhere
    assert rep["cells"].get("DSP48E1", 0) == 0 and rep["used"]["DSP"] == 0


@pytest.mark.rtl
def test_json_report_small_config():
    _need_yosys()
    proc = _run("--json", "--param", "P=2", "--param", "OMAX=3", "--param", "KMAX=9")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    _check(rep)
    assert rep["params"] == {"P": 2, "OMAX": 3, "KMAX": 9}
    assert "psg_pe" in rep["per_module_instance"] and "psg_mul_split" in rep["per_module_instance"]


def test_bad_param_is_refused():
    proc = _run("--param", "P")
    assert proc.returncode != 0 and "NAME=VALUE" in proc.stderr
    proc = _run("--param", "P=many")
    assert proc.returncode != 0 and "not an integer" in proc.stderr


@pytest.mark.rtl
@pytest.mark.slow
def test_default_configuration_fits_the_xc7z020():
    _need_yosys()
    proc = _run("--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    _check(rep)
    for k, pct in rep["percent"].items():
        assert pct <= LIMIT_PERCENT, f"{k} at {pct} % of the xc7z020"
