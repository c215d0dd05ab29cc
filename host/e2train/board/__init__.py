"""The PYNQ host: the ``pynq`` fabric backend that drives the HLS kernels on the ZedBoard.

``regmap`` holds the register maps of the kernel tops. ``get_fabric("pynq")`` on the board loads the
overlay through ``pynq.Overlay``; ``get_fabric("pynq", device="sim")`` anywhere runs the same driver
against :class:`SimDevice`, a simulated ``pynq.Device`` whose registers and buffers are memory-mapped
and whose kernels execute (through the csim library, or the reference model) when their start bit
is written.
"""

from __future__ import annotations

from .errors import BitstreamError, BoardError, KernelError, KernelTimeout

__all__ = ["BitstreamError", "BoardError", "KernelError", "KernelTimeout"]
