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
