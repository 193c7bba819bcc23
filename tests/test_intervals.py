"""Prediction intervals: conformal calibration on the validation tail, coverage on a series with
known noise, widening with the step, the same intervals after save and load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stockrnn import evaluate, load, load_prices, make_forecaster, model_config
from stockrnn.intervals import MIN_VOLATILITY, calibrate, conformal_quantile, volatility

from conftest import TINY


def noisy_walk(rows: int, seed: int, sigma: float = 0.01) -> pd.DataFrame:
    """A random walk whose daily log moves are N(0, sigma) for close and high alike (known noise)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma, rows)))
    high = close * np.exp(np.abs(rng.normal(0, sigma / 2, rows)))
    low = close * np.exp(-np.abs(rng.normal(0, sigma / 2, rows)))
    index = pd.bdate_range("2010-01-01", periods=rows)
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close}, index=index)


@pytest.fixture(scope="module")
def walk():
    return load_prices(noisy_walk(1600, seed=11))


@pytest.fixture(scope="module")
def walk_evaluation(walk):
    models = [
        make_forecaster("lstm", model_config("lstm", **{**TINY, "val_fraction": 0.3, "ensemble": 1})),
        make_forecaster("ridge", model_config("ridge", window=5, val_fraction=0.3)),
    ]
    persistence = make_forecaster("persistence", model_config("persistence", val_fraction=0.3))
    return evaluate(walk, [*models, persistence], test_start=walk.index[1100])


@pytest.mark.parametrize("name", ["lstm", "ridge", "persistence"])
def test_coverage_on_known_noise_is_near_nominal(walk_evaluation, name):
    m = walk_evaluation.metrics["models"][name]
    assert m["coverage_80"] == pytest.approx(0.80, abs=0.06)
    assert m["coverage_95"] == pytest.approx(0.95, abs=0.04)
    assert m["by_step"][0]["coverage_80"] == m["coverage_80"]


def test_intervals_are_ordered_and_bands_are_in_the_long_table(walk_evaluation):
    bands = walk_evaluation.bands("lstm")
    point = walk_evaluation.wide()["lstm"]
    assert (bands["lo95"] < bands["lo80"]).all() and (bands["lo80"] < point).all()
    assert (point < bands["hi80"]).all() and (bands["hi80"] < bands["hi95"]).all()
    assert list(walk_evaluation.wide().columns) == ["actual", "lstm", "ridge", "persistence"]


def test_volatility_scaling_follows_a_calmer_or_stormier_market():
    """Calibrated on calm days, tested on days twice as volatile: the scaled widths keep coverage."""
    calm, storm = noisy_walk(1200, seed=3, sigma=0.005), noisy_walk(400, seed=4, sigma=0.01)
    storm = storm * (calm["close"].iloc[-1] / storm["close"].iloc[0])
    storm.index = pd.bdate_range(calm.index[-1] + pd.Timedelta(days=1), periods=len(storm))
    prices = load_prices(pd.concat([calm, storm]))
    result = evaluate(prices, [make_forecaster("persistence", model_config("persistence", val_fraction=0.3))],
                      test_start=storm.index[20])  # fmt: skip
    assert result.metrics["models"]["persistence"]["coverage_80"] == pytest.approx(0.80, abs=0.07)


def test_intervals_widen_with_the_step(walk):
    model = make_forecaster("gru", model_config("gru", **TINY, horizon=4, ensemble=1)).fit(
        walk, train_end=walk.index[999]
    )
    table = model.rolling(walk, walk.index[1000], walk.index[1050])
    for level in (80, 95):
        widths = np.column_stack([table[f"hi{level}_{k}"] / table[f"lo{level}_{k}"] for k in range(1, 5)])
        assert (np.diff(widths, axis=1) >= 0).all()
    q = model.calibration_.quantiles
    assert q[95][-1] > q[95][0] and all(a <= b for a, b in zip(q[80], q[95], strict=True))
    assert list(table.columns[:8]) == ["step_1", "step_2", "step_3", "step_4", "lo80_1", "hi80_1", "lo95_1", "hi95_1"]


def test_calibration_uses_the_validation_tail_only(walk):
    """Prices after the training span, or before its tail, leave the calibration unchanged."""
    config = model_config("ridge", window=5)
    base = make_forecaster("ridge", config).fit(walk, train_end=walk.index[999])
    frame = walk.frame.copy()
    frame.iloc[1000:] *= 3.0
    later = make_forecaster("ridge", config).fit(load_prices(frame), train_end=walk.index[999])
    assert later.calibration_ == base.calibration_
    assert base.calibration_.n == round(len(range(4, 999)) * config.val_fraction)


def test_saved_model_gives_the_same_intervals(walk, tmp_path):
    model = make_forecaster("lstm", model_config("lstm", **TINY, horizon=2, ensemble=1)).fit(walk)
    model.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "model.json").read_text())
    assert state["calibration"]["held_out"] is True and len(state["calibration"]["q95"]) == 2
    loaded = load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(walk, 2), model.predict(walk, 2), check_exact=True)
    start = walk.index[-30]
    pd.testing.assert_frame_equal(loaded.rolling(walk, start), model.rolling(walk, start), check_exact=True)


def test_conformal_quantile_rank():
    scores = np.arange(1.0, 20.0)  # 19 scores: the 95% rank ceil(20 * 0.95) = 19 is the largest
    assert conformal_quantile(scores, 95) == 19.0
    assert conformal_quantile(scores[:18], 95) is None  # too few for a finite 95% bound
    assert conformal_quantile(scores, 80) == 16.0  # ceil(20 * 0.8) = 16
    assert calibrate(np.ones((10, 1)), np.ones((10, 1)), np.ones(10), held_out=True) is None


def test_volatility_uses_past_rows_only(walk):
    frame = walk.frame.copy()
    before = volatility(frame)
    frame.iloc[500:, frame.columns.get_loc("high")] *= 1.5
    assert np.array_equal(volatility(frame)[:500], before[:500]) and not np.array_equal(volatility(frame), before)


def test_volatility_without_high_and_low_is_the_mean_absolute_close_return(walk):
    close = walk.frame[["close"]]
    expected = np.abs(np.log(close["close"]).diff()).rolling(20, min_periods=1).mean().to_numpy()
    expected = np.maximum(np.nan_to_num(expected, nan=MIN_VOLATILITY), MIN_VOLATILITY)
    np.testing.assert_allclose(volatility(close), expected, rtol=1e-12)
    assert volatility(close)[0] == MIN_VOLATILITY  # the first row has no previous close
    frame = close.copy()
    frame.iloc[500:] *= 1.5
    assert np.array_equal(volatility(frame)[:500], volatility(close)[:500])  # past rows only
