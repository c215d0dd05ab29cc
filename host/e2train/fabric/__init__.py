"""Fabric backends: one interface for the three convolution kernels, several implementations.

>>> from e2train.fabric import get_fabric
>>> fab = get_fabric("reference")            # or "csim", "torch", "pynq"

See docs/contracts.md for the semantics every backend follows bit for bit.
"""

from __future__ import annotations

import importlib

from ..contract import BETA_Q_MAX, KERNEL_SIZES, PSG_MODES, STRIDES, out_size
from .base import Fabric, FabricError, PsgResult

# name -> (module, class); modules load on first use so that a backend's toolchain is needed only by it.
BACKENDS = {
    "reference": ("e2train.fabric.reference", "ReferenceFabric"),
    "csim": ("e2train.fabric.csim", "CsimFabric"),
    "torch": ("e2train.fabric.torch_backend", "TorchFabric"),
    "pynq": ("e2train.board.fabric", "PynqFabric"),
    "cpu": ("e2train.cpu.fabric", "CpuFabric"),  # the integer CPU training engine's library
}


class BackendUnavailable(RuntimeError):
    """A backend that exists in the contract but cannot run here (missing module, toolchain or device)."""


def get_fabric(name: str = "reference", **options) -> Fabric:
    """Create the backend called ``name`` with backend-specific ``options``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown fabric backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module_name, cls_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise BackendUnavailable(f"fabric backend {name!r} is not implemented in this version of e2train") from exc
        raise BackendUnavailable(f"fabric backend {name!r} needs the module {exc.name!r}: {exc}") from exc
    return getattr(module, cls_name)(**options)


__all__ = [
    "BACKENDS",
    "BETA_Q_MAX",
    "BackendUnavailable",
    "Fabric",
    "FabricError",
    "KERNEL_SIZES",
    "PSG_MODES",
    "PsgResult",
    "STRIDES",
    "get_fabric",
    "out_size",
]
