"""``e2train demo``: the main job on its embedded default.

A gated ResNet-14 with SMD (p = 0.5) and SLU (target 60 % executed) trained on the synthetic dataset,
then evaluated; writes DIR/report.json, DIR/metrics.jsonl and DIR/checkpoint.pt. Under two minutes on
2 CPU cores.
"""

from __future__ import annotations

DEMO_SETTINGS = [
    "run.name=demo",
    "run.checkpoint_every=200",
    "run.log_every=25",
    "data.dataset=synthetic",
    "data.synthetic_train=4000",
    "data.synthetic_val=1000",
    "model.arch=resnet14",
    "model.gating=slu",
    "slu.target=0.6",
    "slu.alpha=0.5",
    "smd.p=0.5",
    "schedule.iterations=300",
    "schedule.batch_size=64",
    "optim.lr=0.05",
]
