"""Stochastic mini-batch dropping: each scheduled mini-batch is dropped with probability p.

The decision for iteration ``i`` is a pure function of (seed, i), made before the batch is loaded, so a
dropped batch costs nothing at all (no loading, forward, backward or optimizer step: no momentum and no
weight-decay update either), and a resumed run drops exactly the batches the uninterrupted one drops.
"""

from __future__ import annotations

import numpy as np

from ..data.batches import mix_seed


def smd_drop(seed: int, iteration: int, p: float) -> bool:
    if p <= 0:
        return False
    return bool(np.random.default_rng(mix_seed(seed, 3, iteration)).random() < p)
