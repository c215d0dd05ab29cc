"""Run one HLS kernel top through its AXI-Lite registers (ap_ctrl_hs): program the buffer addresses and
scalars of ``regmap``, write ap_start, poll ap_done with a timeout, read ap_return and the outputs."""

from __future__ import annotations

import time

from ..contract import RETURN_CODES
from . import regmap
from .errors import BoardError, KernelError, KernelTimeout


def _signed32(v: int) -> int:
    return v - (1 << 32) if v & (1 << 31) else v


class KernelRunner:
    def __init__(self, api, device, instance: str, base_address: int, address_range: int, top: str, timeout: float):
        self.instance, self.top, self.timeout = instance, top, float(timeout)
        self.regs = regmap.REGMAPS[top]
        self.base_address = base_address
        self.mmio = api.MMIO(base_address, address_range, device=device)
        self.broken = None  # set when a run timed out: the kernel may still be writing DDR

    def run(self, scalars: dict[str, int], buffers: dict) -> dict[str, int]:
        """Start the kernel on ``buffers`` (name -> device buffer) and ``scalars``; its outputs by name."""
        if self.broken:
            raise BoardError(f"{self.instance} is unusable after an earlier failure ({self.broken}); reload the overlay")
        ctrl = self.mmio.read(regmap.CTRL)
        if not ctrl & regmap.AP_IDLE:
            raise BoardError(f"{self.instance} at {self.base_address:#x} is busy (CTRL={ctrl:#x}) before start")
        for r in self.regs.values():
            if r.kind == "pointer":
                addr = int(buffers[r.name].device_address)
                self.mmio.write(r.words["lo"], addr & 0xFFFFFFFF)
                self.mmio.write(r.words["hi"], addr >> 32)
            elif r.kind == "scalar":
                self.mmio.write(r.offset, int(scalars[r.name]) & 0xFFFFFFFF)
        self.mmio.write(regmap.CTRL, regmap.AP_START)
        self._wait()
        code = _signed32(self.mmio.read(self.regs["ap_return"].offset))
        if code != 0:
            name = RETURN_CODES.get(code, "unknown code")
            raise KernelError(f"{self.top} returned {code} ({name}) for {scalars}: the kernel refused these arguments")
        outs = {}
        for r in self.regs.values():
            if r.kind == "output":
                if not self.mmio.read(r.words["ctrl"]) & regmap.AP_VLD:
                    raise BoardError(f"{self.top} finished without setting {r.name} (ap_vld clear)")
                outs[r.name] = _signed32(self.mmio.read(r.words["data"]))
        return outs

    def _wait(self) -> None:
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        pause = 1e-6
        while True:
            ctrl = self.mmio.read(regmap.CTRL)
            if ctrl & regmap.AP_DONE:  # clear on read: seen once
                return
            if time.monotonic() > deadline:
                self.broken = f"timeout after {self.timeout:g} s"
                raise KernelTimeout(
                    f"{self.top} ({self.instance} at {self.base_address:#x}) did not finish within "
                    f"{self.timeout:g} s (CTRL={ctrl:#x}: ap_start={ctrl & 1}, ap_idle={ctrl >> 2 & 1}). Is the "
                    "e2train bitstream loaded and its clock running? Raise timeout= for very large layers."
                )
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)  # short kernels answer fast; long ones are polled every ms
