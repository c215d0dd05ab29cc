"""A quick end-to-end check of a backend: random layers, compared with the reference bit for bit,
plus the adjoint identity <conv_fwd(x, w), g> = <x, conv_bwd_data(g, w)> = <w, G_full(x, g)>."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import fixed
from ..contract import out_size
from .base import Fabric
from .reference import ReferenceFabric

# (N, C, O, H, k, stride): a 3x3 layer, a strided 3x3 layer, a 1x1 projection shortcut.
SELFTEST_LAYERS = ((2, 3, 4, 8, 3, 1), (2, 4, 8, 9, 3, 2), (3, 8, 16, 8, 1, 2))


def random_layer(rng: np.random.Generator, n, c, o, h, k, stride):
    x = rng.integers(-128, 128, size=(n, c, h, h), dtype=np.int8)
    w = rng.integers(-128, 128, size=(o, c, k, k), dtype=np.int8)
    ho = out_size(h, k, stride)
    g = rng.integers(-32768, 32768, size=(n, o, ho, ho), dtype=np.int16)
    return x, w, g


def msb_edge_values(dtype) -> np.ndarray:
    """The int8 (x) or int16 (g_y) values where the MSB predictor (``fixed.msb``, contract v2) is easiest
    to get wrong: the saturated band at the top (x >= 120, g >= 32736), the rounding ties at +-1/2 and
    +-3/2 of an MSB step and their neighbours below, the two most negative values."""
    bits = np.iinfo(dtype).bits
    half = 1 << (bits - (fixed.X_MSB_BITS if bits == fixed.X_BITS else fixed.G_MSB_BITS) - 1)
    top = 1 << (bits - 1)
    ties = {v * half + d for v in (-3, -1, 1, 3) for d in (0, -1)}
    return np.array(sorted({*range(top - half, top), *ties, -top, -top + 1}), dtype=dtype)


def edge_operands(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Random int8 / int16 operands with about half of them drawn from ``msb_edge_values``."""
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)
    pick = rng.random(shape) < 0.5
    a[pick] = rng.choice(msb_edge_values(dtype), size=int(pick.sum()))
    return a


def layer_calls(fab: Fabric, s, x, w, g, beta_q: int = 3277):
    """The three kernels of conv layer ``s`` (a ``contract.ConvShape``) on operands from random_layer, as
    calls: conv_fwd, conv_bwd_data, conv_bwd_weight_psg (mode psg). What the benchmarks time."""
    return (
        lambda: fab.conv_fwd(x, w, s.stride),
        lambda: fab.conv_bwd_data(g, w, s.stride, (s.h, s.w)),
        lambda: fab.conv_bwd_weight_psg(x, g, s.k, s.stride, beta_q),
    )


def run_selftest(fab: Fabric, rng: np.random.Generator, log: Callable[[str], None] = lambda s: None) -> list[str]:
    ref = fab if type(fab) is ReferenceFabric else ReferenceFabric()
    failures = []
    for n, c, o, h, k, s in SELFTEST_LAYERS:
        x, w, g = random_layer(rng, n, c, o, h, k, s)
        y = fab.conv_fwd(x, w, s)
        gx = fab.conv_bwd_data(g, w, s, (h, h))
        full = fab.conv_bwd_weight_psg(x, g, k, s, 3277, mode="full")
        psg = fab.conv_bwd_weight_psg(x, g, k, s, 3277, mode="psg")
        checks = {
            "conv_fwd": np.array_equal(y, ref.conv_fwd(x, w, s)) and y.dtype == np.int32,
            "conv_bwd_data": np.array_equal(gx, ref.conv_bwd_data(g, w, s, (h, h))) and gx.dtype == np.int64,
            "g_full": np.array_equal(full.g_full, ref.conv_bwd_weight_psg(x, g, k, s, 3277, "full").g_full),
        }
        rpsg = ref.conv_bwd_weight_psg(x, g, k, s, 3277, "psg")
        checks["psg sign"] = np.array_equal(psg.sign, rpsg.sign) and psg.predicted == rpsg.predicted
        a = int(np.sum(y.astype(object) * g.astype(object)))
        b = int(np.sum(x.astype(object) * gx.astype(object)))
        cc = int(np.sum(w.astype(object) * full.g_full.astype(object)))
        checks["adjoint"] = a == b == cc
        layer = f"N={n} C={c} O={o} H={h} k={k} s={s}"
        for what, ok in checks.items():
            log(f"  {layer:32s} {what:14s} {'ok' if ok else 'MISMATCH'}")
            if not ok:
                failures.append(f"{layer}: {what}")
        log(f"  {layer:32s} predicted {psg.predicted}/{psg.total} weights")
    return failures
