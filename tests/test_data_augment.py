"""Augmentation on uint8 tensors, the iteration-indexed batches, the synthetic set and real CIFAR-10."""

import numpy as np
import pytest
import torch

from cifar_files import real_cifar10
from e2train.data import BatchSchedule, ImageSet, Normalizer, load_cifar, make_synthetic, random_crop_flip, split_validation


def test_crop_flip_matches_a_per_image_reference():
    gen_seed = 123
    imgs = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(imgs, torch.Generator().manual_seed(gen_seed))
    g = torch.Generator().manual_seed(gen_seed)  # replay the same draws
    dy = torch.randint(0, 9, (16,), generator=g)
    dx = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    padded = np.pad(imgs.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(16):
        ref = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        if flip[i]:
            ref = ref[:, :, ::-1]
        np.testing.assert_array_equal(out[i].numpy(), ref)
    assert out.dtype == torch.uint8
    assert flip.any() and not flip.all()


def test_normalizer_per_channel():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    y = Normalizer(mean=(0.5, 0.0, 1.0), std=(0.5, 1.0, 2.0))(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([1.0, 1.0, 0.0]))


def test_batches_are_a_function_of_seed_and_iteration():
    data = make_synthetic(100, seed=0)
    a, b = BatchSchedule(data, 32, seed=5), BatchSchedule(data, 32, seed=5)
    xa, ya = a.batch(7)
    b.batch(3)  # another history does not change batch 7
    xb, yb = b.batch(7)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # the first epoch visits every image exactly once, batches stay full across the boundary
    idx = np.concatenate([a.indices(i) for i in range(4)])  # 128 positions, 100 images
    assert sorted(idx[:100].tolist()) == list(range(100))
    assert len(a.indices(3)) == 32
    assert not torch.equal(BatchSchedule(data, 32, seed=6).batch(7)[0], xa)


def test_synthetic_is_deterministic_and_balanced():
    a, b = make_synthetic(500, seed=3), make_synthetic(500, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (500, 3, 32, 32) and a.images.dtype == np.uint8
    counts = np.bincount(a.labels, minlength=10)
    assert counts.min() > 25


@pytest.fixture(scope="module")
def real_cifar(tmp_path_factory):
    return real_cifar10(tmp_path_factory.mktemp("cifar"))


def test_real_cifar10_training_images(real_cifar):
    ds = load_cifar(real_cifar, "cifar10", "train")
    assert ds.images.shape == (50000, 3, 32, 32)
    assert np.bincount(ds.labels).tolist() == [5000] * 10
    fit, val = split_validation(ds, 5000)
    assert len(fit) == 45000 and len(val) == 5000
    # real photographs: the per-channel means are near the published CIFAR-10 statistics
    means = ds.images[:5000].mean(axis=(0, 2, 3)) / 255
    np.testing.assert_allclose(means, [0.4914, 0.4822, 0.4465], atol=0.02)
