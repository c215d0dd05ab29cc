"""The ``Fabric`` interface shared by every backend, its result type and its argument checks.

Every backend (reference, csim, torch, pynq) subclasses :class:`Fabric` and implements the three
``_conv_*`` hooks; the public methods here validate the arguments once, with one set of error
messages, so that a wrong dtype or shape fails the same way whichever backend runs. A backend whose
kernels hold planes only up to a size (``max_hw``) or accumulate in the contract's fixed widths
without a check of their own (``wraps``: the C++ and the PL would wrap) is also held to those limits
here, before anything runs. The ranges come from ``e2train.contract``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from ..contract import BETA_Q_MAX, KERNEL_SIZES, PSG_MODES, STRIDES, ConvShape, accumulators_of, out_size
from .bounds import accumulator_bounds


@dataclass
class PsgResult:
    """What ``conv_bwd_weight_psg`` returns.

    sign:        int8 [O,C,k,k] in {-1, 0, 1}: the update direction of each weight.
    predicted:   how many weights took the sign predicted from the MSBs (0 in mode "full").
    g_full:      int64 [O,C,k,k], the full-precision weight gradient; always set in mode "full",
                 optional in mode "psg" (a backend that skips confident weights leaves it None).
    g_msb:       int32 [O,C,k,k], the MSB predictor, where the backend exposes it.
    max_abs_msb: max |G_msb| over all weights, where the backend exposes it.
    """

    sign: np.ndarray
    predicted: int
    mode: str = "psg"
    g_full: np.ndarray | None = None
    g_msb: np.ndarray | None = None
    max_abs_msb: int | None = None

    @property
    def total(self) -> int:
        return int(self.sign.size)

    @property
    def predicted_ratio(self) -> float:
        return self.predicted / self.total if self.total else 0.0


class FabricError(ValueError):
    """A kernel call with arguments the contract does not allow."""


def _check_array(a, name: str, dtype, ndim: int = 4) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise FabricError(f"{name} must be a numpy array of {np.dtype(dtype).name}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise FabricError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype}")
    if a.ndim != ndim:
        raise FabricError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def _check_stride(stride) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or int(stride) not in STRIDES:
        raise FabricError(f"stride must be one of {STRIDES}, got {stride!r}")
    return int(stride)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) not in KERNEL_SIZES:
        raise FabricError(f"kernel size must be one of {KERNEL_SIZES}, got {k!r}")
    return int(k)


def _check_weight(w: np.ndarray) -> int:
    _check_array(w, "w", np.int8)
    if w.shape[2] != w.shape[3]:
        raise FabricError(f"w must have a square kernel, got shape {w.shape}")
    return _check_k(w.shape[2])


def _check_nonempty(shape, name: str) -> None:
    if any(d <= 0 for d in shape):
        raise FabricError(f"{name} has an empty dimension: shape {shape}")


class Fabric(abc.ABC):
    """The three convolution kernels of the contract; numpy arrays in and out."""

    name = "abstract"
    # Largest input height and width the kernels hold (None: any); an instance may set its own.
    max_hw: int | None = None
    # True where the kernels accumulate in the contract's widths and would wrap on overflow: a shape
    # whose worst case does not fit is then refused up front (reference and torch check the result).
    wraps = False

    @property
    def label(self) -> str:
        """The backend as error messages name it."""
        return self.name

    def conv_fwd(self, x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
        """int8 x [N,C,H,W], int8 w [O,C,k,k] -> int32 [N,O,H',W'] (zero padding (k-1)/2)."""
        _check_array(x, "x", np.int8)
        k = _check_weight(w)
        s = _check_stride(stride)
        if x.shape[1] != w.shape[1]:
            raise FabricError(f"x has {x.shape[1]} channels but w expects {w.shape[1]} (x {x.shape}, w {w.shape})")
        _check_nonempty(x.shape, "x")
        _check_nonempty(w.shape, "w")
        n, c, h, wd = x.shape
        self._check_limits(ConvShape("conv_fwd", n, c, w.shape[0], h, wd, k, s))
        return self._conv_fwd(np.ascontiguousarray(x), np.ascontiguousarray(w), k, s)

    def conv_bwd_data(self, g: np.ndarray, w: np.ndarray, stride: int, in_hw) -> np.ndarray:
        """int16 g [N,O,H',W'], int8 w [O,C,k,k] -> int64 [N,C,H,W]: the transposed convolution."""
        _check_array(g, "g", np.int16)
        k = _check_weight(w)
        s = _check_stride(stride)
        h, wd = self._check_in_hw(in_hw)
        if g.shape[1] != w.shape[0]:
            raise FabricError(f"g has {g.shape[1]} channels but w has {w.shape[0]} outputs (g {g.shape}, w {w.shape})")
        if g.shape[2:] != (out_size(h, k, s), out_size(wd, k, s)):
            raise FabricError(
                f"g spatial size {g.shape[2:]} does not match input {(h, wd)} with k={k}, stride={s} "
                f"(expected {(out_size(h, k, s), out_size(wd, k, s))})"
            )
        _check_nonempty(g.shape, "g")
        _check_nonempty(w.shape, "w")
        self._check_limits(ConvShape("conv_bwd_data", g.shape[0], w.shape[1], w.shape[0], h, wd, k, s))
        return self._conv_bwd_data(np.ascontiguousarray(g), np.ascontiguousarray(w), k, s, (h, wd))

    def conv_bwd_weight_psg(
        self, x: np.ndarray, g: np.ndarray, k: int, stride: int, beta_q: int, mode: str = "psg"
    ) -> PsgResult:
        """int8 x [N,C,H,W], int16 g [N,O,H',W'] -> signs int8 [O,C,k,k] (or G_full in mode "full")."""
        _check_array(x, "x", np.int8)
        _check_array(g, "g", np.int16)
        k = _check_k(k)
        s = _check_stride(stride)
        if isinstance(beta_q, bool) or not isinstance(beta_q, (int, np.integer)) or not 0 <= beta_q <= BETA_Q_MAX:
            raise FabricError(f"beta_q must be an integer in [0, {BETA_Q_MAX}] (Q0.16), got {beta_q!r}")
        if mode not in PSG_MODES:
            raise FabricError(f"mode must be one of {PSG_MODES}, got {mode!r}")
        if x.shape[0] != g.shape[0]:
            raise FabricError(f"x and g have different batch sizes: {x.shape[0]} vs {g.shape[0]}")
        expect = (out_size(x.shape[2], k, s), out_size(x.shape[3], k, s))
        if g.shape[2:] != expect:
            raise FabricError(f"g spatial size {g.shape[2:]} does not match x {x.shape} with k={k}, stride={s} (expected {expect})")
        _check_nonempty(x.shape, "x")
        _check_nonempty(g.shape, "g")
        n, c, h, wd = x.shape
        self._check_limits(ConvShape("conv_bwd_weight_psg", n, c, g.shape[1], h, wd, k, s), mode)
        return self._conv_bwd_weight_psg(np.ascontiguousarray(x), np.ascontiguousarray(g), k, s, int(beta_q), mode)

    def _check_limits(self, shape: ConvShape, mode: str | None = None) -> None:
        """Refuse what this backend's kernels cannot hold (planes) or would wrap (accumulators)."""
        top = self.max_hw
        if top is not None and max(shape.h, shape.w) > top:
            raise FabricError(
                f"{self.label} {shape.name}: input {shape.h}x{shape.w} exceeds the {top}x{top} planes the kernels "
                f"are built for (the backend holds inputs up to {top}x{top}); run larger layers on another backend"
            )
        if not self.wraps:
            return
        bounds = accumulator_bounds(shape)
        for acc in accumulators_of(shape.name, mode):
            worst, limit = bounds[acc]
            if worst > limit:
                raise OverflowError(
                    f"{self.label} {shape.name}: the worst case of {shape} ({worst}) exceeds its {acc} accumulator ({limit})"
                )

    @staticmethod
    def _check_in_hw(in_hw):
        try:
            h, wd = (int(v) for v in in_hw)
        except (TypeError, ValueError):
            raise FabricError(f"in_hw must be a pair (H, W), got {in_hw!r}") from None
        if h <= 0 or wd <= 0:
            raise FabricError(f"in_hw must be positive, got {in_hw!r}")
        return h, wd

    # Backends implement these; arguments are already checked and contiguous.
    @abc.abstractmethod
    def _conv_fwd(self, x: np.ndarray, w: np.ndarray, k: int, stride: int) -> np.ndarray: ...

    @abc.abstractmethod
    def _conv_bwd_data(self, g: np.ndarray, w: np.ndarray, k: int, stride: int, in_hw) -> np.ndarray: ...

    @abc.abstractmethod
    def _conv_bwd_weight_psg(
        self, x: np.ndarray, g: np.ndarray, k: int, stride: int, beta_q: int, mode: str
    ) -> PsgResult: ...

    def close(self) -> None:
        """Release what the backend holds (buffers, the overlay); a no-op by default."""

    def __repr__(self) -> str:
        return f"<Fabric {self.name}>"
