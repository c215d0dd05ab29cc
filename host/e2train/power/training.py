"""Measured energy for a training run: the meter over the whole run, its windows, and the CLI options.

    meter = MeteredRun.from_args(args, run_dir)      # None when --meter was not given
    with meter:                                      # records power for the whole run into run_dir/power.csv
        meter.begin("epoch", 0) ... meter.end("epoch", 0)
        meter.begin("eval", step) ... meter.end("eval", step)
    meter.finish()                                   # -> measured_joules (the trainer's report holds it)

The training loop opens and closes the windows through a callback (``training.callbacks.MeterWindows``).

``measured_joules`` in report.json::

    {"run": J, "epochs": [{"index": 0, "joules": J, "seconds": s}, ...], "evaluations": [...],
     "idle_watts": W or null, "idle_subtracted": true/false, "meter": "um25c", "csv": "power.csv",
     "drops": {"bad_checksum": 2, ...}}

With ``--idle-seconds S`` the meter first records S seconds of the idle machine; that power times each
window's length is subtracted from the window, so the figures are the energy training added.
"""

from __future__ import annotations

import os

from .monitor import EnergyMonitor, MeterSource, integrate
from .sample import MeterError
from .serial_meter import METERS, open_meter

KINDS = {"epoch": "epochs", "eval": "evaluations"}


def add_meter_arguments(parser) -> None:
    g = parser.add_argument_group("power measurement")
    g.add_argument("--meter", choices=sorted(METERS), default=None, help="record power with this serial meter")
    g.add_argument("--port", default=None, help="the meter's serial port")
    g.add_argument("--meter-interval", type=float, default=1.0, help="seconds between meter samples")
    g.add_argument("--idle-seconds", type=float, default=0.0,
                   help="record the idle power this long before training and subtract it")


class MeteredRun:
    def __init__(self, meter, run_dir: str, idle_seconds: float = 0.0):
        self.run_dir = run_dir
        self.csv_name = "power.csv"
        self.source = MeterSource(meter, os.path.join(run_dir, self.csv_name))
        self.monitor = EnergyMonitor([self.source])
        self.idle_seconds = idle_seconds
        self.windows: dict[str, list[dict]] = {v: [] for v in KINDS.values()}
        self._open: dict[tuple[str, int], float] = {}
        self._closed: list[tuple[str, int, float, float]] = []
        self.run = None
        self.from_iteration = 0  # a resumed run measures only what it trains itself
        self._started = False

    @classmethod
    def from_args(cls, args, run_dir: str) -> "MeteredRun | None":
        if not getattr(args, "meter", None):
            return None
        if not args.port:
            raise MeterError("--meter needs --port")
        meter = open_meter(args.meter, args.port, interval_s=args.meter_interval)
        return cls(meter, run_dir, args.idle_seconds)

    def start(self) -> "MeteredRun":
        os.makedirs(self.run_dir, exist_ok=True)
        self.monitor.start()
        # longer than the reader's grace for a first open, so that its own error is the one reported
        meter = self.source.meter
        if not self.source.wait_until(0.0, timeout_s=meter.first_open_timeout_s + max(5.0, 5 * meter.interval_s)):
            self.monitor.stop()
            raise MeterError(f"meter {self.source.name} on {self.source.meter.port} gave no sample")
        if self.idle_seconds > 0:
            self.monitor.measure_idle(self.idle_seconds)
        self.monitor.begin_window("run")
        self._started = True
        return self

    def begin(self, kind: str, index: int) -> None:
        if (kind, index) in self._open:
            raise ValueError(f"window {kind} {index} is already open")
        self._open[(kind, index)] = self.monitor.clock()

    def end(self, kind: str, index: int) -> None:
        """Close a window. Its energy is worked out at ``finish``, when the samples after it have arrived,
        so the training loop never waits for the meter."""
        t0 = self._open.pop((kind, index))
        self._closed.append((kind, index, t0, self.monitor.clock()))

    def finish(self) -> dict:
        if not self._started:  # start() failed or never ran: nothing was measured
            self.monitor.stop()
            return self.summary()
        if self.run is None:
            for kind, index in list(self._open):  # a run stopped mid-epoch: its last window ends here
                self.end(kind, index)
            self.run = self.monitor.end_window("run")  # waits for the sample that brackets the end
            self.monitor.stop()
            samples = self.source.snapshot()
            idle = self.monitor.idle_watts.get(self.source.name, 0.0)
            for kind, index, t0, t1 in self._closed:
                j = integrate(samples, t0, t1)
                self.windows[KINDS[kind]].append({"index": index, "joules": None if j is None else j - idle * (t1 - t0),
                                                  "seconds": t1 - t0})
        return self.summary()

    def summary(self) -> dict:
        idle = self.monitor.idle_watts.get(self.source.name)
        return {"run": self.run.joules if self.run else None, "seconds": self.run.seconds if self.run else None,
                "from_iteration": self.from_iteration, **self.windows, "idle_watts": idle, "idle_subtracted": idle is not None,
                "meter": self.source.name, "csv": self.csv_name, "drops": dict(self.source.meter.drops)}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.finish()
