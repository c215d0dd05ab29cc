#!/usr/bin/env python3
"""Resource estimate of the PSG weight-gradient engine for the ZedBoard's xc7z020, by yosys.

Runs ``synth_xilinx -family xc7 -noiopad`` on hw/rtl at the engine's default parameters (or the ones
given with --param NAME=VALUE) and prints LUT, FF, DSP48E1 and BRAM36 use with their share of the
xc7z020 (53,200 LUT / 106,400 FF / 220 DSP48E1 / 140 BRAM36). It is an estimate: yosys maps and
packs differently from Vivado, and no placement or timing is done.

    python tools/utilization.py            # table
    python tools/utilization.py --json     # {"cells": {...}, "percent": {"LUT": .., "FF": .., "DSP": .., "BRAM": ..}, ...}
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from cocotb_run import ENGINE_SOURCES, RTL_DIR, parse_engine_params  # noqa: E402

TOP = "psg_wgrad_engine"

XC7Z020 = {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM": 140}

# LUTs that one cell of a LUT-based memory or shift register occupies (7-series slices)
LUTRAM_LUTS = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4,
    "SRL16E": 1, "SRLC32E": 1,
}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


def synthesize(params: dict[str, int], yosys: str = "yosys") -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Cell counts of the whole design after synth_xilinx, and of one instance of each module.

    The hierarchy is kept (every PE is the same module, mapped once), which keeps yosys fast.
    """
    if shutil.which(yosys) is None:
        raise FileNotFoundError(f"{yosys} not found on PATH (Debian: apt-get install yosys)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stat.json"
        chparams = "".join(f"chparam -set {k} {int(v)} {TOP}; " for k, v in params.items())
        script = (
            "read_verilog " + " ".join(str(RTL_DIR / s) for s in ENGINE_SOURCES) + "; "
            + chparams
            + f"synth_xilinx -family xc7 -noiopad -top {TOP}; "
            + f"tee -q -o {out} stat -json -top {TOP}"
        )
        proc = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"yosys failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        # yosys 0.23 writes the hierarchy's text lines ("name  count") into stat -json -top's output
        text = "\n".join(l for l in out.read_text().splitlines() if not re.match(r"^\s*[^\s\"{}\[\],:]+\s+\d+\s*$", l))
        stat = json.loads(text)
    design = stat.get("design") or stat["modules"][next(iter(stat["modules"]))]
    per_module = {name.split("\\")[-1]: {k: int(v) for k, v in m["num_cells_by_type"].items()}
                  for name, m in stat["modules"].items()}
    return {k: int(v) for k, v in design["num_cells_by_type"].items()}, per_module


def resources(cells: dict[str, int]) -> dict[str, float]:
    # INV is a LUT1 once placed
    lut_logic = sum(n for c, n in cells.items() if (c.startswith("LUT") and c[3:].isdigit()) or c == "INV")
    lut_mem = sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS)
    return {
        "LUT": lut_logic + lut_mem,
        "LUT_logic": lut_logic,
        "LUT_memory": lut_mem,
        "FF": sum(n for c, n in cells.items() if c in FF_CELLS),
        "DSP": cells.get("DSP48E1", 0),
        "BRAM": cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0),
        "CARRY4": cells.get("CARRY4", 0),
    }


def report(params: dict[str, int]) -> dict:
    cells, per_module = synthesize(params)
    used = resources(cells)
    percent = {k: round(100.0 * used[k] / XC7Z020[k], 2) for k in XC7Z020}
    return {"device": "xc7z020", "top": TOP, "params": params, "cells": cells, "used": used,
            "available": XC7Z020, "percent": percent,
            "per_module_instance": {m: resources(c) for m, c in per_module.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a parameter of the engine (P, OMAX, KMAX, XPB, GPB, KDIAG)")
    args = ap.parse_args(argv)
    try:
        params = parse_engine_params(args.param)
    except ValueError as e:
        raise SystemExit(f"utilization: {e}") from None
    try:
        rep = report(params)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"utilization: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"{TOP} on {rep['device']} (yosys synth_xilinx estimate), params {rep['params'] or 'default'}")
    for k in ("LUT", "FF", "DSP", "BRAM"):
        print(f"  {k:5s} {rep['used'][k]:>9} / {XC7Z020[k]:>7}  {rep['percent'][k]:6.2f} %")
    print(f"  (LUT: {rep['used']['LUT_logic']} logic + {rep['used']['LUT_memory']} as memory; "
          f"{rep['used']['CARRY4']} CARRY4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
