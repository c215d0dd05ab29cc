"""Worst-case accumulator magnitudes from the operand widths, and the conv layers of the supported models.

The bound of a sum of T products of a b_a-bit and a b_b-bit signed integer is T * 2**(b_a-1) * 2**(b_b-1)
(reached when every operand is the most negative value), so a layer is safe when that bound fits the
accumulator. ``T`` is the number of terms that can reach one output, which depends on the layer's
shape only: this is a proof over all inputs, not a sample.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .. import fixed
from ..contract import ACCUMULATORS, ConvShape, out_size


@lru_cache(maxsize=None)
def _taps_per_input(size: int, k: int, stride: int) -> int:
    """Most kernel taps along one axis that any input position receives in the transposed conv.
    Cached: the backends check every call, and the scan over positions costs more than a small layer."""
    pad = (k - 1) // 2
    n_out = out_size(size, k, stride)
    best = 0
    for pos in range(size):
        taps = sum(1 for i in range(k) if (pos + pad - i) % stride == 0 and 0 <= (pos + pad - i) // stride < n_out)
        best = max(best, taps)
    return best


def product_bound(bits_a: int, bits_b: int) -> int:
    """Largest |a * b| for signed integers of those widths: (-2**(ba-1)) * (-2**(bb-1))."""
    return (1 << (bits_a - 1)) * (1 << (bits_b - 1))


def accumulator_terms(s: ConvShape) -> dict[str, int]:
    """How many products can add into one accumulator, per kernel."""
    taps = _taps_per_input(s.h, s.k, s.stride) * _taps_per_input(s.w, s.k, s.stride)
    return {
        "forward": s.c * s.k * s.k,
        "backward_data": s.o * taps,
        "weight_full": s.n * s.ho * s.wo,
        "weight_msb": s.n * s.ho * s.wo,
    }


def accumulator_bounds(s: ConvShape) -> dict[str, tuple[int, int]]:
    """kernel -> (worst-case |accumulator|, the largest value its accumulator holds)."""
    terms = accumulator_terms(s)
    return {
        kern: (terms[kern] * product_bound(*widths), fixed.qmax(acc_bits))
        for kern, (widths, acc_bits) in ACCUMULATORS.items()
    }


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
