"""Fit and predict: next weekdays with 80% and 95% bounds, through the API and the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from stockrnn import ConfigError, load, load_prices, make_forecaster, model_config

from conftest import TINY, make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--epochs", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def friday_prices():
    frame = make_prices(300, seed=8, start="2019-01-01")
    frame = frame[frame.index <= "2020-02-14"]  # ends on a Friday
    assert frame.index[-1].weekday() == 4
    return load_prices(frame)


def test_predict_skips_the_weekend_and_gives_bounds(friday_prices):
    model = make_forecaster("lstm", model_config("lstm", **TINY, horizon=5, ensemble=1)).fit(friday_prices)
    table = model.predict(friday_prices, horizon=5)
    assert list(table.index) == list(pd.date_range("2020-02-17", "2020-02-21"))  # Monday .. Friday
    assert list(table.columns) == ["forecast", "lo80", "hi80", "lo95", "hi95"]
    assert (table["lo95"] < table["lo80"]).all() and (table["lo80"] < table["forecast"]).all()
    assert (table["forecast"] < table["hi80"]).all() and (table["hi80"] < table["hi95"]).all()
    width = table["hi95"] - table["lo95"]
    assert width.is_monotonic_increasing and width.iloc[-1] > width.iloc[0]
    short = model.predict(friday_prices, horizon=2)
    pd.testing.assert_frame_equal(short, table.iloc[:2], check_freq=False)
    with pytest.raises(ConfigError, match="trained for 1..5 steps"):
        model.predict(friday_prices, horizon=6)


def test_cli_fit_predict_five_weekdays_with_intervals(cli, friday_prices, tmp_path):
    data = tmp_path / "AAA.csv"
    friday_prices.frame.to_csv(data, float_format="%.17g")
    directory = tmp_path / "model"
    code, stdout, err = cli("fit", "--data", data, "--model", "lstm", "--horizon", "5", "--save", directory,
                            "--quiet", *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    assert "lo95" in stdout
    out = tmp_path / "next.csv"
    code, stdout, err = cli("predict", directory, "--data", data, "--horizon", "5", "--out", out)
    assert code == 0, err
    table = pd.read_csv(out, parse_dates=["date"])
    assert list(table.columns) == ["date", "forecast", "lo80", "hi80", "lo95", "hi95"]
    assert list(table["date"]) == list(pd.date_range("2020-02-17", "2020-02-21"))
    expected = load(directory).predict(load_prices(data), 5)
    assert table["hi95"].to_numpy() == pytest.approx(expected["hi95"].to_numpy(), rel=1e-5)
    assert "2020-02-21" in stdout and "hi80" in stdout


def test_cli_predict_beyond_the_trained_horizon_writes_nothing(cli, friday_prices, tmp_path):
    data = tmp_path / "AAA.csv"
    friday_prices.frame.to_csv(data)
    directory = tmp_path / "model"
    code, _, err = cli("fit", "--data", data, "--model", "ridge", "--horizon", "2", "--save", directory, "--quiet")
    assert code == 0, err
    out = tmp_path / "next.csv"
    code, stdout, err = cli("predict", directory, "--data", data, "--horizon", "5", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "horizon 5 is not available: the model was trained for 1..2 steps" in err
    assert not out.exists() and list(tmp_path.glob(".next.csv*")) == []


@pytest.fixture
def ridge_on_aaa(cli, friday_prices, tmp_path):
    """A ridge model fitted on AAA.csv (with volume), and the frame it was fitted on."""
    frame = friday_prices.frame.rename(columns=str.capitalize)
    frame.index.name = "Date"
    frame.to_csv(tmp_path / "AAA.csv", float_format="%.17g")
    directory = tmp_path / "model"
    code, _, err = cli("fit", "--data", tmp_path / "AAA.csv", "--model", "ridge", "--save", directory, "--quiet",
                       "--window", "5")  # fmt: skip
    assert code == 0, err
    return directory, frame


def test_cli_predict_from_the_training_data_says_nothing(cli, ridge_on_aaa, tmp_path):
    directory, _ = ridge_on_aaa
    code, _, err = cli("predict", directory, "--data", tmp_path / "AAA.csv")
    assert code == 0 and err == ""
    fitted = load(directory).fitted_
    assert fitted["name"] == "AAA" and fitted["source"] == str(tmp_path / "AAA.csv")


def test_cli_predict_warns_in_one_line_on_another_ticker(cli, ridge_on_aaa, tmp_path):
    directory, frame = ridge_on_aaa
    frame.to_csv(tmp_path / "BBB.csv", float_format="%.17g")
    code, stdout, err = cli("predict", directory, "--data", tmp_path / "BBB.csv")
    assert code == 0 and "forecast" in stdout
    assert err.count("\n") == 1 and err.startswith("stockrnn: warning: the ridge model was trained on AAA (")
    assert "the data is BBB" in err


def test_cli_predict_warns_when_the_training_rows_were_revised(cli, ridge_on_aaa, tmp_path):
    directory, frame = ridge_on_aaa
    revised = frame.copy()
    revised.iloc[10, revised.columns.get_loc("Close")] *= 1.001
    revised.to_csv(tmp_path / "AAA.csv", float_format="%.17g")
    code, _, err = cli("predict", directory, "--data", tmp_path / "AAA.csv")
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("stockrnn: warning: ") and "differ from those the ridge model was trained on" in err


def test_cli_predict_refuses_data_that_ends_before_the_training_end(cli, ridge_on_aaa, tmp_path):
    directory, frame = ridge_on_aaa
    frame.iloc[:-20].to_csv(tmp_path / "AAA_old.csv", float_format="%.17g")
    out = tmp_path / "next.csv"
    code, _, err = cli("predict", directory, "--data", tmp_path / "AAA_old.csv", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    last, end = frame.index[-21], frame.index[-1]
    assert f"the data ends on {last:%Y-%m-%d}, before the model's training end {end:%Y-%m-%d}" in err
    assert not out.exists()


def test_cli_predict_without_a_column_the_model_needs_is_one_line(cli, ridge_on_aaa, tmp_path):
    directory, frame = ridge_on_aaa
    frame.drop(columns="Volume").to_csv(tmp_path / "AAA.csv", float_format="%.17g")
    code, _, err = cli("predict", directory, "--data", tmp_path / "AAA.csv")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"stockrnn: error: {tmp_path / 'AAA.csv'}: the ridge model was trained on inputs")
    assert "volume_relative" in err
