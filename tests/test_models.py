"""Models: layer shapes equal the fabric's bounds, the conv plug-in, SLU gather/scatter, SD, MACs."""

import pytest
import torch
from torch import nn

from e2train.fabric.networks import mobilenetv2_cifar_convs, resnet_cifar_convs
from e2train.models import build_model, make_conv_factory, register_conv_maker, sd_final_survival_for
from e2train.models.macs import MacCounter, full_macs_per_sample
from e2train.models.skip import gathered_residual, masked_residual


@pytest.mark.parametrize("depth", [20, 38, 74, 110])
def test_resnet_convs_equal_bounds(depth):
    assert build_model(f"resnet{depth}", gating="slu").conv_shapes() == resnet_cifar_convs(depth)


def test_mobilenetv2_dense_convs_equal_bounds():
    net = build_model("mobilenetv2", gating="slu")
    assert net.conv_shapes() == mobilenetv2_cifar_convs()
    # depthwise convs stay plain torch, gated blocks are exactly the identity-shortcut ones
    dw = [s for s in net.specs.values() if s.kind == "dwconv"]
    assert len(dw) == 17 and all(isinstance(net.layer_modules()[s.name], nn.Conv2d) for s in dw)
    assert [b.name for b in net.gated_blocks] == [b.name for b in net.res_blocks if b.identity]
    assert len(net.gated_blocks) == 10
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # a training step through the gated blocks reaches the shared gate RNN
    net.train()
    net(torch.randn(4, 3, 32, 32)).sum().backward()
    assert len(net.last_gates.decisions) == 10
    assert net.gate_rnn.cell.weight_ih.grad is not None


def test_unknown_arch_and_depth():
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model("resnet21")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg16")


class _Recording(nn.Conv2d):
    calls = []

    def __init__(self, i, o, k, s, name):
        super().__init__(i, o, k, stride=s, padding=(k - 1) // 2, bias=False)
        self.name = name
        self.seen = 0
        _Recording.calls.append((name, i, o, k, s))

    def forward(self, x):
        self.seen += x.shape[0]
        return super().forward(x)

    def layer_stats(self):
        return {"samples": self.seen}


def test_conv_factory_builds_every_dense_conv_and_reports_stats():
    _Recording.calls = []
    register_conv_maker("recording", lambda: _Recording)
    net = build_model("resnet20", conv_factory=make_conv_factory("recording"))
    assert [c[0] for c in _Recording.calls] == [s.name for s in resnet_cifar_convs(20)]
    assert all((s.c, s.o, s.k, s.stride) == c[1:] for s, c in zip(resnet_cifar_convs(20), _Recording.calls))
    net(torch.zeros(3, 3, 32, 32))
    stats = net.layer_stats()
    assert stats["layer3.2.conv2"] == {"samples": 3} and len(stats) == 21
    # import-path form and errors
    assert make_conv_factory("e2train.models.convs:_plain_maker") is not None
    with pytest.raises(ValueError, match="unknown conv backend 'nope'"):
        make_conv_factory("nope")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        make_conv_factory("e2train.models.convs:missing")


def _block_inputs(seed=0):
    torch.manual_seed(seed)
    net = build_model("resnet20", gating="slu").double()
    net.eval()  # BN from running statistics: each sample's branch is independent of the others
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    blk = net.layer2[1]
    x = torch.randn(6, 32, 16, 16, dtype=torch.float64, requires_grad=True)
    p = torch.rand(6, dtype=torch.float64, requires_grad=True)
    return blk, x, p


@pytest.mark.parametrize("decisions", [[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]])
def test_gather_scatter_equals_masked_computation(decisions):
    from e2train.models.gates import gate_factor

    d = torch.tensor(decisions, dtype=torch.bool)
    results = []
    for fn in ("gathered", "masked"):
        blk, x, p = _block_inputs()
        if fn == "gathered":
            y = gathered_residual(blk.skip_path(x), x, blk.branch, p, d)
        else:
            y = masked_residual(blk.skip_path(x), x, blk.branch, gate_factor(p, d))
        g = torch.randn_like(y, generator=torch.Generator().manual_seed(1))
        (y * g).sum().backward()
        grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in [x, p, *blk.parameters()]]
        results.append((y.detach(), grads))
    (ya, ga), (yb, gb) = results
    torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-12)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # the gate's task gradient flows only where the block ran
    assert torch.all(ga[1][~d] == 0)
    if d.any():
        assert torch.all(ga[1][d] != 0)


def test_skipped_samples_are_never_computed():
    seen = []
    branch = lambda t: (seen.append(t.shape[0]), t * 2)[1]  # noqa: E731
    x = torch.randn(5, 2, 3, 3)
    d = torch.tensor([True, False, False, True, False])
    y = gathered_residual(x, x, branch, torch.full((5,), 0.7), d)
    assert seen == [2]
    torch.testing.assert_close(y[d], 3 * x[d])
    torch.testing.assert_close(y[~d], x[~d])


def test_gate_decisions_threshold_by_default_and_sample_on_request():
    torch.manual_seed(0)
    net = build_model("resnet20", gating="slu")
    with torch.no_grad():
        net.gate_rnn.proj.bias.fill_(0.0)  # p near 0.5: sampling would vary
    x = torch.randn(32, 3, 32, 32)

    def decisions():
        with torch.no_grad():
            net(x)
        return torch.stack(net.last_gates.decisions), torch.stack(net.last_gates.probs)

    for mode in (net.eval, net.train):  # deterministic in both by default
        mode()
        (d1, p), (d2, _) = decisions(), decisions()
        assert torch.equal(d1, d2) and torch.equal(d1, p > 0.5)
    net.gate_sample_in_training = True
    (t1, _), (t2, _) = decisions(), decisions()
    assert not torch.equal(t1, t2)
    net.eval()  # evaluation stays deterministic
    (e1, p), (e2, _) = decisions(), decisions()
    assert torch.equal(e1, e2) and torch.equal(e1, p > 0.5)
    assert len(net.gated_blocks) == 8 and net.layer1[0].gate is None  # every block but the first


def test_stochastic_depth_draws_and_test_time_scaling():
    torch.manual_seed(0)
    net = build_model("resnet20", gating="sd", sd_final_survival=0.5)
    assert net.sd_survival[-1] == pytest.approx(0.5) and net.sd_survival[0] == pytest.approx(1 - 0.5 / 9)
    x = torch.randn(4, 3, 32, 32)
    runs = []
    with torch.no_grad():
        for _ in range(300):
            net(x)
            runs.append(net.last_sd)
    rate = torch.tensor(runs, dtype=torch.float64).mean(0)
    torch.testing.assert_close(rate, torch.tensor(net.sd_survival, dtype=torch.float64), atol=0.09, rtol=0)
    # evaluation: the branch is scaled by its survival probability
    net.eval()
    blk, keep = net.layer3[2], net.sd_survival[-1]
    h = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        expect = torch.relu(h + keep * blk.branch(h))
        got = blk.finish(blk.skip_path(h) + keep * blk.branch(h))
    torch.testing.assert_close(got, expect)
    # the matched ratio: linear decay over 9 blocks running 60 % on average
    p_last = sd_final_survival_for(0.6, 9)
    survival = [1 - (i + 1) / 9 * (1 - p_last) for i in range(9)]
    assert sum(survival) / 9 == pytest.approx(0.6)


def test_mac_count_by_hand_for_resnet8():
    """ResNet-8 (one block per stage), 2 samples, gates forced: layer2.0 runs sample 0 only, layer3.0 both."""
    net = build_model("resnet8", gating="slu")
    net.force_gates = torch.tensor([[True, False], [True, True]])
    counter = MacCounter(net)
    counter.begin_step()
    out = net(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    step = counter.end_step(backward=True)
    s = 32 * 32
    hand = {
        "conv1": 2 * 3 * 16 * 9 * s,
        "layer1.0.conv1": 2 * 16 * 16 * 9 * s,
        "layer1.0.conv2": 2 * 16 * 16 * 9 * s,
        "layer2.0.shortcut": 2 * 16 * 32 * (s // 4),  # the projection runs for every sample
        "layer2.0.conv1": 1 * 16 * 32 * 9 * (s // 4),
        "layer2.0.conv2": 1 * 32 * 32 * 9 * (s // 4),
        "layer3.0.shortcut": 2 * 32 * 64 * (s // 16),
        "layer3.0.conv1": 2 * 32 * 64 * 9 * (s // 16),
        "layer3.0.conv2": 2 * 64 * 64 * 9 * (s // 16),
        "fc": 2 * 64 * 10,
        "layer2.0.gate": 2 * 16 * 10,
        "layer3.0.gate": 2 * 32 * 10,
        "gate_rnn": 2 * 2 * (4 * 10 * (10 + 10) + 10),  # two gated blocks, LSTM cell + Linear
    }
    assert step == hand
    tot = counter.totals
    assert tot["conv1"] == {"forward": hand["conv1"], "backward_data": 0, "backward_weight": hand["conv1"]}
    assert tot["layer2.0.conv1"] == dict.fromkeys(("forward", "backward_data", "backward_weight"), hand["layer2.0.conv1"])
    # the baseline per sample: every block, no gates
    full = full_macs_per_sample(build_model("resnet8"))
    assert sum(full.values()) == sum(v for k, v in hand.items() if "gate" not in k and k not in ("layer2.0.conv1", "layer2.0.conv2")) // 2 + 16 * 32 * 9 * (s // 4) + 32 * 32 * 9 * (s // 4)
