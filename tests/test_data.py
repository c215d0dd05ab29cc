"""CIFAR files: restricted unpickler, validation, clear errors, download with checksum, validation split."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from cifar_files import make_tiny_cifar10, write_batch
from e2train.data import DatasetError, download_cifar, extract_verified, load_cifar, safe_load, split_validation
from e2train.data.download import md5_of


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Evil(marker), b"labels": [1]}, f, protocol=2)
    with pytest.raises(DatasetError, match=r"refused to unpickle global (posix|os)\.system") as exc:
        safe_load(str(path))
    assert str(path) in str(exc.value)
    assert not marker.exists()  # the payload never ran


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "x"
    with open(path, "wb") as f:
        pickle.dump({b"data": io.BytesIO(b"")}, f)
    with pytest.raises(DatasetError, match=r"_io\.BytesIO"):
        safe_load(str(path))


@pytest.mark.parametrize("protocol", [2, 4])
def test_loads_official_format(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (7, 3072), dtype=np.uint8) for _ in range(5)]
    labels = [rng.integers(0, 10, 7) for _ in range(5)]
    for i in range(5):
        write_batch(folder / f"data_batch_{i + 1}", imgs[i], labels[i], protocol=protocol)
    ds = load_cifar(str(tmp_path), "cifar10", "train")
    assert ds.images.shape == (35, 3, 32, 32) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images.reshape(35, -1), np.concatenate(imgs))
    np.testing.assert_array_equal(ds.labels, np.concatenate(labels))
    # the dataset folder itself is accepted too
    assert len(load_cifar(str(folder), "cifar10", "train")) == 35


def test_truncated_batch_names_the_file(tmp_path):
    folder = make_tiny_cifar10(str(tmp_path))
    path = os.path.join(folder, "data_batch_3")
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"corrupt or truncated dataset file: .*data_batch_3"):
        load_cifar(str(tmp_path), "cifar10", "train")


def test_missing_file_and_folder_are_named(tmp_path):
    folder = make_tiny_cifar10(str(tmp_path))
    os.remove(os.path.join(folder, "data_batch_5"))
    with pytest.raises(DatasetError, match=r"missing dataset file: .*data_batch_5"):
        load_cifar(str(tmp_path), "cifar10", "train")
    with pytest.raises(DatasetError, match=r"dataset folder not found: .*cifar-100-python"):
        load_cifar(str(tmp_path), "cifar100", "train")


def test_shapes_and_labels_are_validated(tmp_path):
    folder = make_tiny_cifar10(str(tmp_path))
    path = os.path.join(folder, "test_batch")
    write_batch(path, np.zeros((4, 3072), np.uint8), [0, 1, 10, 2])
    with pytest.raises(DatasetError, match=r"test_batch: labels must lie in \[0, 9\], found 0\.\.10"):
        load_cifar(str(tmp_path), "cifar10", "test")
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(DatasetError, match=r"'data' must be uint8 \[N, 3072\], got uint8 \(4, 3000\)"):
        load_cifar(str(tmp_path), "cifar10", "test")
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, f)
    with pytest.raises(DatasetError, match=r"4 images but labels of shape \(3,\)"):
        load_cifar(str(tmp_path), "cifar10", "test")
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8)}, f)
    with pytest.raises(DatasetError, match=r"missing key 'labels'"):
        load_cifar(str(tmp_path), "cifar10", "test")


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", np.zeros((3, 3072), np.uint8), [0, 57, 99], label_key=b"fine_labels")
    ds = load_cifar(str(tmp_path), "cifar100", "train")
    assert ds.num_classes == 100 and ds.labels.tolist() == [0, 57, 99]


def test_validation_split_is_disjoint_and_seeded(tmp_path):
    make_tiny_cifar10(str(tmp_path), per_batch=20)
    full = load_cifar(str(tmp_path), "cifar10", "train")
    fit, val = split_validation(full, 30, seed=0)
    assert len(fit) == 70 and len(val) == 30
    rows = lambda ds: {r.tobytes() for r in ds.images.reshape(len(ds), -1)}  # noqa: E731
    assert rows(fit) | rows(val) == rows(full) and not rows(fit) & rows(val)
    fit2, val2 = split_validation(full, 30, seed=0)
    np.testing.assert_array_equal(val.images, val2.images)
    with pytest.raises(DatasetError, match="validation split"):
        split_validation(full, 100)


def _archive(tmp_path, content=b"payload"):
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    (src / "readme.html").write_bytes(content)
    path = tmp_path / "archive.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return path


def test_download_offline_gives_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"cannot download cifar10 .*offline"):
        download_cifar(str(tmp_path / "data"), "cifar10", url="http://127.0.0.1:9/cifar-10-python.tar.gz", timeout=5)
    assert not any(p.name.endswith(".tar.gz") for p in (tmp_path / "data").iterdir())  # no partial file left


def test_download_verifies_checksum(tmp_path):
    archive = _archive(tmp_path)
    good = md5_of(str(archive))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_cifar(str(tmp_path / "bad"), "cifar10", url=archive.as_uri(), md5="0" * 32)
    assert not (tmp_path / "bad" / "cifar-10-batches-py").exists()
    folder = download_cifar(str(tmp_path / "good"), "cifar10", url=archive.as_uri(), md5=good)
    assert open(os.path.join(folder, "readme.html"), "rb").read() == b"payload"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        extract_verified(str(archive), str(tmp_path / "x"), "cifar10")  # the official sum differs
