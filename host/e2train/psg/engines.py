"""Where a quantised convolution's integer kernels run: ``make_engine``, the one factory of engines.

The engines themselves are the fabric's (``e2train.fabric.engine`` states what they answer): torch
(any device, float32 or float64) or an adapter onto a numpy ``Fabric`` (``reference``, ``csim``,
``pynq``). Their names are re-exported here for the code that reaches them through ``psg``.
"""

from __future__ import annotations

import torch

from .. import fixed
from ..fabric.engine import Engine, WeightGrad
from ..fabric.fabric_engine import FabricEngine
from ..fabric.torch_engine import MSB_CONTRACT, MSB_ROUNDINGS, PRECISIONS, TorchEngine

__all__ = ["MSB_CONTRACT", "MSB_ROUNDINGS", "PRECISIONS", "Engine", "FabricEngine", "TorchEngine", "WeightGrad",
           "make_engine", "resolve_backend"]


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
