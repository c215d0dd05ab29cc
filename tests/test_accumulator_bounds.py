"""Proof by test that the contract's accumulators cannot overflow for the supported models.

The bound is from the operand widths and the layer shape (docs/contracts.md): it covers every
possible input. The tightness tests show the bound is reached exactly by worst-case operands,
so the formula counts the right number of terms.
"""

import numpy as np
import pytest

from e2train import fixed
from e2train.fabric import get_fabric
from e2train.contract import ConvShape
from e2train.fabric.bounds import accumulator_bounds, accumulator_terms
from e2train.fabric.networks import distinct_convs, mobilenetv2_cifar_convs, resnet_cifar_convs

ref = get_fabric("reference")


def test_resnet_layer_lists():
    r20 = resnet_cifar_convs(20)
    assert len(r20) == 1 + 9 * 2 + 2  # stem, 9 blocks of two convs, two projection shortcuts
    # hand count per image: stem + 6 convs at 32x32 + (first conv, shortcut, 5 convs) at 16x16 and 8x8
    stage = 16 * 32 * 9 * 256 + 16 * 32 * 256 + 5 * 32 * 32 * 9 * 256
    assert sum(s.macs for s in r20) == 128 * (3 * 16 * 9 * 1024 + 6 * 16 * 16 * 9 * 1024 + 2 * stage)
    r110 = resnet_cifar_convs(110)
    assert len(r110) == 1 + 54 * 2 + 2
    with pytest.raises(ValueError):
        resnet_cifar_convs(21)


@pytest.mark.parametrize(
    "name,layers",
    [("resnet110", resnet_cifar_convs(110, batch=128)), ("mobilenetv2", mobilenetv2_cifar_convs(batch=128))],
)
def test_no_accumulator_overflows_for_the_largest_layers(name, layers):
    worst = {}
    for layer in layers:
        for kernel, (bound, limit) in accumulator_bounds(layer).items():
            assert bound <= limit, f"{name} {layer.name}: {kernel} bound {bound} exceeds {limit}"
            worst[kernel] = max(worst.get(kernel, 0), bound / limit)
    # the headroom that is left (the MSB accumulator is the tightest: 2**29 of 2**31 - 1 at the stem),
    # so that a change of widths or shapes shows up here
    assert worst["weight_msb"] < 0.26 and worst["forward"] < 0.01
    assert worst["weight_full"] < 2**-7 and worst["backward_data"] < 2**-10


def test_bounds_of_the_largest_layers_are_as_computed():
    r110 = resnet_cifar_convs(110, 128)
    stem = r110[0]
    b = accumulator_bounds(stem)
    assert b["weight_msb"][0] == 128 * 32 * 32 * 8 * 512 == 2**29  # of 2**31 - 1
    assert b["weight_full"][0] == 128 * 32 * 32 * 128 * 32768 == 2**39  # of 2**47 - 1
    head = mobilenetv2_cifar_convs(128)[-1]
    assert (head.c, head.o, head.k) == (320, 1280, 1)
    assert accumulator_bounds(head)["backward_data"][0] == 1280 * 32768 * 128


@pytest.mark.parametrize("k,s,h", [(3, 1, 5), (3, 2, 6), (3, 2, 5), (1, 2, 4), (1, 1, 3)])
def test_bound_is_reached_by_worst_case_operands(k, s, h):
    shape = ConvShape("t", 2, 3, 4, h, h, k, s)
    terms = accumulator_terms(shape)
    x = np.full((2, 3, h, h), -128, np.int8)
    w = np.full((4, 3, k, k), -128, np.int8)
    g = np.full((2, 4, shape.ho, shape.wo), -32768, np.int16)
    assert ref.conv_fwd(x, w, s).max() == terms["forward"] * 128 * 128
    assert ref.conv_bwd_data(g, w, s, (h, h)).max() == terms["backward_data"] * 32768 * 128
    r = ref.conv_bwd_weight_psg(x, g, k, s, 3277)
    assert r.g_full.max() == terms["weight_full"] * 128 * 32768
    assert r.g_msb.max() == terms["weight_msb"] * 8 * 512


def test_overflowing_layer_is_refused_not_wrapped():
    c = (fixed.qmax(32) // (128 * 128)) + 1  # one term too many for the int32 forward accumulator
    x = np.full((1, c, 1, 1), -128, np.int8)
    w = np.full((1, c, 1, 1), -128, np.int8)
    assert accumulator_bounds(ConvShape("big", 1, c, 1, 1, 1, 1, 1))["forward"][0] > fixed.qmax(32)
    with pytest.raises(OverflowError, match="32-bit accumulator"):
        ref.conv_fwd(x, w, 1)


def test_distinct_convs_keeps_the_first_layer_of_each_shape():
    r20 = resnet_cifar_convs(20, batch=8)
    names = [s.name for s in distinct_convs(r20)]
    # stem, stage-1 conv, then per later stage: the strided conv, its shortcut, the plain conv
    assert names == ["conv1", "layer1.0.conv1", "layer2.0.conv1", "layer2.0.shortcut", "layer2.0.conv2",
                     "layer3.0.conv1", "layer3.0.shortcut", "layer3.0.conv2"]
