"""The pynq backend on the simulated board is bit-exact to the reference model, through the same
driver code that runs on the ZedBoard."""

import numpy as np
import pytest
from board_fixtures import API_PARAMS

from e2train.board.fabric import PynqFabric
from e2train.board.sim_device import SimDevice
from e2train.fabric import get_fabric
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import random_layer

REF = ReferenceFabric()
# (N, C, O, H, k, stride): odd sizes, both strides, both kernel sizes, the 32x32 limit of the tops
LAYERS = [(2, 3, 5, 7, 3, 1), (1, 4, 3, 9, 3, 2), (3, 5, 4, 6, 1, 1), (2, 6, 7, 11, 1, 2), (1, 3, 2, 32, 3, 2)]


# What runs the kernels behind the start bit: the HLS C++ (the CPU schedules and the synthesizable tops) and
# the reference model; each under the e2train PYNQ stand-ins, and the csim build also under real pynq.
CONFIGS = [("csim", "compat"), ("csim-tops", "compat"), ("reference", "compat")] + [
    pytest.param(("csim", p.values[0]), marks=p.marks, id="csim-pynq") for p in API_PARAMS[1:]
]


@pytest.fixture(params=CONFIGS, ids=lambda c: c if isinstance(c, str) else "-".join(c))
def fab(request):
    executor, api = request.param
    f = PynqFabric(device="sim", api=api, executor=executor)
    assert f.api.name == api and f.device.executor.name == executor
    yield f
    f.close()


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: "N{}C{}O{}H{}k{}s{}".format(*l))
def test_kernels_match_reference(fab, layer):
    n, c, o, h, k, s = layer
    x, w, g = random_layer(np.random.default_rng(sum(layer)), *layer)
    y = fab.conv_fwd(x, w, s)
    assert y.dtype == np.int32 and np.array_equal(y, REF.conv_fwd(x, w, s))
    gx = fab.conv_bwd_data(g, w, s, (h, h))
    assert gx.dtype == np.int64 and np.array_equal(gx, REF.conv_bwd_data(g, w, s, (h, h)))
    full, rfull = fab.conv_bwd_weight_psg(x, g, k, s, 3277, "full"), REF.conv_bwd_weight_psg(x, g, k, s, 3277, "full")
    assert full.mode == "full" and full.predicted == 0
    assert np.array_equal(full.g_full, rfull.g_full) and np.array_equal(full.sign, rfull.sign)
    for beta_q in (0, 3277, 30000, 65536):
        p, rp = fab.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg"), REF.conv_bwd_weight_psg(x, g, k, s, beta_q, "psg")
        assert np.array_equal(p.sign, rp.sign) and p.sign.dtype == np.int8
        assert p.predicted == rp.predicted and p.max_abs_msb == rp.max_abs_msb
        assert np.array_equal(p.g_msb, rp.g_msb)


def test_get_fabric_sim_is_the_driver():
    fab = get_fabric("pynq", device="sim")
    assert isinstance(fab, PynqFabric) and isinstance(fab.device, SimDevice)
    assert fab.device.executor.name == "csim"  # the HLS C++ behind the start bit (g++ is here)
    x, w, _ = random_layer(np.random.default_rng(1), 2, 3, 4, 8, 3, 1)
    before = fab.device.runs("conv_fwd")
    assert np.array_equal(fab.conv_fwd(x, w, 1), REF.conv_fwd(x, w, 1))
    # the result came from a kernel run started through the registers, with flushed inputs
    assert fab.device.runs("conv_fwd") == before + 1
    assert fab.device.flushes >= 2 and fab.device.invalidates >= 1


def test_buffers_are_reused_across_calls_of_one_shape():
    fab = PynqFabric(device="sim")
    rng = np.random.default_rng(2)
    x, w, _ = random_layer(rng, 2, 3, 4, 8, 3, 1)
    fab.conv_fwd(x, w, 1)
    live = len(fab.device._allocs)
    x2, w2, _ = random_layer(rng, 2, 3, 4, 8, 3, 1)
    assert np.array_equal(fab.conv_fwd(x2, w2, 1), REF.conv_fwd(x2, w2, 1))  # new data, same buffers
    assert len(fab.device._allocs) == live
    x3, w3, _ = random_layer(rng, 1, 3, 4, 5, 3, 1)  # another shape: replaced, not leaked
    assert np.array_equal(fab.conv_fwd(x3, w3, 1), REF.conv_fwd(x3, w3, 1))
    assert len(fab.device._allocs) == live
    fab.close()
    assert len(fab.device._allocs) == 0


def test_psg_g_full_is_not_returned_where_the_kernel_skipped_it():
    """In mode psg the top writes G_full only for unconfident weights; the rest of that buffer is
    stale memory, so the driver must not hand it out as a result."""
    fab = PynqFabric(device="sim")
    x, _, g = random_layer(np.random.default_rng(3), 2, 3, 4, 8, 3, 1)
    r = fab.conv_bwd_weight_psg(x, g, 3, 1, 3277, "psg")
    assert r.g_full is None and 0 < r.predicted < r.total


def test_driver_programs_the_documented_offsets():
    """The words the driver left in the registers, read at the offsets of docs/register-map.md."""
    fab = PynqFabric(device="sim")
    dev = fab.device
    x, _, g = random_layer(np.random.default_rng(4), 2, 3, 5, 9, 3, 2)
    r = fab.conv_bwd_weight_psg(x, g, 3, 2, 3277, "psg")
    base = fab.manifest.kernels["conv_bwd_weight_psg"].base_address

    def word(off):
        return int.from_bytes(dev.read_registers(base + off, 4), "little")

    bufs = {name: buf for (kernel, name), buf in fab._buffers.items() if kernel == "conv_bwd_weight_psg"}
    for name, lo in (("x", 0x18), ("gy", 0x24), ("sign", 0x30), ("g_full", 0x3C), ("g_msb", 0x48)):
        assert word(lo) | word(lo + 4) << 32 == bufs[name].device_address
    assert [word(off) for off in (0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C, 0x84, 0x8C, 0x94)] == [2, 3, 9, 9, 5, 3, 2, 3277, 0]
    assert word(0x10) == 0 and word(0x9C) == r.predicted and word(0xA4) == r.max_abs_msb
    assert word(0xA0) == 0  # ap_vld was read by the driver (clear on read)
    assert word(0x00) == 0x4  # idle, done already consumed by the driver's poll
