"""Scores against hand-computed cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from stockrnn.metrics import (
    best_lag,
    change_correlations,
    diebold_mariano,
    direction_accuracy,
    follows_price,
    mae,
    mape,
    rmse,
    score,
    skill,
)


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


def lag_case(seed: int = 1, n: int = 400):
    """A random walk: actual[t] is the value forecast, last[t] = actual[t - 1] the last known one."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=n + 2)) + 100
    return walk[2:], walk[1:-1], walk[:-2], rng  # actual, last, the value before last


def test_persistence_and_lagged_copies_follow_the_price():
    actual, last, before, rng = lag_case()
    assert follows_price(actual, last, last) and best_lag(actual, last, last) is None  # constant change: 0
    noisy_copy = last + rng.normal(0, 0.3, len(last))  # forecast_t = actual_{t-1} + noise
    assert follows_price(actual, noisy_copy, last)
    two_back = before + rng.normal(0, 0.1, len(last))  # forecast_t = actual_{t-2}: trails by a day more
    assert follows_price(actual, two_back, last) and best_lag(actual, two_back, last) == 1


def test_an_oracle_and_a_model_with_skill_on_changes_do_not_follow():
    actual, last, _, rng = lag_case()
    assert not follows_price(actual, actual, last) and best_lag(actual, actual, last) == 0
    assert change_correlations(actual, actual, last, 0) == [pytest.approx(1.0)]
    skilled = last + 0.5 * (actual - last) + rng.normal(0, 0.8, len(last))
    assert not follows_price(actual, skilled, last) and best_lag(actual, skilled, last) == 0
    assert 0.2 < change_correlations(actual, skilled, last)[0] < 0.8


def test_weak_lag0_correlation_alone_is_not_anticipation():
    """A predicted change that is mostly noise with a faint echo of the move is still flagged."""
    actual, last, _, rng = lag_case(seed=3, n=100)
    faint = last + 0.01 * (actual - last) + rng.normal(0, 1.0, len(last))
    assert follows_price(actual, faint, last)


def test_score_of_persistence_has_null_direction_and_test():
    actual, last = np.array([1.0, 2.0, 3.0, 2.0]), np.array([0.5, 1.0, 2.0, 3.0])
    m = score(actual, last, last, last, is_persistence=True)
    assert m["direction_accuracy"] is None and m["dm_pvalue"] is None and m["skill"] == 0.0
    assert m["coverage_80"] is None and m["n"] == 4


def verdict_of(models: dict, data: dict | None = None):
    import pandas as pd

    from stockrnn.evaluate import Evaluation

    metrics = {"models": models, "data": data or {}}
    return Evaluation(pd.DataFrame(), metrics, list(models)).verdict


def one(skill, p, follows=False, step=1):
    return {"step": step, "skill": skill, "dm_pvalue": p, "follows_price": follows}


def test_verdict_in_words():
    verdict = verdict_of(
        {"lstm": one(0.15, 0.001), "gru": one(-0.02, 0.40, True), "ridge": one(0.01, None), "persistence": one(0, None)}
    )
    assert verdict("lstm") == "beats persistence, significant at 5% (p=0.001)"
    assert verdict("gru") == (
        "loses to persistence, not significant at 5% (p=0.40); "
        "follows the price (its predicted moves do not anticipate the real ones)"
    )
    assert verdict("ridge") == "beats persistence (no test possible)"
    assert verdict("persistence") == "the benchmark: repeats the last value"


def test_verdict_covers_every_step():
    steps = [one(0.2, 0.001, step=1), one(0.1, 0.01, step=2), one(0.05, 0.3, step=3),
             one(-0.02, 0.5, step=4), one(-0.04, 0.25, step=5)]  # fmt: skip
    verdict = verdict_of({"lstm": {**steps[0], "by_step": steps}})
    assert verdict("lstm") == (
        "beats persistence at steps 1-2 (significant at 5%, p<=0.010), beats it at step 3 (not significant, "
        "p=0.30) but loses to it at steps 4-5 (not significant, p>=0.25)"
    )
    same = [one(0.2, 0.001, step=1), one(0.1, 0.02, step=2)]
    assert verdict_of({"gru": {**same[0], "by_step": same}})("gru") == (
        "beats persistence at every step 1-2 (significant at 5%, p<=0.020)"
    )


def test_verdict_says_when_the_data_are_too_few():
    data = {"short_test": True, "scored_days": 10, "small_train": ["lstm"], "train_windows": {"lstm": 30}}
    verdict = verdict_of({"lstm": one(0.3, 0.001), "ridge": one(0.1, 0.01)}, data)
    assert verdict("lstm") == (
        "beats persistence, significant at 5% (p=0.001); but only 10 test days and only 30 training windows: "
        "too few to trust"
    )
    assert verdict("ridge").endswith("; but only 10 test days: too few to trust")


def test_a_step_with_no_scored_day_gives_empty_scores_without_warnings():
    empty = np.array([], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "Mean of empty slice" would raise here
        scores = score(empty, empty, empty, empty)
    assert scores["n"] == 0 and math.isnan(scores["rmse"]) and scores["direction_accuracy"] is None


def test_under_three_scored_days_nothing_is_judged():
    """A step past the test's end scores no day: its lag check is null, as its errors are."""
    empty = score(np.array([]), np.array([]), np.array([]), np.array([]))
    assert empty["n"] == 0 and empty["follows_price"] is None and empty["best_lag"] is None
    two = np.array([1.0, 2.0])
    assert follows_price(two, two, np.array([0.5, 1.0])) is None
    assert follows_price(np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.0]), np.array([0.5, 1.0, 2.0])) is True
