"""Building what a config names: datasets, the conv engine, the model, the trainer's callbacks, the device.

The data path of a run, from the config down to the kernels: ``build_engine`` makes the one engine
(``fabric.engine``) that the quantised convs run on; ``build_from_config`` hands it to the conv factory
of ``model.conv``, whose layers call it; ``build_callbacks`` lists what runs beside the steps (SWA, the
bit-width and fabric reports, the power meter's windows). Whoever calls ``build_engine`` closes the
engine (the trainer, or ``open_engine``'s ``with``).
"""

from __future__ import annotations

import contextlib

import torch

from ..data import DatasetError, ImageSet, download_cifar, load_cifar, make_synthetic, split_validation
from ..data.cifar import DATASETS
from ..models import GatedNet, build_model, sd_final_survival_for
from ..models.convs import CONV_MAKERS, resolve_callable
from .callbacks import BitWidths, Callbacks, FabricReport, MeterWindows, SwaCallback
from .config import ConfigError, scheduled_iterations


def load_data(cfg: dict) -> tuple[ImageSet, ImageSet | None, int]:
    """-> (training images, evaluation images or None, number of classes)."""
    d = cfg["data"]
    seed = cfg["run"]["seed"]
    if d["dataset"] == "synthetic":
        train = make_synthetic(d["synthetic_train"], seed=seed)
        val = make_synthetic(d["synthetic_val"], seed=seed + 10_000)
        return half_of(train, d["part"]), val, train.num_classes
    if not d["dir"]:
        raise ConfigError(f"data.dir is not set: give the folder that holds {DATASETS[d['dataset']][0]} (--set data.dir=PATH)")
    if d["download"]:
        download_cifar(d["dir"], d["dataset"])
    full = load_cifar(d["dir"], d["dataset"], "train")
    if d["val_split"] > 0:
        train, val = split_validation(full, d["val_split"], seed=0)  # the same split for every run seed
        return half_of(train, d["part"]), val, full.num_classes
    try:
        test = load_cifar(d["dir"], d["dataset"], "test")
    except DatasetError as exc:
        raise DatasetError(f"{exc}; with data.val_split = 0 the test split is needed for evaluation") from exc
    return half_of(full, d["part"]), test, full.num_classes


def half_of(train: ImageSet, part: str) -> ImageSet:
    """One half of the training images, the same halves for every run (the fine-tuning experiment)."""
    if part == "all":
        return train
    import numpy as np

    order = np.random.default_rng(1).permutation(len(train))
    half = len(train) // 2
    idx = np.sort(order[:half] if part == "first_half" else order[half:])
    return train.subset(idx, f"{train.name}-{part}")


def conv_maker(cfg: dict):
    try:
        return resolve_callable(cfg["model"]["conv"], CONV_MAKERS, "conv backend")
    except ValueError as exc:
        raise ConfigError(f"model.conv: {exc}") from None


def build_engine(cfg: dict):
    """The engine of the run's quantised convs (None when ``model.conv`` builds float convs): a conv maker
    whose layers run on an engine says so with an ``engine_for(conv_options)`` attribute."""
    engine_for = getattr(conv_maker(cfg), "engine_for", None)
    return None if engine_for is None else engine_for(cfg["model"]["conv_options"])


@contextlib.contextmanager
def open_engine(cfg: dict):
    """``build_engine`` for a ``with`` block, which closes the engine however it ends."""
    engine = build_engine(cfg)
    try:
        yield engine
    finally:
        if engine is not None:
            engine.close()


def build_from_config(cfg: dict, num_classes: int, engine=None) -> GatedNet:
    """The model; its quantised convs run on ``engine`` (from ``build_engine``; the caller closes it)."""
    m = cfg["model"]
    maker = conv_maker(cfg)
    try:
        factory = maker(**m["conv_options"]) if engine is None else maker(**m["conv_options"], engine=engine)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.conv_options: {exc}") from None
    try:
        model = build_model(m["arch"], num_classes, factory, m["gating"], cfg["sd"]["final_survival"])
        if m["gating"] == "sd" and cfg["sd"]["executed_ratio"] > 0:
            droppable = sum(1 for p in model.sd_survival if p < 1.0)
            model = build_model(m["arch"], num_classes, factory, "sd", sd_final_survival_for(cfg["sd"]["executed_ratio"], droppable))
    except ConfigError:
        raise
    except ValueError as exc:  # the architecture's name or the stochastic depth it cannot run
        raise ConfigError(f"model.arch = {m['arch']!r}: {exc}") from None
    model.gate_sample_in_training = cfg["slu"]["sample_in_training"]
    return model


def build_callbacks(cfg: dict, model, engine=None, optimizer=None) -> Callbacks:
    """What runs beside the training steps: for the PSG optimizer (its parsed ``optim.options`` in
    ``optimizer.run_options``) the bit-width report and, when ``swa`` is on, SWA; always the fabric
    report and the power meter's windows (inert without a meter)."""
    items = []
    opts = getattr(optimizer, "run_options", None)
    if opts:
        from ..psg.swa import SwaAverager

        items.append(BitWidths())
        if opts["swa"]:
            try:
                averager = SwaAverager(model, scheduled_iterations(cfg), opts["swa_start"], int(opts["swa_samples"]),
                                       int(opts["swa_bn_batches"]))
            except ValueError as exc:
                raise ConfigError(f"optim.options: {exc}") from None
            items.append(SwaCallback(averager))
    items += [FabricReport(engine), MeterWindows()]
    return Callbacks(items)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device = cuda but no CUDA device is available (use cpu or auto)")
    return torch.device(name)
