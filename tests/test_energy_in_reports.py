"""Energy in every training report: the demo's report and PNG, a hand count of the estimate on a tiny
model, the CLI summary, `energy report` on trained runs, and SMD's stretched schedule."""

import json

import pytest

from e2train.cli import main
from e2train.contract import PHASES
from e2train.data import make_synthetic
from e2train.energy.tables import HOROWITZ45, ZEDBOARD
from e2train.training import load_config, scheduled_iterations
from e2train.training.loop import Trainer
from e2train.training.optim import lr_factor

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


# pJ per MAC (multiply + accumulate) and per 64-bit access, worked out by hand from the tables' constants.
# Integer multipliers scale with the product of operand widths (int_mult_8 * cells / 64 up to 8 x 8 cells,
# linear from int_mult_8 to int_mult_32 between 64 and 1024 cells); adders linearly in their width.
HAND = {
    "zedboard": {
        "8x8": 8.0 + 2.0,  # int8 mult 8; int32 add 2
        "16x8": 8.0 + (50.0 - 8.0) * (128 - 64) / 960 + 0.5 + (2.0 - 0.5) / 24 * 40,  # 10.8 + 3.0 (48-bit add)
        "4x10": 8.0 * 40 / 64 + 2.0,  # 5.0 + 2.0
        "8x16": 8.0 + (50.0 - 8.0) * (128 - 64) / 960 + 0.5 + (2.0 - 0.5) / 24 * 40,
        "fp32": 60.0 + 40.0,
        "onchip": 30.0, "dram": 4500.0,
    },
    "horowitz45": {
        "8x8": 0.2 + 0.1,
        "16x8": 0.2 + (3.1 - 0.2) * (128 - 64) / 960 + 0.03 + (0.1 - 0.03) / 24 * 40,
        "4x10": 0.2 * 40 / 64 + 0.1,
        "8x16": 0.2 + (3.1 - 0.2) * (128 - 64) / 960 + 0.03 + (0.1 - 0.03) / 24 * 40,
        "fp32": 3.7 + 0.9,
        "onchip": 20.0, "dram": 1950.0,
    },
}


def test_the_hand_constants_are_the_tables():
    for table in (ZEDBOARD, HOROWITZ45):
        h = HAND[table.name]
        assert h["8x8"] == pytest.approx(table.int_mult(8, 8) + table.int_add(32))
        assert h["16x8"] == pytest.approx(table.int_mult(16, 8) + table.int_add(48))
        assert h["4x10"] == pytest.approx(table.int_mult(4, 10) + table.int_add(32))
        assert h["fp32"] == pytest.approx(table.fp_mult(32) + table.fp_add(32))
        assert (h["onchip"], h["dram"]) == (table.onchip_pj_per_64b, table.dram_pj_per_64b)


# ResNet-8 on 32 x 32 images: (layer, in channels, out channels, input size, kernel, stride)
RESNET8 = [("conv1", 3, 16, 32, 3, 1), ("layer1.0.conv1", 16, 16, 32, 3, 1), ("layer1.0.conv2", 16, 16, 32, 3, 1),
           ("layer2.0.conv1", 16, 32, 32, 3, 2), ("layer2.0.shortcut", 16, 32, 32, 1, 2),
           ("layer2.0.conv2", 32, 32, 16, 3, 1), ("layer3.0.conv1", 32, 64, 16, 3, 2),
           ("layer3.0.shortcut", 32, 64, 16, 1, 2), ("layer3.0.conv2", 64, 64, 8, 3, 1)]
FC_MACS = 64 * 10  # the classifier, per sample


def _memory_pj_per_mac(batch: int, precision: str, predicted: float = 0.0) -> dict:
    """docs/energy.md's traffic model summed over ResNet-8's convs, per MAC of each phase."""
    on = dict.fromkeys(PHASES, 0.0)
    off = dict.fromkeys(PHASES, 0.0)
    macs = 0
    for _, c, o, h, k, s in RESNET8:
        ho = h // s
        m = batch * o * ho * ho * c * k * k
        x, w, y = batch * c * h * h, o * c * k * k, batch * o * ho * ho
        macs += m
        if precision == "fp32":
            for ph, (a, b, out) in zip(PHASES, ((x, w, y), (y, w, x), (x, y, w))):
                off[ph] += 32 * (a + b + out)
                on[ph] += 64 * m
        else:  # psg
            off["forward"] += 8 * x + 8 * w + 32 * y
            on["forward"] += 16 * m
            off["backward_data"] += 16 * y + 8 * w + 64 * x
            on["backward_data"] += 24 * m
            off["backward_weight"] += (8 * x + 16 * y) * (2 - predicted) + 8 * w
            on["backward_weight"] += 14 * m + 24 * (1 - predicted) * m
    return {ph: (on[ph], off[ph], macs) for ph in PHASES}


def _tiny_psg_run(tmp_path, name="tiny"):
    cfg = load_config(None, [
        "run.progress=false", "run.threads=1", "run.log_every=2", "run.checkpoint_every=0", "data.eval_batch=16",
        "model.arch=resnet8", 'model.conv="e2train.psg:make_conv_factory"',
        'optim.name="e2train.psg:optimizer_factory"', "optim.options={swa=false}",
        "schedule.iterations=3", "schedule.batch_size=4", "data.dataset=synthetic",
    ])
    data = (make_synthetic(16, seed=1), make_synthetic(8, seed=2), 10)
    out = tmp_path / name
    return Trainer(cfg, str(out), data=data, log=lambda m: None).run(), out


def test_report_energy_against_a_hand_count(tmp_path):
    rep, out = _tiny_psg_run(tmp_path)
    batch, iters = 4, 3
    # the per-layer MAC counts are those of the hand-written shapes, every iteration executed
    per_sample = {n: o * (h // s) ** 2 * c * k * k for n, c, o, h, k, s in RESNET8}
    for n, m in per_sample.items():
        assert rep["macs_per_layer"][n]["forward"] == m * batch * iters
    assert rep["macs_per_layer"]["fc"]["forward"] == FC_MACS * batch * iters
    conv = {ph: sum(rep["macs_per_layer"][n][ph] for n in per_sample) for ph in PHASES}
    fc = {ph: rep["macs_per_layer"]["fc"][ph] for ph in PHASES}
    # PSG's fall-back: per layer, each weight whose sign was not predicted costs one MAC per output position
    stats = rep["layer_stats"]
    fallback = sum((stats[n]["psg_weights"] - stats[n]["psg_predicted"]) * batch * (h // s) ** 2
                   for n, c, o, h, k, s in RESNET8)
    assert rep["macs_by_bits"]["backward_weight"]["8x16"] == fallback
    r = rep["psg_predicted_ratio"]
    assert r == sum(stats[n]["psg_predicted"] for n in per_sample) / sum(stats[n]["psg_weights"] for n in per_sample)
    # the baseline: fp32 SGD of the same 3 iterations x 4 samples through every layer (conv1 has no input gradient)
    base = {"forward": (sum(per_sample.values()) + FC_MACS) * batch * iters,
            "backward_data": (sum(per_sample.values()) - per_sample["conv1"] + FC_MACS) * batch * iters,
            "backward_weight": (sum(per_sample.values()) + FC_MACS) * batch * iters}
    assert rep["baseline_macs_per_phase"] == base
    est = rep["estimated_energy"]
    assert est["table"] == "zedboard" and set(est["tables"]) == {"zedboard", "horowitz45"}
    for name, h in HAND.items():
        compute = (conv["forward"] * h["8x8"] + conv["backward_data"] * h["16x8"]
                   + conv["backward_weight"] * h["4x10"] + fallback * h["8x16"] + sum(fc.values()) * h["fp32"]) * 1e-12
        mem = _memory_pj_per_mac(batch, "psg", r)
        memory = sum((on / 64 * h["onchip"] + off / 64 * h["dram"]) / m * (conv[ph] + fc[ph])
                     for ph, (on, off, m) in mem.items()) * 1e-12
        base_compute = sum(base.values()) * h["fp32"] * 1e-12
        mem = _memory_pj_per_mac(batch, "fp32")
        base_memory = sum((on / 64 * h["onchip"] + off / 64 * h["dram"]) / m * base[ph]
                          for ph, (on, off, m) in mem.items()) * 1e-12
        t = est["tables"][name]
        assert t["compute_joules"] == pytest.approx(compute, rel=1e-9)
        assert t["memory_joules"] == pytest.approx(memory, rel=1e-9)
        assert t["joules"] == pytest.approx(compute + memory, rel=1e-9)
        assert t["baseline_joules"] == pytest.approx(base_compute + base_memory, rel=1e-9)
        assert t["saving"] == pytest.approx(1 - (compute + memory) / (base_compute + base_memory), rel=1e-9)
    assert est["joules"] == est["tables"]["zedboard"]["joules"]
    assert est["baseline"]["macs"] == sum(base.values()) and est["baseline"]["iterations"] == iters
    assert "measured_joules" not in rep and rep["wall_seconds"] > 0
    assert json.loads((out / "report.json").read_text())["estimated_energy"] == est  # on disk as returned


def test_energy_report_command_on_trained_runs(tmp_path, capsys):
    _, a = _tiny_psg_run(tmp_path, "psg-a")
    png = tmp_path / "fig5.png"
    assert main(["energy", "report", str(a), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rep = json.loads((a / "report.json").read_text())
    row = next(line for line in out.splitlines() if line.startswith("psg-a"))
    assert f"{rep['estimated_energy']['joules']:.4g}" in row and f"{rep['wall_seconds']:.1f}" in row
    assert f"{100 * rep['estimated_energy']['saving']:.2f}%" in row
    assert_png(png)


def test_train_summary_line_carries_the_estimates(tmp_path, capsys):
    sets = ["run.progress=false", "run.threads=1", "run.checkpoint_every=0", "data.dataset=synthetic",
            "data.synthetic_train=16", "data.synthetic_val=8", "model.arch=resnet8", "schedule.iterations=2",
            "schedule.batch_size=4"]
    assert main(["train", "--out", str(tmp_path / "r"), *[a for s in sets for a in ("--set", s)]]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    zed, hor = rep["estimated_energy"]["tables"]["zedboard"], rep["estimated_energy"]["tables"]["horowitz45"]
    assert line["energy_table"] == "zedboard" and "measured_joules" not in line
    assert (line["estimated_joules"], line["sgd_estimated_joules"], line["estimated_saving"]) == \
        (zed["joules"], zed["baseline_joules"], zed["saving"])
    assert (line["estimated_joules_horowitz45"], line["sgd_estimated_joules_horowitz45"]) == \
        (hor["joules"], hor["baseline_joules"])
    assert line["wall_seconds"] == rep["wall_seconds"] > 0
    # a float fp32 SGD run is its own baseline: nothing saved
    assert zed["saving"] == pytest.approx(0.0, abs=1e-12) and hor["saving"] == pytest.approx(0.0, abs=1e-12)


def test_smd_energy_ratio_stretches_the_schedule_and_the_lr_steps(tmp_path):
    cfg = load_config(None, ["smd.p=0.5", 'smd.energy_ratio="2/3"'])
    assert scheduled_iterations(cfg) == 85333  # the paper's 64k x 4/3
    assert [lr_factor(i, 85333, [0.5, 0.75], 0.1) for i in (42665, 42666, 63999, 64000)] == \
        pytest.approx([1, 0.1, 0.1, 0.01])  # the steps move to 1/2 and 3/4 of the stretched schedule
    assert scheduled_iterations(load_config(None, ["smd.p=0.5"])) == 64000  # energy ratio 1: no budget held
    tr = Trainer(load_config(None, ["run.progress=false", "run.threads=1", "smd.p=0.5", 'smd.energy_ratio="2/3"',
                                    "schedule.iterations=300", "schedule.batch_size=4", "optim.lr=0.1", "model.arch=resnet8",
                                    "data.dataset=synthetic"]),
                 str(tmp_path), data=(make_synthetic(8), make_synthetic(8, seed=1), 10), log=lambda m: None)
    assert tr.total == 400
    assert [tr.set_lr(i) for i in (199, 200, 299, 300, 399)] == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])


def test_demo_prints_and_writes_every_field(tmp_path, capsys):
    """The demo, shortened: SMD + SLU + PSG, report fields consistent with their counts, the PNG."""
    out = tmp_path / "demo"
    sets = ["schedule.iterations=24", "run.eval_every=8", "run.log_every=4", "run.progress=false", "run.threads=1",
            "data.synthetic_train=128", "data.synthetic_val=64", "optim.options={swa_bn_batches=2}"]
    assert main(["demo", "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    printed = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    cfg = rep["config"]
    assert cfg["model"]["conv"] == "e2train.psg:make_conv_factory" and rep["gating"] == "slu"
    assert cfg["optim"]["name"] == "e2train.psg:optimizer_factory"
    # SMD over the stretched schedule: 24 x (2/3) / (1 - 0.5) = 32 scheduled iterations
    assert rep["iterations"] == 32 and rep["baseline_iterations"] == 24
    assert rep["smd_dropped"] + rep["executed_iterations"] == 32 and rep["smd_dropped"] > 0
    assert 0 < rep["slu_executed_ratio"] <= 1 and 0 < rep["psg_predicted_ratio"] < 1
    # savings recomputed from the counts
    batch = cfg["schedule"]["batch_size"]
    per_sample_fwd = rep["baseline_macs_per_phase"]["forward"] / (24 * batch)
    assert per_sample_fwd == int(per_sample_fwd)
    assert rep["mac_savings"] == pytest.approx(1 - sum(rep["macs"].values()) / rep["baseline_macs"])
    est = rep["estimated_energy"]
    for name, t in est["tables"].items():
        assert t["joules"] == pytest.approx(t["compute_joules"] + t["memory_joules"])
        assert t["baseline_joules"] == pytest.approx(t["baseline_compute_joules"] + t["baseline_memory_joules"])
        assert t["saving"] == pytest.approx(1 - t["joules"] / t["baseline_joules"])
        fp32 = HAND[name]["fp32"] * 1e-12
        assert t["baseline_compute_joules"] == pytest.approx(rep["baseline_macs"] * fp32)
        widths = rep["macs_by_bits"]
        compute = sum(n * HAND[name]["fp32" if k == "32x32" else k] for w in widths.values() for k, n in w.items())
        assert t["compute_joules"] == pytest.approx(compute * 1e-12)
        assert 0 < t["joules"] < t["baseline_joules"]
    assert (est["joules"], est["baseline_joules"], est["saving"]) == tuple(
        est["tables"]["zedboard"][k] for k in ("joules", "baseline_joules", "saving"))
    assert rep["wall_seconds"] > 0 and "measured_joules" not in rep
    # what it prints is what the report holds
    for text in (f"validation top-1 {100 * rep['top1']:.1f} %", f"{rep['smd_dropped']} of 32 scheduled",
                 f"{100 * rep['slu_executed_ratio']:.1f} % of the gated blocks",
                 f"{100 * rep['psg_predicted_ratio']:.1f} % of weight-gradient signs",
                 f"{est['joules']:.3g} J against {est['baseline_joules']:.3g} J for fp32 SGD: saving {100 * est['saving']:.1f} %",
                 f"{rep['wall_seconds']:.1f} s", "contract v2"):
        assert text in printed, text
    # the metric lines carry the running estimate; the last log line's is the report's
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [x["estimated_joules"] for x in lines if "loss" in x]
    assert logs == sorted(logs) and logs[-1] == pytest.approx(est["joules"])
    assert [x["iteration"] for x in lines if "val_top1" in x] == [8, 16, 24]
    assert_png(out / "energy_curves.png")
