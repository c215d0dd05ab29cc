"""How often PSG's predicted sign is right, per layer of ResNet-20, on one batch of real CIFAR-10 images.

    .venv/bin/python tools/psg_predictor_agreement.py --data-dir DIR [--checkpoint RUN/checkpoint.pt]
        [--batch 64] [--seed 0] [--beta 0.05]

DIR holds cifar-10-batches-py. The network is freshly initialised (seed), or takes the weights of a
training checkpoint of ResNet-20 (any conv type); one batch runs forward and backward in float64, and
each conv's quantised x and g_y go through the reference fabric. For three predictor rules it prints:
the share of weights that take the predicted sign, how often a predicted sign equals sgn(G_full), how
often the resulting PSG sign equals the sign of the float gradient, and the share of x_msb that are 0:

* ``v2``: the contract, min((x + 8) >> 4, 7), min((g + 32) >> 6, 511), round to nearest;
* ``floor``: v1's x >> 4, g >> 6 (the torch engine's msb = "floor" ablation);
* ``unsigned_x``: the torch-only experiment: an x with no negative value takes min((x + 4) >> 3, 15).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from e2train import fixed
from e2train.data import load_cifar
from e2train.data.augment import Normalizer
from e2train.fabric import torch_kernels as tk
from e2train.fabric.reference import ReferenceFabric, _weight_grad, psg_confident
from e2train.models import build_model
from e2train.psg import make_conv_factory
from e2train.psg.optim import load_weights


def capture(model, x, y) -> dict:
    """layer name -> (its input, the gradient of its output) for every quantised conv."""
    seen = {}

    def hook(name):
        def fn(mod, inp, out):
            seen[name] = [inp[0].detach()]
            out.register_hook(lambda g: seen[name].append(g.detach()))
        return fn

    for name, mod in model.layer_modules().items():
        if hasattr(mod, "bit_macs"):
            mod.register_forward_hook(hook(name))
    F.cross_entropy(model(x), y).backward()
    return seen


RULES = ("v2", "floor", "unsigned_x")


def predictor(xq, gq, k, stride, rounding: str):
    """(G_msb, x_msb) under the contract (``v2``), v1's floor or the unsigned-x experiment."""
    if rounding == "floor":
        xm = tk.msb_float_floor(torch.from_numpy(xq.astype(np.float64)), fixed.X_BITS, fixed.X_MSB_BITS).numpy()
        gm = tk.msb_float_floor(torch.from_numpy(gq.astype(np.float64)), fixed.G_BITS, fixed.G_MSB_BITS).numpy()
        xm, gm = xm.astype(np.int64), gm.astype(np.int64)
    else:
        xbits = fixed.X_MSB_BITS + (rounding == "unsigned_x" and xq.min() >= 0)
        xm, gm = fixed.msb(xq, fixed.X_BITS, xbits), fixed.msb(gq, fixed.G_BITS, fixed.G_MSB_BITS)
    return _weight_grad(xm, gm, k, stride), xm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--checkpoint", default="", help="a ResNet-20 training checkpoint to take the weights from")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beta", type=float, default=0.05, help="the PSG threshold (the contract's default 0.05)")
    args = ap.parse_args()
    beta_q = fixed.beta_to_q16(args.beta)
    data = load_cifar(args.data_dir, "cifar10", "train")
    x = Normalizer()(torch.from_numpy(data.images[: args.batch])).double()
    y = torch.from_numpy(data.labels[: args.batch]).long()
    torch.manual_seed(args.seed)
    model = build_model("resnet20", conv_factory=make_conv_factory(precision="float64")).double()
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    seen = capture(model, x, y)
    ref = ReferenceFabric()
    print(f"beta {args.beta} (beta_q {beta_q})")
    print(f"weights: {args.checkpoint or f'fresh (seed {args.seed})'}")
    print(f"{'layer':18s} | " + " | ".join(f"{r:>10s}: predicted right psg=true x_msb=0" for r in RULES))
    sums = {r: np.zeros(4) for r in RULES}
    for name, mod in model.layer_modules().items():
        if name not in seen:
            continue
        xi, g = seen[name]
        xq, _ = fixed.quantize(xi.numpy(), 8)
        gq, _ = fixed.quantize(g.numpy(), 16)
        full = ref.conv_bwd_weight_psg(xq, gq, mod.k, mod.stride, beta_q, "full").g_full
        true = np.sign(F.grad.conv2d_weight(xi, mod.weight.shape, g, stride=mod.stride, padding=(mod.k - 1) // 2).numpy())
        row = []
        for rounding in RULES:
            msb, xm = predictor(xq, gq, mod.k, mod.stride, rounding)
            conf, _ = psg_confident(msb, beta_q)
            sign = np.where(conf, np.sign(msb), np.sign(full))
            right = np.mean(np.sign(msb)[conf] == np.sign(full)[conf]) if conf.any() else float("nan")
            vals = np.array([conf.mean(), right, np.mean(sign == true), np.mean(xm == 0)])
            sums[rounding] += vals
            row.append(" ".join(f"{v:9.2f}" for v in vals))
        print(f"{name:18s} | " + " | ".join(f"{r:>50s}" for r in row))
    n = len(seen)
    print(f"{'mean over layers':18s} | " + " | ".join(f"{' '.join(f'{v:9.2f}' for v in sums[r] / n):>50s}" for r in RULES))


if __name__ == "__main__":
    main()
