"""``PynqFabric``: the ``pynq`` fabric backend, the driver of the three HLS kernels on the ZedBoard.

>>> fab = get_fabric("pynq")                  # on the board: loads bitstreams/e2train.bit
>>> fab = get_fabric("pynq", device="sim")    # anywhere: the same driver on a simulated board

After loading, the driver reads the overlay's contract version register (``regmap.CONTRACT_REGISTER``)
and refuses a design built for another contract than ``e2train.fixed.CONTRACT_VERSION``: the manifest
check covers the files, this one what is actually in the PL.

Per kernel call: copy the operands into contiguous DDR buffers (``allocate``, layouts of
``layouts.py``), flush them out of the CPU caches, program the kernel's registers, start it and wait
(``driver.KernelRunner``), invalidate the output buffers and copy the results out. Buffers are kept
per kernel and shape and reused, since CMA allocation is slow on the board.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .. import fixed
from ..contract import KERNELS, MODES, TOP_MAX_HW, ConvShape
from ..fabric.base import Fabric, PsgResult
from . import regmap
from .driver import KernelRunner
from .errors import BitstreamError
from .layouts import buffer_specs, check_array
from .manifest import Manifest, load_manifest, verify_bitstream

DEFAULT_TIMEOUT_S = 30.0


class PynqFabric(Fabric):
    name = "pynq"
    # The three kernels are separate IP cores with their own HP ports and buffers: calls of different
    # kernels may run at the same time from different threads (e.g. g_x and the weight gradient).
    concurrent = True
    # The Fabric base class refuses, before anything reaches the board, what the tops cannot hold
    # (planes beyond their local buffers) or would wrap (a shape whose worst case overflows).
    max_hw = TOP_MAX_HW
    wraps = True

    def __init__(
        self,
        device=None,
        bitfile=None,
        manifest=None,
        verify: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        download: bool = True,
        api: str = "auto",
        executor: str = "auto",
    ):
        self.manifest: Manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        self.overlay = None
        self.bitfile = None
        if device is None or device == "board":
            self.api, self.device, ip_dict = self._open_board(bitfile, verify, download)
        else:
            self.api, self.device, ip_dict = self._open_sim(device, bitfile, verify, api, executor)
        self.timeout = float(timeout)
        self.contract_version = self._check_contract(ip_dict)
        self.runners = {name: self._runner(name, ip_dict) for name in KERNELS}
        self._buffers: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()  # the buffer pool and the busy accounting
        self._kernel_locks = {name: threading.Lock() for name in KERNELS}  # one run per kernel at a time
        self._active = 0
        self._busy_since = 0.0
        self.busy_s = 0.0  # wall time during which at least one kernel ran (ap_start to ap_done)
        self.calls = 0

    # -- opening ------------------------------------------------------------------------------------
    def _open_board(self, bitfile, verify, download):
        from ..fabric import BackendUnavailable
        from .pynq_api import import_pynq

        pynq = import_pynq()
        if pynq is None:
            raise BackendUnavailable(
                "fabric backend 'pynq' on the board needs the pynq package (the PYNQ image has it); "
                "off the board use get_fabric('pynq', device='sim')"
            )
        self.bitfile = bitfile or self.manifest.default_bitfile()
        if verify:
            verify_bitstream(self.bitfile, self.manifest)
        self.overlay = pynq.Overlay(str(self.bitfile), download=download)
        device = getattr(self.overlay, "device", None) or pynq.Device.active_device
        return pynq, device, self.overlay.ip_dict

    def _open_sim(self, device, bitfile, verify, api, executor):
        from .pynq_api import get_api
        from .sim_device import SimDevice

        if isinstance(device, str):
            if device != "sim":
                raise ValueError(f"device must be 'board' (or None), 'sim' or a pynq Device, got {device!r}")
            device = SimDevice(self.manifest, executor=executor)
        if bitfile is not None:  # the simulated download: check it as on the board, map its IPs
            self.bitfile = bitfile
            hwh = verify_bitstream(bitfile, self.manifest) if verify else None
            if hwh is not None and hasattr(device, "load_hwh"):
                device.load_hwh(hwh)
        return get_api(api), device, device.ip_dict

    def _check_contract(self, ip_dict) -> int:
        """Read the loaded design's contract version register; refuse a design of another contract."""
        r, want = regmap.CONTRACT_REGISTER, fixed.CONTRACT_VERSION
        ip = ip_dict.get(r.instance)
        if ip is None:
            raise BitstreamError(
                f"the loaded design has no contract version register ({r.instance!r}): bitstream built for contract v1 "
                f"(before the register existed) or not an e2train design, this e2train speaks contract v{want}: "
                "rebuild the bitstream (hw/vivado/build.sh) or load the one bitstreams/manifest.json records"
            )
        base = int(ip["phys_addr"])
        if base != r.base_address:
            raise BitstreamError(
                f"{r.instance} is at {base:#x} in the loaded design but at {r.base_address:#x} in the register map; "
                "rebuild the bitstream with hw/vivado"
            )
        got = int(self.api.MMIO(base, int(ip["addr_range"]), device=self.device).read(r.offset))
        if got != want:
            raise BitstreamError(
                f"bitstream built for contract v{got} (read from the overlay's {r.instance} register at {base + r.offset:#x}), "
                f"this e2train speaks contract v{want}: the loaded .bit is not the build the manifest "
                f"{self.manifest.path} records; rebuild it (hw/vivado/build.sh) or load the matching one"
            )
        return got

    def _runner(self, kernel: str, ip_dict) -> KernelRunner:
        k = self.manifest.kernels[kernel]
        ip = ip_dict.get(k.instance)
        if ip is None:
            raise BitstreamError(f"the loaded design has no {k.instance!r} ({kernel}); is the e2train bitstream loaded?")
        if int(ip["phys_addr"]) != k.base_address:
            raise BitstreamError(
                f"{k.instance} is at {int(ip['phys_addr']):#x} in the loaded design but at {k.base_address:#x} in "
                f"the manifest {self.manifest.path}"
            )
        if k.top != regmap.KERNEL_TOPS[kernel]:
            raise BitstreamError(f"manifest {self.manifest.path}: {kernel} is {k.top!r}, the driver knows {regmap.KERNEL_TOPS[kernel]!r}")
        return KernelRunner(self.api, self.device, k.instance, k.base_address, int(ip["addr_range"]), k.top, self.timeout)

    # -- buffers ------------------------------------------------------------------------------------
    def _buffer(self, kernel: str, spec, s: ConvShape):
        key = (kernel, spec.name)
        shape = spec.shape(s)
        with self._lock:
            buf = self._buffers.get(key)
            if buf is None or buf.shape != shape:
                if buf is not None:
                    buf.freebuffer()
                buf = self.api.allocate(shape, spec.dtype, target=self.device)
                self._buffers[key] = buf
        return buf

    def _busy(self, starting: bool) -> None:
        """Count the time during which any kernel runs (overlapping runs count once)."""
        with self._lock:
            now = time.perf_counter()
            if starting:
                if self._active == 0:
                    self._busy_since = now
                self._active += 1
                self.calls += 1
            else:
                self._active -= 1
                if self._active == 0:
                    self.busy_s += now - self._busy_since

    def _run(self, s: ConvShape, inputs: dict[str, np.ndarray], extra: dict | None = None):
        kernel = s.name
        with self._kernel_locks[kernel]:
            bufs = {spec.name: self._buffer(kernel, spec, s) for spec in buffer_specs(kernel)}
            for spec in buffer_specs(kernel):
                if spec.direction == "in":
                    bufs[spec.name][...] = check_array(spec, s, inputs[spec.name])
                    bufs[spec.name].flush()
            scalars = {**s.scalars(), **(extra or {})}
            self._busy(True)
            try:
                outs = self.runners[kernel].run(scalars, bufs)
            finally:
                self._busy(False)
            results = {}
            for spec in buffer_specs(kernel):
                if spec.direction == "out":
                    bufs[spec.name].invalidate()
                    results[spec.name] = np.array(bufs[spec.name], dtype=spec.dtype, copy=True)
        return results, outs

    # -- the three kernels --------------------------------------------------------------------------
    def _conv_fwd(self, x, w, k, stride):
        n, c, h, wd = x.shape
        res, _ = self._run(ConvShape("conv_fwd", n, c, w.shape[0], h, wd, k, stride), {"x": x, "w": w})
        return res["y"]

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        s = ConvShape("conv_bwd_data", g.shape[0], w.shape[1], w.shape[0], in_hw[0], in_hw[1], k, stride)
        res, _ = self._run(s, {"gy": g, "w": w})
        return res["gx"]

    def _conv_bwd_weight_psg(self, x, g, k, stride, beta_q, mode):
        n, c, h, wd = x.shape
        s = ConvShape("conv_bwd_weight_psg", n, c, g.shape[1], h, wd, k, stride)
        res, outs = self._run(s, {"x": x, "gy": g}, {"beta_q": beta_q, "mode": MODES[mode]})
        if mode == "full":
            return PsgResult(sign=res["sign"], predicted=0, mode="full", g_full=res["g_full"])
        # g_full holds phase-2 results only where the prediction was not confident: not returned.
        return PsgResult(
            sign=res["sign"], predicted=outs["predicted"], mode="psg", g_msb=res["g_msb"], max_abs_msb=outs["max_abs_msb"]
        )

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        for buf in self._buffers.values():
            buf.freebuffer()
        self._buffers.clear()

    def describe(self) -> dict:
        """What is loaded: for ``e2train board info``."""
        executor = getattr(getattr(self.device, "executor", None), "name", None)
        return {
            "device": "simulated ZedBoard" if executor else getattr(self.device, "name", type(self.device).__name__),
            "executor": executor,
            "api": getattr(self.api, "name", "pynq"),
            "bitfile": str(self.bitfile) if self.bitfile else None,
            "design": f"{self.manifest.design} v{self.manifest.design_version}, register map v{self.manifest.regmap_version}",
            "contract": f"v{self.contract_version} (read from the overlay's {regmap.CONTRACT_REGISTER.instance} register)",
            "kernels": {kernel: f"{r.instance} at {r.base_address:#x}" for kernel, r in self.runners.items()},
        }

    def __repr__(self) -> str:
        return f"<Fabric pynq on {type(self.device).__name__}>"
