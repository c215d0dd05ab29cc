"""The torch engine: the contract's kernels as torch convolutions, on the operands' device.

In the network's dtype (float32) it is the fast training path; in float64 it gives the contract's
integers (see ``torch_kernels``) and is then what the ``torch`` fabric backend adapts to numpy.
"""

from __future__ import annotations

import contextlib

import torch

from .. import fixed
from . import torch_kernels as tk
from .engine import WeightGrad
from .psg_rule import psg_confident, psg_sign
from .torch_kernels import scale_pow2

# phase 2 runs on a channel block only while the block is at most this share of all weights; beyond,
# one combined backward call (g_x and G_full together) is cheaper than two.
_RESTRICT_MAX = 0.6
# phase 1 leaves out the samples whose x_msb is all zero when at most this share of the batch remains
# (above it copying the rest costs about what the smaller convolution saves)
_KEEP_MAX = 0.9


def _no_tf32(t: torch.Tensor):
    """TF32 (cuDNN's default on Ampere and later) keeps 10 mantissa bits: int16 gradients would round."""
    if t.device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
    return contextlib.nullcontext()


# "nearest": the contract's (v2) predictor, min((x + 8) >> 4, 7) and min((g + 32) >> 6, 511), the
# default everywhere. "floor": contract v1's x >> 4, g >> 6, an ablation of the torch engine only (it
# reproduces the finding that made v2: a predictor biased toward -1; docs/psg.md, "Predictor quality").
# "unsigned_x": a torch-only experiment, not the contract: an x with no negative value (after a ReLU)
# takes 4 unsigned bits, min((x + 4) >> 3, 15), twice v2's resolution for the same 4 x 10 product
# width; g_y and signed x as v2 (docs/psg.md, "Predictor resolution").
MSB_ROUNDINGS = ("nearest", "floor", "unsigned_x")
MSB_CONTRACT = "nearest"

PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


class TorchEngine:
    """The kernels as torch convolutions on the operands' device, in ``precision`` (None: as given).

    ``comm`` (a distributed run's world, ``dist.psg = exact``): the integer weight gradients are summed
    over the ranks where one process would have summed over the whole batch: G_msb after phase 1, before
    the threshold (which thus uses the global max|G_msb|), and G_full after phase 2, before the sign.
    """

    name = "torch"
    comm = None

    def __init__(self, precision: str | None = None, restrict: bool | None = None, msb: str = MSB_CONTRACT):
        if restrict not in (None, True, False):
            raise ValueError(f"restrict must be true or false, got {restrict!r}")
        self.restrict = restrict  # None: restrict phase 2 off CUDA (see backward)
        if msb not in MSB_ROUNDINGS:
            raise ValueError(f"msb must be one of {MSB_ROUNDINGS}, got {msb!r}")
        self.msb = msb
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.dtype = PRECISIONS.get(precision) if precision else None
        self.exact = self.dtype == torch.float64  # float64 kernels give the contract's integers

    def close(self) -> None:
        """Nothing to release: torch owns the memory."""

    def __deepcopy__(self, memo):
        return self  # copies of a model (SWA's average) share the run's one engine

    def _in(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or self.dtype is None else t.to(self.dtype)

    # ---- the three kernels in this engine's dtype: integers in, accumulators out, no scaling. The
    # caller sets cuDNN's mode (the fabric adapter turns cuDNN off, training turns TF32 off).
    def conv_fwd(self, xq, wq, stride: int) -> torch.Tensor:
        return tk.conv_fwd(self._in(xq), self._in(wq), stride)

    def conv_bwd_data(self, gq, wq, stride: int, in_shape) -> torch.Tensor:
        return tk.conv_backward(self._in(gq), None, self._in(wq), stride, wq.shape[-1], in_shape, need_weight=False)[0]

    def weight_grad(self, gq, xq, k: int, stride: int) -> torch.Tensor:
        return tk.conv_backward(self._in(gq), self._in(xq), None, stride, k, xq.shape, need_data=False)[1]

    # ---- the engine protocol (fabric.engine.Engine) ------------------------------------------------
    def forward(self, xq: torch.Tensor, wq: torch.Tensor, stride: int, e: int) -> torch.Tensor:
        """conv(xq, wq) * 2**e. The power of two scales the small weight tensor instead of the output:
        every product and partial sum is scaled alike, so the result is the same, one pass cheaper."""
        with _no_tf32(xq):
            return self.conv_fwd(xq, scale_pow2(self._in(wq), e), stride).to(xq.dtype)

    def backward(self, gq, xq, wq, stride: int, need_data: bool, mode: str, beta_q: int, e_data: int = 0):
        """-> (g_x * 2**e_data or None, WeightGrad).

        Mode ``full``: g_x and G_full from one backward call. Mode ``psg`` runs the contract's two
        phases: G_msb for every weight first; then G_full only where the prediction is not confident.
        With ``restrict`` (the default off CUDA) phase 1 leaves out the samples whose x_msb is all
        zero, and phase 2 is cut down to the block of output x input channels that holds every
        unconfident weight, and skipped when there is none; both cost a host synchronisation per
        layer, which is why CUDA computes G_msb and G_full whole.
        """
        with _no_tf32(xq):
            return self._backward(gq, xq, wq, stride, need_data, mode, beta_q, e_data)

    def _backward(self, gq, xq, wq, stride, need_data, mode, beta_q, e_data):
        k = wq.shape[-1]
        g, x = self._in(gq), self._in(xq)
        w = scale_pow2(self._in(wq), e_data)
        if mode == "full":
            gx, g_full = tk.conv_backward(g, x, w, stride, k, xq.shape, need_data=need_data, need_weight=True)
            return self._out(gx, xq), WeightGrad(self._sum(g_full, "psg_g_full").to(xq.dtype), 0)
        # |G_msb| <= 8 * 512 per product, samples * H' * W' products per weight (the contract's int32 bound)
        bound = (1 << (fixed.X_MSB_BITS + fixed.G_MSB_BITS - 2)) * g.shape[2] * g.shape[3] * getattr(self.comm, "batch", 0)
        g_msb = self._sum(self._phase1(g, x, stride, k, wq.shape), "psg_g_msb", bound)
        confident, _ = psg_confident(g_msb, beta_q)
        gx, g_full = self._phase2(g, x, w, stride, k, xq.shape, need_data, ~confident)
        sign = psg_sign(confident, g_msb, g_full)
        return self._out(gx, xq), WeightGrad(sign.to(xq.dtype), confident.sum())

    def _phase1(self, g, x, stride, k, w_shape):
        """G_msb, the weight gradient of the MSB operands. A sample whose x_msb is all zero adds
        nothing to it, so (off CUDA, where the count costs no synchronisation) such samples are left
        out: exact, and most of the batch in the later stages, where few activations reach 1/8 of
        the tensor's max."""
        n = x.shape[0]
        keep = None
        # the experiment's rule is chosen per tensor: unsigned only where no value is negative
        xbits = fixed.X_MSB_BITS + (self.msb == "unsigned_x" and bool(x.min() >= 0))
        if self._restricting(x) and n:
            # x_msb is monotone in x: a sample is all zero iff the MSBs of its min and max are
            flat = x.flatten(1)
            lo = self._msb(flat.amin(1), fixed.X_BITS, xbits)
            hi = self._msb(flat.amax(1), fixed.X_BITS, xbits)
            keep = ((lo != 0) | (hi != 0)).nonzero().squeeze(1)
            if keep.numel() == 0:
                return x.new_zeros(w_shape)
            if keep.numel() > _KEEP_MAX * n:
                keep = None
        if keep is None:
            x_msb = self._msb(x, fixed.X_BITS, xbits)
            g_msb_in = self._msb(g, fixed.G_BITS, fixed.G_MSB_BITS)
        else:  # the copies are fresh: shift them in place
            x_msb = self._msb(x.index_select(0, keep), fixed.X_BITS, xbits, inplace=True)
            g_msb_in = self._msb(g.index_select(0, keep), fixed.G_BITS, fixed.G_MSB_BITS, inplace=True)
        return self.weight_grad(g_msb_in, x_msb, k, stride)

    def _sum(self, t, kind, bound=None):
        return t if self.comm is None else self.comm.sum_exact(t, kind, bound)

    def _msb(self, q, from_bits, to_bits, inplace=False):
        if self.msb == "floor":  # the v1 ablation, not the contract
            return tk.msb_float_floor(q, from_bits, to_bits, inplace)
        return tk.msb_float(q, from_bits, to_bits, inplace)  # v2; unsigned_x's 5-bit call: min((x + 4) >> 3, 15)

    def _restricting(self, t) -> bool:
        return self.restrict if self.restrict is not None else t.device.type != "cuda"

    def _phase2(self, g, x, w, stride, k, in_shape, need_data, unsure):
        """g_x, and G_full wherever ``unsure`` needs it (zeros elsewhere; None when nowhere). With ``comm``,
        G_full is summed over the ranks: the channel block that holds the unsure weights (the same block on
        every rank, since ``unsure`` comes from the summed G_msb), or the whole tensor."""
        if not self._restricting(g):
            gx, g_full = tk.conv_backward(g, x, w, stride, k, in_shape, need_data=need_data, need_weight=True)
            return gx, self._sum(g_full, "psg_g_full")
        pairs = unsure.flatten(2).any(2)  # [out, in]: the kernels holding an unsure weight
        rows = pairs.any(1).nonzero().squeeze(1)  # output channels with an unsure weight
        cols = pairs.any(0).nonzero().squeeze(1)  # input channels
        o, c = unsure.shape[:2]
        if rows.numel() * cols.numel() > _RESTRICT_MAX * o * c:
            gx, g_full = tk.conv_backward(g, x, w, stride, k, in_shape, need_data=need_data, need_weight=True)
            return gx, self._sum(g_full, "psg_g_full")
        gx = self.conv_bwd_data(g, w, stride, in_shape) if need_data else None
        if rows.numel() == 0:
            return gx, None
        gs = g if rows.numel() == o else g.index_select(1, rows)
        xs = x if cols.numel() == c else x.index_select(1, cols)
        block = self._sum(self.weight_grad(gs, xs, k, stride), "psg_g_full")
        g_full = g.new_zeros(unsure.shape)
        g_full[rows.view(-1, 1), cols.view(1, -1)] = block
        return gx, g_full

    @staticmethod
    def _out(gx, like):
        return None if gx is None else gx.to(like.dtype)
