"""How far a run's conv weights grew and how well it fit its training batches (docs/psg.md, "Why sign
descent falls short at this length").

    .venv/bin/python tools/weight_growth.py RUN [RUN ...] [--layers conv1 layer1.2.conv2 ...] [--at 3000 6000]

RUN is a training run's folder (``e2train train --out RUN``). From ``RUN/checkpoint.pt`` it prints the
root mean square of each named conv weight (default: the first, a middle and the last 3x3 conv of a
CIFAR ResNet); from ``RUN/metrics.jsonl`` the training accuracy logged at the given iterations (the
mean over the augmented batches since the line before); from ``RUN/report.json`` the final top-1
(``describe`` also returns the last periodic validation top-1). Under batch norm
a conv's output does not depend on its weights' scale, so a sign step of fixed size moves a layer by
sign_lr / RMS: the RMS says how much of the step is left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from e2train.checkpoint import CheckpointError, load_checkpoint

DEFAULT_LAYERS = ("conv1", "layer1.2.conv2", "layer3.2.conv2")


def weight_rms(checkpoint: str, layers) -> dict[str, float]:
    """RMS of ``<layer>.weight`` in a training checkpoint's model state (KeyError names a missing layer)."""
    state = load_checkpoint(checkpoint)["model"]  # CheckpointError: missing or damaged
    out = {}
    for name in layers:
        key = f"{name}.weight"
        if key not in state:
            raise KeyError(f"{checkpoint}: no conv weight {key!r}")
        out[name] = float(state[key].double().pow(2).mean().sqrt())
    return out


def fit(metrics: str, at) -> dict:
    """Training accuracy at the iterations ``at`` (None where no line was logged) and the last val top-1."""
    train, val = {}, None
    with open(metrics) as f:
        for line in f:
            rec = json.loads(line)
            if "acc" in rec and rec["iteration"] in at:
                train[rec["iteration"]] = rec["acc"]
            if "val_top1" in rec:
                val = rec["val_top1"]
    return {"train_acc": {i: train.get(i) for i in at}, "val_top1": val}


def describe(run: str, layers, at) -> dict:
    report = os.path.join(run, "report.json")
    top1 = None
    if os.path.exists(report):
        with open(report) as f:
            top1 = json.load(f)["top1"]
    return {"run": run, "weight_rms": weight_rms(os.path.join(run, "checkpoint.pt"), layers),
            **fit(os.path.join(run, "metrics.jsonl"), at), "top1": top1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS))
    ap.add_argument("--at", nargs="+", type=int, default=[3000, 6000], help="iterations of the training accuracy")
    args = ap.parse_args(argv)
    try:
        rows = [describe(r, args.layers, args.at) for r in args.runs]
    except (OSError, KeyError, json.JSONDecodeError, CheckpointError) as exc:
        print(f"weight_growth: error: {exc}", file=sys.stderr)
        return 1
    print("| run | train accuracy at " + " / ".join(map(str, args.at)) + " | top-1 (report) | RMS: " + ", ".join(args.layers) + " |")
    print("|---|---|---|---|")
    for r in rows:
        acc = " / ".join("-" if a is None else f"{100 * a:.1f} %" for a in r["train_acc"].values())
        top1 = "-" if r["top1"] is None else f"{100 * r['top1']:.1f} %"
        rms = ", ".join(f"{v:.3g}" for v in r["weight_rms"].values())
        print(f"| {r['run']} | {acc} | {top1} | {rms} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
