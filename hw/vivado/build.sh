#!/usr/bin/env bash
# Build bitstreams/e2train.bit and e2train.hwh with Vivado for the contract version of e2train.fixed
# (stored in the overlay's contract version register), then record their sha256 and that version in
# bitstreams/manifest.json (or $E2TRAIN_MANIFEST). Needs vivado on PATH and the HLS tops exported as IP (folders with a
# component.xml under hls/build, or given with E2TRAIN_HLS_IP="dir1 dir2 ...").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/bitstreams}
jobs=${JOBS:-$(nproc)}
command -v vivado >/dev/null 2>&1 || { echo "build.sh: vivado is not on PATH (source settings64.sh of Vivado first)" >&2; exit 2; }
py=${PYTHON:-$root/.venv/bin/python}
contract=$("$py" -c 'from e2train.fixed import CONTRACT_VERSION; print(CONTRACT_VERSION)') \
    || { echo "build.sh: cannot read e2train.fixed.CONTRACT_VERSION with $py (install e2train, or set PYTHON)" >&2; exit 2; }
if [ -n "${E2TRAIN_HLS_IP:-}" ]; then
    read -r -a repos <<<"$E2TRAIN_HLS_IP"
else
    mapfile -t repos < <(find "$root/hls/build" -name component.xml -path '*impl/ip/*' -printf '%h\n' 2>/dev/null | sort -u)
fi
[ ${#repos[@]} -ge 3 ] || { echo "build.sh: expected the 3 exported HLS IPs (found ${#repos[@]}); export them from hls/ first" >&2; exit 2; }
mkdir -p "$out"
cd "$out"
vivado -mode batch -nojournal -log "$out/vivado.log" -source "$here/build.tcl" -tclargs "$out" "$jobs" "$contract" "${repos[@]}"
"$py" -m e2train.board.manifest record "$out/e2train.bit" --manifest "${E2TRAIN_MANIFEST:-$root/bitstreams/manifest.json}"
