"""One measurement API for every meter, in the style of Zeus: named windows that return joules and seconds.

    mon = EnergyMonitor([MeterSource(open_meter("um25c", "/dev/rfcomm0"), csv_path="power.csv")])
    mon.start()
    mon.measure_idle(10)                  # optional idle baseline, subtracted from every window
    mon.begin_window("epoch")
    ...
    m = mon.end_window("epoch")           # Measurement(name, seconds, joules, ...)
    with mon.window("eval") as w: ...     # w.result after the block

Windows nest and overlap freely (each is just a start time and counter readings). Serial meters give
samples: a window's energy is the trapezoid integral of power over [t0, t1], with the power at the
edges interpolated between the neighbouring samples. Software counters (RAPL, NVML) give energy
directly: the difference of two readings.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from dataclasses import dataclass, field

from .recorder import CsvRecorder
from .sample import MeterError, Sample


def integrate(samples: list[Sample], t0: float, t1: float) -> float | None:
    """Joules between t0 and t1 from time-sorted samples (None when there is no sample at all).

    Power before the first sample and after the last one is held at that sample's value."""
    if not samples or t1 < t0:
        return None
    times = [s.time_s for s in samples]

    def power_at(t: float) -> float:
        i = bisect.bisect_left(times, t)
        if i == 0:
            return samples[0].watts
        if i == len(times):
            return samples[-1].watts
        a, b = samples[i - 1], samples[i]
        if b.time_s == a.time_s:
            return b.watts
        return a.watts + (b.watts - a.watts) * (t - a.time_s) / (b.time_s - a.time_s)

    lo, hi = bisect.bisect_right(times, t0), bisect.bisect_left(times, t1)
    pts = [(t0, power_at(t0))] + [(s.time_s, s.watts) for s in samples[lo:hi]] + [(t1, power_at(t1))]
    return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in zip(pts, pts[1:]))


class MeterSource:
    """A serial meter read on a background thread; samples kept in memory and optionally appended to a CSV."""

    def __init__(self, meter, csv_path: str | None = None, name: str | None = None):
        self.meter = meter
        self.name = name or meter.name
        self.csv_path = csv_path
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def start(self) -> None:
        recorder = CsvRecorder(self.csv_path, self.meter.columns) if self.csv_path else None
        self._recorder = recorder

        def run():
            try:
                for s in self.meter.samples(stop=self._stop):
                    if recorder:
                        recorder.write(s)
                    with self._lock:
                        self.samples.append(s)
            except Exception as exc:  # reported by wait_until / stop
                self.error = exc
            finally:
                if recorder:
                    recorder.close()

        self._thread = threading.Thread(target=run, name=f"meter-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def wait_until(self, t: float, timeout_s: float) -> bool:
        """Wait for a sample stamped at or after ``t`` (so that the window's end is bracketed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.error:
                raise MeterError(f"{self.name}: {self.error}")
            with self._lock:
                if self.samples and self.samples[-1].time_s >= t:
                    return True
            time.sleep(0.01)
        return False

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def energy(self, t0: float, t1: float, mark0=None, mark1=None) -> float | None:
        self.wait_until(t1, timeout_s=max(2.0, 2 * getattr(self.meter, "interval_s", 1.0)))
        return integrate(self.snapshot(), t0, t1)

    def mark(self):
        return None


class CounterSource:
    """A software energy counter (RaplCounter, NvmlCounter or anything with ``joules()``)."""

    def __init__(self, counter, name: str | None = None):
        self.counter = counter
        self.name = name or getattr(counter, "name", "counter")

    def start(self) -> None:
        self.counter.joules()

    def stop(self) -> None:
        pass

    def mark(self):
        return self.counter.joules()

    def energy(self, t0, t1, mark0=None, mark1=None) -> float | None:
        return mark1 - mark0


@dataclass
class Measurement:
    name: str
    start_s: float
    seconds: float
    joules: float | None  # total over sources, idle baseline subtracted where one was recorded
    by_source: dict[str, float | None] = field(default_factory=dict)
    idle_joules: float = 0.0  # what was subtracted

    def as_dict(self) -> dict:
        return {"name": self.name, "start_s": self.start_s, "seconds": self.seconds, "joules": self.joules,
                "by_source": self.by_source, "idle_joules_subtracted": self.idle_joules}


class _WindowHandle:
    result: Measurement | None = None


class EnergyMonitor:
    def __init__(self, sources, clock=time.time):
        self.sources = list(sources)
        self.clock = clock
        self.idle_watts: dict[str, float] = {}
        self._open: dict[str, tuple[float, list]] = {}
        self.finished: list[Measurement] = []
        self._started = False

    def start(self) -> "EnergyMonitor":
        if not self._started:
            for s in self.sources:
                s.start()
            self._started = True
        return self

    def stop(self) -> None:
        for s in self.sources:
            s.stop()
        self._started = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        self._open[name] = (self.clock(), [s.mark() for s in self.sources])

    def end_window(self, name: str, subtract_idle: bool = True) -> Measurement:
        if name not in self._open:
            raise ValueError(f"window {name!r} was not begun")
        t1 = self.clock()
        marks1 = [s.mark() for s in self.sources]
        t0, marks0 = self._open.pop(name)
        by_source: dict[str, float | None] = {}
        idle = 0.0
        for s, m0, m1 in zip(self.sources, marks0, marks1):
            e = s.energy(t0, t1, m0, m1)
            if e is not None and subtract_idle and s.name in self.idle_watts:
                idle += self.idle_watts[s.name] * (t1 - t0)
            by_source[s.name] = e
        known = [e for e in by_source.values() if e is not None]
        total = sum(known) - idle if known else None
        m = Measurement(name, t0, t1 - t0, total, by_source, idle if known else 0.0)
        self.finished.append(m)
        return m

    @contextlib.contextmanager
    def window(self, name: str):
        handle = _WindowHandle()
        self.begin_window(name)
        try:
            yield handle
        finally:
            handle.result = self.end_window(name)

    def measure_idle(self, seconds: float) -> dict[str, float]:
        """Record the idle power of every source over ``seconds`` of doing nothing."""
        self.begin_window("__idle__")
        time.sleep(seconds)
        m = self.end_window("__idle__", subtract_idle=False)
        self.finished.remove(m)
        for name, e in m.by_source.items():
            if e is not None and m.seconds > 0:
                self.idle_watts[name] = e / m.seconds
        return dict(self.idle_watts)
