"""The fabric engine: the engine seam (``fabric.engine``) onto a numpy ``Fabric`` (reference, csim, pynq).

Tensors go out as int8/int16 numpy arrays, int32/int64 accumulators come back; always exact.
"""

from __future__ import annotations

import numpy as np
import torch

from . import get_fabric
from .engine import WeightGrad
from .torch_kernels import scale_pow2


class FabricEngine:
    """The kernels through a numpy ``Fabric``: int8/int16 operands out, int32/int64 accumulators back."""

    exact = True

    def __init__(self, backend: str, **options):
        self.fabric = get_fabric(backend, **options)
        self.name = backend
        self._pool = None

    @staticmethod
    def _np(t: torch.Tensor, dtype) -> np.ndarray:
        return t.detach().to("cpu", torch.int64).numpy().astype(dtype)

    @staticmethod
    def _back(a: np.ndarray, like: torch.Tensor, e: int = 0) -> torch.Tensor:
        # int32 / int64 accumulators: exact in float64, scaled exactly, then rounded once to like.dtype
        return scale_pow2(torch.from_numpy(a.astype(np.float64)), e).to(device=like.device, dtype=like.dtype)

    def forward(self, xq, wq, stride, e):
        return self._back(self.fabric.conv_fwd(self._np(xq, np.int8), self._np(wq, np.int8), stride), xq, e)

    def backward(self, gq, xq, wq, stride, need_data, mode, beta_q, e_data=0):
        g = self._np(gq, np.int16)
        w = self._np(wq, np.int8)
        gx = pending = None
        if need_data and getattr(self.fabric, "concurrent", False):
            # issue-7: a fabric whose kernels are separate cores (pynq) computes g_x on one while the
            # weight gradient runs on the other; the host stages one kernel's operands meanwhile.
            pending = self._worker().submit(self.fabric.conv_bwd_data, g, w, stride, tuple(xq.shape[2:]))
        elif need_data:
            gx = self._back(self.fabric.conv_bwd_data(g, w, stride, tuple(xq.shape[2:])), xq, e_data)
        try:
            r = self.fabric.conv_bwd_weight_psg(self._np(xq, np.int8), g, w.shape[-1], stride, beta_q, mode=mode)
        finally:
            if pending is not None:
                gx = self._back(pending.result(), xq, e_data)
        if mode == "full":
            return gx, WeightGrad(self._back(r.g_full, xq), 0)
        return gx, WeightGrad(self._back(r.sign, xq), int(r.predicted))

    def _worker(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabric-bwd-data")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.fabric.close()

    def __deepcopy__(self, memo):
        return self  # one fabric (a library handle, a device) serves every copy of the model (SWA)
