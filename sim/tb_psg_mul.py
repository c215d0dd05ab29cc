"""cocotb testbench of hw/rtl/psg_mul_split.v: the split multiplier of the PSG contract (v2)."""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import Timer

from e2train import fixed
from msb_corners import G_CORNERS, X_CORNERS


def split(x, g):
    """(x_msb, x_lsb, g_msb, g_lsb) of the contract, as int64 arrays."""
    x, g = np.asarray(x, dtype=np.int8), np.asarray(g, dtype=np.int16)
    return tuple(v.astype(np.int64) for v in (fixed.msb(x, 8, 4), fixed.lsb(x, 8, 4),
                                              fixed.msb(g, 16, 10), fixed.lsb(g, 16, 10)))


def expected(x, g) -> tuple[np.ndarray, np.ndarray]:
    """The predictor's partial product and the sum of the three correction products."""
    xm, xl, gm, gl = split(x, g)
    return xm * gm, (xm * gl << 4) + (xl * gm << 6) + xl * gl


class MulSplitTB:
    """Drives the combinational split multiplier and compares it with the contract."""

    def __init__(self, dut):
        self.dut = dut

    async def apply(self, x: int, g: int) -> tuple[int, int]:
        self.dut.x.value = x & 0xFF
        self.dut.g.value = g & 0xFFFF
        await Timer(1, unit="ns")
        return self.dut.p_msb.value.to_signed(), self.dut.p_corr.value.to_signed()

    async def check(self, xs, gs) -> None:
        """Every pair (xs[i], gs[i]): both outputs exact, and they rebuild x*g."""
        xs, gs = np.asarray(xs, dtype=np.int64), np.asarray(gs, dtype=np.int64)
        e_msb, e_corr = expected(xs, gs)
        for x, g, em, ec in zip(xs.tolist(), gs.tolist(), e_msb.tolist(), e_corr.tolist()):
            got = await self.apply(x, g)
            assert got == (em, ec), f"x={x} g={g}: got {got}, want {(em, ec)}"
            assert (got[0] << 10) + got[1] == x * g


@cocotb.test()
async def test_split_of_every_x(dut):
    """Every int8 x times g = 64 (g_msb 1, g_lsb 0): p_msb = x_msb and p_corr = x_lsb << 6."""
    xs = np.arange(-128, 128)
    await MulSplitTB(dut).check(xs, np.full_like(xs, 64))


@cocotb.test()
async def test_split_of_every_g(dut):
    """Every int16 g times x = 16 (x_msb 1, x_lsb 0): p_msb = g_msb and p_corr = g_lsb << 4."""
    gs = np.arange(-32768, 32768)
    await MulSplitTB(dut).check(np.full_like(gs, 16), gs)


@cocotb.test()
async def test_products_over_the_corners(dut):
    """Every x of the rounding's corners (ties and their neighbours, 120..127, the lowest values)
    times every g of g's corners, and every int8 x times every g_msb (in steps of 4, random low bits)."""
    xs, gs = np.meshgrid(X_CORNERS, G_CORNERS, indexing="ij")
    tb = MulSplitTB(dut)
    await tb.check(xs.ravel(), gs.ravel())
    rng = random.Random(2)
    g_sweep = np.array([(m << 6) + rng.randrange(-32, 64) for m in range(-511, 511, 4)])
    g_sweep = np.clip(g_sweep, -32768, 32767)
    xs, gs = np.meshgrid(np.arange(-128, 128), g_sweep, indexing="ij")
    await tb.check(xs.ravel(), gs.ravel())
