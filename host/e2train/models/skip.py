"""Running a residual branch for some samples only: gather the active ones, run, scatter back.

This is what makes SLU save wall-clock time: the branch's forward *and* backward see only the samples
whose gate is on. ``masked_residual`` is the same arithmetic done the wasteful way (the branch on every
sample, multiplied by the 0/1 factor); tests check the two agree in outputs and gradients.
"""

from __future__ import annotations

import torch


def gathered_residual(shortcut: torch.Tensor, x: torch.Tensor, branch, factor: torch.Tensor, active: torch.Tensor):
    """``shortcut + factor * branch(x)`` computing ``branch`` only on rows where ``active`` is true.

    factor [N] multiplies the branch output per sample (the gate's straight-through factor); rows that
    are not active take ``shortcut`` unchanged.
    """
    n = x.shape[0]
    idx = active.nonzero().squeeze(1)
    if idx.numel() == n:  # every sample runs: no copies
        return shortcut + branch(x) * factor.view(-1, 1, 1, 1)
    if idx.numel() == 0:  # no sample runs: the branch costs nothing
        return shortcut
    y = branch(x.index_select(0, idx)) * factor.index_select(0, idx).view(-1, 1, 1, 1)
    return shortcut.index_add(0, idx, y)


def masked_residual(shortcut: torch.Tensor, x: torch.Tensor, branch, factor: torch.Tensor):
    """The reference: ``branch`` on every sample, zeroed by the factor where the gate is off."""
    return shortcut + branch(x) * factor.view(-1, 1, 1, 1)
