"""Training through the simulated board gives bit for bit the weights of training through csim.

A short run of a gated ResNet-8 (SLU gates on the host; a gated block sends only its active samples
to the fabric, forward and backward) with PSG convolutions whose integer kernels run on a fabric
engine, SMD deciding before each batch is drawn, SGD. The same run with the ``pynq`` backend on the
simulated board and with the ``csim`` backend must end with identical parameters; the fabric's busy
share of the run is reported.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from e2train.models import build_model
from e2train.psg.conv import QuantConv2d
from e2train.psg.engines import make_engine

STEPS = 6
BATCH = 8
SMD_P = 0.5


def _train(engine) -> tuple[dict, int, list[int]]:
    torch.manual_seed(0)

    def factory(in_ch, out_ch, k, stride, name=""):
        return QuantConv2d(in_ch, out_ch, k, stride, name=name, engine=engine)

    model = build_model("resnet8", 10, factory, gating="slu")
    initial = {k: v.detach().clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.standard_normal((STEPS, BATCH, 3, 8, 8)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, size=(STEPS, BATCH)))
    executed, active = 0, []
    for i in range(STEPS):
        if np.random.default_rng(100 + i).random() < SMD_P:  # SMD: decided before the batch is read
            continue
        x, y = images[i], labels[i]
        torch.manual_seed(1000 + i)  # the gates' draws
        model.train()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        executed += 1
        active.extend(int(d.sum()) for d in model.last_gates.decisions)
    final = {k: v.detach().clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    assert any(not torch.equal(final[k], initial[k]) for k in final if k.endswith("conv1.weight"))  # it trained
    return final, executed, active


def test_training_on_the_simulated_board_matches_csim():
    board = make_engine("pynq", device="sim")
    sim_weights, executed, active = _train(board)
    csim_weights, executed_c, active_c = _train(make_engine("csim"))
    assert 0 < executed < STEPS and executed == executed_c  # SMD dropped some batches, the same ones
    assert active == active_c and any(0 < a < BATCH for a in active)  # some blocks ran on part of the batch
    assert sim_weights.keys() == csim_weights.keys()
    for name, w in sim_weights.items():
        assert torch.equal(w, csim_weights[name]), name
    fab = board.fabric
    # three kernel runs per conv and executed step at most (gated blocks with no active sample skip theirs)
    assert 0 < fab.calls and fab.device.runs("conv_fwd") > 0 and fab.device.runs("conv_bwd_weight_psg") > 0
    assert 0 < fab.busy_s
