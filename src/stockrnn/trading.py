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


def strategy_returns(last_close: np.ndarray, close: np.ndarray, positions: np.ndarray, cost_bps: float) -> np.ndarray:
    """Daily returns of holding `positions` (0 or 1, one per day) over each day's close-to-close
    move, with the cost of every change of position (a buy or a sell) charged at the day's start."""
    positions = np.asarray(positions, dtype=float)
    moves = np.asarray(close, dtype=float) / np.asarray(last_close, dtype=float) - 1.0
    trades = np.abs(np.diff(positions, prepend=0.0))
    return (1.0 - cost_bps / 1e4 * trades) * (1.0 + positions * moves) - 1.0


def summary(returns: np.ndarray, positions: np.ndarray) -> dict:
    """Total return, annualised Sharpe ratio (risk-free 0, sqrt(252)), maximum drawdown (a
    positive fraction of the running peak), trades, and the share of days in the market."""
    returns = np.asarray(returns, dtype=float)
    positions = np.asarray(positions, dtype=float)
    equity = np.cumprod(np.concatenate([[1.0], 1.0 + returns]))
    deviation = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    sharpe = None if deviation == 0 or not math.isfinite(deviation) else float(np.mean(returns) / deviation)
    return {
        "total_return": float(equity[-1] - 1.0),
        "sharpe": None if sharpe is None else sharpe * math.sqrt(TRADING_DAYS),
        "max_drawdown": float(np.max(1.0 - equity / np.maximum.accumulate(equity))),
        "trades": int(np.abs(np.diff(positions, prepend=0.0)).sum()),
        "days_in_market": float(positions.mean()) if len(positions) else None,
    }


def long_or_flat(last_close: np.ndarray, close: np.ndarray, forecast: np.ndarray, cost_bps: float = 5.0) -> dict:
    """The rule above for one model's next-day close forecasts, aligned by day."""
    positions = (np.asarray(forecast, dtype=float) > np.asarray(last_close, dtype=float)).astype(float)
    return summary(strategy_returns(last_close, close, positions, cost_bps), positions)


def buy_and_hold(last_close: np.ndarray, close: np.ndarray, cost_bps: float = 5.0) -> dict:
    """Buy at the close before the first day (one cost), hold to the end."""
    positions = np.ones(len(close))
    return summary(strategy_returns(last_close, close, positions, cost_bps), positions)
