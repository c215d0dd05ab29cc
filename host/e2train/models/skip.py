"""Running a residual branch for some samples only: gather the active ones, run, scatter back.

This is what makes SLU save wall-clock time: the branch's forward *and* backward see only the samples
whose gate is on. ``masked_residual`` is the same arithmetic done the wasteful way (the branch on every
sample, multiplied by the 0/1 factor); tests check the two agree in outputs and gradients.
"""

from __future__ import annotations

import torch


class _OpenGate(torch.autograd.Function):
    """``b * f`` for samples whose gate is open, where f = 1 + p - p.detach() is exactly 1 in value:
    the forward skips the multiply, the backward passes ``g`` to ``b`` and ``sum(g * b)`` to ``p``."""

    @staticmethod
    def forward(ctx, b, p):
        ctx.save_for_backward(b)
        return b.view_as(b)  # value unchanged: no copy, no multiply

    @staticmethod
    def backward(ctx, g):
        (b,) = ctx.saved_tensors
        # per-sample dot products <g_n, b_n> as one batched product: no [N,C,H,W] temporary
        # (sizes spelled out: a rank of a distributed run may hold zero samples of a block)
        n, m = g.shape[0], b[0].numel() if b.shape[0] else 0
        grad_p = torch.bmm(g.reshape(n, 1, m), b.reshape(n, m, 1)).view(-1) if ctx.needs_input_grad[1] else None
        return g, grad_p


def gathered_residual(shortcut: torch.Tensor, x: torch.Tensor, branch, p: torch.Tensor, active: torch.Tensor,
                      run_empty: bool = False):
    """``shortcut + f * branch(x)`` with the gate factor f = d (1 + p - p.detach()), computing ``branch``
    only on rows where ``active`` (d) is true; the other rows take ``shortcut`` unchanged.

    ``run_empty``: with no active row, run the branch on zero rows anyway (a distributed run whose other
    ranks run this block: the same layers and collectives on every rank, zero gradients from this one)."""
    n = x.shape[0]
    idx = active.nonzero().squeeze(1)
    if idx.numel() == n:  # every sample runs: no copies
        return shortcut + _OpenGate.apply(branch(x), p)
    if idx.numel() == 0 and not run_empty:  # no sample runs: the branch costs nothing
        return shortcut
    y = _OpenGate.apply(branch(x.index_select(0, idx)), p.index_select(0, idx))
    return shortcut.index_add(0, idx, y)


def masked_residual(shortcut: torch.Tensor, x: torch.Tensor, branch, factor: torch.Tensor):
    """The reference: ``branch`` on every sample, zeroed by the factor where the gate is off."""
    return shortcut + branch(x) * factor.view(-1, 1, 1, 1)
