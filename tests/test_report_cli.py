"""report.html from the commands: evaluate, backtest, predict --out DIR and explain write it with the
command line that made them; --no-report leaves it out."""

from __future__ import annotations

import pandas as pd
import pytest

from stockrnn.files import OUTPUT_MARK

from conftest import make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--epochs", "2", "--batch-size", "16", "--quiet"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "AAA.csv"
    make_prices(400).round(4).to_csv(path)
    return path


def test_evaluate_writes_a_report_naming_its_command(cli, data, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("evaluate", "--data", data, "--models", "lstm,ridge", "--test-start", "2021-03-01",
                       "--out", out, *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "stockrnn evaluate --data" in html and "--test-start 2021-03-01" in html
    assert html.index('id="verdict"') < html.index('id="score-table"')


def test_no_report_leaves_it_out(cli, data, tmp_path):
    for command, extra in (("evaluate", []), ("backtest", ["--refit-every", "0"])):
        out = tmp_path / command
        code, stdout, err = cli(command, "--data", data, "--models", "ridge", "--test-start", "2021-03-01",
                                "--out", out, "--no-report", *extra, *TINY_ARGS)  # fmt: skip
        assert code == 0, err
        assert "metrics.json" in {p.name for p in out.iterdir()} and not (out / "report.html").exists()
        assert "report.html" not in stdout


def test_predict_into_a_folder_writes_forecast_and_report(cli, data, tmp_path):
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", data, "--model", "ridge", "--horizon", "3", "--save", model, *TINY_ARGS)
    assert code == 0, err
    out = tmp_path / "next"
    code, _, err = cli("predict", model, "--data", data, "--horizon", "3", "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARK, "forecast.csv", "report.html"]
    forecast = pd.read_csv(out / "forecast.csv")
    assert list(forecast.columns[:2]) == ["date", "forecast"] and len(forecast) == 3
    html = (out / "report.html").read_text()
    assert "stockrnn forecast" in html and "stockrnn predict" in html and forecast["date"].iloc[0] in html


def test_explain_report_is_the_full_page_with_the_explanation(cli, data, tmp_path):
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", data, "--model", "gru", "--save", model, *TINY_ARGS)
    assert code == 0, err
    out = tmp_path / "explained"
    code, _, err = cli("explain", model, "--data", data, "--out", out)
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "stockrnn explanation" in html and 'id="explain"' in html and "Inside the GRU" in html
    assert html.count('id="explain"') == 1 and "stockrnn explain" in html
