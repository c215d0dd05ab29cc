"""cocotb testbench of hw/rtl/psg_mul_split.v: the split multiplier of the PSG contract."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import Timer


class MulSplitTB:
    """Drives the combinational split multiplier and computes what it must answer."""

    def __init__(self, dut):
        self.dut = dut

    @staticmethod
    def expected(x: int, g: int) -> tuple[int, int]:
        x_msb, x_lsb = x >> 4, x & 15      # Python's >> is the arithmetic (floor) shift
        g_msb, g_lsb = g >> 6, g & 63
        corr = (x_msb * g_lsb << 4) + (x_lsb * g_msb << 6) + x_lsb * g_lsb
        return x_msb * g_msb, corr

    async def apply(self, x: int, g: int) -> tuple[int, int]:
        self.dut.x.value = x & 0xFF
        self.dut.g.value = g & 0xFFFF
        await Timer(1, unit="ns")
        return self.dut.p_msb.value.to_signed(), self.dut.p_corr.value.to_signed()


def g_values(rng: random.Random) -> list[int]:
    """Every g_msb in steps of 4 with a random low part, plus the corners."""
    vals = [(m << 6) | rng.randrange(64) for m in range(-512, 512, 4)]
    return vals + [-32768, -32767, -64, -1, 0, 1, 63, 64, 32767]


@cocotb.test()
async def test_split_products(dut):
    """For every int8 x and a sweep of int16 g: p_msb and p_corr exact, and they rebuild x*g."""
    tb = MulSplitTB(dut)
    rng = random.Random(2)
    gs = g_values(rng)
    for x in range(-128, 128):
        for g in gs:
            p_msb, p_corr = await tb.apply(x, g)
            e_msb, e_corr = tb.expected(x, g)
            assert (p_msb, p_corr) == (e_msb, e_corr), f"x={x} g={g}: got {(p_msb, p_corr)}, want {(e_msb, e_corr)}"
            assert (p_msb << 10) + p_corr == x * g
