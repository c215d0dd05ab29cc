"""What every gated CIFAR network shares: layer registry, block execution (plain, SLU, stochastic depth).

A network is a stem, a list of residual blocks and a head. Each block (with ``in_ch``, ``name``, ``gate``) exposes ``branch(x)`` (the residual
path), ``skip_path(x)`` (the shortcut) and ``finish(y)`` (what follows the addition). The network runs them:

* ``gating="none"``: every block on every sample.
* ``gating="slu"``: gated blocks run only for the samples whose gate is on (gather/scatter, forward and
  backward); see ``gates.py`` for decisions and gradients.
* ``gating="sd"``: stochastic depth (Huang et al. 2016): block l of L survives with probability
  ``1 - l/L * (1 - p_L)``, one draw per block per mini-batch; at evaluation the branch is scaled by it.

Every layer that multiplies (factory convs, depthwise convs, the classifier, the gates) is registered with
a ``LayerSpec`` so that ``MacCounter`` can count executed multiply-accumulates per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import ConvShape
from .convs import ConvFactory
from .gates import BlockGate, GateRNN, GateState
from .skip import gathered_residual

GATINGS = ("none", "slu", "sd")


@dataclass(frozen=True)
class LayerSpec:
    """A layer that multiplies: kind ``conv`` (factory conv), ``dwconv``, ``linear``, ``gate``, ``gate_rnn``."""

    name: str
    kind: str
    in_ch: int
    out_ch: int
    k: int
    stride: int
    groups: int = 1
    first: bool = False  # its input is the image: no backward-data pass


class GatedNet(nn.Module):
    def __init__(self, gating: str = "none", sd_final_survival: float = 0.5):
        super().__init__()
        if gating not in GATINGS:
            raise ValueError(f"gating must be one of {GATINGS}, got {gating!r}")
        if not 0.0 < sd_final_survival <= 1.0:
            raise ValueError(f"sd_final_survival must be in (0, 1], got {sd_final_survival}")
        self.gating = gating
        self.sd_final_survival = sd_final_survival
        self.specs: dict[str, LayerSpec] = {}
        self._layer_modules: dict[str, nn.Module] = {}  # name -> module (not registered twice)
        self.gate_sample_in_training = False  # Bernoulli gate decisions in training (default: threshold)
        self.force_gates: torch.Tensor | None = None  # [n_gated, N] bool: decisions given by a test or benchmark
        self.last_gates: GateState | None = None
        self.last_sd: list[bool] | None = None
        # distributed training: decisions -> whether any rank runs the block (then every rank does, on its
        # active samples, possibly none); set by e2train.training.distributed
        self.any_rank_active = None

    # ---- construction -------------------------------------------------------------------------
    def add_spec(self, spec: LayerSpec, module: nn.Module | None = None) -> None:
        if spec.name in self.specs:
            raise ValueError(f"duplicate layer name {spec.name!r}")
        self.specs[spec.name] = spec
        if module is not None:
            self._layer_modules[spec.name] = module

    def add_conv(self, factory: ConvFactory, in_ch: int, out_ch: int, k: int, stride: int, name: str, first: bool = False):
        m = factory(in_ch, out_ch, k, stride, name)
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() == 4:
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")  # He initialisation
        self.add_spec(LayerSpec(name, "conv", in_ch, out_ch, k, stride, first=first), m)
        return m

    def add_dwconv(self, ch: int, stride: int, name: str) -> nn.Conv2d:
        m = nn.Conv2d(ch, ch, 3, stride=stride, padding=1, groups=ch, bias=False)
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.add_spec(LayerSpec(name, "dwconv", ch, ch, 3, stride, groups=ch), m)
        return m

    def setup_blocks(self, blocks: list[nn.Module], gated: list[nn.Module]) -> None:
        self.res_blocks = list(blocks)  # plain list: the blocks are registered where they live
        self.gated_ids = [id(b) for b in gated]
        self.gated_blocks = list(gated)
        if self.gating == "slu":
            self.gate_rnn = GateRNN()
            self.add_spec(LayerSpec("gate_rnn", "gate_rnn", 10, 10, 1, 1), self.gate_rnn)
            for b in gated:
                b.gate = BlockGate(b.in_ch)
                self.add_spec(LayerSpec(f"{b.name}.gate", "gate", b.in_ch, 10, 1, 1), b.gate)
        # stochastic depth: linear decay of the survival probability over all blocks
        n = len(self.res_blocks)
        self.sd_survival = [1.0 - (i + 1) / n * (1.0 - self.sd_final_survival) for i in range(n)]

    # ---- running ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.run_stem(x)
        state = None
        if self.gating == "slu":
            p0 = next(self.gate_rnn.parameters())
            state = GateState(self.gate_rnn, x.shape[0], x.device, p0.dtype)
            state.forced = self.force_gates
        sd_draws = []
        for i, blk in enumerate(self.res_blocks):
            if state is not None and blk.gate is not None:
                p, d = state.step(blk.gate, h, sample=self.training and self.gate_sample_in_training)
                everywhere = self.training and self.any_rank_active is not None and self.any_rank_active(d)
                h = blk.finish(gathered_residual(blk.skip_path(h), h, blk.branch, p, d, run_empty=everywhere))
            elif self.gating == "sd":
                keep = self.sd_survival[i]
                if self.training:
                    run = bool(torch.rand(()) < keep)
                    sd_draws.append(run)
                    h = blk.finish(blk.skip_path(h) + blk.branch(h)) if run else blk.finish(blk.skip_path(h))
                else:
                    h = blk.finish(blk.skip_path(h) + keep * blk.branch(h))
            else:
                h = blk.finish(blk.skip_path(h) + blk.branch(h))
        self.last_gates = state
        self.last_sd = sd_draws if self.gating == "sd" else None
        return self.run_head(h)

    # ---- description --------------------------------------------------------------------------
    def layer_modules(self) -> dict[str, nn.Module]:
        return dict(self._layer_modules)

    def conv_shapes(self, batch: int = 128, image: int = 32) -> list[ConvShape]:
        """The factory convs as ``ConvShape`` (as ``e2train.fabric.networks`` lists them), by a shape trace."""
        sizes: dict[str, int] = {}
        hooks = [
            m.register_forward_hook(lambda mod, inp, out, name=name: sizes.__setitem__(name, inp[0].shape[-1]))
            for name, m in self._layer_modules.items()
            if self.specs[name].kind == "conv"
        ]
        was_training, forced = self.training, self.force_gates
        try:
            self.eval()
            self.force_gates = torch.ones(len(self.gated_blocks), 1, dtype=torch.bool)
            with torch.no_grad():
                self(torch.zeros(1, 3, image, image))
        finally:
            for hk in hooks:
                hk.remove()
            self.train(was_training)
            self.force_gates = forced
        return [
            ConvShape(s.name, batch, s.in_ch, s.out_ch, sizes[s.name], sizes[s.name], s.k, s.stride)
            for s in self.specs.values()
            if s.kind == "conv"
        ]

    def layer_stats(self) -> dict[str, dict]:
        """Per-layer statistics that plug-in layers expose through a ``layer_stats()`` method."""
        out = {}
        for name, m in self._layer_modules.items():
            fn = getattr(m, "layer_stats", None)
            if callable(fn):
                stats = fn()
                if stats:
                    out[name] = stats
        return out
