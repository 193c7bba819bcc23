"""Scores against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stockrnn.metrics import best_lag, diebold_mariano, direction_accuracy, mae, mape, rmse, score, skill


def test_basic_errors():
    actual, forecast = np.array([100.0, 200.0]), np.array([110.0, 190.0])
    assert rmse(actual, forecast) == pytest.approx(10.0)
    assert mae(actual, forecast) == pytest.approx(10.0)
    assert mape(actual, forecast) == pytest.approx(100 * (0.1 + 0.05) / 2)
    assert skill(1.2, 1.5) == pytest.approx(0.2)
    assert skill(1.0, 0.0) is None


def test_direction_accuracy_counts_only_days_that_moved():
    last = np.array([10.0, 10.0, 10.0, 10.0])
    actual = np.array([11.0, 9.0, 10.0, 12.0])  # up, down, flat (ignored), up
    forecast = np.array([10.5, 10.5, 11.0, 10.0])  # up (right), up (wrong), -, flat (wrong)
    assert direction_accuracy(actual, forecast, last) == pytest.approx(1 / 3)
    assert direction_accuracy(last, forecast, last) is None


def test_diebold_mariano_hand_computed():
    actual = np.zeros(4)
    forecast = np.array([1.0, 1.0, 1.0, 2.0])  # squared errors 1, 1, 1, 4
    benchmark = np.array([2.0, 0.0, 2.0, 0.0])  # squared errors 4, 0, 4, 0
    # d = -3, 1, -3, 4; mean -0.25; gamma0 = 34.75 / 4; var(mean) = gamma0 / 4
    dm = -0.25 / math.sqrt(34.75 / 16)
    expected = dm * math.sqrt((4 + 1 - 2) / 4)  # Harvey-Leybourne-Newbold, h = 1
    stat, pvalue = diebold_mariano(actual, forecast, benchmark)
    assert stat == pytest.approx(expected, rel=1e-12)
    assert stat == pytest.approx(-0.1469106, rel=1e-6)
    assert pvalue == pytest.approx(2 * stats.t.sf(abs(expected), df=3), rel=1e-12)


def test_diebold_mariano_detects_a_clearly_better_model():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=500)
    stat, pvalue = diebold_mariano(actual, actual + rng.normal(0, 0.1, 500), actual + rng.normal(0, 1, 500))
    assert stat < 0 and pvalue < 1e-6
    assert diebold_mariano(actual, actual + 1, actual + 1) == (None, None)


def test_best_lag_finds_a_follower():
    rng = np.random.default_rng(1)
    actual = np.cumsum(rng.normal(size=300))
    assert best_lag(actual[5:], actual[5:]) == 0
    assert best_lag(actual[5:], actual[4:-1]) == 1  # persistence: yesterday's value
    assert best_lag(actual[5:], actual[2:-3]) == 3


def test_score_of_persistence_has_null_direction_and_test():
    actual, last = np.array([1.0, 2.0, 3.0, 2.0]), np.array([0.5, 1.0, 2.0, 3.0])
    m = score(actual, last, last, last, is_persistence=True)
    assert m["direction_accuracy"] is None and m["dm_pvalue"] is None and m["skill"] == 0.0
    assert m["coverage_80"] is None and m["n"] == 4


def test_verdict_in_words():
    import pandas as pd

    from stockrnn.evaluate import Evaluation

    def model(skill, p, lag):
        return {"skill": skill, "dm_pvalue": p, "best_lag": lag}

    metrics = {
        "models": {
            "lstm": model(0.15, 0.001, 0),
            "gru": model(-0.02, 0.40, 1),
            "ridge": model(0.01, None, 0),
            "persistence": model(0.0, None, 1),
        }
    }
    evaluation = Evaluation(pd.DataFrame(), metrics, list(metrics["models"]))
    assert evaluation.verdict("lstm") == "beats persistence, significant at 5% (p=0.001)"
    assert evaluation.verdict("gru") == "loses to persistence, not significant at 5% (p=0.40); follows the price"
    assert evaluation.verdict("ridge") == "beats persistence (no test possible)"
    assert evaluation.verdict("persistence") == "the naive benchmark"
