"""The kernel contract (docs/contracts.md section 2) as code: the kernels, their argument ranges, the
modes of the weight-gradient kernel, the return codes of the C entry points and HLS tops, the
accumulator each kernel fills, and the record of one convolution's shape.

Number formats (bit widths, rounding, the contract version) are ``e2train.fixed``; this module states
what the kernels do with them. The C header ``hls/include/e2_types.h`` states the same constants for
the kernels; tests/test_contract_header.py parses it and holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import fixed

# The three kernels, in the order of a layer's training step, and the phase of the step each runs (the
# names the MAC counters, the energy model and the reports use).
KERNELS = ("conv_fwd", "conv_bwd_data", "conv_bwd_weight_psg")
PHASES = ("forward", "backward_data", "backward_weight")

KERNEL_SIZES = (1, 3)
STRIDES = (1, 2)
# The ``mode`` argument of conv_bwd_weight_psg and its integer code (MODE_PSG / MODE_FULL in the header).
MODES = {"psg": 0, "full": 1}
PSG_MODES = tuple(MODES)
BETA_Q_MAX = 1 << fixed.BETA_FRAC_BITS  # beta is Q0.16; 65536 means beta = 1.0

# Largest input plane of the synthesizable tops' local buffers (MAX_HW in the header): the CIFAR size.
TOP_MAX_HW = 32

# Return codes of the C entry points and of the tops' ap_return register.
E2_OK = 0
E2_BAD_SHAPE = 1
E2_BAD_ARG = 2
E2_NO_MEMORY = -1  # the g++ build only: its heap planes could not be allocated
RETURN_CODES = {
    E2_OK: "ok",
    E2_BAD_SHAPE: "bad shape (beyond the kernel's local buffers, or an empty dimension)",
    E2_BAD_ARG: "bad argument (k, stride, mode or beta_q outside the contract)",
    E2_NO_MEMORY: "out of memory",
}

# accumulator -> ((operand widths), accumulator width): what one sum of products holds.
ACCUMULATORS = {
    "forward": ((fixed.X_BITS, fixed.W_BITS), fixed.ACC_FWD_BITS),
    "backward_data": ((fixed.G_BITS, fixed.W_BITS), fixed.ACC_BWD_BITS),
    "weight_full": ((fixed.X_BITS, fixed.G_BITS), fixed.ACC_BWD_BITS),
    "weight_msb": ((fixed.X_MSB_BITS, fixed.G_MSB_BITS), fixed.ACC_MSB_BITS),
}


def accumulators_of(kernel: str, mode: str | None = None) -> tuple[str, ...]:
    """The accumulators a kernel call fills: mode "full" of the weight gradient needs no MSB sum."""
    if kernel == "conv_fwd":
        return ("forward",)
    if kernel == "conv_bwd_data":
        return ("backward_data",)
    if kernel == "conv_bwd_weight_psg":
        return ("weight_full",) if mode == "full" else ("weight_full", "weight_msb")
    raise ValueError(f"unknown kernel {kernel!r}; the contract has {', '.join(KERNELS)}")


def out_size(size: int, k: int, stride: int) -> int:
    """Output height or width of a convolution with zero padding (k - 1) / 2."""
    pad = (k - 1) // 2
    return (size + 2 * pad - k) // stride + 1


@dataclass(frozen=True)
class ConvShape:
    """One convolution: input [n, c, h, w], weights [o, c, k, k], output [n, o, ho, wo].

    ``name`` says which layer (or kernel call) it is; the fields after it are the scalar arguments
    every kernel takes (the HLS tops call the width ``wd``, because ``w`` is the weight pointer).
    """

    name: str
    n: int
    c: int
    o: int
    h: int
    w: int
    k: int
    stride: int

    @property
    def ho(self) -> int:
        return out_size(self.h, self.k, self.stride)

    @property
    def wo(self) -> int:
        return out_size(self.w, self.k, self.stride)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (backward-data and weight-gradient do as many)."""
        return self.n * self.o * self.ho * self.wo * self.c * self.k * self.k

    def scalars(self) -> dict[str, int]:
        """The shape arguments as the C entry points and the tops' registers name them."""
        return {"n": self.n, "c": self.c, "h": self.h, "wd": self.w, "o": self.o, "k": self.k, "stride": self.stride}
