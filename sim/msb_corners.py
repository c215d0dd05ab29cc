"""Operand values at the edges of the contract-v2 MSB rounding (docs/contracts.md section 1).

``msb = min((q + 2**(s-1)) >> s, qmax)`` has three kinds of edge, for x (int8, s = 4) and g (int16,
s = 6): the ties half-way between two MSB codes (x = ..., -24, -8, 8, 24, ..., g = ..., -32, 32,
96, ...), which round up, beside the values just below them, which round down; the saturated top
codes (x in 120..127, g in 32736..32767), whose remainder goes above 2**(s-1); and the most
negative values (-128, -32768 and the rest of their lowest MSB code). The multiplier's testbench
and the engine's corner jobs draw their operands from these bands.
"""

from __future__ import annotations

import numpy as np


def bands(bits: int, shift: int) -> dict[str, np.ndarray]:
    """The edge values of a ``bits``-wide operand under its ``shift``-bit rounding, by kind."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    half = 1 << (shift - 1)
    ties = np.arange(lo + half, hi + 1, 1 << shift)
    return {
        "small_ties": np.array([-3 * half - 1, -3 * half, -half - 1, -half, half - 1, half, 3 * half - 1, 3 * half]),
        "ties": np.unique(np.concatenate([ties, ties - 1])),  # every tie and the value below it
        "saturated": np.arange(hi - half + 1, hi + 1),        # msb saturates at qmax, lsb >= 2**(s-1)
        "lowest": np.arange(lo, lo + (1 << shift)),           # the lowest msb code, -128 / -32768 first
        "zero": np.array([-1, 0, 1]),
    }


X_BANDS = bands(8, 4)     # int8 x: ties at +-8, +-24, ...; 120..127 saturate; -128..-113
G_BANDS = bands(16, 6)    # int16 g: ties at +-32, +-96, ...; 32736..32767 saturate; -32768..-32705
X_CORNERS = np.unique(np.concatenate(list(X_BANDS.values())))
G_CORNERS = np.unique(np.concatenate(list(G_BANDS.values())))


def draw(rng: np.random.Generator, kinds: dict[str, np.ndarray], size) -> np.ndarray:
    """Values from ``kinds``: each element picks a band uniformly, then a value of that band."""
    names = list(kinds)
    pick = rng.integers(0, len(names), size=size)
    out = np.empty(size, dtype=np.int64)
    for i, name in enumerate(names):
        sel = pick == i
        out[sel] = rng.choice(kinds[name], size=int(np.count_nonzero(sel)))
    return out
