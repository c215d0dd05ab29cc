"""Building what a config names: datasets, the model (with its conv factory) and the device."""

from __future__ import annotations

import torch

from ..data import DatasetError, ImageSet, download_cifar, load_cifar, make_synthetic, split_validation
from ..data.cifar import DATASETS
from ..models import GatedNet, build_model, make_conv_factory, sd_final_survival_for
from .config import ConfigError


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


def build_from_config(cfg: dict, num_classes: int) -> GatedNet:
    m = cfg["model"]
    factory = make_conv_factory(m["conv"], m["conv_options"])
    survival = cfg["sd"]["final_survival"]
    model = build_model(m["arch"], num_classes, factory, m["gating"], survival)
    if m["gating"] == "sd" and cfg["sd"]["executed_ratio"] > 0:
        droppable = sum(1 for p in model.sd_survival if p < 1.0)
        model = build_model(m["arch"], num_classes, factory, "sd", sd_final_survival_for(cfg["sd"]["executed_ratio"], droppable))
    model.gate_sample_in_training = cfg["slu"]["sample_in_training"]
    return model


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device = cuda but no CUDA device is available (use cpu or auto)")
    return torch.device(name)
