"""Each supported meter simulated on a pseudo-terminal, speaking its exact protocol, with fault injection.

The simulator owns the master side of a pty; readers open the slave side (through a stable symlink,
so that a simulated disconnect, which destroys the pty, can be followed by a reconnect on the same
path, as a USB serial adapter comes back under the same name). Faults:

``noise=P``      random bytes before a frame, with probability P
``split=P``      a frame written in two pieces with a pause between them
``double=P``     a frame written twice
``truncate=P``   the first part of a frame, then the whole frame
``corrupt=P``    a frame with a wrong checksum / end marker / malformed field
``stall=N:S``    after frame N, say nothing for S seconds
``disconnect=N:S`` after frame N, destroy the pty, come back S seconds later

Everything sent is recorded in ``sent`` (the values of intact frames), so tests can check that a
reader never reports a value that was not sent.
"""

from __future__ import annotations

import math
import os
import random
import re
import select
import tempfile
import termios
import threading
import time
import tty
from dataclasses import dataclass, field

from . import rdtech, wattsup, wt310


@dataclass
class Faults:
    noise: float = 0.0
    split: float = 0.0
    double: float = 0.0
    truncate: float = 0.0
    corrupt: float = 0.0
    stall: tuple[int, float] | None = None
    disconnect: tuple[int, float] | None = None
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> "Faults":
        """``noise=0.2,split=0.1,stall=5:3,disconnect=10:1,seed=3``; a bare name means probability 0.2."""
        f = cls()
        if not spec:
            return f
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            key, _, value = item.partition("=")
            key = key.strip()
            if key in ("stall", "disconnect"):
                n, _, s = (value or "5:2").partition(":")
                try:
                    setattr(f, key, (int(n), float(s or 2)))
                except ValueError:
                    raise ValueError(f"fault {key} wants FRAME:SECONDS, got {value!r}") from None
            elif key == "seed":
                f.seed = int(value)
            elif key in ("noise", "split", "double", "truncate", "corrupt"):
                p = float(value) if value else 0.2
                if not 0 <= p <= 1:
                    raise ValueError(f"fault {key}: probability must be in [0, 1], got {p}")
                setattr(f, key, p)
            else:
                raise ValueError(f"unknown fault {key!r} (noise, split, double, truncate, corrupt, stall, disconnect, seed)")
        return f


class MeterSimulator:
    """Base: the pty, the thread, fault injection. Subclasses turn requests into frames."""

    meter = "base"

    def __init__(self, faults: Faults | None = None, *, link: str | None = None, watts: float = 5.0,
                 volts: float = 12.0, speed: float = 1.0):
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.base_watts, self.base_volts, self.speed = watts, volts, speed
        self._own_dir = None
        if link is None:
            self._own_dir = tempfile.mkdtemp(prefix="e2train-sim-")
            link = os.path.join(self._own_dir, self.meter)
        self.link = link
        self.sent: list[tuple[float, float, float]] = []  # (watts, volts, amps) of intact frames
        self.frames = 0
        self.requests = 0
        self.log: list[str] = []
        self.reconnected_at: float | None = None  # wall time the pty came back after a disconnect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1

    # --- pty ---------------------------------------------------------------------------------
    def _make_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo, no line discipline: bytes pass unchanged
        tmp = self.link + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(self._slave), tmp)
        os.replace(tmp, self.link)

    def _drop_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        if os.path.lexists(self.link):
            os.unlink(self.link)

    @property
    def port(self) -> str:
        return self.link

    def start(self) -> "MeterSimulator":
        self._make_pty()
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.meter}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._drop_pty()
        if self._own_dir and os.path.isdir(self._own_dir):
            os.rmdir(self._own_dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- values --------------------------------------------------------------------------------
    def next_values(self) -> tuple[float, float]:
        """(volts, amps) of the next frame: a slow wobble around the base power."""
        k = self.frames
        watts = self.base_watts * (1 + 0.1 * math.sin(k / 3))
        return self.base_volts, watts / self.base_volts

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.02)
                data = os.read(self._master, 4096) if ready else b""
            except OSError:  # reader side closed: keep the pty, wait for the next open
                time.sleep(0.02)
                data = b""
            self.handle(data)

    def handle(self, data: bytes) -> None:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except OSError:
            pass

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def send_frame(self, frame: bytes, values: tuple[float, float, float], corrupt) -> None:
        """Send one frame through the fault plan."""
        f, r = self.faults, self.rng
        self.frames += 1
        if f.noise and r.random() < f.noise:
            self._write(bytes(r.randrange(256) for _ in range(r.randrange(1, 40))))
            self.log.append("noise")
        if f.corrupt and r.random() < f.corrupt:
            self._write(corrupt(frame))
            self.log.append("corrupt")
        elif f.truncate and r.random() < f.truncate:
            self._write(frame[: r.randrange(1, len(frame))])
            self._write(frame)
            self.sent.append(values)
            self.log.append("truncate")
        elif f.split and r.random() < f.split:
            cut = r.randrange(1, len(frame))
            self._write(frame[:cut])
            self._sleep(0.03)
            self._write(frame[cut:])
            self.sent.append(values)
            self.log.append("split")
        else:
            self._write(frame)
            self.sent.append(values)
            if f.double and r.random() < f.double:
                self._write(frame)
                self.log.append("double")
        if f.stall and self.frames == f.stall[0]:
            self.log.append("stall")
            self._sleep(f.stall[1])
            self._drain()
        if f.disconnect and self.frames == f.disconnect[0]:
            self.log.append("disconnect")
            self._drop_pty()
            self._sleep(f.disconnect[1])
            self._make_pty()
            self.reconnected_at = time.time()
            self.on_reconnect()

    def _drain(self) -> None:
        """A stalled device heard nothing: forget requests that arrived meanwhile."""
        try:
            while select.select([self._master], [], [], 0)[0]:
                if not os.read(self._master, 4096):
                    break
        except OSError:
            pass

    def on_reconnect(self) -> None:
        pass


class WattsUpSimulator(MeterSimulator):
    """Streams ``#d`` records once ``#L,W,3,E,,<interval>;`` arrives (``speed`` shortens the interval)."""

    meter = "wattsup"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._cmd = bytearray()
        self._interval: float | None = None
        self._next = 0.0
        self.wh = 0.0

    def on_reconnect(self):
        self._interval = None  # a power-cycled meter forgets its logging set-up

    def handle(self, data):
        for b in data:
            if b == 0x23:
                self._cmd = bytearray(b"#")
            elif self._cmd:
                self._cmd.append(b)
                if b == 0x3B:
                    self._command(self._cmd.decode("ascii", "replace"))
                    self._cmd = bytearray()
        if self._interval and time.monotonic() >= self._next:
            self._next = time.monotonic() + self._interval
            volts, amps = self.next_values()
            watts = round(volts * amps, 1)
            self.wh += watts * self._interval * self.speed / 3600
            frame = wattsup.format_record(watts, volts, amps, self.wh)
            self.send_frame(frame, (watts, round(volts, 1), round(amps, 3)), self._corrupt)

    def _command(self, cmd: str) -> None:
        m = re.fullmatch(r"#L,W,3,E,[^,;]*,(\d+);", cmd)
        if m:
            self.requests += 1
            self._interval = max(int(m.group(1)), 1) / self.speed
            self._next = time.monotonic()

    def _corrupt(self, frame: bytes) -> bytes:
        body = bytearray(frame)
        pos = body.index(b",", 9)  # inside the watts field or right after it
        body[pos] = ord("x")  # a field boundary lost: field count and digits no longer check
        return bytes(body)


class UMSimulator(MeterSimulator):
    """Answers each 0xF0 byte with one 130-byte frame of its model."""

    def __init__(self, model: str = "um24c", *a, volts: float = 5.1, watts: float = 2.5, **kw):
        self.meter = model
        self.model = rdtech.MODELS[model]
        super().__init__(*a, volts=volts, watts=watts, **kw)

    def handle(self, data):
        for b in data:
            if b == 0xF0:
                self.requests += 1
                volts, amps = self.next_values()
                frame = rdtech.build_frame(self.model, volts, amps, mwh=self.frames)
                v = round(volts / self.model.volts_lsb) * self.model.volts_lsb
                a = round(amps / self.model.amps_lsb) * self.model.amps_lsb
                self.send_frame(frame, (v * a, v, a), self._corrupt)

    def _corrupt(self, frame: bytes) -> bytes:
        body = bytearray(frame)
        if self.model.checksum:
            body[129] ^= 0x5A
        else:
            body[2] ^= 0x02  # a flipped bit in the voltage: only V x I against P can catch it
        return bytes(body)


class WT310Simulator(MeterSimulator):
    """Takes SCPI set-up lines, answers ``*IDN?`` and ``:NUMeric:NORMal:VALue?`` (any abbreviation)."""

    meter = "wt310"
    _VALUE = re.compile(r":?NUM(ERIC)?(:NORM(AL)?)?:VAL(UE)?\?", re.I)

    def __init__(self, *a, volts: float = 230.0, watts: float = 8.0, **kw):
        super().__init__(*a, volts=volts, watts=watts, **kw)
        self._line = bytearray()
        self.setup: list[str] = []
        self.overrange_every = 0  # answer INF every N-th query (instrument overrange)

    def handle(self, data):
        for b in data:
            if b in (0x0A, 0x0D):
                for unit in self._line.decode("ascii", "replace").strip().split(";"):
                    self._command(unit.strip())
                self._line.clear()
            else:
                self._line.append(b)

    def _command(self, unit: str) -> None:
        if not unit:
            return
        if unit.upper() == "*IDN?":
            self._write(b"YOKOGAWA,WT310,SIM00001,F1.00\n")
        elif self._VALUE.fullmatch(unit):
            self.requests += 1
            volts, amps = self.next_values()
            watts = volts * amps * 0.98  # a power factor below one, as on mains
            line = wt310.format_response(volts, amps, watts)
            parsed = tuple(float(x) for x in line.split(b","))
            if self.overrange_every and self.requests % self.overrange_every == 0:
                self._write(b"INF,INF,INF\n")
                return
            self.send_frame(line, (parsed[2], parsed[0], parsed[1]), self._corrupt)
        else:
            self.setup.append(unit)

    def _corrupt(self, frame: bytes) -> bytes:
        return frame.replace(b",", b";", 1)  # a field separator garbled: two fields instead of three


def make_simulator(meter: str, faults: Faults | None = None, **kw) -> MeterSimulator:
    meter = meter.lower()
    if meter == "wattsup":
        return WattsUpSimulator(faults, **kw)
    if meter in rdtech.MODELS:
        return UMSimulator(meter, faults, **kw)
    if meter == "wt310":
        return WT310Simulator(faults, **kw)
    raise ValueError(f"unknown meter {meter!r}; known: wattsup, um24c, um25c, um34c, wt310")
