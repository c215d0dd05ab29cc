"""Read what the driver needs from a Vivado hardware handoff (.hwh): the kernel instances, their IP
(VLNV), the base address and range of their AXI-Lite control port as the PS sees them, and each
module's parameters (e.g. the CONST_VAL of the xlconstant that holds the contract version)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BitstreamError


@dataclass(frozen=True)
class HwhIp:
    instance: str
    vlnv: str
    base_address: int | None
    address_range: int | None
    parameters: dict[str, str] = field(default_factory=dict, compare=False)  # NAME -> VALUE of the module's PARAMETERS


def read_hwh(path: str | Path) -> dict[str, HwhIp]:
    """instance name -> HwhIp for every MODULE of the design (base address None where unmapped)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise BitstreamError(f"{path} is not a valid hwh file (XML error: {exc})") from None
    except OSError as exc:
        raise BitstreamError(f"cannot read hwh file {path}: {exc}") from None
    if root.tag != "EDKSYSTEM":
        raise BitstreamError(f"{path} is not a Vivado hwh file (root element {root.tag!r}, expected EDKSYSTEM)")
    # Address ranges are listed under the master that sees them (the PS7); a slave's control port
    # appears as a MEMRANGE whose INSTANCE is the slave.
    ranges: dict[str, tuple[int, int]] = {}
    for mr in root.iter("MEMRANGE"):
        inst, base, high = mr.get("INSTANCE"), mr.get("BASEVALUE"), mr.get("HIGHVALUE")
        if inst and base and high and inst not in ranges:
            lo = int(base, 16)
            ranges[inst] = (lo, int(high, 16) - lo + 1)
    ips = {}
    for mod in root.iter("MODULE"):
        inst = mod.get("INSTANCE")
        if not inst:
            continue
        base, size = ranges.get(inst, (None, None))
        params = {p.get("NAME"): p.get("VALUE") for p in mod.findall("./PARAMETERS/PARAMETER[@NAME][@VALUE]")}
        ips[inst] = HwhIp(inst, mod.get("VLNV", ""), base, size, params)
    return ips
