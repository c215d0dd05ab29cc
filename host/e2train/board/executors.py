"""What executes a kernel of the simulated board when its start bit is written.

An executor gets the kernel's top, its argument registers (DDR addresses and scalars) and the DDR,
and does what the HLS top does: check the scalars (returning E2_BAD_SHAPE / E2_BAD_ARG without
touching memory), read its input buffers and write its output buffers in the layouts of
``layouts.py``. ``csim-tops`` runs the HLS tops' C++ itself and ``csim`` the CPU schedules of the same
sums (the csim library, ``fabric/csim_lib.py``); ``reference`` runs the numpy golden model and writes
memory the way the top does.
"""

from __future__ import annotations

import numpy as np

from ..contract import (
    BETA_Q_MAX, E2_BAD_ARG, E2_BAD_SHAPE, E2_OK, KERNEL_SIZES, MODES, STRIDES, TOP_MAX_HW, ConvShape,
)
from .layouts import buffer_specs


def check_scalars(kernel: str, a: dict) -> int:
    """The return code of the HLS top for these scalar arguments (hls/src/*.cpp checks the same)."""
    if min(a["n"], a["c"], a["o"], a["h"], a["wd"]) < 1 or max(a["h"], a["wd"]) > TOP_MAX_HW:
        return E2_BAD_SHAPE
    if a["k"] not in KERNEL_SIZES or a["stride"] not in STRIDES:
        return E2_BAD_ARG
    if kernel == "conv_bwd_weight_psg" and (not 0 <= a["beta_q"] <= BETA_Q_MAX or a["mode"] not in MODES.values()):
        return E2_BAD_ARG
    return E2_OK


def map_buffers(kernel: str, args: dict, view) -> tuple[ConvShape, dict[str, np.ndarray]]:
    """Typed views of the DDR buffers the top's address registers point at."""
    s = ConvShape(kernel, args["n"], args["c"], args["o"], args["h"], args["wd"], args["k"], args["stride"])
    arrays = {}
    for spec in buffer_specs(kernel):
        raw = view(args[spec.name], spec.nbytes(s), f"{kernel}.{spec.name}")
        arrays[spec.name] = raw.view(spec.dtype).reshape(spec.shape(s))
    return s, arrays


class ReferenceExecutor:
    """The numpy golden model behind the start bit."""

    name = "reference"

    def __init__(self):
        from ..fabric.reference import ReferenceFabric

        self.fab = ReferenceFabric()

    def run(self, kernel: str, args: dict, view) -> tuple[int, dict]:
        code = check_scalars(kernel, args)
        if code != E2_OK:
            return code, {}
        s, b = map_buffers(kernel, args, view)
        if kernel == "conv_fwd":
            b["y"][...] = self.fab.conv_fwd(b["x"].copy(), b["w"].copy(), s.stride)
            return E2_OK, {}
        if kernel == "conv_bwd_data":
            b["gx"][...] = self.fab.conv_bwd_data(b["gy"].copy(), b["w"].copy(), s.stride, (s.h, s.w))
            return E2_OK, {}
        mode = "full" if args["mode"] == MODES["full"] else "psg"
        r = self.fab.conv_bwd_weight_psg(b["x"].copy(), b["gy"].copy(), s.k, s.stride, args["beta_q"], mode)
        b["sign"][...] = r.sign
        if mode == "full":
            b["g_full"][...] = r.g_full
            return E2_OK, {"predicted": 0, "max_abs_msb": 0}
        # Like the top: G_msb for every weight, G_full only where phase 2 ran (not confident).
        b["g_msb"][...] = r.g_msb
        from ..fabric.reference import psg_confident

        confident, _ = psg_confident(r.g_msb, args["beta_q"])
        b["g_full"][~confident] = r.g_full[~confident]
        return E2_OK, {"predicted": r.predicted, "max_abs_msb": r.max_abs_msb}


# executor -> the csim program it runs (None: not the csim library)
EXECUTOR_PROGRAMS = {"auto": "cpu", "csim": "cpu", "csim-tops": "tops", "reference": None}
EXECUTORS = tuple(EXECUTOR_PROGRAMS)
EXECUTOR_ALIASES = {"csim-ap": "csim-tops"}  # the name from before the programs were named for what they are


def get_executor(name: str = "auto"):
    """``auto``: the csim library's CPU schedules where it builds here (g++), else the reference model."""
    if not isinstance(name, str):
        return name  # an executor object
    name = EXECUTOR_ALIASES.get(name, name)
    if name not in EXECUTOR_PROGRAMS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {name!r}")
    if name == "reference":
        return ReferenceExecutor()
    from ..fabric import BackendUnavailable
    from .csim_executor import CsimExecutor

    try:
        return CsimExecutor(EXECUTOR_PROGRAMS[name])
    except BackendUnavailable:
        if name != "auto":
            raise
        return ReferenceExecutor()
