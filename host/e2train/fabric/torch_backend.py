"""The ``torch`` fabric backend: the float64 torch engine behind the numpy ``Fabric`` face, bit-exact.

An adapter: integer operands are copied into float64 tensors and convolved by a float64
``TorchEngine`` (the engine training uses), the PSG choice is the one rule of ``psg_rule``. Each output is a sum of
integer products; it is exact whenever the sum of the magnitudes of its terms stays below 2**53,
whatever order torch adds in. That bound is checked from the actual operands before every call;
where it does not hold the sum is split along its reduction axis (input channels, output channels or
the batch) into chunks that are each exact, and the chunks are added in int64. Results are then held
to the contract's accumulator widths exactly as the reference does (OverflowError, never a wrap).

On CUDA, cuDNN is switched off for these calls: its FFT and Winograd algorithms do not add integer
products exactly. The training path (``e2train.psg``) uses the same engine in float32 for speed.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .. import fixed
from . import torch_kernels as tk
from ..contract import out_size
from .base import Fabric
from .reference import _fit, psg_kernel
from .torch_engine import TorchEngine

_LIMIT = tk.exact_limit(torch.float64)


def _chunk_size(units: int, terms_per_unit: int, amax: int, bmax: int) -> int:
    """How many units of the reduction axis one float64 call may sum and stay exact."""
    per_unit = terms_per_unit * amax * bmax
    if per_unit == 0:
        return units
    if per_unit >= _LIMIT:  # would need more than 2**31 terms per unit: no such layer fits in memory
        raise OverflowError("torch fabric: a single slice of the sum exceeds float64's exact range")
    return max(1, min(units, (_LIMIT - 1) // per_unit))


def _amax(a: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64)).max(initial=0))


class TorchFabric(Fabric):
    """Fake-quantised float64 convolutions in torch; agrees with ``reference`` bit for bit."""

    name = "torch"

    def __init__(self, device: str = "cpu"):
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"torch fabric: invalid device {device!r}: {exc}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            from . import BackendUnavailable

            raise BackendUnavailable("torch fabric: device 'cuda' requested but CUDA is not available")
        self.engine = TorchEngine("float64")

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float64)).to(self.device)

    def _exact(self):
        if self.device.type == "cuda":
            return torch.backends.cudnn.flags(enabled=False)
        return contextlib.nullcontext()

    @staticmethod
    def _int(t: torch.Tensor) -> np.ndarray:
        return t.to(torch.int64).cpu().numpy()

    def _conv_fwd(self, x, w, k, stride):
        c = x.shape[1]
        step = _chunk_size(c, k * k, _amax(x), _amax(w))
        acc = 0
        with torch.no_grad(), self._exact():
            for c0 in range(0, c, step):
                acc = acc + self._int(self.engine.conv_fwd(self._t(x[:, c0 : c0 + step]), self._t(w[:, c0 : c0 + step]), stride))
        return np.ascontiguousarray(_fit(acc, fixed.ACC_FWD_BITS, "conv_fwd", np.int32))

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        n, o = g.shape[:2]
        shape = (n, w.shape[1], *in_hw)
        step = _chunk_size(o, k * k, _amax(g), _amax(w))
        acc = 0
        with torch.no_grad(), self._exact():
            for o0 in range(0, o, step):
                acc = acc + self._int(self.engine.conv_bwd_data(self._t(g[:, o0 : o0 + step]), self._t(w[o0 : o0 + step]), stride, shape))
        return np.ascontiguousarray(_fit(acc, fixed.ACC_BWD_BITS, "conv_bwd_data", np.int64))

    def _weight_grad(self, x, g, k, stride) -> np.ndarray:
        n = x.shape[0]
        per_item = out_size(x.shape[2], k, stride) * out_size(x.shape[3], k, stride)
        step = _chunk_size(n, per_item, _amax(x), _amax(g))
        acc = 0
        with torch.no_grad(), self._exact():
            for n0 in range(0, n, step):
                acc = acc + self._int(self.engine.weight_grad(self._t(g[n0 : n0 + step]), self._t(x[n0 : n0 + step]), k, stride))
        return acc

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        return psg_kernel(self._weight_grad, x, g, k, stride, beta_q, mode)
