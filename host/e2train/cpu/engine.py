"""``CpuEngine``: the quantised convolution's kernels as integer code on the CPU (``model.conv_options.backend
= "cpu"``, ``--backend cpu``).

The tensor-level interface of ``e2train.psg.engines.TorchEngine`` (``forward``, ``backward``, ``exact``,
``name``, ``close``), plus ``quantize``: this engine takes the float activations, weights and output
gradients and quantises them itself in one pass each, into int8 / int16 tensors (the exponent is still
chosen by the layer's ``ExponentTracker``, whose policy and counters are unchanged). Its kernels then read
those integers directly; the operands that other engines take (integer-valued floats) are accepted too.
Results are the contract's integers, scaled by their power of two and rounded once into the network's
dtype: bit-identical to the ``reference``, ``csim`` and float64 torch engines.

Backward runs the contract's two phases as two library calls with the PSG choice between them in torch
(on [O,C,k,k] integers: cheap), so that a distributed run (``comm``, ``dist.psg = exact``) can sum G_msb
over the ranks before the threshold and G_full before the sign, as the torch engine does. Phase 1 leaves
out the samples whose x_msb or g_msb is all zero; phase 2 computes G_full only for the register tiles
(a few output x input channel-taps) that hold an unconfident weight.
"""

from __future__ import annotations

import torch

from .. import fixed
from ..fabric.psg_rule import psg_confident, psg_sign
from .library import load


class CpuEngine:
    name = "cpu"
    exact = True  # the contract's integers
    comm = None

    def __init__(self, variant: str | None = None):
        """``variant``: ``native`` (AVX2 where the CPU has it) or ``portable`` (plain C++); default from
        ``E2TRAIN_CPU_SIMD``, else native."""
        self.lib = load(variant)

    @property
    def simd(self) -> str:
        return self.lib.simd

    def quantize(self, t: torch.Tensor, bits: int, e: int) -> tuple[torch.Tensor, int]:
        """``(q, saturated)``: clamp(floor(t / 2**e + 1/2)) as int8 (8 bits) or int16 (16 bits)."""
        return self.lib.quantize(t, bits, e)

    @staticmethod
    def _dtype(like: torch.Tensor, dtype):
        if dtype is not None:
            return dtype
        return like.dtype if like.is_floating_point() else torch.get_default_dtype()

    def forward(self, xq, wq, stride: int, e: int, dtype=None) -> torch.Tensor:
        """conv(xq, wq) * 2**e in ``dtype`` (default: xq's if it is floating, else torch's default)."""
        return self.lib.conv_fwd(xq, wq, stride, e, self._dtype(xq, dtype))

    def backward(self, gq, xq, wq, stride: int, need_data: bool, mode: str, beta_q: int, e_data: int = 0, dtype=None):
        """-> (g_x * 2**e_data or None, WeightGrad): signs in mode ``psg``, G_full in mode ``full``."""
        from ..psg.engines import WeightGrad

        dtype = self._dtype(gq, dtype)
        k = wq.shape[-1]
        gq = self.lib_operand(gq, torch.int16)
        xq = self.lib_operand(xq, torch.int8)
        gx = self.lib.conv_bwd_data(gq, wq, stride, tuple(xq.shape[2:]), e_data, dtype) if need_data else None
        if mode == "full":
            g_full = self._sum(self.lib.conv_bwd_weight(xq, gq, k, stride, msb=False), "psg_g_full")
            return gx, WeightGrad(g_full.to(torch.float64).to(dtype), 0)
        # |G_msb| <= 8 * 512 per product, samples * H' * W' products per weight (the contract's int32 bound)
        bound = (1 << (fixed.X_MSB_BITS + fixed.G_MSB_BITS - 2)) * gq.shape[2] * gq.shape[3] * getattr(self.comm, "batch", 0)
        g_msb = self._sum(self.lib.conv_bwd_weight(xq, gq, k, stride, msb=True), "psg_g_msb", bound)
        confident, top = psg_confident(g_msb, beta_q)  # exact: int64
        if int(top) > fixed.qmax(fixed.ACC_MSB_BITS):
            raise OverflowError("conv_bwd_weight (msb): G_msb exceeds the contract's 32-bit accumulator")
        g_full = None
        if not bool(confident.all()):
            g_full = self._sum(self.lib.conv_bwd_weight(xq, gq, k, stride, msb=False, unsure=~confident), "psg_g_full")
        return gx, WeightGrad(psg_sign(confident, g_msb, g_full).to(dtype), int(confident.sum()))

    @staticmethod
    def lib_operand(t: torch.Tensor, dtype) -> torch.Tensor:
        return t if t.dtype == dtype else t.to(dtype)

    def _sum(self, t, kind, bound=None):
        return t if self.comm is None else self.comm.sum_exact(t, kind, bound)

    def close(self) -> None:
        pass

    def __deepcopy__(self, memo):
        return self  # one library serves every copy of the model (SWA)


def available() -> bool:
    """Whether the library builds and loads here (g++ with OpenMP on PATH)."""
    from ..fabric import BackendUnavailable

    try:
        load()
    except BackendUnavailable:
        return False
    return True
