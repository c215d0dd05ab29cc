"""Operand fills for the tests that hold the csim paths to the reference (test_csim_fabric.py,
test_csim_ap_path.py)."""

import numpy as np

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
