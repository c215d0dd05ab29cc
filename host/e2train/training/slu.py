"""The SLU computation regulariser and the executed-computation bookkeeping.

``C`` is the FLOPs-weighted share of the gated blocks' computation that ran in this mini-batch:
``C = sum_b M_b * mean_n f_bn / sum_b M_b`` with M_b the MACs of block b's residual branch per sample
and f = d + p - p.detach() (value: the 0/1 decision; gradient: through the gate probability of every
sample, skipped ones included). The paper's
loss is ``CE + alpha * C``; its released code hard-codes the gate count and has an on/off controller
whose default disables skipping. We weight every gate by its block's MACs and steer C toward a target
ratio: ``loss = CE + alpha * |C - target|``, so the gates neither collapse to all-off nor stay all-on.
"""

from __future__ import annotations

import torch

from ..models.base import GatedNet


def branch_macs(model: GatedNet, per_sample: dict[str, int]) -> list[int]:
    """Per-sample MACs of each block's residual branch (its layers minus shortcut and gate)."""
    out = []
    for blk in model.res_blocks:
        prefix = blk.name + "."
        out.append(sum(v for k, v in per_sample.items() if k.startswith(prefix) and not k.endswith((".shortcut", ".gate"))))
    return out


def computation_ratio(model: GatedNet, gated_macs: list[int]) -> torch.Tensor | None:
    """C of the last forward pass, differentiable through the gates; None without SLU gates."""
    st = model.last_gates
    if st is None or not st.probs:
        return None
    total = float(sum(gated_macs))
    c = 0.0
    for m, p, d in zip(gated_macs, st.probs, st.decisions):
        c = c + (m / total) * (d.to(p.dtype) + p - p.detach()).mean()
    return c


def slu_loss(c: torch.Tensor, alpha: float, target: float) -> torch.Tensor:
    return alpha * (c - target).abs()
