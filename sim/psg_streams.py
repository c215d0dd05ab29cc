"""Host side of the PSG weight-gradient engine's streams (hw/README.md, docs/register-map.md).

One job of the engine is one weight tile, output channels ``o0:o1`` by input channels ``c0:c1``, of a
``conv_bwd_weight_psg`` layer, over the whole reduction (every n, h', w'). The host im2cols x:
reduction step t = (n, h', w') in row-major order carries

* on s_axis_x the K = C_t*k*k patch values ``xpad[n, c, h'*s+i, w'*s+j]`` for c, i, j in row-major
  order (the OIHW order of the weights), zero-padded up to whole beats of XPB int8;
* on s_axis_g the O gradients ``g[n, o, h', w']``, zero-padded up to whole beats of GPB int16.

Elements are little-endian, element 0 in the low bits of a beat. TLAST marks the last beat of a pass.
The result stream carries one int8 sign per weight (mode psg, 8 per 64-bit beat, TKEEP on the last
one) or one int64 G_full per weight (mode full), in the tile's OIHW order.

The expected results come from the reference fabric, the golden model of docs/contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from e2train.fabric import get_fabric
from e2train.fabric.reference import psg_confident


@dataclass
class Tile:
    """One job: the streamed operands of a weight tile and what the engine must answer."""

    x_cols: np.ndarray      # int8 [T, K]
    g_rows: np.ndarray      # int16 [T, O]
    mode: str
    beta_q: int
    max_in: int             # layer-wide max |G_msb| the host passes (0 for a whole layer)
    sign: np.ndarray        # int8 [O*K] expected (mode psg)
    g_full: np.ndarray      # int64 [O*K] expected G_full of the tile
    g_msb: np.ndarray       # int64 [O*K]
    predicted: int          # confident weights of the tile under the layer-wide threshold
    tile_max: int           # max |G_msb| over the tile

    @property
    def steps(self) -> int:
        return self.x_cols.shape[0]

    @property
    def n_out(self) -> int:
        return self.g_rows.shape[1]

    @property
    def k_len(self) -> int:
        return self.x_cols.shape[1]

    @property
    def macs(self) -> int:
        return self.steps * self.n_out * self.k_len


def im2col(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """x int8 [N,C,H,W] -> int8 [N*H'*W', C*k*k]: the patch of every output pixel, zero padded."""
    n, c, h, w = x.shape
    pad = (k - 1) // 2
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=np.int8)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    cols = np.empty((n, ho, wo, c, k, k), dtype=np.int8)
    for i in range(k):
        for j in range(k):
            cols[..., i, j] = xp[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride].transpose(
                0, 2, 3, 1
            )
    return cols.reshape(n * ho * wo, c * k * k)


def layer_tiles(x, g, k, stride, beta_q, o_tile, c_tile, mode="psg"):
    """Split a layer into engine jobs of at most o_tile x c_tile channels, with expected results.

    For more than one tile, mode psg needs the layer's max |G_msb|; the host learns it by probing
    each tile first (mode probe) and passes it as MAX_IN: every returned tile carries it.
    """
    ref = get_fabric("reference").conv_bwd_weight_psg(x, g, k, stride, beta_q, mode="psg")
    conf, top = psg_confident(ref.g_msb, beta_q)
    cols = im2col(x, k, stride).reshape(-1, x.shape[1], k * k)
    g_rows = g.transpose(0, 2, 3, 1).reshape(-1, g.shape[1])
    o_all, c_all = g.shape[1], x.shape[1]
    whole = o_tile >= o_all and c_tile >= c_all
    tiles = []
    for o0 in range(0, o_all, o_tile):
        for c0 in range(0, c_all, c_tile):
            o1, c1 = min(o0 + o_tile, o_all), min(c0 + c_tile, c_all)
            sl = (slice(o0, o1), slice(c0, c1))
            tiles.append(
                Tile(
                    x_cols=np.ascontiguousarray(cols[:, c0:c1].reshape(cols.shape[0], -1)),
                    g_rows=np.ascontiguousarray(g_rows[:, o0:o1]),
                    mode=mode,
                    beta_q=beta_q,
                    max_in=0 if whole else top,
                    sign=(np.sign(ref.g_full[sl]) if mode == "full" else ref.sign[sl]).astype(np.int8).ravel(),
                    g_full=ref.g_full[sl].astype(np.int64).ravel(),
                    g_msb=ref.g_msb[sl].astype(np.int64).ravel(),
                    predicted=int(np.count_nonzero(conf[sl])) if mode == "psg" else 0,
                    tile_max=int(np.abs(ref.g_msb[sl].astype(np.int64)).max(initial=0)),
                )
            )
    return tiles, ref


def pack(values: np.ndarray, per_beat: int, dtype) -> bytes:
    """[T, E] -> the bytes of a pass: each step zero-padded to whole beats of ``per_beat`` elements."""
    t, e = values.shape
    beats = -(-e // per_beat)
    buf = np.zeros((t, beats * per_beat), dtype=np.dtype(dtype).newbyteorder("<"))
    buf[:, :e] = values
    return buf.tobytes()


def x_stream(tile: Tile, xpb: int) -> bytes:
    return pack(tile.x_cols, xpb, np.int8)


def g_stream(tile: Tile, gpb: int) -> bytes:
    return pack(tile.g_rows, gpb, np.int16)


def unpack_result(data: bytes, mode: str, n_weights: int) -> np.ndarray:
    """The result stream's bytes -> int8 signs (psg) or int64 G_full (full)."""
    dt = np.int8 if mode == "psg" else np.dtype("<i8")
    out = np.frombuffer(bytes(data), dtype=dt)
    if out.size != n_weights:
        raise ValueError(f"result stream has {out.size} values, expected {n_weights}")
    return out
