"""PSG (predictive sign gradient descent) and the low-precision baselines of E2-Train.

* ``make_conv_factory(**conv_options)``: the quantised convolution (``model.conv =
  "e2train.psg:make_conv_factory"``), mode ``psg`` or ``fixed8``, running on ``backend`` auto (the
  integer cpu engine on a CPU machine, torch with CUDA), cpu, torch or any fabric (reference, csim, pynq).
* ``optimizer_factory(model, cfg)``: SGD / sign SGD for the conv weights (``optim.name =
  "e2train.psg:optimizer_factory"``); its options also switch on SWA and the bit-width report, which
  ``training.setup`` builds as trainer callbacks.

Run by run (configs/table2_*.toml): fp32 SGD = plain convs + method sgd; 8-bit fixed point (Banner
et al.) = fixed8 convs + method sgd; SignSGD = plain convs + method sign; PSG = psg convs + method sign.
"""

from __future__ import annotations

from ..errors import ConfigError
from .conv import MODES, QuantConv2d
from .engines import make_engine
from .optim import LowPrecisionSGD, optimizer_factory
from .quant import EXPONENT_POLICIES

# model.conv_options that shape the layers; every other key chooses the engine (backend, precision, ...)
LAYER_OPTIONS = ("mode", "beta", "grad_bits", "exponent")


def engine_for(options: dict):
    """The engine that ``model.conv_options`` choose: ``backend`` (``auto``, the default: the integer cpu
    engine on a machine without CUDA where its library builds, faster per step than torch there, else
    torch; ``cpu``; ``torch``; or a fabric backend), ``precision`` and the backend's own options. Built once per run by ``training.setup``, which closes it."""
    from ..fabric import BackendUnavailable
    from ..board.errors import BoardError

    spec = {k: v for k, v in options.items() if k not in LAYER_OPTIONS}
    backend = spec.pop("backend", "auto")
    if backend == "auto" and options.get("grad_bits", 16) == 0:
        backend = "torch"  # float g_y: only the torch engine computes that
    try:
        return make_engine(backend, spec.pop("precision", None), **spec)
    except (ValueError, TypeError, BackendUnavailable, BoardError) as exc:
        raise ConfigError(f"model.conv_options (backend {backend!r}): {exc}") from None


def make_conv_factory(mode: str = "psg", beta: float = 0.05, grad_bits: int = 16, exponent: str = "max",
                      engine=None, **engine_options):
    """-> ``factory(in_ch, out_ch, k, stride, name)`` building ``QuantConv2d`` layers that share one engine.

    ``engine``: the run's engine (``training.setup`` builds it with ``engine_for`` and closes it). Without
    one, the factory builds its own from ``engine_options`` (see ``engine_for``: ``backend`` auto, the
    default, cpu, torch with ``precision`` float32 / float64, default the network's dtype, ``restrict``,
    ``msb``; or a fabric backend name whose options, e.g. ``device = "sim"`` for pynq, pass through);
    whoever asked for that factory closes ``factory.engine``. ``precision = "float64"`` makes the torch
    backend give the contract's integers, i.e. train bit-identically to the fabric backends.
    """
    if mode not in MODES:
        raise ConfigError(f"model.conv_options.mode must be one of {MODES}, got {mode!r}")
    if exponent not in EXPONENT_POLICIES:
        raise ConfigError(f"model.conv_options.exponent must be one of {EXPONENT_POLICIES}, got {exponent!r}")
    if engine is None:
        engine = engine_for({**engine_options, "grad_bits": grad_bits})  # float g_y steers auto to torch

    def factory(in_ch: int, out_ch: int, k: int, stride: int, name: str = ""):
        try:
            return QuantConv2d(in_ch, out_ch, k, stride, name, mode=mode, beta=beta, grad_bits=grad_bits,
                               engine=engine, exponent=exponent)
        except ValueError as exc:
            raise ConfigError(f"model.conv_options, layer {name!r}: {exc}") from None

    factory.engine = engine
    return factory


make_conv_factory.engine_for = engine_for  # the hook training.setup looks for: these convs run on an engine

__all__ = ["LAYER_OPTIONS", "LowPrecisionSGD", "QuantConv2d", "engine_for", "make_conv_factory", "optimizer_factory"]
