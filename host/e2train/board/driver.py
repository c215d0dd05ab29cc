"""Run one HLS kernel top through its AXI-Lite registers (ap_ctrl_hs): program the buffer addresses and
scalars of ``regmap``, write ap_start, poll ap_done with a timeout, read ap_return and the outputs."""

from __future__ import annotations

import time

from . import regmap
from .errors import BoardError, KernelError, KernelTimeout


def _signed32(v: int) -> int:
    return v - (1 << 32) if v & (1 << 31) else v


class KernelRunner:
    def __init__(self, api, device, instance: str, base_address: int, address_range: int, top: regmap.Top, timeout: float):
        self.instance, self.top, self.timeout = instance, top, float(timeout)
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
        for a in self.top.args:
            if a.kind == "ptr":
                addr = int(buffers[a.name].device_address)
                self.mmio.write(a.offset, addr & 0xFFFFFFFF)
                self.mmio.write(a.offset + 4, addr >> 32)
            elif a.kind == "in":
                self.mmio.write(a.offset, int(scalars[a.name]) & 0xFFFFFFFF)
        self.mmio.write(regmap.CTRL, regmap.AP_START)
        self._wait()
        code = _signed32(self.mmio.read(regmap.AP_RETURN))
        if code != 0:
            name = regmap.RETURN_CODES.get(code, "unknown code")
            raise KernelError(f"{self.top.top} returned {code} ({name}) for {scalars}: the kernel refused these arguments")
        outs = {}
        for a in self.top.args:
            if a.kind == "out":
                if not self.mmio.read(a.vld_offset) & 1:
                    raise BoardError(f"{self.top.top} finished without setting {a.name} (valid bit clear)")
                outs[a.name] = _signed32(self.mmio.read(a.offset))
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
                    f"{self.top.top} ({self.instance} at {self.base_address:#x}) did not finish within "
                    f"{self.timeout:g} s (CTRL={ctrl:#x}: ap_start={ctrl & 1}, ap_idle={ctrl >> 2 & 1}). Is the "
                    "e2train bitstream loaded and its clock running? Raise timeout= for very large layers."
                )
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)  # short kernels answer fast; long ones are polled every ms
