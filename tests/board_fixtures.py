"""Helpers for the board tests: a Vivado-style hwh for the e2train design, a manifest copy in a
temporary folder, and the PYNQ API variants the simulated board can run under."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e2train.board.manifest import REPO_BITSTREAMS, load_manifest, sha256_file
from e2train.board.pynq_api import import_pynq

HWH_TEMPLATE = """<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="Sat Nov 21 09:00:00 2026" VIVADOVERSION="2023.2">
  <SYSTEMINFO ARCH="zynq" DEVICE="7z020" NAME="e2train" PACKAGE="clg484" SPEEDGRADE="-1"/>
  <MODULES>
    <MODULE FULLNAME="/processing_system7_0" INSTANCE="processing_system7_0" MODTYPE="processing_system7" VLNV="xilinx.com:ip:processing_system7:5.5">
      <MEMORYMAP>
{ranges}
      </MEMORYMAP>
    </MODULE>
{modules}
  </MODULES>
</EDKSYSTEM>
"""


def write_hwh(path: Path, manifest, moved: dict[str, int] | None = None, drop: str | None = None) -> Path:
    """An hwh placing each kernel of ``manifest`` at its address (or at ``moved[instance]``)."""
    moved = moved or {}
    ranges, modules = [], []
    for k in manifest.kernels.values():
        if k.instance == drop:
            continue
        base = moved.get(k.instance, k.base_address)
        ranges.append(
            f'        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_BASEADDR" BASEVALUE="{base:#010x}" '
            f'HIGHNAME="C_HIGHADDR" HIGHVALUE="{base + k.address_range - 1:#010x}" INSTANCE="{k.instance}" '
            f'IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_GP0" MEMTYPE="REGISTER" '
            f'SLAVEBUSINTERFACE="s_axi_control"/>'
        )
        modules.append(
            f'    <MODULE FULLNAME="/{k.instance}" INSTANCE="{k.instance}" MODTYPE="{k.top}" '
            f'VLNV="e2train.org:hls:{k.top}:1.0"/>'
        )
    path.write_text(HWH_TEMPLATE.format(ranges="\n".join(ranges), modules="\n".join(modules)))
    return path


def bitstream_folder(tmp_path: Path, record: bool = True, **hwh_options) -> tuple[Path, Path]:
    """A copy of the manifest with an e2train.bit and e2train.hwh beside it; returns (manifest, bit)."""
    folder = tmp_path / "bitstreams"
    folder.mkdir(parents=True)
    manifest_path = folder / "manifest.json"
    shutil.copy(REPO_BITSTREAMS / "manifest.json", manifest_path)
    m = load_manifest(manifest_path)
    bit = folder / m.bit_name
    bit.write_bytes(b"\x00\x09\x0f\xf0" + bytes(range(256)) * 16)  # stand-in bytes: the driver only hashes them
    write_hwh(folder / m.hwh_name, m, **hwh_options)
    if record:
        raw = json.loads(manifest_path.read_text())
        raw["files"]["bit"]["sha256"] = sha256_file(bit)
        raw["files"]["hwh"]["sha256"] = sha256_file(folder / m.hwh_name)
        manifest_path.write_text(json.dumps(raw))
    return manifest_path, bit


HAVE_PYNQ = import_pynq() is not None
# The simulated board under the e2train stand-ins always, and under the real pynq package where it is
# installed (install.sh installs the board extra, pynq 4.0.0).
API_PARAMS = [
    "compat",
    pytest.param("pynq", marks=pytest.mark.skipif(not HAVE_PYNQ, reason="pynq is not installed (pip install -e .[board])")),
]
