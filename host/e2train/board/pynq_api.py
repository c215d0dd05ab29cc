"""The part of the PYNQ API the driver uses (``MMIO``, ``allocate``, ``Overlay``, ``Device``), and where it
comes from.

On the board it is the ``pynq`` package of the PYNQ image. Off the board ``install.sh`` installs
pynq 4.0.0 (the ``board`` extra), but the package stays optional: where it is absent the simulated
device runs under :mod:`compat`-style stand-ins with the same
signatures and semantics (register reads and writes of 32-bit words through the device's
``read_registers`` / ``write_registers``, buffers from the device's ``allocate``). When ``pynq`` is
importable the simulated device runs under the real ``pynq.MMIO`` and ``pynq.allocate`` instead.
"""

from __future__ import annotations

import importlib
import struct
from types import SimpleNamespace

API_CHOICES = ("auto", "pynq", "compat")


def import_pynq():
    """The pynq module, or None where it is not installed (imported on first use only)."""
    try:
        return importlib.import_module("pynq")
    except ImportError:
        return None


class CompatDevice:
    """Stand-in for ``pynq.Device`` where pynq is not installed: a tag and a capabilities dict."""

    capabilities: dict = {}

    def __init__(self, tag: str, warn: bool = False):
        if type(tag) is not str:
            raise ValueError("Argument 'tag' must be a string")
        self.tag = tag

    def has_capability(self, cap: str) -> bool:
        return bool(self.capabilities.get(cap, False))


class CompatMMIO:
    """``pynq.MMIO`` for devices with the REGISTER_RW capability: aligned 32-bit word access."""

    def __init__(self, base_addr: int, length: int = 4, device=None):
        if device is None:
            raise ValueError("CompatMMIO needs a device (there is no active pynq device off the board)")
        if base_addr < 0 or length < 0:
            raise ValueError("Base address or length cannot be negative.")
        if not device.has_capability("REGISTER_RW"):
            raise ValueError("Device does not have capabilities for MMIO")
        self.base_addr, self.length, self.device = base_addr, length, device

    def read(self, offset: int = 0, length: int = 4) -> int:
        if length not in (4, 8):
            raise ValueError("CompatMMIO supports 4- and 8-byte reads")
        self._check(offset)
        lo = struct.unpack("<I", self.device.read_registers(self.base_addr + offset, 4))[0]
        if length == 4:
            return lo
        hi = struct.unpack("<I", self.device.read_registers(self.base_addr + offset + 4, 4))[0]
        return (hi << 32) | lo

    def write(self, offset: int, data) -> None:
        self._check(offset)
        if type(data) is int:
            data = struct.pack("<I", data & 0xFFFFFFFF)
        elif type(data) is not bytes or len(data) % 4:
            raise ValueError("Data type must be int or bytes (a multiple of 4 long).")
        self.device.write_registers(self.base_addr + offset, data)

    def _check(self, offset: int) -> None:
        if offset < 0:
            raise ValueError("Offset cannot be negative.")
        if offset % 4:
            raise MemoryError("Unaligned access: offset must be multiple of 4.")


def compat_allocate(shape, dtype="u4", target=None, **kwargs):
    if target is None:
        raise ValueError("allocate needs a target device off the board")
    return target.allocate(shape, dtype, **kwargs)


def get_api(choice: str = "auto"):
    """The namespace (MMIO, allocate, Device) the simulated device runs under."""
    if choice not in API_CHOICES:
        raise ValueError(f"api must be one of {API_CHOICES}, got {choice!r}")
    pynq = import_pynq() if choice in ("auto", "pynq") else None
    if pynq is not None:
        return SimpleNamespace(name="pynq", MMIO=pynq.MMIO, allocate=pynq.allocate, Device=pynq.Device, module=pynq)
    if choice == "pynq":
        from ..fabric import BackendUnavailable

        raise BackendUnavailable("api='pynq' needs the pynq package (pip install pynq==4.0.0, the board extra)")
    return SimpleNamespace(name="compat", MMIO=CompatMMIO, allocate=compat_allocate, Device=CompatDevice, module=None)
