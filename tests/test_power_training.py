"""The training hook: windows per epoch and evaluation, the whole run, idle subtraction, report.json."""

import argparse
import json
import time

import pytest

from e2train.power.simulators import make_simulator
from e2train.power.training import MeteredRun, add_meter_arguments


def test_metered_run_writes_measured_joules(tmp_path):
    parser = argparse.ArgumentParser()
    add_meter_arguments(parser)
    run_dir = tmp_path / "run"
    (tmp_path / "run").mkdir()
    (run_dir / "report.json").write_text(json.dumps({"top1": 90.0}))
    with make_simulator("um34c", watts=2.0, volts=5.0) as sim:
        args = parser.parse_args(["--meter", "um34c", "--port", sim.port, "--meter-interval", "0.05",
                                  "--idle-seconds", "0.3"])
        with MeteredRun.from_args(args, str(run_dir)) as metered:
            for epoch in range(2):  # a stand-in for the training loop: what it calls, when
                metered.begin("epoch", epoch)
                time.sleep(0.4)
                metered.end("epoch", epoch)
                metered.begin("eval", epoch)
                time.sleep(0.2)
                metered.end("eval", epoch)
        metered.write_report(str(run_dir / "report.json"))
    rep = json.loads((run_dir / "report.json").read_text())
    mj = rep["measured_joules"]
    assert rep["top1"] == 90.0 and mj["meter"] == "um34c" and mj["idle_subtracted"]
    assert 1.7 < mj["idle_watts"] < 2.3
    assert [e["index"] for e in mj["epochs"]] == [0, 1] and len(mj["evaluations"]) == 2
    # a constant-ish load minus its own idle power leaves about nothing: the baseline was subtracted
    assert abs(mj["run"]) < 0.25 * 2.0 * mj["seconds"]
    assert mj["seconds"] >= 1.2
    rows = (run_dir / "power.csv").read_text().splitlines()
    assert rows[0] == "time_s,watts,volts,amps" and len(rows) > 10


def test_no_meter_no_hook_and_port_required(tmp_path):
    parser = argparse.ArgumentParser()
    add_meter_arguments(parser)
    assert MeteredRun.from_args(parser.parse_args([]), str(tmp_path)) is None
    with pytest.raises(ValueError, match="--port"):
        MeteredRun.from_args(parser.parse_args(["--meter", "um24c"]), str(tmp_path))
