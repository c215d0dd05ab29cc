"""Let the host work while the fabric computes, and measure how busy the fabric was.

On the board a kernel runs in the PL while the ARM cores are free; the driver's wait is a poll with
sleeps, so a kernel call made on a worker thread leaves the main thread to the host's own work
(quantising the next operand, BN, the SLU gates of the next block). ``FabricQueue`` runs the calls of
one fabric in order on one worker thread and returns futures.

The busy fraction is the fabric's time from ap_start to ap_done (``PynqFabric.busy_s``; for other
backends, the time inside the calls) over the wall time since the queue was opened or reset.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..fabric.base import Fabric

CALLS = ("conv_fwd", "conv_bwd_data", "conv_bwd_weight_psg")


class FabricQueue:
    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabric")
        self._call_s = 0.0
        self.reset()

    def reset(self) -> None:
        """Start a new accounting window."""
        self._t0 = time.perf_counter()
        self._busy0 = self._fabric_busy()

    def _fabric_busy(self) -> float:
        busy = getattr(self.fabric, "busy_s", None)
        return busy if busy is not None else self._call_s

    def _timed(self, name, args, kwargs):
        t0 = time.perf_counter()
        try:
            return getattr(self.fabric, name)(*args, **kwargs)
        finally:
            self._call_s += time.perf_counter() - t0

    def submit(self, name: str, *args, **kwargs) -> Future:
        """Queue ``fabric.<name>(*args, **kwargs)``; the future holds its result (or its exception)."""
        if name not in CALLS:
            raise ValueError(f"unknown fabric call {name!r}; choose one of {', '.join(CALLS)}")
        return self._pool.submit(self._timed, name, args, kwargs)

    def busy_fraction(self) -> float:
        wall = time.perf_counter() - self._t0
        return (self._fabric_busy() - self._busy0) / wall if wall > 0 else 0.0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

