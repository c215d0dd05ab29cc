"""``e2train energy report | table3 | calibrate | estimate``."""

from __future__ import annotations

import sys

from .tables import TABLES, load_table


def register(sub) -> None:
    p = sub.add_parser("energy", help="energy model: estimates, run reports, Table 3, calibration")
    esub = p.add_subparsers(dest="energy_command", metavar="ACTION")

    rep = esub.add_parser("report", help="table and accuracy-vs-energy plot of finished runs")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--table", default="zedboard", help=f"{', '.join(TABLES)} or a TOML file (default zedboard)")
    rep.add_argument("--plot", default="energy_report.png", help="PNG to write (default energy_report.png)")
    rep.set_defaults(func=_report)

    t3 = esub.add_parser("table3", help="E2-Train Table 3's computational savings from its components")
    t3.set_defaults(func=_table3)

    cal = esub.add_parser("calibrate", help="fit the ZedBoard table to metered micro-benchmarks")
    cal.add_argument("benchmarks", nargs="+", metavar="BENCH", help="JSON files or run dirs (see docs/energy.md)")
    cal.add_argument("--base", default="zedboard")
    cal.add_argument("--out", required=True, help="TOML file to write the calibrated table to")
    cal.set_defaults(func=_calibrate)

    est = esub.add_parser("estimate", help="estimate a training run's energy from model and schedule, no training")
    est.add_argument("--model", default="resnet74")
    est.add_argument("--precision", default="psg", choices=("fp32", "fixed8", "psg"))
    est.add_argument("--iterations", type=int, default=64000)
    est.add_argument("--baseline-iterations", type=int, default=None)
    est.add_argument("--batch", type=int, default=128)
    est.add_argument("--smd-drop", type=float, default=0.0)
    est.add_argument("--slu-executed", type=float, default=1.0)
    est.add_argument("--psg-predicted", type=float, default=0.0)
    est.add_argument("--table", default="horowitz45")
    est.add_argument("--per-layer", action="store_true")
    est.set_defaults(func=_estimate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _err(msg: str) -> int:
    print(f"e2train energy: {msg}", file=sys.stderr)
    return 2


def _report(args) -> int:
    from .report import ReportError, format_table, plot, run_energy

    try:
        table = load_table(args.table)
        runs = [run_energy(r, table) for r in args.runs]
    except (ReportError, ValueError) as exc:
        return _err(str(exc))
    print(format_table(runs, table))
    plot(runs, args.plot, table)
    print(f"plot: {args.plot}")
    return 0


def _table3(args) -> int:
    from .table3 import implied_psg_interval, rows

    print("E2-Train Table 3 (ResNet-74, CIFAR-10): computational savings = 1 - r_SMD x r_SLU x r_PSG")
    ok = True
    for r in rows():
        match = f"{r.savings_percent:.2f}" == f"{r.paper_percent:.2f}"
        ok &= match
        print(f"  skip {100 * r.skip:.0f} %: {r.formula()}   paper {r.paper_percent:.2f} %  "
              f"{'match' if match else 'MISMATCH'}")
    lo, hi = implied_psg_interval()
    print(f"  r_PSG consistent with all three published rows: ({float(lo):.5f}, {float(hi):.5f}]")
    return 0 if ok else 1


def _calibrate(args) -> int:
    from .calibrate import fit, load_benchmarks

    try:
        base = load_table(args.base)
        benches = load_benchmarks(args.benchmarks)
        table, residual = fit(benches, base)
    except (OSError, ValueError) as exc:
        return _err(str(exc))
    with open(args.out, "w") as f:
        f.write(table.to_toml())
    for name, r in residual.items():
        print(f"  {name}: residual {r:+.4g} J")
    print(f"calibrated table written to {args.out}")
    return 0


def _estimate(args) -> int:
    from .counts import Schedule
    from .model import baseline_schedule, estimate_run

    try:
        table = load_table(args.table)
        sched = Schedule(args.precision, args.iterations, args.smd_drop, args.slu_executed, args.psg_predicted,
                         baseline_iterations=args.baseline_iterations)
        est = estimate_run(args.model, sched, table, args.batch)
        base = estimate_run(args.model, baseline_schedule(sched), table, args.batch)
    except ValueError as exc:
        return _err(str(exc))
    est_keys = table.estimated()
    print(f"{args.model}, {args.precision}, {sched.executed_iterations:.0f} executed iterations, table {table.name}"
          + (f" (estimates, not measurements: {', '.join(est_keys)})" if est_keys else ""))
    for phase, j in est.by_phase().items():
        print(f"  {phase:<16} {j:12.4g} J")
    print(f"  compute {est.total('compute_j'):.4g} J, on-chip {est.total('onchip_j'):.4g} J, "
          f"off-chip {est.total('offchip_j'):.4g} J")
    print(f"  total {est.joules:.4g} J; 32-bit SGD baseline {base.joules:.4g} J; saving {100 * (1 - est.joules / base.joules):.2f} %")
    print(f"  MACs {est.macs:.4g} against {base.macs:.4g}: computational saving {100 * (1 - est.macs / base.macs):.2f} %")
    if args.per_layer:
        for p in est.phases:
            print(f"    {p.layer:<24} {p.phase:<16} {p.macs:12.4g} MAC {p.total_j * est.iterations:10.4g} J")
    return 0
