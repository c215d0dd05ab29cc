"""Where a quantised convolution's integer kernels run: ``make_engine``, the one factory of engines.

The engines themselves are the fabric's (``e2train.fabric.engine`` states what they answer): torch
(any device, float32 or float64) or an adapter onto a numpy ``Fabric`` (``reference``, ``csim``,
``pynq``). Their names are re-exported here for the code that reaches them through ``psg``.
"""

from __future__ import annotations

from .. import fixed
from ..fabric.engine import Engine, WeightGrad
from ..fabric.fabric_engine import FabricEngine
from ..fabric.torch_engine import MSB_CONTRACT, MSB_ROUNDINGS, PRECISIONS, TorchEngine

__all__ = ["MSB_CONTRACT", "MSB_ROUNDINGS", "PRECISIONS", "Engine", "FabricEngine", "TorchEngine", "WeightGrad",
           "make_engine"]


def make_engine(backend: str = "torch", precision: str | None = None, **options):
    """``torch`` (options ``restrict``, ``msb``) or any fabric backend name (options go to ``get_fabric``)."""
    if backend == "torch":
        unknown = set(options) - {"restrict", "msb"}
        if unknown:
            raise ValueError(f"the torch engine takes only the options 'restrict' and 'msb', got {sorted(unknown)}")
        return TorchEngine(precision, **options)
    msb = options.pop("msb", MSB_CONTRACT)
    if msb != MSB_CONTRACT:
        raise ValueError(
            f"backend {backend!r} implements contract v{fixed.CONTRACT_VERSION}'s MSBs (msb = \"{MSB_CONTRACT}\") only; "
            f"msb = {msb!r} is a torch-engine ablation (--backend torch)"
        )
    if precision not in (None, "float64"):
        raise ValueError(f"backend {backend!r} computes in integers; precision {precision!r} does not apply")
    return FabricEngine(backend, **options)
