"""``e2train train | eval | demo``.

torch and the training modules load when a command runs, not when the parser is built: ``e2train
--help`` stays fast, and the board's commands work where torch is not installed.
"""

from __future__ import annotations

import json
import os
import sys

from ..errors import ConfigError
from ..power.training import add_meter_arguments


def _user_errors() -> tuple:
    """The errors that mean a wrong input, not a bug: printed as one line."""
    from ..checkpoint import CheckpointError
    from ..data import DatasetError
    from ..power.sample import MeterError

    return ConfigError, DatasetError, CheckpointError, MeterError


def register(sub) -> None:
    p = sub.add_parser("train", help="train a CIFAR network from a TOML config (SMD, SLU, stochastic depth)")
    p.add_argument("--config", help="TOML file (see configs/); every key has a default")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set model.arch=resnet38 (repeatable)")
    p.add_argument("--out", help="run folder (default: runs/<run.name>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    # issue-4 hook: where quantised convs run, and a proportionally shortened schedule
    p.add_argument("--backend", help="where the quantised convs (model.conv = e2train.psg:make_conv_factory) run: "
                   f"{BACKEND_CHOICES}; sets model.conv_options.backend")
    p.add_argument("--device", help="the backend's device option, e.g. sim for pynq; sets model.conv_options.device")
    p.add_argument("--scale", type=float, help="multiply schedule.iterations by this (LR steps and SWA follow: "
                   "they are fractions), e.g. 0.1 for a CPU run of a GPU schedule")
    g = p.add_argument_group("several processes (docs/distributed.md); torchrun -m e2train.cli train ... works too")
    g.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="run on N processes of this node (one per GPU with run.device = cuda), through torch.distributed.run")
    g.add_argument("--nnodes", help="number of nodes (or MIN:MAX), with --rdzv-endpoint: the same command on every node")
    g.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous of a multi-node run (default: this node alone)")
    add_meter_arguments(p)
    p.set_defaults(func=_train)

    e = sub.add_parser("eval", help="top-1/top-5 of a checkpoint on a CIFAR split")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data-dir", required=True, help="folder holding cifar-10-batches-py (or cifar-100-python)")
    e.add_argument("--split", choices=("test", "train", "val"), default="test",
                   help="test (default), train, or val (the run's held-out validation images)")
    e.add_argument("--out", help="JSON file for the result (default: eval.json beside the checkpoint)")
    e.set_defaults(func=_eval)

    d = sub.add_parser("demo", help="the main job: a gated ResNet with SMD, SLU and PSG on synthetic data, "
                      "with its estimated energy against fp32 SGD (< 1 min)")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--backend", help=f"where the demo's quantised convs run: {BACKEND_CHOICES}")
    d.add_argument("--device", help="the backend's device option, e.g. sim for pynq")
    d.set_defaults(func=_demo)


BACKEND_CHOICES = ("torch (default), cpu (the integer CPU engine), auto (cpu on a machine without CUDA where its "
                   "library builds, else torch), reference, csim or pynq")


def _fail(msg: str, code: int = 2) -> int:
    print(f"e2train: error: {msg}", file=sys.stderr)
    return code


def _run(cfg: dict, out: str, resume: bool, args=None) -> int:
    code, report = _execute(cfg, out, resume, args)
    if report is not None:
        print(json.dumps(summary(report)))
        print(f"wrote {os.path.join(out, 'report.json')}", file=sys.stderr)
    return code


def _execute(cfg: dict, out: str, resume: bool, args=None) -> tuple[int, dict | None]:
    """Train, on this process's share of the world; -> (exit code, report: None except on rank 0)."""
    from . import distributed
    from .distributed import RankLost

    world, failed = None, True
    try:
        world = distributed.init(cfg)  # a single process unless torchrun started this one
        result = _run_on(world, cfg, out, resume, args)
        failed = False
        return result
    except RankLost as exc:
        return _fail(f"{exc}; the last checkpoint is kept in {out}", 4), None
    finally:
        if world is not None:
            distributed.shutdown(world, failed)


def _run_on(world, cfg: dict, out: str, resume: bool, args) -> tuple[int, dict | None]:
    from .loop import Trainer

    with Trainer(cfg, out, world=world) as trainer:  # closes the conv engine however the run ends
        return _train_with(trainer, world, out, resume, args)


def _train_with(trainer, world, out: str, resume: bool, args) -> tuple[int, dict | None]:
    from ..power.training import MeteredRun
    from . import distributed
    from .distributed import RankLost
    from .loop import Divergence

    say = (lambda msg: print(msg, file=sys.stderr)) if world.is_main else (lambda msg: None)
    if resume:
        if trainer.resume():
            say(f"resuming {out} at iteration {trainer.iteration} of {trainer.total}")
        else:
            say(f"no checkpoint in {out}: starting from scratch")
    metered = MeteredRun.from_args(args, out) if args is not None and world.is_main else None
    try:
        if metered is not None:
            trainer.meter = metered.start()  # idle baseline first, then a window over the whole run
        report = trainer.run()
    except Divergence as exc:
        return _fail(str(exc), 3), None
    except RuntimeError as exc:
        if world.size == 1 or not distributed.is_comm_failure(exc) or isinstance(exc, RankLost):
            raise
        raise RankLost(f"rank {world.rank}: lost contact with another rank at iteration {trainer.iteration + 1} "
                       f"({distributed._first_line(exc)})") from exc
    finally:
        if metered is not None:
            metered.finish()
    if not world.is_main:
        return 0, None
    if "measured_joules" in report:
        m = report["measured_joules"]
        print(f"measured {m['run']:.1f} J over {m['seconds']:.1f} s with {m['meter']}"
              + (f" (idle {m['idle_watts']:.2f} W subtracted)" if m["idle_subtracted"] else ""), file=sys.stderr)
    return 0, report


SUMMARY_KEYS = ("top1", "top5", "iterations", "smd_dropped", "slu_executed_ratio", "psg_predicted_ratio", "mac_savings",
                "wall_seconds", "cpu_seconds")


def summary(report: dict) -> dict:
    """The one-line summary: accuracy, the savings knobs, estimated energy of the run and of its fp32 SGD
    baseline per table (the headline table's unsuffixed), and the metered joules where a meter ran."""
    out = {k: report.get(k) for k in SUMMARY_KEYS}
    est = report["estimated_energy"]
    out["energy_table"] = est["table"]
    for name, t in est["tables"].items():
        suffix = "" if name == est["table"] else f"_{name}"
        out[f"estimated_joules{suffix}"] = t["joules"]
        out[f"sgd_estimated_joules{suffix}"] = t["baseline_joules"]
        out[f"estimated_saving{suffix}"] = t["saving"]
    if "measured_joules" in report:
        out["measured_joules"] = report["measured_joules"]["run"]
    return out


def _train(args) -> int:
    from .config import load_config

    from . import distributed

    try:
        cfg = load_config(args.config, args.overrides)
        _apply_run_flags(cfg, args)
        if args.nproc < 1:
            raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
        if (args.nproc > 1 or args.rdzv_endpoint) and distributed.env_world_size() == 1:
            if not args.rdzv_endpoint:
                distributed.check_batch(cfg, args.nproc)  # before starting anything
            return distributed.launch(distributed.strip_launch_flags(args.argv), args.nproc, args.nnodes, args.rdzv_endpoint)
        out = args.out or os.path.join("runs", cfg["run"]["name"])
        return _run(cfg, out, args.resume, args)
    except _user_errors() as exc:
        return _fail(str(exc))


def _apply_run_flags(cfg: dict, args) -> None:
    """--backend / --device go into model.conv_options (merged: --set on that table would replace it
    whole); --scale multiplies schedule.iterations."""
    options = {k: getattr(args, k) for k in ("backend", "device") if getattr(args, k, None) is not None}
    if options:
        if cfg["model"]["conv"] == "plain":
            raise ConfigError("--backend/--device choose where quantised convs run, but this config trains float convs "
                              "(model.conv = plain); use a PSG or 8-bit config, or --set model.conv=e2train.psg:make_conv_factory")
        cfg["model"]["conv_options"] = {**cfg["model"]["conv_options"], **options}
    scale = getattr(args, "scale", None)
    if scale is None:
        return
    if not scale > 0:
        raise ConfigError(f"--scale must be positive, got {scale}")
    cfg["schedule"]["iterations"] = max(1, int(round(cfg["schedule"]["iterations"] * scale)))


def _demo(args) -> int:
    from .config import load_config
    from .demo import DEMO_SETTINGS

    try:
        cfg = load_config(None, DEMO_SETTINGS + list(args.overrides))
        _apply_run_flags(cfg, args)
        code, report = _execute(cfg, args.out, resume=False)
    except _user_errors() as exc:
        return _fail(str(exc))
    if report is None:
        return code
    from ..energy.report import plot_curves
    from .demo import CURVES, describe

    png = os.path.join(args.out, CURVES)
    plot_curves(args.out, png)
    print(describe(report, args.out, png))
    return code


def _eval(args) -> int:
    import torch

    from ..checkpoint import load_checkpoint
    from ..data import load_cifar, split_validation
    from .evaluate import evaluate
    from .setup import build_from_config, open_engine

    try:
        from .config import with_defaults

        ck = load_checkpoint(args.checkpoint)
        cfg = with_defaults(ck["config"])
        name = cfg["data"]["dataset"]
        if name == "synthetic":
            raise ConfigError("this checkpoint was trained on the synthetic dataset; eval reads CIFAR")
        if args.split == "test":
            data = load_cifar(args.data_dir, name, "test")
        else:
            full = load_cifar(args.data_dir, name, "train")
            if cfg["data"]["val_split"] <= 0 and args.split == "val":
                raise ConfigError("the run held out no validation images (data.val_split = 0)")
            fit, val = split_validation(full, cfg["data"]["val_split"], seed=0) if cfg["data"]["val_split"] > 0 else (full, None)
            data = val if args.split == "val" else fit
        with open_engine(cfg) as engine:
            model = build_from_config(cfg, ck["num_classes"], engine)
            model.load_state_dict(ck["model"])
            res = evaluate(model, data, cfg["data"]["eval_batch"], torch.device("cpu"))
    except _user_errors() as exc:
        return _fail(str(exc))
    res.update(checkpoint=os.path.abspath(args.checkpoint), split=args.split, iteration=ck["iteration"])
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), f"eval-{args.split}.json")
    with open(out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps({k: res[k] for k in ("top1", "top5", "samples", "split")}))
    return 0
