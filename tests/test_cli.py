"""The e2train entry point and the fabric self-test it runs."""

import subprocess
import sys

import numpy as np

from e2train.cli import main
from e2train.fabric import get_fabric
from e2train.fabric.base import Fabric
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import run_selftest


def test_help_and_version(capsys):
    assert main([]) == 0
    assert "e2train" in capsys.readouterr().out
    out = subprocess.run([sys.executable, "-m", "e2train.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "e2train 0.1.0" in out.stdout


def test_fabric_selftest_passes_on_reference(capsys):
    assert main(["fabric", "selftest", "--backend", "reference"]) == 0
    assert "fabric selftest [reference]: ok" in capsys.readouterr().out


class _OffByOne(ReferenceFabric):
    """A broken backend: the self-test must catch it."""

    name = "broken"

    def _conv_bwd_data(self, g, w, k, stride, in_hw):
        out = super()._conv_bwd_data(g, w, k, stride, in_hw)
        out[0, 0, 0, 0] += 1
        return out


def test_selftest_catches_a_wrong_backend():
    failures = run_selftest(_OffByOne(), np.random.default_rng(0))
    assert any("conv_bwd_data" in f for f in failures)
    assert any("adjoint" in f for f in failures)
    assert isinstance(get_fabric("reference"), Fabric)
