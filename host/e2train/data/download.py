"""Fetching the official CIFAR archives (for users with internet), checksum verified before extraction."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request

from .cifar import DATASETS, DatasetError

# official archives (https://www.cs.toronto.edu/~kriz/cifar.html) and their published MD5 sums
ARCHIVES = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
}


def md5_of(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_verified(archive: str, root: str, name: str, md5: str | None = None) -> str:
    """Check ``archive`` against the published checksum, then extract it under ``root``."""
    expected = md5 or ARCHIVES[name][1]
    got = md5_of(archive)
    if got != expected:
        raise DatasetError(f"{archive}: checksum mismatch (md5 {got}, expected {expected}); the download is corrupt, delete it and retry")
    folder = DATASETS[name][0]
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[0] == folder and (m.isfile() or m.isdir())]
        tar.extractall(root, members=members, filter="data")
    return os.path.join(root, folder)


def download_cifar(root: str, name: str = "cifar10", url: str | None = None, timeout: float = 30.0, md5: str | None = None) -> str:
    """Download and extract CIFAR ``name`` under ``root`` unless it is there; returns the dataset folder."""
    if name not in ARCHIVES:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(ARCHIVES)}")
    folder = os.path.join(root, DATASETS[name][0])
    if os.path.isdir(folder):
        return folder
    url = url or ARCHIVES[name][0]
    os.makedirs(root, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz", dir=root)
    os.close(fd)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetError(
                f"cannot download {name} from {url} ({exc}); this machine looks offline: copy the "
                f"'{DATASETS[name][0]}' folder under {root} by hand"
            ) from exc
        return extract_verified(tmp, root, name, md5)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
