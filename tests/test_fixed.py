"""Number formats: exponent choice, round-half-up, saturation, MSB split (docs/contracts.md section 1).
e2train.fixed states them in numpy; the training path's torch code (psg/quant.py, fabric/torch_kernels.py)
is held to it here on the same values."""

import math

import numpy as np
import pytest
import torch

from e2train import fixed
from e2train.fabric.torch_kernels import msb_float
from e2train.psg.quant import quantize_float


@pytest.mark.parametrize(
    "max_abs,bits,expected",
    [
        (0.0, 8, 0),
        (127.0, 8, 0),  # exactly qmax * 2**0
        (np.nextafter(127.0, 200.0), 8, 1),  # one ulp above needs the next exponent
        (63.5, 8, -1),  # exactly 127 * 2**-1
        (63.50000001, 8, 0),
        (1.0, 8, -6),  # 127 * 2**-7 = 0.99 < 1 <= 127 * 2**-6
        (32767.0, 16, 0),
        (32768.0, 16, 1),
        (1e-30, 8, -106),
        (7.0, 4, 0),
        (8.0, 4, 1),
    ],
)
def test_exponent_is_smallest_that_fits(max_abs, bits, expected):
    e = fixed.exponent(max_abs, bits)
    assert e == expected
    top = fixed.qmax(bits)
    if max_abs:
        assert max_abs <= math.ldexp(top, e)
        assert max_abs > math.ldexp(top, e - 1)


def test_exponent_rejects_nan_inf_and_negative():
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            fixed.exponent(bad, 8)
    with pytest.raises(ValueError):
        fixed.exponent(1.0, 1)


def test_round_half_up_including_ties_and_the_float_trap():
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.49999999999999994, 0.49999999999999994, 2.4999999, -2.5000001])
    expected = np.array([-2, -1, 0, 1, 2, 3, 0, 0, 2, -3])
    q = fixed.quantize_with_exponent(v, 8, 0)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, expected)
    qt, _, _ = quantize_float(torch.tensor(v, dtype=torch.float64), 8, 0)
    assert qt.dtype == torch.float64  # integers held in the input's float type
    np.testing.assert_array_equal(qt.numpy(), expected)


def test_quantize_chooses_exponent_and_never_saturates_with_it():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000) * 3.7
    counter = fixed.SaturationCounter()
    q, e = fixed.quantize(x, 8, counter=counter, name="x")
    assert e == fixed.exponent(np.abs(x).max(), 8)
    assert q.dtype == np.int8
    assert counter.saturated["x"] == 0 and counter.total["x"] == 1000
    assert np.abs(q).max() <= 127
    # the value of the largest element is represented within half a step
    assert np.all(np.abs(fixed.dequantize(q, e) - x) <= 2.0**e / 2)


def test_saturation_clamps_and_is_counted():
    counter = fixed.SaturationCounter()
    x = np.array([-1000.0, -129.0, -128.6, -128.5, 126.5, 127.4, 127.5, 500.0])
    q = fixed.quantize_with_exponent(x, 8, 0, counter, "layer1.x")
    np.testing.assert_array_equal(q, [-128, -128, -128, -128, 127, 127, 127, 127])
    # -128.5 rounds up to -128 (no saturation); -128.6 rounds to -129 and saturates; 127.5 -> 128 saturates
    assert counter.saturated["layer1.x"] == 5
    assert counter.as_dict() == {"layer1.x": {"saturated": 5, "total": 8}}
    qt, _, saturated = quantize_float(torch.tensor(x), 8, 0)
    counter.add("layer1.x", saturated, qt.numel())
    np.testing.assert_array_equal(qt.numpy(), q)
    assert counter.saturated["layer1.x"] == 10 and counter.any


def test_all_zero_tensor():
    q, e = fixed.quantize(np.zeros((2, 3)), 16)
    assert e == 0
    assert int(abs(q).max()) == 0
    qt, et, _ = quantize_float(torch.zeros(2, 3), 16)
    assert et == 0
    assert int(abs(qt).max()) == 0
    assert fixed.quantize(np.zeros(0), 8)[1] == 0


def test_int16_dtype_and_torch_float32_matches_numpy():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=4096) * 1e-3).astype(np.float32)
    qn, en = fixed.quantize(x, 16)
    qt, et, _ = quantize_float(torch.from_numpy(x), 16)
    assert qn.dtype == np.int16 and qt.dtype == torch.float32
    assert en == et
    np.testing.assert_array_equal(qn, qt.numpy())
    xq = qt * 2.0**et  # what the training path feeds its float32 convolutions
    assert xq.dtype == torch.float32
    xn, _ = fixed.fake_quantize(x, 16)
    assert xn.dtype == np.float32 and np.array_equal(xn, xq.numpy())
    np.testing.assert_array_equal(xq.numpy(), fixed.dequantize(qn, en).astype(np.float32))


def test_nan_is_refused():
    with pytest.raises(ValueError):
        fixed.quantize(np.array([1.0, np.nan]), 8)


def test_msb_rounds_to_nearest_and_saturates():
    """Contract v2: x_msb = min((x + 8) >> 4, 7), g_msb = min((g + 32) >> 6, 511); ties toward +inf."""
    assert fixed.CONTRACT_VERSION == 2
    q = np.array([-128, -25, -24, -23, -9, -8, -7, -1, 0, 7, 8, 23, 24, 119, 120, 127], dtype=np.int8)
    np.testing.assert_array_equal(fixed.msb(q, 8, 4), [-8, -2, -1, -1, -1, 0, 0, 0, 0, 0, 1, 1, 2, 7, 7, 7])
    np.testing.assert_array_equal(fixed.lsb(q, 8, 4), [0, 7, -8, -7, 7, -8, -7, -1, 0, 7, -8, 7, -8, 7, 8, 15])
    g = np.array([-32768, -32767, -97, -96, -33, -32, -31, -1, 0, 31, 32, 95, 96, 32735, 32736, 32767], dtype=np.int16)
    m = fixed.msb(g, 16, 10)
    assert m.dtype == np.int16
    np.testing.assert_array_equal(m, [-512, -512, -2, -1, -1, 0, 0, 0, 0, 0, 1, 1, 2, 511, 511, 511])
    np.testing.assert_array_equal(fixed.lsb(g, 16, 10), [0, 1, 31, -32, 31, -32, -31, -1, 0, 31, -32, 31, -32, 31, 32, 63])
    gt = torch.from_numpy(g).to(torch.float64)
    mt = msb_float(gt, 16, 10)
    np.testing.assert_array_equal(mt.numpy(), m)
    np.testing.assert_array_equal((gt - mt * 64).numpy(), fixed.lsb(g, 16, 10))
    with pytest.raises(ValueError):
        fixed.msb(np.array([200], dtype=np.int16), 8, 4)  # not an 8-bit value
    with pytest.raises(TypeError):
        fixed.msb(np.array([1.5]), 8, 4)


def test_msb_bit_form_of_the_contract():
    """The hardware form of docs/contracts.md (MSB bit form): rx = x[3] & ~(x[7:3] == 01111); x_msb = x[7:4] + rx; x_lsb = {rx, x[3:0]}."""

    def bit_form(v, width, s):
        u = v & ((1 << width) - 1)
        top = u >> (s - 1)  # bits [width-1 : s-1]
        r = ((u >> (s - 1)) & 1) & int(top != (1 << (width - s)) - 1)  # round bit, not in the saturated band
        hi = v >> s  # signed x[width-1 : s]
        lo = (r << s) | (u & ((1 << s) - 1))  # {r, low s bits}, signed (r is the sign)
        lo = lo - (1 << (s + 1)) if r else lo
        return hi + r, lo

    for width, s, to in ((8, 4, 4), (16, 6, 10)):
        v = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
        hw = np.array([bit_form(int(a), width, s) for a in v])
        np.testing.assert_array_equal(hw[:, 0], fixed.msb(v, width, to))
        np.testing.assert_array_equal(hw[:, 1], fixed.lsb(v, width, to))


def test_partial_product_identity_for_every_int8_int16_pair():
    """x*g = (xm*gm << 10) + (xm*gl << 4) + (xl*gm << 6) + xl*gl for all int8 x and int16 g (signed remainders)."""
    x = np.arange(-128, 128, dtype=np.int64)[:, None]
    g = np.arange(-32768, 32768, dtype=np.int64)[None, :]
    xm, xl = fixed.msb(x, 8, 4).astype(np.int64), fixed.lsb(x, 8, 4).astype(np.int64)
    gm, gl = fixed.msb(g, 16, 10).astype(np.int64), fixed.lsb(g, 16, 10).astype(np.int64)
    assert xm.min() == -8 and xm.max() == 7 and xl.min() == -8 and xl.max() == 15
    assert gm.min() == -512 and gm.max() == 511 and gl.min() == -32 and gl.max() == 63
    assert fixed.lsb(x, 8, 4).dtype == np.int8 and fixed.lsb(g, 16, 10).dtype == np.int8  # int5, int7
    lhs = x * g
    rhs = ((xm * gm) << 10) + ((xm * gl) << 4) + ((xl * gm) << 6) + xl * gl
    assert np.array_equal(lhs, rhs)


def test_beta_q16():
    assert fixed.beta_to_q16(0.05) == 3277
    assert fixed.beta_to_q16(0.1) == 6554
    assert fixed.beta_to_q16(0.0) == 0 and fixed.beta_to_q16(1.0) == 65536
    with pytest.raises(ValueError):
        fixed.beta_to_q16(1.5)
