"""SCPI power analyzers on a serial line, after the Yokogawa WT310 (WT300E series) command set.

Set-up sent once per connection::

    :COMMunicate:HEADer OFF          responses carry data only
    :NUMeric:FORMat ASCii            values as <NR3> text
    :NUMeric:NORMal:NUMber 3         three items ...
    :NUMeric:NORMal:ITEM1 U,1        ... voltage, current and active power of element 1
    :NUMeric:NORMal:ITEM2 I,1
    :NUMeric:NORMal:ITEM3 P,1

then ``:NUMeric:NORMal:VALue?`` per sample, answered by one line ``<U>,<I>,<P>`` ended by LF, CR LF
or CR (the instrument's terminator setting). In ASCII format the instrument answers ``NAN`` where data do not exist and
``INF`` on overrange, overflow or a data error; such a line is dropped and counted, as is any line
that is not exactly three values (noise on the line, a response cut short and glued to the next), and
one whose values break physics: |P| above |U| |I|, or in DC mode (a negative U or I) P not U I.
"""

from __future__ import annotations

import math
import re
import time

from .sample import DropCounter, Limits, Sample

BAUDRATE = 9600
# CR LF ends each program message: accepted whichever of CR+LF, LF or CR the instrument is set to
# (IEEE 488.2 reads the CR before LF as white space).
SETUP = (
    b":COMMunicate:HEADer OFF\r\n",
    b":NUMeric:FORMat ASCii\r\n",
    b":NUMeric:NORMal:NUMber 3\r\n",
    b":NUMeric:NORMal:ITEM1 U,1\r\n",
    b":NUMeric:NORMal:ITEM2 I,1\r\n",
    b":NUMeric:NORMal:ITEM3 P,1\r\n",
)
QUERY = b":NUMeric:NORMal:VALue?\r\n"
MAX_LINE = 120
CONSISTENCY_REL = 0.02
CONSISTENCY_ABS_W = 0.01
# The largest ranges (600 V, 20 A) with the 140 % display headroom; DC mode can read negative.
LIMITS = Limits(watts=(-12000.0, 12000.0), volts=(-840.0, 840.0), amps=(-28.0, 28.0))
_NUMBER = re.compile(rb"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$")
_ERROR_WORDS = {b"NAN", b"INF", b"+INF", b"-INF"}
_ERROR_VALUE = 9.8e37  # the FLOAT-format markers 9.9E+37 (INF) and 9.91E+37 (NAN), if sent as text


def format_response(volts: float, amps: float, watts: float) -> bytes:
    """One response line as the instrument sends it: <NR3>, five significant digits."""
    return b",".join(f"{v:.4E}".encode("ascii") for v in (volts, amps, watts)) + b"\n"


class WT310Parser:
    """Splits a byte stream into lines and accepts those holding three in-range numbers."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.drops = DropCounter()
        self._line = bytearray()
        self._overlong = False

    def reset(self) -> None:
        if self._line:
            self.drops["incomplete_frame"] += 1
        self._line.clear()
        self._overlong = False

    def feed(self, data: bytes) -> list[Sample]:
        out: list[Sample] = []
        for byte in data:
            if byte in (0x0A, 0x0D):
                if self._overlong:
                    self.drops["bad_frame"] += 1
                else:
                    sample = self._decode(bytes(self._line).strip(b" \t"))
                    if sample is not None:
                        out.append(sample)
                self._line.clear()
                self._overlong = False
            elif len(self._line) >= MAX_LINE:
                self._overlong = True
            else:
                self._line.append(byte)
        return out

    def _decode(self, line: bytes) -> Sample | None:
        if not line:
            return None
        parts = [p.strip() for p in line.split(b",")]
        # exactly the three items set up: a cut line glued to the next one can hold more fields that
        # each look like a number, so a different count is a framing error, not a longer item list
        if len(parts) != 3 or not all(p.upper() in _ERROR_WORDS or _NUMBER.match(p) for p in parts):
            self.drops["bad_frame"] += 1
            return None
        if any(p.upper() in _ERROR_WORDS for p in parts):
            self.drops["overrange"] += 1
            return None
        volts, amps, watts = (float(p) for p in parts)
        if any(abs(v) >= _ERROR_VALUE for v in (volts, amps, watts)):
            self.drops["overrange"] += 1
            return None
        if not LIMITS.check(watts, volts, amps):
            self.drops["out_of_range"] += 1
            return None
        if not _physical(volts, amps, watts):
            self.drops["inconsistent"] += 1
            return None
        return Sample(self.clock(), watts, volts, amps)


def _physical(u: float, i: float, p: float) -> bool:
    """Active power never exceeds apparent power, |P| <= |U| |I|; a negative U or I (DC mode) makes
    P = U I, sign included. Both within the instruments' accuracy plus display resolution."""
    s = abs(u * i)
    slack = CONSISTENCY_REL * s + CONSISTENCY_ABS_W
    if abs(p) > s + slack:
        return False
    if (u < 0 or i < 0) and abs(p - u * i) > slack:
        return False
    return True
