"""The window API: integration by hand, nesting, idle subtraction, a real meter behind it; RAPL and NVML."""

import os
import time

import pytest

from e2train.power.monitor import CounterSource, EnergyMonitor, MeterSource, integrate
from e2train.power.sample import MeterUnavailable, Sample
from e2train.power.serial_meter import open_meter
from e2train.power.simulators import make_simulator
from e2train.power.software import NvmlCounter, RaplCounter


def test_integrate_by_hand():
    s = [Sample(0.0, 10.0), Sample(1.0, 20.0), Sample(3.0, 20.0)]
    assert integrate(s, 0.0, 3.0) == pytest.approx(15.0 + 40.0)
    # edges interpolated: power at 0.5 is 15 W, at 2 it is 20 W
    assert integrate(s, 0.5, 2.0) == pytest.approx(0.5 * (15 + 20) / 2 + 20.0)
    # held flat outside the samples
    assert integrate(s, -1.0, 0.0) == pytest.approx(10.0)
    assert integrate([], 0, 1) is None


class FakeCounter:
    name = "fake"

    def __init__(self):
        self.j = 0.0

    def joules(self):
        return self.j


def test_windows_nest_overlap_and_work_as_context_managers():
    c = FakeCounter()
    t = [0.0]
    mon = EnergyMonitor([CounterSource(c)], clock=lambda: t[0]).start()
    mon.begin_window("run")
    c.j, t[0] = 5.0, 1.0
    with mon.window("epoch") as w:
        c.j, t[0] = 12.0, 3.0
    assert (w.result.joules, w.result.seconds) == (7.0, 2.0)
    c.j, t[0] = 20.0, 4.0
    m = mon.end_window("run")
    assert (m.joules, m.seconds, m.by_source) == (20.0, 4.0, {"fake": 20.0})
    with pytest.raises(ValueError, match="not begun"):
        mon.end_window("run")
    mon.begin_window("x")
    with pytest.raises(ValueError, match="already open"):
        mon.begin_window("x")


def test_idle_baseline_is_subtracted():
    c = FakeCounter()
    mon = EnergyMonitor([CounterSource(c)])
    mon.idle_watts["fake"] = 2.0
    t = [10.0]
    mon.clock = lambda: t[0]
    mon.begin_window("w")
    c.j, t[0] = 30.0, 15.0
    m = mon.end_window("w")
    assert m.joules == pytest.approx(30.0 - 2.0 * 5.0) and m.idle_joules == pytest.approx(10.0)


def test_window_over_a_simulated_meter():
    with make_simulator("um25c", watts=2.5, volts=5.0) as sim:
        src = MeterSource(open_meter("um25c", sim.port, interval_s=0.05))
        with EnergyMonitor([src]) as mon:
            assert src.wait_until(time.time(), 5)
            idle = mon.measure_idle(0.3)
            assert 2.0 < idle["um25c"] < 3.0
            mon.idle_watts.clear()
            mon.begin_window("w")
            time.sleep(1.0)
            m = mon.end_window("w")
    # the simulator's power wobbles +-10 % around 2.5 W
    assert 2.2 * m.seconds < m.joules < 2.8 * m.seconds


def _fake_rapl(root, energy, max_range):
    z = root / "intel-rapl:0"
    z.mkdir(parents=True, exist_ok=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text(f"{energy}\n")
    (z / "max_energy_range_uj").write_text(f"{max_range}\n")
    sub = root / "intel-rapl:0:0"
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("999\n")  # a sub-zone: must not be added again
    return z


def test_rapl_counter_handles_wrap_around(tmp_path):
    z = _fake_rapl(tmp_path, 999_000_000, 1_000_000_000)
    rapl = RaplCounter(str(tmp_path))
    assert rapl.zones == [str(z)]
    (z / "energy_uj").write_text("999_500_000".replace("_", ""))
    assert rapl.joules() == pytest.approx(0.5)
    (z / "energy_uj").write_text("1500000")  # wrapped past 1e9
    assert rapl.joules() == pytest.approx(0.5 + (1_000_000_000 - 999_500_000 + 1 + 1_500_000) / 1e6)


def test_software_meters_absent_give_a_clear_reason(tmp_path):
    with pytest.raises(MeterUnavailable, match="no intel-rapl zones"):
        RaplCounter(str(tmp_path))
    z = _fake_rapl(tmp_path, 1, 10)
    if os.geteuid() != 0:
        os.chmod(z / "energy_uj", 0)
        with pytest.raises(MeterUnavailable, match="not readable"):
            RaplCounter(str(tmp_path))
    try:
        nv = NvmlCounter()
    except MeterUnavailable as exc:
        assert str(exc).startswith("NVML: ")
    else:  # a machine with a GPU and the gpu extra
        assert nv.joules() >= 0.0


@pytest.mark.gpu
def test_nvml_counts_energy_on_a_gpu():
    nv = NvmlCounter()
    e0 = nv.joules()
    time.sleep(0.5)
    assert nv.joules() - e0 > 0.0
