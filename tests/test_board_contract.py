"""The contract version (e2train.fixed.CONTRACT_VERSION) travels with the bitstream: the manifest records
it, the hwh holds it as the CONST_VAL of the xlconstant behind the contract version register, and the
loaded overlay reads it back. The driver refuses a mismatch at each of the three, naming both versions."""

import json

import numpy as np
import pytest
from board_fixtures import API_PARAMS, bitstream_folder

from e2train import fixed
from e2train.board import regmap
from e2train.board.errors import BitstreamError
from e2train.board.fabric import PynqFabric
from e2train.board.manifest import load_manifest, record, verify_bitstream
from e2train.board.sim_device import SimDevice
from e2train.fabric import get_fabric
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import random_layer

NOW = fixed.CONTRACT_VERSION
OLD = 1  # contract v1: the MSB predictors floored
REG = regmap.CONTRACT_REGISTER


def _edit_manifest(path, **fields):
    """Set (or, with the value ``...``, delete) top-level fields of a manifest."""
    raw = json.loads(path.read_text())
    for key, value in fields.items():
        if value is ...:
            raw.pop(key, None)
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))


def _word(dev, address):
    return int.from_bytes(dev.read_registers(address, 4), "little")


def test_this_contract_is_not_v1_and_the_repository_manifest_records_it():
    assert NOW != OLD
    m = load_manifest()
    assert m.contract_version == NOW and m.regmap_version == regmap.REGMAP_VERSION


def test_manifest_for_contract_v1_is_refused(tmp_path):
    manifest, bit = bitstream_folder(tmp_path)
    _edit_manifest(manifest, contract_version=OLD)
    msg = rf"bitstream built for contract v1, this e2train speaks contract v{NOW}: rebuild the bitstream \(hw/vivado/build.sh\)"
    with pytest.raises(BitstreamError, match=msg):
        load_manifest(manifest)
    # through each door that reads a manifest: the driver, get_fabric, the board commands
    with pytest.raises(BitstreamError, match=msg):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest, executor="reference")
    with pytest.raises(BitstreamError, match=msg):
        get_fabric("pynq", device="sim", manifest=manifest, executor="reference")


def test_manifest_without_contract_version_is_refused_as_v1(tmp_path):
    manifest, _ = bitstream_folder(tmp_path)
    _edit_manifest(manifest, contract_version=...)
    with pytest.raises(
        BitstreamError,
        match=rf"records no contract_version: bitstream built for contract v1 .*, this e2train speaks contract v{NOW}: rebuild",
    ):
        load_manifest(manifest)


@pytest.mark.parametrize("value", [str(NOW), float(NOW), True, None])
def test_manifest_whose_contract_version_is_not_an_integer(tmp_path, value):
    manifest, _ = bitstream_folder(tmp_path)
    _edit_manifest(manifest, contract_version=value)
    with pytest.raises(BitstreamError, match=r"is malformed \(contract_version .* is not an integer\)"):
        load_manifest(manifest)


def test_record_stamps_a_fresh_build_with_this_contract(tmp_path):
    """build.sh's last step: a manifest from before the field, a build of this e2train; afterwards it loads."""
    manifest, bit = bitstream_folder(tmp_path, record=False)
    _edit_manifest(manifest, contract_version=...)
    record(bit, manifest)
    raw = json.loads(manifest.read_text())
    assert raw["contract_version"] == NOW
    assert list(raw).index("contract_version") == list(raw).index("regmap_version") + 1
    fab = PynqFabric(device="sim", bitfile=bit, manifest=manifest, executor="reference")
    assert fab.contract_version == NOW


def test_record_refuses_a_build_whose_hwh_holds_another_contract(tmp_path):
    manifest, bit = bitstream_folder(tmp_path, record=False, contract_version=OLD)
    with pytest.raises(
        BitstreamError, match=rf"bitstream built for contract v1 \(the CONST_VAL of {REG.constant}\), the manifest says contract v{NOW}"
    ):
        record(bit, manifest)
    assert json.loads(manifest.read_text())["files"]["bit"]["sha256"] is None  # nothing written


def test_hwh_without_the_version_register_or_with_it_elsewhere(tmp_path):
    manifest, bit = bitstream_folder(tmp_path / "a", contract_version=None)
    with pytest.raises(BitstreamError, match=rf"has no instance '{REG.instance}' .* for contract v1; this e2train speaks contract v{NOW}"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest, executor="reference")
    manifest, bit = bitstream_folder(tmp_path / "b", moved={REG.instance: 0x41200000})
    with pytest.raises(BitstreamError, match=rf"{REG.instance} is at 0x41200000 but the register map says {REG.base_address:#x}"):
        verify_bitstream(bit, load_manifest(manifest))
    manifest, bit = bitstream_folder(tmp_path / "c", drop=REG.constant)
    with pytest.raises(BitstreamError, match=f"has no constant '{REG.constant}' with a CONST_VAL"):
        verify_bitstream(bit, load_manifest(manifest))
    # Vivado may write the constant in hex
    manifest, bit = bitstream_folder(tmp_path / "d", contract_version=f"0x{NOW:08X}")
    verify_bitstream(bit, load_manifest(manifest))


@pytest.mark.parametrize("api", API_PARAMS)
def test_overlay_presenting_contract_v1_is_refused(tmp_path, api):
    """A .bit of contract v1 in the PL: the files may match the manifest, the register does not."""
    msg = (
        rf"bitstream built for contract v1 \(read from the overlay's {REG.instance} register at "
        rf"{REG.base_address + REG.offset:#x}\), this e2train speaks contract v{NOW}"
    )
    dev = SimDevice(executor="reference", contract_version=OLD)
    assert _word(dev, REG.base_address + REG.offset) == OLD
    with pytest.raises(BitstreamError, match=msg):
        PynqFabric(device=dev, api=api)
    manifest, bit = bitstream_folder(tmp_path)
    dev = SimDevice(load_manifest(manifest), executor="reference", contract_version=OLD)
    with pytest.raises(BitstreamError, match=msg):
        PynqFabric(device=dev, bitfile=bit, manifest=manifest, api=api)


def test_overlay_without_the_version_register_is_refused():
    dev = SimDevice(executor="reference", contract_version=None)
    assert REG.instance not in dev.ip_dict
    with pytest.raises(
        BitstreamError,
        match=rf"no contract version register \('{REG.instance}'\): bitstream built for contract v1 .* this e2train speaks contract v{NOW}",
    ):
        PynqFabric(device=dev)


def test_overlay_with_the_version_register_elsewhere_is_refused(tmp_path):
    manifest, bit = bitstream_folder(tmp_path, moved={REG.instance: 0x41200000})
    dev = SimDevice(load_manifest(manifest), executor="reference")
    dev.load_hwh(bit.with_suffix(".hwh"))  # what pynq would map from this hwh
    with pytest.raises(BitstreamError, match=rf"{REG.instance} is at 0x41200000 in the loaded design but at {REG.base_address:#x}"):
        PynqFabric(device=dev, manifest=manifest, verify=False)


@pytest.mark.parametrize("api", API_PARAMS)
def test_overlay_of_this_contract_loads_and_runs(tmp_path, api):
    manifest, bit = bitstream_folder(tmp_path)
    fab = PynqFabric(device=SimDevice(load_manifest(manifest), executor="reference"), bitfile=bit, manifest=manifest, api=api)
    assert fab.contract_version == NOW and fab.describe()["contract"].startswith(f"v{NOW} ")
    # the register as docs/register-map.md has it: read only, writes change nothing
    dev, address = fab.device, REG.base_address + REG.offset
    assert dev.ip_dict[REG.instance]["phys_addr"] == REG.base_address
    dev.write_registers(address, (NOW + 5).to_bytes(4, "little"))
    assert _word(dev, address) == NOW
    x, w, _ = random_layer(np.random.default_rng(5), 2, 3, 4, 6, 3, 1)
    assert np.array_equal(fab.conv_fwd(x, w, 1), ReferenceFabric().conv_fwd(x, w, 1))
    fab.close()
