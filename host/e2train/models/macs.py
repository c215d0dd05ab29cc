"""Counting executed multiply-accumulates per layer and per phase.

Forward hooks on every registered layer see the tensors that actually ran, so samples skipped by SLU
and blocks dropped by stochastic depth cost nothing, and a mini-batch dropped by SMD is never seen. A
training step's backward pass repeats each executed layer twice: ``backward_data`` (the input gradient,
none for the layer that reads the image) and ``backward_weight`` (the weight gradient), each with as
many MACs as its forward. Each is counted only where autograd will run it: the weight gradient of a
layer whose weights are frozen (fine-tuning the classifier only) and the input gradient of a layer
with no trainable parameter upstream are never computed, so they cost nothing. Only convolutions, the
classifier and the gates multiply-accumulate here; BN, ReLU, pooling and the additions of the gates'
average pooling are not counted.
"""

from __future__ import annotations

from collections import defaultdict

from torch import nn

from ..contract import PHASES
from .base import GatedNet, LayerSpec


def layer_macs(spec: LayerSpec, inp, out) -> int:
    """MACs of one call of a layer, from the tensors it saw."""
    if spec.kind in ("conv", "dwconv", "gate"):
        # out [N, O, H', W']: each output takes in_ch/groups * k * k products
        return out.numel() * (spec.in_ch // spec.groups) * spec.k * spec.k
    if spec.kind == "linear":
        return out.numel() * spec.in_ch
    if spec.kind == "gate_rnn":
        raise AssertionError("gate_rnn is counted per gate step")
    raise ValueError(f"unknown layer kind {spec.kind!r}")


class MacCounter:
    """Accumulates executed MACs of a ``GatedNet`` per layer and phase while ``active``."""

    def __init__(self, model: GatedNet):
        self.model = model
        self.active = False
        self.step: dict[str, int] = defaultdict(int)  # forward MACs of the current step
        self.step_wgrad: dict[str, int] = defaultdict(int)  # of those, the ones whose weight gradient runs
        self.step_dgrad: dict[str, int] = defaultdict(int)  # ... and whose input gradient runs
        self.totals: dict[str, dict[str, int]] = {}
        self._hooks = []
        for name, m in model.layer_modules().items():
            spec = model.specs[name]
            if spec.kind == "gate_rnn":
                self._hooks.append(m.cell.register_forward_hook(self._rnn_hook(spec, m)))
                self._hooks.append(m.proj.register_forward_hook(self._rnn_hook(spec, None)))
            elif spec.kind == "gate":
                self._hooks.append(m.embed.register_forward_hook(self._hook(spec)))
            else:
                self._hooks.append(m.register_forward_hook(self._hook(spec)))
        for name, spec in model.specs.items():
            if spec.kind == "linear":
                self._hooks.append(getattr(model, name).register_forward_hook(self._hook(spec)))

    def _count(self, spec: LayerSpec, module, inp, macs: int) -> None:
        self.step[spec.name] += macs
        if any(p.requires_grad for p in module.parameters()):
            self.step_wgrad[spec.name] += macs
        # autograd computes an input gradient only if something upstream trains
        if not spec.first and inp and getattr(inp[0], "requires_grad", False):
            self.step_dgrad[spec.name] += macs

    def _hook(self, spec: LayerSpec):
        def hook(module, inp, out):
            if self.active:
                self._count(spec, module, inp, layer_macs(spec, inp, out))
        return hook

    def _rnn_hook(self, spec: LayerSpec, rnn):
        def hook(module, inp, out):
            if not self.active:
                return
            x = inp[0]
            if isinstance(module, nn.LSTMCell):
                macs = x.shape[0] * 4 * module.hidden_size * (module.input_size + module.hidden_size)
            else:
                macs = out.numel() * module.in_features
            self._count(spec, module, inp, macs)
        return hook

    def begin_step(self) -> None:
        self.step, self.step_wgrad, self.step_dgrad = defaultdict(int), defaultdict(int), defaultdict(int)
        self.active = True

    def end_step(self, backward: bool = True) -> dict[str, int]:
        """Close the step: forward MACs, plus the two backward phases if the step ran backward."""
        self.active = False
        for name, fwd in self.step.items():
            row = self.totals.setdefault(name, dict.fromkeys(PHASES, 0))
            row["forward"] += fwd
            if backward:
                row["backward_weight"] += self.step_wgrad[name]
                row["backward_data"] += self.step_dgrad[name]
        return dict(self.step)

    def phase_totals(self) -> dict[str, int]:
        return {ph: sum(row[ph] for row in self.totals.values()) for ph in PHASES}

    def state_dict(self) -> dict:
        return {"totals": {k: dict(v) for k, v in self.totals.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.totals = {k: dict(v) for k, v in state["totals"].items()}

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


def full_macs_per_sample(model: GatedNet, image: int = 32) -> dict[str, int]:
    """Forward MACs per sample of every layer with every block running and no gates (the baseline net)."""
    import torch

    counter = MacCounter(model)
    was_training, forced, gating = model.training, model.force_gates, model.gating
    try:
        model.eval()
        model.gating = "none"  # the plain network: no gates, every block
        counter.begin_step()
        with torch.no_grad():
            model(torch.zeros(1, 3, image, image, device=next(model.parameters()).device))
        counter.active = False
        return {k: v for k, v in counter.step.items()}
    finally:
        counter.close()
        model.gating = gating
        model.force_gates = forced
        model.train(was_training)


def training_macs(per_sample: dict[str, int], samples: int, first_layers: set[str]) -> dict[str, int]:
    """Per-phase MACs of training ``samples`` samples through every layer of ``per_sample``."""
    fwd = sum(per_sample.values()) * samples
    data = sum(v for k, v in per_sample.items() if k not in first_layers) * samples
    return {"forward": fwd, "backward_data": data, "backward_weight": fwd}
