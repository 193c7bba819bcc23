"""--preset-file: a tuned best.json (or a hand-written file) sets evaluate's, fit's and backtest's
model settings; explicit options still win; --preset and --preset-file together are refused."""

from __future__ import annotations

import json

import pytest

from stockrnn import load
from stockrnn.presets import write_preset_file

from conftest import make_prices


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "AAA.csv"
    make_prices(400).round(4).to_csv(data)
    settings = {"window": 7, "units": 5, "layers": 1, "epochs": 2, "dropout": 0.1, "lr": 0.002, "batch_size": 32}
    preset = write_preset_file(tmp_path / "best.json", "gru", settings)
    return data, preset


def test_evaluate_and_fit_take_the_preset_file(cli, files, tmp_path):
    data, preset = files
    out = tmp_path / "run"
    code, _, err = cli("evaluate", "--data", data, "--models", "gru,ridge", "--test-start", "2021-03-01",
                       "--preset-file", preset, "--units", "6", "--out", out, "--quiet", "--no-report")  # fmt: skip
    assert code == 0, err
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    gru = settings["models"]["gru"]
    assert (gru["window"], gru["units"], gru["dropout"], gru["lr"], gru["batch_size"]) == (7, 6, 0.1, 0.002, 32)
    assert settings["preset_file"] == str(preset)
    code, _, err = cli("fit", "--data", data, "--model", "gru", "--preset-file", preset, "--save", tmp_path / "m",
                       "--quiet")  # fmt: skip
    assert code == 0, err
    config = load(tmp_path / "m").config
    assert (config.window, config.units, config.epochs) == (7, 5, 2)


def test_preset_and_preset_file_together_are_refused(cli, files, tmp_path):
    data, preset = files
    out = tmp_path / "b"
    code, _, err = cli("backtest", "--data", data, "--preset", "quick", "--preset-file", preset, "--out", out)
    assert code == 2 and err.strip() == "stockrnn: error: give --preset or --preset-file, not both"
    assert not (tmp_path / "b").exists()


def tuned(tmp_path, val_start: str, val_end: str):
    """A best.json as `tune` writes it, whose settings were chosen on val_start .. val_end."""
    settings = {"window": 7, "units": 5, "layers": 1, "epochs": 2}
    score = {"objective": 0.9, "val_start": val_start, "val_end": val_end}
    return write_preset_file(tmp_path / "tuned.json", "gru", settings, score=score, study={"name": "stockrnn"})


@pytest.mark.parametrize(
    ("command", "extra"),
    [("evaluate", ()), ("backtest", ("--refit-every", "0")), ("evaluate", ("--test-start", "2021-03-01"))],
)
def test_a_test_inside_the_span_a_preset_was_tuned_on_is_refused_before_training(cli, files, tmp_path, command, extra):
    """Settings chosen on 2020-11-02 .. 2021-03-31 scored on a test from 2021-03-01 (or from the
    default start, the last 252 rows) would be scored on the days they were chosen on."""
    data, _ = files
    preset = tuned(tmp_path, "2020-11-02", "2021-03-31")
    out = tmp_path / "run"
    code, _, err = cli(command, "--data", data, "--models", "gru", "--preset-file", preset, "--out", out, "--quiet",
                       *extra)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "tune chose these settings on 2020-11-02 .. 2021-03-31" in err and "tune with --test-start" in err
    assert not out.exists()


def test_a_panel_test_inside_the_tuned_span_is_refused_and_one_after_it_runs(cli, folder, tmp_path):
    preset = tuned(tmp_path, "2020-06-01", "2020-09-30")
    args = ("--data", folder, "--models", "ridge", "--preset-file", preset, "--quiet", "--no-report")
    code, _, err = cli("evaluate", *args, "--test-start", "2020-09-30", "--out", tmp_path / "inside")
    assert code == 2 and err.count("\n") == 1 and "this test starts on 2020-09-30" in err
    assert not (tmp_path / "inside").exists()
    code, _, err = cli("evaluate", *args, "--test-start", "2020-10-01", "--out", tmp_path / "after")
    assert code == 0, err
    assert (tmp_path / "after" / "panel.json").exists()


def test_only_a_tuned_span_is_checked(tmp_path):
    """A hand-written preset (no score) passes; a tuned one passes from the day after its span."""
    from datetime import date

    from stockrnn.errors import ConfigError
    from stockrnn.presets import check_tuned_before

    plain = write_preset_file(tmp_path / "plain.json", "gru", {"window": 7})
    check_tuned_before(plain, date(2000, 1, 1))
    preset = tuned(tmp_path, "2020-06-01", "2020-09-30")
    check_tuned_before(preset, date(2020, 10, 1))
    with pytest.raises(ConfigError, match="on 2020-06-01 .. 2020-09-30, and this test starts on 2020-06-01"):
        check_tuned_before(preset, date(2020, 6, 1))
