"""The PSG choice of the contract (docs/contracts.md, section 3), written once for every backend.

A weight takes the sign predicted from the MSBs iff ``G_msb != 0`` and
``|G_msb| * 65536 >= beta_q * max|G_msb|``; otherwise it takes sgn(G_full). The same two functions
serve the numpy backends (reference, the torch fabric, the cpu fabric, the simulated board) and the
torch and cpu engines: integers (numpy or torch) are widened to int64 and compared exactly; floating
tensors are compared in their own type, exact in float64 (both products stay below 2**48) and the same
compare, rounded, in float32 (the fast training path). numpy alone is needed here: the board runs the
reference without torch.
"""

from __future__ import annotations

import math

import numpy as np

from .. import fixed


def _lib(a):
    """numpy for arrays, torch for tensors (imported only then)."""
    if isinstance(a, np.ndarray):
        return np
    import torch

    return torch


def psg_confident(g_msb, beta_q: int):
    """-> (mask of the weights that take the predicted sign, max|G_msb|).

    For a tensor the max stays a 0-d tensor (no device synchronisation); for an array it is an int64.
    """
    if isinstance(g_msb, np.ndarray):
        g_msb = g_msb.astype(np.int64)  # |G_msb| * 2**16 overflows int32
    elif not g_msb.is_floating_point():
        g_msb = g_msb.long()
    mag = abs(g_msb)
    top = mag.max() if math.prod(mag.shape) else mag.sum()  # an empty sum: a zero of mag's type
    confident = (mag != 0) & (mag * (1 << fixed.BETA_FRAC_BITS) >= top * int(beta_q))
    return confident, top


def psg_sign(confident, g_msb, g_full):
    """sgn(G_msb) where ``confident``, else sgn(G_full); ``g_full`` None: nothing fell back (zeros there)."""
    xp = _lib(g_msb)
    return xp.where(confident, xp.sign(g_msb), 0 if g_full is None else xp.sign(g_full))
