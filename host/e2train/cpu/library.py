"""The integer CPU engine's library through ctypes: torch tensors in and out, no copies.

Operands are passed as pointers to the storage of contiguous CPU tensors (``data_ptr``); results are
written into tensors allocated here. Every call uses ``torch.get_num_threads()`` threads (the library's
OpenMP runs on the libgomp that torch itself has loaded).
"""

from __future__ import annotations

import ctypes
import os

import torch

from .. import fixed
from ..fabric import BackendUnavailable
from .build import VARIANTS, BuildError, build_library

_KIND = {None: 0, torch.float32: 1, torch.float64: 2}
_RC = {1: "a shape with an empty dimension", 2: "k or stride outside the contract"}
# 0: plain C++, 1: AVX2 vpmaddwd, 2: AVX2 with VNNI vpdpwssd
SIMD_NAMES = {0: "portable C++", 1: "AVX2", 2: "AVX2+VNNI"}

_loaded: dict[str, "CpuLibrary"] = {}


def default_variant() -> str:
    """``E2TRAIN_CPU_SIMD=portable`` forces the plain C++ build; otherwise the native one (which is plain
    C++ too on a CPU without AVX2: the source picks its path from the compiler's target)."""
    v = os.environ.get("E2TRAIN_CPU_SIMD", "native")
    if v not in VARIANTS:
        raise ValueError(f"E2TRAIN_CPU_SIMD must be one of {VARIANTS}, got {v!r}")
    return v


def load(variant: str | None = None) -> "CpuLibrary":
    """The library of ``variant`` (default: ``default_variant()``), built on first use, loaded once."""
    variant = variant or default_variant()
    if variant not in _loaded:
        try:
            path = build_library(variant)
        except BuildError as exc:
            raise BackendUnavailable(f"the cpu engine's library cannot be built: {exc}") from exc
        _loaded[variant] = CpuLibrary(ctypes.CDLL(str(path)), variant)
    return _loaded[variant]


def _p(t: torch.Tensor | None):
    return ctypes.c_void_p(t.data_ptr() if t is not None else 0)


def _cpu(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if t.device.type != "cpu":
        raise ValueError(f"the cpu engine runs on CPU tensors, got one on {t.device}")
    if t.dtype != dtype:
        t = t.to(dtype)  # integer-valued floats (the torch engine's operands) or a wider integer type
    return t.contiguous()


class CpuLibrary:
    def __init__(self, lib, variant: str):
        i, v = ctypes.c_int, ctypes.c_void_p
        self.lib = lib
        self.variant = variant
        lib.e2cpu_contract_version.restype = i
        lib.e2cpu_simd.restype = i
        lib.e2cpu_quantize.argtypes = [v, i, ctypes.c_long, i, i, v, i]
        lib.e2cpu_quantize.restype = ctypes.c_long
        lib.e2cpu_conv_fwd.argtypes = [v, v, v, i, i] + [i] * 8
        lib.e2cpu_conv_bwd_data.argtypes = [v, v, v, i, i] + [i] * 8
        lib.e2cpu_conv_bwd_weight.argtypes = [v, v, i, v, v] + [i] * 8
        for f in (lib.e2cpu_conv_fwd, lib.e2cpu_conv_bwd_data, lib.e2cpu_conv_bwd_weight):
            f.restype = i
        version = lib.e2cpu_contract_version()
        if version != fixed.CONTRACT_VERSION:
            raise BackendUnavailable(f"the cpu engine's library implements contract v{version}, "
                                     f"e2train.fixed states v{fixed.CONTRACT_VERSION}")
        self.simd = SIMD_NAMES[lib.e2cpu_simd()]

    @staticmethod
    def _rc(rc: int, what: str) -> None:
        if rc:
            raise ValueError(f"cpu engine {what} refused the call: {_RC.get(rc, f'error code {rc}')}")

    def quantize(self, t: torch.Tensor, bits: int, e: int) -> tuple[torch.Tensor, int]:
        """clamp(floor(t * 2**-e + 1/2)) as int8 (bits 8) or int16 (bits 16), and how many saturated."""
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)
        t = _cpu(t.detach(), t.dtype)
        q = torch.empty(t.shape, dtype=torch.int8 if bits == 8 else torch.int16)
        sat = self.lib.e2cpu_quantize(_p(t), _KIND[t.dtype], t.numel(), int(e), int(bits), _p(q), torch.get_num_threads())
        return q, int(sat)

    def conv_fwd(self, x, w, stride: int, e: int = 0, dtype=None) -> torch.Tensor:
        """int32 accumulators [N,O,H',W'] (dtype None), or acc * 2**e in float32 / float64."""
        x, w = _cpu(x, torch.int8), _cpu(w, torch.int8)
        n, c, h, wd = x.shape
        o, k = w.shape[0], w.shape[-1]
        pad = (k - 1) // 2
        y = torch.empty((n, o, (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1), dtype=dtype or torch.int32)
        self._rc(self.lib.e2cpu_conv_fwd(_p(x), _p(w), _p(y), _KIND[dtype], int(e), n, c, h, wd, o, k, stride,
                                         torch.get_num_threads()), "conv_fwd")
        return y

    def conv_bwd_data(self, g, w, stride: int, in_hw, e: int = 0, dtype=None) -> torch.Tensor:
        """int64 accumulators [N,C,H,W] (dtype None), or acc * 2**e in float32 / float64."""
        g, w = _cpu(g, torch.int16), _cpu(w, torch.int8)
        n, o = g.shape[:2]
        c, k = w.shape[1], w.shape[-1]
        h, wd = in_hw
        gx = torch.empty((n, c, h, wd), dtype=dtype or torch.int64)
        self._rc(self.lib.e2cpu_conv_bwd_data(_p(g), _p(w), _p(gx), _KIND[dtype], int(e), n, c, h, wd, o, k, stride,
                                              torch.get_num_threads()), "conv_bwd_data")
        return gx

    def conv_bwd_weight(self, x, g, k: int, stride: int, msb: bool, unsure: torch.Tensor | None = None) -> torch.Tensor:
        """int64 [O,C,k,k]: G_msb (msb) or G_full, the latter only where ``unsure`` (bool [O,C,k,k]) needs it
        (other entries: whatever their tile held, or 0)."""
        x, g = _cpu(x, torch.int8), _cpu(g, torch.int16)
        n, c, h, wd = x.shape
        o = g.shape[1]
        out = torch.empty((o, c, k, k), dtype=torch.int64)
        mask = None if unsure is None else unsure.to(torch.uint8).contiguous()
        self._rc(self.lib.e2cpu_conv_bwd_weight(_p(x), _p(g), int(bool(msb)), _p(mask), _p(out), n, c, h, wd, o, k,
                                                stride, torch.get_num_threads()), "conv_bwd_weight")
        return out
