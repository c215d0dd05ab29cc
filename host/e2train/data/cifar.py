"""CIFAR-10 / CIFAR-100 in the official python format, read with a restricted unpickler.

The official files are pickles; a pickle can run arbitrary code, so ``SafeUnpickler`` accepts only plain
containers, bytes, str, numbers and numpy arrays (the globals numpy needs to rebuild an ndarray), and
refuses anything else with a ``DatasetError`` naming the file and the refused global. Every file is
validated (keys, shapes, label range) and a missing, truncated or corrupt one is named in the error.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass

import numpy as np

DATASETS = {
    # name -> (folder, train files, test files, label key, number of classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}

# (module, name) pairs numpy needs to unpickle an ndarray; nothing else is callable from a pickle
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # numpy writes array bytes through codecs.encode under protocol 2
}


class DatasetError(ValueError):
    """A dataset file that is missing, unreadable, refused or not what CIFAR's format says."""


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DatasetError(
            f"{self.path}: refused to unpickle global {module}.{name}: a CIFAR file holds only plain data "
            "(dicts, lists, bytes, numbers, numpy arrays); this file is not a genuine CIFAR batch"
        )


def safe_load(path: str):
    """Unpickle ``path`` allowing only plain data; every failure is a ``DatasetError`` naming the file."""
    if not os.path.isfile(path):
        raise DatasetError(f"missing dataset file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return SafeUnpickler(io.BytesIO(raw), path).load()
    except DatasetError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as exc:
        raise DatasetError(f"corrupt or truncated dataset file: {path} ({type(exc).__name__}: {exc})") from exc


@dataclass
class ImageSet:
    """Images uint8 [N, 3, 32, 32] (NCHW) and labels int64 [N]."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray, name: str = "") -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], self.num_classes, name or self.name)


def _read_batch(path: str, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = safe_load(path)
    if not isinstance(d, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(d).__name__}")
    for key in (b"data", label_key):
        if key not in d:
            raise DatasetError(f"{path}: missing key {key.decode()!r} (keys: {sorted(k.decode() if isinstance(k, bytes) else str(k) for k in d)})")
    data = d[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{path}: 'data' must be uint8 [N, 3072], got {desc}")
    try:
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: labels are not integers ({exc})") from None
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels must lie in [0, {num_classes - 1}], found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def dataset_folder(root: str, name: str) -> str:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    folder = DATASETS[name][0]
    # accept either the parent folder or the dataset folder itself
    return root if os.path.basename(os.path.normpath(root)) == folder else os.path.join(root, folder)


def load_cifar(root: str, name: str = "cifar10", split: str = "train") -> ImageSet:
    """Read the ``train`` or ``test`` split of CIFAR-10/100 from ``root`` (the folder holding
    ``cifar-10-batches-py`` / ``cifar-100-python``, or that folder itself)."""
    folder = dataset_folder(root, name)
    _, train_files, test_files, label_key, num_classes = DATASETS[name]
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    if not os.path.isdir(folder):
        raise DatasetError(
            f"dataset folder not found: {folder} (give the folder that holds {DATASETS[name][0]}, "
            f"or download it with `e2train train --set data.download=true`)"
        )
    images, labels = [], []
    for fname in train_files if split == "train" else test_files:
        x, y = _read_batch(os.path.join(folder, fname), label_key, num_classes)
        images.append(x)
        labels.append(y)
    return ImageSet(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), num_classes, f"{name}-{split}")


def split_validation(train: ImageSet, val_size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Hold out ``val_size`` training images (a seeded random choice) as the validation split."""
    if not 0 <= val_size < len(train):
        raise DatasetError(f"validation split must be in [0, {len(train) - 1}] images, got {val_size}")
    perm = np.random.default_rng(seed).permutation(len(train))
    val_idx, train_idx = np.sort(perm[:val_size]), np.sort(perm[val_size:])
    return train.subset(train_idx, train.name + "-fit"), train.subset(val_idx, train.name + "-val")
