"""Training configuration: TOML files under configs/, one per experiment, plus ``--set key=value``.

Every key has a default here, so a config file names only what its experiment changes. Unknown sections
or keys are errors (a typo must not silently train something else). ``--set model.arch=resnet38`` takes
a TOML value (``true``, ``0.5``, ``[0.5, 0.75]``, ``"2/3"``); a bare word is taken as a string.
"""

from __future__ import annotations

import copy
import tomllib
from fractions import Fraction

from ..errors import ConfigError  # noqa: F401 (re-exported: the training package's error type)

DEFAULTS: dict[str, dict] = {
    "run": {
        "name": "run",
        "seed": 0,
        "device": "cpu",  # cpu | cuda | auto
        "threads": 0,  # torch CPU threads; 0 leaves torch's default
        "checkpoint_every": 1000,  # iterations between checkpoints (0: only at the end)
        "log_every": 50,  # iterations between metric lines
        "eval_every": 0,  # iterations between validation passes (0: only at the end)
        "progress": True,
    },
    "data": {
        "dataset": "cifar10",  # cifar10 | cifar100 | synthetic
        "dir": "",  # the folder holding cifar-10-batches-py / cifar-100-python
        "download": False,  # fetch the official archive (checksum verified) if the folder is missing
        "val_split": 5000,  # training images held out for validation (0: evaluate on the test split)
        "part": "all",  # all | first_half | second_half of the training images (issue-4: the fine-tuning experiment)
        "augment": True,
        "synthetic_train": 4000,
        "synthetic_val": 1000,
        "eval_batch": 500,
    },
    "model": {
        "arch": "resnet20",  # resnet<6n+2> | mobilenetv2
        "gating": "none",  # none | slu | sd
        "conv": "plain",  # conv backend: a registered name or "module:maker"
        "conv_options": {},  # keyword arguments of the conv maker (e.g. backend = "reference")
    },
    "slu": {
        "alpha": 0.5,  # weight of the computation regulariser
        "target": 0.6,  # executed computation ratio (FLOPs-weighted over the gated blocks) to steer toward
        "sample_in_training": False,  # Bernoulli gate decisions in training instead of the threshold p > 0.5
    },
    "sd": {
        "final_survival": 0.5,  # survival probability of the last block (linear decay)
        "executed_ratio": 0.0,  # > 0: choose final_survival so that this share of blocks runs on average
    },
    "smd": {
        "p": 0.0,  # probability of dropping a mini-batch
        "energy_ratio": 1.0,  # train iterations * energy_ratio / (1 - p) scheduled iterations ("2/3" allowed)
    },
    "optim": {
        "name": "sgd",  # a registered optimizer factory or "module:factory"
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "nesterov": False,
        "options": {},  # extra keyword arguments for a plug-in optimizer factory
    },
    "schedule": {
        "iterations": 64000,  # of the baseline; SMD's energy_ratio scales it
        "batch_size": 128,
        "lr_steps": [0.5, 0.75],  # fractions of the schedule where lr is divided
        "lr_decay": 0.1,
        "lr_schedule": "step",  # step (lr_steps / lr_decay) | cosine (to zero at the end)
        "warmup": 0.0,  # fraction of the schedule with a linear lr ramp before it
        # SWA/SWALP-style constant phase: from this fraction of the schedule on, lr is hold_lr times the
        # initial lr (the cosine anneals to hold_lr by then); 1.0: no constant phase
        "hold_from": 1.0,
        "hold_lr": 0.0,
        "divergence_loss": 1e4,  # a training loss above this (or NaN) stops the run
    },
    "dist": {  # runs on several processes (torchrun, or e2train train --nproc N); see docs/distributed.md
        "backend": "auto",  # auto (gloo on CPU, nccl on CUDA) | gloo | nccl
        "timeout": 300.0,  # seconds a collective waits for the other ranks before the run stops with an error
        "sync_bn": False,  # BatchNorm statistics over the global batch (all ranks) instead of each rank's share
        "psg": "exact",  # quantised / sign-stepped convs: exact (agreed exponents, integer sums) | vote (majority of signs)
    },
}


# tables whose keys the component reading them checks (the conv factory, the optimizer factory)
FREE_TABLES = ("conv_options", "options")


def _check_and_merge(base: dict, update: dict, where: str) -> None:
    for key, value in update.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise ConfigError(f"unknown config key {path!r}; known keys here: {', '.join(sorted(base))}")
        old = base[key]
        if isinstance(old, dict) and key not in FREE_TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{path} must be a table, got {value!r}")
            _check_and_merge(old, value, path)
            continue
        if key in FREE_TABLES and not isinstance(value, dict):
            raise ConfigError(f"{path} must be a table, got {value!r}")
        if isinstance(old, bool) and not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        if isinstance(old, (int, float)) and not isinstance(old, bool) and path != "smd.energy_ratio":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{path} must be a number, got {value!r}")
            if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float) and not value.is_integer():
                raise ConfigError(f"{path} must be an integer, got {value!r}")
            value = type(old)(value)
        if isinstance(old, str) and not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        base[key] = value


def parse_set(item: str) -> tuple[list[str], object]:
    """``a.b=value`` -> (["a", "b"], value parsed as TOML, or the raw string)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, _, raw = item.partition("=")
    key, raw = key.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _into_free_table(cfg: dict, keys: list[str], value):
    """``--set optim.options.init_from=X`` sets that one key of the free-form table and keeps its others
    (a whole table, ``--set optim.options={...}``, still replaces it, as in TOML)."""
    free = next((i for i, k in enumerate(keys[:-1]) if k in FREE_TABLES), None)
    if free is None:
        return keys, value
    table = cfg
    for k in keys[: free + 1]:
        table = table.get(k) if isinstance(table, dict) else None
    if not isinstance(table, dict):
        return keys, value  # an unknown path: _check_and_merge names it
    merged = copy.deepcopy(table)
    cur = merged
    for k in keys[free + 1 : -1]:
        if not isinstance(cur.get(k, {}), dict):
            raise ConfigError(f"{'.'.join(keys)}: {k} is not a table")
        cur = cur.setdefault(k, {})
    cur[keys[-1]] = value
    return keys[: free + 1], merged


def load_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """DEFAULTS, updated by the TOML file at ``path`` and then by each ``--set`` item; validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        _check_and_merge(cfg, data, "")
    for item in overrides:
        keys, value = _into_free_table(cfg, *parse_set(item))
        nested: dict = value
        for k in reversed(keys):
            nested = {k: nested}
        _check_and_merge(cfg, nested, "")
    validate(cfg)
    return cfg


def with_defaults(cfg: dict) -> dict:
    """A stored config (e.g. from an older checkpoint) completed with today's defaults for missing keys."""
    out = copy.deepcopy(DEFAULTS)
    for sec, table in cfg.items():
        out.setdefault(sec, {}).update(table)
    return out


def energy_ratio(cfg: dict) -> Fraction:
    raw = cfg["smd"]["energy_ratio"]
    try:
        r = Fraction(raw) if isinstance(raw, str) else Fraction(raw).limit_denominator(10**6)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"smd.energy_ratio must be a number or a fraction like \"2/3\", got {raw!r}") from None
    if r <= 0:
        raise ConfigError(f"smd.energy_ratio must be positive, got {raw!r}")
    return r


def scheduled_iterations(cfg: dict) -> int:
    """Iterations the loop walks: the baseline's, scaled by energy_ratio / (1 - p) when SMD holds a budget.

    With p = 0.5 and energy_ratio 2/3 (the paper's "0.67"), 64,000 -> 85,333.
    """
    base = cfg["schedule"]["iterations"]
    p = Fraction(cfg["smd"]["p"]).limit_denominator(10**6)
    r = energy_ratio(cfg)
    if r == 1:
        return base
    return int(base * r / (1 - p))


# numbers that must be positive, or at least 0 (every other range is checked by name below)
POSITIVE = (("schedule", "lr_decay"), ("schedule", "divergence_loss"), ("data", "eval_batch"),
            ("data", "synthetic_train"), ("data", "synthetic_val"))
NON_NEGATIVE = (("run", "threads"), ("run", "checkpoint_every"), ("run", "log_every"), ("run", "eval_every"),
                ("data", "val_split"), ("slu", "alpha"), ("optim", "lr"), ("optim", "momentum"),
                ("optim", "weight_decay"))


def validate(cfg: dict) -> None:
    s, smd, slu = cfg["schedule"], cfg["smd"], cfg["slu"]
    if s["iterations"] <= 0 or s["batch_size"] <= 0:
        raise ConfigError("schedule.iterations and schedule.batch_size must be positive")
    for sec, key in POSITIVE:
        if not cfg[sec][key] > 0:
            raise ConfigError(f"{sec}.{key} must be positive, got {cfg[sec][key]}")
    for sec, key in NON_NEGATIVE:
        if not cfg[sec][key] >= 0:
            raise ConfigError(f"{sec}.{key} must be at least 0, got {cfg[sec][key]}")
    sd = cfg["sd"]
    if not 0 < sd["final_survival"] <= 1:
        raise ConfigError(f"sd.final_survival must be in (0, 1], got {sd['final_survival']}")
    if not 0 <= sd["executed_ratio"] <= 1:
        raise ConfigError(f"sd.executed_ratio must be in [0, 1] (0: use sd.final_survival), got {sd['executed_ratio']}")
    if not all(isinstance(f, (int, float)) and 0 < f < 1 for f in s["lr_steps"]):
        raise ConfigError(f"schedule.lr_steps must be fractions in (0, 1), got {s['lr_steps']!r}")
    if s["lr_schedule"] not in ("step", "cosine"):
        raise ConfigError(f"schedule.lr_schedule must be step or cosine, got {s['lr_schedule']!r}")
    if not 0 <= s["warmup"] < 1:
        raise ConfigError(f"schedule.warmup must be a fraction in [0, 1), got {s['warmup']}")
    if not 0 < s["hold_from"] <= 1 or s["hold_from"] <= s["warmup"]:
        raise ConfigError(f"schedule.hold_from must be a fraction in (warmup, 1], got {s['hold_from']}")
    if not 0 <= s["hold_lr"] <= 1:
        raise ConfigError(f"schedule.hold_lr must be a factor of the initial lr in [0, 1], got {s['hold_lr']}")
    if not 0 <= smd["p"] < 1:
        raise ConfigError(f"smd.p must be in [0, 1), got {smd['p']}")
    energy_ratio(cfg)
    if not 0 < slu["target"] <= 1:
        raise ConfigError(f"slu.target must be in (0, 1], got {slu['target']}")
    if cfg["model"]["gating"] not in ("none", "slu", "sd"):
        raise ConfigError(f"model.gating must be none, slu or sd, got {cfg['model']['gating']!r}")
    if cfg["data"]["dataset"] not in ("cifar10", "cifar100", "synthetic"):
        raise ConfigError(f"data.dataset must be cifar10, cifar100 or synthetic, got {cfg['data']['dataset']!r}")
    if cfg["data"]["part"] not in ("all", "first_half", "second_half"):
        raise ConfigError(f"data.part must be all, first_half or second_half, got {cfg['data']['part']!r}")
    if cfg["run"]["device"] not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"run.device must be cpu, cuda or auto, got {cfg['run']['device']!r}")
    d = cfg["dist"]
    if d["backend"] not in ("auto", "gloo", "nccl"):
        raise ConfigError(f"dist.backend must be auto, gloo or nccl, got {d['backend']!r}")
    if d["psg"] not in ("exact", "vote"):
        raise ConfigError(f"dist.psg must be exact or vote, got {d['psg']!r}")
    if not d["timeout"] > 0:
        raise ConfigError(f"dist.timeout must be positive (seconds), got {d['timeout']}")
