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

import torch
import torch.nn.functional as F

from .. import fixed

# Largest integer below which every integer is a float of that type.
_EXACT_LIMIT = {torch.float64: 1 << 53, torch.float32: 1 << 24, torch.float16: 1 << 11, torch.bfloat16: 1 << 8}


def exact_limit(dtype: torch.dtype) -> int:
    """Sums of integers whose absolute terms add up to less than this are exact in ``dtype``."""
    return _EXACT_LIMIT[dtype]


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


def psg_confident(g_msb: torch.Tensor, beta_q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which weights take the predicted sign: G_msb != 0 and |G_msb| * 65536 >= beta_q * max|G_msb|.

    Returns the boolean mask and max|G_msb| (a 0-d tensor, so no device synchronisation).
    Exact in float64 (both products stay below 2**48); in float32 it is the same compare, rounded.
    """
    mag = g_msb.abs()
    top = mag.max() if mag.numel() else mag.new_zeros(())
    confident = (mag != 0) & (mag * float(1 << fixed.BETA_FRAC_BITS) >= top * float(beta_q))
    return confident, top


def psg_sign(g_msb: torch.Tensor, g_full: torch.Tensor, beta_q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The PSG choice per weight: the predicted sign where confident, else sgn(G_full).

    Returns ``(sign, confident)``; sign has g_full's dtype and values in {-1, 0, 1}.
    """
    confident, _ = psg_confident(g_msb, beta_q)
    return torch.where(confident, torch.sign(g_msb), torch.sign(g_full)), confident


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
