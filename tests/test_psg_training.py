"""PSG and its baselines inside the training loop: sign updates, SWA, bit-width report, fabric backends."""

import json
import os

import pytest
import torch

from e2train.data import make_synthetic
from e2train.psg import optimizer_factory
from e2train.psg.swa import snapshot_iterations
from e2train.training import loop as loop_mod
from e2train.training.callbacks import SwaCallback
from e2train.training.config import ConfigError, load_config
from e2train.training.loop import Trainer

PSG = ['model.conv="e2train.psg:make_conv_factory"', 'optim.name="e2train.psg:optimizer_factory"']


def small_cfg(*extra):
    return load_config(None, [
        "data.dataset=synthetic", "model.arch=resnet8", "schedule.iterations=8", "schedule.batch_size=16",
        "run.progress=false", "run.log_every=4", "run.checkpoint_every=0", "data.eval_batch=64", "run.threads=1",
        *extra,
    ])


@pytest.fixture(scope="module")
def data():
    train, val = make_synthetic(96, seed=1), make_synthetic(64, seed=2)
    return train, val, 10


def trainer(tmp_path, data, *extra, name="run"):
    return Trainer(small_cfg(*extra), str(tmp_path / name), data=data, log=lambda m: None)


def swa(t):
    """The trainer's SWA averager (None when SWA is off)."""
    cb = t.callbacks.get(SwaCallback)
    return None if cb is None else cb.averager


def test_sign_groups_and_lrs(tmp_path, data):
    t = trainer(tmp_path, data, *PSG, 'optim.options={method="sign", swa=false}')
    opt = t.optimizer
    convs = {id(m.weight) for n, m in t.model.layer_modules().items() if t.model.specs[n].kind == "conv"}
    sign_group, other = opt.param_groups
    assert sign_group["sign"] and sign_group["lr"] == 0.03 and {id(p) for p in sign_group["params"]} == convs
    assert not other["sign"] and other["lr"] == 0.1 and not convs & {id(p) for p in other["params"]}
    assert swa(t) is None


def test_sign_group_momentum_and_weight_decay_options(tmp_path, data):
    t = trainer(tmp_path, data, *PSG, "optim.nesterov=true",
                'optim.options={method="sign", swa=false, sign_momentum=0.0, sign_weight_decay=0.01}')
    sign_group, other = t.optimizer.param_groups
    assert (sign_group["momentum"], sign_group["weight_decay"], sign_group["nesterov"]) == (0.0, 0.01, False)
    assert (other["momentum"], other["weight_decay"], other["nesterov"]) == (0.9, 1e-4, True)
    t.run()  # torch accepts the groups (Nesterov off where there is no momentum)
    with pytest.raises(ConfigError, match="sign_weight_decay"):
        trainer(tmp_path, data, *PSG, 'optim.options={method="sign", sign_weight_decay=-1.0}', name="bad")


def test_signsgd_steps_on_the_sign():
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0, 1.0]))
    b = torch.nn.Parameter(torch.tensor([1.0]))
    from e2train.psg.optim import LowPrecisionSGD

    opt = LowPrecisionSGD([{"params": [w], "lr": 0.5, "sign": True}, {"params": [b], "lr": 0.5, "sign": False}],
                          lr=0.1, momentum=0.0)
    w.grad = torch.tensor([3.0, -1e-9, 0.0])
    b.grad = torch.tensor([3.0])
    opt.step()
    assert w.tolist() == [0.5, 1.5, 1.0] and b.tolist() == [-0.5]


def test_snapshot_iterations():
    assert snapshot_iterations(100, 0.75, 5) == [80, 85, 90, 95, 100]
    assert snapshot_iterations(8, 0.75, 20) == [7, 8]  # fewer iterations than samples: each once
    with pytest.raises(ValueError):
        snapshot_iterations(10, 1.0, 5)


def test_psg_run_reports_bit_widths_and_swa(tmp_path, data):
    t = trainer(tmp_path, data, *PSG, 'optim.options={method="sign", swa_bn_batches=2}')
    rep = t.run()
    assert rep["swa"]["snapshots"] == len(snapshot_iterations(8, 0.75, 20))
    assert os.path.exists(tmp_path / "run" / "swa_checkpoint.pt")
    by = rep["macs_by_bits"]
    # every conv MAC is counted once per phase at its width; fp32 is the rest (classifier)
    for ph in ("forward", "backward_data"):
        assert sum(by[ph].values()) == rep["macs"][ph]
    fc = rep["macs_per_layer"]["fc"]["forward"]
    assert by["forward"]["32x32"] == fc and by["forward"]["8x8"] == rep["macs"]["forward"] - fc
    assert by["backward_data"]["16x8"] == rep["macs"]["backward_data"] - fc
    # backward-weight: the predictor for every weight, the full product for those that fell back
    assert by["backward_weight"]["4x10"] == rep["macs"]["backward_weight"] - fc
    ratio = rep["psg_predicted_ratio"]
    assert 0 < ratio < 1
    stats = [s for s in rep["layer_stats"].values() if "psg_predicted" in s]
    assert ratio == sum(s["psg_predicted"] for s in stats) / sum(s["psg_weights"] for s in stats)
    weighted = sum(n * int(k.split("x")[0]) * int(k.split("x")[1]) / 1024 for w in by.values() for k, n in w.items())
    assert rep["bit_weighted_macs"] == pytest.approx(weighted)
    assert rep["bit_weighted_savings"] == pytest.approx(1 - weighted / rep["baseline_macs"])
    assert 0.8 < rep["bit_weighted_savings"] < 1 and rep["mac_savings"] == 0.0
    json.dumps(rep)


def test_swa_bn_update_comes_before_evaluation(tmp_path, data, monkeypatch):
    t = trainer(tmp_path, data, *PSG, 'optim.options={method="sign", swa_bn_batches=3}')
    seen = []
    real = loop_mod.evaluate

    def spy(model, *a, **kw):
        seen.append({k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k or k.endswith("weight")})
        return real(model, *a, **kw)

    monkeypatch.setattr(loop_mod, "evaluate", spy)
    import e2train.training.evaluate as ev_mod

    monkeypatch.setattr(ev_mod, "evaluate", spy)  # the optimizer's own look at the last iterate
    t.run()
    last_iterate, final = seen[-2], seen[-1]
    # the final evaluation sees the averaged weights ...
    avg = dict(swa(t).averaged.module.named_parameters())
    for k, v in avg.items():
        if k in final:
            assert torch.equal(final[k], v.detach())
    # ... and BN statistics recomputed for them on the training batches, not those of training
    import copy

    model = copy.deepcopy(t.model)
    with torch.no_grad():
        for p, a in zip(model.parameters(), swa(t).averaged.module.parameters()):
            p.copy_(a)
    torch.manual_seed(t.cfg["run"]["seed"])
    torch.optim.swa_utils.update_bn([t.batches.batch(i)[0] for i in range(3)], model)
    bn = {k: v for k, v in model.state_dict().items() if "running_mean" in k}
    assert bn and all(torch.equal(final[k], v) for k, v in bn.items())
    assert any(not torch.equal(final[k], last_iterate[k]) for k in bn)


def test_fabric_backend_trains_bit_identically_to_torch_float64(tmp_path, data, monkeypatch):
    from e2train.fabric.reference import ReferenceFabric

    calls = []
    real = ReferenceFabric._conv_bwd_weight_psg
    monkeypatch.setattr(ReferenceFabric, "_conv_bwd_weight_psg", lambda self, *a: calls.append(a[-1]) or real(self, *a))
    states = []
    for backend, prec in (("torch", "precision=\"float64\""), ("reference", "")):
        opts = f'model.conv_options={{backend="{backend}"{", " + prec if prec else ""}}}'
        t = trainer(tmp_path, data, *PSG, opts, 'optim.options={method="sign", swa=false}',
                    "schedule.iterations=3", "model.arch=resnet8", name=backend)
        t.run()
        states.append(t.model.state_dict())
    # every conv of resnet8 (9 of them) ran its PSG weight gradient through the reference, every step
    assert calls == ["psg"] * 9 * 3
    a, b = states
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k


def test_fixed8_and_fp32_baselines_report(tmp_path, data):
    fx = trainer(tmp_path, data, *PSG, 'model.conv_options={mode="fixed8", grad_bits=16}', name="fx8").run()
    assert fx["psg_predicted_ratio"] is None and "swa" not in fx
    assert set(fx["macs_by_bits"]["backward_weight"]) == {"8x16", "32x32"}
    assert fx["bit_weighted_savings"] == pytest.approx(1 - (fx["macs"]["forward"] * 64 + fx["macs"]["backward_data"] * 128
                                                            + fx["macs"]["backward_weight"] * 128) / 1024 / fx["baseline_macs"], rel=0.02)
    fp = trainer(tmp_path, data, 'optim.name="e2train.psg:optimizer_factory"', name="fp32").run()
    assert fp["bit_weighted_savings"] == pytest.approx(0.0) and fp["macs_by_bits"]["forward"] == {"32x32": fp["macs"]["forward"]}


def test_resume_keeps_psg_counters_and_swa(tmp_path, data):
    extra = (*PSG, 'optim.options={method="sign", swa_bn_batches=1}', "run.checkpoint_every=4")
    full = trainer(tmp_path, data, *extra, name="full").run()
    part = trainer(tmp_path, data, *extra, name="part")
    part.run(stop_at=4)
    resumed = trainer(tmp_path, data, *extra, name="part")
    assert resumed.resume() and resumed.iteration == 4
    rep = resumed.run()
    for key in ("macs_by_bits", "psg_predicted_ratio", "top1", "swa"):
        assert rep[key] == full[key], key


def test_resume_from_a_checkpoint_that_kept_swa_in_the_optimizer_state(tmp_path, data):
    """Checkpoints written before SWA became a trainer callback (runs in flight) resume exactly."""
    from e2train.checkpoint import load_checkpoint, save_atomic

    # snapshots from iteration 3 on: the checkpoint at 4 holds an average of two
    extra = (*PSG, 'optim.options={method="sign", swa_bn_batches=1, swa_start=0.25}', "run.checkpoint_every=4")
    full = trainer(tmp_path, data, *extra, name="full")
    rep_full = full.run()
    trainer(tmp_path, data, *extra, name="old").run(stop_at=6)
    path = str(tmp_path / "old" / "checkpoint.pt")
    ck = load_checkpoint(path)
    assert ck["callbacks"]["swa"]["averaged"]["n_averaged"] == 2
    ck["optimizer"]["swa"] = ck.pop("callbacks")["swa"]  # the layout of those checkpoints
    save_atomic(ck, path)
    resumed = trainer(tmp_path, data, *extra, name="old")
    assert resumed.resume() and resumed.iteration == 4
    rep = resumed.run()
    for key in ("macs_by_bits", "psg_predicted_ratio", "top1", "swa"):
        assert rep[key] == rep_full[key], key
    for k, v in full.model.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_bad_options_are_config_errors(tmp_path, data):
    with pytest.raises(ConfigError, match="method"):
        trainer(tmp_path, data, *PSG, 'optim.options={method="adam"}')
    with pytest.raises(ConfigError, match="unknown optim.options"):
        trainer(tmp_path, data, *PSG, 'optim.options={lr_sign=1}')
    with pytest.raises(ConfigError, match="mode"):
        trainer(tmp_path, data, *PSG, 'model.conv_options={mode="int4"}')
    with pytest.raises(ConfigError, match="unknown fabric backend"):
        trainer(tmp_path, data, *PSG, 'model.conv_options={backend="fpga9000"}')
    with pytest.raises(ConfigError, match="swa_start"):
        trainer(tmp_path, data, *PSG, 'optim.options={method="sign", swa_start=1.5}')


def test_fine_tuning_halves_init_and_frozen_layers(tmp_path, data):
    from e2train.checkpoint import CheckpointError
    from e2train.training.setup import load_data

    a = load_data(small_cfg("data.part=first_half", "data.synthetic_train=100"))[0]
    b = load_data(small_cfg("data.part=second_half", "data.synthetic_train=100"))[0]
    assert len(a) == len(b) == 50
    whole = load_data(small_cfg("data.synthetic_train=100"))[0]
    pairs = {(img.tobytes(), int(lab)) for img, lab in zip(whole.images, whole.labels)}
    halves = [{(img.tobytes(), int(lab)) for img, lab in zip(h.images, h.labels)} for h in (a, b)]
    assert halves[0] | halves[1] == pairs and not halves[0] & halves[1]
    # pre-train with float convs, then fine-tune (1) the classifier only, (2) everything with PSG
    pre = trainer(tmp_path, data, name="pre")
    pre.run()
    ck = str(tmp_path / "pre" / "checkpoint.pt")
    fc_only = trainer(tmp_path, data, 'optim.name="e2train.psg:optimizer_factory"',
                      f'optim.options={{init_from="{ck}", train_only=["fc"]}}', name="fc")
    start = {k: v.clone() for k, v in fc_only.model.state_dict().items()}
    assert torch.equal(start["conv1.weight"], pre.model.state_dict()["conv1.weight"])
    fc_only.run()
    end = fc_only.model.state_dict()
    assert torch.equal(end["conv1.weight"], start["conv1.weight"]) and not torch.equal(end["fc.weight"], start["fc.weight"])
    # only the classifier's weight gradient ran: no input gradient anywhere, no conv weight gradient
    rows = fc_only.counter.totals
    fc_fwd = rows["fc"]["forward"]
    assert fc_fwd > 0 and fc_only.counter.phase_totals() == {
        "forward": sum(r["forward"] for r in rows.values()), "backward_data": 0, "backward_weight": fc_fwd}
    full = pre.counter.phase_totals()  # the same schedule with everything trained: both phases counted
    assert full["backward_weight"] == full["forward"] > fc_fwd
    assert full["backward_data"] == full["forward"] - sum(r["forward"] for n, r in pre.counter.totals.items() if pre.model.specs[n].first)
    psg = trainer(tmp_path, data, *PSG, f'optim.options={{method="sign", swa=false, init_from="{ck}"}}', name="psg")
    assert torch.equal(psg.model.state_dict()["conv1.weight"], pre.model.state_dict()["conv1.weight"])
    with pytest.raises(CheckpointError, match="not found"):
        trainer(tmp_path, data, *PSG, 'optim.options={init_from="/nonexistent.pt"}', name="x")
    with pytest.raises(ConfigError, match="matches no parameter"):
        trainer(tmp_path, data, *PSG, 'optim.options={train_only=["head"]}', name="y")
    with pytest.raises(ConfigError, match="differs"):
        trainer(tmp_path, data, *PSG, f'optim.options={{init_from="{ck}"}}', "model.arch=resnet14", name="z")


def test_psg_convs_default_to_sign_updates_and_swa(tmp_path, data):
    t = trainer(tmp_path, data, *PSG)
    assert [g["sign"] for g in t.optimizer.param_groups] == [True, False] and swa(t) is not None
    t = trainer(tmp_path, data, *PSG, 'model.conv_options={mode="fixed8"}')
    assert [g["sign"] for g in t.optimizer.param_groups] == [False] and swa(t) is None
