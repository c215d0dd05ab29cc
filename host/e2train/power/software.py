"""Software energy counters: Linux RAPL (powercap sysfs) and NVIDIA NVML. Both optional.

Each exposes ``joules()``: energy since it was created, monotonic, with the hardware counter's
wrap-around folded in. Where the counter is absent or unreadable the constructor raises
MeterUnavailable with the reason, which callers print and skip.
"""

from __future__ import annotations

import glob
import os
import threading
import time

from .sample import MeterUnavailable

POWERCAP = "/sys/class/powercap"


class RaplCounter:
    """Sum of the top-level RAPL packages (``intel-rapl:N``; ``psys`` left out, it overlaps them)."""

    name = "rapl"

    def __init__(self, root: str = POWERCAP):
        zones = []
        for d in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
            if ":" in os.path.basename(d).split("intel-rapl:", 1)[1]:
                continue  # a sub-zone (core, uncore, dram) of a package already counted
            try:
                with open(os.path.join(d, "name")) as f:
                    if f.read().strip() == "psys":
                        continue
            except OSError:
                pass
            zones.append(d)
        if not zones:
            raise MeterUnavailable(f"RAPL: no intel-rapl zones under {root} (not an Intel/AMD x86 Linux host, "
                                   "or the powercap driver is not loaded)")
        self.zones = zones
        self._max = []
        self._last = []
        for z in zones:
            try:
                self._max.append(int(open(os.path.join(z, "max_energy_range_uj")).read()))
                self._last.append(int(open(os.path.join(z, "energy_uj")).read()))
            except PermissionError:
                raise MeterUnavailable(f"RAPL: {z}/energy_uj is not readable by this user (root only since "
                                       "Linux 5.10; grant read access or run as root)") from None
            except (OSError, ValueError) as exc:
                raise MeterUnavailable(f"RAPL: cannot read {z}: {exc}") from None
        self._total_uj = 0
        self._lock = threading.Lock()

    def joules(self) -> float:
        with self._lock:
            for i, z in enumerate(self.zones):
                now = int(open(os.path.join(z, "energy_uj")).read())
                delta = now - self._last[i]
                if delta < 0:  # the counter wrapped at max_energy_range_uj
                    delta += self._max[i] + 1
                self._total_uj += delta
                self._last[i] = now
            return self._total_uj / 1e6


class NvmlCounter:
    """GPU energy through NVML: the total-energy counter (Volta and newer), else integrated power."""

    name = "nvml"

    def __init__(self, index: int = 0):
        try:
            import pynvml  # nvidia-ml-py, the `gpu` extra
        except ImportError:
            raise MeterUnavailable("NVML: nvidia-ml-py is not installed (pip install '.[gpu]')") from None
        try:
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML: no usable NVIDIA GPU/driver ({exc})") from None
        self._nvml = pynvml
        try:
            self._start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
            self.mode = "energy_counter"
        except pynvml.NVMLError:
            self.mode = "power_integration"
            self._acc_j, self._t, self._p = 0.0, time.monotonic(), self._power_w()
        self._lock = threading.Lock()

    def _power_w(self) -> float:
        return self._nvml.nvmlDeviceGetPowerUsage(self._h) / 1000.0

    def joules(self) -> float:
        with self._lock:
            if self.mode == "energy_counter":
                return (self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h) - self._start_mj) / 1000.0
            now, p = time.monotonic(), self._power_w()
            self._acc_j += (now - self._t) * (p + self._p) / 2
            self._t, self._p = now, p
            return self._acc_j


SOFTWARE_COUNTERS = {"rapl": RaplCounter, "nvml": NvmlCounter}
