"""The engine seam: what a quantised convolution asks of whatever runs its integer kernels.

An engine takes and returns integer-valued float tensors (the quantised operands, the integer
accumulators), so the PSG convolution above it is one piece of code whichever engine runs it:

* ``TorchEngine`` (``fabric.torch_engine``): torch convolutions in the network's dtype, or float64
  (then exact: the contract's integers);
* ``FabricEngine`` (``fabric.fabric_engine``): an adapter onto a numpy ``Fabric`` (reference, csim,
  pynq), always exact;
* any other class with these members (``psg.engines.make_engine`` is the one factory).

A run builds one engine (``training.setup``), hands it to every conv layer and to the trainer, and
closes it when the run ends, also on an error: a fabric engine holds a library, DMA buffers and a
worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the protocol is read on the torch-less board too
    import torch


@dataclass
class WeightGrad:
    """The weight-gradient kernel's answer: signs (mode psg) or G_full (mode full), and the count of
    predicted signs (a tensor or an int; 0 in mode full)."""

    value: torch.Tensor
    predicted: torch.Tensor | int


class Engine(Protocol):
    name: str  # the backend's name, for messages and reports
    exact: bool  # True: the kernels give the contract's integers (the quantiser then rounds exactly too)

    def forward(self, xq: torch.Tensor, wq: torch.Tensor, stride: int, e: int) -> torch.Tensor:
        """conv(xq, wq) * 2**e in xq's dtype."""

    def backward(self, gq: torch.Tensor, xq: torch.Tensor, wq: torch.Tensor, stride: int, need_data: bool,
                 mode: str, beta_q: int, e_data: int = 0) -> tuple[torch.Tensor | None, WeightGrad]:
        """-> (g_x * 2**e_data, or None without ``need_data``; the weight gradient of ``mode`` psg or full)."""

    def close(self) -> None:
        """Release what the engine holds; the run that built it calls this once, when it ends."""
