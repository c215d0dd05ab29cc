"""RDTech UM24C / UM25C / UM34C USB meters: one 0xF0 byte requests a 130-byte big-endian frame, 9600 8N1.

Frame layout (offsets in bytes, big-endian):

====== ======= =====================================================================
offset size    field
====== ======= =====================================================================
0      2       model id: UM24C 0x0963, UM25C 0x09C9, UM34C 0x0D4C
2      2       voltage: 0.01 V (UM24C, UM34C), 0.001 V (UM25C)
4      2       current: 0.001 A (UM24C, UM34C), 0.0001 A (UM25C)
6      4       power, 0.001 W
10     2       temperature, degrees C
12     2       temperature, degrees F
14     2       selected data group
16     80      10 data groups of (mAh u32, mWh u32)
96     2       D+ voltage, 0.01 V
98     2       D- voltage, 0.01 V
100    2       charging mode
102    4       threshold recording: mAh
106    4       threshold recording: mWh
110    2       recording threshold current, 0.01 A
112    4       recording duration, s
116    2       recording active
118    2       screen timeout, min
120    2       backlight
122    4       load resistance, 0.1 ohm
126    2       current screen
128    2       end marker 0xFFF1 (UM24C, UM25C); UM34C: byte 129 is a checksum, the XOR of
               the bytes at CHECKSUM_POSITIONS
====== ======= =====================================================================

The UM24C and UM25C frames carry no checksum, so a frame is accepted only if its id and end marker
match (a UM34C frame: its checksum, or failing that the UM24C's end marker, counted as unchecked), its voltage and current lie in the model's range, and its power field agrees with V x I
(a corrupted byte in V, I or P then shows up as a mismatch; a change of V or I below 1 % cannot
be told from a true reading in these two models, which is the protocol's limit, not the parser's). Resynchronisation slides one byte at a
time to the next model id after any rejected frame.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from .sample import DropCounter, Limits, Sample

BAUDRATE = 9600
FRAME_LEN = 130
REQUEST = b"\xf0"
END_MARKER = 0xFFF1
# Bytes XORed into the UM34C checksum (byte 129), as observed on the device.
CHECKSUM_POSITIONS = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79,
                      83, 89, 97, 99, 109, 111, 113, 119, 121, 127)  # fmt: skip


@dataclass(frozen=True)
class UMModel:
    name: str
    model_id: int
    volts_lsb: float
    amps_lsb: float
    max_volts: float
    max_amps: float
    checksum: bool  # UM34C: XOR byte instead of the end marker

    @property
    def limits(self) -> Limits:
        return Limits(watts=(0.0, self.max_volts * self.max_amps), volts=(0.0, self.max_volts), amps=(0.0, self.max_amps))


# Measuring ranges from the data sheets: 4.5-24 V; 3 A (UM24C), 5 A (UM25C), 4 A (UM34C).
MODELS = {
    "um24c": UMModel("UM24C", 0x0963, 0.01, 0.001, 24.0, 3.0, False),
    "um25c": UMModel("UM25C", 0x09C9, 0.001, 0.0001, 24.0, 5.0, False),
    "um34c": UMModel("UM34C", 0x0D4C, 0.01, 0.001, 24.0, 4.0, True),
}
POWER_TOLERANCE_W = 0.01  # the device's own rounding of V x I stays far inside this
POWER_TOLERANCE_REL = 0.01


def checksum_um34c(frame: bytes) -> int:
    c = 0
    for pos in CHECKSUM_POSITIONS:
        c ^= frame[pos]
    return c


def build_frame(model: UMModel, volts: float, amps: float, mwh: int = 0, temp_c: int = 25) -> bytes:
    """A frame as the meter sends it (used by the simulator and the tests)."""
    v_raw = round(volts / model.volts_lsb)
    a_raw = round(amps / model.amps_lsb)
    p_raw = round(v_raw * model.volts_lsb * a_raw * model.amps_lsb * 1000)
    buf = bytearray(FRAME_LEN)
    struct.pack_into(">HHHIHH", buf, 0, model.model_id, v_raw, a_raw, p_raw, temp_c, round(temp_c * 9 / 5 + 32))
    struct.pack_into(">II", buf, 16, 0, mwh)  # data group 0
    struct.pack_into(">HH", buf, 96, 60, 60)  # D+ / D- 0.60 V
    struct.pack_into(">I", buf, 106, mwh)
    struct.pack_into(">HH", buf, 118, 1, 5)
    struct.pack_into(">I", buf, 122, min(round(volts / max(amps, 1e-3) * 10), 0xFFFFFFFF))
    struct.pack_into(">H", buf, 128, END_MARKER)
    if model.checksum:
        buf[129] = checksum_um34c(buf)
    return bytes(buf)


class UMParser:
    """Finds and validates frames of one model in a byte stream; feed it any chunking."""

    def __init__(self, model: str | UMModel, clock=time.time):
        self.model = MODELS[model] if isinstance(model, str) else model
        self.clock = clock
        self.drops = DropCounter()
        self._buf = bytearray()
        self._id = struct.pack(">H", self.model.model_id)

    def reset(self) -> None:
        if self._buf:
            self.drops["incomplete_frame"] += 1
            self.drops["garbage_bytes"] += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Sample]:
        self._buf += data
        out: list[Sample] = []
        while True:
            start = self._buf.find(self._id)
            if start < 0:  # keep a trailing first id byte: the id may be split across reads
                keep = 1 if self._buf[-1:] == self._id[:1] else 0
                self.drops["garbage_bytes"] += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if start:
                self.drops["garbage_bytes"] += start
                del self._buf[:start]
            if len(self._buf) < FRAME_LEN:
                return out
            frame = bytes(self._buf[:FRAME_LEN])
            sample = self._decode(frame)
            if sample is None:  # not a frame after all: slide one byte and look again
                self.drops["garbage_bytes"] += 1
                del self._buf[:1]
            else:
                del self._buf[:FRAME_LEN]
                out.append(sample)

    def _decode(self, frame: bytes) -> Sample | None:
        m = self.model
        marker_ok = struct.unpack_from(">H", frame, 128)[0] == END_MARKER
        if m.checksum and checksum_um34c(frame) != frame[129]:
            if not marker_ok:
                self.drops["bad_checksum"] += 1
                return None
            # the UM24C's end marker in a UM34C frame: firmware (or an emulator) without the checksum.
            # Accepted under the UM24C's checks, and counted.
            self.drops["unchecked_frames"] += 1
        elif not m.checksum and not marker_ok:
            self.drops["bad_frame"] += 1
            return None
        v_raw, a_raw, p_raw = struct.unpack_from(">HHI", frame, 2)
        volts, amps, p_field = v_raw * m.volts_lsb, a_raw * m.amps_lsb, p_raw / 1000
        watts = volts * amps
        if not m.limits.check(watts, volts, amps):
            self.drops["out_of_range"] += 1
            return None
        if abs(p_field - watts) > POWER_TOLERANCE_W + POWER_TOLERANCE_REL * watts:
            self.drops["inconsistent"] += 1
            return None
        return Sample(self.clock(), watts, volts, amps)
