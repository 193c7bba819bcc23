"""No look-ahead, as a property: changing any price on or after day t leaves every forecast for
days up to t unchanged, for every model, through fitting and forecasting alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockrnn import load_prices, make_forecaster, model_config

from conftest import TINY, make_prices

ROWS, TEST_START = 160, 120
BASE = make_prices(ROWS, seed=3).astype(float)
COLUMNS = list(BASE.columns)


def forecasts(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    prices = load_prices(frame)
    overrides = TINY if name in ("lstm", "gru") else {"window": 5}
    model = make_forecaster(name, model_config(name, target="high", seed=7, **overrides))
    model.fit(prices, train_end=prices.index[TEST_START - 1])
    return model.rolling(prices, prices.index[TEST_START])


REFERENCE: dict[str, pd.DataFrame] = {}


def check(name: str, t: int, columns: list[str], factors: np.ndarray) -> None:
    if name not in REFERENCE:
        REFERENCE[name] = forecasts(BASE, name)
    changed = BASE.copy()
    for column in columns:
        position = changed.columns.get_loc(column)
        changed.iloc[t:, position] = changed.iloc[t:, position].to_numpy() * factors[: ROWS - t]
    after = forecasts(changed, name)
    before = REFERENCE[name]
    day_t = BASE.index[t]
    # A forecast for day d has origin d - 1: every forecast for a day up to t has origin < t.
    keep = before.index < day_t
    assert keep.sum() == t - TEST_START + 1
    pd.testing.assert_frame_equal(before[keep], after[keep], check_exact=True)


perturbation = dict(
    t=st.integers(TEST_START, ROWS - 1),
    columns=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=5, unique=True),
    factors=st.lists(st.floats(0.2, 5.0), min_size=ROWS, max_size=ROWS).map(np.array),
)


@pytest.mark.parametrize("name", ["persistence", "ridge"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**perturbation)
def test_baselines_never_look_ahead(name, t, columns, factors):
    check(name, t, columns, factors)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**perturbation)
def test_networks_never_look_ahead(name, t, columns, factors):
    check(name, t, columns, factors)


def test_the_check_can_fail():
    """An oracle that reads its own day must be caught by the same comparison."""

    def oracle(frame: pd.DataFrame) -> pd.DataFrame:
        return frame["High"].shift(-1).iloc[TEST_START - 1 : -1].to_frame("step_1")

    changed = BASE.copy()
    changed.iloc[TEST_START + 5 :, changed.columns.get_loc("High")] *= 2
    before, after = oracle(BASE), oracle(changed)
    keep = before.index < BASE.index[TEST_START + 5]
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(before[keep], after[keep])
