"""The conv-layer plug-in point: every dense convolution of a model is built by a ``conv_factory``.

A conv factory is ``factory(in_ch, out_ch, k, stride, name) -> nn.Module``. The module takes an NCHW
float tensor and returns the convolution with zero padding ``(k - 1) // 2``, no bias and one group,
i.e. exactly the layer shapes of ``e2train.fabric.networks``. ``name`` is the layer's dotted path in the
model (``"layer2.0.conv1"``), so a factory can keep per-layer state and statistics under that name.

The default builds a plain ``nn.Conv2d``. Other backends (PSG with quantised operands, a conv that runs
through a numpy ``Fabric``) register a *factory maker* here under a name, or are named by import path
``"package.module:callable"``; the training config picks one with ``model.conv`` and passes
``model.conv_options`` to the maker: ``maker(**conv_options) -> conv_factory``.

Depthwise convolutions (MobileNetV2) and the SLU gates' 1x1 convs always stay plain torch: the fabric
contract has no groups and the gates run on the host.
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol

from torch import nn


class ConvFactory(Protocol):
    def __call__(self, in_ch: int, out_ch: int, k: int, stride: int, name: str) -> nn.Module: ...


def plain_conv(in_ch: int, out_ch: int, k: int, stride: int, name: str = "") -> nn.Module:
    """The default: a bias-free float convolution with padding (k - 1) // 2."""
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=(k - 1) // 2, bias=False)


def _plain_maker(**options) -> ConvFactory:
    if options:
        raise ValueError(f"the plain conv takes no options, got {sorted(options)}")
    return plain_conv


# name -> maker(**options) -> ConvFactory
CONV_MAKERS: dict[str, Callable[..., ConvFactory]] = {"plain": _plain_maker}


def register_conv_maker(name: str, maker: Callable[..., ConvFactory]) -> None:
    """Make ``model.conv = name`` build its convs with ``maker(**model.conv_options)``."""
    CONV_MAKERS[name] = maker


def resolve_callable(spec: str, registry: dict, what: str):
    """A registered name, or ``"package.module:attribute"`` imported on demand."""
    if spec in registry:
        return registry[spec]
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ValueError(f"{what} {spec!r}: cannot import module {module_name!r} ({exc})") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ValueError(f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    raise ValueError(f"unknown {what} {spec!r}; choose one of {', '.join(sorted(registry))} or give 'module:callable'")


def make_conv_factory(spec: str = "plain", options: dict | None = None) -> ConvFactory:
    """The conv factory named by a config's ``model.conv`` with its ``model.conv_options``."""
    maker = resolve_callable(spec, CONV_MAKERS, "conv backend")
    return maker(**(options or {}))
