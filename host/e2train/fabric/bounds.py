"""Worst-case accumulator magnitudes from the operand widths (the networks' conv layers: ``networks``).

The bound of a sum of T products of a b_a-bit and a b_b-bit signed integer is T * 2**(b_a-1) * 2**(b_b-1)
(reached when every operand is the most negative value), so a layer is safe when that bound fits the
accumulator. ``T`` is the number of terms that can reach one output, which depends on the layer's
shape only: this is a proof over all inputs, not a sample.
"""

from __future__ import annotations

from functools import lru_cache

from .. import fixed
from ..contract import ACCUMULATORS, ConvShape, out_size


@lru_cache(maxsize=None)
def _taps_per_input(size: int, k: int, stride: int) -> int:
    """Most kernel taps along one axis that any input position receives in the transposed conv.
    Cached: the backends check every call, and the scan over positions costs more than a small layer."""
    pad = (k - 1) // 2
    n_out = out_size(size, k, stride)
    best = 0
    for pos in range(size):
        taps = sum(1 for i in range(k) if (pos + pad - i) % stride == 0 and 0 <= (pos + pad - i) // stride < n_out)
        best = max(best, taps)
    return best


def product_bound(bits_a: int, bits_b: int) -> int:
    """Largest |a * b| for signed integers of those widths: (-2**(ba-1)) * (-2**(bb-1))."""
    return (1 << (bits_a - 1)) * (1 << (bits_b - 1))


def accumulator_terms(s: ConvShape) -> dict[str, int]:
    """How many products can add into one accumulator, per kernel."""
    taps = _taps_per_input(s.h, s.k, s.stride) * _taps_per_input(s.w, s.k, s.stride)
    return {
        "forward": s.c * s.k * s.k,
        "backward_data": s.o * taps,
        "weight_full": s.n * s.ho * s.wo,
        "weight_msb": s.n * s.ho * s.wo,
    }


def accumulator_bounds(s: ConvShape) -> dict[str, tuple[int, int]]:
    """kernel -> (worst-case |accumulator|, the largest value its accumulator holds)."""
    terms = accumulator_terms(s)
    return {
        kern: (terms[kern] * product_bound(*widths), fixed.qmax(acc_bits))
        for kern, (widths, acc_bits) in ACCUMULATORS.items()
    }
