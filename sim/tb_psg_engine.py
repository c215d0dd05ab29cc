"""cocotb testbench of hw/rtl/psg_wgrad_engine.v against the reference fabric.

The tests read their knobs from the environment (set by tests/test_rtl_engine.py and
benchmarks/rtl_throughput.py): PSG_SEED, PSG_STALL (probability that a source pauses or the sink
refuses a beat in a cycle), PSG_REPORT (a JSON file to write the measured jobs to) and
PSG_BENCH_LAYERS (JSON list of layers for the throughput benchmark).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from e2train import fixed
from e2train.board.regmap import AP_DONE, AP_IDLE, ENGINE_MODES, ENGINE_REGMAP_VERSION, decode_engine_config
from e2train.board.regmap import EngineReg as R
from e2train.board.regmap import EngineStatus as ST
from msb_corners import G_BANDS, X_BANDS, draw
from psg_streams import Tile, g_stream, layer_tiles, unpack_result, x_stream

# The register map is the host's (e2train.board.regmap, docs/register-map.md): R.<register>, ST.<status bit>.


def uses_diagonal(cfg: dict, n_out: int, k_len: int) -> bool:
    """The engine's mapping choice (hw/README.md): diagonal when K <= KD and it takes fewer cycles."""
    p = cfg["P"]
    return k_len <= cfg["KD"] and -(-n_out // p) * k_len < n_out * -(-k_len // p)


def stall_gen(rng: random.Random, p: float):
    """Pause pattern for a cocotbext-axi source or sink: True pauses this cycle."""
    while True:
        yield rng.random() < p


class PsgEngineTB:
    """Drives one psg_wgrad_engine: AXI4-Lite control, x and g sources, result sink."""

    def __init__(self, dut, stall: float = 0.0, seed: int = 1):
        self.dut = dut
        self.rng = random.Random(seed)
        Clock(dut.ap_clk, 10, unit="ns").start()
        rst = dut.ap_rst_n
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, rst, reset_active_level=False)
        self.xs = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_x"), dut.ap_clk, rst, reset_active_level=False)
        self.gs = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_g"), dut.ap_clk, rst, reset_active_level=False)
        self.out = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_out"), dut.ap_clk, rst, reset_active_level=False)
        for port in (self.xs, self.gs, self.out):
            port.log.setLevel("WARNING")
        self.axil.write_if.log.setLevel("WARNING")
        self.axil.read_if.log.setLevel("WARNING")
        self.set_stall(stall)
        self.done_latched = False

    def set_stall(self, p: float) -> None:
        for port in (self.xs, self.gs, self.out):
            if p > 0:
                port.set_pause_generator(stall_gen(self.rng, p))
            else:  # clearing the generator leaves the port at its last draw, which may be a pause
                port.clear_pause_generator()
                port.pause = False

    async def reset(self, cycles: int = 5) -> None:
        """Assert ap_rst_n low; the stream models drop what they still hold, as a DMA reset would."""
        self.dut.ap_rst_n.value = 0
        await ClockCycles(self.dut.ap_clk, 2)
        for port in (self.xs, self.gs, self.out):
            port.clear()
        await ClockCycles(self.dut.ap_clk, cycles)
        self.dut.ap_rst_n.value = 1
        await ClockCycles(self.dut.ap_clk, 2)
        self.done_latched = False

    async def read(self, addr: int) -> int:
        return await self.axil.read_dword(addr)

    async def read64(self, addr: int) -> int:
        return await self.read(addr) | (await self.read(addr + 4)) << 32

    async def write(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value & 0xFFFFFFFF)

    async def config(self) -> dict:
        words = {reg: await self.read(reg) for reg in (R.CONFIG0, R.CONFIG1)}
        return {**decode_engine_config(words), "contract": await self.read(R.CONTRACT_VERSION)}

    async def ctrl(self) -> int:
        v = await self.read(R.CTRL)
        if v & AP_DONE:  # ap_done clears on read: remember it
            self.done_latched = True
        return v

    async def wait_done(self, limit_cycles: int = 50_000_000) -> None:
        waited = 0
        while not self.done_latched:
            await self.ctrl()
            if self.done_latched:
                break
            await ClockCycles(self.dut.ap_clk, 16)
            waited += 16
            assert waited < limit_cycles, "engine did not finish"

    async def start(self, mode: str, n_out: int, k_len: int, steps: int, beta_q: int, max_in: int) -> None:
        for addr, v in ((R.MODE, ENGINE_MODES.get(mode, mode)), (R.N_OUT, n_out), (R.N_K, k_len), (R.N_STEPS, steps),
                        (R.BETA_Q, beta_q), (R.MAX_IN, max_in)):
            await self.write(addr, v)
        self.done_latched = False
        await self.write(R.CTRL, 1)

    async def send_pass(self, tile: Tile, cfg: dict, x_last: bool = True) -> None:
        await self.xs.send(AxiStreamFrame(x_stream(tile, cfg["XPB"])))
        await self.gs.send(AxiStreamFrame(g_stream(tile, cfg["GPB"])))

    async def run_tile(self, tile: Tile, cfg: dict, mode: str | None = None, max_in: int | None = None) -> dict:
        """One job: start, stream pass 1 (and pass 2 when asked for), collect the result stream."""
        mode = mode or tile.mode
        max_in = tile.max_in if max_in is None else max_in
        await self.start(mode, tile.n_out, tile.k_len, tile.steps, tile.beta_q, max_in)
        await self.send_pass(tile, cfg)
        passes = 1
        if mode == "psg":  # the host's loop: after pass 1, either pass 2 is requested or the job ends
            while True:
                st = await self.read(R.STATUS)
                if st & ST.PASS2_WAIT:
                    await self.send_pass(tile, cfg)
                    passes = 2
                    break
                if st & ST.PASS2_SKIPPED:
                    break
                await ClockCycles(self.dut.ap_clk, 16)
        result = None
        if mode != "probe":
            frame = await self.out.recv()
            result = unpack_result(frame.tdata, mode, tile.n_out * tile.k_len)
        await self.wait_done()
        r = {
            "mode": mode,
            "passes": passes,
            "result": result,
            "status": await self.read(R.STATUS),
            "max_abs": await self.read(R.MAX_ABS_MSB),
            "predicted": await self.read(R.PREDICTED),
            "cycles": await self.read64(R.CYCLES),
            "msb_macs": await self.read64(R.MSB_MACS),
            "corr_macs": await self.read64(R.CORR_MACS),
            "unconfident": await self.read(R.UNCONFIDENT),
            "phase2_len": await self.read(R.PHASE2_LEN),
        }
        r["diagonal"] = bool(r["status"] & ST.DIAGONAL)
        assert r["diagonal"] == uses_diagonal(cfg, tile.n_out, tile.k_len), (r["status"], tile.n_out, tile.k_len)
        return r


def check_tile(tile: Tile, r: dict, max_in: int = 0) -> None:
    """Bit-exact comparison of one job with the reference, counters included."""
    weights = tile.n_out * tile.k_len
    assert r["status"] & (ST.ARG_ERROR | ST.FRAME_ERROR) == 0, f"status {r['status']:#x}"
    if r["mode"] == "full":
        assert np.array_equal(r["result"], tile.g_full), "G_full differs from the reference"
        assert r["msb_macs"] == tile.macs and r["corr_macs"] == tile.macs
        assert r["predicted"] == 0
        return
    assert r["max_abs"] == max(tile.tile_max, max_in), (r["max_abs"], tile.tile_max, max_in)
    assert r["msb_macs"] == tile.macs, (r["msb_macs"], tile.macs)
    if r["mode"] == "probe":
        assert r["corr_macs"] == 0
        return
    bad = np.flatnonzero(r["result"] != tile.sign)
    assert bad.size == 0, f"{bad.size} signs differ from the reference, first at weight {bad[:8]}"
    assert r["predicted"] == tile.predicted, (r["predicted"], tile.predicted)
    assert r["unconfident"] == weights - tile.predicted
    assert r["corr_macs"] == tile.steps * (weights - tile.predicted), (r["corr_macs"], tile.steps, weights - tile.predicted)
    assert (r["passes"] == 2) == (tile.predicted < weights)


def random_layer(rng: np.random.Generator, n, c, h, w, o, k, s, relu=True):
    """int8 activations (ReLU-like when relu) and int16 gradients of a plausible spread."""
    x = rng.normal(0, 45, size=(n, c, h, w))
    if relu:
        x = np.abs(x)
    x = np.clip(np.round(x), -128, 127).astype(np.int8)
    ho = (h + 2 * ((k - 1) // 2) - k) // s + 1
    wo = (w + 2 * ((k - 1) // 2) - k) // s + 1
    scale = rng.choice([300.0, 3000.0, 12000.0])
    g = np.clip(np.round(rng.normal(0, scale, size=(n, o, ho, wo))), -32768, 32767).astype(np.int16)
    return x, g


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


async def setup(dut):
    """A reset engine and its configuration; an engine of another register map or contract is refused
    (its answers would not be comparable with the reference fabric's)."""
    tb = PsgEngineTB(dut, stall=env_float("PSG_STALL", 0.0), seed=env_int("PSG_SEED", 1))
    await tb.reset()
    cfg = await tb.config()
    assert cfg["version"] == ENGINE_REGMAP_VERSION, (
        f"engine register map v{cfg['version']}, e2train.board.regmap v{ENGINE_REGMAP_VERSION}")
    assert cfg["contract"] == fixed.CONTRACT_VERSION, (
        f"engine computes contract v{cfg['contract']}, the reference fabric v{fixed.CONTRACT_VERSION}")
    return tb, cfg


def small_layers(cfg: dict, rng: np.random.Generator):
    """Layers that fit one tile of this configuration: k = 3 and 1, stride 1 and 2."""
    c3 = max(1, cfg["KMAX"] // 9)
    o = cfg["OMAX"]
    return [
        dict(n=2, c=c3, h=5, w=6, o=o, k=3, s=1, beta_q=3277),
        dict(n=1, c=max(1, c3 - 1), h=7, w=5, o=max(1, o - 1), k=3, s=2, beta_q=20000),
        dict(n=2, c=min(cfg["KMAX"], 2 * c3 + 1), h=4, w=4, o=o, k=1, s=1, beta_q=3277),
        dict(n=1, c=min(cfg["KMAX"], 3), h=6, w=6, o=max(1, o // 2), k=1, s=2, beta_q=65536),
        dict(n=2, c=1, h=4, w=5, o=1, k=1, s=1, beta_q=40000),  # one-cycle steps: back-to-back accumulation
    ]


@cocotb.test()
async def test_psg_layers(dut):
    """Whole small layers in mode psg: signs, predicted count, max and counters exact."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1))
    report = []
    for spec in small_layers(cfg, rng):
        x, g = random_layer(rng, spec["n"], spec["c"], spec["h"], spec["w"], spec["o"], spec["k"], spec["s"])
        (tile,), _ = layer_tiles(x, g, spec["k"], spec["s"], spec["beta_q"], cfg["OMAX"], 10**6)
        r = await tb.run_tile(tile, cfg)
        check_tile(tile, r)
        report.append({**spec, "cycles": r["cycles"], "predicted": r["predicted"], "weights": tile.n_out * tile.k_len,
                       "diagonal": r["diagonal"]})
    write_report("psg_layers", report)


@cocotb.test()
async def test_all_confident_skips_pass2(dut):
    """beta_q = 0: every nonzero G_msb is confident; with no zero G_msb pass 2 is skipped."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 7)
    k, c = 1, min(cfg["KMAX"], 4)
    for _ in range(20):
        x = rng.integers(40, 127, size=(1, c, 4, 4)).astype(np.int8)
        g = rng.integers(2000, 30000, size=(1, cfg["OMAX"], 4, 4)).astype(np.int16)
        (tile,), _ = layer_tiles(x, g, k, 1, 0, cfg["OMAX"], 10**6)
        if tile.predicted == tile.n_out * tile.k_len:
            break
    assert tile.predicted == tile.n_out * tile.k_len
    r = await tb.run_tile(tile, cfg)
    check_tile(tile, r)
    assert r["status"] & ST.PASS2_SKIPPED and r["passes"] == 1 and r["corr_macs"] == 0


@cocotb.test()
async def test_zero_msb_is_never_predicted(dut):
    """beta_q = 0: weights whose G_msb is 0 (x in -8..7 on channel 0) still take sgn(G_full)."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 9)
    c = min(cfg["KMAX"], 3)
    x = rng.integers(16, 127, size=(1, c, 4, 4)).astype(np.int8)
    x[:, 0] = rng.integers(-8, 8, size=(4, 4))  # x_msb = 0 on channel 0 (rounded): G_msb = 0 there
    g = rng.integers(-30000, 30000, size=(1, cfg["OMAX"], 4, 4)).astype(np.int16)
    (tile,), _ = layer_tiles(x, g, 1, 1, 0, cfg["OMAX"], 10**6)
    zero = tile.g_msb == 0
    assert zero.any() and np.count_nonzero(tile.g_full[zero]) > 0
    assert tile.predicted == np.count_nonzero(~zero)
    r = await tb.run_tile(tile, cfg)
    check_tile(tile, r)


@cocotb.test()
async def test_full_mode(dut):
    """Mode full: G_full as int64, bit-exact, every MAC both MSB and correction."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 1)
    c3 = max(1, cfg["KMAX"] // 9)
    x, g = random_layer(rng, 2, c3, 5, 5, cfg["OMAX"], 3, 1, relu=False)
    (tile,), _ = layer_tiles(x, g, 3, 1, 3277, cfg["OMAX"], 10**6, mode="full")
    r = await tb.run_tile(tile, cfg)
    check_tile(tile, r)


def diagonal_shape(cfg: dict) -> tuple[int, int, int] | None:
    """(C, k, O) of a layer that fits one tile and takes the diagonal mapping, K a multiple of no P."""
    for k in (3, 1):
        for c in range(min(cfg["KD"], cfg["KMAX"]) // (k * k), 0, -1):
            for o in (cfg["OMAX"], cfg["OMAX"] - 1, cfg["P"] + 1, cfg["P"]):
                if 0 < o <= cfg["OMAX"] and uses_diagonal(cfg, o, c * k * k) and (c * k * k) % cfg["P"]:
                    return c, k, o
    return None


@cocotb.test()
async def test_diagonal_mapping(dut):
    """A tile whose K is not a multiple of P (the ResNet stem's case) on the diagonal mapping:
    psg with pass 2, probe and full exact, full in fewer cycles than the rows would take; a tile
    with K above KD takes the row mapping."""
    tb, cfg = await setup(dut)
    shape = diagonal_shape(cfg)
    if shape is None:
        cocotb.log.info("no tile of this configuration takes the diagonal mapping")
        return
    c, k, o = shape
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 11)
    x, g = random_layer(rng, 1, c, 6, 5, o, k, 1)
    (tile,), _ = layer_tiles(x, g, k, 1, 9000, cfg["OMAX"], 10**6)
    assert tile.predicted < tile.n_out * tile.k_len  # pass 2 runs: the lists are walked
    for mode in ("psg", "probe"):
        r = await tb.run_tile(tile, cfg, mode=mode)
        check_tile(tile, r)
        assert r["diagonal"]
    # mode full on a longer reduction, without stalls: a step takes ceil(O/P)*K cycles (or the
    # stream's beats per step, if more), fewer than the O*ceil(K/P) of the row mapping
    p, kk = cfg["P"], c * k * k
    diag_step = max(-(-o // p) * kk, -(-kk // cfg["XPB"]), -(-o // cfg["GPB"]))
    row_step = o * -(-kk // p)
    overhead = o * kk + diag_step + 40  # first step's load, drain, one output beat per weight
    side = 4
    while side * side * (row_step - diag_step) <= overhead and side < 24:
        side += 2
    x, g = random_layer(rng, 1, c, side, side, o, k, 1, relu=False)
    (full,), _ = layer_tiles(x, g, k, 1, 9000, cfg["OMAX"], 10**6, mode="full")
    tb.set_stall(0.0)
    r = await tb.run_tile(full, cfg)
    check_tile(full, r)
    assert r["diagonal"]
    assert full.steps * diag_step <= r["cycles"] <= full.steps * diag_step + overhead, (r["cycles"], full.steps, diag_step)
    if full.steps * (row_step - diag_step) > overhead:
        assert r["cycles"] < full.steps * row_step
    if cfg["KD"] < cfg["KMAX"]:  # K above KD: the row mapping, same answers
        c2 = cfg["KD"] // (k * k) + 1
        x, g = random_layer(rng, 1, c2, 4, 4, o, k, 1)
        (tile,), _ = layer_tiles(x, g, k, 1, 9000, cfg["OMAX"], 10**6)
        if tile.k_len <= cfg["KMAX"]:
            r = await tb.run_tile(tile, cfg)
            check_tile(tile, r)
            assert not r["diagonal"]


def corner_layer(rng: np.random.Generator, n, c, h, w, o, k, s):
    """int8 x and int16 g drawn from the edges of the MSB rounding (sim/msb_corners.py): ties and
    their neighbours, the saturated top codes, the most negative values."""
    ho = (h + 2 * ((k - 1) // 2) - k) // s + 1
    wo = (w + 2 * ((k - 1) // 2) - k) // s + 1
    return draw(rng, X_BANDS, (n, c, h, w)).astype(np.int8), draw(rng, G_BANDS, (n, o, ho, wo)).astype(np.int16)


@cocotb.test()
async def test_rounding_corners(dut):
    """Operands from the edges of the contract-v2 rounding, on the row mapping and (where this
    configuration has one) the diagonal mapping: psg with pass 2, and full (every weight's three
    correction products), bit-exact with the reference."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 13)
    c3 = max(1, cfg["KMAX"] // 9)
    shapes = [(c3, 3, cfg["OMAX"])]
    if diagonal_shape(cfg) is not None:
        shapes.append(diagonal_shape(cfg))
    for c, k, o in shapes:
        x, g = corner_layer(rng, 2, c, 4, 5, o, k, 1)
        for mode, beta_q in (("psg", 20000), ("full", 0)):
            (tile,), _ = layer_tiles(x, g, k, 1, beta_q, cfg["OMAX"], 10**6, mode=mode)
            if mode == "psg":
                assert tile.predicted < tile.n_out * tile.k_len  # pass 2 runs
            r = await tb.run_tile(tile, cfg)
            check_tile(tile, r)
            assert r["diagonal"] == uses_diagonal(cfg, o, c * k * k)


@cocotb.test()
async def test_contract_version(dut):
    """CONTRACT_VERSION reads the contract the engine computes, and a write does not change it."""
    tb, cfg = await setup(dut)
    assert await tb.read(R.CONTRACT_VERSION) == fixed.CONTRACT_VERSION == 2
    await tb.write(R.CONTRACT_VERSION, 1)
    assert await tb.read(R.CONTRACT_VERSION) == fixed.CONTRACT_VERSION
    assert (await tb.read(R.CONFIG1)) >> 24 == ENGINE_REGMAP_VERSION


@cocotb.test()
async def test_multi_tile_layer(dut):
    """A layer larger than a tile: probe each tile for max|G_msb|, then psg with MAX_IN = layer max."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 2)
    c3 = max(1, cfg["KMAX"] // 9)
    o_tile = max(1, cfg["OMAX"] // 2)
    x, g = random_layer(rng, 1, 2 * c3, 5, 5, 2 * o_tile + 1, 3, 1)
    tiles, ref = layer_tiles(x, g, 3, 1, 6554, o_tile, c3)
    assert len(tiles) >= 4
    layer_max = 0
    for t in tiles:
        r = await tb.run_tile(t, cfg, mode="probe", max_in=0)
        check_tile(t, r)
        layer_max = max(layer_max, r["max_abs"])
    assert layer_max == ref.max_abs_msb
    predicted = 0
    signs = []
    for t in tiles:
        r = await tb.run_tile(t, cfg, mode="psg", max_in=layer_max)
        check_tile(t, r, max_in=layer_max)
        predicted += r["predicted"]
        signs.append(r["result"])
    assert predicted == ref.predicted


@cocotb.test()
async def test_reset_mid_job(dut):
    """Reset in the middle of pass 1 and of pass 2: the engine comes back idle and runs the next job."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(env_int("PSG_SEED", 1) + 3)
    c3 = max(1, cfg["KMAX"] // 9)
    x, g = random_layer(rng, 1, c3, 6, 6, cfg["OMAX"], 3, 1)
    (tile,), _ = layer_tiles(x, g, 3, 1, 30000, cfg["OMAX"], 10**6)
    assert tile.predicted < tile.n_out * tile.k_len  # pass 2 will run
    for where in ("pass1", "pass2"):
        await tb.start("psg", tile.n_out, tile.k_len, tile.steps, tile.beta_q, 0)
        await tb.send_pass(tile, cfg)
        if where == "pass1":
            await ClockCycles(dut.ap_clk, tile.steps * tile.n_out * 2)
        else:
            while not (await tb.read(R.STATUS)) & ST.PASS2_WAIT:
                await ClockCycles(dut.ap_clk, 16)
            await tb.send_pass(tile, cfg)
            await ClockCycles(dut.ap_clk, 20)
        assert (await tb.read(R.CTRL)) & AP_IDLE == 0, "engine should be busy"
        await tb.reset()
        assert await tb.read(R.CTRL) == AP_IDLE, "after reset: ap_idle only"
        assert await tb.read64(R.CYCLES) == 0 and await tb.read(R.N_STEPS) == 0
        r = await tb.run_tile(tile, cfg)
        check_tile(tile, r)


@cocotb.test()
async def test_bad_arguments(dut):
    """Arguments out of range: the job ends at once with STATUS.arg_error and consumes nothing."""
    tb, cfg = await setup(dut)
    bad = [
        ("psg", 0, 9, 4, 3277),                       # O = 0
        ("psg", cfg["OMAX"] + 1, 9, 4, 3277),         # O too large
        ("psg", 2, 0, 4, 3277),                       # K = 0
        ("psg", 2, cfg["KMAX"] + 1, 4, 3277),         # K too large
        ("psg", 2, 9, 0, 3277),                       # no steps
        ("psg", 2, 9, 4, 65537),                      # beta_q beyond 1.0
        (3, 2, 9, 4, 3277),                           # unknown mode
    ]
    for mode, o, k, t, beta in bad:
        await tb.start(mode, o, k, t, beta, 0)
        await tb.wait_done(limit_cycles=1000)
        st = await tb.read(R.STATUS)
        assert st & ST.ARG_ERROR, f"no argument error for {(mode, o, k, t, beta)}"
        assert int(dut.s_axis_x_tready.value) == 0 and int(dut.s_axis_g_tready.value) == 0
    rng = np.random.default_rng(5)
    x, g = random_layer(rng, 1, 1, 4, 4, cfg["OMAX"], 3, 1)
    (tile,), _ = layer_tiles(x, g, 3, 1, 3277, cfg["OMAX"], 10**6)
    check_tile(tile, await tb.run_tile(tile, cfg))


@cocotb.test()
async def test_framing_error(dut):
    """TLAST missing at the end of a pass sets STATUS.frame_error; the job still completes."""
    tb, cfg = await setup(dut)
    rng = np.random.default_rng(6)
    x, g = random_layer(rng, 1, 1, 4, 4, cfg["OMAX"], 1, 1)
    (tile,), _ = layer_tiles(x, g, 1, 1, 3277, cfg["OMAX"], 10**6, mode="full")
    await tb.start("full", tile.n_out, tile.k_len, tile.steps, tile.beta_q, 0)
    xb = x_stream(tile, cfg["XPB"])
    beat = cfg["XPB"]
    # the same bytes as two frames: TLAST lands after the first beat, not at the end of the pass
    await tb.xs.send(AxiStreamFrame(xb[:beat]))
    await tb.xs.send(AxiStreamFrame(xb[beat:]))
    await tb.gs.send(AxiStreamFrame(g_stream(tile, cfg["GPB"])))
    frame = await tb.out.recv()
    await tb.wait_done()
    assert (await tb.read(R.STATUS)) & ST.FRAME_ERROR
    assert np.array_equal(unpack_result(frame.tdata, "full", tile.n_out * tile.k_len), tile.g_full)


@cocotb.test()
async def test_interrupt_registers(dut):
    """GIE/IER/ISR as in an HLS block: interrupt on ap_done, ISR toggle-on-write clears it."""
    tb, cfg = await setup(dut)
    assert await tb.read(R.CTRL) == AP_IDLE
    await tb.write(R.GIE, 1)
    await tb.write(R.IER, 1)
    assert await tb.read(R.GIE) == 1 and await tb.read(R.IER) == 1
    rng = np.random.default_rng(8)
    x, g = random_layer(rng, 1, 1, 3, 3, 1, 1, 1)
    (tile,), _ = layer_tiles(x, g, 1, 1, 3277, cfg["OMAX"], 10**6, mode="full")
    assert int(dut.interrupt.value) == 0
    r = await tb.run_tile(tile, cfg)
    check_tile(tile, r)
    assert int(dut.interrupt.value) == 1 and await tb.read(R.ISR) == 1
    await tb.write(R.ISR, 1)
    await RisingEdge(dut.ap_clk)
    assert int(dut.interrupt.value) == 0 and await tb.read(R.ISR) == 0
    assert (await tb.read(R.CTRL)) & AP_DONE == 0  # ap_done was cleared by the read in wait_done


@cocotb.test(skip=os.environ.get("PSG_BENCH_LAYERS") is None)
async def bench_layers(dut):
    """Throughput: jobs of ResNet-20 layer tiles without stalls; writes the cycle counts."""
    tb, cfg = await setup(dut)
    tb.set_stall(0.0)
    specs = json.loads(os.environ["PSG_BENCH_LAYERS"])
    out = []
    for spec in specs:
        rng = np.random.default_rng(spec.get("seed", 1))
        x, g = random_layer(rng, spec["n"], spec["c"], spec["h"], spec["w"], spec["o"], spec["k"], spec["s"])
        tiles, ref = layer_tiles(x, g, spec["k"], spec["s"], spec["beta_q"], min(spec["o"], cfg["OMAX"]),
                                 min(spec["c"], cfg["KMAX"] // (spec["k"] ** 2)))
        tile = tiles[0]  # every tile of a layer has the same shape; time the first
        r = await tb.run_tile(tile, cfg)
        check_tile(tile, r, max_in=tile.max_in)
        out.append({**spec, "tiles": len(tiles), "T": tile.steps, "O_t": tile.n_out, "K_t": tile.k_len,
                    "cycles": r["cycles"], "msb_macs": r["msb_macs"], "corr_macs": r["corr_macs"],
                    "predicted": r["predicted"], "weights": tile.n_out * tile.k_len, "phase2_len": r["phase2_len"],
                    "layer_predicted_ratio": ref.predicted / ref.sign.size, "P": cfg["P"]})
    write_report("bench", out)


def write_report(name: str, rows) -> None:
    path = os.environ.get("PSG_REPORT")
    if not path:
        return
    data = json.load(open(path)) if os.path.exists(path) else {}
    data[name] = rows
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
