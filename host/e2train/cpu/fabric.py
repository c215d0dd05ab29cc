"""The cpu engine's library behind the numpy ``Fabric`` interface (``get_fabric("cpu")``), so that
``e2train fabric selftest --backend cpu`` and the fabric tests check it against the reference like every
backend. Training does not go through here: ``CpuEngine`` calls the library on torch tensors directly."""

from __future__ import annotations

import numpy as np
import torch

from .. import fixed
from ..contract import ConvShape
from ..fabric.base import Fabric, PsgResult
from ..fabric.bounds import accumulator_bounds
from ..fabric.psg_rule import psg_confident, psg_sign
from ..fabric.reference import _fit
from .library import load


class CpuFabric(Fabric):
    name = "cpu"

    def __init__(self, variant: str | None = None):
        self.lib = load(variant)

    def _conv_fwd(self, x, w, k, stride):
        n, c, h, wd = x.shape
        # int32 sums wrap: refuse a shape whose worst case does not fit (as csim does)
        worst, limit = accumulator_bounds(ConvShape("conv_fwd", n, c, w.shape[0], h, wd, k, stride))["forward"]
        if worst > limit:
            raise OverflowError(f"cpu conv_fwd: the worst case of this shape ({worst}) exceeds its accumulator ({limit})")
        return self.lib.conv_fwd(torch.from_numpy(x), torch.from_numpy(w), stride).numpy()

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        gx = self.lib.conv_bwd_data(torch.from_numpy(g), torch.from_numpy(w), stride, in_hw).numpy()
        return _fit(gx, fixed.ACC_BWD_BITS, "conv_bwd_data", np.int64)

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        if mode == "full":
            g_full = _fit(self.lib.conv_bwd_weight(tx, tg, k, stride, msb=False).numpy(), fixed.ACC_BWD_BITS,
                          "conv_bwd_weight (full)", np.int64)
            return PsgResult(sign=np.sign(g_full).astype(np.int8), predicted=0, mode="full", g_full=g_full)
        g_msb = _fit(self.lib.conv_bwd_weight(tx, tg, k, stride, msb=True).numpy(), fixed.ACC_MSB_BITS,
                     "conv_bwd_weight (msb)", np.int32)
        confident, top = psg_confident(g_msb, beta_q)
        g_full = None
        if not confident.all():
            g_full = self.lib.conv_bwd_weight(tx, tg, k, stride, msb=False, unsure=torch.from_numpy(~confident)).numpy()
        return PsgResult(sign=psg_sign(confident, g_msb, g_full).astype(np.int8), predicted=int(np.count_nonzero(confident)),
                         mode="psg", g_msb=g_msb, max_abs_msb=int(top))
