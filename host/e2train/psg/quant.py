"""The contract's quantisation on torch tensors, answering in the tensor's own floating type.

``e2train.fixed.quantize`` returns integer tensors; training wants the same integers held in float32
(or float64) so that torch's float convolutions can consume them without conversions. The rule is
the same one (the exponent from ``fixed.exponent``, ``fixed.round_half_up``, saturation); the tests
hold the two to the same integers.

Exponent policies, per layer and tensor:

* ``"max"`` (the contract): e from the tensor's own max|x|. Nothing can saturate, so no counting pass.
* ``"previous"``: e from the previous call's max|x| (the first call uses its own), as streaming
  hardware does when it must fix the scale before the data arrives. Values beyond the range saturate
  and are counted.
"""

from __future__ import annotations

import math

import torch

from .. import fixed
from ..fabric.torch_kernels import POW2_STEP, scale_pow2

EXPONENT_POLICIES = ("max", "previous")
_BAD_HALF: dict = {}


def _bad_half(dtype: torch.dtype) -> float:
    """The one value v for which floor(v + 1/2) rounds wrong in ``dtype``: the float just below 1/2."""
    if dtype not in _BAD_HALF:
        _BAD_HALF[dtype] = float(torch.nextafter(torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype)))
    return _BAD_HALF[dtype]


def round_half_up_scaled(x: torch.Tensor, e: int, exact: bool = True) -> torch.Tensor:
    """floor(x / 2**e + 1/2), the contract's rounding, in two cheap passes (four when ``exact``).

    With v = x / 2**e (exact: a power-of-two scale), v + 1/2 is exact for every float v but one, the float just
    below 1/2 (the sum ties and rounds to 1): for |v| >= 1/2 the 1/2 is a multiple of v's spacing and
    the sum either stays in v's binade or lands on the integer at its edge; for v in (-1/2, 1/2) the
    sum lies in (0, 1), where only that value reaches 1. With ``exact`` that value is looked for and
    fixed (one more pass); the float32 training path may skip it (one element in ~2**24 of that
    magnitude off by one, far below the rounding of its float32 convolutions).
    """
    if -POW2_STEP <= e <= POW2_STEP:  # one pass for 1/2 + x * 2**-e (the product is exact: one rounding, as two ops)
        q = torch.add(x.new_tensor(0.5), x, alpha=math.ldexp(1.0, -e))
    else:
        q = scale_pow2(x, -e).add_(0.5)
    q.floor_()
    if exact:
        target = _bad_x(x.dtype, e)
        if target is not None:
            bad = x == target
            if bool(bad.any()):
                q.masked_fill_(bad, 0.0)
    return q


def _bad_x(dtype: torch.dtype, e: int) -> float | None:
    """The x that scales to the bad v (see above), or None where dtype cannot hold it (then no x can)."""
    key = (dtype, e)
    if key not in _BAD_HALF:
        target = math.ldexp(_bad_half(dtype), e)
        held = float(torch.tensor(target, dtype=dtype))
        _BAD_HALF[key] = target if held == target else None
    return _BAD_HALF[key]


def max_abs(x: torch.Tensor) -> float:
    """max|x| in one pass (aminmax), as a Python float."""
    if not x.numel():
        return 0.0
    lo, hi = torch.aminmax(x.detach())
    m = max(-float(lo), float(hi))
    if not math.isfinite(m):
        raise FloatingPointError(f"cannot quantise a tensor holding {m}")
    return m


def quantize_float(x: torch.Tensor, bits: int, e: int | None = None, exact: bool = True):
    """``(q, e, saturated)``: q = clamp(floor(x / 2**e + 1/2)) as integers in x's floating dtype.

    With ``e=None`` the exponent is the contract's choice from max|x| and ``saturated`` is 0 by
    construction (|x / 2**e| <= qmax); with a given ``e`` out-of-range values saturate and are counted.
    """
    if e is None:
        e = fixed.exponent(max_abs(x), bits)
        return round_half_up_scaled(x.detach(), e, exact), e, 0
    q = round_half_up_scaled(x.detach(), int(e), exact)
    lo, hi = fixed.qmin(bits), fixed.qmax(bits)
    saturated = int(((q < lo) | (q > hi)).sum())
    return q.clamp_(lo, hi), int(e), saturated


class ExponentTracker:
    """Chooses one tensor's exponent per call under a policy, and counts what saturated.

    ``comm`` (a distributed run's world, exact mode): in training calls the max|x| is the maximum over
    the ranks, so every rank quantises its rows with the exponent one process would choose for the
    whole batch.
    """

    comm = None

    def __init__(self, bits: int, policy: str = "max", exact: bool = True):
        if policy not in EXPONENT_POLICIES:
            raise ValueError(f"exponent policy must be one of {EXPONENT_POLICIES}, got {policy!r}")
        self.bits = bits
        self.policy = policy
        self.exact = exact
        self.previous_max: float | None = None
        self.saturated = 0
        self.total = 0
        self.last_exponent: int | None = None

    def __call__(self, x: torch.Tensor, count: bool = True, quantizer=None):
        """Quantise ``x``: returns ``(q, e)`` with q in x's dtype, or, with ``quantizer`` (an engine's
        ``quantize(x, bits, e) -> (q, saturated)``, e.g. the cpu engine's int8 / int16 pass), q as it
        answers. The exponent and the counters follow the policy alike either way."""
        agreed = self.comm.max_scalar(max_abs(x)) if count and self.comm is not None else None
        if self.policy == "max" or self.previous_max is None:
            # with an agreed max nothing saturates either: it is at least this rank's
            e = None if agreed is None else fixed.exponent(agreed, self.bits)
        else:
            e = fixed.exponent(self.previous_max, self.bits)
        if quantizer is None:
            q, e, sat = quantize_float(x, self.bits, e, self.exact)
        else:
            e = fixed.exponent(max_abs(x), self.bits) if e is None else e
            q, sat = quantizer(x, self.bits, e)
        if self.policy == "previous" and count:  # evaluation passes (count=False) leave the training scale alone
            self.previous_max = max_abs(x) if agreed is None else agreed
        if count:
            self.saturated += sat
            self.total += x.numel()
            self.last_exponent = e
        return q, e

    def state_dict(self) -> dict:
        return {"previous_max": self.previous_max, "saturated": self.saturated, "total": self.total, "last_exponent": self.last_exponent}

    def load_state_dict(self, state: dict) -> None:
        self.previous_max = state["previous_max"]
        self.saturated = state["saturated"]
        self.total = state["total"]
        self.last_exponent = state["last_exponent"]
