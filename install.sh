#!/usr/bin/env bash
# Set up a fresh Debian machine for e2train: system tools for the RTL simulations, a .venv at the
# repository root with every pinned dependency, and the built parts (the HLS C-simulation library, into
# the per-user cache ~/.cache/e2train or $E2TRAIN_CACHE_DIR: e2train.fabric.csim_build).
# Idempotent: running it again only does what is missing.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

# System packages: Icarus Verilog (second RTL simulator), yosys (utilisation estimates), tclsh.
need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
command -v tclsh >/dev/null 2>&1 || need_apt+=(tcl)  # runs hw/vivado's Tcl against stand-ins in the tests
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "install.sh: apt-get install ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "install.sh: warning: ${need_apt[*]} missing and not root; the tests that need them will skip" >&2
    fi
fi

# Python environment.
py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { echo "install.sh: Python >= 3.11 is required ($py is $("$py" --version 2>&1))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q -e ".[test,sim,board]"

# Built parts (each step is a no-op when its output is up to date).
for step in tools/fetch_ap_types.py tools/build_csim.py; do
    if [ -f "$step" ]; then
        .venv/bin/python "$step"
    fi
done
# The integer CPU engine (the PSG default on machines without CUDA): built here so that the first
# training run does not compile it; a failed build only means `auto` falls back to torch.
.venv/bin/python -c 'from e2train.cpu.build import build_library; print(f"install.sh: cpu engine {build_library()}")' \
    || echo "install.sh: the cpu engine did not build; PSG runs will use the torch engine" >&2
echo "install.sh: done. Activate with: source $root/.venv/bin/activate"
