"""The seams of a run (issue 19): one conv engine, built once and closed however the run ends; the PSG
rule stated once for numpy and torch; callbacks in the loop; the CLI's lazy imports and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from e2train.cli import main
from e2train.data import make_synthetic
from e2train.fabric import get_fabric
from e2train.fabric.fabric_engine import FabricEngine
from e2train.fabric.psg_rule import psg_confident, psg_sign
from e2train.fabric.torch_engine import TorchEngine
from e2train.psg.swa import snapshot_iterations
from e2train.training.callbacks import Callback, SwaCallback
from e2train.training.config import load_config
from e2train.training.loop import Trainer

PSG = ['model.conv="e2train.psg:make_conv_factory"', 'optim.name="e2train.psg:optimizer_factory"']
SMALL = ["data.dataset=synthetic", "data.synthetic_train=32", "data.synthetic_val=16", "model.arch=resnet8",
         "schedule.iterations=3", "schedule.batch_size=8", "run.progress=false", "run.checkpoint_every=0",
         "run.threads=1", "data.eval_batch=16"]


def _g_msb(rng, shape, top):
    """G_msb values with zeros, ties at the threshold and the maximum itself."""
    g = rng.integers(-top, top + 1, size=shape).astype(np.int32)
    flat = g.reshape(-1)
    flat[: flat.size // 8] = 0
    flat[-1] = -top
    return g


@pytest.mark.parametrize("beta_q", [0, 1, 3277, 32768, 65535, 65536])
def test_the_psg_rule_is_one_rule_for_numpy_and_torch(beta_q):
    rng = np.random.default_rng(beta_q)
    for shape, top in (((4, 3, 3, 3), 2**29), ((8, 4, 1, 1), 5), ((2, 2, 3, 3), 200)):
        g = _g_msb(rng, shape, top)
        full = rng.integers(-(2**40), 2**40, size=shape)
        conf, mx = psg_confident(g, beta_q)
        sign = psg_sign(conf, g, full)
        assert int(mx) == top and conf.dtype == bool
        # the contract's integer compare, written out
        want = (g != 0) & (np.abs(g.astype(np.int64)) * 65536 >= beta_q * top)
        np.testing.assert_array_equal(conf, want)
        np.testing.assert_array_equal(sign, np.where(want, np.sign(g), np.sign(full)))
        dtypes = (torch.float64, torch.float32) if top * 65536 < 2**24 else (torch.float64,)  # float32: exact only there
        for dt in dtypes:
            tconf, tmx = psg_confident(torch.from_numpy(g).to(dt), beta_q)
            tsign = psg_sign(tconf, torch.from_numpy(g).to(dt), torch.from_numpy(full).to(dt))
            assert float(tmx) == top
            np.testing.assert_array_equal(tconf.numpy(), conf)
            np.testing.assert_array_equal(tsign.numpy(), sign)
        # g_full None: nothing fell back, so only confident weights have a sign
        np.testing.assert_array_equal(psg_sign(conf, g, None), np.where(conf, np.sign(g), 0))
    empty, top = psg_confident(torch.zeros(0, 1, 3, 3), beta_q)
    assert empty.shape == (0, 1, 3, 3) and float(top) == 0.0
    assert psg_confident(np.zeros((0, 1, 1, 1), np.int32), beta_q)[0].size == 0


def test_the_torch_fabric_adapts_the_float64_engine():
    fab = get_fabric("torch")
    assert isinstance(fab.engine, TorchEngine) and fab.engine.exact and fab.engine.dtype == torch.float64


class _Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_start(self, trainer):
        self.calls.append(("start", trainer.iteration))

    def on_iteration_end(self, trainer):
        self.calls.append(("iteration", trainer.iteration))

    def on_eval_start(self, trainer):
        self.calls.append(("eval", trainer.iteration))

    def on_train_end(self, trainer):
        self.calls.append(("end", trainer.iteration))

    def on_report(self, trainer, report):
        return {"recorded": len(self.calls)}


def test_one_engine_for_every_layer_closed_with_the_trainer(tmp_path, monkeypatch):
    closed = []
    real = FabricEngine.close
    monkeypatch.setattr(FabricEngine, "close", lambda self: closed.append(self) or real(self))
    data = (make_synthetic(32, seed=1), make_synthetic(16, seed=2), 10)
    cfg = load_config(None, [*SMALL, *PSG, 'model.conv_options={backend="reference"}'])
    with Trainer(cfg, str(tmp_path), data=data, log=lambda m: None) as t:
        engine = t.engine
        layers = [m for m in t.model.modules() if hasattr(m, "engine")]
        assert isinstance(engine, FabricEngine) and len(layers) == 9 and all(m.engine is engine for m in layers)
        swa = t.callbacks.get(SwaCallback)  # the SWA copy of the model shares the engine too
        assert all(m.engine is engine for m in swa.averager.averaged.modules() if hasattr(m, "engine"))
        rec = _Recorder()
        t.callbacks.items.append(rec)
        report = t.run()
        assert closed == []
    assert closed == [engine] and t.engine is None
    t.close()  # once is enough
    assert closed == [engine]
    assert rec.calls == [("start", 0), ("iteration", 1), ("iteration", 2), ("iteration", 3), ("end", 3), ("eval", 3)]
    assert report["recorded"] == 6 and report["swa"]["snapshots"] == len(snapshot_iterations(3, 0.75, 20))


def test_the_cli_closes_the_engine_after_a_run_and_after_an_error(tmp_path, monkeypatch):
    closed = []
    real = FabricEngine.close
    monkeypatch.setattr(FabricEngine, "close", lambda self: closed.append(1) or real(self))
    argv = ["train", "--out", str(tmp_path / "run"), "--backend", "reference"]
    for kv in (*SMALL, *PSG):
        argv += ["--set", kv]
    assert main(argv) == 0 and closed == [1]
    # an error inside the run
    real_step = Trainer.step

    def failing(self, i):
        if i == 1:
            raise RuntimeError("boom")
        return real_step(self, i)

    monkeypatch.setattr(Trainer, "step", failing)
    with pytest.raises(RuntimeError, match="boom"):
        main(argv)
    assert closed == [1, 1]
    # a config error found after the engine was built
    assert main(argv + ["--set", 'optim.options={method="adam"}']) == 2
    assert closed == [1, 1, 1]


def test_a_checkpoint_keeps_the_callbacks_state(tmp_path):
    data = (make_synthetic(32, seed=1), make_synthetic(16, seed=2), 10)
    cfg = load_config(None, [*SMALL, *PSG, "schedule.iterations=8", "run.checkpoint_every=4"])
    with Trainer(cfg, str(tmp_path), data=data, log=lambda m: None) as t:
        t.run(stop_at=4)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(ck["callbacks"]) == {"swa"} and "swa" not in ck["optimizer"]
    assert ck["callbacks"]["swa"]["averaged"]["n_averaged"] == 0  # the snapshots come later


@pytest.mark.parametrize("extra, names", [
    ([*PSG], ["BitWidths", "SwaCallback", "FabricReport", "MeterWindows"]),  # sign steps: SWA on by default
    ([*PSG, "optim.options={swa=false}"], ["BitWidths", "FabricReport", "MeterWindows"]),
    ([*PSG, 'optim.options={method="sgd"}'], ["BitWidths", "FabricReport", "MeterWindows"]),  # fixed8-like
    ([], ["FabricReport", "MeterWindows"]),  # plain SGD: no PSG options, no bit widths
])
def test_the_callbacks_follow_the_optimizers_parsed_options(tmp_path, monkeypatch, extra, names):
    """The PSG optimizer's options are parsed once (by its factory) and the trainer's list comes from them."""
    import e2train.psg.optim as psg_optim

    calls = []
    parse = psg_optim.parse_options
    monkeypatch.setattr(psg_optim, "parse_options", lambda *a: calls.append(1) or parse(*a))
    data = (make_synthetic(32, seed=1), make_synthetic(16, seed=2), 10)
    with Trainer(load_config(None, [*SMALL, *extra]), str(tmp_path), data=data, log=lambda m: None) as t:
        assert [type(c).__name__ for c in t.callbacks.items] == names
        assert len(calls) == (1 if extra else 0)


def _python(*lines: str) -> subprocess.CompletedProcess:
    """Run these lines in a fresh interpreter (what a module imports shows only there)."""
    res = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res


def test_help_loads_neither_torch_nor_the_training_code():
    res = _python("import resource, sys; from e2train.cli import main",
                  "try:\n    main(['--help'])\nexcept SystemExit:\n    pass",
                  "ru = resource.getrusage(resource.RUSAGE_SELF)",
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('e2train.training.')))",
                  "print(ru.ru_utime + ru.ru_stime, file=sys.stderr)")
    loaded = res.stdout.strip().splitlines()[-1]
    # train/eval/demo registered from their parser module and the config's names; no torch, no loop
    assert loaded == "['e2train.training.cli', 'e2train.training.config']"
    assert float(res.stderr.strip().splitlines()[-1]) < 1.0  # CPU seconds: wall time depends on the machine's load


def test_psg_does_not_import_training_and_the_loop_not_board():
    res = _python("import sys; import e2train.psg",
                  "a = [m for m in sys.modules if m.startswith('e2train.training')]",
                  "import e2train.training.loop",
                  "print(a, [m for m in sys.modules if m.startswith('e2train.board')])")
    assert res.stdout.strip() == "[] []"


BAD = [
    ("model.arch=resnet999", "model.arch"), ("model.arch=vgg16", "model.arch"), ("model.gating=foo", "model.gating"),
    ("data.dataset=mnist", "data.dataset"), ('schedule.lr_schedule="linear"', "schedule.lr_schedule"),
    ('optim.name="adam"', "optim.name"), ('optim.name="nosuch.module:f"', "optim.name"),
    ('model.conv="nosuch"', "model.conv"), ("optim.options={foo=1}", "optim.options"),
    ('model.conv_options={backend="x"}', "model.conv_options"), ("smd.p=1.5", "smd.p"), ("smd.p=-0.1", "smd.p"),
    ("slu.target=0", "slu.target"), ("sd.final_survival=1.5", "sd.final_survival"),
    ("sd.executed_ratio=2", "sd.executed_ratio"), ("run.device=tpu", "run.device"),
    ("schedule.batch_size=0", "schedule.batch_size"), ("data.val_split=-5", "data.val_split"),
    ("data.eval_batch=0", "data.eval_batch"), ("run.threads=-1", "run.threads"), ("optim.lr=-1", "optim.lr"),
    ("optim.momentum=-1", "optim.momentum"), ("optim.weight_decay=-1", "optim.weight_decay"),
    ("schedule.divergence_loss=0", "schedule.divergence_loss"), ("data.synthetic_train=0", "data.synthetic_train"),
    ("model.arch=[1]", "model.arch"), ("schedule.iterations=ten", "schedule.iterations"),
]
BAD_PSG = [
    ('model.conv_options={backend="fpga"}', "unknown fabric backend"), ('model.conv_options={mode="int4"}', "mode"),
    ('model.conv_options={precision="float16"}', "precision"), ('model.conv_options={beta=2.0}', "beta"),
    ('model.conv_options={grad_bits=8}', "grad_bits"), ('model.conv_options={exponent="min"}', "exponent"),
    ('model.conv_options={msb="up"}', "msb"), ('model.conv_options={backend="reference", msb="floor"}', "msb"),
    ("model.conv_options={restrict=3}", "restrict"), ("model.conv_options={foo=1}", "foo"),
    ('optim.options={method="adam"}', "method"), ("optim.options={swa_start=2}", "swa_start"),
    ("optim.options={swa_samples=0}", "swa_samples"), ('optim.options={sign_lr="fast"}', "sign_lr"),
    ('optim.options={swa="yes"}', "swa"), ('optim.options={train_only="fc"}', "train_only"),
    ("optim.options={swa_bn_batches=-1}", "swa_bn_batches"),
]


@pytest.mark.parametrize("setting,named", BAD + [(s, n) for s, n in BAD_PSG], ids=[s for s, _ in BAD + BAD_PSG])
def test_a_bad_config_value_is_a_one_line_error(tmp_path, capsys, setting, named):
    extra = PSG if (setting, named) in BAD_PSG else []
    argv = ["train", "--out", str(tmp_path / "run")]
    for kv in (*SMALL, *extra, setting):
        argv += ["--set", kv]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("e2train: error: ") and named in err[0], err
    assert not os.path.exists(tmp_path / "run" / "report.json")


def test_eval_builds_and_closes_its_own_engine(tmp_path, monkeypatch):
    """``e2train eval`` of a PSG checkpoint on a fabric backend: one engine, closed after the evaluation."""
    closed = []
    real = FabricEngine.close
    monkeypatch.setattr(FabricEngine, "close", lambda self: closed.append(1) or real(self))
    data = (make_synthetic(32, seed=1), make_synthetic(16, seed=2), 10)
    cfg = load_config(None, [*SMALL, *PSG, 'model.conv_options={backend="reference"}', 'optim.options={swa=false}'])
    with Trainer(cfg, str(tmp_path / "run"), data=data, log=lambda m: None) as t:
        t.run()
    assert closed == [1]
    def fake_cifar(folder, name, split):
        return make_synthetic(16, seed=3)

    monkeypatch.setattr("e2train.data.load_cifar", fake_cifar)
    ck = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(ck, weights_only=True)
    state["config"]["data"]["dataset"] = "cifar10"  # eval reads CIFAR; the stand-in gives synthetic images
    torch.save(state, ck)
    assert main(["eval", "--checkpoint", str(ck), "--data-dir", str(tmp_path), "--out", str(tmp_path / "e.json")]) == 0
    assert closed == [1, 1] and json.loads((tmp_path / "e.json").read_text())["samples"] == 16
