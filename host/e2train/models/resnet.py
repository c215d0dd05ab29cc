"""CIFAR ResNet-(6n+2) (He et al. 2016): 16/32/64 channels, BN, projection shortcuts, SLU gates.

Layer names equal ``e2train.fabric.networks.resnet_cifar_convs``: ``conv1``, ``layer{s}.{b}.conv1``,
``layer{s}.{b}.shortcut`` (a 1x1 projection where the shape changes) and ``layer{s}.{b}.conv2``; every one
is built by the ``conv_factory``. Every residual block but the first carries an SLU gate when
``gating="slu"``; ``gating="sd"`` applies stochastic depth instead (linear decay over all blocks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import GatedNet, LayerSpec
from .convs import ConvFactory, plain_conv
from .gates import BlockGate


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, planes: int, stride: int, name: str, conv_factory: ConvFactory, net: "GatedNet"):
        super().__init__()
        self.name = name
        self.conv1 = net.add_conv(conv_factory, in_ch, planes, 3, stride, f"{name}.conv1")
        self.bn1 = nn.BatchNorm2d(planes)
        if stride != 1 or in_ch != planes:  # built before conv2: the order of fabric.networks
            self.shortcut = net.add_conv(conv_factory, in_ch, planes, 1, stride, f"{name}.shortcut")
            self.shortcut_bn = nn.BatchNorm2d(planes)
        else:
            self.shortcut = None
        self.conv2 = net.add_conv(conv_factory, planes, planes, 3, 1, f"{name}.conv2")
        self.bn2 = nn.BatchNorm2d(planes)
        self.in_ch = in_ch
        self.gate: BlockGate | None = None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        return F.relu(y)

    def branch_names(self) -> list[str]:
        return [f"{self.name}.conv1", f"{self.name}.conv2"]


class CifarResNet(GatedNet):
    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        conv_factory: ConvFactory = plain_conv,
        gating: str = "none",
        sd_final_survival: float = 0.5,
    ):
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 38, 74, 110, ...), got {depth}")
        super().__init__(gating=gating, sd_final_survival=sd_final_survival)
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = self.add_conv(conv_factory, 3, 16, 3, 1, "conv1", first=True)
        self.bn1 = nn.BatchNorm2d(16)
        blocks = []
        in_ch = 16
        for stage, planes in enumerate((16, 32, 64), start=1):
            stage_blocks = []
            for b in range(n):
                stride = 2 if (b == 0 and stage > 1) else 1
                blk = BasicBlock(in_ch, planes, stride, f"layer{stage}.{b}", conv_factory, self)
                stage_blocks.append(blk)
                blocks.append(blk)
                in_ch = planes
            setattr(self, f"layer{stage}", nn.Sequential(*stage_blocks))
        self.fc = nn.Linear(64, num_classes)
        self.add_spec(LayerSpec("fc", "linear", 64, num_classes, 1, 1))
        # every residual block but the first may be skipped
        self.setup_blocks(blocks, gated=blocks[1:])

    def run_stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))

    def run_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet_cifar(depth: int, **kw) -> CifarResNet:
    return CifarResNet(depth=depth, **kw)
