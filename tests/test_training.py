"""The loop: config, SMD, LR schedule, accounting, kill-and-resume, divergence, CLI."""

import json
import math
import os

import pytest
import torch

from cifar_files import make_tiny_cifar10
from e2train.cli import main
from e2train.training import ConfigError, load_config, scheduled_iterations
from e2train.checkpoint import CheckpointError, load_checkpoint
from e2train.training.loop import Divergence, Trainer
from e2train.training.optim import lr_factor
from e2train.training.smd import smd_drop


def tiny_cfg(*extra):
    return load_config(None, [
        "run.progress=false", "run.log_every=5", "run.checkpoint_every=10", "run.threads=1",
        "data.dataset=synthetic", "data.synthetic_train=64", "data.synthetic_val=32",
        "model.arch=resnet8", "schedule.iterations=30", "schedule.batch_size=8", *extra,
    ])


def test_config_defaults_overrides_and_errors(tmp_path):
    cfg = load_config(None, ["model.arch=resnet38", "schedule.lr_steps=[0.4, 0.8]", "smd.energy_ratio=\"2/3\"", "smd.p=0.5"])
    assert cfg["model"]["arch"] == "resnet38" and cfg["schedule"]["lr_steps"] == [0.4, 0.8]
    assert cfg["optim"]["momentum"] == 0.9 and cfg["schedule"]["iterations"] == 64000
    assert scheduled_iterations(cfg) == 85333  # the paper's "energy ratio 0.67" at p = 0.5
    with pytest.raises(ConfigError, match="unknown config key 'model.depth'"):
        load_config(None, ["model.depth=20"])
    with pytest.raises(ConfigError, match="schedule.iterations must be a number"):
        load_config(None, ["schedule.iterations=lots"])
    with pytest.raises(ConfigError, match=r"smd.p must be in \[0, 1\)"):
        load_config(None, ["smd.p=1.0"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\narch = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "missing.toml"))


def test_stored_config_is_completed_with_defaults():
    from e2train.training.config import with_defaults

    old = {"model": {"arch": "resnet8", "gating": "slu"}, "slu": {"alpha": 1.0, "target": 0.5}}
    cfg = with_defaults(old)
    assert cfg["slu"] == {"alpha": 1.0, "target": 0.5, "sample_in_training": False}
    assert cfg["schedule"]["batch_size"] == 128 and old["slu"] == {"alpha": 1.0, "target": 0.5}


def test_every_shipped_config_loads():
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    names = sorted(f for f in os.listdir(root) if f.endswith(".toml"))
    assert names
    for f in names:
        load_config(os.path.join(root, f))


def test_lr_schedule_steps():
    assert [lr_factor(i, 100, [0.5, 0.75], 0.1) for i in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_lr_schedule_cosine_and_warmup():
    cos = [lr_factor(i, 100, [0.5], 0.1, "cosine") for i in (0, 25, 50, 75, 99)]
    assert cos == pytest.approx([1.0, 0.5 + 0.5 * 2 ** -0.5, 0.5, 0.5 - 0.5 * 2 ** -0.5, 0.5 * (1 + math.cos(math.pi * 0.99))])
    # 10 warm-up iterations ramp 0.1, 0.2, ... 1.0, then the cosine starts from 1 over the remaining 90.
    warm = [lr_factor(i, 100, [], 0.1, "cosine", 0.1) for i in range(12)]
    assert warm == pytest.approx([0.1 * k for k in range(1, 11)] + [1.0, 0.5 * (1 + math.cos(math.pi / 90))])
    assert lr_factor(5, 100, [0.5], 0.1, "step", 0.1) == pytest.approx(0.6)  # warm-up also before steps


def test_lr_schedule_constant_phase_for_swa():
    # cosine from 1 to hold_lr over the first 80 iterations, then hold_lr to the end (SWA's constant phase)
    f = [lr_factor(i, 100, [], 0.1, "cosine", 0.0, 0.8, 0.05) for i in (0, 40, 79, 80, 99)]
    assert f == pytest.approx([1.0, 0.525, 0.05 + 0.475 * (1 + math.cos(math.pi * 79 / 80)), 0.05, 0.05])
    assert [lr_factor(i, 100, [0.5], 0.1, "step", 0.0, 0.9, 0.02) for i in (49, 50, 89, 90)] == pytest.approx([1, 0.1, 0.1, 0.02])
    # the defaults (hold_from 1.0) leave the schedules as they were
    assert lr_factor(99, 100, [], 0.1, "cosine") == lr_factor(99, 100, [], 0.1, "cosine", 0.0, 1.0, 0.0)
    with pytest.raises(ConfigError, match="schedule.hold_from"):
        tiny_cfg("schedule.hold_from=0.0")
    with pytest.raises(ConfigError, match="schedule.hold_lr"):
        tiny_cfg("schedule.hold_lr=1.5")


def test_trainer_follows_the_configured_schedule(tmp_path):
    tr = Trainer(tiny_cfg("schedule.lr_schedule=\"cosine\"", "optim.lr=0.2", "schedule.iterations=40"), str(tmp_path))
    assert [round(tr.set_lr(i), 12) for i in (0, 20, 39)] == pytest.approx([0.2, 0.1, 0.1 * (1 + math.cos(math.pi * 39 / 40))])
    with pytest.raises(ConfigError, match="schedule.lr_schedule must be step or cosine"):
        tiny_cfg("schedule.lr_schedule=\"linear\"")
    with pytest.raises(ConfigError, match=r"schedule.warmup must be a fraction in \[0, 1\)"):
        tiny_cfg("schedule.warmup=1.5")


def test_smd_drops_about_p_under_a_seed():
    drops = [smd_drop(7, i, 0.5) for i in range(4000)]
    assert abs(sum(drops) / 4000 - 0.5) < 0.03
    assert drops == [smd_drop(7, i, 0.5) for i in range(4000)]  # a function of (seed, i)
    assert sum(smd_drop(7, i, 0.2) for i in range(4000)) / 4000 == pytest.approx(0.2, abs=0.03)
    assert not any(smd_drop(7, i, 0.0) for i in range(100))


class _CountingSGD(torch.optim.SGD):
    steps = []

    def step(self, closure=None):
        _CountingSGD.steps.append(self.current)
        return super().step(closure)


def test_smd_never_steps_on_a_dropped_batch(tmp_path):
    _CountingSGD.steps = []
    cfg = tiny_cfg("smd.p=0.5")
    loaded = []

    def factory(model, cfg):
        return _CountingSGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)

    tr = Trainer(cfg, str(tmp_path), optimizer_factory=factory)
    orig_batch = tr.batches.batch
    tr.batches.batch = lambda i: (loaded.append(i), orig_batch(i))[1]
    orig_step = tr.step

    def step(i):
        tr.optimizer.current = i
        return orig_step(i)

    tr.step = step
    rep = tr.run()
    dropped = [i for i in range(30) if smd_drop(0, i, 0.5)]
    assert 5 <= len(dropped) <= 25
    assert _CountingSGD.steps == loaded == [i for i in range(30) if i not in dropped]  # never loaded, never stepped
    assert rep["smd_dropped"] == len(dropped) and rep["executed_iterations"] == 30 - len(dropped)
    # no SLU, no gates: every executed MAC is a baseline MAC, so the saving is exactly the dropped share
    assert rep["mac_savings"] == pytest.approx(len(dropped) / 30, abs=1e-12)


def test_report_accounting_plain_run_saves_nothing(tmp_path):
    rep = Trainer(tiny_cfg("schedule.iterations=6"), str(tmp_path)).run()
    assert rep["macs"] == rep["baseline_macs_per_phase"]
    assert rep["mac_savings"] == 0.0 and rep["slu_executed_ratio"] == 1.0
    on_disk = json.load(open(tmp_path / "report.json"))
    for key in ("top1", "top5", "iterations", "smd_dropped", "slu_executed_ratio", "macs", "baseline_macs", "mac_savings", "wall_seconds", "macs_per_layer"):
        assert key in on_disk
    assert set(on_disk["macs"]) == {"forward", "backward_data", "backward_weight"}
    assert sum(r["forward"] for r in on_disk["macs_per_layer"].values()) == on_disk["macs"]["forward"]
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["iteration"] for r in lines] == [5, 6]


def test_cpu_seconds_leave_out_a_stopped_process_and_add_up_over_a_resume(tmp_path):
    """wall_seconds counts a paused process (SIGSTOP for a quiet measurement beside it); cpu_seconds does
    not. A sleeping callback stands for the pause: 8 x 0.25 s of wall time without CPU."""
    import time

    from e2train.training.callbacks import Callback

    class Pause(Callback):
        def on_iteration_end(self, trainer):
            time.sleep(0.25)

    cfg = tiny_cfg("schedule.iterations=8", "run.checkpoint_every=4", "run.threads=1")
    t = Trainer(cfg, str(tmp_path))
    t.callbacks.items.append(Pause())
    t.run(stop_at=4)
    first = load_checkpoint(str(tmp_path / "checkpoint.pt"))["stats"]
    assert first["wall_seconds"] - first["cpu_seconds"] >= 4 * 0.25
    t2 = Trainer(cfg, str(tmp_path))
    t2.callbacks.items.append(Pause())
    t2.resume()
    rep = t2.run()
    assert 0 < first["cpu_seconds"] < rep["cpu_seconds"]  # the resumed run adds to the first part's
    assert rep["wall_seconds"] - rep["cpu_seconds"] >= 8 * 0.25
    line = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")][-1]
    assert first["cpu_seconds"] < line["cpu_seconds"] <= rep["cpu_seconds"]  # the report adds the final evaluation


def test_slu_run_counts_gates_and_skips(tmp_path):
    rep = Trainer(tiny_cfg("model.gating=slu", "slu.target=0.3", "slu.alpha=20.0", "schedule.iterations=16"), str(tmp_path)).run()
    assert rep["gate_macs"]["forward"] > 0 and rep["macs_per_layer"]["gate_rnn"]["forward"] > 0
    assert 0.0 < rep["slu_executed_ratio"] < 1.0
    assert rep["mac_savings"] > 0.0
    assert rep["eval_executed_block_ratio"] is not None


def _final_weights(path):
    return load_checkpoint(os.path.join(path, "checkpoint.pt"))["model"]


def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    extra = ("model.gating=slu", "smd.p=0.3", "schedule.iterations=24")
    full = Trainer(tiny_cfg(*extra), str(tmp_path / "full"))
    rep_full = full.run()
    # the interrupted run dies at iteration 17: everything after the checkpoint at 10 is lost
    part = Trainer(tiny_cfg(*extra), str(tmp_path / "part"))
    assert part.run(stop_at=17) is None
    part2 = Trainer(tiny_cfg(*extra, "run.log_every=3"), str(tmp_path / "part"))
    assert part2.resume() and part2.iteration == 10
    rep_part = part2.run()
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for k in ("macs", "smd_dropped", "slu_executed_ratio", "top1", "macs_per_layer"):
        assert rep_full[k] == rep_part[k], k
    iters = [json.loads(line)["iteration"] for line in open(tmp_path / "part" / "metrics.jsonl")]
    assert iters == sorted(iters) and len(iters) == len(set(iters))  # lines past the checkpoint were replaced


def test_resume_refuses_a_different_config(tmp_path):
    Trainer(tiny_cfg(), str(tmp_path)).run(stop_at=10)
    other = Trainer(tiny_cfg("optim.lr=0.3"), str(tmp_path))
    with pytest.raises(CheckpointError, match=r"optim.lr: checkpoint 0.1, now 0.3"):
        other.resume()


def test_resume_compares_keys_an_older_checkpoint_lacks_at_their_defaults(tmp_path):
    from e2train.checkpoint import save_atomic

    Trainer(tiny_cfg(), str(tmp_path)).run(stop_at=10)
    path = str(tmp_path / "checkpoint.pt")
    ck = load_checkpoint(path)
    del ck["config"]["schedule"]["lr_schedule"], ck["config"]["schedule"]["warmup"]  # as written before they existed
    save_atomic(ck, path)
    assert Trainer(tiny_cfg(), str(tmp_path)).resume()  # the defaults it trained with: step, no warm-up
    cosine = Trainer(tiny_cfg("schedule.lr_schedule=\"cosine\""), str(tmp_path))
    with pytest.raises(CheckpointError, match=r"schedule.lr_schedule: checkpoint 'step', now 'cosine'"):
        cosine.resume()


class _Poisoning(torch.optim.SGD):
    def step(self, closure=None):
        super().step(closure)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 13:
            with torch.no_grad():
                for p in self.param_groups[0]["params"]:
                    p.fill_(float("nan"))


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    tr = Trainer(tiny_cfg(), str(tmp_path), optimizer_factory=lambda m, c: _Poisoning(m.parameters(), lr=0.05))
    with pytest.raises(Divergence, match=r"training loss is nan at iteration 14.*last good checkpoint is .*checkpoint.pt"):
        tr.run()
    ck = load_checkpoint(str(tmp_path / "checkpoint.pt"))
    assert ck["iteration"] == 10
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert json.loads(open(tmp_path / "metrics.jsonl").readlines()[-1])["event"] == "diverged"
    assert not (tmp_path / "report.json").exists()


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(str(path))


def test_cli_train_then_eval(tmp_path, capsys):
    data = tmp_path / "data"
    make_tiny_cifar10(str(data), per_batch=20)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\narch = "resnet8"\n[schedule]\niterations = 4\nbatch_size = 8\n[data]\nval_split = 0\n[run]\nprogress = false\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--set", f"data.dir={data}", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 4
    rep = json.load(open(out / "report.json"))
    assert rep["eval_split"] == "test" and rep["eval_samples"] == 20
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--data-dir", str(data)]) == 0
    res = json.load(open(out / "eval-test.json"))
    assert res["top1"] == rep["top1"] and res["samples"] == 20


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--set", "model.nope=1"]) == 2
    assert "unknown config key 'model.nope'" in capsys.readouterr().err
    assert main(["train", "--set", f"data.dir={tmp_path}", "--out", str(tmp_path / "r")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt"), "--data-dir", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_sigkill_mid_run_then_resume_matches(tmp_path):
    """A real kill (SIGKILL of the CLI process) after a checkpoint, then ``--resume``: same final weights."""
    import subprocess
    import sys
    import time

    sets = ["run.progress=false", "run.checkpoint_every=3", "run.threads=1", "data.dataset=synthetic",
            "data.synthetic_train=64", "data.synthetic_val=32", "model.arch=resnet8", "model.gating=slu",
            "smd.p=0.25", "schedule.iterations=60", "schedule.batch_size=8"]
    args = [a for s in sets for a in ("--set", s)]
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "e2train.cli", "train", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 900  # generous: on a loaded machine the child's torch import alone takes minutes
        while time.time() < deadline and proc.poll() is None:
            ck = killed / "checkpoint.pt"
            if ck.exists() and load_checkpoint(str(ck))["iteration"] >= 9:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the training run ended before it could be killed"
        proc.kill()
    finally:
        proc.wait()
    at = load_checkpoint(str(killed / "checkpoint.pt"))["iteration"]
    assert 9 <= at < 60 and not (killed / "report.json").exists()
    assert main(["train", *args, "--out", str(killed), "--resume"]) == 0
    a, b = _final_weights(tmp_path / "full"), _final_weights(killed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_demo_file_matches_the_embedded_demo():
    from e2train.training.demo import DEMO_SETTINGS

    path = os.path.join(os.path.dirname(__file__), "..", "configs", "demo_synthetic.toml")
    assert load_config(path) == load_config(None, DEMO_SETTINGS)


def test_a_fresh_run_in_a_used_folder_starts_its_own_metrics(tmp_path):
    Trainer(tiny_cfg("schedule.iterations=5"), str(tmp_path)).run()
    Trainer(tiny_cfg("schedule.iterations=10"), str(tmp_path)).run()
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["iteration"] for r in lines] == [5, 10]


def test_set_into_a_free_form_table_keeps_its_other_keys(tmp_path):
    path = os.path.join(os.path.dirname(__file__), "..", "configs", "cifar10_resnet20_finetune_e2train_all.toml")
    cfg = load_config(path, ["optim.options.init_from=elsewhere.pt", "model.conv_options.beta=0.1"])
    assert cfg["optim"]["options"] == {"method": "sign", "sign_lr": 0.003, "init_from": "elsewhere.pt"}
    assert cfg["model"]["conv_options"] == {"mode": "psg", "beta": 0.1}
    # a whole table still replaces, as TOML would
    assert load_config(path, ['optim.options={method="sgd"}'])["optim"]["options"] == {"method": "sgd"}
    with pytest.raises(ConfigError, match="not a table"):
        load_config(path, ["optim.options.method.x=1"])
