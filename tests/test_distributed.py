"""Training on several processes (docs/distributed.md): 2 ranks on gloo over 127.0.0.1, against one process.

The 2-rank scenarios run once per module in one process group (``two_ranks``: torch.multiprocessing);
the kill test starts the CLI as two ranks and resumes through ``e2train train --nproc 2``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dist_helpers import SCENARIOS, cli_ranks, config, free_port, result, run_single, set_args, spawn
from e2train.cli import main
from e2train.checkpoint import load_checkpoint
from e2train.training.config import ConfigError, load_config
from e2train.training.distributed import DistBatchNorm2d, SignVote, World, decode_sum, encode_signs, prepare_model

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

FP32_TOLERANCE = 1e-5  # fp32 SGD: the ranks' sums in another order than one process's, a few steps


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("two_ranks"))
    spawn(["sgd", "psg_exact", "psg_vote", "resume_ref"], root)
    return root


def _tensors(state: dict) -> dict:
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _assert_ranks_agree(root: str, name: str) -> dict:
    a, b = result(root, name, 0), result(root, name, 1)
    for k, v in _tensors(a["state"]).items():
        assert torch.equal(v, b["state"][k]), f"{name}: rank 1 differs from rank 0 in {k}"
    assert a["report"] == b["report"]  # every rank returns rank 0's report
    return a


# ---- without processes --------------------------------------------------------------------------
def test_batch_shards_are_the_global_batch():
    from e2train.data import make_synthetic
    from e2train.data.batches import BatchSchedule

    data = make_synthetic(40, seed=3)
    whole = BatchSchedule(data, 12, seed=5)
    shards = [BatchSchedule(data, 12, seed=5, shard=(r, 3)) for r in range(3)]
    for i in (0, 1, 3, 7):  # an epoch boundary falls inside batch 3
        x, y = whole.batch(i)
        parts = [s.batch(i) for s in shards]
        assert torch.equal(x, torch.cat([p[0] for p in parts])) and torch.equal(y, torch.cat([p[1] for p in parts]))
    with pytest.raises(ValueError, match="cannot be split evenly over 5"):
        BatchSchedule(data, 12, seed=5, shard=(0, 5))


def test_sync_batchnorm_is_batchnorm_and_an_empty_share_changes_nothing():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    torch.nn.init.normal_(plain[0].weight), torch.nn.init.normal_(plain[0].bias)
    synced = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    synced.load_state_dict(plain.state_dict())
    assert DistBatchNorm2d.convert(synced, World(), sync=True) == 1  # a 1-rank world: the statistics are its own
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    g = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    plain.double(), synced.double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    plain(xa).backward(g)
    ya = plain(x.clone())
    synced(xb).backward(g)
    yb = synced(x.clone())
    torch.testing.assert_close(ya, yb)
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(plain[0].weight.grad, synced[0].weight.grad)
    torch.testing.assert_close(plain[0].running_var, synced[0].running_var)
    # a rank with no row (a gated block other ranks run): zero gradients, statistics untouched
    local = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    DistBatchNorm2d.convert(local, World(), sync=False)
    before = {k: v.clone() for k, v in local.state_dict().items()}
    out = local(torch.zeros(0, 3, 4, 4))
    out.sum().backward()
    assert out.shape == (0, 3, 4, 4) and torch.equal(local[0].weight.grad, torch.zeros(3))
    assert all(torch.equal(v, local.state_dict()[k]) for k, v in before.items())


class _Peers:
    """A world whose all-gather hands back what the other ranks encoded."""

    def __init__(self, others):
        self.others = others

    def all_gather(self, t, kind):
        return [t, *self.others]


def test_sign_vote_is_the_majority_in_two_bits_per_weight():
    signs = torch.tensor([[1, 1, -1, 0, 0, -1, 1, 0, -1], [1, -1, -1, 0, 1, 1, 0, 0, -1], [-1, 1, 0, 0, 1, -1, 0, 1, 1]],
                         dtype=torch.float32)
    planes = [encode_signs(s) for s in signs]
    assert planes[0].dtype == torch.uint8 and planes[0].numel() == 2 * 2  # 9 weights: 2 bytes per plane
    assert torch.equal(decode_sum(planes, 9), signs.sum(0).to(torch.int32))
    w = torch.nn.Parameter(torch.zeros(3, 3))
    w.grad = signs[0].view(3, 3) * 0.25  # rank 0's gradient; its sign is what it sends
    SignVote([w], _Peers(planes[1:]))()
    assert torch.equal(w.grad.flatten(), signs.sum(0).sign())  # ties (0) stay 0


def test_bad_configs_are_one_line_errors(tmp_path, capsys, monkeypatch):
    sets = set_args(["data.dataset=synthetic", "schedule.batch_size=16", "run.progress=false"])
    assert main(["train", *sets, "--nproc", "3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["e2train: error: schedule.batch_size 16 (the global batch) cannot be split over 3 processes: "
                   "choose a multiple of 3"]
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun would start it: refused before joining the group
    assert main(["train", *sets, "--out", str(tmp_path)]) == 2
    assert "cannot be split over 3 processes" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ConfigError, match="dist.psg must be exact or vote"):
        load_config(None, ["dist.psg=median"])
    cfg = load_config(None, ['model.conv="e2train.psg:make_conv_factory"', 'model.conv_options={backend="reference"}',
                             "model.arch=resnet8"])
    from e2train.training.setup import build_from_config

    with pytest.raises(ConfigError, match="backend runs as one call; use the torch backend, or dist.psg = vote"):
        prepare_model(build_from_config(cfg, 10), World(rank=0, size=2), cfg)


# ---- 2 ranks -------------------------------------------------------------------------------------
def test_fp32_sgd_with_smd_and_slu_on_two_ranks_is_one_process_at_twice_the_batch(two_ranks, tmp_path):
    """SMD drops the same iterations on both ranks; block layer2.0 has no sample on rank 1 (forced gates)
    and still trains there; with SyncBN the run is one process's at batch 16 to float rounding."""
    dist = _assert_ranks_agree(two_ranks, "sgd")
    rep, state = run_single("sgd", str(tmp_path / "single"))
    for k, v in _tensors(state).items():
        torch.testing.assert_close(dist["state"][k], v, rtol=0, atol=FP32_TOLERANCE, msg=k)
    init = config("sgd")
    from e2train.training.loop import Trainer

    start = Trainer(init, str(tmp_path / "init"), log=lambda m: None).model.state_dict()["layer2.0.conv1.weight"]
    assert not torch.equal(dist["state"]["layer2.0.conv1.weight"], start)  # the idle rank's copy moved too
    d = dist["report"]
    for key in ("executed_iterations", "smd_dropped", "slu_executed_ratio", "executed_block_ratio", "macs",
                "macs_per_layer", "baseline_macs"):
        assert d[key] == rep[key], key
    assert 0 < d["smd_dropped"] < d["iterations"] and d["slu_executed_ratio"] < 1
    assert d["dist"]["world_size"] == 2 and d["dist"]["sync_bn"] is True
    # DDP sums each trained float (4 bytes) once per step
    assert d["dist"]["bytes_per_step"]["gradients"] == 4 * d["dist"]["ddp_parameters"]
    lines = [json.loads(s) for s in open(os.path.join(two_ranks, "sgd", "metrics.jsonl"))]
    single = [json.loads(s) for s in open(tmp_path / "single" / "metrics.jsonl")]
    assert [r["smd_dropped"] for r in lines] == [r["smd_dropped"] for r in single]
    assert [r["executed_ratio"] for r in lines] == [r["executed_ratio"] for r in single]


def test_psg_exact_mode_on_two_ranks_is_bit_exact(two_ranks, tmp_path):
    """Torch engine in float64; the setting: only the PSG convs train and BN uses running statistics,
    so nothing but the integer G_msb / G_full sums reduces over samples (docs/distributed.md)."""
    dist = _assert_ranks_agree(two_ranks, "psg_exact")
    rep, state = run_single("psg_exact", str(tmp_path / "single"))
    for k, v in _tensors(state).items():
        assert torch.equal(dist["state"][k], v), f"{k} differs from one process at batch 16"
    d = dist["report"]
    assert d["psg_predicted_ratio"] == rep["psg_predicted_ratio"] and d["macs_by_bits"] == rep["macs_by_bits"]
    assert d["top1"] == rep["top1"] and d["macs"] == rep["macs"]
    traffic = d["dist"]["bytes_per_step"]
    weights = sum(v.numel() for k, v in state.items() if k.endswith("weight") and v.dim() == 4 and "gate" not in k)
    assert traffic["psg_g_msb"] == 4 * weights  # G_msb of every conv weight (int32: within the contract's bound)
    assert 0 < traffic["psg_g_full"] <= 8 * weights and "gradients" not in traffic  # nothing else trains


def test_psg_vote_mode_sends_two_bits_per_weight(two_ranks, tmp_path):
    dist = _assert_ranks_agree(two_ranks, "psg_vote")
    _, state = run_single("psg_exact", str(tmp_path / "single"))
    assert any(not torch.equal(dist["state"][k], v) for k, v in _tensors(state).items())  # a different algorithm
    traffic = dist["report"]["dist"]["bytes_per_step"]
    weights = sum(v.numel() for k, v in state.items() if k.endswith("weight") and v.dim() == 4 and "gate" not in k)
    assert traffic["sign_vote"] == 2 * ((weights + 7) // 8)  # the only update traffic
    assert "psg_g_msb" not in traffic and "psg_exponents" not in traffic


def test_a_killed_rank_stops_the_other_and_the_run_resumes_to_the_same_end(two_ranks, tmp_path):
    sets = [*SCENARIOS["resume_ref"][0], "dist.timeout=20"]
    out = tmp_path / "run"
    args = [*set_args(sets), "--out", str(out)]
    procs = cli_ranks(args, 2, free_port(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600  # generous: under load the ranks' torch import alone takes long
        ck = out / "checkpoint.pt"
        while time.time() < deadline and procs[0].poll() is None:
            if ck.exists() and load_checkpoint(str(ck))["iteration"] >= 2:
                break
            time.sleep(0.02)
        assert procs[0].poll() is None and procs[1].poll() is None, "the run ended before it could be killed"
        procs[1].send_signal(signal.SIGKILL)
        killed = time.time()
        _, err = procs[0].communicate(timeout=60)
        noticed = time.time() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    lines = [s for s in err.splitlines() if s.startswith("e2train: error:")]
    assert procs[0].returncode == 4 and len(lines) == 1, err[-2000:]
    assert lines[0].startswith("e2train: error: rank 0: ") and "checkpoint is kept" in lines[0]
    assert noticed < 60
    at = load_checkpoint(str(out / "checkpoint.pt"))["iteration"]
    assert 2 <= at < 24 and not (out / "report.json").exists()
    # resume on 2 processes through torch.distributed.run: the uninterrupted run's end, bit for bit
    res = subprocess.run([sys.executable, "-m", "e2train.cli", "train", *args, "--resume", "--nproc", "2"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    ref = result(two_ranks, "resume_ref", 0)
    final = load_checkpoint(str(out / "checkpoint.pt"))
    for k, v in _tensors(ref["state"]).items():
        assert torch.equal(final["model"][k], v), k
    rep = json.load(open(out / "report.json"))
    for key in ("macs", "macs_per_layer", "smd_dropped", "slu_executed_ratio", "top1", "executed_iterations"):
        assert rep[key] == ref["report"][key], key
    iters = [json.loads(s)["iteration"] for s in open(out / "metrics.jsonl")]
    assert iters == sorted(set(iters))  # the lines past the checkpoint were replaced
