"""Where a quantised convolution's integer kernels run: torch (any device, float32 or float64) or a
numpy ``Fabric`` (``reference``, ``csim``, ``pynq``).

Both engines take and return integer-valued float tensors (the quantised operands, the integer
accumulators), so the PSG convolution above them is one piece of code whichever engine runs it. In
float64 the torch engine is exact (see ``e2train.fabric.torch_kernels``) and therefore gives the same
integers as every fabric backend; in float32 it is the fast path for training.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .. import fixed
from ..fabric import get_fabric
from ..fabric import torch_kernels as tk
from .quant import scale_pow2

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


@dataclass
class WeightGrad:
    """The weight-gradient kernel's answer: signs (mode psg) or G_full (mode full), and the count of
    predicted signs (a tensor or an int; 0 in mode full)."""

    value: torch.Tensor
    predicted: torch.Tensor | int


class TorchEngine:
    """The kernels as torch convolutions on the operands' device, in ``precision`` (None: as given).

    ``comm`` (a distributed run's world, ``dist.psg = exact``): the integer weight gradients are summed
    over the ranks where one process would have summed over the whole batch: G_msb after phase 1, before
    the threshold (which thus uses the global max|G_msb|), and G_full after phase 2, before the sign.
    """

    name = "torch"
    comm = None

    def __init__(self, precision: str | None = None, restrict: bool | None = None, msb: str = MSB_CONTRACT):
        self.restrict = restrict  # None: restrict phase 2 off CUDA (see backward)
        if msb not in MSB_ROUNDINGS:
            raise ValueError(f"msb must be one of {MSB_ROUNDINGS}, got {msb!r}")
        self.msb = msb
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.dtype = PRECISIONS.get(precision) if precision else None
        self.exact = self.dtype == torch.float64  # float64 kernels give the contract's integers

    def _in(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or self.dtype is None else t.to(self.dtype)

    def forward(self, xq: torch.Tensor, wq: torch.Tensor, stride: int, e: int) -> torch.Tensor:
        """conv(xq, wq) * 2**e. The power of two scales the small weight tensor instead of the output:
        every product and partial sum is scaled alike, so the result is the same, one pass cheaper."""
        with _no_tf32(xq):
            return tk.conv_fwd(self._in(xq), scale_pow2(self._in(wq), e), stride).to(xq.dtype)

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
        confident, _ = tk.psg_confident(g_msb, beta_q)
        gx, g_full = self._phase2(g, x, w, stride, k, xq.shape, need_data, ~confident)
        sign = torch.where(confident, torch.sign(g_msb), torch.sign(g_full) if g_full is not None else 0.0)
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
        return tk.conv_backward(g_msb_in, x_msb, None, stride, k, x_msb.shape, need_data=False, need_weight=True)[1]

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
        gx = tk.conv_backward(g, None, w, stride, k, in_shape, need_data=True, need_weight=False)[0] if need_data else None
        if rows.numel() == 0:
            return gx, None
        gs = g if rows.numel() == o else g.index_select(1, rows)
        xs = x if cols.numel() == c else x.index_select(1, cols)
        _, block = tk.conv_backward(gs, xs, None, stride, k, xs.shape, need_data=False, need_weight=True)
        block = self._sum(block, "psg_g_full")
        g_full = g.new_zeros(unsure.shape)
        g_full[rows.view(-1, 1), cols.view(1, -1)] = block
        return gx, g_full

    @staticmethod
    def _out(gx, like):
        return None if gx is None else gx.to(like.dtype)


class FabricEngine:
    """The kernels through a numpy ``Fabric``: int8/int16 operands out, int32/int64 accumulators back."""

    exact = True

    def __init__(self, backend: str, **options):
        self.fabric = get_fabric(backend, **options)
        self.name = backend

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
        if getattr(self, "_pool", None) is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabric-bwd-data")
        return self._pool

    def close(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.fabric.close()

    def __deepcopy__(self, memo):
        return self  # one fabric (a library handle, a device) serves every copy of the model (SWA)


_TORCH_ONLY = ("restrict",)


def resolve_backend(backend: str, precision: str | None = None, **options) -> str:
    """``auto`` (the default of PSG configs): the integer ``cpu`` engine where no CUDA device is present,
    its library builds and nothing asks for the torch engine (a ``restrict`` or ``msb = "floor"`` option,
    ``precision = "float32"``); else ``torch``. Any other name is returned as it is."""
    if backend != "auto":
        return backend
    torch_wanted = (any(k in options for k in _TORCH_ONLY) or options.get("msb", MSB_CONTRACT) != MSB_CONTRACT
                    or precision == "float32")
    if torch_wanted or torch.cuda.is_available():
        return "torch"
    from ..cpu.engine import available

    return "cpu" if available() else "torch"


def make_engine(backend: str = "torch", precision: str | None = None, **options):
    """``torch`` (options ``restrict``, ``msb``), ``cpu`` (option ``variant``), ``auto`` (see
    ``resolve_backend``) or any fabric backend name (options go to ``get_fabric``)."""
    backend = resolve_backend(backend, precision, **options)
    if backend == "cpu":  # the integer CPU engine (e2train.cpu): AVX2 or portable C++
        from ..cpu.engine import CpuEngine

        _fabric_like(backend, precision, options)
        return CpuEngine(**options)
    if backend == "torch":
        unknown = set(options) - {"restrict", "msb"}
        if unknown:
            raise ValueError(f"the torch engine takes only the options 'restrict' and 'msb', got {sorted(unknown)}")
        return TorchEngine(precision, **options)
    _fabric_like(backend, precision, options)
    return FabricEngine(backend, **options)


def _fabric_like(backend: str, precision, options: dict) -> None:
    """An integer engine: the contract's MSBs only, no float precision to choose (pops ``msb``)."""
    msb = options.pop("msb", MSB_CONTRACT)
    if msb != MSB_CONTRACT:
        raise ValueError(
            f"backend {backend!r} implements contract v{fixed.CONTRACT_VERSION}'s MSBs (msb = \"{MSB_CONTRACT}\") only; "
            f"msb = {msb!r} is a torch-engine ablation (--backend torch)"
        )
    if precision not in (None, "float64"):
        raise ValueError(f"backend {backend!r} computes in integers; precision {precision!r} does not apply")
