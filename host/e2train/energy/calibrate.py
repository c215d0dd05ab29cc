"""Fit the ZedBoard table to metered micro-benchmarks.

Each micro-benchmark is a JSON file (or a directory holding ``report.json``) with

    {"macs": {"8x8": n, "16x8": n, "4x10": n, "8x16": n},   # MACs run, by operand widths
     "onchip_bits": n, "offchip_bits": n,                    # traffic of the on-chip buffers and DRAM
     "wall_seconds": s, "measured_joules": j}                # meter window, idle baseline subtracted

The model is linear in the constants: J = sum_k e_k n_k + e_on on/64 + e_dram off/64 + P_static s, so a
non-negative least-squares fit over at least as many benchmarks as constants gives them; benchmarks
that vary one quantity at a time (MAC-bound layers, copy-only transfers, idle-length runs) make the
fit well conditioned. Constants a benchmark set cannot separate are left at their previous values.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np

from .report import parse_width
from .tables import EnergyTable

PJ = 1e-12


def load_benchmarks(paths: list[str]) -> list[dict]:
    out = []
    for p in paths:
        f = os.path.join(p, "report.json") if os.path.isdir(p) else p
        with open(f) as fh:
            d = json.load(fh)
        missing = [k for k in ("macs", "measured_joules") if k not in d]
        if missing:
            raise ValueError(f"{p}: micro-benchmark lacks {', '.join(missing)}")
        m = d["measured_joules"]
        d["measured_joules"] = float(m.get("run", m.get("total")) if isinstance(m, dict) else m)
        d["_name"] = p
        out.append(d)
    return out


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with x >= 0: drop the most negative coefficient and refit until none is negative."""
    active = list(range(a.shape[1]))
    x = np.zeros(a.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(a[:, active], b, rcond=None)
        if (sol >= 0).all():
            x[:] = 0
            x[active] = sol
            return x
        active.pop(int(np.argmin(sol)))
    return x


def fit(benchmarks: list[dict], base: EnergyTable) -> tuple[EnergyTable, dict]:
    widths = sorted({_key(k) for b in benchmarks for k in b["macs"]})
    cols = [f"mac:{w}" for w in widths]
    extra = [("onchip_bits", "onchip_pj_per_64b"), ("offchip_bits", "dram_pj_per_64b"), ("wall_seconds", "static_watts")]
    cols += [name for key, name in extra if any(b.get(key) for b in benchmarks)]
    if len(benchmarks) < len(cols):
        raise ValueError(f"{len(cols)} constants to fit ({', '.join(cols)}) need at least as many benchmarks, "
                         f"got {len(benchmarks)}")
    a = np.zeros((len(benchmarks), len(cols)))
    y = np.array([b["measured_joules"] for b in benchmarks])
    for i, b in enumerate(benchmarks):
        for k, n in b["macs"].items():
            a[i, cols.index(f"mac:{_key(k)}")] += float(n) * PJ
        for key, name in extra:
            if name in cols:
                scale = 1.0 if key == "wall_seconds" else PJ / 64
                a[i, cols.index(name)] = float(b.get(key) or 0.0) * scale
    # scale columns so that the fit is not dominated by the units
    norm = np.where(np.abs(a).max(axis=0) > 0, np.abs(a).max(axis=0), 1.0)
    x = _nnls(a / norm, y) / norm
    if np.linalg.matrix_rank(a) < len(cols):
        raise ValueError("the benchmarks cannot separate the constants (rank-deficient): vary one quantity at a time")
    mac = dict(base.mac_pj)
    status = dict(base.status)
    values = {}
    for c, v in zip(cols, x):
        if c.startswith("mac:"):
            mac[c[4:]] = float(v)
        else:
            values[c] = float(v)
            status[c] = "calibrated"
    for c in cols:
        if c.startswith("mac:"):
            status[f"mac_{c[4:]}"] = "calibrated"
    table = replace(base, name=f"{base.name}-calibrated", mac_pj=mac, status=status,
                    source=f"{base.source}; calibrated on {len(benchmarks)} metered micro-benchmarks", **values)
    pred = a @ x
    residual = {b["_name"]: float(p - m) for b, p, m in zip(benchmarks, pred, y)}
    return table, residual


def _key(k: str) -> str:
    w = parse_width(k)
    return f"fp{w[1]}" if w[0] == "fp" else f"{w[1]}x{w[2]}"
