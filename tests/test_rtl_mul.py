"""The split multiplier (hw/rtl/psg_mul_split.v) against the contract's partial products (v2: MSBs
rounded to nearest and saturated, signed remainders): the split of every int8 x and every int16 g,
and the products over the rounding's corners (sim/msb_corners.py) and every x against a g_msb sweep."""

import pytest

from rtl_helpers import cocotb_run, need_simulator, run_or_fail


@pytest.mark.rtl
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_split_multiplier(sim):
    need_simulator(sim)
    run_or_fail(top="psg_mul_split", sources=cocotb_run.MUL_SOURCES, test_module="tb_psg_mul", sim=sim)
