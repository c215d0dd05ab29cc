"""``e2train board info | flash | selftest`` on the simulated board, and their errors."""

import json

import pytest
from board_fixtures import bitstream_folder

from e2train import fixed
from e2train.board import regmap
from e2train.cli import main


def test_board_selftest_on_the_simulated_board(capsys):
    assert main(["board", "selftest", "--device", "sim", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "board selftest on simulated ZedBoard" in out
    assert sum(line.endswith(" ok") for line in out.splitlines()) == 15 and "MISMATCH" not in out
    assert "board selftest: ok (12 kernel runs" in out


def test_board_info_names_the_design_and_the_kernels(capsys, tmp_path):
    manifest, bit = bitstream_folder(tmp_path)
    assert main(["board", "info", "--device", "sim", "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert f"register map v{regmap.REGMAP_VERSION}, contract v{fixed.CONTRACT_VERSION}," in out and "xc7z020clg484-1 at 100 MHz" in out
    assert f"contract v{fixed.CONTRACT_VERSION} (read from the overlay's contract_version register)" in out
    assert "e2train.bit: matches the manifest" in out
    assert "conv_bwd_weight_psg  conv_bwd_weight_psg (conv_bwd_weight_psg_top) at 0x40020000" in out
    bit.write_bytes(b"other")
    assert main(["board", "info", "--device", "sim", "--manifest", str(manifest)]) == 0
    assert "e2train.bit: DOES NOT match the manifest" in capsys.readouterr().out


def test_board_flash_checks_the_bitstream(capsys, tmp_path):
    manifest, bit = bitstream_folder(tmp_path)
    assert main(["board", "flash", "--device", "sim", "--manifest", str(manifest)]) == 0
    assert f"loaded {bit} on the simulated board" in capsys.readouterr().out
    bit.write_bytes(b"other")
    assert main(["board", "flash", "--device", "sim", "--manifest", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("e2train board: error: ") and "does not match the manifest" in err
    assert main(["board", "flash", "--device", "sim", "--manifest", str(manifest), "--no-verify"]) == 0
    capsys.readouterr()
    raw = json.loads(manifest.read_text())
    raw["contract_version"] = 1
    manifest.write_text(json.dumps(raw))
    assert main(["board", "flash", "--device", "sim", "--manifest", str(manifest), "--no-verify"]) == 1
    assert f"bitstream built for contract v1, this e2train speaks contract v{fixed.CONTRACT_VERSION}" in capsys.readouterr().err


def test_board_without_action_prints_help(capsys):
    assert main(["board"]) == 2
    assert "info" in capsys.readouterr().out


def test_manifest_record_and_verify_commands(capsys, tmp_path):
    from e2train.board.manifest import main as manifest_main

    manifest, bit = bitstream_folder(tmp_path, record=False)
    assert manifest_main(["verify", str(bit), "--manifest", str(manifest)]) == 1
    assert "records no sha256 for e2train.bit" in capsys.readouterr().err
    assert manifest_main(["record", str(bit), "--manifest", str(manifest)]) == 0
    assert "e2train.bit: sha256 " in capsys.readouterr().out
    assert manifest_main(["verify", str(bit), "--manifest", str(manifest)]) == 0
    assert "matches the manifest" in capsys.readouterr().out
    bit.with_suffix(".hwh").unlink()
    assert manifest_main(["record", str(bit), "--manifest", str(manifest)]) == 1
    assert "cannot record" in capsys.readouterr().err


def test_board_commands_work_without_torch():
    """On the ZedBoard there is no PyTorch: the board commands (and the simulated board) must not need it."""
    import os
    import subprocess
    import sys

    # sys.modules["torch"] = None: how Python marks a module as absent (import fails, find_spec finds none)
    env = dict(os.environ)
    run = [sys.executable, "-c",
           "import sys; sys.modules['torch'] = None; from e2train.cli import main; sys.exit(main(sys.argv[1:]))"]
    res = subprocess.run(run + ["board", "selftest", "--device", "sim"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "board selftest: ok" in res.stdout
    res = subprocess.run(run + ["--help"], capture_output=True, text=True, env=env, timeout=300)
    # the training commands are left out and named (needs torch; on Python 3.10 first tomllib)
    assert "not available here: training (needs " in res.stdout
