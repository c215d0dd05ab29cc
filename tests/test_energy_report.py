"""`e2train energy report | table3 | calibrate | estimate` on runs and benchmarks written here."""

import json

import numpy as np
import pytest

from e2train.cli import main
from e2train.energy.calibrate import fit
from e2train.energy.report import parse_width, run_energy
from e2train.energy.table3 import PAPER_ROWS, implied_psg_interval, rows
from e2train.energy.tables import HOROWITZ45, ZEDBOARD

PER_PHASE = 1e12  # MACs per phase of the SGD baseline


def _run(tmp_path, name, **fields):
    d = tmp_path / name
    d.mkdir()
    rep = {"model": "resnet20", "iterations": 64000, "baseline_macs": {p: PER_PHASE for p in
                                                                          ("forward", "backward_data", "backward_weight")},
           "wall_seconds": 100.0, **fields}
    (d / "report.json").write_text(json.dumps(rep))
    return str(d)


def test_table3_reproduces_the_paper_column(capsys):
    assert [f"{r.savings_percent:.2f}" for r in rows()] == ["80.27", "85.20", "90.13"]
    assert [p for _, p in PAPER_ROWS] == [80.27, 85.20, 90.13]
    lo, hi = implied_psg_interval()
    assert lo < 0.37 <= hi and hi - lo < 1e-4
    # a PSG factor outside the interval breaks at least one row: the check can fail
    assert any(f"{r.savings_percent:.2f}" != f"{r.paper_percent:.2f}" for r in rows(0.3702))
    assert main(["energy", "table3"]) == 0
    out = capsys.readouterr().out
    assert out.count("match") == 3 and "85333/64000" in out and "MISMATCH" not in out


def test_width_keys():
    assert parse_width("8x8") == ("int", 8, 8) and parse_width("int16xint8") == ("int", 16, 8)
    assert parse_width("fp32") == ("fp", 32) and parse_width("float32") == ("fp", 32)
    with pytest.raises(ValueError):
        parse_width("wide")


def test_report_of_a_baseline_and_an_e2train_run(tmp_path, capsys):
    sgd = _run(tmp_path, "sgd", top1=93.5, precision="fp32",
               macs={p: PER_PHASE for p in ("forward", "backward_data", "backward_weight")})
    e2 = _run(tmp_path, "e2train", top1=91.8, psg_predicted_ratio=0.6, slu_executed_ratio=0.6,
              macs={"forward": {"8x8": 0.4e12}, "backward_data": {"16x8": 0.4e12},
                    "backward_weight": {"4x10": 0.4e12, "8x16": 0.16e12}}, measured_joules={"run": 1234.5})
    r_sgd, r_e2 = run_energy(sgd, HOROWITZ45), run_energy(e2, HOROWITZ45)
    assert r_sgd.savings == pytest.approx(0.0) and r_sgd.estimated_j == pytest.approx(r_sgd.baseline_j, rel=1e-3)
    # compute by hand for the E2-Train run (Horowitz, pJ per MAC)
    t = HOROWITZ45
    hand = 0.4e12 * (t.int_mult(8, 8) + t.int_add(32)) + 0.4e12 * (t.int_mult(16, 8) + t.int_add(48)) + \
        0.4e12 * (t.int_mult(4, 10) + t.int_add(32)) + 0.16e12 * (t.int_mult(8, 16) + t.int_add(48))
    assert r_e2.parts["compute"] == pytest.approx(hand * 1e-12)
    assert r_e2.macs == pytest.approx(1.2e12) and r_e2.measured_j == 1234.5 and 0.5 < r_e2.savings < 1.0
    png = tmp_path / "fig.png"
    assert main(["energy", "report", sgd, e2, "--table", "horowitz45", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "sgd" in out and "e2train" in out and "0.00%" in out and "1234.5" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_training_librarys_report_shape(tmp_path):
    """Fields as `e2train train` writes them: arch, config.model.arch, per-phase baseline MACs."""
    macs = {"forward": 3e12, "backward_data": 2.9e12, "backward_weight": 3e12}
    d = tmp_path / "trained"
    d.mkdir()
    (d / "report.json").write_text(json.dumps({
        "arch": "resnet20", "top1": 0.91, "macs": macs, "baseline_macs": 9e12,
        "baseline_macs_per_phase": {"forward": 3e12, "backward_data": 3e12, "backward_weight": 3e12},
        "slu_executed_ratio": 1.0, "wall_seconds": 10.0,
        "config": {"model": {"arch": "resnet20", "gating": "none"}, "schedule": {"batch_size": 64}}}))
    r = run_energy(str(d), HOROWITZ45)
    assert r.precision == "fp32" and not r.notes and r.parts["memory"] > 0
    assert r.estimated_j < r.baseline_j and r.savings == pytest.approx(0.1 / 9, rel=0.05)


def test_a_psg_report_with_macs_by_bits(tmp_path):
    """The PSG library's ``macs_by_bits``: quantised convs by width, "32x32" for the float layers."""
    by_bits = {"forward": {"8x8": 1e12, "32x32": 1e9}, "backward_data": {"16x8": 1e12, "32x32": 1e9},
               "backward_weight": {"4x10": 1e12, "8x16": 3e11, "32x32": 1e9}}
    d = _run(tmp_path, "psg", top1=0.9, macs={p: 1.001e12 for p in by_bits}, macs_by_bits=by_bits,
             psg_predicted_ratio=0.7)
    r = run_energy(d, HOROWITZ45)
    t = HOROWITZ45
    fp = t.fp_mult(32) + t.fp_add(32)
    hand = 1e12 * (t.int_mult(8, 8) + t.int_add(32) + t.int_mult(16, 8) + t.int_add(48) + t.int_mult(4, 10)
                   + t.int_add(32)) + 3e11 * (t.int_mult(8, 16) + t.int_add(48)) + 3e9 * fp
    assert r.precision == "psg" and r.parts["compute"] == pytest.approx(hand * 1e-12)
    assert r.macs == pytest.approx(3.003e12)  # the fall-back MACs are work on weights already counted
    assert parse_width("32x32") == ("fp", 32)


def test_a_report_without_a_model_leaves_memory_out_and_says_so(tmp_path):
    d = _run(tmp_path, "anon", top1=90.0, macs=3e9, precision="fixed8")
    rep = json.loads((tmp_path / "anon" / "report.json").read_text())
    del rep["model"]
    (tmp_path / "anon" / "report.json").write_text(json.dumps(rep))
    r = run_energy(d, HOROWITZ45)
    assert r.parts["memory"] == 0.0 and any("names no model" in n for n in r.notes)
    t = HOROWITZ45
    assert r.parts["compute"] == pytest.approx(1e9 * (t.int_mult(8, 8) + t.int_add(32) + 2 * (t.int_mult(16, 8) + t.int_add(48))) * 1e-12)


def test_report_errors_are_clear(tmp_path, capsys):
    assert main(["energy", "report", str(tmp_path / "nothing")]) == 2
    assert "no report.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.json").write_text("{not json")
    assert main(["energy", "report", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    nobase = _run(tmp_path, "nobase", macs=1e9)
    rep = json.loads((tmp_path / "nobase" / "report.json").read_text())
    del rep["baseline_macs"]
    (tmp_path / "nobase" / "report.json").write_text(json.dumps(rep))
    assert main(["energy", "report", nobase]) == 2
    assert "baseline_macs" in capsys.readouterr().err


def _benchmarks(tmp_path, truth):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(9):
        macs = {k: float(rng.integers(0, 10**9)) * (i % 4 == j) + float(rng.integers(0, 10**7))
                for j, k in enumerate(("8x8", "16x8", "4x10"))}
        b = {"macs": macs, "onchip_bits": float(rng.integers(1, 10**11)), "offchip_bits": float(rng.integers(1, 10**9)),
             "wall_seconds": float(rng.uniform(0.5, 5))}
        j = sum(truth[f"mac:{k}"] * n for k, n in macs.items()) * 1e-12 + \
            truth["onchip"] * b["onchip_bits"] / 64 * 1e-12 + truth["dram"] * b["offchip_bits"] / 64 * 1e-12 + \
            truth["static"] * b["wall_seconds"]
        b["measured_joules"] = j
        p = tmp_path / f"bench{i}.json"
        p.write_text(json.dumps(b))
        paths.append(str(p))
    return paths


def test_calibration_recovers_known_constants(tmp_path, capsys):
    truth = {"mac:8x8": 5.0, "mac:16x8": 9.0, "mac:4x10": 3.0, "onchip": 25.0, "dram": 4000.0, "static": 0.2}
    paths = _benchmarks(tmp_path, truth)
    from e2train.energy.calibrate import load_benchmarks

    table, residual = fit(load_benchmarks(paths), ZEDBOARD)
    assert table.mac_pj == pytest.approx({"8x8": 5.0, "16x8": 9.0, "4x10": 3.0}, rel=1e-6)
    assert (table.onchip_pj_per_64b, table.dram_pj_per_64b, table.static_watts) == pytest.approx((25.0, 4000.0, 0.2),
                                                                                               rel=1e-6)
    assert table.status["dram_pj_per_64b"] == "calibrated" and max(abs(r) for r in residual.values()) < 1e-6
    out = tmp_path / "cal.toml"
    assert main(["energy", "calibrate", *paths, "--out", str(out)]) == 0
    from e2train.energy.tables import load_table

    assert load_table(str(out)).mac_pj["8x8"] == pytest.approx(5.0, rel=1e-6)
    assert main(["energy", "calibrate", *paths[:3], "--out", str(out)]) == 2
    assert "need at least as many benchmarks" in capsys.readouterr().err


def test_estimate_command(capsys):
    assert main(["energy", "estimate", "--model", "resnet20", "--iterations", "100", "--smd-drop", "0.5",
                 "--slu-executed", "0.6", "--psg-predicted", "0.6"]) == 0
    out = capsys.readouterr().out
    assert "32-bit SGD baseline" in out and "saving" in out
