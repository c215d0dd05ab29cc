"""CIFAR networks with SLU gates and stochastic depth; the conv-layer plug-in point; MAC accounting.

>>> from e2train.models import build_model
>>> net = build_model("resnet20", gating="slu")          # or "resnet38", "resnet74", "resnet110", "mobilenetv2"
"""

from __future__ import annotations

from ..fabric.networks import parse_model_name
from .base import GATINGS, GatedNet, LayerSpec
from .convs import CONV_MAKERS, ConvFactory, make_conv_factory, plain_conv, register_conv_maker
from .mobilenetv2 import CifarMobileNetV2
from .resnet import CifarResNet


def build_model(arch: str, num_classes: int = 10, conv_factory: ConvFactory = plain_conv, gating: str = "none",
                sd_final_survival: float = 0.5) -> GatedNet:
    """``resnet<6n+2>`` or ``mobilenetv2`` (``fabric.networks.parse_model_name`` reads the name)."""
    kind, depth = parse_model_name(arch)
    if kind == "resnet":
        return CifarResNet(depth, num_classes, conv_factory, gating, sd_final_survival)
    return CifarMobileNetV2(num_classes, conv_factory, gating, sd_final_survival)


def sd_final_survival_for(executed_ratio: float, n_blocks: int) -> float:
    """The last block's survival p_L that makes linear-decay stochastic depth run ``executed_ratio`` of the
    blocks on average: mean_l (1 - l/L (1 - p_L)) = 1 - (1 - p_L)(L + 1)/(2L)."""
    p_last = 1.0 - (1.0 - executed_ratio) * 2 * n_blocks / (n_blocks + 1)
    if not 0.0 < p_last <= 1.0:
        raise ValueError(f"stochastic depth cannot run {executed_ratio:.3f} of {n_blocks} blocks with linear decay")
    return p_last


__all__ = [
    "CONV_MAKERS", "ConvFactory", "CifarMobileNetV2", "CifarResNet", "GATINGS", "GatedNet", "LayerSpec",
    "build_model", "make_conv_factory", "plain_conv", "register_conv_maker", "sd_final_survival_for",
]
