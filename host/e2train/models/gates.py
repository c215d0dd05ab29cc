"""SLU gates: one small gate per residual block, sharing one LSTM (as in the E2-Train paper).

Per block: AvgPool to 1x1, a 1x1 conv planes -> 10 (the block's own embedding); then one LSTM(10, 10)
and one Linear(10, 1) + sigmoid shared by every gate, the LSTM state carried from block to block in
order. The gate sees the block's input and gives, per sample, the probability that the block runs.

Decisions: a deterministic threshold ``p > 0.5`` in training and at evaluation, so the blocks a trained
model skips at test time are the ones it learned to skip (the paper's released code samples at test
time: a defect we do not copy). ``sample=True`` (config ``slu.sample_in_training``) draws Bernoulli(p)
in training instead, for exploration; evaluation stays deterministic either way.
Gradient: the block output takes ``d * (1 + p - p.detach())`` (straight-through, value 0/1), so the task
loss reaches a gate only through the samples whose block ran (the skipped ones were never computed); the
computation regulariser uses ``d + p - p.detach()`` and so reaches every gate, skipped ones included.
"""

from __future__ import annotations

import torch
from torch import nn

GATE_EMBED = 10


class GateRNN(nn.Module):
    """The part shared by all gates: LSTM(10, 10) and Linear(10, 1)."""

    def __init__(self, hidden: int = GATE_EMBED):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(GATE_EMBED, hidden)
        self.proj = nn.Linear(hidden, 1)
        nn.init.constant_(self.proj.bias, 2.0)  # start with gates mostly open: blocks train before they are cut

    def macs_per_sample(self) -> int:
        return 4 * self.hidden * (GATE_EMBED + self.hidden) + self.hidden


class BlockGate(nn.Module):
    """The per-block part: pool to 1x1 and a 1x1 conv from the block's channels to the embedding."""

    def __init__(self, planes: int):
        super().__init__()
        self.planes = planes
        self.embed = nn.Conv2d(planes, GATE_EMBED, 1, bias=True)

    def macs_per_sample(self) -> int:
        return self.planes * GATE_EMBED


class GateState:
    """The LSTM state and the decisions of one forward pass, carried through the blocks."""

    def __init__(self, rnn: GateRNN, batch: int, device, dtype):
        self.rnn = rnn
        self.h = torch.zeros(batch, rnn.hidden, device=device, dtype=dtype)
        self.c = torch.zeros(batch, rnn.hidden, device=device, dtype=dtype)
        self.probs: list[torch.Tensor] = []  # per gated block: p [N]
        self.decisions: list[torch.Tensor] = []  # per gated block: bool [N]
        self.block_macs: list[int] = []  # per gated block: MACs of its residual branch per sample
        self.forced: torch.Tensor | None = None  # optional [n_gated, N] decisions given from outside

    def step(self, gate: BlockGate, x: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (p [N], decision bool [N]) for the next gated block."""
        e = gate.embed(torch.nn.functional.adaptive_avg_pool2d(x, 1)).flatten(1)
        self.h, self.c = self.rnn.cell(e, (self.h, self.c))
        p = torch.sigmoid(self.rnn.proj(self.h)).squeeze(1)
        idx = len(self.probs)
        if self.forced is not None:
            d = self.forced[idx].to(device=x.device, dtype=torch.bool)
        elif sample:
            d = torch.bernoulli(p.detach()).bool()
        else:
            d = p.detach() > 0.5
        self.probs.append(p)
        self.decisions.append(d)
        return p, d


def gate_factor(p: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Straight-through factor: value ``d`` (0/1), gradient ``d * dp`` (only where the block ran)."""
    hard = d.to(p.dtype)
    return hard * (1.0 + p - p.detach())
