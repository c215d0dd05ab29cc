"""The simulated board's kernels run by the HLS C++ itself: the csim library (``fabric/csim_lib.py``)
called on the simulated DDR in place, so the kernels read their inputs from and write their outputs to
the very bytes the driver placed and will read back.

``program="tops"`` calls the synthesizable HLS tops (ap_int types, the hardware's tiles and 32x32
buffers); ``program="cpu"`` (default) the CPU schedules of the same sums, with the tops' argument
checks applied first (the CPU build accepts planes up to 512x512; the tops refuse beyond 32x32).
"""

from __future__ import annotations

from ..contract import E2_OK
from .executors import check_scalars, map_buffers

# the executor's name by program, as ``get_executor`` takes it
NAMES = {"cpu": "csim", "tops": "csim-tops"}


class CsimExecutor:
    def __init__(self, program: str = "cpu"):
        from ..fabric.csim import load_library
        from ..fabric.csim_lib import program_name

        program = program_name(program)
        self.program = load_library().program(program)
        self.name = NAMES[program]

    def run(self, kernel: str, args: dict, view) -> tuple[int, dict]:
        code = check_scalars(kernel, args)
        if code != E2_OK:
            return code, {}
        s, b = map_buffers(kernel, args, view)
        if kernel == "conv_fwd":
            return self.program.conv_fwd(b["x"], b["w"], b["y"], s), {}
        if kernel == "conv_bwd_data":
            return self.program.conv_bwd_data(b["gy"], b["w"], b["gx"], s), {}
        rc, predicted, max_abs_msb = self.program.conv_bwd_weight_psg(
            b["x"], b["gy"], b["sign"], b["g_full"], b["g_msb"], s, args["beta_q"], args["mode"]
        )
        return rc, {"predicted": predicted, "max_abs_msb": max_abs_msb}
