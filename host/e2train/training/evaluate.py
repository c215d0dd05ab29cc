"""Top-1 / top-5 accuracy with deterministic gates, and the executed ratio at evaluation."""

from __future__ import annotations

import torch

from ..data.batches import eval_batches
from ..data.cifar import ImageSet
from ..models.base import GatedNet


@torch.no_grad()
def evaluate(model: GatedNet, data: ImageSet, batch_size: int = 500, device=None, part: tuple[int, int] = (0, 1),
             reduce=None) -> dict:
    """``part = (r, R)``: only the batches r, r + R, ... (rank r of a distributed run), their counts summed
    over the ranks by ``reduce`` (a list of numbers -> their sums)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct1 = correct5 = total = 0
    ran = gated = 0
    try:
        for j, (x, y) in enumerate(eval_batches(data, batch_size)):
            if j % part[1] != part[0]:
                continue
            x, y = x.to(device), y.to(device)
            out = model(x)
            top = out.topk(min(5, out.shape[1]), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
            total += len(y)
            if model.last_gates is not None:
                for d in model.last_gates.decisions:
                    ran += int(d.sum())
                    gated += d.numel()
    finally:
        model.train(was_training)
    if reduce is not None:
        correct1, correct5, total, ran, gated = (int(v) for v in reduce([correct1, correct5, total, ran, gated]))
    res = {"top1": correct1 / total, "top5": correct5 / total, "samples": total}
    if gated:
        res["executed_block_ratio"] = ran / gated
    return res
