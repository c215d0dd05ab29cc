"""The simulated board runs a kernel beside the host, as the PL does: the driver's wait sees it
running, the host can work meanwhile, and the busy time counts only the kernel's time."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from e2train.board.executors import get_executor
from e2train.board.fabric import PynqFabric
from e2train.board.sim_device import SimDevice
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import random_layer


class GatedExecutor:
    """Runs the csim executor only once the test opens the gate."""

    def __init__(self):
        self.inner = get_executor("auto")
        self.name = self.inner.name
        self.entered, self.gate = threading.Event(), threading.Event()

    def run(self, kernel, args, view):
        self.entered.set()
        assert self.gate.wait(10)
        return self.inner.run(kernel, args, view)


def test_kernel_runs_beside_the_host():
    ex = GatedExecutor()
    fab = PynqFabric(device=SimDevice(executor=ex), timeout=10)
    x, w, _ = random_layer(np.random.default_rng(5), 2, 4, 6, 10, 3, 1)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:  # the call on a worker thread, as psg/engines.py makes it
        fut = pool.submit(fab.conv_fwd, x, w, 1)
        assert ex.entered.wait(10)
        # the kernel is running: the host sees ap_start=1, ap_idle=0 and is free to work
        base = fab.manifest.kernels["conv_fwd"].base_address
        assert int.from_bytes(fab.device.read_registers(base, 4), "little") & 0b101 == 0b001
        host_work = np.linalg.norm(np.arange(1000.0))  # the host's own work, done while the kernel runs
        assert not fut.done() and host_work > 0
        time.sleep(0.05)
        ex.gate.set()
        y = fut.result(10)
        assert np.array_equal(y, ReferenceFabric().conv_fwd(x, w, 1))
        frac = fab.busy_s / (time.perf_counter() - t0)
        # the kernel was busy for at least the 50 ms the gate was held, and never more than the wall time
        assert 0.05 <= fab.busy_s and 0 < frac <= 1


def test_data_and_weight_gradients_run_at_the_same_time():
    """The PSG conv's backward on the pynq backend starts g_x and the weight gradient together: with
    both kernels held at their start, each is seen running while the other is, and the busy time
    counts the overlap once."""
    import torch

    from e2train.psg.engines import make_engine

    ex = GatedExecutor()
    seen = []

    class Both(GatedExecutor):
        def run(self, kernel, args, view):
            seen.append(kernel)
            if len(seen) == 2:
                ex.gate.set()  # both kernels have started: release them
            assert ex.gate.wait(10), "the two backward kernels did not run at the same time"
            return ex.inner.run(kernel, args, view)

    engine = make_engine("pynq", device=SimDevice(executor=Both()))
    rng = np.random.default_rng(6)
    x, w, g = (torch.from_numpy(a.astype(np.float64)) for a in random_layer(rng, 2, 3, 4, 8, 3, 1))
    gx, wg = engine.backward(g, x, w, 1, True, "psg", 3277)
    ref = ReferenceFabric()
    assert sorted(seen) == ["conv_bwd_data", "conv_bwd_weight_psg"]
    xi, wi, gi = (t.numpy().astype(d) for t, d in ((x, np.int8), (w, np.int8), (g, np.int16)))
    assert np.array_equal(gx.numpy().astype(np.int64), ref.conv_bwd_data(gi, wi, 1, (8, 8)))
    assert np.array_equal(wg.value.numpy().astype(np.int8), ref.conv_bwd_weight_psg(xi, gi, 3, 1, 3277).sign)
    assert engine.fabric.calls == 2
    engine.close()
