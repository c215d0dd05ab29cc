#!/usr/bin/env python3
"""Write golden vectors for the HLS C++ testbenches (hls/tb/) from the Python reference fabric.

    python tools/gen_golden.py [--out hls/build/golden] [--seed 0] [--random 6]

One text file per kernel (conv_fwd.txt, conv_bwd_data.txt, conv_bwd_weight_psg.txt), each the contract
version its expected values follow (the testbenches refuse another, hls/tb/tb_golden.h) and a list of
cases that the testbench runs through the synthesizable top and compares bit for bit:

    contract <version>                first line: e2train.fixed.CONTRACT_VERSION
    case <kernel> <integer parameters...>
    <name> <count> <values...>        one line per array (inputs, then expected outputs)
    end

Cases: edge values (-128, -32768, all zeros, the MSB predictor's ties and saturated band), ties at the
PSG threshold, and random layers with k in {1, 3} and stride in {1, 2}, all within the tops' 32 x 32
local buffers. Generated files are build outputs (hls/build is ignored by git).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host"))

from e2train import fixed  # noqa: E402
from e2train.contract import MODES  # noqa: E402
from e2train.fabric import get_fabric, out_size  # noqa: E402
from e2train.fabric.selftest import edge_operands  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "hls" / "build" / "golden"
BETA_Q = 3277  # beta = 0.05


def _array(name: str, a) -> str:
    flat = np.asarray(a).reshape(-1)
    return f"{name} {flat.size} " + " ".join(str(int(v)) for v in flat)


def fill(rng, kind: str, shape, dtype):
    info = np.iinfo(dtype)
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "min":
        return np.full(shape, info.min, dtype)
    if kind == "max":
        return np.full(shape, info.max, dtype)
    if kind == "edges":
        return edge_operands(rng, shape, dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def layer_cases(rng, n_random: int):
    """(n, c, o, h, w, k, s, x-fill, w-fill, g-fill): edge cases, then random layers."""
    cases = [
        (1, 1, 1, 3, 3, 3, 1, "min", "min", "min"),  # every product at its most negative extreme
        (2, 3, 2, 5, 4, 3, 2, "max", "min", "min"),
        (1, 2, 3, 4, 4, 1, 1, "zeros", "rand", "zeros"),
        (2, 2, 2, 6, 6, 3, 1, "rand", "zeros", "rand"),
        (1, 4, 3, 7, 5, 1, 2, "min", "max", "max"),
        (2, 3, 5, 9, 8, 3, 1, "edges", "rand", "edges"),  # MSB ties, saturated band, most negative values
        (2, 9, 9, 8, 7, 1, 2, "edges", "edges", "edges"),
    ]
    for _ in range(n_random):
        k = int(rng.choice([1, 3]))
        s = int(rng.choice([1, 2]))
        cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 10)),
                      int(rng.integers(1, 13)), int(rng.integers(1, 13)), k, s, "rand", "rand", "rand"))
    cases.append((2, 5, 9, 32, 32, 3, 2, "rand", "rand", "rand"))  # the tops' largest plane
    return cases


def tie_cases():
    """PSG ties: 1 x 1 images where G_msb is set exactly. x = 16 gives x_msb = 1; g = 64 m + d, |d| < 32,
    gives g_msb = m.

    With G_msb = (4, 2, 1, 0) and beta_q = 32768 (beta = 1/2): |2| * 65536 == 32768 * 4 is a tie and
    counts as confident; 1 is below the threshold; 0 never takes the predicted sign.
    """
    x = np.full((1, 1, 1, 1), 16, np.int8)
    g = np.array([4 * 64, -2 * 64, 64 + 5, 31], np.int16).reshape(1, 4, 1, 1)
    yield x, g, 32768
    yield x, -g, 32768
    yield x, g, 0  # beta 0: every nonzero G_msb is confident, zero still is not
    yield x, g, 65536  # beta 1: only the largest


def write_golden(out: Path, seed: int = 0, n_random: int = 6) -> dict[str, int]:
    ref = get_fabric("reference")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    fwd, bwd, psg = [], [], []
    for n, c, o, h, w, k, s, xf, wf, gf in layer_cases(rng, n_random):
        x = fill(rng, xf, (n, c, h, w), np.int8)
        wt = fill(rng, wf, (o, c, k, k), np.int8)
        g = fill(rng, gf, (n, o, out_size(h, k, s), out_size(w, k, s)), np.int16)
        y = ref.conv_fwd(x, wt, s)
        fwd.append([f"case conv_fwd {n} {c} {h} {w} {o} {k} {s}", _array("x", x), _array("w", wt), _array("y", y)])
        gx = ref.conv_bwd_data(g, wt, s, (h, w))
        bwd.append([f"case conv_bwd_data {n} {c} {h} {w} {o} {k} {s}", _array("g", g), _array("w", wt),
                    _array("gx", gx)])
        for mode in ("psg", "full"):
            psg.append(_psg_case(ref, x, g, k, s, BETA_Q, mode))
    for x, g, beta_q in tie_cases():
        psg.append(_psg_case(ref, x, g, 1, 1, beta_q, "psg"))
    for name, cases in (("conv_fwd", fwd), ("conv_bwd_data", bwd), ("conv_bwd_weight_psg", psg)):
        text = f"contract {fixed.CONTRACT_VERSION}\n" + "\n".join("\n".join(lines) + "\nend" for lines in cases) + "\n"
        tmp = out / f"{name}.txt.tmp"
        tmp.write_text(text)
        tmp.replace(out / f"{name}.txt")
        counts[name] = len(cases)
    return counts


def _psg_case(ref, x, g, k, s, beta_q, mode):
    n, c, h, w = x.shape
    o = g.shape[1]
    r = ref.conv_bwd_weight_psg(x, g, k, s, beta_q, mode)
    lines = [f"case conv_bwd_weight_psg {n} {c} {h} {w} {o} {k} {s} {beta_q} {MODES[mode]}", _array("x", x),
             _array("g", g), _array("sign", r.sign), _array("predicted", [r.predicted])]
    if mode == "full":
        lines.append(_array("g_full", r.g_full))
    else:
        lines += [_array("g_msb", r.g_msb), _array("max_abs_msb", [r.max_abs_msb])]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random", type=int, default=6, help="random layers per kernel besides the edge cases")
    args = ap.parse_args(argv)
    counts = write_golden(args.out, args.seed, args.random)
    print(f"gen_golden: {', '.join(f'{k} {v} cases' for k, v in counts.items())} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
