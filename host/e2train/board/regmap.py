"""PROVISIONAL stand-in until issue-5's register map lands (Vitis HLS s_axilite conventions)."""

from __future__ import annotations

from dataclasses import dataclass

REGMAP_VERSION = 1

CTRL = 0x00
GIE = 0x04
IER = 0x08
ISR = 0x0C
AP_RETURN = 0x10
AP_START = 1 << 0
AP_DONE = 1 << 1
AP_IDLE = 1 << 2
AP_READY = 1 << 3

RETURN_CODES = {0: "E2_OK", 1: "E2_BAD_SHAPE", 2: "E2_BAD_ARG"}
MODES = {"psg": 0, "full": 1}
MAX_HW = 32


@dataclass(frozen=True)
class Arg:
    name: str
    offset: int
    kind: str  # "ptr": 64-bit address (lo, hi words); "in": 32-bit scalar; "out": 32-bit result with a valid bit
    vld_offset: int | None = None


@dataclass(frozen=True)
class Top:
    kernel: str
    top: str
    args: tuple[Arg, ...]

    def arg(self, name: str) -> Arg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(f"{self.top} has no register {name!r}")


def _layout(ptrs, scalars, outs=()):
    args, off = [], 0x18
    for p in ptrs:
        args.append(Arg(p, off, "ptr"))
        off += 12
    for s in scalars:
        args.append(Arg(s, off, "in"))
        off += 8
    for o in outs:
        args.append(Arg(o, off, "out", off + 4))
        off += 8
    return tuple(args)


_SHAPE = ("n", "c", "h", "wd", "o", "k", "stride")
TOPS = {
    "conv_fwd": Top("conv_fwd", "conv_fwd_top", _layout(("x", "w", "y"), _SHAPE)),
    "conv_bwd_data": Top("conv_bwd_data", "conv_bwd_data_top", _layout(("gy", "w", "gx"), _SHAPE)),
    "conv_bwd_weight_psg": Top(
        "conv_bwd_weight_psg",
        "conv_bwd_weight_psg_top",
        _layout(("x", "gy", "sign", "g_full", "g_msb"), _SHAPE + ("beta_q", "mode"), ("predicted", "max_abs_msb")),
    ),
}
KERNELS = tuple(TOPS)
