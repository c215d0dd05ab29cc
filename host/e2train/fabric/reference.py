"""The golden model: the three kernels of the contract in numpy integer arithmetic.

Convolutions become matrix products over im2col patches. Products of small integers are summed in
float64 through BLAS where the sum provably stays below 2**53 (then every partial sum is an exact
integer whatever the summation order), which is what makes a ResNet layer at batch 128 take
seconds; past that bound the product falls back to int64 arithmetic. Results are checked to fit
the contract's accumulator widths.
"""

from __future__ import annotations

import numpy as np

from .. import fixed
from ..contract import out_size
from .base import Fabric, PsgResult
from .psg_rule import psg_confident, psg_sign

_FLOAT_EXACT = 1 << 53


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact int64 product of two integer matrices, through float64 BLAS when that is exact."""
    k = a.shape[1]
    amax = int(np.abs(a).max(initial=0))
    bmax = int(np.abs(b).max(initial=0))
    if k * amax * bmax < _FLOAT_EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


def _patches(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """im2col: [N,C,H,W] -> [N*H'*W', C*k*k] with zero padding (k-1)/2 (a view where possible)."""
    n, c, h, w = x.shape
    pad = (k - 1) // 2
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    assert win.shape[2:4] == (ho, wo)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)


def _fit(acc: np.ndarray, bits: int, what: str, dtype) -> np.ndarray:
    lo, hi = fixed.qmin(bits), fixed.qmax(bits)
    if acc.size and (int(acc.min()) < lo or int(acc.max()) > hi):
        raise OverflowError(f"{what}: result exceeds the {bits}-bit accumulator of the contract")
    return acc.astype(dtype)


def _weight_grad(x: np.ndarray, g: np.ndarray, k: int, stride: int) -> np.ndarray:
    """sum over n, h', w' of g[n,o,h',w'] * xpad[n,c,h'*s+i,w'*s+j] -> int64 [O,C,k,k]."""
    n, c = x.shape[:2]
    o = g.shape[1]
    cols = _patches(x, k, stride)
    gm = g.transpose(1, 0, 2, 3).reshape(o, -1)
    return _exact_matmul(gm, cols).reshape(o, c, k, k)


def psg_kernel(weight_grad, x: np.ndarray, g: np.ndarray, k: int, stride: int, beta_q: int, mode: str) -> PsgResult:
    """``conv_bwd_weight_psg`` from an exact int64 weight-gradient sum ``weight_grad(x, g, k, stride)``:
    G_full, and in mode psg G_msb of the MSB operands and the PSG choice. Every numpy-level backend that
    computes both sums whole (this one, the torch fabric) answers through it."""
    g_full = _fit(weight_grad(x, g, k, stride), fixed.ACC_BWD_BITS, "conv_bwd_weight (full)", np.int64)
    if mode == "full":
        return PsgResult(sign=np.sign(g_full).astype(np.int8), predicted=0, mode="full", g_full=g_full)
    x_msb = fixed.msb(x, fixed.X_BITS, fixed.X_MSB_BITS)
    g_msb_in = fixed.msb(g, fixed.G_BITS, fixed.G_MSB_BITS)
    g_msb = _fit(weight_grad(x_msb, g_msb_in, k, stride), fixed.ACC_MSB_BITS, "conv_bwd_weight (msb)", np.int32)
    confident, top = psg_confident(g_msb, beta_q)
    return PsgResult(
        sign=psg_sign(confident, g_msb, g_full).astype(np.int8),
        predicted=int(np.count_nonzero(confident)),
        mode="psg",
        g_full=g_full,
        g_msb=g_msb,
        max_abs_msb=int(top),
    )


class ReferenceFabric(Fabric):
    """numpy integer kernels written from the contract; every other backend is checked against it."""

    name = "reference"

    def _conv_fwd(self, x, w, k, stride):
        n, _, h, wd = x.shape
        o = w.shape[0]
        ho, wo = out_size(h, k, stride), out_size(wd, k, stride)
        acc = _exact_matmul(_patches(x, k, stride), w.reshape(o, -1).T)
        acc = acc.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(_fit(acc, fixed.ACC_FWD_BITS, "conv_fwd", np.int32))

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        n, o, ho, wo = g.shape
        c = w.shape[1]
        h, wd = in_hw
        pad = (k - 1) // 2
        # cols[n,h',w',c,i,j]: what output pixel (h',w') sends back to input pixel (h'*s+i-p, w'*s+j-p).
        cols = _exact_matmul(g.transpose(0, 2, 3, 1).reshape(-1, o), w.reshape(o, -1))
        cols = cols.reshape(n, ho, wo, c, k, k)
        outp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=np.int64)
        for i in range(k):
            for j in range(k):
                outp[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += cols[
                    :, :, :, :, i, j
                ].transpose(0, 3, 1, 2)
        acc = outp[:, :, pad : pad + h, pad : pad + wd]
        return np.ascontiguousarray(_fit(acc, fixed.ACC_BWD_BITS, "conv_bwd_data", np.int64))

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        return psg_kernel(_weight_grad, x, g, k, stride, beta_q, mode)
