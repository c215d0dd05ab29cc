"""Helpers for the board tests: a Vivado-style hwh for the e2train design, a manifest copy in a
temporary folder, and the PYNQ API variants the simulated board can run under."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e2train import fixed
from e2train.board import regmap
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


def _memrange(instance: str, base: int, size: int, port: str) -> str:
    return (
        f'        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_BASEADDR" BASEVALUE="{base:#010x}" '
        f'HIGHNAME="C_HIGHADDR" HIGHVALUE="{base + size - 1:#010x}" INSTANCE="{instance}" '
        f'IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_GP0" MEMTYPE="REGISTER" '
        f'SLAVEBUSINTERFACE="{port}"/>'
    )


def write_hwh(
    path: Path,
    manifest,
    moved: dict[str, int] | None = None,
    drop: str | None = None,
    contract_version: int | str | None = fixed.CONTRACT_VERSION,
) -> Path:
    """An hwh placing each kernel of ``manifest`` at its address (or at ``moved[instance]``), and the
    contract version register (an AXI GPIO fed by an xlconstant whose CONST_VAL is ``contract_version``;
    None: no such register, as in a design built before it existed)."""
    moved = moved or {}
    ranges, modules = [], []
    for k in manifest.kernels.values():
        if k.instance == drop:
            continue
        ranges.append(_memrange(k.instance, moved.get(k.instance, k.base_address), k.address_range, "s_axi_control"))
        modules.append(
            f'    <MODULE FULLNAME="/{k.instance}" INSTANCE="{k.instance}" MODTYPE="{k.top}" '
            f'VLNV="e2train.org:hls:{k.top}:1.0"/>'
        )
    r = regmap.CONTRACT_REGISTER
    if contract_version is not None and drop != r.instance:
        ranges.append(_memrange(r.instance, moved.get(r.instance, r.base_address), r.address_range, "S_AXI"))
        modules.append(
            f'    <MODULE FULLNAME="/{r.instance}" INSTANCE="{r.instance}" MODTYPE="{r.ip}" VLNV="xilinx.com:ip:{r.ip}:2.0">\n'
            f'      <PARAMETERS><PARAMETER NAME="C_ALL_INPUTS" VALUE="1"/><PARAMETER NAME="C_GPIO_WIDTH" VALUE="{r.width}"/>'
            f"</PARAMETERS>\n    </MODULE>"
        )
    if contract_version is not None and drop != r.constant:
        modules.append(
            f'    <MODULE FULLNAME="/{r.constant}" INSTANCE="{r.constant}" MODTYPE="xlconstant" VLNV="xilinx.com:ip:xlconstant:1.1">\n'
            f'      <PARAMETERS><PARAMETER NAME="CONST_WIDTH" VALUE="{r.width}"/><PARAMETER NAME="CONST_VAL" VALUE="{contract_version}"/>'
            f"</PARAMETERS>\n    </MODULE>"
        )
    path.write_text(HWH_TEMPLATE.format(ranges="\n".join(ranges), modules="\n".join(modules)))
    return path


def bitstream_folder(tmp_path: Path, record: bool = True, **hwh_options) -> tuple[Path, Path]:
    """A copy of the manifest with an e2train.bit and e2train.hwh beside it; returns (manifest, bit).
    ``hwh_options``: those of ``write_hwh``."""
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
