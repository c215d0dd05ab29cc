#!/usr/bin/env python3
"""Throughput of the PSG weight-gradient engine in simulation (Verilator), ResNet-20 layer tiles.

For one tile of each ResNet-20 convolution (CIFAR-10, 32x32 inputs; random int8 activations after a
ReLU and int16 gradients), runs a psg job on the engine at its default parameters with no stalls
and no backpressure, checks it against the reference fabric, and prints:

* cycles: the engine's busy-cycle counter (ap_start to ap_done);
* ideal:  (MSB MACs + correction MACs) / P, one MAC per PE per cycle;
* util:   ideal / cycles (goal >= 85 %);
* skipped: share of correction MACs skipped (confident weights of the tile) beside the
  reference's predictor ratio for the whole layer.

    python benchmarks/rtl_throughput.py [--json out.json] [--batch N] [--param NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

import cocotb_run  # noqa: E402


def resnet20_layers(batch: int, beta_q: int) -> list[dict]:
    """One entry per distinct conv shape of ResNet-20 (option-A shortcuts: no 1x1 convs)."""
    rows = [  # name, C, O, input H=W, stride, how many such convs ResNet-20 has
        ("stem 3->16", 3, 16, 32, 1, 1),
        ("stage1 16->16", 16, 16, 32, 1, 6),
        ("stage2 16->32 s2", 16, 32, 32, 2, 1),
        ("stage2 32->32", 32, 32, 16, 1, 5),
        ("stage3 32->64 s2", 32, 64, 16, 2, 1),
        ("stage3 64->64", 64, 64, 8, 1, 5),
    ]
    out = []
    for i, (name, c, o, hw, s, count) in enumerate(rows):
        n = batch * (4 if hw == 8 else 1)  # the 8x8 stage gets more images so that T is not tiny
        out.append(dict(name=name, n=n, c=c, h=hw, w=hw, o=o, k=3, s=s, beta_q=beta_q, seed=100 + i, count=count))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PSG engine throughput on ResNet-20 layer tiles (Verilator)")
    ap.add_argument("--batch", type=int, default=1, help="images per job for the 32x32 and 16x16 layers")
    ap.add_argument("--beta-q", type=int, default=3277, help="Q0.16 beta (default 0.05)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="engine parameter override")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    try:
        params = {**cocotb_run.ENGINE_DEFAULTS, **cocotb_run.parse_engine_params(args.param)}
    except ValueError as e:
        ap.error(str(e))
    layers = resnet20_layers(args.batch, args.beta_q)
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        try:
            res = cocotb_run.run(top="psg_wgrad_engine", sources=cocotb_run.ENGINE_SOURCES,
                                 test_module="tb_psg_engine", sim="verilator", parameters=params,
                                 testcase="bench_layers",
                                 extra_env={"PSG_BENCH_LAYERS": json.dumps(layers), "PSG_REPORT": report})
        except (cocotb_run.SimulatorMissing, RuntimeError) as e:
            print(f"rtl_throughput: {e}", file=sys.stderr)
            return 2
        if res["failures"] or not os.path.exists(report):
            print(f"benchmark simulation failed: {res}", file=sys.stderr)
            return 1
        rows = json.load(open(report))["bench"]
    p = params["P"]
    print(f"engine P={p} OMAX={params['OMAX']} KMAX={params['KMAX']} XPB={params['XPB']} GPB={params['GPB']}, "
          f"beta_q={args.beta_q}, Verilator, no stalls")
    print(f"{'layer':18s} {'tiles':>5s} {'T':>6s} {'O_t':>4s} {'K_t':>4s} {'cycles':>9s} {'ideal':>9s} "
          f"{'util':>6s} {'skipped':>8s} {'ref ratio':>9s}")
    tot_c = tot_i = 0.0
    for r in rows:
        ideal = (r["msb_macs"] + r["corr_macs"]) / p
        r["ideal_cycles"] = ideal
        r["utilisation"] = ideal / r["cycles"]
        r["corr_skipped"] = 1 - r["corr_macs"] / r["msb_macs"]
        tot_c += r["cycles"] * r["tiles"] * r["count"]
        tot_i += ideal * r["tiles"] * r["count"]
        print(f"{r['name']:18s} {r['tiles']:5d} {r['T']:6d} {r['O_t']:4d} {r['K_t']:4d} {r['cycles']:9d} "
              f"{ideal:9.0f} {100 * r['utilisation']:5.1f}% {100 * r['corr_skipped']:7.1f}% "
              f"{100 * r['layer_predicted_ratio']:8.1f}%")
    print(f"ResNet-20, all 19 convs (every tile of every conv, at the T above): utilisation {100 * tot_i / tot_c:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"params": params, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
