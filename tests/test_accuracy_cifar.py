"""Accuracy on real CIFAR-10 (``-m slow``): the README's table rows, run again, must reach their floors.

Each floor sits about a point below what the row measured (README, "Table 2 and Table 3 on our schedule";
docs/psg.md, the screening table): a guard against regressions, not the issues' goals (those are the
tables' business, and where one is not met the README says so). One run is one seed: at a quarter of
the schedule two seeds of the same PSG config ended 2.8 points apart, so that floor sits below both. The full-length rows take 1 - 2 hours
on one core each; the quarter-schedule PSG row (about 30 minutes) is the quick check:

    pytest -m slow tests/test_accuracy_cifar.py -k quarter

The images come from the shared datasets (``make_cifar10.py``), or from ``E2TRAIN_CIFAR_DIR`` when it
names a folder that already holds ``cifar-10-batches-py``; ``E2TRAIN_TEST_THREADS`` sets the runs' torch
threads (default: torch's own choice).
"""

import json
import os
import subprocess
import sys

import pytest
from cifar_files import real_cifar10

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# (id, config, --scale, floor for val top-1, the lowest measured top-1 that the floor guards)
ROWS = [
    # sign weight decay 0.01 measured 73.2 % (s3); the recipe before it 73.9 % and 71.1 % with two seeds
    # (docs/psg.md, s1 and s12): the floor sits below all three
    ("psg_quarter", "cifar10_resnet20_psg.toml", 0.25, 0.700, 0.732),
    ("sgd", "cifar10_resnet20_sgd.toml", 1.0, 0.850, 0.859),
    ("fixed8", "cifar10_resnet20_fixed8.toml", 1.0, 0.850, 0.8592),
    ("signsgd", "cifar10_resnet20_signsgd.toml", 1.0, 0.830, 0.8378),
    ("psg", "cifar10_resnet20_psg.toml", 1.0, 0.825, 0.8366),  # sign weight decay 0.01 (one seed so far)
    ("e2train_skip20", "cifar10_resnet20_e2train_skip20.toml", 1.0, 0.750, 0.759),
    ("e2train_skip60", "cifar10_resnet20_e2train_skip60.toml", 1.0, 0.650, 0.662),
]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return real_cifar10(tmp_path_factory.mktemp("cifar"))


def test_rows_match_the_configs():
    for _, config, scale, floor, measured in ROWS:
        assert os.path.isfile(os.path.join(ROOT, "configs", config)), config
        assert 0 < scale <= 1 and floor < measured


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_row_reaches_its_accuracy(row, cifar_dir, tmp_path):
    _, config, scale, floor, measured = row
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "e2train.cli", "train", "--config", os.path.join(ROOT, "configs", config),
           "--set", f"data.dir={cifar_dir}", "--set", "run.progress=false",
           "--set", f"run.threads={int(os.environ.get('E2TRAIN_TEST_THREADS', '0'))}", "--scale", str(scale), "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = json.loads((out / "report.json").read_text())
    assert report["eval_split"] == "validation" and report["eval_samples"] == 5000
    assert report["top1"] >= floor, f"{config} at scale {scale}: top-1 {report['top1']:.4f} < {floor} (measured {measured})"
    energy = report["estimated_energy"]["tables"]
    for table in ("zedboard", "horowitz45"):
        assert 0 < energy[table]["joules"] <= energy[table]["baseline_joules"]
