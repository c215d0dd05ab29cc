"""The metered run: windows per epoch and evaluation, the whole run, idle subtraction, report.json."""

import argparse
import json
import time

import pytest

from e2train.power.sample import MeterError
from e2train.power.simulators import make_simulator
from e2train.power.training import MeteredRun, add_meter_arguments


@pytest.mark.parametrize("idle", [0.0, 0.3])
def test_metered_run_measures_joules(tmp_path, idle):
    parser = argparse.ArgumentParser()
    add_meter_arguments(parser)
    run_dir = tmp_path / "run"
    with make_simulator("um34c", watts=2.0, volts=5.0) as sim:
        args = parser.parse_args(["--meter", "um34c", "--port", sim.port, "--meter-interval", "0.05",
                                  "--idle-seconds", str(idle)])
        with MeteredRun.from_args(args, str(run_dir)) as metered:
            for epoch in range(2):  # a stand-in for the training loop: what it calls, when
                metered.begin("epoch", epoch)
                time.sleep(0.4)
                metered.end("epoch", epoch)
                metered.begin("eval", epoch)
                time.sleep(0.2)
                metered.end("eval", epoch)
    mj = metered.finish()  # after the run: the same summary again
    assert mj["meter"] == "um34c" and mj["idle_subtracted"] == (idle > 0)
    assert [e["index"] for e in mj["epochs"]] == [0, 1] and len(mj["evaluations"]) == 2
    assert mj["seconds"] >= 1.2 and all(e["seconds"] >= 0.4 for e in mj["epochs"])
    windows = [{"joules": mj["run"], "seconds": mj["seconds"]}] + mj["epochs"] + mj["evaluations"]
    if idle:
        # a steady load minus its own idle power leaves about nothing: the baseline was subtracted
        assert 1.7 < mj["idle_watts"] < 2.3
        assert all(abs(w["joules"]) < 0.25 * 2.0 * w["seconds"] for w in windows)
    else:  # the simulator draws 2 W +- 10 %
        assert mj["idle_watts"] is None
        assert all(1.7 * w["seconds"] < w["joules"] < 2.3 * w["seconds"] for w in windows)
    rows = (run_dir / "power.csv").read_text().splitlines()
    assert rows[0] == "time_s,watts,volts,amps" and len(rows) > 10


def test_no_meter_no_hook_and_port_required(tmp_path):
    parser = argparse.ArgumentParser()
    add_meter_arguments(parser)
    assert MeteredRun.from_args(parser.parse_args([]), str(tmp_path)) is None
    with pytest.raises(MeterError, match="--port"):
        MeteredRun.from_args(parser.parse_args(["--meter", "um24c"]), str(tmp_path))


def test_e2train_train_with_a_meter(tmp_path, capsys):
    """`e2train train --meter um25c --port ...` on the simulator: windows per epoch, evaluation and run."""
    from e2train.cli import main

    out = tmp_path / "run"
    sets = ["run.progress=false", "run.log_every=5", "run.checkpoint_every=0", "run.threads=1", "run.eval_every=8",
            "data.dataset=synthetic", "data.synthetic_train=64", "data.synthetic_val=32", "model.arch=resnet8",
            "schedule.iterations=20", "schedule.batch_size=8"]
    with make_simulator("um25c", watts=2.5, volts=5.0) as sim:
        argv = ["train", "--out", str(out), "--meter", "um25c", "--port", sim.port, "--meter-interval", "0.05"]
        for kv in sets:
            argv += ["--set", kv]
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert "measured" in captured.err
    rep = json.loads((out / "report.json").read_text())
    mj = rep["measured_joules"]
    # the summary line: the meter's joules beside the estimate, under their own keys, never mixed
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["measured_joules"] == mj["run"] and line["estimated_joules"] == rep["estimated_energy"]["joules"]
    assert "measured" not in json.dumps(rep["estimated_energy"])
    # 64 images at batch 8: epochs of 8 iterations; 20 iterations = epochs 0, 1 and a cut-short epoch 2
    assert [e["index"] for e in mj["epochs"]] == [0, 1, 2]
    assert [e["index"] for e in mj["evaluations"]] == [8, 16, 20]  # eval_every=8, and the final one
    assert mj["from_iteration"] == 0 and not mj["idle_subtracted"] and mj["meter"] == "um25c"
    windows = [{"joules": mj["run"], "seconds": mj["seconds"]}] + mj["epochs"] + mj["evaluations"]
    assert all(2.0 * w["seconds"] < w["joules"] < 3.0 * w["seconds"] for w in windows)  # 2.5 W +- 10 %
    assert sum(e["seconds"] for e in mj["epochs"]) <= mj["seconds"]
    assert (out / "power.csv").read_text().startswith("time_s,watts,volts,amps\n")


def test_an_unopenable_meter_is_a_clear_error(tmp_path, capsys):
    from e2train.cli import main
    from e2train.power.serial_meter import open_meter

    metered = MeteredRun(open_meter("um24c", str(tmp_path / "none"), first_open_timeout_s=0.3), str(tmp_path))
    with pytest.raises(MeterError, match="cannot open serial port"):
        metered.start()
    assert metered.finish()["run"] is None  # nothing measured, and finishing is safe
    argv = ["train", "--out", str(tmp_path / "r"), "--meter", "um24c", "--set", "data.dataset=synthetic",
            "--set", "model.arch=resnet8", "--set", "run.progress=false"]
    assert main(argv) == 2
    assert "--meter needs --port" in capsys.readouterr().err
