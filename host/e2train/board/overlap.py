"""How busy the fabric was over a run, for report.json.

On the board a kernel runs in the PL while the ARM cores are free; the driver's wait is a poll with
sleeps, so a kernel call made on a worker thread leaves the main thread to the host's own work
(the PSG conv's backward starts g_x and the weight gradient together, ``psg/engines.py``). The busy
fraction is the fabric's time from ap_start to ap_done (``PynqFabric.busy_s``) over the run's wall time.
"""

from __future__ import annotations


def fabric_report(model, wall_seconds: float) -> dict | None:
    """How busy the fabric behind a model's convolutions was over a run: for report.json.

    Finds the fabric engines of the model's layers (``layer.engine.fabric``) that count their busy
    time (the pynq backend: ap_start to ap_done); None when no layer runs on such a fabric.
    """
    fabrics = {}
    for module in model.modules():
        fab = getattr(getattr(module, "engine", None), "fabric", None)
        if fab is not None and getattr(fab, "busy_s", None) is not None:
            fabrics[id(fab)] = fab
    if not fabrics:
        return None
    busy = sum(f.busy_s for f in fabrics.values())
    return {
        "backend": ",".join(sorted({f.name for f in fabrics.values()})),
        "kernel_runs": sum(f.calls for f in fabrics.values()),
        "busy_seconds": busy,
        "busy_fraction": busy / wall_seconds if wall_seconds > 0 else None,
    }
