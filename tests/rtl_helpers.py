"""Shared pieces of the tests/test_rtl*.py files: locating the sim/ helpers and the simulators."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

import cocotb_run  # noqa: E402  (sim/ is not a package)


def need_simulator(sim: str) -> None:
    """Skip (with the reason) when ``sim`` cannot run on this machine."""
    pytest.importorskip("cocotb")
    reason = cocotb_run.simulator_available(sim)
    if reason:
        pytest.skip(reason)


def run_or_fail(**kwargs) -> dict:
    res = cocotb_run.run(**kwargs)
    assert res["tests"], "no cocotb test ran"
    assert not res["failures"], f"cocotb tests failed: {res['failures']}"
    return res
