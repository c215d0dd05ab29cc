"""PSG (predictive sign gradient descent) and the low-precision baselines of E2-Train.

* ``make_conv_factory(**conv_options)``: the quantised convolution (``model.conv =
  "e2train.psg:make_conv_factory"``), mode ``psg`` or ``fixed8``, running on ``backend`` auto (the
  integer cpu engine on a CPU machine, torch with CUDA), cpu, torch or any fabric (reference, csim, pynq).
* ``optimizer_factory(model, cfg)``: SGD / sign SGD for the conv weights, SWA, the bit-width report
  (``optim.name = "e2train.psg:optimizer_factory"``).

Run by run (configs/table2_*.toml): fp32 SGD = plain convs + method sgd; 8-bit fixed point (Banner
et al.) = fixed8 convs + method sgd; SignSGD = plain convs + method sign; PSG = psg convs + method sign.
"""

from __future__ import annotations

from .conv import MODES, QuantConv2d
from .engines import make_engine
from .optim import LowPrecisionSGD, optimizer_factory
from .quant import EXPONENT_POLICIES



def make_conv_factory(mode: str = "psg", beta: float = 0.05, grad_bits: int = 16, exponent: str = "max",
                      backend: str = "auto", precision: str | None = None, **backend_options):
    """-> ``factory(in_ch, out_ch, k, stride, name)`` building ``QuantConv2d`` layers that share one engine.

    ``backend``: ``auto`` (the default: the integer cpu engine on a machine without CUDA where its library
    builds, faster per step than torch there, else torch; float gradients, ``grad_bits = 0``, and the
    torch-only options take torch), ``cpu`` (the integer CPU engine), ``torch`` (``precision`` float32 /
    float64, default: the network's dtype; ``restrict``) or a fabric backend name whose options (e.g. ``device = "sim"`` for pynq) pass through.
    ``precision = "float64"`` makes the torch backend give the contract's integers, i.e. train
    bit-identically to the fabric backends.
    """
    from ..fabric import BackendUnavailable
    from ..training.config import ConfigError

    if mode not in MODES:
        raise ConfigError(f"model.conv_options.mode must be one of {MODES}, got {mode!r}")
    if exponent not in EXPONENT_POLICIES:
        raise ConfigError(f"model.conv_options.exponent must be one of {EXPONENT_POLICIES}, got {exponent!r}")
    if backend == "auto" and grad_bits == 0:
        backend = "torch"  # float g_y: only the torch engine computes that
    try:
        engine = make_engine(backend, precision, **backend_options)
    except (ValueError, TypeError, BackendUnavailable) as exc:
        raise ConfigError(f"model.conv_options (backend {backend!r}): {exc}") from None

    def factory(in_ch: int, out_ch: int, k: int, stride: int, name: str = ""):
        try:
            return QuantConv2d(in_ch, out_ch, k, stride, name, mode=mode, beta=beta, grad_bits=grad_bits,
                               engine=engine, exponent=exponent)
        except ValueError as exc:
            raise ConfigError(f"model.conv_options, layer {name!r}: {exc}") from None

    factory.engine = engine
    return factory


__all__ = ["LowPrecisionSGD", "QuantConv2d", "make_conv_factory", "optimizer_factory"]
