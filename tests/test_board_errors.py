"""Clear errors from the pynq driver: a kernel that never finishes, a missing or mismatched
bitstream, a manifest for another register map, a kernel that refuses its arguments."""

import json
import time

import numpy as np
import pytest
from board_fixtures import HAVE_PYNQ, bitstream_folder

from e2train.board import regmap
from e2train.board.errors import BitstreamError, BoardError, KernelError, KernelTimeout
from e2train.board.fabric import PynqFabric
from e2train.board.manifest import check_hwh, load_manifest, record, verify_bitstream
from e2train.board.sim_device import SimBusError, SimDevice
from e2train.fabric import BackendUnavailable, FabricError, get_fabric
from e2train.fabric.reference import ReferenceFabric
from e2train.fabric.selftest import random_layer


def test_kernel_that_never_finishes_times_out_with_a_clear_error():
    dev = SimDevice(hang={"conv_fwd"})
    fab = PynqFabric(device=dev, timeout=0.2)
    x, w, g = random_layer(np.random.default_rng(0), 1, 2, 3, 6, 3, 1)
    t0 = time.monotonic()
    with pytest.raises(KernelTimeout, match=r"conv_fwd_top \(conv_fwd at 0x40000000\) did not finish within 0.2 s") as e:
        fab.conv_fwd(x, w, 1)
    assert 0.2 <= time.monotonic() - t0 < 2.0
    assert "ap_start=1, ap_idle=0" in str(e.value) and "bitstream loaded" in str(e.value)
    assert dev.runs("conv_fwd") == 1
    # the kernel may still be writing DDR: the driver refuses to start it again
    with pytest.raises(BoardError, match="unusable after an earlier failure"):
        fab.conv_fwd(x, w, 1)
    # the other kernels are unaffected
    assert np.array_equal(fab.conv_bwd_data(g, w, 1, (6, 6)), ReferenceFabric().conv_bwd_data(g, w, 1, (6, 6)))


def test_missing_bitstream(tmp_path):
    manifest, bit = bitstream_folder(tmp_path)
    bit.unlink()
    with pytest.raises(BitstreamError, match=r"bit file not found: .*e2train.bit\. Build it with hw/vivado/build.sh"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest)
    manifest, bit = bitstream_folder(tmp_path / "b")
    bit.with_suffix(".hwh").unlink()
    with pytest.raises(BitstreamError, match=r"hwh file not found: .*e2train.hwh"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest)


def test_mismatched_bitstream(tmp_path):
    manifest, bit = bitstream_folder(tmp_path)
    bit.write_bytes(bit.read_bytes() + b"\x01")
    with pytest.raises(BitstreamError, match=r"e2train.bit does not match the manifest \(sha256 [0-9a-f]{64}, manifest [0-9a-f]{64}"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest)


def test_manifest_without_recorded_sha256(tmp_path):
    manifest, bit = bitstream_folder(tmp_path, record=False)
    with pytest.raises(BitstreamError, match="records no sha256 for e2train.bit"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest)
    # recording a build fills it in, after which the same files verify and load
    files = record(bit, manifest)
    assert len(files["bit"]["sha256"]) == 64
    fab = PynqFabric(device="sim", bitfile=bit, manifest=manifest)
    x, w, _ = random_layer(np.random.default_rng(1), 1, 2, 3, 5, 1, 2)
    assert np.array_equal(fab.conv_fwd(x, w, 2), ReferenceFabric().conv_fwd(x, w, 2))


def test_hwh_with_a_kernel_elsewhere_or_missing(tmp_path):
    manifest, bit = bitstream_folder(tmp_path, moved={"conv_bwd_data": 0x43C00000})
    with pytest.raises(BitstreamError, match=r"conv_bwd_data is at 0x43c00000 but the manifest says 0x40010000"):
        verify_bitstream(bit, load_manifest(manifest))
    manifest, bit = bitstream_folder(tmp_path / "b", drop="conv_bwd_weight_psg")
    with pytest.raises(BitstreamError, match="has no instance 'conv_bwd_weight_psg'"):
        PynqFabric(device="sim", bitfile=bit, manifest=manifest)
    manifest, bit = bitstream_folder(tmp_path / "c")
    bit.with_suffix(".hwh").write_text("<not xml")
    with pytest.raises(BitstreamError, match="not a valid hwh file"):
        check_hwh(bit.with_suffix(".hwh"), load_manifest(manifest))


def test_unverified_load_maps_nothing_from_the_hwh_but_still_checks_addresses(tmp_path):
    """verify=False skips the files; the driver still refuses a design whose kernels sit elsewhere."""
    dev = SimDevice()
    dev.load_ips({"conv_fwd": ("conv_fwd", 0x43C00000, 0x10000), "conv_bwd_data": ("conv_bwd_data", 0x40010000, 0x10000),
                  "conv_bwd_weight_psg": ("conv_bwd_weight_psg", 0x40020000, 0x10000)})
    with pytest.raises(BitstreamError, match=r"conv_fwd is at 0x43c00000 in the loaded design but at 0x40000000"):
        PynqFabric(device=dev, verify=False)


def test_manifest_for_another_register_map(tmp_path):
    manifest, _ = bitstream_folder(tmp_path)
    raw = json.loads(manifest.read_text())
    raw["regmap_version"] = regmap.REGMAP_VERSION + 1
    manifest.write_text(json.dumps(raw))
    with pytest.raises(BitstreamError, match=f"register map v{regmap.REGMAP_VERSION + 1} but this driver speaks v{regmap.REGMAP_VERSION}"):
        load_manifest(manifest)
    manifest.write_text("{")
    with pytest.raises(BitstreamError, match="not valid JSON"):
        load_manifest(manifest)
    with pytest.raises(BitstreamError, match="manifest not found"):
        load_manifest(tmp_path / "nowhere.json")


def test_board_without_pynq_or_bitstream(tmp_path, monkeypatch):
    monkeypatch.setenv("E2TRAIN_BITSTREAMS", str(tmp_path / "bitstreams"))
    manifest, bit = bitstream_folder(tmp_path)
    bit.unlink()
    if HAVE_PYNQ:
        with pytest.raises(BitstreamError, match="bit file not found"):
            get_fabric("pynq")
    else:
        with pytest.raises(BackendUnavailable, match=r"needs the pynq package .* device='sim'"):
            get_fabric("pynq")


def test_layer_larger_than_the_kernels_planes_is_refused_before_start():
    fab = PynqFabric(device="sim")
    x = np.zeros((1, 1, 33, 33), np.int8)
    w = np.zeros((1, 1, 3, 3), np.int8)
    with pytest.raises(FabricError, match="input 33x33 exceeds the 32x32 planes"):
        fab.conv_fwd(x, w, 1)
    assert fab.device.runs("conv_fwd") == 0


def test_shape_whose_accumulator_could_wrap_is_refused_before_start():
    """The PL would wrap; like the reference and csim, the driver refuses such a shape."""
    fab = PynqFabric(device="sim")
    x = np.zeros((2048, 1, 32, 32), np.int8)
    g = np.zeros((2048, 1, 32, 32), np.int16)
    with pytest.raises(OverflowError, match="exceeds its weight_msb accumulator"):
        fab.conv_bwd_weight_psg(x, g, 3, 1, 3277, "psg")
    assert fab.device.runs("conv_bwd_weight_psg") == 0 and not fab._buffers


def test_kernel_error_code_is_reported():
    """Arguments the top refuses (here k=5, bypassing the Fabric checks) come back as ap_return."""
    fab = PynqFabric(device="sim")
    runner = fab.runners["conv_fwd"]
    bufs = {n: fab.api.allocate((64,), np.int8, target=fab.device) for n in ("x", "w", "y")}
    with pytest.raises(KernelError, match=r"conv_fwd_top returned 2 \(bad argument"):
        runner.run({"n": 1, "c": 1, "h": 4, "wd": 4, "o": 1, "k": 5, "stride": 1}, bufs)
    with pytest.raises(KernelError, match=r"returned 1 \(bad shape"):
        runner.run({"n": 0, "c": 1, "h": 4, "wd": 4, "o": 1, "k": 3, "stride": 1}, bufs)


def test_buffer_too_small_is_a_bus_error_not_a_silent_overrun():
    fab = PynqFabric(device="sim")
    runner = fab.runners["conv_fwd"]
    bufs = {n: fab.api.allocate((8,), np.int8, target=fab.device) for n in ("x", "w", "y")}
    with pytest.raises(SimBusError, match=r"conv_fwd.x accessed 0x[0-9a-f]+ \(\+4096 bytes\) outside every allocated buffer"):
        runner.run({"n": 1, "c": 4, "h": 32, "wd": 32, "o": 1, "k": 3, "stride": 1}, bufs)


def test_unknown_device_name():
    with pytest.raises(ValueError, match="device must be 'board' \\(or None\\), 'sim' or a pynq Device, got 'zed'"):
        PynqFabric(device="zed")
