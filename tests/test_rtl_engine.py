"""The PSG weight-gradient engine (hw/rtl) against the reference fabric, in cocotb simulations.

Each entry point builds the RTL with one parameter set and runs every test of sim/tb_psg_engine.py:
whole layers in mode psg with random stalls on both input streams and backpressure on the output,
both mappings of the weights onto the PEs (row and diagonal), pass 2 skipped when every weight is
confident, mode full, operands at the edges of the contract-v2 MSB rounding (ties, the saturated
top codes, the most negative values) in modes psg and full on both mappings, a layer split into
tiles (probe, then psg with the layer's max), a reset in the middle of each pass, refused arguments,
a TLAST framing error, the interrupt registers and CONTRACT_VERSION. Signs, G_full, the predicted
count and the MAC counters are compared exactly.
"""

import pytest

from rtl_helpers import cocotb_run, need_simulator, run_or_fail

SMALL = {"P": 4, "OMAX": 8, "KMAX": 36, "XPB": 8, "GPB": 4}

# parameter sweep: PE count, tile sizes and stream widths (beats narrower and wider than a block)
SWEEP = [
    {"P": 2, "OMAX": 3, "KMAX": 9, "XPB": 1, "GPB": 1},
    {"P": 8, "OMAX": 16, "KMAX": 27, "XPB": 4, "GPB": 2, "KDIAG": 18},  # K 19..27 takes the row mapping
]
SWEEP_SLOW = [
    {"P": 16, "OMAX": 5, "KMAX": 144, "XPB": 8, "GPB": 4},
    {"P": 4, "OMAX": 32, "KMAX": 18, "XPB": 2, "GPB": 8},
]


def _run(sim, params, stall, seed=1):
    need_simulator(sim)
    return run_or_fail(top="psg_wgrad_engine", sources=cocotb_run.ENGINE_SOURCES, test_module="tb_psg_engine",
                       sim=sim, parameters=params, extra_env={"PSG_STALL": stall, "PSG_SEED": seed})


@pytest.mark.rtl
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_engine_small_config(sim):
    res = _run(sim, SMALL, stall=0.3)
    assert "test_reset_mid_job" in res["tests"] and "test_psg_layers" in res["tests"]


@pytest.mark.rtl
@pytest.mark.parametrize("params", SWEEP, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_engine_parameter_sweep(params):
    _run("verilator", params, stall=0.2, seed=3)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("params", SWEEP_SLOW, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_engine_parameter_sweep_slow(params):
    _run("verilator", params, stall=0.5, seed=4)


@pytest.mark.rtl
@pytest.mark.slow
def test_engine_default_parameters():
    _run("verilator", dict(cocotb_run.ENGINE_DEFAULTS), stall=0.2, seed=5)


@pytest.mark.rtl
@pytest.mark.slow
def test_engine_icarus_sweep():
    _run("icarus", SWEEP[1], stall=0.4, seed=6)
