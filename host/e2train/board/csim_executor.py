"""The simulated board's kernels run by the HLS C++ itself: the csim library (hls/csim) called on the
simulated DDR in place, so the tops read their inputs from and write their outputs to the very bytes
the driver placed and will read back.

``path="ap"`` calls the synthesizable tops (ap_int types, the hardware's tiles and 32x32 buffers);
``path="fast"`` (default) the same kernel templates over native integers, with the tops' argument
checks applied first (the fast build accepts planes up to 254x254; the tops refuse beyond 32x32).
"""

from __future__ import annotations

import ctypes

from .executors import E2_OK, check_scalars, map_buffers


class CsimExecutor:
    def __init__(self, path: str = "fast"):
        from ..fabric.csim import load_library

        if path not in ("fast", "ap"):
            raise ValueError(f"csim path must be 'fast' or 'ap', got {path!r}")
        self.lib = load_library()
        self.path = path
        self.name = "csim" if path == "fast" else "csim-ap"
        self._prefix = "e2_" if path == "fast" else "e2_ap_"

    def run(self, kernel: str, args: dict, view) -> tuple[int, dict]:
        code = check_scalars(kernel, args)
        if code != E2_OK:
            return code, {}
        s, b = map_buffers(kernel, args, view)
        fn = getattr(self.lib, self._prefix + kernel)
        dims = (s.n, s.c, s.h, s.wd, s.o, s.k, s.stride)
        if kernel == "conv_fwd":
            return fn(b["x"], b["w"], b["y"], *dims), {}
        if kernel == "conv_bwd_data":
            return fn(b["gy"], b["w"], b["gx"], *dims), {}
        predicted, top_msb = ctypes.c_int(0), ctypes.c_int(0)
        rc = fn(b["x"], b["gy"], b["sign"], b["g_full"], b["g_msb"], *dims, args["beta_q"], args["mode"],
                ctypes.byref(predicted), ctypes.byref(top_msb))
        return rc, {"predicted": predicted.value, "max_abs_msb": top_msb.value}
