"""Buffer layouts round-trip between the host and the kernels' view of DDR, and caches matter:
what the host writes reaches the kernels only after flush, what they write reaches the host only
after invalidate."""

import numpy as np
import pytest
from board_fixtures import API_PARAMS

from e2train.board import regmap
from e2train.board.layouts import BUFFERS, buffer_specs, check_array
from e2train.board.pynq_api import get_api
from e2train.board.sim_device import GARBAGE, SimDevice
from e2train.contract import ConvShape, out_size

SHAPE = ConvShape("layout", n=3, c=5, o=4, h=7, w=6, k=3, stride=2)


def test_layouts_follow_the_contract():
    s = SHAPE
    ho, wo = out_size(7, 3, 2), out_size(6, 3, 2)
    want = {
        "conv_fwd": {"x": (np.int8, (3, 5, 7, 6)), "w": (np.int8, (4, 5, 3, 3)), "y": (np.int32, (3, 4, ho, wo))},
        "conv_bwd_data": {"gy": (np.int16, (3, 4, ho, wo)), "w": (np.int8, (4, 5, 3, 3)), "gx": (np.int64, (3, 5, 7, 6))},
        "conv_bwd_weight_psg": {
            "x": (np.int8, (3, 5, 7, 6)),
            "gy": (np.int16, (3, 4, ho, wo)),
            "sign": (np.int8, (4, 5, 3, 3)),
            "g_full": (np.int64, (4, 5, 3, 3)),
            "g_msb": (np.int32, (4, 5, 3, 3)),
        },
    }
    for kernel, bufs in want.items():
        got = {b.name: (b.dtype, b.shape(s)) for b in buffer_specs(kernel)}
        assert got == {n: (np.dtype(d), sh) for n, (d, sh) in bufs.items()}
        # every buffer has an address register in the register map, and nothing else does
        regs = regmap.REGMAPS[regmap.KERNEL_TOPS[kernel]]
        assert {r.name for r in regs.values() if r.kind == "pointer"} == set(bufs)
    with pytest.raises(ValueError, match="unknown kernel 'conv_dw'"):
        buffer_specs("conv_dw")
    with pytest.raises(ValueError, match=r"buffer x: expected int8 \(3, 5, 7, 6\), got int16"):
        check_array(buffer_specs("conv_fwd")[0], s, np.zeros((3, 5, 7, 6), np.int16))


def _random(dtype, shape, rng):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("api_name", API_PARAMS)
@pytest.mark.parametrize("kernel", list(BUFFERS))
def test_buffers_round_trip_through_device_memory(kernel, api_name):
    dev, api = SimDevice(executor="reference"), get_api(api_name)
    rng = np.random.default_rng(len(kernel))
    for spec in buffer_specs(kernel):
        shape = spec.shape(SHAPE)
        buf = api.allocate(shape, spec.dtype, target=dev)
        assert buf.shape == shape and buf.dtype == spec.dtype and buf.device_address % 4096 == 0
        a = _random(spec.dtype, shape, rng)
        # host -> device: invisible before flush (fresh CMA memory holds garbage), exact after
        buf[...] = a
        mem = dev.device_view(buf.device_address, spec.nbytes(SHAPE))
        assert np.all(mem == GARBAGE)
        buf.flush()
        assert mem.tobytes() == np.ascontiguousarray(a).tobytes()  # row-major, little-endian, no padding
        assert np.array_equal(mem.view(spec.dtype).reshape(shape), a)
        # device -> host: stale before invalidate, exact after
        b = _random(spec.dtype, shape, rng)
        mem[...] = np.ascontiguousarray(b).view(np.uint8).reshape(-1)
        assert np.array_equal(buf, a)
        buf.invalidate()
        assert np.array_equal(buf, b)
        buf.freebuffer()


def test_views_keep_device_addresses_and_freed_space_is_reused():
    dev = SimDevice(executor="reference")
    buf = dev.allocate((4, 100), np.int16)
    assert buf[2].device_address == buf.device_address + 2 * 100 * 2
    first = buf.device_address
    other = dev.allocate((10,), np.int8)
    assert other.device_address >= first + 4096
    buf.freebuffer()
    again = dev.allocate((5,), np.int64)
    assert again.device_address == first  # first fit into the freed range
    with pytest.raises(MemoryError, match="CMA pool of 256 MiB is full"):
        dev.allocate((300 << 20,), np.uint8)
