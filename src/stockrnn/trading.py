"""What a trader would ask of a close forecast: a long-or-flat rule and its returns, next to
buy-and-hold. A diagnostic of the forecasts, not advice: no slippage, no taxes, no dividends.

Day d's position is decided at the close of day d - 1 from the forecast made with data up to
d - 1: hold the stock over day d when the forecast close of d is above the close of d - 1.
Each buy and each sell costs `cost_bps` basis points of the equity; a position still open on
the last day is valued at the last close, not sold.
"""

from __future__ import annotations

import math

import numpy as np

TRADING_DAYS = 252
NOTE = "a diagnostic of the forecasts, not advice: no slippage, taxes or dividends"
# The Sharpe ratio of one path is one draw: its 90% interval comes from a stationary bootstrap
# (Politis & Romano 1994) of the daily returns, blocks of mean length n^(1/3) days so that
# volatility clusters survive the resampling; seeded, so a run is reproducible.
INTERVAL = 0.90
BOOTSTRAP_SAMPLES = 1000
RANDOM_SCHEDULES = 1000  # random-timing baseline: shuffles of the days in the market
SEED = 0
MIN_DAYS = 10  # fewer days: no interval, no baseline


def strategy_returns(last_close: np.ndarray, close: np.ndarray, positions: np.ndarray, cost_bps: float) -> np.ndarray:
    """Daily returns of holding `positions` (0 or 1, one per day) over each day's close-to-close
    move, with the cost of every change of position (a buy or a sell) charged at the day's start."""
    positions = np.asarray(positions, dtype=float)
    moves = np.asarray(close, dtype=float) / np.asarray(last_close, dtype=float) - 1.0
    trades = np.abs(np.diff(positions, prepend=0.0))
    return (1.0 - cost_bps / 1e4 * trades) * (1.0 + positions * moves) - 1.0


def annual_sharpe(returns: np.ndarray) -> np.ndarray:
    """Annualised Sharpe ratio (risk-free 0, sqrt(252)) along the last axis; NaN where returns are constant."""
    deviation = np.std(returns, axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(deviation > 0, np.mean(returns, axis=-1) / deviation, np.nan) * math.sqrt(TRADING_DAYS)


def stationary_bootstrap(n: int, samples: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """(samples, n) indices of a stationary bootstrap: each day starts a new block at a random day
    with probability 1 / block, else continues the block with the next day (wrapping at the end)."""
    starts = rng.random((samples, n)) < 1.0 / block
    starts[:, 0] = True
    begin = rng.integers(0, n, (samples, n))
    steps = np.arange(n)
    block_start = np.maximum.accumulate(np.where(starts, steps, 0), axis=1)  # day each block began
    return (np.take_along_axis(begin, block_start, axis=1) + steps - block_start) % n


def sharpe_interval(returns: np.ndarray) -> tuple[float | None, float | None]:
    """The 90% stationary-bootstrap percentile interval of the annualised Sharpe ratio."""
    returns = np.asarray(returns, dtype=float)
    n = len(returns)
    if n < MIN_DAYS or np.std(returns) == 0:
        return None, None
    rng = np.random.default_rng(SEED)
    draws = annual_sharpe(returns[stationary_bootstrap(n, BOOTSTRAP_SAMPLES, max(1.0, n ** (1 / 3)), rng)])
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return None, None
    tail = (1 - INTERVAL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def random_timing(moves: np.ndarray, positions: np.ndarray) -> float | None:
    """Share of random long-or-flat schedules with the same number of days in the market whose
    Sharpe ratio before costs is at least the strategy's before costs: near 0 the timing is
    better than chance, near 0.5 or above it is no better than picking the days at random. None
    for a strategy always in (or always out of) the market, which has no timing to judge."""
    positions = np.asarray(positions, dtype=float)
    if len(positions) < MIN_DAYS or positions.min() == positions.max():  # always in or out: no timing
        return None
    own = annual_sharpe(positions * moves)
    if not np.isfinite(own):
        return None
    rng = np.random.default_rng(SEED)
    schedules = rng.permuted(np.tile(positions, (RANDOM_SCHEDULES, 1)), axis=1)
    others = annual_sharpe(schedules * moves)
    return float(np.mean(np.nan_to_num(others, nan=-np.inf) >= own - 1e-12))


def summary(returns: np.ndarray, positions: np.ndarray) -> dict:
    """Total return, annualised Sharpe ratio (risk-free 0, sqrt(252)) with its 90% bootstrap
    interval, maximum drawdown (a positive fraction of the running peak), trades, and the share
    of days in the market."""
    returns = np.asarray(returns, dtype=float)
    positions = np.asarray(positions, dtype=float)
    equity = np.cumprod(np.concatenate([[1.0], 1.0 + returns]))
    sharpe = float(annual_sharpe(returns)) if len(returns) > 1 else math.nan
    low, high = sharpe_interval(returns)
    return {
        "total_return": float(equity[-1] - 1.0),
        "sharpe": sharpe if math.isfinite(sharpe) else None,
        "sharpe_lo": low,
        "sharpe_hi": high,
        "max_drawdown": float(np.max(1.0 - equity / np.maximum.accumulate(equity))),
        "trades": int(np.abs(np.diff(positions, prepend=0.0)).sum()),
        "days_in_market": float(positions.mean()) if len(positions) else None,
    }


def long_or_flat(last_close: np.ndarray, close: np.ndarray, forecast: np.ndarray, cost_bps: float = 5.0) -> dict:
    """The rule above for one model's next-day close forecasts, aligned by day."""
    positions = (np.asarray(forecast, dtype=float) > np.asarray(last_close, dtype=float)).astype(float)
    moves = np.asarray(close, dtype=float) / np.asarray(last_close, dtype=float) - 1.0
    result = summary(strategy_returns(last_close, close, positions, cost_bps), positions)
    return {**result, "random_timing": random_timing(moves, positions)}


def buy_and_hold(last_close: np.ndarray, close: np.ndarray, cost_bps: float = 5.0) -> dict:
    """Buy at the close before the first day (one cost), hold to the end."""
    positions = np.ones(len(close))
    return {**summary(strategy_returns(last_close, close, positions, cost_bps), positions), "random_timing": None}
