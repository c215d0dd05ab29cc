"""Energy per operation and per bit moved: the Horowitz 45 nm table and a ZedBoard table of estimates.

Every constant carries its status: ``published`` (a number printed in the cited source) or
``estimate`` (ours, with the reasoning in ``source``), until ``e2train energy calibrate`` replaces it
with a fit to meter measurements (status ``calibrated``). Tables load from and save to TOML so that a
user can calibrate without touching code.

Widths between the printed points are interpolated: a multiplier's energy grows with the product of
its operand widths (an array multiplier has a*b partial-product cells; Horowitz's own 8-bit and 32-bit
points give 0.2/64 = 0.0031 and 3.1/1024 = 0.0030 pJ per cell), an adder's linearly with its width.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields

OP_FIELDS = ("int_mult_8", "int_mult_32", "int_add_8", "int_add_32", "fp16_mult", "fp16_add", "fp32_mult",
             "fp32_add", "onchip_pj_per_64b", "dram_pj_per_64b", "static_watts")


@dataclass
class EnergyTable:
    name: str
    int_mult_8: float  # pJ, 8 x 8 bit integer multiply
    int_mult_32: float  # pJ, 32 x 32
    int_add_8: float
    int_add_32: float
    fp16_mult: float
    fp16_add: float
    fp32_mult: float
    fp32_add: float
    onchip_pj_per_64b: float  # one 64-bit read of the on-chip buffer (SRAM / BRAM)
    dram_pj_per_64b: float  # one 64-bit off-chip DRAM access
    static_watts: float = 0.0  # power drawn whether or not anything computes (board idle excluded)
    status: dict[str, str] = field(default_factory=dict)  # constant -> published / estimate / calibrated
    source: str = ""
    # Whole-MAC energies (multiply + accumulate) by operand widths, "8x8" -> pJ, set by calibration;
    # where present they replace the multiply-plus-add composition.
    mac_pj: dict[str, float] = field(default_factory=dict)

    # --- per-operation energies ------------------------------------------------------------------
    def int_mult(self, a: int, b: int) -> float:
        cells = a * b
        if cells <= 64:
            return self.int_mult_8 * cells / 64
        return self.int_mult_8 + (self.int_mult_32 - self.int_mult_8) * (cells - 64) / (1024 - 64)

    def int_add(self, bits: int) -> float:
        slope = (self.int_add_32 - self.int_add_8) / 24
        return max(self.int_add_8 + slope * (bits - 8), 0.0)

    def fp_mult(self, bits: int) -> float:
        return {16: self.fp16_mult, 32: self.fp32_mult}[bits]

    def fp_add(self, bits: int) -> float:
        return {16: self.fp16_add, 32: self.fp32_add}[bits]

    def op(self, kind: str, *bits: int) -> float:
        """pJ of one ('mult'|'add', 'int'|'fp', widths...) operation."""
        if kind == "int_mult":
            return self.int_mult(*bits)
        if kind == "int_add":
            return self.int_add(*bits)
        if kind == "fp_mult":
            return self.fp_mult(*bits)
        if kind == "fp_add":
            return self.fp_add(*bits)
        raise ValueError(f"unknown operation {kind}")

    def estimated(self) -> list[str]:
        return [k for k in OP_FIELDS if self.status.get(k, "estimate").startswith("estimate")]

    # --- TOML ---------------------------------------------------------------------------------------
    def to_toml(self) -> str:
        lines = [f'name = "{self.name}"', f"source = {_toml_str(self.source)}", ""]
        for k in OP_FIELDS:
            lines.append(f"{k} = {getattr(self, k)!r}  # {self.status.get(k, 'estimate')}")
        lines += ["", "[status]"] + [f'{k} = "{self.status.get(k, "estimate")}"' for k in OP_FIELDS]
        if self.mac_pj:
            lines += ["", "[mac_pj]"] + [f'"{k}" = {v!r}' for k, v in sorted(self.mac_pj.items())]
        return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def table_from_dict(d: dict, base: EnergyTable | None = None) -> EnergyTable:
    """A table from parsed TOML; keys missing from ``d`` come from ``base`` (a partial calibration file)."""
    known = {f.name for f in fields(EnergyTable)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown energy-table keys: {', '.join(sorted(unknown))}")
    values = {}
    for f in fields(EnergyTable):
        if f.name in d:
            values[f.name] = d[f.name]
        elif base is not None:
            values[f.name] = getattr(base, f.name)
    missing = [k for k in ("name",) + OP_FIELDS[:-1] if k not in values]
    if missing:
        raise ValueError(f"energy table lacks {', '.join(missing)}")
    for k in OP_FIELDS:
        if k in values and (not isinstance(values[k], (int, float)) or values[k] < 0):
            raise ValueError(f"energy table: {k} must be a non-negative number, got {values[k]!r}")
    status = dict(base.status) if base else {}
    status.update(d.get("status", {}))
    values["status"] = status
    values["mac_pj"] = {**(base.mac_pj if base else {}), **{str(k): float(v) for k, v in d.get("mac_pj", {}).items()}}
    return EnergyTable(**values)


def load_table(path_or_name: str) -> EnergyTable:
    """A built-in table by name (``horowitz45``, ``zedboard``) or a TOML file (keys absent from the file
    are taken from the built-in table named by its ``base`` key, default ``zedboard``)."""
    if path_or_name in TABLES:
        return TABLES[path_or_name]
    try:
        with open(path_or_name, "rb") as f:
            d = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"no energy table {path_or_name!r}: not a built-in ({', '.join(TABLES)}) nor a file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path_or_name}: not valid TOML: {exc}") from None
    base = TABLES.get(d.pop("base", "zedboard"))
    return table_from_dict(d, base)


_H = "published"
HOROWITZ45 = EnergyTable(
    name="horowitz45",
    int_mult_8=0.2, int_mult_32=3.1, int_add_8=0.03, int_add_32=0.1,
    fp16_mult=1.1, fp16_add=0.4, fp32_mult=3.7, fp32_add=0.9,
    onchip_pj_per_64b=20.0,  # 32 KB SRAM (8 KB: 10, 1 MB: 100)
    dram_pj_per_64b=1950.0,  # midpoint of 1300-2600
    static_watts=0.0,
    status={**{k: _H for k in OP_FIELDS}, "onchip_pj_per_64b": "published (32 KB point)",
            "dram_pj_per_64b": "estimate (midpoint of the published 1300-2600)", "static_watts": "estimate (not in source)"},
    source="M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V",
)

_E = "estimate"
ZEDBOARD = EnergyTable(
    name="zedboard",
    # xc7z020 fabric at 100 MHz, 1.0 V: a DSP48E1 doing an 8x8 multiply, LUT carry chains for adds,
    # Xilinx floating-point cores (fp32 mult on 3 DSPs, add in ~400 LUTs), BRAM36 reads, and the PS DDR3
    # controller + PHY + DRAM per 64-bit beat. Orders of magnitude after Xilinx Power Estimator style
    # figures for 7-series parts, not measurements.
    int_mult_8=8.0, int_mult_32=50.0, int_add_8=0.5, int_add_32=2.0,
    fp16_mult=20.0, fp16_add=15.0, fp32_mult=60.0, fp32_add=40.0,
    onchip_pj_per_64b=30.0, dram_pj_per_64b=4500.0, static_watts=0.15,
    status={k: _E for k in OP_FIELDS},
    source=("estimates for a Zynq-7020 (ZedBoard) at 100 MHz: DSP48E1 multiplies, LUT adders, Xilinx "
            "floating-point cores, BRAM36 reads, PS DDR3 access; PL static power. Not measured: calibrate "
            "with `e2train energy calibrate` from metered micro-benchmarks"),
)

TABLES = {"horowitz45": HOROWITZ45, "zedboard": ZEDBOARD}
