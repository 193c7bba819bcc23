"""Walk-forward backtests on a small series: refit dates, fresh fits on past data only, no
look-ahead through any refit, folds scored together and one by one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stockrnn import ConfigError, load_prices, make_forecaster, model_config
from stockrnn.backtest import backtest, refit_positions
from stockrnn.files import OUTPUT_MARK
from stockrnn.forecaster import Forecaster

from conftest import TINY, make_prices

ROWS, TEST_START = 160, 100


def tiny_lstm():
    return make_forecaster("lstm", model_config("lstm", **TINY, ensemble=1, seed=3))


def ridge():
    return make_forecaster("ridge", model_config("ridge", window=5))


@pytest.fixture(scope="module")
def prices():
    return load_prices(make_prices(ROWS, seed=6))


def test_refit_positions():
    assert refit_positions(100, 159, 25) == [100, 125, 150]
    assert refit_positions(100, 159, 0) == [100]
    assert refit_positions(100, 100, 5) == [100]


def test_refit_dates_and_training_spans(prices, monkeypatch):
    calls = []
    original = Forecaster.fit

    def spy(self, data, train_start=None, train_end=None, **hooks):
        calls.append((self.name, self, pd.Timestamp(train_start), pd.Timestamp(train_end)))  # kept alive
        return original(self, data, train_start, train_end, **hooks)

    monkeypatch.setattr(Forecaster, "fit", spy)
    done = []
    result = backtest(prices, [tiny_lstm(), ridge()], test_start=prices.index[TEST_START], refit_every=25,
                      on_fold=lambda i, n, fold: done.append((i, n)))  # fmt: skip
    index = prices.index
    assert [f["test_start"] for f in result.folds] == [f"{index[p]:%Y-%m-%d}" for p in (100, 125, 150)]
    assert [f["test_end"] for f in result.folds] == [f"{index[p]:%Y-%m-%d}" for p in (124, 149, 159)]
    assert done == [(0, 3), (1, 3), (2, 3), (3, 3)]
    # Each fold fits every model afresh (a new object: new scaler, new weights) on rows before it.
    for name in ("lstm", "ridge", "persistence"):
        mine = [c for c in calls if c[0] == name]
        assert [c[3] for c in mine] == [index[99], index[124], index[149]]
        assert all(c[2] == index[0] for c in mine) and len({id(c[1]) for c in mine}) == 3
    lstms = [c[1] for c in calls if c[0] == "lstm"]
    means = [m.features_.input_scaler_.mean_ for m in lstms]  # the scaler is refitted on each span
    assert not np.allclose(means[0], means[1]) and lstms[0].network_ is not lstms[1].network_
    assert result.models == ["lstm", "ridge", "persistence"]
    assert list(result.predictions["fold"].unique()) == [1, 2, 3]
    assert (result.wide().index == index[TEST_START:]).all()


def test_rolling_window_mode_trains_on_the_last_days(prices, monkeypatch):
    spans = []
    original = Forecaster.fit

    def spy(self, data, train_start=None, train_end=None, **hooks):
        spans.append((pd.Timestamp(train_start), pd.Timestamp(train_end)))
        return original(self, data, train_start, train_end, **hooks)

    monkeypatch.setattr(Forecaster, "fit", spy)
    result = backtest(prices, [ridge()], test_start=prices.index[TEST_START], refit_every=30,
                      window_mode="rolling", train_days=60)  # fmt: skip
    index = prices.index
    assert set(spans) == {(index[40], index[99]), (index[70], index[129])}
    assert [f["train_rows"] for f in result.folds] == [60, 60]


def test_refit_every_zero_equals_a_holdout_evaluation(prices):
    from stockrnn import evaluate

    once = backtest(prices, [ridge()], test_start=prices.index[TEST_START], refit_every=0)
    holdout = evaluate(prices, [ridge(), "persistence"], test_start=prices.index[TEST_START])
    assert len(once.folds) == 1
    pd.testing.assert_frame_equal(once.wide(), holdout.wide())
    assert once.metrics["models"]["ridge"]["rmse"] == holdout.metrics["models"]["ridge"]["rmse"]


def test_no_look_ahead_through_refits(prices):
    """Changing every price from day t on leaves every forecast for days up to t unchanged,
    although later folds are refitted on data that now differs."""
    t = 130
    base = backtest(prices, [tiny_lstm(), ridge()], test_start=prices.index[TEST_START], refit_every=20)
    frame = prices.frame.copy()
    frame.iloc[t:] *= np.linspace(1.5, 3.0, ROWS - t)[:, None]
    changed = backtest(load_prices(frame), [tiny_lstm(), ridge()], test_start=prices.index[TEST_START],
                       refit_every=20)  # fmt: skip
    keep = base.predictions["date"] <= prices.index[t]
    columns = [c for c in base.predictions.columns if c != "actual"]
    pd.testing.assert_frame_equal(base.predictions.loc[keep, columns], changed.predictions.loc[keep, columns])
    after = base.predictions["date"] > prices.index[t + 1]
    assert not np.allclose(base.predictions.loc[after, "lstm"], changed.predictions.loc[after, "lstm"])


def test_scores_together_and_per_fold(prices):
    calibrated = make_forecaster("ridge", model_config("ridge", window=5, val_fraction=0.3))  # >= 19 tail windows
    result = backtest(prices, [calibrated], test_start=prices.index[TEST_START], refit_every=30)
    table = result.wide()
    error = table["ridge"] - table["actual"]
    assert result.metrics["models"]["ridge"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(error**2))))
    first = result.folds[0]["models"]["ridge"]
    assert first["n"] == 30 and first["rmse"] == pytest.approx(float(np.sqrt(np.mean(error.iloc[:30] ** 2))))
    assert 0 < result.metrics["models"]["ridge"]["coverage_80"] < result.metrics["models"]["ridge"]["coverage_95"]
    assert result.metrics["models"]["persistence"]["coverage_80"] is None  # 10% of 99 windows: too few
    assert result.metrics["settings"]["refit_every"] == 30


def test_multi_step_backtest_keeps_each_forecast_with_the_fold_that_made_it(prices):
    model = make_forecaster("ridge", model_config("ridge", window=5, horizon=3))
    result = backtest(prices, [model], test_start=prices.index[TEST_START], refit_every=25)
    table = result.predictions
    step3 = table[table["step"] == 3]
    origin_pos = prices.index.get_indexer(step3["origin"])
    assert (prices.index[origin_pos + 3] == step3["date"]).all()
    # Fold 1 (trained up to day 99) forecasts days 100..124 from origins 99..123; its origin-123
    # forecast three steps ahead, for day 126, lies among fold 2's dates but stays fold 1's.
    row = step3[step3["origin"] == prices.index[123]].iloc[0]
    assert row["fold"] == 1 and row["date"] == prices.index[126]
    assert step3[step3["origin"] == prices.index[124]].iloc[0]["fold"] == 2
    assert [s["step"] for s in result.metrics["models"]["ridge"]["by_step"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(refit_every=-1), "--refit-every must be 0"),
        (dict(window_mode="rolling"), "needs --train-days"),
        (dict(window_mode="sideways"), "--window-mode must be"),
        (dict(window_mode="rolling", train_days=3), "too few training rows"),
        (dict(train_days=60), "--train-days N needs --window-mode rolling"),  # it was ignored, yet recorded
        # more rows than the history holds gave an expanding run recorded as rolling, with no word
        (dict(window_mode="rolling", train_days=5000), "--train-days 5000 is more than the .* training rows"),
        (dict(train_start="after"), "the train start .* is not before the test start"),
    ],
)
def test_bad_settings(prices, kwargs, message):
    if kwargs.get("train_start") == "after":
        kwargs = {"train_start": prices.index[TEST_START + 5]}
    with pytest.raises(ConfigError, match=message):
        backtest(prices, ["ridge"], test_start=prices.index[TEST_START], **kwargs)


TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--epochs", "2", "--batch-size", "16"]


def test_cli_backtest_writes_every_output(cli, prices, tmp_path):
    data = tmp_path / "AAA.csv"
    prices.frame.to_csv(data)
    out = tmp_path / "bt"
    code, stdout, err = cli("backtest", "--data", data, "--models", "gru", "--target", "close",
                            "--test-start", f"{prices.index[TEST_START]:%Y-%m-%d}", "--refit-every", "30",
                            "--horizon", "2", "--cost-bps", "10", "--out", out, "--quiet", *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {
        "metrics.json", "predictions.csv", "forecast.png", "folds.png", "error_by_step.png", "report.html",
        OUTPUT_MARK,
    }  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in metrics["folds"]] == [1, 2]
    assert set(metrics["models"]) == {"gru", "persistence", "ridge"}
    assert metrics["trading"]["cost_bps"] == 10 and len(metrics["models"]["gru"]["by_step"]) == 2
    table = pd.read_csv(out / "predictions.csv")
    assert list(table.columns) == ["origin", "date", "step", "actual", "gru", "persistence", "ridge"]
    assert "folds" in stdout and "buy-and-hold" in stdout


def test_cli_backtest_bad_input_is_one_line_and_leaves_nothing(cli, prices, tmp_path):
    data = tmp_path / "AAA.csv"
    prices.frame.to_csv(data)
    out = tmp_path / "bt"
    start = f"{prices.index[TEST_START]:%Y-%m-%d}"
    code, _, err = cli("backtest", "--data", data, "--test-start", start, "--window-mode", "rolling", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "needs --train-days" in err
    code, _, err = cli("backtest", "--data", data, "--test-start", "1990-01-01", "--out", out, "--quiet")
    assert code == 2 and "outside the data" in err
    assert not out.exists() and list(tmp_path.glob(".bt*")) == []
    code, stdout, _ = cli("backtest", "--help")
    for option in ("--refit-every", "--window-mode", "--train-days", "--horizon", "--cost-bps", "--models"):
        assert option in stdout
