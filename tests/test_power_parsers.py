"""The three wire-protocol parsers on byte streams: known frames, faults, and random bytes (hypothesis)."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from e2train.power import rdtech, wattsup, wt310
from e2train.power.rdtech import MODELS, UMParser, build_frame, checksum_um34c
from e2train.power.wattsup import WattsUpParser, format_record
from e2train.power.wt310 import WT310Parser, format_response


def clock():
    return 1.0


# --- Watts Up? PRO -------------------------------------------------------------------------------------
def test_wattsup_record_decodes_tenths_and_thousandths():
    rec = b"#d,-,18,1234,1187,104,5,_,_,_,1300,1190,110,1200,1180,100,99,100,0,600,1234;"
    [s] = WattsUpParser(clock).feed(rec)
    assert (s.watts, s.volts, s.amps) == (123.4, 118.7, 0.104)


def test_wattsup_resyncs_after_noise_split_and_a_broken_packet():
    p = WattsUpParser(clock)
    good = format_record(50.0, 120.0, 0.42)
    broken = good[:30]  # cut short: the next '#' abandons it
    stream = b"\x00\xffjunk" + broken + good + b"zz" + good
    got = []
    for i in range(0, len(stream), 7):  # every split point of a 7-byte chunking
        got += p.feed(stream[i:i + 7])
    assert [(s.watts, s.volts, s.amps) for s in got] == [(50.0, 120.0, 0.42)] * 2
    assert p.drops["bad_frame"] == 1 and p.drops["garbage_bytes"] == len(b"\x00\xffjunk") + 2


def test_wattsup_rejects_wrong_count_non_digits_and_out_of_range():
    p = WattsUpParser(clock)
    fields = ["100"] * 18
    assert p.feed(("#d,-,17," + ",".join(fields[:17]) + ";").encode()) == []
    assert p.feed(("#d,-,18," + ",".join(["1x0"] + fields[1:]) + ";").encode()) == []
    assert p.feed(("#d,-,18," + ",".join(["99999"] + fields[1:]) + ";").encode()) == []  # 9999.9 W
    assert p.feed(("#d,-,18,," + ",".join(fields[1:]) + ";").encode()) == []  # empty argument
    assert p.drops["bad_frame"] == 3 and p.drops["out_of_range"] == 1
    assert p.feed(b"#v,-,2,PRO,1;") == [] and p.drops["other_packets"] == 1


def test_wattsup_logging_command():
    assert wattsup.logging_command(1) == b"#L,W,3,E,,1;"
    try:
        wattsup.logging_command(0.5)
    except ValueError as exc:
        assert "whole seconds" in str(exc)
    else:
        raise AssertionError("a fractional interval must be refused")


# --- RDTech UM -----------------------------------------------------------------------------------------
def test_um_frame_layout_and_scaling_per_model():
    for name, (v, a) in {"um24c": (5.12, 1.234), "um25c": (5.123, 1.2345), "um34c": (9.0, 2.5)}.items():
        m = MODELS[name]
        f = build_frame(m, v, a)
        assert len(f) == 130 and struct.unpack(">H", f[:2])[0] == m.model_id
        [s] = UMParser(name, clock).feed(f)
        assert abs(s.volts - v) < 1e-9 and abs(s.amps - a) < 1e-9 and abs(s.watts - v * a) < 1e-9
    # the UM25C's finer LSB: 5.123 V is raw 5123, the UM24C's 5.12 V is raw 512
    assert struct.unpack(">H", build_frame(MODELS["um25c"], 5.123, 1.0)[2:4])[0] == 5123
    assert struct.unpack(">H", build_frame(MODELS["um24c"], 5.12, 1.0)[2:4])[0] == 512


def test_um34c_checksum_is_checked():
    f = bytearray(build_frame(MODELS["um34c"], 5.0, 1.0))
    assert f[129] == checksum_um34c(f)
    f[15] ^= 1  # byte 15 is one of the summed positions
    p = UMParser("um34c", clock)
    assert p.feed(bytes(f)) == [] and p.drops["bad_checksum"] == 1
    # a UM34C frame ending in the UM24C's 0xFFF1 instead of a checksum: accepted, counted as unchecked
    g = bytearray(build_frame(MODELS["um34c"], 5.0, 1.0))
    g[128:130] = b"\xff\xf1"
    assert checksum_um34c(g) != 0xF1
    [s] = p.feed(bytes(g))
    assert (s.volts, s.amps) == (5.0, 1.0) and p.drops["unchecked_frames"] == 1


def test_um_resyncs_after_truncated_doubled_and_corrupt_frames():
    m = MODELS["um24c"]
    good = build_frame(m, 5.0, 0.5)
    bad_marker = good[:128] + b"\x00\x00"
    bad_volts = bytearray(good)
    bad_volts[2] ^= 0x02  # 5.12 V more: V x I no longer matches the power field
    stream = b"\x09\x63\x01" + good[:77] + good + good + bad_marker + bytes(bad_volts) + b"\xf0" * 5 + good
    p = UMParser("um24c", clock)
    got = []
    for i in range(0, len(stream), 13):
        got += p.feed(stream[i:i + 13])
    assert [(s.volts, s.amps) for s in got] == [(5.0, 0.5)] * 3
    assert p.drops["bad_frame"] >= 1 and p.drops["inconsistent"] == 1


def test_um_range_is_per_model():
    # 4.5 A is inside the UM25C's 5 A range and outside the UM24C's 3 A
    assert UMParser("um25c", clock).feed(build_frame(MODELS["um25c"], 5.0, 4.5))
    p = UMParser("um24c", clock)
    assert p.feed(build_frame(MODELS["um24c"], 5.0, 4.5)) == [] and p.drops["out_of_range"] == 1


# --- WT310 ---------------------------------------------------------------------------------------------
def test_wt310_lines():
    p = WT310Parser(clock)
    [s] = p.feed(b"230.05E+00,34.567E-03,7.9500E+00\r\n")
    assert (s.volts, s.amps, s.watts) == (230.05, 0.034567, 7.95)
    assert len(p.feed(b"1.0E+01,2.0E-01,2.0E+00\r1.0E+01,2.0E-01,2.0E+00\n")) == 2  # CR or LF terminators
    assert p.feed(b"NAN,NAN,NAN\nINF,1.0E+00,2.0E+00\n9.91E+37,1.0,1.0\n") == []
    assert p.drops["overrange"] == 3
    assert p.feed(b"\x13\x111.0E+00,2.0E+00,2.0E+00\n1.0E+00,2.0E+00\n1.0E+04,1.0,1.0\n1.0,2.0,2.0,x\n") == []
    assert p.drops["bad_frame"] == 3 and p.drops["out_of_range"] == 1
    # a response cut short and glued to the next one: five fields that each parse, refused as a whole
    assert p.feed(b"2.3000E+02,3.4957E-02,72.3000E+02,3.4957E-02,7.2300E+00\n") == []
    assert p.drops["bad_frame"] == 4
    # noise ending in a line feed and a minus sign glued onto the next response's voltage: in range,
    # but a negative U needs P = U I, which the positive P is not
    assert p.feed(b"-2.3000E+02,3.4957E-02,7.9000E+00\n9.0E+01,1.0E+00,9.5E+01\n") == []
    assert p.drops["inconsistent"] == 2  # the second: P above U x I
    [s] = p.feed(b"-1.2000E+01,-5.0000E-01,6.0000E+00\n")  # DC with both negative: P = U I = +6 W
    assert s.watts == 6.0
    line = format_response(230.0, 0.0345, 7.77)
    assert line == b"2.3000E+02,3.4500E-02,7.7700E+00\n" and len(p.feed(line[:5]) + p.feed(line[5:])) == 1


# --- properties: arbitrary bytes never crash a parser nor give an out-of-range value --------------------
PARSERS = {
    "wattsup": (lambda: WattsUpParser(clock), wattsup.LIMITS),
    "um24c": (lambda: UMParser("um24c", clock), MODELS["um24c"].limits),
    "um25c": (lambda: UMParser("um25c", clock), MODELS["um25c"].limits),
    "um34c": (lambda: UMParser("um34c", clock), MODELS["um34c"].limits),
    "wt310": (lambda: WT310Parser(clock), wt310.LIMITS),
}
FRAMES = {
    "wattsup": lambda v, a: format_record(round(v * a, 1), v, a),
    "um24c": lambda v, a: build_frame(MODELS["um24c"], v, min(a, 3.0)),
    "um25c": lambda v, a: build_frame(MODELS["um25c"], v, a),
    "um34c": lambda v, a: build_frame(MODELS["um34c"], v, min(a, 4.0)),
    "wt310": lambda v, a: format_response(v, a, v * a),
}
chunks = st.lists(st.binary(max_size=300), max_size=12)
frame_bits = st.lists(st.tuples(st.floats(4.5, 24.0), st.floats(0.0, 5.0), st.binary(max_size=40),
                                st.integers(0, 129)), max_size=5)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), data=chunks)
def test_random_bytes_never_crash_nor_leave_range(name, data):
    make, limits = PARSERS[name]
    p = make()
    for chunk in data:
        for s in p.feed(chunk):
            assert limits.check(s.watts, s.volts, s.amps)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), parts=frame_bits, flips=st.lists(st.integers(0, 10_000), max_size=6))
def test_valid_frames_with_garbage_and_bit_flips_stay_in_range(name, parts, flips):
    """Real frames cut at random points, with garbage between them and random bits flipped."""
    make, limits = PARSERS[name]
    stream = bytearray()
    for v, a, junk, _ in parts:
        stream += junk + FRAMES[name](v, a)
    for f in flips:
        if stream:
            stream[f % len(stream)] ^= 1 << (f % 8)
    p = make()
    cuts = sorted({c % (len(stream) + 1) for _, _, _, c in parts})
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        for s in p.feed(bytes(stream[a:b])):
            assert limits.check(s.watts, s.volts, s.amps)


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.tuples(st.floats(4.5, 24.0), st.floats(0.0, 3.0),
                                st.binary(max_size=30).filter(lambda b: 0x09 not in b)), min_size=1, max_size=5))
def test_um_frames_after_garbage_are_all_recovered(parts):
    stream = b"".join(junk + build_frame(MODELS["um24c"], v, a) for v, a, junk in parts)
    got = UMParser("um24c", clock).feed(stream)
    assert len(got) == len(parts)
