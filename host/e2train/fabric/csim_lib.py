"""The csim library (``libe2csim``, built by ``csim_build``) behind one typed wrapper.

The library holds two programs over the same kernel templates of ``hls/src``:

* ``tops``: the synthesizable HLS tops themselves (``hls/csim/e2_csim_ap.cpp``, entry points
  ``e2_ap_<kernel>``): ap_int types, the hardware's tiles and 32 x 32 local buffers. Slow; what the
  board runs, bit for bit.
* ``cpu``: CPU schedules of the same sums (``hls/csim/e2_csim.cpp``, ``e2_<kernel>``): native
  integers, tiles and layouts chosen for an AVX2 core, planes up to 512 x 512. What the ``csim``
  backend runs by default; the tests hold it to the tops and the reference.

The C functions take 16 positional arguments; here each kernel is a method with named parameters and
a ``ConvShape`` for the sizes, and the ctypes argument types are declared once, when the library is
opened. The csim backend (``fabric/csim.py``) and the simulated board's executor
(``board/csim_executor.py``) both call the kernels through it.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .. import fixed
from ..contract import ConvShape

# program -> prefix of its entry points
PROGRAMS = {"cpu": "e2_", "tops": "e2_ap_"}
# what the programs were called before they were named for what they are ("fast path", "ap path")
PROGRAM_ALIASES = {"fast": "cpu", "ap": "tops"}


def program_name(name: str) -> str:
    """``cpu`` or ``tops`` (the old names ``fast`` and ``ap`` are accepted); ValueError otherwise."""
    name = PROGRAM_ALIASES.get(name, name)
    if name not in PROGRAMS:
        raise ValueError(
            f"csim program must be 'tops' (the HLS tops, hls/csim/e2_csim_ap.cpp) or 'cpu' (the CPU schedules "
            f"of the same sums, hls/csim/e2_csim.cpp), got {name!r}"
        )
    return name


class ContractMismatch(RuntimeError):
    """A csim library built for another contract version than ``e2train.fixed`` states (a stale build):
    its bits would differ from the reference's, so it is refused rather than used."""


def _array(dtype):
    return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")


_INT = ctypes.c_int
_INT_OUT = ctypes.POINTER(ctypes.c_int)
_DIMS = [_INT] * 7  # n, c, h, wd, o, k, stride: the order of the C signatures
# kernel -> the arrays it takes, in the order of the C signature
_KERNEL_ARRAYS = {
    "conv_fwd": [np.int8, np.int8, np.int32],
    "conv_bwd_data": [np.int16, np.int8, np.int64],
    "conv_bwd_weight_psg": [np.int8, np.int16, np.int8, np.int64, np.int32],
}


def _dims(s: ConvShape) -> tuple[int, ...]:
    return (s.n, s.c, s.h, s.w, s.o, s.k, s.stride)


class CsimProgram:
    """One program of the library (``cpu`` or ``tops``): the three kernels and the MSB predictors.

    Each kernel writes its outputs into the arrays passed and returns the C return code
    (``contract.RETURN_CODES``); nothing is checked here beyond the arrays' dtypes and contiguity.
    """

    def __init__(self, cdll: ctypes.CDLL, name: str):
        self.name = name
        prefix = PROGRAMS[name]
        fns = {}
        for kernel, arrays in _KERNEL_ARRAYS.items():
            fn = getattr(cdll, prefix + kernel)
            fn.argtypes = [_array(dt) for dt in arrays] + _DIMS
            if kernel == "conv_bwd_weight_psg":
                fn.argtypes += [_INT, _INT, _INT_OUT, _INT_OUT]  # beta_q, mode; predicted, max_abs_msb
            fn.restype = _INT
            fns[kernel] = fn
        for what, dtype in (("x_msb", np.int8), ("g_msb", np.int16)):
            if hasattr(cdll, prefix + what):  # builds from before contract v2 lack them (timing only)
                fn = getattr(cdll, prefix + what)
                fn.argtypes, fn.restype = [_array(dtype), _array(dtype), _INT], None
                fns[what] = fn
        top = getattr(cdll, prefix + "max_hw")
        top.restype = _INT
        self._fns = fns
        self.max_hw = int(top())  # largest input height and width the program's buffers hold

    def conv_fwd(self, x: np.ndarray, w: np.ndarray, y: np.ndarray, shape: ConvShape) -> int:
        return self._fns["conv_fwd"](x, w, y, *_dims(shape))

    def conv_bwd_data(self, g: np.ndarray, w: np.ndarray, gx: np.ndarray, shape: ConvShape) -> int:
        return self._fns["conv_bwd_data"](g, w, gx, *_dims(shape))

    def conv_bwd_weight_psg(
        self, x: np.ndarray, g: np.ndarray, sign: np.ndarray, g_full: np.ndarray, g_msb: np.ndarray,
        shape: ConvShape, beta_q: int, mode: int,
    ) -> tuple[int, int, int]:
        """``mode`` is the integer code (``contract.MODES``); returns (code, predicted, max |G_msb|)."""
        predicted, max_abs_msb = ctypes.c_int(0), ctypes.c_int(0)
        rc = self._fns["conv_bwd_weight_psg"](
            x, g, sign, g_full, g_msb, *_dims(shape), int(beta_q), int(mode), ctypes.byref(predicted),
            ctypes.byref(max_abs_msb),
        )
        return rc, predicted.value, max_abs_msb.value

    def x_msb(self, x: np.ndarray) -> np.ndarray:
        """The MSB predictor of int8 values as the program's plane loaders compute it (for the tests)."""
        return self._msb("x_msb", np.ascontiguousarray(x, np.int8))

    def g_msb(self, g: np.ndarray) -> np.ndarray:
        return self._msb("g_msb", np.ascontiguousarray(g, np.int16))

    def _msb(self, what: str, v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        self._fns[what](v, out, v.size)
        return out


def contract_version_of(cdll: ctypes.CDLL) -> int:
    """The contract version a library implements; one from before versions were exported is v1."""
    if not hasattr(cdll, "e2_contract_version"):
        return 1
    cdll.e2_contract_version.restype = _INT
    return int(cdll.e2_contract_version())


class CsimLibrary:
    """A loaded csim library: its contract version, its programs, how it was built."""

    def __init__(self, path, any_contract: bool = False):
        """Refuses (ContractMismatch) a library of another contract version than
        ``fixed.CONTRACT_VERSION``, unless ``any_contract`` (for timing only, as benchmarks/csim_ab.py
        does with an older build: its bits are not the contract's)."""
        self.path = str(path)
        self.cdll = ctypes.CDLL(self.path)
        self.contract_version = contract_version_of(self.cdll)
        if self.contract_version != fixed.CONTRACT_VERSION and not any_contract:
            raise ContractMismatch(
                f"csim library {path} implements contract v{self.contract_version}, but e2train.fixed states "
                f"contract v{fixed.CONTRACT_VERSION}: rebuild it (python tools/build_csim.py --force); if it stays "
                "so, hls/ and host/e2train/fixed.py state different contracts"
            )
        self._programs: dict[str, CsimProgram] = {}

    def program(self, name: str) -> CsimProgram:
        """``cpu`` or ``tops`` (old names ``fast`` and ``ap`` accepted)."""
        name = program_name(name)
        if name not in self._programs:
            self._programs[name] = CsimProgram(self.cdll, name)
        return self._programs[name]

    @property
    def avx2_passes(self) -> bool:
        """Whether the cpu program runs its AVX2 schedules (hls/csim/fwd_lanes.h, mac_avx2.h) or the
        kernels' own loops (a build without AVX2)."""
        fn = self.cdll.e2_avx2_passes
        fn.restype = _INT
        return bool(fn())

    def __repr__(self) -> str:
        return f"<CsimLibrary {self.path} (contract v{self.contract_version})>"
