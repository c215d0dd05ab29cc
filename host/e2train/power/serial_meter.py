"""Reading a serial meter for hours: open, set up, poll, resynchronise after stalls, reopen after a disconnect.

One class per meter says only what differs: its parser, what it sends on connecting and what it sends
per sample. The loop here owns the failure handling, so every meter recovers the same way:

* garbage, split, doubled or corrupt frames: the parser skips and counts them;
* a stall (no valid sample for ``stall_s``): the port is closed and opened again and the set-up resent;
* a disconnect (read or write fails, the device node vanished): the port is reopened every
  ``reconnect_s`` until it is back; nothing already read is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import serial

from . import rdtech, wattsup, wt310
from .sample import DropCounter, MeterError, Sample

READ_SLICE_S = 0.05  # longest a read blocks, so that polls and stops stay timely


class SerialMeter:
    """Base class: subclasses set ``name``, ``baudrate``, ``columns`` and the three hooks."""

    name = "serial"
    baudrate = 9600
    columns = ("watts", "volts", "amps")

    def __init__(self, port: str, *, interval_s: float = 1.0, stall_s: float | None = None,
                 reconnect_s: float = 0.5, baudrate: int | None = None, first_open_timeout_s: float = 10.0,
                 clock=time.time):
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, got {interval_s}")
        self.port = port
        if baudrate is not None:
            self.baudrate = baudrate  # instruments with a configurable line speed (WT310)
        self.interval_s = interval_s
        self.stall_s = stall_s if stall_s is not None else max(3 * interval_s, 2.0)
        self.reconnect_s = reconnect_s
        self.first_open_timeout_s = first_open_timeout_s  # grace for a device still being plugged in
        self.clock = clock
        self.parser = self.make_parser()
        self.events = DropCounter()  # connections, disconnects, stalls, failed opens
        self._ser: serial.Serial | None = None

    # --- hooks -------------------------------------------------------------------------------
    def make_parser(self):
        raise NotImplementedError

    def on_connect(self, ser: serial.Serial) -> None:
        """Bytes to send after (re)opening the port."""

    def request(self) -> bytes | None:
        """Bytes that ask for one sample (None for meters that stream on their own)."""
        return None

    # --- the loop ------------------------------------------------------------------------------
    @property
    def drops(self) -> DropCounter:
        """Everything dropped or survived so far: the parser's counts and the connection events."""
        total = DropCounter(self.parser.drops)
        total.update(self.events)
        return total

    def _open(self) -> bool:
        try:
            self._ser = serial.Serial(self.port, self.baudrate, bytesize=8, parity="N", stopbits=1,
                                      timeout=READ_SLICE_S, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError):
            self.events["failed_opens"] += 1
            self._ser = None
            return False
        self.events["connections"] += 1
        self.parser.reset()
        try:
            self.on_connect(self._ser)
        except (serial.SerialException, OSError):
            self._close()
            return False
        return True

    def _close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass
        self._ser = None

    def close(self) -> None:
        self._close()

    def samples(self, duration_s: float | None = None, stop: threading.Event | None = None,
                first_open_timeout_s: float | None = None) -> Iterator[Sample]:
        """Yield samples until ``duration_s`` passes or ``stop`` is set. Raises MeterError only when the
        port never opened within ``first_open_timeout_s``; later failures are recovered from."""
        if first_open_timeout_s is None:
            first_open_timeout_s = self.first_open_timeout_s
        t_start = time.monotonic()
        ever_open = False
        next_poll = 0.0
        last_good = time.monotonic()
        try:
            while not (stop is not None and stop.is_set()):
                now = time.monotonic()
                if duration_s is not None and now - t_start >= duration_s:
                    return
                if self._ser is None:
                    if self._open():
                        ever_open = True
                        last_good = next_poll = time.monotonic()
                    else:
                        if not ever_open and now - t_start > first_open_timeout_s:
                            raise MeterError(f"{self.name}: cannot open serial port {self.port!r}")
                        time.sleep(self.reconnect_s)
                    continue
                try:
                    req = self.request()
                    if req is not None and now >= next_poll:
                        self._ser.write(req)
                        next_poll = max(next_poll + self.interval_s, now)
                    data = self._ser.read(max(1, self._ser.in_waiting))
                except (serial.SerialException, OSError):
                    self.events["disconnects"] += 1
                    self._close()
                    continue
                for sample in self.parser.feed(data):
                    last_good = time.monotonic()
                    yield sample
                if time.monotonic() - last_good > self.stall_s:
                    self.events["stalls"] += 1  # silent or only garbage: start the conversation again
                    self._close()
        finally:
            self._close()


class WattsUpMeter(SerialMeter):
    name = "wattsup"
    baudrate = wattsup.BAUDRATE

    def __init__(self, port: str, *, interval_s: float = 1.0, **kw):
        if interval_s < 1 or int(interval_s) != interval_s:
            raise ValueError(f"Watts Up? logs at whole seconds >= 1, got {interval_s}")
        kw.setdefault("stall_s", 3 * interval_s + 1)
        super().__init__(port, interval_s=interval_s, **kw)

    def make_parser(self):
        return wattsup.WattsUpParser(self.clock)

    def on_connect(self, ser):
        ser.write(wattsup.logging_command(int(self.interval_s)))


class UMMeter(SerialMeter):
    baudrate = rdtech.BAUDRATE
    model = "um24c"

    def __init__(self, port: str, **kw):
        self.name = self.model
        super().__init__(port, **kw)

    def make_parser(self):
        return rdtech.UMParser(self.model, self.clock)

    def request(self):
        return rdtech.REQUEST


class UM24CMeter(UMMeter):
    model = "um24c"


class UM25CMeter(UMMeter):
    model = "um25c"


class UM34CMeter(UMMeter):
    model = "um34c"


class WT310Meter(SerialMeter):
    name = "wt310"
    baudrate = wt310.BAUDRATE

    def make_parser(self):
        return wt310.WT310Parser(self.clock)

    def on_connect(self, ser):
        for line in wt310.SETUP:
            ser.write(line)

    def request(self):
        return wt310.QUERY


METERS: dict[str, type[SerialMeter]] = {
    "wattsup": WattsUpMeter,
    "um24c": UM24CMeter,
    "um25c": UM25CMeter,
    "um34c": UM34CMeter,
    "wt310": WT310Meter,
}


def open_meter(name: str, port: str, **kw) -> SerialMeter:
    try:
        cls = METERS[name.lower()]
    except KeyError:
        raise MeterError(f"unknown meter {name!r}; known: {', '.join(METERS)}") from None
    return cls(port, **kw)
