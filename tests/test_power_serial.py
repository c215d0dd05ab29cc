"""Each reader against its simulator over a real pseudo-terminal, with faults injected on the wire."""

import time

import pytest

from e2train.power import rdtech, wattsup, wt310
from e2train.power.sample import MeterError
from e2train.power.serial_meter import open_meter
from e2train.power.simulators import Faults, make_simulator

LIMITS = {"wattsup": wattsup.LIMITS, "wt310": wt310.LIMITS, **{k: m.limits for k, m in rdtech.MODELS.items()}}
# what a corrupted frame must be caught as, per meter
CORRUPT_COUNTER = {"wattsup": "bad_frame", "um24c": "inconsistent", "um25c": "inconsistent",
                   "um34c": "bad_checksum", "wt310": "bad_frame"}


def _reader(name, port):
    if name == "wattsup":  # the simulator runs the 1 s logging interval 20 times faster
        return open_meter(name, port, interval_s=1, stall_s=0.4, reconnect_s=0.05)
    return open_meter(name, port, interval_s=0.04, stall_s=0.4, reconnect_s=0.05)


def _same(sample, sent):
    return any(abs(sample.watts - w) < 1e-6 and abs(sample.volts - v) < 1e-9 and abs(sample.amps - a) < 1e-9
               for w, v, a in sent)


@pytest.mark.parametrize("name", ["wattsup", "um24c", "um25c", "um34c", "wt310"])
def test_reader_survives_every_fault(name):
    faults = Faults.parse("noise=0.3,split=0.3,double=0.2,truncate=0.2,corrupt=0.3,stall=8:0.8,disconnect=16:0.4,seed=7")
    with make_simulator(name, faults, speed=20) as sim:
        meter = _reader(name, sim.port)
        got = []
        t_end = time.monotonic() + 15
        for s in meter.samples(duration_s=15):
            got.append(s)
            if sim.frames >= 30 or time.monotonic() > t_end:
                break
        meter.close()
    drops = meter.drops
    assert {"noise", "split", "double", "truncate", "corrupt", "stall", "disconnect"} <= set(sim.log)
    # nothing reported that was not sent intact, nothing out of range
    assert all(_same(s, sim.sent) for s in got), [s for s in got if not _same(s, sim.sent)]
    assert all(LIMITS[name].check(s.watts, s.volts, s.amps) for s in got)
    # it kept reading through the stall and after the disconnect, and counted what it threw away
    assert drops["stalls"] >= 1 and drops["disconnects"] >= 1 and drops["connections"] >= 2
    assert drops[CORRUPT_COUNTER[name]] >= 1
    assert drops["garbage_bytes"] + drops["bad_frame"] >= 1
    assert len(got) >= 15
    assert sum(s.time_s > sim.reconnected_at for s in got) >= 5  # reading resumed after the disconnect
    # times are increasing: no sample replayed from before a reconnect
    assert all(a.time_s <= b.time_s for a, b in zip(got, got[1:]))


def test_wt310_reader_sends_the_item_setup_and_skips_overrange():
    with make_simulator("wt310") as sim:
        sim.overrange_every = 3
        meter = _reader("wt310", sim.port)
        got = []
        for s in meter.samples(duration_s=5):
            got.append(s)
            if len(got) >= 6:
                break
        meter.close()
    assert ":NUMeric:NORMal:ITEM3 P,1" in sim.setup and ":NUMeric:FORMat ASCii" in sim.setup
    assert meter.drops["overrange"] >= 2
    assert all(abs(s.watts - 0.98 * s.volts * s.amps) < 1e-3 * s.watts for s in got)


def test_a_port_that_never_opens_is_a_clear_error(tmp_path):
    meter = open_meter("um25c", str(tmp_path / "no-such-port"), reconnect_s=0.05)
    with pytest.raises(MeterError, match="cannot open serial port"):
        list(meter.samples(duration_s=5, first_open_timeout_s=0.3))


def test_unknown_meter_and_bad_interval():
    with pytest.raises(MeterError, match="unknown meter"):
        open_meter("fluke", "/dev/null")
    with pytest.raises(ValueError, match="whole seconds"):
        open_meter("wattsup", "/dev/null", interval_s=0.5)


def test_fault_spec_parsing():
    f = Faults.parse("noise,stall=3:1.5,seed=4")
    assert f.noise == 0.2 and f.stall == (3, 1.5) and f.seed == 4
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.parse("lightning=1")
    with pytest.raises(ValueError, match="probability"):
        Faults.parse("noise=2")
