"""The host side of the engine's streams (sim/psg_streams.py): im2col, tiling, packing."""

import numpy as np
import pytest

import rtl_helpers  # noqa: F401  (puts sim/ on sys.path)
from e2train import fixed
from psg_streams import g_stream, im2col, layer_tiles, pack, unpack_result, x_stream


def _layer(seed, n, c, h, w, o, k, s):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, c, h, w)).astype(np.int8)
    ho, wo = (h + 2 * ((k - 1) // 2) - k) // s + 1, (w + 2 * ((k - 1) // 2) - k) // s + 1
    g = rng.integers(-32768, 32768, size=(n, o, ho, wo)).astype(np.int16)
    return x, g


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (1, 1), (1, 2)])
def test_tiles_rebuild_the_reference_gradient(k, s):
    """Summing g_rows^T x_cols over the steps of every tile gives the reference's G_full, and the same
    sum over the (contract v2) MSBs its G_msb."""
    x, g = _layer(k * 10 + s, 2, 5, 7, 6, 7, k, s)
    tiles, ref = layer_tiles(x, g, k, s, 6554, o_tile=3, c_tile=2)
    assert len(tiles) == 3 * 3
    for t in tiles:
        full = t.g_rows.astype(np.int64).T @ t.x_cols.astype(np.int64)
        assert np.array_equal(full.ravel(), t.g_full)
        g_msb = fixed.msb(t.g_rows, 16, 10).astype(np.int64)
        x_msb = fixed.msb(t.x_cols, 8, 4).astype(np.int64)
        msb = g_msb.T @ x_msb
        assert np.array_equal(msb.ravel(), t.g_msb)
        assert t.max_in == ref.max_abs_msb
    assert sum(t.predicted for t in tiles) == ref.predicted
    assert max(t.tile_max for t in tiles) == ref.max_abs_msb


def test_whole_layer_tile_needs_no_max_in():
    x, g = _layer(1, 1, 3, 4, 4, 4, 3, 1)
    (tile,), ref = layer_tiles(x, g, 3, 1, 3277, o_tile=8, c_tile=8)
    assert tile.max_in == 0 and tile.predicted == ref.predicted
    assert np.array_equal(tile.sign, ref.sign.ravel())


def test_im2col_zero_padding():
    x = np.arange(1, 10, dtype=np.int8).reshape(1, 1, 3, 3)
    cols = im2col(x, 3, 1)
    assert cols.shape == (9, 9)
    # the centre pixel sees the whole image; the corner (0, 0) sees zeros above and left
    assert list(cols[4]) == list(range(1, 10))
    assert list(cols[0]) == [0, 0, 0, 0, 1, 2, 0, 4, 5]


def test_packing_pads_each_step_to_whole_beats():
    vals = np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int16)
    b = pack(vals, 4, np.int16)
    assert len(b) == 2 * 4 * 2
    assert np.frombuffer(b, dtype="<i2").tolist() == [1, -2, 3, 0, 4, 5, -6, 0]
    x, g = _layer(2, 1, 3, 4, 4, 5, 3, 1)
    (tile,), _ = layer_tiles(x, g, 3, 1, 3277, 8, 8)
    assert len(x_stream(tile, 8)) == tile.steps * 32          # K = 27 -> 4 beats of 8
    assert len(g_stream(tile, 4)) == tile.steps * 2 * 4 * 2   # O = 5 -> 2 beats of 4 int16


def test_result_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="expected 5"):
        unpack_result(bytes(6), "psg", 5)
    with pytest.raises(ValueError, match="expected 2"):
        unpack_result(bytes(8), "full", 2)
    assert unpack_result(bytes([1, 255, 0]), "psg", 3).tolist() == [1, -1, 0]
