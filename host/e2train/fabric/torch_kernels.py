"""The three kernels of the contract on torch tensors that hold integers in a floating type.

These functions are shared by the ``torch`` fabric backend (numpy in and out, float64, exact) and by
the PSG convolution used in training (float32 on CPU or CUDA, or float64 for the gradient checks).
Every operand is an integer-valued float tensor; a sum of integer products is exact in a floating
type when the sum of the magnitudes of its terms stays below 2**(mantissa bits + 1), whatever the
summation order. In float64 that holds for every layer of the supported models (callers that need a
guarantee check it, see ``exact_terms_limit``); in float32 the kernels are used for speed and are
close, not exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import fixed

# Largest integer below which every integer is a float of that type.
_EXACT_LIMIT = {torch.float64: 1 << 53, torch.float32: 1 << 24, torch.float16: 1 << 11, torch.bfloat16: 1 << 8}


def exact_limit(dtype: torch.dtype) -> int:
    """Sums of integers whose absolute terms add up to less than this are exact in ``dtype``."""
    return _EXACT_LIMIT[dtype]


# 2**e is applied in steps of at most 2**POW2_STEP so that every factor is a normal float32 number.
POW2_STEP = 100


def scale_pow2(t: torch.Tensor, e: int) -> torch.Tensor:
    """t * 2**e, exact unless the result leaves the floating range (then it rounds as IEEE does)."""
    e = int(e)
    while e > POW2_STEP:
        t = t * math.ldexp(1.0, POW2_STEP)
        e -= POW2_STEP
    while e < -POW2_STEP:
        t = t * math.ldexp(1.0, -POW2_STEP)
        e += POW2_STEP
    return t * math.ldexp(1.0, e)


def padding(k: int) -> int:
    return (k - 1) // 2


def conv_fwd(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    """y[n,o,h',w'] = sum_{c,i,j} x[n,c,h's+i-p,w's+j-p] * w[o,c,i,j], zero padding p = (k-1)/2."""
    return F.conv2d(x, w, stride=stride, padding=padding(w.shape[-1]))


def conv_backward(
    g: torch.Tensor,
    x: torch.Tensor | None,
    w: torch.Tensor | None,
    stride: int,
    k: int,
    in_shape,
    need_data: bool = True,
    need_weight: bool = True,
):
    """Backward-data (transposed conv of g with w) and/or weight gradient (g correlated with x).

    One call computes both when both are wanted, as a float convolution's backward does; returns
    ``(g_x or None, G or None)``. ``in_shape`` is x's shape [N,C,H,W] (x may be None when only g_x is
    wanted: at stride 2 two input sizes give the same output size, so the shape must be given).
    """
    n, c, h, wd = in_shape
    o = g.shape[1]
    if x is None:
        x = g.new_empty(1).expand(n, c, h, wd)
    if w is None:
        w = g.new_empty(1).expand(o, c, k, k)
    gx, gw, _ = torch.ops.aten.convolution_backward(
        g,
        x,
        w,
        None,
        [stride, stride],
        [padding(k), padding(k)],
        [1, 1],
        False,
        [0, 0],
        1,
        [need_data, need_weight, False],
    )
    return gx, gw


def msb_float(q: torch.Tensor, from_bits: int, to_bits: int, inplace: bool = False) -> torch.Tensor:
    """The contract's (v2) MSB predictor of integer values held in a float tensor, exactly:
    min(floor((q + 2**(s-1)) / 2**s), qmax(to_bits)), s = from_bits - to_bits (see ``fixed.msb``)."""
    s = from_bits - to_bits
    q = q.add_(float(1 << (s - 1))) if inplace else q + float(1 << (s - 1))
    return msb_float_floor(q, from_bits, to_bits, True).clamp_(max=fixed.qmax(to_bits))


def msb_float_floor(q: torch.Tensor, from_bits: int, to_bits: int, inplace: bool = False) -> torch.Tensor:
    """Contract v1's predictor, floor(q / 2**s): kept only for the torch engine's ``msb = "floor"``
    ablation (biased toward -1; docs/psg.md). No fabric backend computes it."""
    s = 1.0 / (1 << (from_bits - to_bits))
    return (q.mul_(s) if inplace else q * s).floor_()
