"""What every power meter produces: timestamped samples, the ranges they must lie in, and drop counters.

A parser never hands out a value outside its meter's range: a frame that decodes to one is dropped and
counted, because a corrupted frame that happens to parse is the one failure a plot would hide.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass


class MeterError(RuntimeError):
    """A meter cannot be used (unknown name, port that never opens, missing software counter)."""


class MeterUnavailable(MeterError):
    """A software meter (NVML, RAPL) is absent on this machine; the message says why."""


@dataclass(frozen=True)
class Sample:
    """One reading. ``time_s`` is wall-clock seconds (time.time()) when the host decoded the frame."""

    time_s: float
    watts: float
    volts: float | None = None
    amps: float | None = None


@dataclass(frozen=True)
class Limits:
    """Closed ranges a decoded value must lie in (the meter's measuring range, a little headroom)."""

    watts: tuple[float, float]
    volts: tuple[float, float] | None = None
    amps: tuple[float, float] | None = None

    def check(self, watts: float, volts: float | None = None, amps: float | None = None) -> bool:
        for value, rng in ((watts, self.watts), (volts, self.volts), (amps, self.amps)):
            if rng is None or value is None:
                continue
            if not math.isfinite(value) or not rng[0] <= value <= rng[1]:
                return False
        return True


class DropCounter(Counter):
    """Counts of what a parser or reader threw away, by reason (``garbage_bytes``, ``bad_checksum``, ...)."""

    def summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.items()) if v) or "none"
