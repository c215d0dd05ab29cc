"""The ``csim`` backend: the HLS C++ kernels of ``hls/``, compiled by g++, called through ctypes.

The library is built on first use when it is missing or out of date (``csim_build``), then cached.
It holds two programs (``csim_lib``): by default ``program="cpu"`` runs the CPU schedules of the
kernels' sums (native integers, CPU tiles, planes up to 512 x 512); ``program="tops"`` runs the
synthesizable HLS tops themselves (ap_int types, the hardware's 32 x 32 local buffers: slow, for
checking that both give the same bits). The old names ``path="fast"`` and ``path="ap"`` still work.
A library of another contract version than ``fixed.CONTRACT_VERSION`` is refused (``ContractMismatch``).
"""

from __future__ import annotations

import numpy as np

from ..contract import MODES, RETURN_CODES, ConvShape
from . import BackendUnavailable
from .base import Fabric, FabricError, PsgResult
from .csim_build import BuildError, build_library
from .csim_lib import ContractMismatch, CsimLibrary, program_name

_lib: CsimLibrary | None = None


def load_library(rebuild: bool = False) -> CsimLibrary:
    """Build (if needed) and load the csim library once per process."""
    global _lib
    if _lib is None or rebuild:
        try:
            path = build_library(force=rebuild)
        except BuildError as exc:
            raise BackendUnavailable(f"fabric backend 'csim' cannot be built: {exc}") from exc
        _lib = CsimLibrary(path)
    return _lib


class CsimFabric(Fabric):
    """The HLS kernels' C++ (g++-compiled) behind the Fabric interface."""

    name = "csim"
    wraps = True  # the C++ accumulates in the contract's widths, as the hardware does

    def __init__(self, program: str = "cpu", rebuild: bool = False, library: CsimLibrary | None = None,
                 path: str | None = None):
        """``library``: a ``CsimLibrary`` instead of the project's build (another build to compare with,
        as tests/test_csim_fabric.py and benchmarks/csim_ab.py do). ``path``: the old name of ``program``."""
        self.program_name = program_name(program if path is None else path)
        self.lib = library if library is not None else load_library(rebuild)
        self.program = self.lib.program(self.program_name)
        self.max_hw = self.program.max_hw

    @property
    def label(self) -> str:
        return f"csim ({self.program_name})"

    def _rc(self, rc: int, what: str) -> None:
        if rc != 0:
            raise FabricError(f"{self.label} {what} refused the call: {RETURN_CODES.get(rc, f'error code {rc}')}")

    def _conv_fwd(self, x, w, k, stride):
        n, c, h, wd = x.shape
        s = ConvShape("conv_fwd", n, c, w.shape[0], h, wd, k, stride)
        y = np.empty((n, s.o, s.ho, s.wo), dtype=np.int32)
        self._rc(self.program.conv_fwd(x, w, y, s), s.name)
        return y

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        s = ConvShape("conv_bwd_data", g.shape[0], w.shape[1], g.shape[1], in_hw[0], in_hw[1], k, stride)
        gx = np.empty((s.n, s.c, s.h, s.w), dtype=np.int64)
        self._rc(self.program.conv_bwd_data(g, w, gx, s), s.name)
        return gx

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        n, c, h, wd = x.shape
        s = ConvShape("conv_bwd_weight_psg", n, c, g.shape[1], h, wd, k, stride)
        sign = np.zeros((s.o, c, k, k), dtype=np.int8)
        g_full = np.zeros((s.o, c, k, k), dtype=np.int64)
        g_msb = np.zeros((s.o, c, k, k), dtype=np.int32)
        rc, predicted, top = self.program.conv_bwd_weight_psg(x, g, sign, g_full, g_msb, s, beta_q, MODES[mode])
        self._rc(rc, s.name)
        if mode == "full":
            return PsgResult(sign=sign, predicted=0, mode="full", g_full=g_full)
        # Confident weights never get G_full (that is the point of PSG): g_full stays None.
        return PsgResult(sign=sign, predicted=predicted, mode="psg", g_msb=g_msb, max_abs_msb=top)


__all__ = ["ContractMismatch", "CsimFabric", "CsimLibrary", "load_library"]
