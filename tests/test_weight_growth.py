"""tools/weight_growth.py: the conv weights' RMS and the training accuracy of a finished run, read back
from its checkpoint and metrics (the numbers docs/psg.md gives for the sign rows)."""

import importlib.util
import json
from pathlib import Path

import torch

from e2train.training.config import load_config
from e2train.training.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("weight_growth", ROOT / "tools" / "weight_growth.py")
weight_growth = importlib.util.module_from_spec(spec)
spec.loader.exec_module(weight_growth)


def test_weight_rms_and_training_accuracy_of_a_run(tmp_path, capsys):
    cfg = load_config(None, ["run.progress=false", "run.log_every=5", "run.checkpoint_every=10", "run.threads=1",
                             "data.dataset=synthetic", "data.synthetic_train=64", "data.synthetic_val=32",
                             "model.arch=resnet8", "schedule.iterations=10", "schedule.batch_size=8"])
    rep = Trainer(cfg, str(tmp_path)).run()
    model = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    d = weight_growth.describe(str(tmp_path), ["conv1", "layer2.0.conv2"], [5, 10, 7])
    for name in ("conv1", "layer2.0.conv2"):
        w = model[f"{name}.weight"].double()
        assert d["weight_rms"][name] == float((w * w).mean().sqrt()) > 0
    lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    assert d["train_acc"] == {5: lines[0]["acc"], 10: lines[1]["acc"], 7: None}  # 7 was never logged
    assert d["top1"] == rep["top1"] and d["val_top1"] is None  # no periodic evaluation in this run

    assert weight_growth.main([str(tmp_path), "--layers", "conv1", "--at", "5"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert f"{d['weight_rms']['conv1']:.3g}" in row and f"{100 * lines[0]['acc']:.1f} %" in row
    # a layer the network lacks, or a folder without a run: one line, exit 1
    assert weight_growth.main([str(tmp_path), "--layers", "layer3.2.conv2"]) == 1
    assert "no conv weight 'layer3.2.conv2.weight'" in capsys.readouterr().err
    assert weight_growth.main([str(tmp_path / "none")]) == 1
