"""Helpers of tests/test_distributed.py: small training scenarios, run on 2 ranks (gloo on 127.0.0.1) by
torch.multiprocessing and by the CLI, and in one process for comparison."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

BASE = ["run.progress=false", "run.threads=1", "run.log_every=2", "run.checkpoint_every=0", "data.dataset=synthetic",
        "data.synthetic_train=64", "data.synthetic_val=32", "data.eval_batch=16", "model.arch=resnet8",
        "schedule.batch_size=16", "dist.timeout=60"]
RESNET8_CONVS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.shortcut", "layer2.0.conv2",
                 "layer3.0.conv1", "layer3.0.shortcut", "layer3.0.conv2"]
_ONLY_CONVS = ", ".join(f'"{n}."' for n in RESNET8_CONVS)
PSG = ['model.conv="e2train.psg:make_conv_factory"', 'model.conv_options={precision="float64"}',
       'optim.name="e2train.psg:optimizer_factory"',
       f'optim.options={{method="sign", swa=false, train_only=[{_ONLY_CONVS}]}}']

# name -> (config overrides, hooks)
SCENARIOS = {
    # fp32 SGD with SMD and SLU, SyncBN; the gates are forced so that block layer2.0 has no sample on rank 1
    "sgd": ([*BASE, "model.gating=slu", "smd.p=0.5", "schedule.iterations=6", "optim.lr=0.05", "dist.sync_bn=true"],
            ("force_gates",)),
    # PSG, torch engine in float64; only the PSG convs train and BN uses its running statistics, so nothing
    # but the convs' integer sums reduces over samples (see docs/distributed.md)
    "psg_exact": ([*BASE, *PSG, "model.gating=slu", "schedule.iterations=3"], ("force_gates", "frozen_bn")),
    "psg_vote": ([*BASE, *PSG, "model.gating=slu", "schedule.iterations=3", "dist.psg=vote"], ("force_gates", "frozen_bn")),
    # the uninterrupted run of the kill-and-resume test (the CLI runs the same config)
    "resume_ref": ([*BASE, "model.gating=slu", "smd.p=0.25", "schedule.iterations=24", "run.checkpoint_every=2"], ()),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forced_gates(n_gated: int, batch: int) -> torch.Tensor:
    """Decisions of the global batch: the first gated block runs only for the first half (rank 0's rows)."""
    f = torch.ones(n_gated, batch, dtype=torch.bool)
    f[0, batch // 2:] = False
    f[1:, ::3] = False
    return f


def apply_hooks(trainer, hooks, rank: int = 0, size: int = 1) -> None:
    model = trainer.model
    if "force_gates" in hooks:
        batch = trainer.cfg["schedule"]["batch_size"]
        mine = forced_gates(len(model.gated_blocks), batch)[:, trainer.batches.rows]
        model.register_forward_pre_hook(lambda m, inp: setattr(m, "force_gates", mine if m.training else None))
    if "frozen_bn" in hooks:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.register_forward_pre_hook(lambda m, inp: setattr(m, "training", False))


def config(name: str):
    from e2train.training.config import load_config

    return load_config(None, SCENARIOS[name][0])


def run_single(name: str, out: str):
    """The scenario in one process at the global batch."""
    from e2train.training.loop import Trainer

    t = Trainer(config(name), out, log=lambda m: None)
    apply_hooks(t, SCENARIOS[name][1])
    return t.run(), t.model.state_dict()


def _worker(rank: int, size: int, port: int, names: list[str], root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size),
                      LOCAL_RANK=str(rank))
    from e2train.training import distributed
    from e2train.training.loop import Trainer

    world = distributed.init(config(names[0]))
    try:
        for name in names:
            world.traffic = {}
            out = os.path.join(root, name)
            t = Trainer(config(name), out, log=lambda m: None, world=world)
            apply_hooks(t, SCENARIOS[name][1], rank, size)
            report = t.run()
            torch.save({"state": t.model.state_dict(), "report": report}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        distributed.shutdown(world)


def spawn(names: list[str], root: str, size: int = 2) -> None:
    import torch.multiprocessing as mp

    mp.start_processes(_worker, args=(size, free_port(), names, root), nprocs=size, join=True, start_method="spawn")


def result(root: str, name: str, rank: int) -> dict:
    return torch.load(os.path.join(root, name, f"rank{rank}.pt"), weights_only=False)


def cli_ranks(args: list[str], size: int, port: int, **popen) -> list[subprocess.Popen]:
    """``e2train train ARGS`` as ranks 0..size-1 of one run (the environment torchrun would give them)."""
    procs = []
    for r in range(size):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(r), WORLD_SIZE=str(size),
                   LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(size))
        procs.append(subprocess.Popen([sys.executable, "-m", "e2train.cli", "train", *args], env=env, **popen))
    return procs


def set_args(sets: list[str]) -> list[str]:
    return [a for s in sets for a in ("--set", s)]
