"""Register maps of the three HLS kernel tops (hls/src/*.cpp), as Vitis HLS lays out their s_axilite
control interface; the board driver programs exactly these offsets. At the end: the contract version
register of the overlay, and the map of the hand-written PSG engine (hw/rtl), which its cocotb
testbench (sim/tb_psg_engine.py) reads from here.

Vitis HLS (ap_ctrl_hs on the s_axilite bundle, 64-bit m_axi addresses, the Vivado IP flow):

* 0x00 control: bit 0 ap_start (R/W, self-clearing), 1 ap_done (R, clear on read), 2 ap_idle (R),
  3 ap_ready (R), 7 auto_restart (R/W);
* 0x04 global interrupt enable (bit 0); 0x08 IP interrupt enable (bit 0 ap_done, bit 1 ap_ready);
  0x0C IP interrupt status (same bits, toggle on write);
* from 0x10, in the order of the C arguments, the return value first: a 32-bit scalar takes one data
  word and one reserved word (8 bytes); an m_axi pointer's offset takes two data words (address bits
  31:0, then 63:32) and one reserved word (12 bytes); a scalar output (a pointer argument bound to
  s_axilite) takes one data word (read only) and one control word whose bit 0 is its ap_vld (8 bytes).

The maps are computed from the argument lists below; tests check those lists against the C
signatures of the tops, docs/register-map.md against these maps, and (where ``vitis_hls`` is
installed) these maps against the generated ``x<top>_hw.h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ..contract import KERNELS, MODES, TOP_MAX_HW

CTRL = 0x00
GIE = 0x04
IER = 0x08
ISR = 0x0C
FIRST_ARG = 0x10

# bits of the control register
AP_START = 1 << 0
AP_DONE = 1 << 1
AP_IDLE = 1 << 2
AP_READY = 1 << 3
AUTO_RESTART = 1 << 7
# bits of IER / ISR
IRQ_DONE = 1 << 0
IRQ_READY = 1 << 1
# bit of an output's control word
AP_VLD = 1 << 0

SIZES = {"return": 8, "scalar": 8, "pointer": 12, "output": 8}


@dataclass(frozen=True)
class Register:
    """One argument of a top in the s_axilite register file."""

    name: str
    kind: str  # "return", "scalar", "pointer" (m_axi offset) or "output" (scalar written by the kernel)
    offset: int

    @property
    def words(self) -> dict[str, int]:
        """Offsets of the 32-bit words the host touches: data (lo/hi) and, for outputs, ctrl."""
        if self.kind == "pointer":
            return {"lo": self.offset, "hi": self.offset + 4}
        if self.kind == "output":
            return {"data": self.offset, "ctrl": self.offset + 4}
        return {"data": self.offset}

    @property
    def access(self) -> str:
        return "R" if self.kind in ("return", "output") else "W"


# top -> the C arguments in order (name, kind); "return" is the ap_return register of the int result.
TOPS = {
    "conv_fwd_top": (
        ("ap_return", "return"),
        ("x", "pointer"), ("w", "pointer"), ("y", "pointer"),
        ("n", "scalar"), ("c", "scalar"), ("h", "scalar"), ("wd", "scalar"), ("o", "scalar"),
        ("k", "scalar"), ("stride", "scalar"),
    ),
    "conv_bwd_data_top": (
        ("ap_return", "return"),
        ("gy", "pointer"), ("w", "pointer"), ("gx", "pointer"),
        ("n", "scalar"), ("c", "scalar"), ("h", "scalar"), ("wd", "scalar"), ("o", "scalar"),
        ("k", "scalar"), ("stride", "scalar"),
    ),
    "conv_bwd_weight_psg_top": (
        ("ap_return", "return"),
        ("x", "pointer"), ("gy", "pointer"), ("sign", "pointer"), ("g_full", "pointer"), ("g_msb", "pointer"),
        ("n", "scalar"), ("c", "scalar"), ("h", "scalar"), ("wd", "scalar"), ("o", "scalar"),
        ("k", "scalar"), ("stride", "scalar"), ("beta_q", "scalar"), ("mode", "scalar"),
        ("predicted", "output"), ("max_abs_msb", "output"),
    ),
}

# what each tensor pointer holds (element type, layout) for the driver and the docs
BUFFERS = {
    "x": "int8 [N,C,H,W]",
    "w": "int8 [O,C,k,k]",
    "y": "int32 [N,O,H',W'] (written)",
    "gy": "int16 [N,O,H',W']",
    "gx": "int64 [N,C,H,W] (48-bit values, sign-extended; written)",
    "sign": "int8 [O,C,k,k] in {-1,0,1} (written)",
    "g_full": "int64 [O,C,k,k] (written where computed: every weight in mode full, the unconfident ones in mode psg)",
    "g_msb": "int32 [O,C,k,k] (written in mode psg, read back by the select step)",
}

SCALARS = {
    "n": "batch N", "c": "input channels C", "h": f"input height H (<= {TOP_MAX_HW})", "wd": f"input width W (<= {TOP_MAX_HW})",
    "o": "output channels O", "k": "kernel size, 1 or 3", "stride": "1 or 2",
    "beta_q": "PSG threshold, Q0.16 in [0, 65536]", "mode": "0 psg, 1 full",
    "predicted": "weights that took the predicted sign", "max_abs_msb": "largest magnitude of G_msb",
    "ap_return": "0 ok, 1 bad shape, 2 bad argument",
}


def layout(top: str) -> dict[str, Register]:
    """name -> Register for one top, offsets assigned as Vitis HLS does."""
    if top not in TOPS:
        raise KeyError(f"unknown HLS top {top!r}; known: {', '.join(TOPS)}")
    regs, off = {}, FIRST_ARG
    for name, kind in TOPS[top]:
        regs[name] = Register(name, kind, off)
        off += SIZES[kind]
    return regs


def span(top: str) -> int:
    """Bytes of the register file (the address range the s_axilite port decodes, before rounding up)."""
    return FIRST_ARG + sum(SIZES[kind] for _, kind in TOPS[top])


REGMAPS = {top: layout(top) for top in TOPS}


def markdown() -> str:
    """The `## HLS kernel tops` section of docs/register-map.md, generated from the maps above."""
    out = [
        "## HLS kernel tops",
        "",
        "The three Vitis HLS tops of `hls/src/` (`conv_fwd_top`, `conv_bwd_data_top`,",
        "`conv_bwd_weight_psg_top`) each have one AXI4-Lite slave (`s_axi_control`) with `ap_ctrl_hs` on it and",
        "m_axi masters for the tensors. The machine-readable form is `host/e2train/board/regmap.py`; this",
        "section is generated from it (`python -c 'from e2train.board import regmap; print(regmap.markdown())'`)",
        "and a test keeps the two equal.",
        "",
        "Common registers:",
        "",
        "| offset | register | bits |",
        "|---|---|---|",
        "| 0x00 | control | 0 ap_start (R/W, self-clearing), 1 ap_done (R, clear on read), 2 ap_idle (R), 3 ap_ready (R), 7 auto_restart (R/W) |",
        "| 0x04 | global interrupt enable | 0 enable |",
        "| 0x08 | IP interrupt enable | 0 ap_done, 1 ap_ready |",
        "| 0x0C | IP interrupt status | 0 ap_done, 1 ap_ready (toggle on write) |",
        "",
        "Arguments from 0x10 in the order of the C arguments: `ap_return` (the int result) first; a 32-bit",
        "scalar is one data word and one reserved word; an m_axi pointer is two data words (address bits",
        "31:0 then 63:32, 64-bit addressing) and one reserved word; a scalar output is one data word (read",
        "only) and one control word with ap_vld in bit 0. A run: write the buffer addresses and the scalars,",
        "set ap_start, poll ap_done (or take the interrupt), read ap_return (and the outputs).",
        "",
    ]
    for top in TOPS:
        out += [f"### `{top}`", "", "| offset | name | access | what |", "|---|---|---|---|"]
        for reg in REGMAPS[top].values():
            what = BUFFERS.get(reg.name) if reg.kind == "pointer" else SCALARS.get(reg.name, "")
            if reg.kind == "pointer":
                out.append(f"| 0x{reg.offset:02X} | {reg.name} [31:0] | W | address of {what} |")
                out.append(f"| 0x{reg.offset + 4:02X} | {reg.name} [63:32] | W | |")
                out.append(f"| 0x{reg.offset + 8:02X} | reserved | | |")
            elif reg.kind == "output":
                out.append(f"| 0x{reg.offset:02X} | {reg.name} | R | {what} |")
                out.append(f"| 0x{reg.offset + 4:02X} | {reg.name} ctrl | R | bit 0 {reg.name}_ap_vld (clear on read) |")
            else:
                out.append(f"| 0x{reg.offset:02X} | {reg.name} | {reg.access} | {what} |")
                out.append(f"| 0x{reg.offset + 4:02X} | reserved | | |")
        out += ["", f"Register file: 0x00 - 0x{span(top) - 1:02X}.", ""]
    return "\n".join(out).rstrip() + "\n"


# -- what the board driver adds (issue 7): versions, limits and names the driver and the manifest share --

# Version of the maps of this module; bitstreams/manifest.json records the one its bitstream was built
# from. 2: the contract version register (CONTRACT_REGISTER) joined the kernel tops.
REGMAP_VERSION = 2
# The contract's kernels (e2train.contract, which also holds the tops' plane limit, the codes of the
# mode register and of ap_return) and the HLS top that implements each.
KERNEL_TOPS = {kernel: f"{kernel}_top" for kernel in KERNELS}


@dataclass(frozen=True)
class ConstantRegister:
    """A read-only word of the overlay that holds a constant of the build: an AXI GPIO with all inputs,
    driven by an xlconstant (hw/vivado/e2train_bd.tcl). Writes are ignored."""

    instance: str  # the AXI GPIO's block-design instance, the key of Overlay.ip_dict
    ip: str  # its IP, the name in its VLNV
    constant: str  # the xlconstant instance that drives the GPIO's inputs (its CONST_VAL is in the hwh)
    base_address: int
    address_range: int
    offset: int  # the word that reads the constant: GPIO_DATA of channel 1
    width: int  # bits of the constant and of the GPIO channel


# The contract version the overlay was built for (e2train.fixed.CONTRACT_VERSION at build time): the
# driver reads it after loading the overlay and refuses another contract, so that a .bit swapped under
# a matching manifest is still caught. The one statement of its place; the block design and
# docs/register-map.md agree with it (tests/test_board_vivado.py, tests/test_regmap.py).
CONTRACT_REGISTER = ConstantRegister(
    instance="contract_version", ip="axi_gpio", constant="contract_version_value",
    base_address=0x4003_0000, address_range=0x1_0000, offset=0x00, width=32,
)


def contract_register_markdown() -> str:
    """The `## Contract version register` section of docs/register-map.md, generated from CONTRACT_REGISTER."""
    r = CONTRACT_REGISTER
    return "\n".join([
        "## Contract version register",
        "",
        "One read-only word says which contract (number formats, docs/contracts.md) the overlay was built for:",
        f"an AXI GPIO `{r.instance}` (`xilinx.com:ip:{r.ip}`, one channel of {r.width} inputs) whose inputs an",
        f"xlconstant `{r.constant}` ties to the contract version that `hw/vivado/build.sh` took from",
        "`e2train.fixed.CONTRACT_VERSION`. The driver reads it after loading the overlay and refuses a design",
        "built for another contract (or without the register: one built before it existed, for contract v1),",
        "so a `.bit` swapped under a matching manifest is still caught. Generated from",
        "`host/e2train/board/regmap.py` (`regmap.contract_register_markdown()`).",
        "",
        "| address | register | access | what |",
        "|---|---|---|---|",
        f"| 0x{r.base_address + r.offset:08X} | GPIO_DATA | R | the contract version, an unsigned {r.width}-bit integer; writes are ignored |",
        "",
        f"Address range 0x{r.base_address:08X} - 0x{r.base_address + r.address_range - 1:08X}; the GPIO's other registers",
        "(GPIO_TRI at 0x04, its interrupt registers) are not used.",
    ]) + "\n"


# -- the hand-written PSG weight-gradient engine (hw/rtl/psg_wgrad_engine.v; docs/register-map.md) ------

# Version of the engine's map, CONFIG1[31:24]. 3: CONTRACT_VERSION added; 2: KD.
ENGINE_REGMAP_VERSION = 3


class EngineReg(IntEnum):
    """Byte offsets of the engine's control registers; the 64-bit counters are two words, low first.
    CTRL, GIE, IER and ISR are laid out as an HLS block's (the bits above: AP_START ..., IRQ_DONE ...)."""

    CTRL = CTRL
    GIE = GIE
    IER = IER
    ISR = ISR
    MODE = 0x10
    N_OUT = 0x18
    N_K = 0x20
    N_STEPS = 0x28
    BETA_Q = 0x30
    MAX_IN = 0x38
    MAX_ABS_MSB = 0x40
    PREDICTED = 0x48
    STATUS = 0x50
    CONTRACT_VERSION = 0x54
    CYCLES = 0x58
    MSB_MACS = 0x60
    CORR_MACS = 0x68
    UNCONFIDENT = 0x70
    PHASE2_LEN = 0x74
    CONFIG0 = 0x78
    CONFIG1 = 0x7C


ENGINE_COUNTERS = (EngineReg.CYCLES, EngineReg.MSB_MACS, EngineReg.CORR_MACS)  # 64 bit


class EngineStatus(IntFlag):
    """Bits of STATUS ([31:24] holds the sequencer state, for debugging)."""

    PASS2_WAIT = 1 << 0  # send the two streams again
    ARG_ERROR = 1 << 1
    FRAME_ERROR = 1 << 2
    PASS2_SKIPPED = 1 << 3  # every weight was confident
    DIAGONAL = 1 << 4  # the job uses the diagonal mapping of the PEs


# MODE: the contract's two modes of conv_bwd_weight_psg and the engine's own pass that only finds a
# tile's max |G_msb| (a layer split into tiles runs it first).
ENGINE_MODES = {**MODES, "probe": 2}

# CONFIG0 / CONFIG1 fields: name -> (register, lowest bit, width); "version" is ENGINE_REGMAP_VERSION.
ENGINE_CONFIG = {
    "P": (EngineReg.CONFIG0, 0, 8), "OMAX": (EngineReg.CONFIG0, 8, 8), "KMAX": (EngineReg.CONFIG0, 16, 16),
    "XPB": (EngineReg.CONFIG1, 0, 8), "GPB": (EngineReg.CONFIG1, 8, 8), "KD": (EngineReg.CONFIG1, 16, 8),
    "version": (EngineReg.CONFIG1, 24, 8),
}


def decode_engine_config(words: dict[int, int]) -> dict[str, int]:
    """The build parameters from the CONFIG0 and CONFIG1 words (offset -> value)."""
    return {name: (words[reg] >> low) & ((1 << width) - 1) for name, (reg, low, width) in ENGINE_CONFIG.items()}
