"""The conv layers of the supported networks: model names, and every dense convolution's shape.

Torch-free, so that the board host, the energy model and the benchmarks read the same lists as the
models (``models.resnet`` / ``models.mobilenetv2`` name their layers alike).
"""

from __future__ import annotations

import re

from ..contract import ConvShape, out_size


def parse_model_name(name: str) -> tuple[str, int | None]:
    """("resnet", depth) for ``resnet<N>`` or ("mobilenetv2", None); case, "-" and "_" do not matter
    ("ResNet-20"), and "mobilenet" is MobileNetV2. The one reading of a model name (build_model, the
    energy model)."""
    m = name.lower().replace("-", "").replace("_", "")
    resnet = re.fullmatch(r"resnet(\d+)", m)
    if resnet:
        return "resnet", int(resnet.group(1))
    if m in ("mobilenetv2", "mobilenet"):
        return "mobilenetv2", None
    raise ValueError(
        f"unknown architecture {name!r}; use resnet<6n+2> (resnet20, resnet38, resnet74, resnet110) or mobilenetv2"
    )


def resnet_cifar_convs(depth: int, batch: int = 128, image: int = 32) -> list[ConvShape]:
    """Every convolution of a CIFAR ResNet-(6n+2) with projection shortcuts (16/32/64 channels)."""
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
    blocks = (depth - 2) // 6
    layers = [ConvShape("conv1", batch, 3, 16, image, image, 3, 1)]
    c, size = 16, image
    for stage, planes in enumerate((16, 32, 64), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            tag = f"layer{stage}.{b}"
            layers.append(ConvShape(f"{tag}.conv1", batch, c, planes, size, size, 3, stride))
            if stride != 1 or c != planes:
                layers.append(ConvShape(f"{tag}.shortcut", batch, c, planes, size, size, 1, stride))
            size = out_size(size, 3, stride)
            layers.append(ConvShape(f"{tag}.conv2", batch, planes, planes, size, size, 3, 1))
            c = planes
    return layers


def distinct_convs(layers: list[ConvShape]) -> list[ConvShape]:
    """The first layer of each distinct shape (channels, size, k, stride), in network order."""
    seen: set = set()
    out = []
    for s in layers:
        key = (s.c, s.o, s.h, s.w, s.k, s.stride)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


# CIFAR MobileNetV2: (expansion t, output channels c, repeats n, first stride s); stride 1 in the
# stem and the second stage keep 32x32 inputs large enough, as CIFAR variants of the network do.
MOBILENETV2_CIFAR_CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenetv2_cifar_convs(batch: int = 128, image: int = 32) -> list[ConvShape]:
    """The dense (groups = 1) convolutions of a CIFAR MobileNetV2; the depthwise ones run on the host."""
    layers = [ConvShape("stem", batch, 3, 32, image, image, 3, 1)]
    c, size = 32, image
    for stage, (t, out, repeats, first_stride) in enumerate(MOBILENETV2_CIFAR_CFG):
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            hidden = c * t
            tag = f"blocks.{stage}.{r}"
            if t != 1:
                layers.append(ConvShape(f"{tag}.expand", batch, c, hidden, size, size, 1, 1))
            # depthwise 3x3 (hidden channels, stride) runs on the host
            size_out = out_size(size, 3, stride)
            layers.append(ConvShape(f"{tag}.project", batch, hidden, out, size_out, size_out, 1, 1))
            size, c = size_out, out
    layers.append(ConvShape("head", batch, c, 1280, size, size, 1, 1))
    return layers
