"""What a run says about its scores: per-step verdicts and figures, warnings on too-few data, the
lag flag in metrics.json, per-model settings, interval bounds in predictions.csv, the trading table."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from rich.console import Console

from stockrnn import evaluate, load_prices, make_forecaster, model_config
from stockrnn.backtest import backtest
from stockrnn.outputs import write_evaluation
from stockrnn.tables import print_table

from conftest import TINY, make_prices


def ridge(**extra):
    return make_forecaster("ridge", model_config("ridge", window=5, **extra))


def printed(evaluation) -> str:
    console = Console(file=io.StringIO(), record=True, width=200)
    print_table(console, evaluation)
    return console.export_text()


@pytest.fixture(scope="module")
def prices():
    return load_prices(make_prices(700, seed=11))


@pytest.fixture(scope="module")
def multi_step(prices):
    return evaluate(prices, [ridge(horizon=3, val_fraction=0.2)], test_start=prices.index[600])


def test_multi_step_run_prints_every_step_and_writes_error_by_step(multi_step, tmp_path):
    text = printed(multi_step)
    assert "step 1 of 3" in text and "skill against persistence by step" in text
    for step in multi_step.metrics["models"]["ridge"]["by_step"]:
        assert f"{step['skill']:+.3f} ({step['dm_pvalue']:.3f})" in text
    verdict = multi_step.verdict("ridge")
    assert "step 1" in verdict or "every step 1-3" in verdict
    assert f"ridge: {verdict}" in " ".join(text.split())
    out = write_evaluation(multi_step, tmp_path / "run")
    assert (out / "error_by_step.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(out / "predictions.csv")
    bands = ["ridge_lo80", "ridge_hi80", "ridge_lo95", "ridge_hi95"]
    assert list(table.columns[:4]) == ["origin", "date", "step", "actual"] and set(bands) <= set(table.columns)
    assert (table["ridge_lo80"] <= table["ridge"]).all() and (table["ridge"] <= table["ridge_hi80"]).all()


def test_horizon_one_writes_bounds_in_the_wide_table_and_no_error_by_step(prices, tmp_path):
    result = evaluate(prices, [ridge(val_fraction=0.2)], test_start=prices.index[600])
    out = write_evaluation(result, tmp_path / "run")
    assert not (out / "error_by_step.png").exists()
    table = pd.read_csv(out / "predictions.csv")
    assert list(table.columns[:4]) == ["date", "actual", "ridge", "persistence"]
    actual = table["actual"]
    inside = ((actual >= table["ridge_lo80"]) & (actual <= table["ridge_hi80"])).mean()
    assert inside == pytest.approx(result.metrics["models"]["ridge"]["coverage_80"])  # the bounds of the coverage


def test_settings_list_only_the_fields_each_model_uses(multi_step):
    models = multi_step.metrics["settings"]["models"]
    assert models["persistence"] == {"target": "high", "horizon": 3}
    assert set(models["ridge"]) == {"target", "window", "horizon", "features", "val_fraction", "alpha"}
    assert models["ridge"]["alpha"] > 0
    small = load_prices(make_prices(120, seed=1))
    network = make_forecaster("lstm", model_config("lstm", **TINY, ensemble=1))
    lstm = evaluate(small, [network], test_start=small.index[100])
    assert {"units", "epochs", "optimizer", "ensemble"} <= set(lstm.metrics["settings"]["models"]["lstm"])


def test_backtest_settings_carry_the_penalty_of_every_fold(prices):
    result = backtest(prices, [ridge()], test_start=prices.index[600], refit_every=50)
    entry = result.metrics["settings"]["models"]["ridge"]
    assert len(entry["alpha_by_fold"]) == 2 and "units" not in entry
    assert result.metrics["data"]["train_windows"] == {"ridge": 600 - 5 - 1 + 1}


def test_enough_data_has_no_warnings(multi_step):
    data = multi_step.metrics["data"]
    assert data["warnings"] == [] and data["small_train"] == [] and data["short_test"] is False
    assert data["train_windows"] == {"ridge": 600 - 5 - 3 + 1}


def test_tiny_data_is_called_tiny():
    """292 rows with the default 252-day test: 40 training rows, a handful of windows."""
    prices = load_prices(make_prices(292, seed=3))
    result = evaluate(prices, [ridge()])
    data = result.metrics["data"]
    assert data["train_windows"] == {"ridge": 40 - 5}
    assert data["small_train"] == ["ridge"] and data["short_test"] is False
    assert "ridge trained on only 35 windows" in data["warnings"][0]
    assert "no intervals for ridge, persistence (blank cov80/cov95)" in data["warnings"][1]
    assert "only 35 training windows: too few to trust" in result.verdict("ridge")
    text = " ".join(printed(result).split())
    assert "warning: ridge trained on only 35 windows" in text and "blank cov80/cov95" in text


def test_a_short_test_is_called_short(prices):
    result = evaluate(prices, [ridge()], test_start=prices.index[-10])
    assert result.metrics["data"]["short_test"] is True
    assert "only 10 test days: too few to trust" in result.verdict("ridge")
    assert "only 10 test days scored (fewer than 60)" in result.metrics["data"]["warnings"][0]


def test_lag_flag_in_metrics_and_table(multi_step):
    persistence = multi_step.metrics["models"]["persistence"]
    assert persistence["follows_price"] is True and persistence["best_lag"] is None
    assert "persistence: the benchmark: repeats the last value" in printed(multi_step)
    assert "repeats" in printed(multi_step)


def test_trading_table_has_no_persistence_row_and_a_sharpe_interval(prices, tmp_path):
    result = evaluate(prices, [ridge(target="close")], test_start=prices.index[500])
    assert result.metrics["models"]["persistence"]["trading"] is None
    trading = result.metrics["models"]["ridge"]["trading"]
    assert trading["sharpe_lo"] < trading["sharpe_hi"]
    text = printed(result)
    rows = [line for line in text.splitlines() if line.startswith(("│ persistence", "│ ridge", "│ buy-and-hold"))]
    assert [r.split()[1] for r in rows] == ["ridge", "persistence", "ridge", "buy-and-hold"]  # score table, trading
    assert f"{trading['sharpe_lo']:.2f} .. {trading['sharpe_hi']:.2f}" in text
    out = write_evaluation(result, tmp_path / "run")
    saved = json.loads((out / "metrics.json").read_text())["models"]["ridge"]["trading"]
    assert saved["sharpe_lo"] == pytest.approx(trading["sharpe_lo"])
