"""bitstreams/manifest.json: which bitstream the driver expects (file names, sha256, design,
register-map and contract versions, kernel instances and addresses), and the check of a .bit/.hwh
pair against it.

``python -m e2train.board.manifest record BIT`` writes the sha256 of a fresh build and the contract
version it was built for into the manifest (hw/vivado/build.sh does it after Vivado has written the
files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .. import fixed
from ..contract import KERNELS
from . import regmap
from .errors import BitstreamError
from .hwh import read_hwh

# The repository's bitstreams/ folder (an editable install, as docs/board.md sets up), unless
# E2TRAIN_BITSTREAMS names another.
REPO_BITSTREAMS = Path(__file__).resolve().parents[3] / "bitstreams"


def bitstreams_dir() -> Path:
    return Path(os.environ.get("E2TRAIN_BITSTREAMS", REPO_BITSTREAMS))


def default_manifest_path() -> Path:
    return bitstreams_dir() / "manifest.json"


@dataclass(frozen=True)
class KernelIp:
    kernel: str  # contract name: conv_fwd, conv_bwd_data, conv_bwd_weight_psg
    instance: str  # block-design instance, the key of Overlay.ip_dict
    top: str  # HLS top function, the IP's name in its VLNV
    base_address: int
    address_range: int


@dataclass(frozen=True)
class Manifest:
    path: Path
    design: str
    design_version: str
    regmap_version: int
    contract_version: int  # the contract (e2train.fixed.CONTRACT_VERSION) the bitstream was built for
    part: str
    clock_mhz: float
    files: dict  # "bit" / "hwh" -> {"name": ..., "sha256": ... or None}
    kernels: dict[str, KernelIp]

    @property
    def bit_name(self) -> str:
        return self.files["bit"]["name"]

    @property
    def hwh_name(self) -> str:
        return self.files["hwh"]["name"]

    def default_bitfile(self) -> Path:
        return self.path.parent / self.bit_name


def load_manifest(path: str | Path | None = None, check_contract: bool = True) -> Manifest:
    """Read a manifest; refuse one for another register map or, unless ``check_contract`` is False
    (``record``, which stamps a fresh build), one built for another contract than this e2train's."""
    path = Path(path) if path is not None else default_manifest_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BitstreamError(f"bitstream manifest not found: {path} (set E2TRAIN_BITSTREAMS to the folder holding it)") from None
    except json.JSONDecodeError as exc:
        raise BitstreamError(f"bitstream manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BitstreamError(f"bitstream manifest {path} is malformed (a JSON {type(raw).__name__}, not an object)")
    # A manifest without the field predates it: its bitstream was built for contract v1.
    contract = raw.get("contract_version", 1)
    if check_contract:
        _check_contract(path, raw, contract)
    try:
        kernels = {
            name: KernelIp(name, k["instance"], k["top"], int(k["base_address"], 16), int(k["range"], 16))
            for name, k in raw["kernels"].items()
        }
        files = {key: {"name": raw["files"][key]["name"], "sha256": raw["files"][key].get("sha256")} for key in ("bit", "hwh")}
        m = Manifest(
            path=path,
            design=raw["design"],
            design_version=str(raw["design_version"]),
            regmap_version=int(raw["regmap_version"]),
            contract_version=contract,
            part=raw["part"],
            clock_mhz=float(raw["clock_mhz"]),
            files=files,
            kernels=kernels,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"bitstream manifest {path} is malformed ({type(exc).__name__}: {exc})") from None
    missing = set(KERNELS) - set(kernels)
    if missing:
        raise BitstreamError(f"bitstream manifest {path} lists no IP for {', '.join(sorted(missing))}")
    if m.regmap_version != regmap.REGMAP_VERSION:
        raise BitstreamError(
            f"bitstream manifest {path} is for register map v{m.regmap_version} but this driver speaks "
            f"v{regmap.REGMAP_VERSION}: rebuild the bitstream (hw/vivado/build.sh) or use the matching e2train"
        )
    return m


def _check_contract(path: Path, raw, contract) -> None:
    want = fixed.CONTRACT_VERSION
    if "contract_version" not in raw:
        raise BitstreamError(
            f"bitstream manifest {path} records no contract_version: bitstream built for contract v1 (before "
            f"manifests recorded it), this e2train speaks contract v{want}: rebuild the bitstream "
            f"(hw/vivado/build.sh records the version) or use an e2train of contract v1"
        )
    if type(contract) is not int:
        raise BitstreamError(f"bitstream manifest {path} is malformed (contract_version {contract!r} is not an integer)")
    if contract != want:
        raise BitstreamError(
            f"bitstream manifest {path}: bitstream built for contract v{contract}, this e2train speaks contract "
            f"v{want}: rebuild the bitstream (hw/vivado/build.sh) or use an e2train of contract v{contract}"
        )


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hwh_path_for(bitfile: str | Path) -> Path:
    return Path(bitfile).with_suffix(".hwh")


def verify_bitstream(bitfile: str | Path, manifest: Manifest) -> Path:
    """Check a .bit and the .hwh beside it against the manifest; returns the hwh path.

    Clear errors for: a missing file, a manifest with no recorded sha256, a sha256 mismatch, an hwh
    that lacks a kernel or places it at another address than the manifest.
    """
    bitfile = Path(bitfile)
    hwh = hwh_path_for(bitfile)
    for key, f in (("bit", bitfile), ("hwh", hwh)):
        if not f.is_file():
            raise BitstreamError(
                f"{key} file not found: {f}. Build it with hw/vivado/build.sh or copy the released "
                f"{manifest.files[key]['name']} into {manifest.path.parent} (docs/board.md)"
            )
    for key, f in (("bit", bitfile), ("hwh", hwh)):
        want = manifest.files[key]["sha256"]
        if not want:
            raise BitstreamError(
                f"manifest {manifest.path} records no sha256 for {manifest.files[key]['name']}: record a build "
                f"you trust with `python -m e2train.board.manifest record {bitfile}`, or skip the check (verify=False)"
            )
        got = sha256_file(f)
        if got != want:
            raise BitstreamError(
                f"{f} does not match the manifest (sha256 {got}, manifest {want} for design "
                f"{manifest.design} v{manifest.design_version}): a stale or foreign build; rebuild or re-record it"
            )
    check_hwh(hwh, manifest)
    return hwh


def check_hwh(hwh: str | Path, manifest: Manifest) -> None:
    """Each kernel of the manifest is in the hwh as its HLS top, at the manifest's address; the contract
    version register (regmap.CONTRACT_REGISTER) is there too, holding the manifest's contract version."""
    ips = read_hwh(hwh)
    for k in manifest.kernels.values():
        _check_hwh_ip(hwh, ips, k.instance, k.top, "HLS top", k.base_address, "manifest", f"({k.kernel}); it is not an e2train design")
    _check_hwh_contract(hwh, ips, manifest.contract_version)


def _check_hwh_ip(hwh, ips, instance: str, name: str, kind: str, base: int, placed_by: str, if_missing: str) -> None:
    """``instance`` is in the hwh, as the IP ``name`` (of its VLNV), at ``base`` (as ``placed_by`` says)."""
    ip = ips.get(instance)
    if ip is None:
        raise BitstreamError(f"{hwh} has no instance {instance!r} {if_missing}")
    if f":{name}:" not in ip.vlnv:
        raise BitstreamError(f"{hwh}: instance {instance!r} is {ip.vlnv!r}, expected the {kind} {name!r}")
    if ip.base_address != base:
        got = "unmapped" if ip.base_address is None else hex(ip.base_address)
        raise BitstreamError(f"{hwh}: {instance} is at {got} but the {placed_by} says {hex(base)}; rebuild with hw/vivado")


def _check_hwh_contract(hwh, ips, want: int) -> None:
    r = regmap.CONTRACT_REGISTER
    _check_hwh_ip(
        hwh, ips, r.instance, r.ip, "IP", r.base_address, "register map",
        f"(the contract version register): a design built before it existed, for contract v1; this e2train "
        f"speaks contract v{want}: rebuild with hw/vivado",
    )
    const = ips.get(r.constant)
    value = const.parameters.get("CONST_VAL") if const is not None else None
    try:
        version = int(value, 0)
    except (TypeError, ValueError):
        raise BitstreamError(
            f"{hwh} has no constant {r.constant!r} with a CONST_VAL (the value of the contract version register; "
            f"got {value!r}); rebuild with hw/vivado"
        ) from None
    if version != want:
        raise BitstreamError(
            f"{hwh}: bitstream built for contract v{version} (the CONST_VAL of {r.constant}), the manifest says "
            f"contract v{want}: rebuild with hw/vivado or use the files the manifest records"
        )


def record(bitfile: str | Path, manifest_path: str | Path | None = None) -> dict:
    """Write the sha256 of ``bitfile`` and its hwh, and this e2train's contract version, into the manifest
    (after checking the hwh, whose contract version register must hold that version)."""
    m = replace(load_manifest(manifest_path, check_contract=False), contract_version=fixed.CONTRACT_VERSION)
    bitfile = Path(bitfile)
    hwh = hwh_path_for(bitfile)
    for f in (bitfile, hwh):
        if not f.is_file():
            raise BitstreamError(f"cannot record {f}: file not found")
    check_hwh(hwh, m)
    raw = json.loads(m.path.read_text())
    raw["files"]["bit"]["sha256"] = sha256_file(bitfile)
    raw["files"]["hwh"]["sha256"] = sha256_file(hwh)
    if "contract_version" not in raw:  # beside regmap_version, where the repository's manifest has it
        at = list(raw).index("regmap_version") + 1 if "regmap_version" in raw else len(raw)
        raw = dict([*list(raw.items())[:at], ("contract_version", None), *list(raw.items())[at:]])
    raw["contract_version"] = m.contract_version
    tmp = m.path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    tmp.replace(m.path)  # atomic: a failed write leaves the old manifest intact
    return raw["files"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m e2train.board.manifest", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="write the sha256 of BIT and BIT's .hwh, and the contract version, into the manifest")
    r.add_argument("bitfile")
    r.add_argument("--manifest", default=None)
    v = sub.add_parser("verify", help="check BIT and its .hwh against the manifest")
    v.add_argument("bitfile")
    v.add_argument("--manifest", default=None)
    args = p.parse_args(argv)
    try:
        if args.cmd == "record":
            for key, f in record(args.bitfile, args.manifest).items():
                print(f"{f['name']}: sha256 {f['sha256']}")
        else:
            verify_bitstream(args.bitfile, load_manifest(args.manifest))
            print(f"{args.bitfile}: matches the manifest")
    except BitstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
