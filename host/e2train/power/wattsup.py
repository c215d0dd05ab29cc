"""Watts Up? PRO: ASCII packets ``#cmd,sub,n,arg1,...,argn;`` at 115200 8N1.

``#L,W,3,E,,<interval>;`` starts external logging: the meter then sends one ``#d`` record every
<interval> seconds. A ``#d`` record has a header (``d``, a sub-command character, the argument count
18) and 18 fields: W, V, A, WH, Cost, WH/Mo, Cost/Mo, Wmax, Vmax, Amax, Wmin, Vmin, Amin, PF, DC, PC,
Hz, VA. Watts and volts are tenths, amps thousandths. Fields the meter does not fill read ``_``.
Only a well-formed record is accepted: exactly 18 fields, W/V/A plain decimal integers, the rest
integers or ``_``, values in range. Characters outside a packet are ignored (the protocol says so).
"""

from __future__ import annotations

import time

from .sample import DropCounter, Limits, Sample

BAUDRATE = 115200
N_FIELDS = 18
MAX_PACKET = 160  # 18 fields of at most 7 digits plus header: anything longer is not one packet
# The protocol document's ranges: W 0-5000, V up to 280, A 0-20 (its lower voltage bound, 90 V, is
# not enforced: a reading of a meter on a lower supply is still a reading).
LIMITS = Limits(watts=(0.0, 5000.0), volts=(0.0, 280.0), amps=(0.0, 20.0))


def logging_command(interval_s: int) -> bytes:
    """The command that starts external logging every ``interval_s`` seconds (an integer >= 1)."""
    if int(interval_s) != interval_s or interval_s < 1:
        raise ValueError(f"Watts Up? logs at whole seconds >= 1, got {interval_s}")
    return f"#L,W,3,E,,{int(interval_s)};".encode("ascii")


def format_record(watts: float, volts: float, amps: float, wh: float = 0.0) -> bytes:
    """A ``#d`` record as the meter sends it (used by the simulator and the tests)."""
    fields = [
        round(watts * 10), round(volts * 10), round(amps * 1000), round(wh * 10),
        0, 0, 0, round(watts * 10), round(volts * 10), round(amps * 1000),
        round(watts * 10), round(volts * 10), round(amps * 1000), 100, 100, 100, 600, round(volts * amps * 10),
    ]
    return ("#d,-,18," + ",".join(str(f) for f in fields) + ";").encode("ascii")


def _is_int(s: str) -> bool:
    return 0 < len(s) <= 9 and s.isascii() and s.isdigit()


class WattsUpParser:
    """Turns a byte stream into samples; feed it any chunking of the stream."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.drops = DropCounter()
        self._packet: bytearray | None = None  # bytes after '#', None outside a packet

    def reset(self) -> None:
        if self._packet:
            self.drops["incomplete_frame"] += 1
        self._packet = None

    def feed(self, data: bytes) -> list[Sample]:
        out: list[Sample] = []
        for byte in data:
            if byte == 0x23:  # '#': a packet starts (a previous unfinished one is lost)
                if self._packet is not None:
                    self.drops["bad_frame"] += 1
                self._packet = bytearray()
            elif self._packet is None:
                self.drops["garbage_bytes"] += 1
            elif byte == 0x3B:  # ';'
                sample = self._decode(bytes(self._packet))
                self._packet = None
                if sample is not None:
                    out.append(sample)
            elif len(self._packet) >= MAX_PACKET or not 0x20 <= byte < 0x7F:
                self.drops["bad_frame"] += 1
                self._packet = None
            else:
                self._packet.append(byte)
        return out

    def _decode(self, body: bytes) -> Sample | None:
        parts = body.decode("ascii").split(",")
        if not parts or parts[0] != "d":
            self.drops["other_packets"] += 1  # replies to other commands: not errors, not data
            return None
        if len(parts) != 3 + N_FIELDS or len(parts[1]) != 1 or parts[2] != str(N_FIELDS):
            self.drops["bad_frame"] += 1
            return None
        fields = parts[3:]
        if not all(_is_int(f) for f in fields[:3]) or not all(_is_int(f) or f == "_" for f in fields[3:]):
            self.drops["bad_frame"] += 1
            return None
        watts, volts, amps = int(fields[0]) / 10, int(fields[1]) / 10, int(fields[2]) / 1000
        if not LIMITS.check(watts, volts, amps):
            self.drops["out_of_range"] += 1
            return None
        return Sample(self.clock(), watts, volts, amps)
