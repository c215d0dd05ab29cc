"""The optimizer of the low-precision runs: SGD whose conv weights may step on signs.

``optimizer_factory(model, cfg)`` (``optim.name = "e2train.psg:optimizer_factory"``) reads
``optim.options``:

* ``method`` (default: ``"sign"`` when the model has PSG convs, else ``"sgd"``): ``"sgd"`` (every parameter on its gradient: the fp32 and 8-bit baselines) or ``"sign"``
  (the weights of the model's dense convolutions step on sgn(gradient): SignSGD over float convs,
  PSG over PSG convs, whose gradient already is the sign). SGD momentum, weight decay and Nesterov
  apply to the sign as to any gradient. BN, the classifier, depthwise convs and the gates train on
  their ordinary gradients.
* ``sign_lr``: learning rate of the sign group (0.03, as in the paper); the others use ``optim.lr``.
  The schedule scales both groups alike. ``sign_momentum`` and ``sign_weight_decay`` (default: the
  ``optim`` values) set the sign group's momentum and the weight decay added to its signs.
* ``swa`` (default: true for method ``sign``), ``swa_start`` (0.75 of the schedule), ``swa_samples``
  (20 snapshots), ``swa_bn_batches`` (training batches for the BN update; 0: one epoch).
* Fine-tuning: ``init_from`` (a checkpoint whose model weights are loaded first; the conv type may
  differ, float or quantised) and ``train_only`` (parameter-name prefixes, e.g. ``["fc"]``: every other
  parameter is frozen and gets no gradient).

SWA and the bit-width report are not the optimizer's work: the factory keeps the options it parsed on
the optimizer (``LowPrecisionSGD.run_options``), and ``training.setup.build_callbacks`` reads them there
to put both in the trainer's list (``training.callbacks``), where the loop calls them.
"""

from __future__ import annotations

import torch

from ..checkpoint import load_checkpoint
from ..errors import ConfigError

METHODS = ("sgd", "sign")
OPTION_DEFAULTS = {"method": None, "sign_lr": 0.03, "sign_momentum": None, "sign_weight_decay": None, "swa": None, "swa_start": 0.75, "swa_samples": 20, "swa_bn_batches": 0,
                   "init_from": "", "train_only": []}


class LowPrecisionSGD(torch.optim.SGD):
    """torch SGD; param groups marked ``sign`` step on sgn(grad). ``run_options``: the parsed
    ``optim.options`` it was built from (``optimizer_factory`` sets them)."""

    run_options: dict = {}  # empty: built without the factory (no SWA, no bit-width report)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group.get("sign"):
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.sign_()
        return super().step(closure)


def conv_weights(model) -> list[torch.nn.Parameter]:
    """The weights of the model's dense (factory-built) convolutions."""
    out = []
    for name, m in model.layer_modules().items():
        if model.specs[name].kind == "conv":
            out.append(m.weight)
    return out


def load_weights(model, path: str) -> None:
    """Model weights from a training checkpoint; float and quantised convs share parameter names."""
    state = load_checkpoint(path)["model"]  # CheckpointError names a missing or damaged file
    # the quantised conv's counters (``_extra_state``) are the one thing a float model lacks
    state = {k: v for k, v in state.items() if not k.endswith("_extra_state")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise ConfigError(f"optim.options.init_from {path}: the checkpoint's model differs from this one "
                          f"(missing {missing[:5]}, unexpected {unexpected[:5]})")


def parse_options(raw: dict, psg_model: bool = False) -> dict:
    unknown = set(raw) - set(OPTION_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown optim.options {sorted(unknown)}; known: {', '.join(OPTION_DEFAULTS)}")
    opts = {**OPTION_DEFAULTS, **raw}
    if opts["method"] is None:
        opts["method"] = "sign" if psg_model else "sgd"
    if opts["method"] not in METHODS:
        raise ValueError(f"optim.options.method must be one of {METHODS}, got {opts['method']!r}")
    if opts["swa"] is None:
        opts["swa"] = opts["method"] == "sign"
    if not isinstance(opts["swa"], bool):
        raise ValueError(f"optim.options.swa must be true or false, got {opts['swa']!r}")
    if not isinstance(opts["init_from"], str):
        raise ValueError(f"optim.options.init_from must be a checkpoint's path, got {opts['init_from']!r}")
    if not isinstance(opts["train_only"], list) or not all(isinstance(v, str) for v in opts["train_only"]):
        raise ValueError(f"optim.options.train_only must be a list of parameter-name prefixes, got {opts['train_only']!r}")
    for key in ("sign_momentum", "sign_weight_decay"):
        if opts[key] is not None and not (isinstance(opts[key], (int, float)) and opts[key] >= 0):
            raise ValueError(f"optim.options.{key} must be a number >= 0, got {opts[key]!r}")
    if isinstance(opts["swa_bn_batches"], bool) or not isinstance(opts["swa_bn_batches"], int) or opts["swa_bn_batches"] < 0:
        raise ValueError(f"optim.options.swa_bn_batches must be an integer >= 0 (0: one epoch), got {opts['swa_bn_batches']!r}")
    for key in ("sign_lr", "swa_start", "swa_samples"):
        if isinstance(opts[key], bool) or not isinstance(opts[key], (int, float)):
            raise ValueError(f"optim.options.{key} must be a number, got {opts[key]!r}")
    if not opts["sign_lr"] > 0:
        raise ValueError(f"optim.options.sign_lr must be positive, got {opts['sign_lr']!r}")
    return opts


def run_options(model, cfg: dict) -> dict:
    """``optim.options`` with their defaults, checked (ConfigError); ``method`` defaults by the model's convs."""
    try:
        psg_model = any(getattr(m, "sign_gradient", False) for m in model.modules())
        return parse_options(cfg["optim"]["options"], psg_model)
    except (TypeError, ValueError) as exc:  # TypeError: a value of the wrong kind met a compare
        raise ConfigError(str(exc)) from None


def optimizer_factory(model, cfg: dict) -> LowPrecisionSGD:
    o = cfg["optim"]
    opts = run_options(model, cfg)
    if opts["init_from"]:
        load_weights(model, opts["init_from"])
    if opts["train_only"]:
        prefixes = tuple(opts["train_only"])
        kept = [n for n, p in model.named_parameters() if n.startswith(prefixes)]
        if not kept:
            raise ConfigError(f"optim.options.train_only {list(prefixes)} matches no parameter of the model")
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith(prefixes))
    trainable = [p for p in model.parameters() if p.requires_grad]
    if opts["method"] == "sign":
        signed = {id(p) for p in conv_weights(model)}
        groups = [
            {"params": [p for p in trainable if id(p) in signed], "lr": opts["sign_lr"], "sign": True,
             "momentum": o["momentum"] if opts["sign_momentum"] is None else float(opts["sign_momentum"]),
             "weight_decay": o["weight_decay"] if opts["sign_weight_decay"] is None else float(opts["sign_weight_decay"])},
            {"params": [p for p in trainable if id(p) not in signed], "lr": o["lr"], "sign": False},
        ]
        groups[0]["nesterov"] = o["nesterov"] and groups[0]["momentum"] > 0  # torch refuses Nesterov without momentum
    else:
        groups = [{"params": trainable, "lr": o["lr"], "sign": False}]
    opt = LowPrecisionSGD(groups, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"], nesterov=o["nesterov"])
    opt.run_options = opts
    return opt
