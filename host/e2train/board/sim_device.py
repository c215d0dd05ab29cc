"""A simulated ZedBoard: a ``pynq.Device`` with memory-mapped kernel registers and DDR buffers.

It behaves like the programmable logic as the driver sees it, so that the driver's own code is what
the tests drive:

* each kernel instance has the AXI-Lite registers of its HLS top (``regmap``): writing ap_start to
  CTRL executes the kernel on the DDR buffers its address registers point at (through an executor:
  the csim library, or the reference model), then raises ap_done (clear on read) and ap_idle;
* DDR is not coherent with the host's view: a buffer's host array and its device memory are two
  copies, ``flush`` copies host -> device and ``invalidate`` device -> host, so a driver that forgets
  either reads or computes stale data, as it would on the board;
* fresh buffers hold garbage (0xCD), as CMA memory does; addresses outside any buffer are bus errors;
* a started kernel runs in a thread of its own, as the PL runs beside the CPU: CTRL reads ap_start=1,
  ap_idle=0 until it is done, and the host may do other work meanwhile (``threaded=False`` runs it
  inside the write of ap_start instead);
* the contract version register (``regmap.CONTRACT_REGISTER``) reads ``contract_version``: by default
  this e2train's (``fixed.CONTRACT_VERSION``); another number plays a bitstream built for another
  contract, None one built before the register existed (no such IP in the design);
* ``hang={"conv_fwd"}`` makes a kernel never finish, to exercise the driver's timeout;
* a kernel that touches memory outside every buffer stops, and the next register access raises
  :class:`SimBusError` (on the board the transfer would hang or fault).
"""

from __future__ import annotations

import bisect
import struct
import threading

import numpy as np

from .. import fixed
from . import regmap
from .errors import BoardError
from .pynq_api import CompatDevice, import_pynq

_pynq = import_pynq()
_DeviceBase = _pynq.Device if _pynq is not None else CompatDevice

PAGE = 4096
GARBAGE = 0xCD


class SimBusError(BoardError):
    """A kernel of the simulated board touched memory outside every allocated buffer."""


class SimBuffer(np.ndarray):
    """The host's view of a contiguous device buffer (what ``pynq.allocate`` returns on the board)."""

    def __new__(cls, shape, dtype, device, device_address: int, bo: int):
        self = np.ndarray.__new__(cls, shape, dtype)
        self._sim, self.device_address, self.bo, self.coherent = device, device_address, bo, False
        return self

    def __array_finalize__(self, obj):
        if isinstance(obj, SimBuffer) and getattr(obj, "device_address", None) is not None:
            offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
            self._sim, self.bo, self.coherent = obj._sim, obj.bo, obj.coherent
            self.device_address = obj.device_address + offset
        else:
            self._sim = self.device_address = self.bo = None
            self.coherent = False

    @property
    def device(self):
        # pynq buffers name their device .device (numpy 2 arrays have a .device of their own)
        return self._sim

    @property
    def physical_address(self) -> int:
        return self.device_address

    @property
    def virtual_address(self) -> int:
        return self.__array_interface__["data"][0]

    @property
    def offset(self) -> int:
        return self.device_address - self.device.buffer_base(self.bo)

    def flush(self) -> None:
        self.device.flush(self.bo, self.offset, self.virtual_address, self.nbytes)

    def invalidate(self) -> None:
        self.device.invalidate(self.bo, self.offset, self.virtual_address, self.nbytes)

    def freebuffer(self) -> None:
        if self.device is not None:
            self.device.free(self.bo)

    sync_to_device = flush
    sync_from_device = invalidate


class _Allocation:
    def __init__(self, bo: int, address: int, nbytes: int, host: SimBuffer):
        self.bo, self.address, self.nbytes, self.host = bo, address, nbytes, host
        self.memory = np.full(nbytes, GARBAGE, dtype=np.uint8)  # the DDR the kernels see
        self.host_bytes = host.reshape(-1).view(np.uint8)  # the host's (cached) copy
        self.freed = False


class _KernelRegs:
    """Registers of one HLS top (ap_ctrl_hs) and its state."""

    def __init__(self, kernel: str, top: str, base: int, size: int):
        self.kernel, self.top, self.base, self.size = kernel, top, base, size
        self.regs = regmap.REGMAPS[top]
        self.words: dict[int, int] = {}
        self.running = self.done = self.ready = False
        self.runs = 0
        # words the kernel writes and the host may only read: ap_return and the outputs' data and ctrl
        self.read_only = {r.offset for r in self.regs.values() if r.kind == "return"}
        self.vld_words = {r.words["ctrl"] for r in self.regs.values() if r.kind == "output"}
        self.read_only |= self.vld_words | {r.words["data"] for r in self.regs.values() if r.kind == "output"}


class _ConstantRegs:
    """A read-only register block (the AXI GPIO of a ConstantRegister): fixed words, writes ignored."""

    def __init__(self, spec: regmap.ConstantRegister, base: int, value: int):
        self.instance, self.base, self.size = spec.instance, base, spec.address_range
        self.vlnv = f"xilinx.com:ip:{spec.ip}:2.0"
        self.words = {spec.offset: value & ((1 << spec.width) - 1)}


class SimDevice(_DeviceBase):
    """The simulated board; pass it as ``device=`` (or ``device="sim"``) to the pynq fabric."""

    capabilities = {"REGISTER_RW": True}

    def __init__(
        self,
        manifest=None,
        executor="auto",
        hang=(),
        threaded=True,
        memory_base=0x1000_0000,
        memory_size=256 << 20,
        contract_version: int | None = fixed.CONTRACT_VERSION,
    ):
        super().__init__("e2train-sim")
        from .executors import get_executor
        from .manifest import load_manifest

        self.manifest = manifest if manifest is not None and not isinstance(manifest, (str, bytes)) else load_manifest(manifest)
        self.executor = get_executor(executor)
        self.hang = set(hang)
        self.threaded = threaded
        self._lock = threading.RLock()  # the register file and the kernel threads
        self._fault: BaseException | None = None
        self.memory_base, self.memory_size = memory_base, memory_size
        self._allocs: dict[int, _Allocation] = {}
        self._starts: list[int] = []  # sorted addresses of live allocations
        self._by_start: dict[int, _Allocation] = {}
        self._next_bo = 1
        self.flushes = self.invalidates = 0
        self.bitfile_name = None
        self.contract_version = contract_version
        self._const: dict[str, _ConstantRegs] = {}
        self._map_contract_register(regmap.CONTRACT_REGISTER.base_address)
        self.load_ips({k.instance: (k.kernel, k.base_address, k.address_range) for k in self.manifest.kernels.values()})

    # -- the design: which kernels sit where --------------------------------------------------------
    def load_ips(self, ips: dict[str, tuple[str, int, int]]) -> None:
        """instance -> (kernel, base address, range): what a downloaded bitstream puts on the bus."""
        self._regs = {
            inst: _KernelRegs(kernel, regmap.KERNEL_TOPS[kernel], base, size) for inst, (kernel, base, size) in ips.items()
        }
        self._update_ip_dict()

    def _map_contract_register(self, base: int | None) -> None:
        """Place the contract version register at ``base`` (None, or a device without a version: no register)."""
        spec = regmap.CONTRACT_REGISTER
        self._const.pop(spec.instance, None)
        if base is not None and self.contract_version is not None:
            self._const[spec.instance] = _ConstantRegs(spec, base, self.contract_version)

    def _update_ip_dict(self) -> None:
        self.ip_dict = {
            inst: {"phys_addr": r.base, "addr_range": r.size, "type": r.top, "state": None}
            for inst, r in self._regs.items()
        }
        for inst, c in self._const.items():
            self.ip_dict[inst] = {"phys_addr": c.base, "addr_range": c.size, "type": c.vlnv, "state": None}

    def load_hwh(self, hwh) -> None:
        """Map the kernels where the hwh of a bitstream puts them (the simulated "download")."""
        from .hwh import read_hwh

        ips = read_hwh(hwh)
        by_instance = {k.instance: k.kernel for k in self.manifest.kernels.values()}
        gpio = ips.get(regmap.CONTRACT_REGISTER.instance)
        self._map_contract_register(gpio.base_address if gpio is not None else None)
        self.load_ips(
            {inst: (by_instance[inst], ip.base_address, ip.address_range) for inst, ip in ips.items() if inst in by_instance}
        )
        self.bitfile_name = str(hwh)

    def runs(self, instance: str) -> int:
        return self._regs[instance].runs

    # -- registers ----------------------------------------------------------------------------------
    def _find_regs(self, address: int, length: int) -> tuple[_KernelRegs | _ConstantRegs, int]:
        for r in (*self._regs.values(), *self._const.values()):
            if r.base <= address and address + length <= r.base + r.size:
                return r, address - r.base
        raise SimBusError(f"register access at {address:#x} (+{length} bytes) hits no IP of the simulated design")

    def read_registers(self, address: int, length: int) -> bytes:
        if address % 4 or length % 4:
            raise SimBusError(f"unaligned register read at {address:#x} ({length} bytes)")
        with self._lock:
            self._raise_fault()
            return b"".join(
                struct.pack("<I", self._read_word(*self._find_regs(address + i, 4))) for i in range(0, length, 4)
            )

    def write_registers(self, address: int, data: bytes) -> None:
        if address % 4 or len(data) % 4:
            raise SimBusError(f"unaligned register write at {address:#x} ({len(data)} bytes)")
        with self._lock:
            self._raise_fault()
            for i in range(0, len(data), 4):
                r, off = self._find_regs(address + i, 4)
                self._write_word(r, off, struct.unpack("<I", data[i : i + 4])[0])

    def _raise_fault(self) -> None:
        if self._fault is not None:
            fault, self._fault = self._fault, None
            raise fault

    def _read_word(self, r: _KernelRegs | _ConstantRegs, off: int) -> int:
        if isinstance(r, _ConstantRegs):
            return r.words.get(off, 0)
        if off == regmap.CTRL:
            value = (
                (regmap.AP_START if r.running else 0)
                | (regmap.AP_DONE if r.done else 0)
                | (regmap.AP_IDLE if not r.running else 0)
                | (regmap.AP_READY if r.ready else 0)
            )
            r.done = r.ready = False  # clear on read
            return value
        value = r.words.get(off, 0)
        if off in r.vld_words:
            r.words[off] = 0  # ap_vld clears on read
        return value

    def _write_word(self, r: _KernelRegs | _ConstantRegs, off: int, value: int) -> None:
        if isinstance(r, _ConstantRegs):
            return  # a GPIO whose pins are all inputs: writes change nothing the host reads back
        if off == regmap.CTRL:
            if value & regmap.AP_START and not r.running:
                self._start(r)
            return
        if off not in r.read_only:
            r.words[off] = value

    def _start(self, r: _KernelRegs) -> None:
        r.running, r.done = True, False
        r.runs += 1
        if r.kernel in self.hang:
            return  # never finishes: the driver must time out
        args = {}
        for reg in r.regs.values():
            if reg.kind == "pointer":
                args[reg.name] = r.words.get(reg.words["lo"], 0) | (r.words.get(reg.words["hi"], 0) << 32)
            elif reg.kind == "scalar":
                args[reg.name] = struct.unpack("<i", struct.pack("<I", r.words.get(reg.offset, 0)))[0]
        if self.threaded:
            threading.Thread(target=self._execute, args=(r, args), name=f"sim-{r.kernel}", daemon=True).start()
        else:
            self._execute(r, args)

    def _execute(self, r: _KernelRegs, args: dict) -> None:
        try:
            ret, outs = self.executor.run(r.kernel, args, self.device_view)
        except BaseException as exc:  # the kernel stops; the host hears of it at its next access
            with self._lock:
                self._fault = exc
            return
        with self._lock:
            self._finish(r, ret, outs)

    def _finish(self, r: _KernelRegs, ret: int, outs: dict) -> None:
        for reg in r.regs.values():
            if reg.kind == "output" and reg.name in outs:
                r.words[reg.words["data"]] = int(outs[reg.name]) & 0xFFFFFFFF
                r.words[reg.words["ctrl"]] = regmap.AP_VLD
        r.words[r.regs["ap_return"].offset] = int(ret) & 0xFFFFFFFF
        r.running, r.done, r.ready = False, True, True

    # -- memory -------------------------------------------------------------------------------------
    def allocate(self, shape, dtype, **kwargs) -> SimBuffer:
        with self._lock:  # drivers may allocate from several threads
            return self._allocate(shape, dtype)

    def _allocate(self, shape, dtype) -> SimBuffer:
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        size = -(-nbytes // PAGE) * PAGE
        address = self._find_gap(size)
        bo = self._next_bo
        self._next_bo += 1
        host = SimBuffer(shape, dtype, self, address, bo)
        alloc = _Allocation(bo, address, nbytes, host)
        alloc.host_bytes[:] = GARBAGE
        self._allocs[bo] = alloc
        self._starts = sorted(self._starts + [address])  # replaced, not mutated: kernels read snapshots
        self._by_start = {a.address: a for a in self._allocs.values()}
        return host

    def _find_gap(self, size: int) -> int:
        cursor = self.memory_base
        for start in self._starts:
            a = self._by_start[start]
            if start - cursor >= size:
                return cursor
            cursor = max(cursor, start + -(-a.nbytes // PAGE) * PAGE)
        if cursor + size > self.memory_base + self.memory_size:
            raise MemoryError(
                f"simulated CMA pool of {self.memory_size >> 20} MiB is full ({size} bytes requested); free buffers first"
            )
        return cursor

    def free(self, bo: int) -> None:
        with self._lock:
            a = self._allocs.pop(bo, None)
            if a is not None:
                a.freed = True
                self._starts = [x for x in self._starts if x != a.address]
                self._by_start = {x.address: x for x in self._allocs.values()}

    def buffer_base(self, bo: int) -> int:
        return self._live(bo).address

    def _live(self, bo: int) -> _Allocation:
        a = self._allocs.get(bo)
        if a is None:
            raise BoardError(f"buffer {bo} was freed")
        return a

    def flush(self, bo, offset, ptr, size) -> None:
        a = self._live(bo)
        a.memory[offset : offset + size] = a.host_bytes[offset : offset + size]
        self.flushes += 1

    def invalidate(self, bo, offset, ptr, size) -> None:
        a = self._live(bo)
        a.host_bytes[offset : offset + size] = a.memory[offset : offset + size]
        self.invalidates += 1

    def device_view(self, address: int, nbytes: int, what: str = "") -> np.ndarray:
        """The DDR bytes [address, address + nbytes) as the kernels see them (a writable view)."""
        with self._lock:
            starts, by_start = self._starts, self._by_start
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0:
            a = by_start[starts[i]]
            if address + nbytes <= a.address + a.nbytes:
                return a.memory[address - a.address : address - a.address + nbytes]
        raise SimBusError(
            f"{what or 'a kernel'} accessed {address:#x} (+{nbytes} bytes) outside every allocated buffer: "
            "the driver programmed a wrong address or a buffer too small"
        )
