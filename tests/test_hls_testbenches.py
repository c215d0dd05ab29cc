"""The C++ testbenches of hls/tb: built with g++ against the synthesizable tops, run on golden vectors
from the reference (tools/gen_golden.py), and shown to fail on a wrong golden value."""

import subprocess
import sys
from pathlib import Path

import pytest

from e2train.fabric.csim_build import KERNELS, build_testbench

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_golden.py"), "--out", str(out), "--random", "4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_testbench_passes_on_golden_vectors(golden, kernel):
    tb = build_testbench(kernel)
    proc = subprocess.run([str(tb), str(golden / f"{kernel}.txt")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "all match" in proc.stdout


@pytest.mark.parametrize("kernel", KERNELS)
def test_testbench_fails_on_a_wrong_golden_value(golden, kernel, tmp_path):
    lines = (golden / f"{kernel}.txt").read_text().splitlines()
    # the last array of the first case is an expected output: change its first value
    end = lines.index("end")
    name, count, first, *rest = lines[end - 1].split()
    lines[end - 1] = " ".join([name, count, str(int(first) + 1), *rest])
    bad = tmp_path / f"{kernel}.txt"
    bad.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(build_testbench(kernel)), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "MISMATCH" in proc.stdout and "golden" in proc.stderr


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("header, says", [("contract 1", "contract v1, the kernels of v2"),
                                          (None, "contract v1 (no 'contract' line), the kernels of v2")])
def test_testbench_refuses_a_golden_file_of_another_contract(golden, kernel, tmp_path, header, says):
    """A v1 file (MSBs floored) would fail case after case; the testbench says why, once, exit 3."""
    lines = (golden / f"{kernel}.txt").read_text().splitlines()
    assert lines[0] == "contract 2"
    old = tmp_path / f"{kernel}.txt"
    old.write_text("\n".join(([header] if header else []) + lines[1:]) + "\n")
    proc = subprocess.run([str(build_testbench(kernel)), str(old)], capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and "regenerate it" in proc.stderr
    assert "MISMATCH" not in proc.stdout


def test_testbench_fails_without_golden_file(tmp_path):
    proc = subprocess.run([str(build_testbench("conv_fwd")), str(tmp_path / "missing.txt")], capture_output=True, text=True)
    assert proc.returncode == 1 and "cannot open golden file" in proc.stderr


def test_testbench_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "conv_fwd.txt"
    bad.write_text("contract 2\ncase conv_fwd 1 1 1 1 1 1 1\nx 3 1 2\nend\n")
    proc = subprocess.run([str(build_testbench("conv_fwd")), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "malformed" in proc.stderr


def test_golden_files_hold_the_edge_cases(golden):
    psg = (golden / "conv_bwd_weight_psg.txt").read_text()
    assert psg.startswith("contract 2\n")
    assert "x 9 -128 -128" in psg and "g 9 -32768 -32768" in psg
    values = {int(v) for line in psg.splitlines() if line.startswith(("x ", "g ")) for v in line.split()[2:]}
    assert {120, 127, -8, 8, -24, 24, 32736, 32767, -32, 32, -96, 96} <= values  # MSB saturation band and ties
    assert "case conv_bwd_weight_psg 1 1 1 1 4 1 1 32768 0" in psg  # the threshold tie
    fwd = (golden / "conv_fwd.txt").read_text()
    assert "case conv_fwd 2 5 32 32 9 3 2" in fwd  # the tops' largest plane, stride 2
