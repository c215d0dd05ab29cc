"""The paper's CIFAR augmentation on uint8 tensors: pad 4, random 32x32 crop, horizontal flip, normalise.

Everything is one batched gather on the uint8 images (no per-image Python loop), driven by a
``torch.Generator`` so a batch's augmentation is a function of its seed alone: a resumed run sees the
same crops and flips as an uninterrupted one.
"""

from __future__ import annotations

import torch

# per-channel statistics of the CIFAR-10 training images (0..1 scale)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def random_crop_flip(images: torch.Tensor, gen: torch.Generator, pad: int = 4, part: tuple[slice, int] | None = None) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C, H, W]: zero-pad by ``pad``, crop at a random offset, flip half.

    ``part = (rows, B)``: ``images`` are rows ``rows`` of a batch of B; the draws are made for the whole
    batch and the rows' share taken, so that a shard of a batch is augmented as the batch is (distributed runs).
    """
    n, c, h, w = images.shape
    total = n if part is None else part[1]
    dy = torch.randint(0, 2 * pad + 1, (total,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (total,), generator=gen)
    flip = torch.rand(total, generator=gen) < 0.5
    if part is not None:
        dy, dx, flip = dy[part[0]], dx[part[0]], flip[part[0]]
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h)[None, :]  # [N, H]
    cols = torch.arange(w)[None, :].expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # [N, W]
    # one flat gather over the padded planes: index = row * padded_width + col
    flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.view(n, c, -1).gather(2, flat).view(n, c, h, w)


class Normalizer:
    """uint8 NCHW -> float32, minus the per-channel mean, over the per-channel std."""

    def __init__(self, mean=CIFAR_MEAN, std=CIFAR_STD):
        self.scale = (1.0 / (255.0 * torch.tensor(std))).view(1, -1, 1, 1)
        self.shift = (torch.tensor(mean) / torch.tensor(std)).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.float() * self.scale - self.shift
