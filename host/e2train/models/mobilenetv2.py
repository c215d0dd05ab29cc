"""CIFAR MobileNetV2 (Sandler et al. 2018) with the stage table of ``e2train.fabric.networks``.

Dense convs (``stem``, ``blocks.{stage}.{r}.expand``, ``blocks.{stage}.{r}.project``, ``head``) come from
the conv factory and equal ``mobilenetv2_cifar_convs``; the depthwise 3x3 convs stay plain torch (the
fabric contract has no groups). SLU gates sit on the blocks with an identity shortcut (stride 1, same
channels); the other blocks always run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fabric.networks import MOBILENETV2_CIFAR_CFG
from .base import GatedNet, LayerSpec
from .convs import ConvFactory, plain_conv


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, t: int, name: str, conv_factory: ConvFactory, net: GatedNet):
        super().__init__()
        self.name = name
        hidden = in_ch * t
        self.in_ch = in_ch
        self.expand = net.add_conv(conv_factory, in_ch, hidden, 1, 1, f"{name}.expand") if t != 1 else None
        self.expand_bn = nn.BatchNorm2d(hidden) if t != 1 else None
        self.depthwise = net.add_dwconv(hidden, stride, f"{name}.depthwise")
        self.depthwise_bn = nn.BatchNorm2d(hidden)
        self.project = net.add_conv(conv_factory, hidden, out_ch, 1, 1, f"{name}.project")
        self.project_bn = nn.BatchNorm2d(out_ch)
        self.identity = stride == 1 and in_ch == out_ch
        self.gate = None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.expand is None else F.relu6(self.expand_bn(self.expand(x)))
        h = F.relu6(self.depthwise_bn(self.depthwise(h)))
        return self.project_bn(self.project(h))

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        # a block without an identity shortcut has no residual: its "shortcut" contributes zero
        return x if self.identity else 0.0

    def finish(self, y):
        return y


class CifarMobileNetV2(GatedNet):
    def __init__(self, num_classes: int = 10, conv_factory: ConvFactory = plain_conv, gating: str = "none", sd_final_survival: float = 0.5):
        super().__init__(gating=gating, sd_final_survival=sd_final_survival)
        self.stem = self.add_conv(conv_factory, 3, 32, 3, 1, "stem", first=True)
        self.stem_bn = nn.BatchNorm2d(32)
        stages = []
        all_blocks = []
        c = 32
        for s, (t, out, repeats, first_stride) in enumerate(MOBILENETV2_CIFAR_CFG):
            row = []
            for r in range(repeats):
                blk = InvertedResidual(c, out, first_stride if r == 0 else 1, t, f"blocks.{s}.{r}", conv_factory, self)
                row.append(blk)
                all_blocks.append(blk)
                c = out
            stages.append(nn.ModuleList(row))
        self.blocks = nn.ModuleList(stages)
        self.head = self.add_conv(conv_factory, c, 1280, 1, 1, "head")
        self.head_bn = nn.BatchNorm2d(1280)
        self.fc = nn.Linear(1280, num_classes)
        self.add_spec(LayerSpec("fc", "linear", 1280, num_classes, 1, 1))
        self.setup_blocks(all_blocks, gated=[b for b in all_blocks if b.identity])
        if gating == "sd":
            # stochastic depth can only drop blocks that have a shortcut to fall back on
            self.sd_survival = [p if b.identity else 1.0 for p, b in zip(self.sd_survival, all_blocks)]

    def run_stem(self, x):
        return F.relu6(self.stem_bn(self.stem(x)))

    def run_head(self, x):
        h = F.relu6(self.head_bn(self.head(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
