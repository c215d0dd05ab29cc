"""Energy of finished runs from their report.json: estimated (counts x table) and measured (meter), with
savings against the 32-bit SGD baseline of the same schedule, as a table and a Fig. 5-style plot.

report.json fields used (written by ``e2train train``): ``top1``, ``macs`` (per phase ``forward`` /
``backward_data`` / ``backward_weight``: a number, or a mapping from bit widths such as ``"8x8"``,
``"16x8"``, ``"4x10"``, ``"8x16"`` or ``"fp32"`` to a number), ``baseline_macs`` (a number or the same
per-phase form; ``baseline_macs_per_phase`` preferred), ``macs_by_bits`` (preferred over ``macs``: per phase, MACs by operand widths, ``"32x32"`` for float layers),
``psg_predicted_ratio``, ``slu_executed_ratio``, ``wall_seconds``, the model name
(``arch``, ``model`` or ``config.model.arch``), the batch (``config.schedule.batch_size``), ``precision`` (``fp32``, ``fixed8``, ``psg``) and, when a meter ran,
``measured_joules`` (``{"run": J, ...}`` or a number).

Report-based estimates price each MAC at the widths the report gives (an int8 x int16 fall-back MAC as
a whole multiply, as the training library counts it) and take the memory energy per MAC of each phase
from the model's layer shapes (``e2train.energy.counts``); without a model name, memory is left out
and the table says so. The estimate is dynamic energy only: static power is not added (an emulated
run's wall time is not the board's, and the baseline has no time at all). ``energy_fields`` is what
the training loop writes into every report.json as ``estimated_energy``, with the same function.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from .counts import PHASES, Schedule, model_convs, network_counts
from .model import PJ, compute_pj, estimate_counts
from .tables import EnergyTable, load_table


class ReportError(ValueError):
    pass


def parse_width(key: str) -> tuple:
    """``"8x8"``, ``"int16xint8"``, ``"4*10"`` -> ('int', a, b); ``"fp32"``, ``"float32"`` and the training
    library's ``"32x32"`` (its key for the layers that stay in float) -> ('fp', 32)."""
    k = str(key).lower()
    if k == "32x32":
        return ("fp", 32)
    nums = [int(n) for n in re.findall(r"\d+", k)]
    if ("fp" in k or "float" in k) and nums:
        return ("fp", nums[0])
    if len(nums) >= 2:
        return ("int", nums[0], nums[1])
    if len(nums) == 1:
        return ("int", nums[0], nums[0])
    raise ReportError(f"cannot read a bit width from macs key {key!r}")


_ACC = {(8, 8): 32, (4, 10): 32, (10, 4): 32}


def mac_pj(width: tuple, table: EnergyTable) -> float:
    """pJ of one MAC at a width: multiply plus accumulate (32-bit for 8x8 and the predictor, else 48)."""
    key = f"{width[1]}x{width[2]}" if width[0] == "int" else f"fp{width[1]}"
    if key in table.mac_pj:
        return table.mac_pj[key]
    if width[0] == "fp":
        return table.fp_mult(width[1]) + table.fp_add(width[1])
    a, b = width[1], width[2]
    return table.int_mult(a, b) + table.int_add(_ACC.get((a, b), 48))


# Widths a phase runs at when a report gives a bare number.
DEFAULT_WIDTHS = {
    "fp32": {p: {"fp32": 1.0} for p in PHASES},
    "fixed8": {"forward": {"8x8": 1.0}, "backward_data": {"16x8": 1.0}, "backward_weight": {"8x16": 1.0}},
}


@dataclass
class RunEnergy:
    name: str
    top1: float | None
    precision: str
    macs: float
    estimated_j: float
    baseline_j: float
    measured_j: float | None
    parts: dict[str, float] = field(default_factory=dict)  # compute, memory
    notes: list[str] = field(default_factory=list)
    baseline_parts: dict[str, float] = field(default_factory=dict)
    wall_seconds: float | None = None

    @property
    def savings(self) -> float:
        return 1.0 - self.estimated_j / self.baseline_j if self.baseline_j else float("nan")


def load_report(run_dir: str) -> dict:
    path = run_dir if run_dir.endswith(".json") else os.path.join(run_dir, "report.json")
    try:
        with open(path) as f:
            rep = json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{run_dir}: no report.json") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(rep, dict) or "macs" not in rep:
        raise ReportError(f"{path}: no 'macs' field (is it an e2train training report?)")
    return rep


def _precision(rep: dict) -> str:
    cfg = rep.get("config") or {}
    p = rep.get("precision") or cfg.get("precision")
    if p in ("fp32", "fixed8", "psg"):
        return p
    if rep.get("psg_predicted_ratio") is not None:
        return "psg"
    by_bits = rep.get("macs_by_bits") or {}
    widths = {parse_width(k) for ph in by_bits.values() if isinstance(ph, dict) for k in ph}
    return "fixed8" if any(w[0] == "int" for w in widths) else "fp32"


def _model(rep: dict) -> str | None:
    """The architecture: ``arch`` (the training library's report), ``model``, or the config's ``model.arch``."""
    cfg = rep.get("config") or {}
    for v in (rep.get("arch"), rep.get("model"), cfg.get("model"), cfg.get("arch")):
        if isinstance(v, dict):
            v = v.get("arch")
        if isinstance(v, str) and v:
            return v
    return None


def _batch(rep: dict) -> int:
    cfg = rep.get("config") or {}
    sched = cfg.get("schedule") if isinstance(cfg.get("schedule"), dict) else {}
    return int(sched.get("batch_size") or cfg.get("batch_size") or cfg.get("batch") or rep.get("batch") or 128)


def _widths(rep_macs, precision: str, predicted: float) -> dict[str, dict[tuple, float]]:
    if not isinstance(rep_macs, dict):
        rep_macs = {"forward": rep_macs / 3, "backward_data": rep_macs / 3, "backward_weight": rep_macs / 3}
    out: dict[str, dict[tuple, float]] = {}
    for phase in PHASES:
        v = rep_macs.get(phase, 0)
        if isinstance(v, dict):
            out[phase] = {parse_width(k): float(n) for k, n in v.items()}
        elif precision == "psg":
            n = float(v)
            out[phase] = ({("int", 8, 8): n} if phase == "forward" else {("int", 16, 8): n} if phase == "backward_data"
                          else {("int", 4, 10): n, ("int", 8, 16): n * (1 - predicted)})
        else:
            out[phase] = {parse_width(k): float(v) * f for k, f in DEFAULT_WIDTHS[precision][phase].items()}
    return out


def _phase_macs(by_width: dict[tuple, float]) -> float:
    """MACs of a phase. Beside the int4 x int10 predictor, PSG's int8 x int16 MACs are the fall-back work
    on weights the predictor already counted, not more weights."""
    fallback = ("int", 8, 16) if ("int", 4, 10) in by_width else None
    return sum(n for w, n in by_width.items() if w != fallback)


def _memory_pj_per_mac(model: str | None, precision: str, sched: Schedule, table: EnergyTable,
                       batch: int) -> dict[str, float] | None:
    """(on-chip + off-chip) pJ per MAC of each phase, from the model's layer shapes."""
    if not model:
        return None
    counts = network_counts(model_convs(model, batch), Schedule(precision, 1, 0.0, sched.slu_executed_ratio,
                                                                sched.predicted_ratio))
    est = estimate_counts(counts, table)
    out = {}
    for phase in PHASES:
        ps = [p for p in est.phases if p.phase == phase]
        macs = sum(p.macs for p in ps)
        out[phase] = sum(p.onchip_j + p.offchip_j for p in ps) / PJ / macs if macs else 0.0
    return out


def run_energy(run_dir: str, table: EnergyTable) -> RunEnergy:
    rep = load_report(run_dir)
    name = os.path.basename(os.path.normpath(run_dir)) if not run_dir.endswith(".json") else run_dir
    return estimate_report(rep, table, name)


def estimate_report(rep: dict, table: EnergyTable, name: str = "run") -> RunEnergy:
    """The estimated energy of a run and of its 32-bit SGD baseline, from the counts a report holds.

    Dynamic energy only (compute and memory traffic): static power is left out on both sides, since
    the time a run took in emulation is not the time the board would take, and the baseline has no time.
    """
    precision = _precision(rep)
    predicted = float(rep["psg_predicted_ratio"]) if rep.get("psg_predicted_ratio") is not None else 0.0
    slu = float(rep["slu_executed_ratio"]) if rep.get("slu_executed_ratio") is not None else 1.0
    batch = _batch(rep)
    model = _model(rep)
    notes = []
    sched = Schedule(precision, 1, 0.0, slu, predicted)
    try:
        mem = _memory_pj_per_mac(model, precision, sched, table, batch)
        mem_base = _memory_pj_per_mac(model, "fp32", Schedule("fp32"), table, batch)
    except ValueError as exc:
        mem = mem_base = None
        notes.append(f"memory traffic not estimated: {exc}")
    if mem is None and not notes:
        notes.append("memory traffic not estimated: the report names no model")
    widths = _widths(rep.get("macs_by_bits") or rep["macs"], precision, predicted)
    compute = sum(mac_pj(w, table) * n for ph in widths.values() for w, n in ph.items()) * PJ
    phase_macs = {p: _phase_macs(widths[p]) for p in PHASES}
    macs = sum(phase_macs.values())
    memory = sum(mem[p] * phase_macs[p] for p in PHASES) * PJ if mem else 0.0
    base_macs = rep.get("baseline_macs_per_phase") or rep.get("baseline_macs")
    if base_macs is None:
        raise ReportError(f"{name}: no 'baseline_macs': savings need the SGD baseline's MAC count")
    base_w = _widths(base_macs, "fp32", 0.0)
    base_compute = sum(mac_pj(("fp", 32), table) * n for ph in base_w.values() for n in ph.values()) * PJ
    base_memory = sum(mem_base[p] * sum(base_w[p].values()) for p in PHASES) * PJ if mem_base else 0.0
    measured = rep.get("measured_joules")
    if isinstance(measured, dict):
        measured = measured.get("run", measured.get("total"))
    top1 = rep.get("top1")
    wall = rep.get("wall_seconds")
    return RunEnergy(name, float(top1) if top1 is not None else None, precision, macs,
                     compute + memory, base_compute + base_memory,
                     float(measured) if measured is not None else None,
                     {"compute": compute, "memory": memory}, notes,
                     {"compute": base_compute, "memory": base_memory},
                     float(wall) if wall is not None else None)


# The tables every training report carries: the ZedBoard's (the headline) and Horowitz's 45 nm beside it.
REPORT_TABLES = ("zedboard", "horowitz45")


def energy_fields(rep: dict, tables: tuple[str, ...] = REPORT_TABLES) -> dict:
    """``estimated_energy`` of a training report (docs/energy.md): per table the run's joules, its
    baseline's and the saving; the first table is the headline. Measured joules are not touched."""
    per_table = {}
    notes: list[str] = []
    precision = _precision(rep)
    for name in tables:
        table = load_table(name)
        r = estimate_report(rep, table)
        notes += [n for n in r.notes if n not in notes]
        per_table[table.name] = {
            "joules": r.estimated_j, "baseline_joules": r.baseline_j, "saving": r.savings,
            "compute_joules": r.parts["compute"], "memory_joules": r.parts["memory"],
            "baseline_compute_joules": r.baseline_parts["compute"], "baseline_memory_joules": r.baseline_parts["memory"],
            "estimated_constants": [k for k in table.estimated() if k != "static_watts"],  # static is not used
        }
    head = per_table[next(iter(per_table))]
    base_macs = rep.get("baseline_macs_per_phase") or rep.get("baseline_macs")
    return {"estimated_energy": {
        "table": next(iter(per_table)),
        "joules": head["joules"], "baseline_joules": head["baseline_joules"], "saving": head["saving"],
        "tables": per_table,
        "precision": precision,
        "baseline": {"precision": "fp32", "optimizer": "sgd", "network": "plain (no gates, every block)",
                     "iterations": rep.get("baseline_iterations"), "batch_size": _batch(rep),
                     "macs": sum(base_macs.values()) if isinstance(base_macs, dict) else base_macs},
        "notes": notes,
    }}


def format_table(runs: list[RunEnergy], table: EnergyTable) -> str:
    head = f"{'run':<24} {'prec':<6} {'top1':>6} {'GMAC':>10} {'est. J':>11} {'SGD J':>11} {'saving':>7} {'meas. J':>10} {'wall s':>9}"
    est = table.estimated()
    lines = [f"energy table: {table.name}" + (f" (estimates, not measurements: {', '.join(est)})" if est else ""),
             "est. J: estimated dynamic energy of the run; SGD J: of its 32-bit SGD baseline; meas. J: a power meter's",
             head, "-" * len(head)]
    for r in runs:
        top1 = f"{r.top1:.2f}" if r.top1 is not None else "-"
        meas = f"{r.measured_j:.1f}" if r.measured_j is not None else "-"
        wall = f"{r.wall_seconds:.1f}" if r.wall_seconds is not None else "-"
        lines.append(f"{r.name[:24]:<24} {r.precision:<6} {top1:>6} {r.macs / 1e9:>10.2f} {r.estimated_j:>11.4g} "
                     f"{r.baseline_j:>11.4g} {100 * r.savings:>6.2f}% {meas:>10} {wall:>9}")
        for n in r.notes:
            lines.append(f"  note: {n}")
    return "\n".join(lines)


def plot(runs: list[RunEnergy], out_png: str, table: EnergyTable) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    pts = [r for r in runs if r.top1 is not None]
    ax.scatter([r.estimated_j for r in pts], [r.top1 for r in pts], zorder=3)
    for r in pts:
        ax.annotate(f"{r.name} ({100 * r.savings:.1f} % saved)", (r.estimated_j, r.top1), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for b in sorted({round(r.baseline_j, 12) for r in runs}):
        ax.axvline(b, ls="--", lw=0.8, color="grey")
        ax.annotate("32-bit SGD baseline", (b, ax.get_ylim()[0]), rotation=90, fontsize=7, color="grey",
                    xytext=(-10, 4), textcoords="offset points")
    meas = [r for r in pts if r.measured_j is not None]
    if meas:
        ax.scatter([r.measured_j for r in meas], [r.top1 for r in meas], marker="x", label="measured", zorder=3)
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"training energy, J (estimated with {table.name}" + ("; x = measured)" if meas else ")"))
    ax.set_ylabel("top-1 accuracy")
    ax.set_title("accuracy against training energy")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def read_curves(run_dir: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """From a run's metrics.jsonl: (estimated joules, training loss) per log line and (estimated joules,
    validation top-1) per evaluation, the final one from report.json. Lines without joules are skipped."""
    loss, acc = [], []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "estimated_joules" not in rec:
                continue
            if "val_top1" in rec:
                acc.append((rec["estimated_joules"], rec["val_top1"]))
            elif rec.get("steps"):
                loss.append((rec["estimated_joules"], rec["loss"]))
    rep = load_report(run_dir)
    est = rep.get("estimated_energy")
    if est and rep.get("top1") is not None:
        acc.append((est["joules"], rep["top1"]))
    return loss, acc


def plot_curves(run_dir: str, out_png: str) -> None:
    """Training loss and validation accuracy of one run against its estimated energy (headline table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss, acc = read_curves(run_dir)
    rep = load_report(run_dir)
    est = rep.get("estimated_energy") or {}
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6.4, 5.6))
    top.plot([j for j, _ in loss], [v for _, v in loss], marker=".")
    top.set_ylabel("training loss")
    bottom.plot([j for j, _ in acc], [v for _, v in acc], marker="o")
    if est and rep.get("top1") is not None:
        final = "final" + (" (SWA weights)" if rep.get("swa") else "")
        bottom.annotate(f"{final}: {100 * rep['top1']:.1f} %", (est["joules"], rep["top1"]), fontsize=8,
                        xytext=(-6, -14), textcoords="offset points", ha="right")
    bottom.set_ylabel("validation top-1")
    bottom.set_xlabel(f"estimated training energy, J ({est.get('table', '?')} table; estimates, not measurements)")
    if est:
        top.set_title(f"{os.path.basename(os.path.normpath(run_dir))}: {est['joules']:.3g} J; fp32 SGD of the same "
                      f"schedule {est['baseline_joules']:.3g} J (saving {100 * est['saving']:.1f} %)", fontsize=9)
    for ax in (top, bottom):
        ax.grid(True, lw=0.4, alpha=0.6)
        ax.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
