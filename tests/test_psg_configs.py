"""The paper's experiment configs load, name valid conv / optimizer options, and run unchanged (shortened)."""

import glob
import json
import os
import subprocess
import sys

import pytest

from e2train.psg import make_conv_factory
from e2train.psg.optim import parse_options
from e2train.training.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = sorted(glob.glob(os.path.join(ROOT, "configs", "paper", "*.toml")))


def test_every_experiment_of_section_4_has_a_config():
    names = {os.path.basename(p)[:-5] for p in PAPER}
    for prefix, count in (("fig3_smd_", 3), ("fig3_smb_", 3), ("fig4_slu_", 3), ("fig4_sd_", 3), ("table2_", 4),
                          ("table3_e2train_", 6), ("table4_", 8), ("finetune_", 3)):
        assert sum(n.startswith(prefix) for n in names) == count, prefix


@pytest.mark.parametrize("path", PAPER, ids=lambda p: os.path.basename(p))
def test_config_loads_and_its_options_are_valid(path):
    cfg = load_config(path)
    if cfg["model"]["conv"] != "plain":
        make_conv_factory(**cfg["model"]["conv_options"])
    if cfg["optim"]["name"] != "sgd":
        opts = parse_options(cfg["optim"]["options"])
        assert opts["swa"] == (opts["method"] == "sign" and "signsgd" not in path)
    base = cfg["schedule"]["iterations"]
    with open(path) as f:
        assert "--scale" in f.read()  # each file says how to run it shortened on a CPU


def cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "e2train.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_paper_config_runs_unchanged_with_scale_and_backend(tmp_path):
    small = ["--set", "data.dataset=synthetic", "--set", "data.synthetic_train=64", "--set", "data.synthetic_val=32",
             "--set", "model.arch=resnet8", "--set", "schedule.batch_size=16", "--set", "run.progress=false",
             "--set", "run.threads=1", "--set", 'optim.options={method="sign", sign_lr=0.03, swa_bn_batches=1}']
    cfg = os.path.join(ROOT, "configs", "paper", "table3_e2train_skip40_beta005.toml")
    r = cli("train", "--config", cfg, *small, "--scale", "0.0001", "--backend", "reference", "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.load(open(tmp_path / "a" / "report.json"))
    # 64000 * 0.0001 = 6 baseline iterations; SMD at p 0.5 and energy ratio 2/3 walks 6 * (2/3) / 0.5 = 8
    assert rep["baseline_iterations"] == 6 and rep["iterations"] == 8
    assert rep["config"]["model"]["conv_options"] == {"mode": "psg", "beta": 0.05, "backend": "reference"}
    assert "psg_predicted_ratio" in rep and "bit_weighted_savings" in rep and rep["swa"]["snapshots"] >= 1


def test_backend_flag_on_a_float_config_is_a_clear_error(tmp_path):
    cfg = os.path.join(ROOT, "configs", "paper", "table2_sgd.toml")
    r = cli("train", "--config", cfg, "--set", "data.dataset=synthetic", "--backend", "csim", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 2 and "float convs" in r.stderr and "Traceback" not in r.stderr
    r = cli("train", "--config", cfg, "--set", "data.dataset=synthetic", "--scale", "-1", "--out", str(tmp_path / "c"), cwd=tmp_path)
    assert r.returncode == 2 and "--scale must be positive" in r.stderr
    psg = os.path.join(ROOT, "configs", "paper", "table2_psg.toml")
    r = cli("train", "--config", psg, "--set", "data.dataset=synthetic", "--backend", "nosuch", "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 2 and "unknown fabric backend" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "d" / "report.json")
