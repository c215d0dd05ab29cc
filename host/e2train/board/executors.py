"""What executes a kernel of the simulated board when its start bit is written.

An executor gets the kernel's top, its argument registers (DDR addresses and scalars) and the DDR,
and does what the HLS top does: check the scalars (returning E2_BAD_SHAPE / E2_BAD_ARG without
touching memory), read its input buffers and write its output buffers in the layouts of
``layouts.py``. ``csim`` runs the HLS C++ itself (the csim library); ``reference`` runs the numpy
golden model and writes memory the way the top does.
"""

from __future__ import annotations

import numpy as np

from . import regmap
from .layouts import Shape, buffer_specs

E2_OK = 0
E2_BAD_SHAPE = 1
E2_BAD_ARG = 2


def check_scalars(kernel: str, a: dict) -> int:
    """The return code of the HLS top for these scalar arguments (hls/src/*.cpp checks the same)."""
    if min(a["n"], a["c"], a["o"], a["h"], a["wd"]) < 1 or max(a["h"], a["wd"]) > regmap.MAX_HW:
        return E2_BAD_SHAPE
    if a["k"] not in (1, 3) or a["stride"] not in (1, 2):
        return E2_BAD_ARG
    if kernel == "conv_bwd_weight_psg" and (not 0 <= a["beta_q"] <= 1 << 16 or a["mode"] not in regmap.MODES.values()):
        return E2_BAD_ARG
    return E2_OK


def map_buffers(kernel: str, args: dict, view) -> tuple[Shape, dict[str, np.ndarray]]:
    """Typed views of the DDR buffers the top's address registers point at."""
    s = Shape(args["n"], args["c"], args["h"], args["wd"], args["o"], args["k"], args["stride"])
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
            b["gx"][...] = self.fab.conv_bwd_data(b["gy"].copy(), b["w"].copy(), s.stride, (s.h, s.wd))
            return E2_OK, {}
        mode = "full" if args["mode"] == regmap.MODES["full"] else "psg"
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


EXECUTORS = ("auto", "csim", "csim-ap", "reference")


def get_executor(name: str = "auto"):
    """``auto``: the csim library where it builds here (g++), else the reference model."""
    if not isinstance(name, str):
        return name  # an executor object
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {name!r}")
    if name == "reference":
        return ReferenceExecutor()
    from ..fabric import BackendUnavailable
    from .csim_executor import CsimExecutor

    try:
        return CsimExecutor("ap" if name == "csim-ap" else "fast")
    except BackendUnavailable:
        if name != "auto":
            raise
        return ReferenceExecutor()
