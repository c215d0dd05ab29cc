"""``e2train train --backend pynq --device sim`` gives bit for bit the weights of ``--backend csim``.

A short run of a gated ResNet-8 on the synthetic images: SMD decides before each batch is drawn, the
SLU gates run on the host and a gated block sends only its active samples to the fabric, the PSG
convolutions run their integer kernels through the driver on the simulated board (or through csim
directly), sign SGD. Both runs must end with identical parameters and optimizer state; the pynq run
reports how busy the fabric was.
"""

import json
from pathlib import Path

import torch

from e2train.cli import main

ARGS = [
    "train", "--config", "configs/demo_synthetic.toml",
    "--set", "model.conv=e2train.psg:make_conv_factory", "--set", "optim.name=e2train.psg:optimizer_factory",
    "--set", "model.arch=resnet8", "--set", "schedule.iterations=6", "--set", "schedule.batch_size=8",
    "--set", "data.synthetic_train=64", "--set", "data.synthetic_val=16",
    "--set", "run.progress=false", "--set", "run.checkpoint_every=0",
    "--set", "smd.energy_ratio=\"1\"",  # the demo's 4/3 stretch off: 6 scheduled iterations, as counted below
    # Bernoulli gate draws in training: fresh gates (p ~ 0.88) then skip some block-samples in 2 iterations
    "--set", "slu.sample_in_training=true",
]


def _assert_same(a, b, where):
    """Equal structure, equal leaves, tensors bit for bit."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _run(tmp_path, name, *backend):
    out = tmp_path / name
    assert main(ARGS + ["--out", str(out), "--backend", *backend]) == 0
    return torch.load(out / "checkpoint.pt", weights_only=False), json.loads((out / "report.json").read_text())


def test_training_on_the_simulated_board_matches_csim(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # configs/ is relative to the repository
    board, board_report = _run(tmp_path, "pynq", "pynq", "--device", "sim")
    csim, csim_report = _run(tmp_path, "csim", "csim")
    assert board["config"]["model"]["conv_options"] == {"backend": "pynq", "device": "sim"}
    # SMD dropped some batches and the gates skipped some block-samples: the scheduling was exercised
    assert 0 < board_report["smd_dropped"] < 6 and board_report["slu_executed_ratio"] < 1.0
    for key in ("smd_dropped", "slu_executed_ratio", "executed_block_ratio", "macs"):
        assert board_report[key] == csim_report[key]
    _assert_same(board["model"], csim["model"], "model")
    _assert_same(board["optimizer"], csim["optimizer"], "optimizer")
    fabric = board_report["fabric"]
    assert fabric["backend"] == "pynq" and fabric["kernel_runs"] > 0
    assert 0 < fabric["busy_fraction"] < 1 and csim_report["fabric"] is None

