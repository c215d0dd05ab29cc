"""Training through the HLS kernels: every convolution of a ResNet on the csim fabric gives the same
losses and weights as the torch emulation in float64 (the proof that the hardware kernels train the
network that the emulation trains)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cifar_files import shared_datasets
from e2train.data import make_synthetic
from e2train.checkpoint import load_checkpoint
from tiny_runs import PSG, train_tiny

def run(tmp_path, data, conv_options, name):
    t, losses, report = train_tiny(tmp_path, data, conv_options, name)
    return t.model.state_dict(), losses, report


def test_csim_trains_bit_identically_to_torch_float64(tmp_path):
    data = (make_synthetic(96, seed=1), make_synthetic(64, seed=2), 10)
    a, la, ra = run(tmp_path, data, '{backend="torch", precision="float64"}', "torch64")
    b, lb, rb = run(tmp_path, data, '{backend="csim"}', "csim")
    assert len(la) == 4 and la == lb
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
    # the PSG predictor counts (kernel outputs, not just weights) agree as well
    assert ra["psg_predicted_ratio"] == rb["psg_predicted_ratio"]
    assert ra["top1"] == rb["top1"]


@pytest.mark.slow
def test_csim_trains_resnet20_on_cifar10_like_torch_float64(tmp_path):
    """ResNet-20, batch 32, 40 iterations on real CIFAR-10 images (1280 images): same losses, same weights."""
    datasets = shared_datasets()
    if datasets is None:
        pytest.skip("CIFAR-10 not found: set E2TRAIN_SHARED (or E2TRAIN_DATASETS) to the shared folder")
    subprocess.run([sys.executable, os.path.join(datasets, "make_cifar10.py"), str(tmp_path / "data")], check=True)
    common = ["--set", f"data.dir={tmp_path / 'data'}", "--set", "model.arch=resnet20", *sum((["--set", p] for p in PSG), []),
              "--set", "schedule.iterations=40", "--set", "schedule.batch_size=32", "--set", "data.val_split=500",
              "--set", "data.eval_batch=250", "--set", "run.threads=1", "--set", "run.log_every=1",
              "--set", "run.progress=false", "--set", "run.checkpoint_every=0"]
    cli = [sys.executable, "-m", "e2train.cli", "train"]
    subprocess.run([*cli, *common, "--backend", "csim", "--out", str(tmp_path / "csim")], check=True)
    subprocess.run([*cli, *common, "--set", 'model.conv_options={precision="float64"}', "--backend", "torch",
                    "--out", str(tmp_path / "torch64")], check=True)
    losses = [[json.loads(line)["loss"] for line in open(tmp_path / r / "metrics.jsonl")] for r in ("csim", "torch64")]
    assert len(losses[0]) == 40 and losses[0] == losses[1]
    a, b = (load_checkpoint(str(tmp_path / r / "checkpoint.pt")) for r in ("csim", "torch64"))
    sa, sb = a["model"], b["model"]
    assert sa.keys() == sb.keys()
    for k in sa:
        if isinstance(sa[k], torch.Tensor):
            assert torch.equal(sa[k], sb[k]), k
