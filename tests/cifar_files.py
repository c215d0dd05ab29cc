"""Helpers for the data tests: tiny CIFAR-format folders written like the official files."""

import os
import pickle
import subprocess
import sys

import numpy as np


def write_batch(path, images, labels, label_key=b"labels", protocol=2):
    d = {b"batch_label": b"test batch", label_key: [int(v) for v in labels], b"data": images.reshape(len(labels), -1),
         b"filenames": [b"x.png"] * len(labels)}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=protocol)


def make_tiny_cifar10(root, per_batch=20, seed=0, with_test=True):
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    for i in range(1, 6):
        write_batch(os.path.join(folder, f"data_batch_{i}"), rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                    rng.integers(0, 10, per_batch))
    if with_test:
        write_batch(os.path.join(folder, "test_batch"), rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                    rng.integers(0, 10, per_batch))
    return folder


def shared_datasets():
    """The shared datasets folder: $E2TRAIN_SHARED/datasets, $E2TRAIN_DATASETS, or <repo>/../shared/datasets."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get("E2TRAIN_DATASETS"):
        candidates.append(os.environ["E2TRAIN_DATASETS"])
    if os.environ.get("E2TRAIN_SHARED"):
        candidates.append(os.path.join(os.environ["E2TRAIN_SHARED"], "datasets"))
    candidates.append(os.path.join(here, "..", "..", "shared", "datasets"))
    for c in candidates:
        if os.path.isfile(os.path.join(c, "cifar10_train_jpeg.npz")):
            return os.path.abspath(c)
    return None


def real_cifar10(out_dir) -> str:
    """A folder holding the real ``cifar-10-batches-py``: ``$E2TRAIN_CIFAR_DIR`` when set (made once, reused
    by the slow accuracy runs), else made in ``out_dir`` from the shared datasets; skips the test when
    neither is there."""
    import pytest

    given = os.environ.get("E2TRAIN_CIFAR_DIR")
    if given:
        if not os.path.isdir(os.path.join(given, "cifar-10-batches-py")):
            pytest.fail(f"E2TRAIN_CIFAR_DIR={given} holds no cifar-10-batches-py")
        return given
    shared = shared_datasets()
    if shared is None:
        pytest.skip("the shared CIFAR-10 images are absent (../shared/datasets; set E2TRAIN_SHARED to its parent)")
    subprocess.run([sys.executable, os.path.join(shared, "make_cifar10.py"), str(out_dir)], check=True, capture_output=True)
    return str(out_dir)
