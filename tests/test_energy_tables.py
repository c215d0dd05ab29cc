"""Energy tables: the published Horowitz constants, estimate labels, TOML round trip and bad files."""

import pytest

from e2train.energy.tables import HOROWITZ45, ZEDBOARD, load_table


def test_horowitz_points_and_interpolation():
    t = HOROWITZ45
    assert (t.int_mult(8, 8), t.int_mult(32, 32), t.int_add(8), t.int_add(32)) == (0.2, 3.1, 0.03, pytest.approx(0.1))
    assert (t.fp_mult(32), t.fp_add(32), t.fp_mult(16), t.fp_add(16)) == (3.7, 0.9, 1.1, 0.4)
    assert t.int_mult(4, 10) == pytest.approx(0.125) and t.int_mult(16, 8) == pytest.approx(0.2 + 64 / 960 * 2.9)
    assert t.status["int_mult_8"] == "published" and t.estimated() == ["dram_pj_per_64b", "static_watts"]


def test_zedboard_constants_are_all_labelled_estimates():
    assert set(ZEDBOARD.estimated()) == set(ZEDBOARD.status) and "calibrate" in ZEDBOARD.source


def test_toml_round_trip_and_partial_files(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text(ZEDBOARD.to_toml())
    assert load_table(str(p)) == ZEDBOARD
    p.write_text('name = "mine"\nbase = "horowitz45"\ndram_pj_per_64b = 1300.0\n[status]\ndram_pj_per_64b = "calibrated"\n')
    t = load_table(str(p))
    assert t.name == "mine" and t.dram_pj_per_64b == 1300.0 and t.int_mult_8 == 0.2
    assert t.status["dram_pj_per_64b"] == "calibrated"


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\nint_mult_8 = -1.0\n", "non-negative"),
    ("name = 'x'\nbogus = 1\n", "unknown energy-table keys"),
    ("name = \n", "not valid TOML"),
])
def test_bad_table_files_are_refused(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_table(str(p))
    with pytest.raises(ValueError, match="no energy table"):
        load_table(str(tmp_path / "missing.toml"))
