"""Integer operands for the tests that hold a backend to the reference: fills of one tensor, whole
layers (x, w, g) of several kinds, and layers whose values sit on the contract-v2 predictor's corners."""

import numpy as np

from e2train.contract import out_size
from e2train.fabric.selftest import edge_operands

# "edges": the MSB predictor's ties, saturated band and most negative values (contract v2)
FILLS = ("rand", "rand", "rand", "min", "max", "zeros", "sparse", "edges", "edges")


def fill(rng, kind, shape, dtype):
    info = np.iinfo(dtype)
    if kind == "min":
        return np.full(shape, info.min, dtype)
    if kind == "max":
        return np.full(shape, info.max, dtype)
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "edges":
        return edge_operands(rng, shape, dtype)
    a = rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)
    if kind == "sparse":  # mostly zeros, with the extremes mixed in
        a[rng.random(shape) < 0.7] = 0
        a[rng.random(shape) < 0.1] = info.min
    return a


def make(layer):
    """(n, c, o, h, w, k, s, fill of x, of w, of g, seed) -> x, w, g, k, s."""
    n, c, o, h, w, k, s, fx, fw, fg, seed = layer
    rng = np.random.default_rng(seed)
    x = fill(rng, fx, (n, c, h, w), np.int8)
    wt = fill(rng, fw, (o, c, k, k), np.int8)
    g = fill(rng, fg, (n, o, out_size(h, k, s), out_size(w, k, s)), np.int16)
    return x, wt, g, k, s


LAYER_KINDS = ("random", "min", "edges", "sparse")


def layer_operands(rng, n, c, o, h, w, k, s, kind):
    """x, w, g of one layer: uniform ("random"), all at the most negative value ("min"), only the
    extreme values and zero ("edges"), or sparse small values with many exact ties ("sparse")."""
    ho, wo = out_size(h, k, s), out_size(w, k, s)
    if kind == "random":
        x = rng.integers(-128, 128, size=(n, c, h, w), dtype=np.int8)
        wt = rng.integers(-128, 128, size=(o, c, k, k), dtype=np.int8)
        g = rng.integers(-32768, 32768, size=(n, o, ho, wo), dtype=np.int16)
    elif kind == "min":  # every operand at its most negative value: the largest products
        x = np.full((n, c, h, w), -128, np.int8)
        wt = np.full((o, c, k, k), -128, np.int8)
        g = np.full((n, o, ho, wo), -32768, np.int16)
    elif kind == "edges":  # only the extreme values and zero
        x = rng.choice(np.array([-128, 127, 0, -1], np.int8), size=(n, c, h, w))
        wt = rng.choice(np.array([-128, 127, 0, -1], np.int8), size=(o, c, k, k))
        g = rng.choice(np.array([-32768, 32767, 0, -1, 63, -64], np.int16), size=(n, o, ho, wo))
    else:  # sparse small values: many exact ties and zero predictor sums
        x = (rng.integers(-3, 4, size=(n, c, h, w)) * (rng.random((n, c, h, w)) < 0.3)).astype(np.int8)
        wt = rng.integers(-2, 3, size=(o, c, k, k), dtype=np.int8)
        g = (rng.integers(-200, 200, size=(n, o, ho, wo)) * (rng.random((n, o, ho, wo)) < 0.3)).astype(np.int16)
    return x, wt, g


# values where v2's rounding or saturation decides the MSB (and their neighbours)
X_CORNERS = np.array([-128, -127, -25, -24, -23, -9, -8, -7, 0, 7, 8, 9, 23, 24, 25, 119, 120, 121, 126, 127], np.int8)
G_CORNERS = np.array(
    [-32768, -32767, -97, -96, -95, -33, -32, -31, 0, 31, 32, 33, 95, 96, 97, 32735, 32736, 32737, 32766, 32767], np.int16
)
CORNER_KINDS = ("corners", "mixed", "max", "min")


def corner_operands(rng, n, c, o, h, w, k, s, kind):
    """x, w, g with x and g on the predictor's corners: every element ("corners"), half of them among
    uniform values ("mixed"), all at the top where every MSB saturates ("max") or all at the bottom."""
    ho, wo = out_size(h, k, s), out_size(w, k, s)
    if kind == "corners":  # every element a corner value
        x = rng.choice(X_CORNERS, (n, c, h, w))
        g = rng.choice(G_CORNERS, (n, o, ho, wo))
    elif kind == "mixed":  # corners scattered among uniform values
        x = np.where(rng.random((n, c, h, w)) < 0.5, rng.choice(X_CORNERS, (n, c, h, w)),
                     rng.integers(-128, 128, (n, c, h, w))).astype(np.int8)
        g = np.where(rng.random((n, o, ho, wo)) < 0.5, rng.choice(G_CORNERS, (n, o, ho, wo)),
                     rng.integers(-32768, 32768, (n, o, ho, wo))).astype(np.int16)
    elif kind == "max":  # all at the top: every MSB saturated
        x, g = np.full((n, c, h, w), 127, np.int8), np.full((n, o, ho, wo), 32767, np.int16)
    else:  # all at the bottom: the largest products
        x, g = np.full((n, c, h, w), -128, np.int8), np.full((n, o, ho, wo), -32768, np.int16)
    wt = rng.integers(-128, 128, (o, c, k, k), dtype=np.int8)
    return x, wt, g
