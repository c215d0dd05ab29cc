"""A few iterations of a tiny PSG ResNet-8 on synthetic images, for the tests that hold one engine's
training to another's bit for bit (test_csim_training.py, test_cpu_engine.py)."""

import json

from e2train.training.config import load_config
from e2train.training.loop import Trainer

PSG = ['model.conv="e2train.psg:make_conv_factory"', 'optim.name="e2train.psg:optimizer_factory"',
       'optim.options={method="sign", swa=false}']


def train_tiny(tmp_path, data, conv_options: str, name: str, iterations: int = 4, batch: int = 16, eval_batch: int = 64):
    """-> (trainer, losses per iteration, report) of a run with ``model.conv_options = conv_options``."""
    cfg = load_config(None, [
        "data.dataset=synthetic", "model.arch=resnet8", f"schedule.iterations={iterations}",
        f"schedule.batch_size={batch}", "run.progress=false", "run.log_every=1", "run.checkpoint_every=0",
        f"data.eval_batch={eval_batch}", "run.threads=1", *PSG, f"model.conv_options={conv_options}",
    ])
    t = Trainer(cfg, str(tmp_path / name), data=data, log=lambda m: None)
    report = t.run()
    losses = [json.loads(line)["loss"] for line in open(tmp_path / name / "metrics.jsonl")]
    return t, losses, report
