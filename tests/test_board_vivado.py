"""The Vivado design of hw/vivado agrees with the manifest the driver checks bitstreams against.

Without Vivado: tclsh runs the block-design script against printing stand-ins of the Vivado
commands (tests/vivado_stub.tcl) and the test reads what it would build. With Vivado on PATH
(marker ``vivado``): the real build, and its outputs checked like the driver checks them.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2train import fixed
from e2train.board import regmap
from e2train.board.manifest import load_manifest, verify_bitstream

ROOT = Path(__file__).resolve().parents[1]
VIVADO = ROOT / "hw" / "vivado"


def _hls_export_vlnv():
    """(vendor:library, version) the HLS flow exports the tops under (hls/tcl/common.tcl)."""
    text = (ROOT / "hls" / "tcl" / "common.tcl").read_text()
    m = re.search(r"export_design .*-vendor (\S+) -library (\S+) -version (\S+)", text)
    assert m, "export_design with -vendor/-library/-version not found in hls/tcl/common.tcl"
    return f"{m.group(1)}:{m.group(2)}", m.group(3)


HLS_VLNV = _hls_export_vlnv()


def _run_bd(folder, contract_version):
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.skip("tclsh is not installed (Debian package tcl)")
    path = folder / "run_bd.tcl"  # a script file: tclsh exits non-zero on an error
    path.write_text(
        f"source {ROOT / 'tests' / 'vivado_stub.tcl'}\nsource {VIVADO / 'e2train_bd.tcl'}\ne2_create_bd {contract_version}\n"
    )
    return subprocess.run([tclsh, str(path)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def bd_log(tmp_path_factory):
    out = _run_bd(tmp_path_factory.mktemp("bd"), fixed.CONTRACT_VERSION)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_kernels_sit_where_the_manifest_says(bd_log):
    m = load_manifest()
    cells = {line.split()[-1]: line for line in bd_log if line.startswith("create_bd_cell")}
    addresses = {}
    for line in bd_log:
        hit = re.match(r"assign_bd_address .*-offset (0x[0-9a-fA-F]+) -range 64K (\S+)/s_axi_control/Reg", line)
        if hit:
            addresses[hit.group(2)] = int(hit.group(1), 16)
    assert addresses == {k.instance: k.base_address for k in m.kernels.values()}
    for k in m.kernels.values():
        assert f"{HLS_VLNV[0]}:{k.top}:{HLS_VLNV[1]}" in cells[k.instance]
        assert k.address_range == 0x10000


def test_ps_clock_ports_and_data_paths(bd_log):
    text = "\n".join(bd_log)
    assert 'apply_board_preset "1"' in text
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100" in text
    for hp, inst in enumerate(("conv_fwd", "conv_bwd_data", "conv_bwd_weight_psg")):
        assert f"CONFIG.PCW_USE_S_AXI_HP{hp} 1" in text
        assert f"connect_bd_intf_net {inst}_mem/M00_AXI processing_system7_0/S_AXI_HP{hp}" in text
        # both m_axi bundles of the kernel reach its SmartConnect, and it takes the control port
        assert f"connect_bd_intf_net {inst}/m_axi_gmem0 {inst}_mem/S00_AXI" in text
        assert f"connect_bd_intf_net {inst}/m_axi_gmem1 {inst}_mem/S01_AXI" in text
        assert f"ctrl_interconnect/M{hp:02d}_AXI {inst}/s_axi_control" in text
        assert re.search(rf"connect_bd_net processing_system7_0/FCLK_CLK0 .*{inst}/ap_clk", text)
        assert re.search(rf"connect_bd_net rst_fclk0/peripheral_aresetn .*{inst}/ap_rst_n", text)
    assert bd_log[-2:] == ["validate_bd_design ", "save_bd_design "]


def test_contract_version_register_is_where_the_register_map_says(bd_log):
    """An AXI GPIO with all inputs, fed by an xlconstant holding e2train.fixed.CONTRACT_VERSION, on the
    control interconnect's port after the kernels', at regmap.CONTRACT_REGISTER's address."""
    r = regmap.CONTRACT_REGISTER
    text = "\n".join(bd_log)
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:{r.ip} {r.instance}" in text
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:xlconstant {r.constant}" in text
    assert f"set_property -dict CONFIG.C_ALL_INPUTS 1 CONFIG.C_GPIO_WIDTH {r.width} CONFIG.C_IS_DUAL 0 {r.instance}" in text
    assert f"set_property -dict CONFIG.CONST_WIDTH {r.width} CONFIG.CONST_VAL {fixed.CONTRACT_VERSION} {r.constant}" in text
    assert f"connect_bd_net {r.constant}/dout {r.instance}/gpio_io_i" in text
    assert "set_property CONFIG.NUM_MI 4 ctrl_interconnect" in text
    assert f"connect_bd_intf_net ctrl_interconnect/M03_AXI {r.instance}/S_AXI" in text
    assert f"connect_bd_net processing_system7_0/FCLK_CLK0 ctrl_interconnect/M03_ACLK {r.instance}/s_axi_aclk" in text
    assert f"connect_bd_net rst_fclk0/peripheral_aresetn ctrl_interconnect/M03_ARESETN {r.instance}/s_axi_aresetn" in text
    placed = [re.match(r"assign_bd_address .*-offset (0x[0-9a-fA-F]+) -range 64K (\S+)/S_AXI/Reg", line) for line in bd_log]
    assert [(m.group(2), int(m.group(1), 16)) for m in placed if m] == [(r.instance, r.base_address)]
    assert r.address_range == 0x10000 and r.offset == 0  # GPIO_DATA of channel 1
    # away from every kernel's registers
    for k in load_manifest().kernels.values():
        assert k.base_address + k.address_range <= r.base_address or r.base_address + r.address_range <= k.base_address


@pytest.mark.parametrize("bad", ["v2", "0", "{}"])
def test_block_design_needs_a_contract_version(tmp_path, bad):
    out = _run_bd(tmp_path, bad)
    assert out.returncode != 0 and "contract version must be a positive integer" in out.stderr


@pytest.mark.vivado
def test_vivado_build_matches_the_manifest(tmp_path):
    if shutil.which("vivado") is None:
        pytest.skip("vivado is not on PATH")
    out = tmp_path / "bitstreams"
    # build.sh records into a copy of the manifest, so that the test leaves the repository's untouched
    manifest = tmp_path / "manifest.json"
    shutil.copy(ROOT / "bitstreams" / "manifest.json", manifest)
    env = dict(os.environ, PYTHON=sys.executable, E2TRAIN_MANIFEST=str(manifest))
    subprocess.run([str(VIVADO / "build.sh"), str(out)], check=True, env=env, timeout=3 * 3600)
    verify_bitstream(out / "e2train.bit", load_manifest(manifest))


def _run_build_tcl(tmp_path, env_extra=None):
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.skip("tclsh is not installed (Debian package tcl)")
    out = tmp_path / "out"
    script = (
        f"source {ROOT / 'tests' / 'vivado_stub.tcl'}\n"
        f"set argv [list {out} 2 {fixed.CONTRACT_VERSION} /ip/conv_fwd /ip/conv_bwd_data /ip/conv_bwd_weight_psg]\n"
        f"source {VIVADO / 'build.tcl'}\n"
    )
    env = dict(os.environ, **(env_extra or {}))
    path = tmp_path / "run_build.tcl"  # a script file: tclsh exits non-zero on an error (stdin would not)
    path.write_text(script)
    return out, subprocess.run([tclsh, str(path)], capture_output=True, text=True, timeout=60, env=env)


def test_build_script_flow_with_stand_ins(tmp_path):
    out, res = _run_build_tcl(tmp_path)
    assert res.returncode == 0, res.stderr
    log = res.stdout
    assert "create_project e2train" in log and "-part xc7z020clg484-1" in log
    assert "set_property board_part avnet.com:zedboard:part0:1.4 e2train" in log  # the highest version installed
    assert "set_property ip_repo_paths /ip/conv_fwd /ip/conv_bwd_data /ip/conv_bwd_weight_psg e2train" in log
    assert f"add_files -fileset constrs_1 -norecurse {VIVADO / 'e2train.xdc'}" in log
    assert "launch_runs impl_1 -to_step write_bitstream -jobs 2" in log
    assert (out / "e2train.bit").read_text() == "stub e2train_wrapper.bit"
    assert (out / "e2train.hwh").read_text() == "stub e2train.hwh"
    assert f"CONFIG.CONST_VAL {fixed.CONTRACT_VERSION} contract_version_value" in log  # the version argument reaches the design
    assert f"(contract v{fixed.CONTRACT_VERSION})" in log


FAKE_VIVADO = """#!{python}
# Stands in for vivado in build.sh: notes its arguments, writes the bit and hwh that build.tcl would
# (the hwh holding the contract version it was given).
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from board_fixtures import write_hwh
from e2train.board.manifest import load_manifest
args = sys.argv[1:]
Path({argfile!r}).write_text(json.dumps(args))
out, jobs, contract = args[args.index("-tclargs") + 1 : args.index("-tclargs") + 4]
Path(out, "e2train.bit").write_bytes(b"fake bitstream")
write_hwh(Path(out, "e2train.hwh"), load_manifest({manifest!r}, check_contract=False), contract_version=int(contract))
"""


def test_build_sh_builds_for_this_contract_and_records_it(tmp_path):
    """build.sh reads the version from e2train.fixed, passes it to build.tcl and records it in the manifest."""
    bin_dir, out, argfile = tmp_path / "bin", tmp_path / "out", tmp_path / "vivado_args.json"
    bin_dir.mkdir()
    manifest = tmp_path / "manifest.json"
    raw = json.loads((ROOT / "bitstreams" / "manifest.json").read_text())
    del raw["contract_version"]  # a manifest from before the field: the build stamps it
    manifest.write_text(json.dumps(raw))
    vivado = bin_dir / "vivado"
    vivado.write_text(FAKE_VIVADO.format(python=sys.executable, tests=str(ROOT / "tests"), argfile=str(argfile), manifest=str(manifest)))
    vivado.chmod(0o755)
    env = dict(
        os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHON=sys.executable, E2TRAIN_MANIFEST=str(manifest),
        E2TRAIN_HLS_IP="/ip/a /ip/b /ip/c", JOBS="2", PYTHONPATH=os.pathsep.join([str(ROOT / "host"), os.environ.get("PYTHONPATH", "")]),
    )
    res = subprocess.run([str(VIVADO / "build.sh"), str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    args = json.loads(argfile.read_text())
    assert args[args.index("-tclargs") + 1 :] == [str(out), "2", str(fixed.CONTRACT_VERSION), "/ip/a", "/ip/b", "/ip/c"]
    m = load_manifest(manifest)
    assert m.contract_version == fixed.CONTRACT_VERSION and m.files["bit"]["sha256"]
    verify_bitstream(out / "e2train.bit", m)


def test_build_script_without_zedboard_files_says_so(tmp_path):
    _, res = _run_build_tcl(tmp_path, {"E2_STUB_NO_BOARD": "1"})
    assert res.returncode != 0 and "no ZedBoard board files in this Vivado" in res.stderr
