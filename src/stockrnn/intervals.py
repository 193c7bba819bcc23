"""Prediction intervals by split conformal calibration, scaled by recent volatility.

The scores are |log(actual / forecast)| divided by the trailing 20-day mean of the daily
high-low log range at the forecast origin (of the absolute close-to-close log return when the
data has no high and low), one set per step, over the last training windows
(the networks' validation tail). The interval is forecast * exp(+-q * volatility), with q the
conformal quantile of the scores: on exchangeable scores it covers with probability at least
the nominal level, whatever the model, and the volatility scaling lets the width follow calm
and stormy markets instead of carrying the calibration period's level into the test period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError

LEVELS = (80, 95)
VOLATILITY_DAYS = 20
# The floor of the volatility scale. Untraded days (volume 0, open = high = low = close) have a
# zero range: with no floor a score divides by ~0 and the bounds reach 1e15 or overflow to inf.
# 0.3% sits below every real 20-day mean range measured: the S&P 500 index 1999-2018 (lowest
# 0.34%, in 2017), the NASDAQ index (0.47%), the 24 DJIA and 250 S&P 500 stocks outside their
# untraded stretches; so it binds on stale quotes, not on a calm market. (The panel probe used
# 0.5%, which would widen 2% of the S&P 500 index's days.)
MIN_VOLATILITY = 0.003
# exp(709) overflows to inf: the half-width exponent is clipped here so that every bound stays
# finite. Only a degenerate calibration gets near it, and e**50 is still wider than any price.
MAX_EXPONENT = 50.0


def volatility(frame: pd.DataFrame) -> np.ndarray:
    """Trailing mean of |log(high / low)| over 20 rows, floored at MIN_VOLATILITY; row i uses rows
    <= i only. Without high and low (a Date,Close file): the trailing mean of |log(close / previous
    close)| (of the first price column when there is no close) instead; no constant converts one
    into the other, since the conformal quantile absorbs the scale."""
    if {"high", "low"} <= set(frame.columns):
        moves = np.abs(np.log(frame["high"].to_numpy(dtype=float) / frame["low"].to_numpy(dtype=float)))
    else:
        column = next(c for c in ("close", "adj_close", "last", "open", "high", "low") if c in frame.columns)
        price = frame[column].to_numpy(dtype=float)
        moves = np.abs(np.diff(np.log(price), prepend=np.nan))  # the first row has no previous price
    mean = pd.Series(moves).rolling(VOLATILITY_DAYS, min_periods=1).mean().to_numpy()
    return np.maximum(np.nan_to_num(mean, nan=MIN_VOLATILITY), MIN_VOLATILITY)


@dataclass(frozen=True)
class Calibration:
    """Per-step score quantiles for each level; saved in model.json so a loaded model agrees."""

    quantiles: dict[int, list[float]]  # level -> one scaled half-width per step, non-decreasing
    n: int  # calibration windows
    held_out: bool  # False when the model was trained on the calibration windows

    def to_dict(self) -> dict:
        return {
            "method": "split conformal on the last training windows, scores |log(actual/forecast)| / "
            f"{VOLATILITY_DAYS}-day mean high-low log range",
            "n": self.n,
            "held_out": self.held_out,
            **{f"q{level}": list(q) for level, q in self.quantiles.items()},
        }

    @classmethod
    def from_dict(cls, state: dict | None, horizon: int) -> Calibration | None:
        if state is None:
            return None
        quantiles = {level: [float(v) for v in state[f"q{level}"]] for level in LEVELS}
        for level, q in quantiles.items():
            if len(q) != horizon or not all(math.isfinite(v) and v >= 0 for v in q):
                raise ConfigError(f"calibration q{level} needs {horizon} finite non-negative values, got {q}")
        return cls(quantiles, int(state["n"]), bool(state["held_out"]))


def conformal_quantile(scores: np.ndarray, level: int) -> float | None:
    """The ceil((n + 1) p)-th smallest score: the split-conformal quantile for coverage p.
    None when n is too small for that level (fewer than 1 / (1 - p) - 1 scores)."""
    n = len(scores)
    rank = math.ceil((n + 1) * level / 100)
    if rank > n:
        return None
    return float(np.sort(scores)[rank - 1])


def calibrate(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, held_out: bool) -> Calibration | None:
    """Calibration from (n, horizon) actuals and forecasts and the volatility at each origin;
    None when there are too few windows for a 95% interval. Widths never shrink with the step:
    a later step cannot be known better than an earlier one, so each is at least the one before."""
    scores = np.abs(np.log(actual / forecast)) / scale[:, None]
    quantiles = {}
    for level in LEVELS:
        per_step = [conformal_quantile(scores[:, k], level) for k in range(scores.shape[1])]
        if any(q is None for q in per_step):
            return None
        quantiles[level] = np.maximum.accumulate(per_step).tolist()
    return Calibration(quantiles, len(scores), held_out)


def interval_columns(forecast: np.ndarray, scale: np.ndarray, calibration: Calibration) -> dict[str, np.ndarray]:
    """lo80_k, hi80_k, lo95_k, hi95_k for each step k of (n, horizon) forecasts, in that order;
    always finite (the exponent is clipped at MAX_EXPONENT)."""
    columns = {}
    for k in range(forecast.shape[1]):
        for level in LEVELS:
            half = np.exp(np.minimum(calibration.quantiles[level][k] * scale, MAX_EXPONENT))
            columns[f"lo{level}_{k + 1}"] = forecast[:, k] / half
            columns[f"hi{level}_{k + 1}"] = forecast[:, k] * half
    return columns
