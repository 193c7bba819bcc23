"""The long-or-flat diagnostic on a hand-computed example, and its place in metrics.json."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stockrnn import evaluate, load_prices, make_forecaster, model_config
from stockrnn.trading import buy_and_hold, long_or_flat

from conftest import make_prices

LAST = np.array([100.0, 110.0, 99.0])
CLOSE = np.array([110.0, 99.0, 108.9])
FORECAST = np.array([105.0, 100.0, 100.0])  # above, below, above the last close: long, flat, long


def test_long_or_flat_by_hand():
    result = long_or_flat(LAST, CLOSE, FORECAST, cost_bps=10)
    # Buy (cost 0.1%) and gain 10%; sell (cost 0.1%) and stay flat; buy again and gain 10%.
    returns = np.array([0.999 * 1.1 - 1, 0.999 - 1, 0.999 * 1.1 - 1])
    assert result["total_return"] == pytest.approx(0.999**3 * 1.1**2 - 1)
    assert result["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    assert result["max_drawdown"] == pytest.approx(0.001)  # the day spent paying to sell
    assert result["trades"] == 3 and result["days_in_market"] == pytest.approx(2 / 3)


def test_buy_and_hold_by_hand():
    result = buy_and_hold(LAST, CLOSE, cost_bps=10)
    assert result["total_return"] == pytest.approx(0.999 * 1.1 * 0.9 * 1.1 - 1)
    assert result["max_drawdown"] == pytest.approx(0.1)
    assert result["trades"] == 1


def test_costs_lower_the_return_and_flat_has_no_sharpe():
    free, costly = long_or_flat(LAST, CLOSE, FORECAST, 0), long_or_flat(LAST, CLOSE, FORECAST, 50)
    assert free["total_return"] == pytest.approx(1.1**2 - 1) and costly["total_return"] < free["total_return"]
    flat = long_or_flat(LAST, CLOSE, LAST, 5)
    assert flat == {"total_return": 0.0, "sharpe": None, "sharpe_lo": None, "sharpe_hi": None, "max_drawdown": 0.0,
                    "trades": 0, "days_in_market": 0.0, "random_timing": None}  # fmt: skip


def test_trading_in_metrics_for_a_close_target_only():
    prices = load_prices(make_prices(200, seed=4))
    ridge = make_forecaster("ridge", model_config("ridge", target="close", window=5))
    result = evaluate(prices, [ridge], test_start=prices.index[150], cost_bps=7)
    trading = result.metrics["trading"]
    assert trading["cost_bps"] == 7 and "not advice" in trading["note"]
    close = prices.frame["close"].to_numpy()
    assert trading["buy_and_hold"]["total_return"] == pytest.approx(close[-1] / close[149] * (1 - 7e-4) - 1)
    assert result.metrics["models"]["persistence"]["trading"] is None  # never trades: no row of its own
    assert result.metrics["models"]["ridge"]["trading"]["trades"] >= 1
    high = evaluate(prices, ["ridge"], test_start=prices.index[150])
    assert high.metrics["trading"] is None and high.metrics["models"]["ridge"]["trading"] is None


def walk(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n + 1)))
    return close[:-1], close[1:]


def test_sharpe_interval_is_seeded_and_holds_the_sharpe():
    last, close = walk()
    noise = np.random.default_rng(7).normal(0, 0.01, len(last))
    result = long_or_flat(last, close, last * (1 + noise), cost_bps=5)
    assert result == long_or_flat(last, close, last * (1 + noise), cost_bps=5)  # deterministic
    assert result["sharpe_lo"] < result["sharpe"] < result["sharpe_hi"]
    # A random-timing strategy over 500 days: the interval is wide (about +-1.2 around the Sharpe).
    assert result["sharpe_hi"] - result["sharpe_lo"] > 1.0
    assert 0.05 < result["random_timing"] < 0.95


def test_random_timing_separates_foresight_from_chance():
    last, close = walk()
    oracle = long_or_flat(last, close, close, cost_bps=5)  # in the market exactly on the up days
    assert oracle["random_timing"] == 0.0 and oracle["sharpe_lo"] > 5
    contrarian = long_or_flat(last, close, 2 * last - close, cost_bps=5)  # in on the down days
    assert contrarian["random_timing"] == 1.0 and contrarian["sharpe_hi"] < 0
    hold = buy_and_hold(last, close)
    assert hold["random_timing"] is None and hold["sharpe_lo"] < hold["sharpe"] < hold["sharpe_hi"]


def test_stationary_bootstrap_indices_run_in_blocks():
    from stockrnn.trading import stationary_bootstrap

    idx = stationary_bootstrap(200, 50, 8.0, np.random.default_rng(0))
    assert idx.shape == (50, 200) and idx.min() >= 0 and idx.max() < 200
    continues = np.mean(np.diff(idx, axis=1) % 200 == 1)
    assert continues == pytest.approx(1 - 1 / 8, abs=0.03)  # a new block starts with probability 1/8
