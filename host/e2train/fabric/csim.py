"""The ``csim`` backend: the HLS C++ kernels of ``hls/``, compiled by g++, called through ctypes.

The library is built on first use when it is missing or out of date (``csim_build``), then cached.
By default the fast path runs (the kernel templates over native integers, CPU tile sizes); pass
``path="ap"`` to run the synthesizable tops themselves (ap_int types, the hardware's 32 x 32 local
buffers: slow, for checking that both give the same bits). A library of another contract version than
``fixed.CONTRACT_VERSION`` is refused (``ContractMismatch``).
"""

from __future__ import annotations

import ctypes

import numpy as np

from .. import fixed
from . import BackendUnavailable
from .base import Fabric, FabricError, PsgResult, out_size
from .bounds import ConvShape, accumulator_bounds
from .csim_build import BuildError, build_library

# Return codes of the C entry points (hls/include/e2_types.h).
_RC = {1: "a shape outside what the kernel's buffers hold", 2: "k, stride, mode or beta_q outside the contract", -1: "out of memory"}

_lib = None


def _ptr(dtype):
    return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")


def _declare(lib, prefix: str) -> None:
    i = ctypes.c_int
    ip = ctypes.POINTER(ctypes.c_int)
    getattr(lib, f"{prefix}conv_fwd").argtypes = [_ptr(np.int8), _ptr(np.int8), _ptr(np.int32)] + [i] * 7
    getattr(lib, f"{prefix}conv_bwd_data").argtypes = [_ptr(np.int16), _ptr(np.int8), _ptr(np.int64)] + [i] * 7
    getattr(lib, f"{prefix}conv_bwd_weight_psg").argtypes = (
        [_ptr(np.int8), _ptr(np.int16), _ptr(np.int8), _ptr(np.int64), _ptr(np.int32)] + [i] * 9 + [ip, ip]
    )
    for k in ("conv_fwd", "conv_bwd_data", "conv_bwd_weight_psg"):
        getattr(lib, f"{prefix}{k}").restype = i


class ContractMismatch(RuntimeError):
    """A csim library built for another contract version than ``e2train.fixed`` states (a stale build):
    its bits would differ from the reference's, so it is refused rather than used."""


def library_contract_version(lib) -> int:
    """The contract version a csim library implements; a library from before versions were exported is v1."""
    if not hasattr(lib, "e2_contract_version"):
        return 1
    lib.e2_contract_version.restype = ctypes.c_int
    return int(lib.e2_contract_version())


def open_library(path, any_contract: bool = False):
    """A csim library at ``path`` with its entry points declared: the fast path always, the ap path
    (the synthesizable tops) where the library has it. Refuses (ContractMismatch) a library of another
    contract version than ``fixed.CONTRACT_VERSION``, unless ``any_contract`` (for timing only, as
    benchmarks/csim_ab.py does with an older build: its bits are not the contract's)."""
    lib = ctypes.CDLL(str(path))
    version = library_contract_version(lib)
    if version != fixed.CONTRACT_VERSION and not any_contract:
        raise ContractMismatch(
            f"csim library {path} implements contract v{version}, but e2train.fixed states contract "
            f"v{fixed.CONTRACT_VERSION}: rebuild it (python tools/build_csim.py --force); if it stays so, hls/ "
            "and host/e2train/fixed.py state different contracts"
        )
    for prefix in ("e2_", "e2_ap_"):
        if hasattr(lib, f"{prefix}conv_fwd"):
            _declare(lib, prefix)
            getattr(lib, f"{prefix}max_hw").restype = ctypes.c_int
        for name, dtype in (("x_msb", np.int8), ("g_msb", np.int16)):  # the MSB predictors, for the tests
            if hasattr(lib, prefix + name):
                getattr(lib, prefix + name).argtypes = [_ptr(dtype), _ptr(dtype), ctypes.c_int]
                getattr(lib, prefix + name).restype = None
    return lib


def load_library(rebuild: bool = False):
    """Build (if needed) and load the csim library once per process."""
    global _lib
    if _lib is None or rebuild:
        try:
            path = build_library(force=rebuild)
        except BuildError as exc:
            raise BackendUnavailable(f"fabric backend 'csim' cannot be built: {exc}") from exc
        _lib = open_library(path)
    return _lib


class CsimFabric(Fabric):
    """The HLS kernels' C++ (g++-compiled) behind the Fabric interface."""

    name = "csim"

    def __init__(self, path: str = "fast", rebuild: bool = False, library=None):
        """``library``: a library from ``open_library`` instead of the project's build (another build
        to compare with, as tests/test_csim_fabric.py and benchmarks/csim_ab.py do)."""
        if path not in ("fast", "ap"):
            raise ValueError(f"csim path must be 'fast' or 'ap', got {path!r}")
        self.lib = library if library is not None else load_library(rebuild)
        self.path = path
        self._prefix = "e2_" if path == "fast" else "e2_ap_"
        self.max_hw = self.lib.e2_max_hw() if path == "fast" else self.lib.e2_ap_max_hw()

    def _fn(self, kernel: str):
        return getattr(self.lib, self._prefix + kernel)

    def _check(self, shape: ConvShape, kernels) -> None:
        if shape.h > self.max_hw or shape.w > self.max_hw:
            raise FabricError(
                f"csim ({self.path} path) holds inputs up to {self.max_hw}x{self.max_hw}, got {shape.h}x{shape.w}"
            )
        # The kernels accumulate in fixed widths (the hardware would wrap): refuse a shape whose worst
        # case does not fit rather than return a wrong answer.
        bounds = accumulator_bounds(shape)
        for kern in kernels:
            worst, limit = bounds[kern]
            if worst > limit:
                raise OverflowError(
                    f"csim {kern}: the worst case of shape {shape} ({worst}) exceeds its accumulator ({limit})"
                )

    @staticmethod
    def _rc(rc: int, what: str) -> None:
        if rc != 0:
            raise FabricError(f"csim {what} refused the call: {_RC.get(rc, f'error code {rc}')}")

    def _conv_fwd(self, x, w, k, stride):
        n, c, h, wd = x.shape
        o = w.shape[0]
        self._check(ConvShape("conv_fwd", n, c, o, h, wd, k, stride), ("forward",))
        y = np.empty((n, o, out_size(h, k, stride), out_size(wd, k, stride)), dtype=np.int32)
        self._rc(self._fn("conv_fwd")(x, w, y, n, c, h, wd, o, k, stride), "conv_fwd")
        return y

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        n, o = g.shape[:2]
        c = w.shape[1]
        h, wd = in_hw
        self._check(ConvShape("conv_bwd_data", n, c, o, h, wd, k, stride), ("backward_data",))
        gx = np.empty((n, c, h, wd), dtype=np.int64)
        self._rc(self._fn("conv_bwd_data")(g, w, gx, n, c, h, wd, o, k, stride), "conv_bwd_data")
        return gx

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        n, c, h, wd = x.shape
        o = g.shape[1]
        full = mode == "full"
        self._check(ConvShape("conv_bwd_weight_psg", n, c, o, h, wd, k, stride),
                    ("weight_full",) if full else ("weight_full", "weight_msb"))
        sign = np.zeros((o, c, k, k), dtype=np.int8)
        g_full = np.zeros((o, c, k, k), dtype=np.int64)
        g_msb = np.zeros((o, c, k, k), dtype=np.int32)
        predicted = ctypes.c_int(0)
        top = ctypes.c_int(0)
        rc = self._fn("conv_bwd_weight_psg")(
            x, g, sign, g_full, g_msb, n, c, h, wd, o, k, stride, int(beta_q), 1 if full else 0,
            ctypes.byref(predicted), ctypes.byref(top),
        )
        self._rc(rc, "conv_bwd_weight_psg")
        if full:
            return PsgResult(sign=sign, predicted=0, mode="full", g_full=g_full)
        # Confident weights never get G_full (that is the point of PSG): g_full stays None.
        return PsgResult(sign=sign, predicted=int(predicted.value), mode="psg", g_msb=g_msb,
                         max_abs_msb=int(top.value))


__all__ = ["ContractMismatch", "CsimFabric", "library_contract_version", "load_library", "open_library", "fixed"]
