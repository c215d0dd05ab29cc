"""Number formats of the contract (docs/contracts.md section 1).

A quantised tensor is an integer array ``q`` and one power-of-two exponent ``e``: value = q * 2**e.
These are the numpy definitions the reference fabric and the golden files use; the training path
computes the same in torch (``psg/quant.py``, ``fabric/torch_kernels.py``), held to these by tests.
What the kernels do with the formats (their names, modes, accumulators) is ``e2train.contract``.

* exponent: the smallest integer e with max|x| <= qmax * 2**e, qmax = 2**(b-1) - 1; 0 for all zeros.
* quantise: q = clamp(floor(x / 2**e + 1/2), -2**(b-1), 2**(b-1) - 1): round half up, then saturate.
* msb (contract v2): round to nearest (half up) into the narrower width, saturating its top code;
  lsb: the signed remainder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# The version of the contract these definitions state. 2: the MSB predictors round to nearest and
# saturate (v1 floored them: biased, PSG did not train; docs/contracts.md). Golden files, the board
# manifest and the register maps carry it; anything made under another version is refused.
CONTRACT_VERSION = 2

# Widths fixed by the contract.
X_BITS = 8  # activations
W_BITS = 8  # weights
G_BITS = 16  # output gradients g_y
X_MSB_BITS = 4  # x_msb = min((x + 8) >> 4, 7)
G_MSB_BITS = 10  # g_msb = min((g_y + 32) >> 6, 511)
ACC_FWD_BITS = 32
ACC_BWD_BITS = 48  # backward-data and full weight gradient (int64 in C and numpy)
ACC_MSB_BITS = 32
BETA_FRAC_BITS = 16  # beta is Q0.16


def qmax(bits: int) -> int:
    """Largest value of a signed ``bits``-wide integer."""
    _check_bits(bits)
    return (1 << (bits - 1)) - 1


def qmin(bits: int) -> int:
    """Smallest value of a signed ``bits``-wide integer."""
    _check_bits(bits)
    return -(1 << (bits - 1))


def int_dtype(bits: int) -> np.dtype:
    """The narrowest numpy integer dtype that holds a signed ``bits``-wide integer."""
    _check_bits(bits)
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if bits <= np.iinfo(dt).bits:
            return np.dtype(dt)
    raise ValueError(f"no integer dtype holds {bits} bits")


def _check_bits(bits) -> None:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 2 <= bits <= 64:
        raise ValueError(f"bit width must be an integer in [2, 64], got {bits!r}")


def exponent(max_abs, bits: int) -> int:
    """Smallest integer e with ``max_abs <= qmax(bits) * 2**e``; 0 when ``max_abs`` is 0."""
    top = qmax(bits)
    m = float(max_abs)
    if math.isnan(m) or math.isinf(m):
        raise ValueError(f"cannot choose an exponent for max|x| = {m}")
    if m < 0:
        raise ValueError(f"max_abs must be >= 0, got {m}")
    if m == 0.0:
        return 0
    # frexp gives a first guess; the two loops make it exact (all comparisons are exact in binary).
    e = math.frexp(m / top)[1]
    while m > math.ldexp(top, e):
        e += 1
    while m <= math.ldexp(top, e - 1):
        e -= 1
    return e


def max_abs(x) -> float:
    """max|x| as a Python float (0.0 for an empty tensor)."""
    x = np.asarray(x)
    return float(np.max(np.abs(x))) if x.size else 0.0


def round_half_up(v):
    """floor(v + 1/2), computed without the rounding error of the addition.

    ``v + 0.5`` is inexact just below one half (0.49999999999999994 + 0.5 rounds to 1.0);
    floor and the fraction ``v - floor(v)`` are exact, so compare the fraction instead.
    """
    f = np.floor(v)
    return f + ((v - f) >= 0.5)


@dataclass
class SaturationCounter:
    """Counts values clamped by quantisation, by name (for example a layer and tensor)."""

    saturated: dict = field(default_factory=dict)
    total: dict = field(default_factory=dict)

    def add(self, name: str, n_saturated: int, n_total: int) -> None:
        self.saturated[name] = self.saturated.get(name, 0) + int(n_saturated)
        self.total[name] = self.total.get(name, 0) + int(n_total)

    def reset(self) -> None:
        self.saturated.clear()
        self.total.clear()

    @property
    def any(self) -> bool:
        return any(v > 0 for v in self.saturated.values())

    def as_dict(self) -> dict:
        return {k: {"saturated": self.saturated[k], "total": self.total[k]} for k in self.saturated}


def quantize_with_exponent(x, bits: int, e: int, counter: SaturationCounter | None = None, name: str = ""):
    """Quantise ``x`` on the grid 2**e: round half up, saturate to ``bits``; returns q.

    Values beyond the range saturate (never wrap) and are counted in ``counter`` under ``name``.
    The result has the narrowest integer dtype that holds ``bits``.
    """
    lo, hi = qmin(bits), qmax(bits)
    e = int(e)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if np.isnan(x).any():
        raise ValueError("cannot quantise NaN")
    v = round_half_up(np.ldexp(x, -e))
    if counter is not None:
        counter.add(name, int(np.count_nonzero((v < lo) | (v > hi))), v.size)
    return np.clip(v, lo, hi).astype(int_dtype(bits))


def quantize(x, bits: int, e: int | None = None, counter: SaturationCounter | None = None, name: str = ""):
    """Quantise ``x`` to a signed ``bits``-wide integer tensor and one exponent: returns ``(q, e)``.

    With ``e=None`` the exponent is the contract's choice for max|x| (then nothing saturates);
    pass ``e`` to quantise on a given grid, where values beyond the range saturate and are counted.
    """
    if e is None:
        e = exponent(max_abs(x), bits)
    return quantize_with_exponent(x, bits, e, counter, name), int(e)


def dequantize(q, e: int, dtype=None):
    """q * 2**e as floats (float64 unless ``dtype``)."""
    return np.ldexp(np.asarray(q, dtype=dtype or np.float64), int(e))


def fake_quantize(x, bits: int, e: int | None = None, counter: SaturationCounter | None = None, name: str = ""):
    """quantize then dequantize, in x's own floating type: returns ``(x_q, e)``."""
    q, e = quantize(x, bits, e, counter, name)
    return dequantize(q, e, np.asarray(x).dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else None), e


def msb(q, from_bits: int, to_bits: int):
    """The ``to_bits``-wide predictor of ``from_bits``-wide integers (contract v2): round to nearest.

    ``min((q + 2**(s-1)) >> s, qmax(to_bits))``, s = from_bits - to_bits, with ``>>`` the arithmetic
    shift: ties go toward +inf (like the quantiser) and the few top codes saturate. The lower end needs
    no clamp: ``(qmin(from_bits) + 2**(s-1)) >> s == qmin(to_bits)``. See :func:`lsb` for the remainder.
    """
    shift = _msb_shift(from_bits, to_bits)
    top = qmax(to_bits)
    q = np.asarray(q)
    _check_int_range(q, from_bits)
    return np.minimum((q.astype(np.int64) + (1 << shift >> 1)) >> shift, top).astype(int_dtype(to_bits))


def lsb(q, from_bits: int, to_bits: int):
    """The signed remainder ``q - msb(q) * 2**s``, s = from_bits - to_bits (contract v2).

    In [-2**(s-1), 2**(s-1) - 1] except in the saturated band, where it reaches up to 2**s - 1:
    [-8, 15] for x (int5), [-32, 63] for g_y (int7). So ``q == msb * 2**s + lsb`` exactly.
    """
    shift = _msb_shift(from_bits, to_bits)
    m = msb(q, from_bits, to_bits)
    return (np.asarray(q).astype(np.int64) - (m.astype(np.int64) << shift)).astype(int_dtype(shift + 1))


def _msb_shift(from_bits: int, to_bits: int) -> int:
    _check_bits(from_bits)
    _check_bits(to_bits)
    if to_bits > from_bits:
        raise ValueError(f"msb: to_bits ({to_bits}) must not exceed from_bits ({from_bits})")
    return from_bits - to_bits


def _check_int_range(q, bits: int) -> None:
    if not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"expected an integer array, got {q.dtype}")
    if q.size and (int(q.min()) < qmin(bits) or int(q.max()) > qmax(bits)):
        raise ValueError(f"values outside the signed {bits}-bit range")


def beta_to_q16(beta: float) -> int:
    """beta as the contract's Q0.16 integer: round(beta * 65536) (0.05 -> 3277)."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    return int(math.floor(beta * (1 << BETA_FRAC_BITS) + 0.5))
