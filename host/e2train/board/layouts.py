"""Buffer layouts of the three kernel tops: which DDR buffers each one reads and writes, their dtypes
and shapes (docs/contracts.md section 2: NCHW / OIHW, row-major, contiguous).

The names are the pointer arguments of the HLS tops (hls/src/*.h), which are also the names of their
address registers in the register map; 48-bit results are stored sign-extended to int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import KERNELS, ConvShape


@dataclass(frozen=True)
class BufferSpec:
    name: str
    dtype: np.dtype
    direction: str  # "in": the host writes it and flushes; "out": the kernel writes it and the host invalidates
    dims: str  # which ConvShape fields give the array's shape, e.g. "n c h w"

    def shape(self, s: ConvShape) -> tuple[int, ...]:
        return tuple(getattr(s, d) for d in self.dims.split())

    def nbytes(self, s: ConvShape) -> int:
        return int(np.prod(self.shape(s))) * np.dtype(self.dtype).itemsize


def _b(name, dtype, direction, dims) -> BufferSpec:
    return BufferSpec(name, np.dtype(dtype), direction, dims)


# kernel -> its buffers, in the order of the top's pointer arguments.
BUFFERS: dict[str, tuple[BufferSpec, ...]] = {
    "conv_fwd": (
        _b("x", np.int8, "in", "n c h w"),
        _b("w", np.int8, "in", "o c k k"),
        _b("y", np.int32, "out", "n o ho wo"),
    ),
    "conv_bwd_data": (
        _b("gy", np.int16, "in", "n o ho wo"),
        _b("w", np.int8, "in", "o c k k"),
        _b("gx", np.int64, "out", "n c h w"),
    ),
    "conv_bwd_weight_psg": (
        _b("x", np.int8, "in", "n c h w"),
        _b("gy", np.int16, "in", "n o ho wo"),
        _b("sign", np.int8, "out", "o c k k"),
        _b("g_full", np.int64, "out", "o c k k"),
        _b("g_msb", np.int32, "out", "o c k k"),
    ),
}


def buffer_specs(kernel: str) -> tuple[BufferSpec, ...]:
    try:
        return BUFFERS[kernel]
    except KeyError:
        raise ValueError(f"unknown kernel {kernel!r}; the fabric has {', '.join(KERNELS)}") from None


def check_array(spec: BufferSpec, s: ConvShape, a: np.ndarray) -> np.ndarray:
    """The array the kernel expects for ``spec`` under shape ``s``, contiguous; a clear error otherwise."""
    want = spec.shape(s)
    if a.dtype != spec.dtype or a.shape != want:
        raise ValueError(f"buffer {spec.name}: expected {spec.dtype.name} {want}, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)
