"""The quantised convolution of PSG and of the 8-bit fixed-point baseline: one autograd function.

Forward: x and w quantised to int8 grids (one power-of-two exponent per tensor, e2train.fixed), the
integer convolution, the accumulator scaled by 2**(e_x + e_w).

Backward: g_y quantised to int16 (mode ``psg``, and ``fixed8`` with ``grad_bits=16``); then one
backward call gives g_x (from int16 g_y and int8 w) and G_full (from int8 x and int16 g_y), and in
mode ``psg`` one more weight-gradient call gives G_msb from the operands' rounded MSBs (contract v2). The weight's
gradient is then

* ``psg``: the sign per weight, predicted from G_msb where |G_msb| >= beta * max|G_msb|, else sgn(G_full);
* ``fixed8``: G_full * 2**(e_x + e_g), the full-precision weight gradient of Banner et al. (with
  ``grad_bits=0`` g_y stays float and the gradients are those of the quantised forward).

g_x passes straight through the quantisation of x (nothing saturates under the contract's exponent
choice). No forward convolution runs twice. Each layer counts its predicted signs, saturations and
multiply-accumulates by bit width while it trains.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import fixed
from ..fabric import torch_kernels as tk
from .engines import make_engine
from .quant import ExponentTracker, scale_pow2

MODES = ("psg", "fixed8")
GRAD_BITS = (0, 16)

# MAC bit widths (a x b) of each kernel; "32x32" is float.
FWD_BITS = (fixed.X_BITS, fixed.W_BITS)
DATA_BITS = (fixed.G_BITS, fixed.W_BITS)
MSB_BITS = (fixed.X_MSB_BITS, fixed.G_MSB_BITS)
FULL_BITS = (fixed.X_BITS, fixed.G_BITS)


def width_key(bits: tuple[int, int]) -> str:
    return f"{bits[0]}x{bits[1]}"


def _quantizer(engine):
    """An engine that quantises its operands itself (the cpu engine: one pass from float to int8 / int16)
    has ``quantize``; the others take the quantised values as integer-valued floats from the trackers."""
    return getattr(engine, "quantize", None)


def _out_dtype(quantizer, like: torch.Tensor) -> dict:
    # integer operands do not say the network's dtype: such an engine is told it
    return {"dtype": like.dtype} if quantizer is not None else {}


class QuantConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, layer: "QuantConv2d", counting: bool):
        quantizer = _quantizer(layer.engine)
        xq, e_x = layer.x_exp(x, count=counting, quantizer=quantizer)
        wq, e_w = layer.w_exp(w, count=counting, quantizer=quantizer)
        y = layer.engine.forward(xq, wq, layer.stride, e_x + e_w, **_out_dtype(quantizer, x))
        ctx.save_for_backward(xq, wq)
        ctx.layer, ctx.e_x, ctx.e_w = layer, e_x, e_w
        if counting:
            layer.count_macs("forward", FWD_BITS, y.numel() * layer.in_ch * layer.k * layer.k)
        return y

    @staticmethod
    def backward(ctx, g_y):
        layer: QuantConv2d = ctx.layer
        xq, wq = ctx.saved_tensors
        need_data = ctx.needs_input_grad[0]
        macs = g_y.numel() * layer.in_ch * layer.k * layer.k  # as many as the forward
        if layer.mode == "fixed8" and layer.grad_bits == 0:
            # float g_y: the gradients of the quantised forward, computed by the torch kernels
            gx, gw = tk.conv_backward(g_y, xq, scale_pow2(wq, ctx.e_w), layer.stride, layer.k, xq.shape, need_data=need_data)
            g_x = gx if need_data else None
            g_w = scale_pow2(gw, ctx.e_x)
            if need_data:
                layer.count_macs("backward_data", (32, fixed.W_BITS), macs)
            layer.count_macs("backward_weight", (fixed.X_BITS, 32), macs)
            return g_x, g_w, None, None
        quantizer = _quantizer(layer.engine)
        gq, e_g = layer.g_exp(g_y, quantizer=quantizer)
        mode = "psg" if layer.mode == "psg" else "full"
        g_x, wg = layer.engine.backward(gq, xq, wq, layer.stride, need_data, mode, layer.beta_q, e_g + ctx.e_w,
                                        **_out_dtype(quantizer, g_y))
        if need_data:
            layer.count_macs("backward_data", DATA_BITS, macs)
        if mode == "full":
            layer.count_macs("backward_weight", FULL_BITS, macs)
            return g_x, scale_pow2(wg.value, ctx.e_x + e_g), None, None
        # PSG: the predictor runs for every weight, the full product only for the rest.
        per_weight = macs // wq.numel()
        layer.record_psg(wg.predicted, wq.numel(), per_weight)
        return g_x, wg.value, None, None


class QuantConv2d(nn.Module):
    """A bias-free conv with padding (k - 1) // 2 whose integer kernels run on an engine (torch or a fabric)."""

    def __init__(self, in_ch, out_ch, k, stride, name="", mode="psg", beta=0.05, grad_bits=16, engine=None,
                 exponent="max"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if grad_bits not in GRAD_BITS:
            raise ValueError(f"grad_bits must be 16 (int16 g_y) or 0 (float g_y), got {grad_bits!r}")
        if mode == "psg" and grad_bits != 16:
            raise ValueError("PSG needs int16 output gradients (grad_bits = 16)")
        if k not in (1, 3) or stride not in (1, 2):
            raise ValueError(f"the fabric contract has k in (1, 3) and stride in (1, 2), got k={k}, stride={stride}")
        self.in_ch, self.out_ch, self.k, self.stride, self.name = in_ch, out_ch, k, stride, name
        self.mode, self.grad_bits = mode, grad_bits
        self.beta = float(beta)
        self.beta_q = fixed.beta_to_q16(self.beta)
        self.engine = engine if engine is not None else make_engine("torch")
        if grad_bits == 0 and not hasattr(self.engine, "dtype"):
            raise ValueError(f"backend {self.engine.name!r} runs int16 gradients only; set grad_bits = 16")
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        # exact rounding where the kernels are exact (float64, fabrics); see quant.round_half_up_scaled
        exact = getattr(self.engine, "exact", True)
        self.x_exp = ExponentTracker(fixed.X_BITS, exponent, exact)
        self.w_exp = ExponentTracker(fixed.W_BITS, "max", exact)  # weights are known before the step
        self.g_exp = ExponentTracker(fixed.G_BITS, exponent, exact)
        self.reset_stats()

    # the update direction of this weight is a sign (for the optimizer to give it its own group)
    @property
    def sign_gradient(self) -> bool:
        return self.mode == "psg"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # statistics count training steps only (grad mode is off inside Function.forward: decide here)
        return QuantConvFunction.apply(x, self.weight, self, self.training and torch.is_grad_enabled())

    # ---- statistics ---------------------------------------------------------------------------
    def reset_stats(self) -> None:
        self.predicted = 0  # int or a 0-d tensor (kept on the device: no synchronisation per step)
        self.weights_seen = 0
        self.psg_steps = 0
        self.last_predicted_ratio: float | None = None
        self._last_predicted = None
        self._fallback_macs = 0
        self.macs: dict[str, dict[str, int]] = {}
        for t in (self.x_exp, self.g_exp):
            t.saturated = t.total = 0

    def count_macs(self, phase: str, bits: tuple[int, int], n: int) -> None:
        row = self.macs.setdefault(phase, {})
        key = width_key(bits)
        row[key] = row.get(key, 0) + int(n)

    def record_psg(self, predicted, total: int, macs_per_weight: int) -> None:
        self.predicted = self.predicted + predicted
        self.weights_seen += total
        self.psg_steps += 1
        self._last_predicted = (predicted, total)
        self.count_macs("backward_weight", MSB_BITS, total * macs_per_weight)
        # the full product for the weights that fell back; kept as a tensor until read (no sync)
        self._fallback_macs = self._fallback_macs + (total - predicted) * macs_per_weight

    def bit_macs(self) -> dict[str, dict[str, int]]:
        """phase -> {"AxB": MACs}: what this layer multiplied, by operand widths, since the last reset."""
        out = {k: dict(v) for k, v in self.macs.items()}
        fallback = int(self._fallback_macs)
        if self.mode == "psg" and self.psg_steps:
            row = out.setdefault("backward_weight", {})
            row[width_key(FULL_BITS)] = row.get(width_key(FULL_BITS), 0) + fallback
        return out

    def layer_stats(self) -> dict:
        out = {
            "mode": self.mode,
            "x_saturated": self.x_exp.saturated,
            "x_total": self.x_exp.total,
            "g_saturated": self.g_exp.saturated,
            "g_total": self.g_exp.total,
            "e_x": self.x_exp.last_exponent,
            "e_w": self.w_exp.last_exponent,
            "e_g": self.g_exp.last_exponent,
        }
        if self.mode == "psg":
            pred = int(self.predicted)
            out.update(psg_predicted=pred, psg_weights=self.weights_seen,
                       psg_predicted_ratio=pred / self.weights_seen if self.weights_seen else None)
            if self._last_predicted is not None:
                p, t = self._last_predicted
                out["psg_last_ratio"] = int(p) / t
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, k={self.k}, stride={self.stride}, mode={self.mode}, "
                f"beta={self.beta}, grad_bits={self.grad_bits}, engine={self.engine.name}")

    # counters travel with checkpoints so that a resumed run reports the same totals
    def get_extra_state(self):
        return {
            "predicted": int(self.predicted), "weights_seen": self.weights_seen, "psg_steps": self.psg_steps,
            "macs": {k: dict(v) for k, v in self.macs.items()}, "fallback_macs": int(self._fallback_macs),
            "x_exp": self.x_exp.state_dict(), "w_exp": self.w_exp.state_dict(), "g_exp": self.g_exp.state_dict(),
        }

    @staticmethod
    def merge_extra_states(states: list[dict]) -> dict:
        """The counters of a distributed run's copies of this layer (one state per rank), summed: predicted
        signs and weights seen (in exact mode every rank decides every weight alike, so the ratio is the
        global one), MACs by width, saturations. Steps, scales and last exponents are the first rank's."""
        first = states[0]
        macs: dict[str, dict[str, int]] = {}
        for s in states:
            for ph, row in s["macs"].items():
                acc = macs.setdefault(ph, {})
                for key, n in row.items():
                    acc[key] = acc.get(key, 0) + n
        merged = dict(first, macs=macs)
        for key in ("predicted", "weights_seen", "fallback_macs"):
            merged[key] = sum(s[key] for s in states)
        for t in ("x_exp", "w_exp", "g_exp"):
            merged[t] = dict(first[t], saturated=sum(s[t]["saturated"] for s in states),
                             total=sum(s[t]["total"] for s in states))
        return merged

    def set_extra_state(self, state) -> None:
        self.predicted, self.weights_seen, self.psg_steps = state["predicted"], state["weights_seen"], state["psg_steps"]
        self.macs = {k: dict(v) for k, v in state["macs"].items()}
        self._fallback_macs = state["fallback_macs"]
        self.x_exp.load_state_dict(state["x_exp"])
        self.w_exp.load_state_dict(state["w_exp"])
        self.g_exp.load_state_dict(state["g_exp"])
