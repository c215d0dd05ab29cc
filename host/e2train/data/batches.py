"""Which samples form mini-batch ``i``: a pure function of (seed, i), so resuming needs no loader state.

The training images are walked in a seeded random permutation per epoch; batch ``i`` takes positions
``i*B .. i*B + B - 1`` of the concatenated permutations (every batch is full; an epoch boundary falls
inside a batch when N is not a multiple of B). Augmentation of batch ``i`` uses a generator seeded from
(seed, i) too.

Distributed runs shard each batch: rank r of R takes positions ``r*B/R .. (r+1)*B/R - 1`` of batch ``i``
(B the global batch), augmented with the draws of the whole batch, so that R ranks together see exactly
the samples and augmentations of one process at batch B, in the same order.
"""

from __future__ import annotations

import numpy as np
import torch

from .augment import Normalizer, random_crop_flip
from .cifar import ImageSet


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SplitMix-style), so that nearby (seed, i) give unrelated streams."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class BatchSchedule:
    def __init__(self, data: ImageSet, batch_size: int, seed: int, augment: bool = True, normalizer=None,
                 shard: tuple[int, int] = (0, 1)):
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        rank, ranks = shard
        if batch_size % ranks or not 0 <= rank < ranks:
            raise ValueError(f"a batch of {batch_size} cannot be split evenly over {ranks} processes")
        if len(data) == 0:
            raise ValueError("the training set is empty")
        self.images = torch.from_numpy(data.images)
        self.labels = torch.from_numpy(data.labels)
        self.n = len(data)
        self.batch_size = batch_size  # the global batch; this process takes rows ``self.rows`` of it
        self.local_batch = batch_size // ranks
        self.rows = slice(rank * self.local_batch, (rank + 1) * self.local_batch)
        self.seed = seed
        self.augment = augment
        self.normalize = normalizer or Normalizer()
        self._perm_cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            self._perm_cache[epoch] = np.random.default_rng(mix_seed(self.seed, 1, epoch)).permutation(self.n)
        return self._perm_cache[epoch]

    def indices(self, i: int) -> np.ndarray:
        start = i * self.batch_size
        out = np.empty(self.batch_size, dtype=np.int64)
        filled = 0
        while filled < self.batch_size:
            epoch, pos = divmod(start + filled, self.n)
            take = min(self.batch_size - filled, self.n - pos)
            out[filled : filled + take] = self._perm(epoch)[pos : pos + take]
            filled += take
        return out

    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images [b, 3, 32, 32] (augmented, normalised) and labels [b] of mini-batch ``i``: the whole
        batch (b = B), or this process's shard of it (b = B / ranks)."""
        whole = self.local_batch == self.batch_size
        idx = torch.from_numpy(self.indices(i) if whole else self.indices(i)[self.rows])
        x = self.images.index_select(0, idx)
        if self.augment:
            gen = torch.Generator().manual_seed(mix_seed(self.seed, 2, i))
            x = random_crop_flip(x, gen, part=None if whole else (self.rows, self.batch_size))
        return self.normalize(x), self.labels.index_select(0, idx)


def eval_batches(data: ImageSet, batch_size: int, normalizer=None):
    """The images in order, normalised, without augmentation."""
    norm = normalizer or Normalizer()
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    for s in range(0, len(data), batch_size):
        yield norm(images[s : s + batch_size]), labels[s : s + batch_size]
