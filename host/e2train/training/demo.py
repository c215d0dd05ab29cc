"""``e2train demo``: the main job on its embedded default, all of E2-Train at once.

A gated ResNet-14 trained on the synthetic dataset with SMD (p = 0.5 over 4/3 of the baseline's 150
iterations: energy ratio 2/3, as in the paper), SLU (target 60 % of the block computation executed)
and PSG (quantised convs with predicted sign gradients, contract v2, sign SGD and SWA), batch 32,
cosine learning rate, then evaluated.
Writes DIR/report.json (with the estimated energy of the run and of its fp32 SGD baseline),
DIR/metrics.jsonl, DIR/checkpoint.pt and DIR/energy_curves.png (training loss and validation accuracy
against estimated joules). Under a minute on 2 CPU cores.
"""

from __future__ import annotations

import os

DEMO_SETTINGS = [
    "run.name=demo",
    "run.checkpoint_every=0",
    "run.log_every=20",
    "run.eval_every=50",
    "data.dataset=synthetic",
    "data.synthetic_train=4000",
    "data.synthetic_val=500",
    "model.arch=resnet14",
    "model.gating=slu",
    'model.conv="e2train.psg:make_conv_factory"',
    "slu.target=0.6",
    "slu.alpha=0.5",
    "smd.p=0.5",
    'smd.energy_ratio="2/3"',
    "schedule.iterations=150",
    "schedule.batch_size=32",
    'schedule.lr_schedule="cosine"',
    'optim.name="e2train.psg:optimizer_factory"',
    "optim.lr=0.05",
    "optim.options={swa_bn_batches=10}",
]

CURVES = "energy_curves.png"
TABLE_NAMES = {"zedboard": "ZedBoard table; its constants are estimates until calibrated",
               "horowitz45": "Horowitz 45 nm table"}


def describe(report: dict, out: str, png: str) -> str:
    """What the demo prints: accuracy, the three techniques' ratios, MACs and estimated energy against SGD."""
    from ..data.synthetic import NUM_CLASSES
    from ..fixed import CONTRACT_VERSION

    cfg = report["config"]
    est = report["estimated_energy"]
    base = est["baseline"]
    pred = report.get("psg_predicted_ratio")
    macs = sum(report["macs"].values())
    msb = cfg["model"]["conv_options"].get("msb", "nearest")
    psg = f"contract v{CONTRACT_VERSION} MSBs" if msb == "nearest" else f"{msb} MSBs, not the contract's"
    lines = [
        f"e2train demo: gated {report['arch']} on synthetic images, SMD + SLU + PSG ({psg})",
        f"  accuracy     validation top-1 {100 * report['top1']:.1f} % on {report['eval_samples']} images "
        f"(chance {100 / NUM_CLASSES:.0f} %)",
        f"  SMD          {report['smd_dropped']} of {report['iterations']} scheduled mini-batches dropped "
        f"(p = {cfg['smd']['p']}; {report['iterations']} = {base['iterations']} x {cfg['smd']['energy_ratio']} "
        f"/ (1 - p))",
        f"  SLU          {100 * report['slu_executed_ratio']:.1f} % of the gated blocks' computation executed "
        f"(target {100 * cfg['slu']['target']:.0f} %)",
        f"  PSG          " + (f"{100 * pred:.1f} % of weight-gradient signs predicted from the MSBs"
                              if pred is not None else "not used"),
        f"  MACs         {macs / 1e9:.1f} G against {base['macs'] / 1e9:.1f} G for fp32 SGD "
        f"({base['iterations']} iterations x {base['batch_size']}): saving {100 * report['mac_savings']:.1f} %",
    ]
    for i, (name, t) in enumerate(est["tables"].items()):
        lines.append(f"  {'energy, est.' if i == 0 else '':<13}{t['joules']:.3g} J against {t['baseline_joules']:.3g} J "
                     f"for fp32 SGD: saving {100 * t['saving']:.1f} % ({TABLE_NAMES.get(name, name + ' table')})")
    threads = report["torch_threads"]
    lines += [
        f"  wall time    {report['wall_seconds']:.1f} s training and evaluation ({threads} torch thread{'s' * (threads != 1)})",
        f"  wrote {os.path.join(out, 'report.json')} and {png}",
    ]
    return "\n".join(lines)
