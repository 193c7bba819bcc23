"""Prediction intervals by split conformal calibration, scaled by recent volatility.

The scores are |log(actual / forecast)| divided by the trailing 20-day mean of the daily
high-low log range at the forecast origin, one set per step, over the last training windows
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

from .errors import DataError

LEVELS = (80, 95)
VOLATILITY_DAYS = 20
MIN_VOLATILITY = 1e-6  # a constant price has zero range: keep the scale positive


def volatility(frame: pd.DataFrame) -> np.ndarray:
    """Trailing mean of |log(high / low)| over 20 rows; row i uses rows <= i only."""
    day_range = np.abs(np.log(frame["high"].to_numpy(dtype=float) / frame["low"].to_numpy(dtype=float)))
    mean = pd.Series(day_range).rolling(VOLATILITY_DAYS, min_periods=1).mean().to_numpy()
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
                raise DataError(f"calibration q{level} needs {horizon} finite non-negative values, got {q}")
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
    """lo80_k, hi80_k, lo95_k, hi95_k for each step k of (n, horizon) forecasts, in that order."""
    columns = {}
    for k in range(forecast.shape[1]):
        for level in LEVELS:
            half = np.exp(calibration.quantiles[level][k] * scale)
            columns[f"lo{level}_{k + 1}"] = forecast[:, k] / half
            columns[f"hi{level}_{k + 1}"] = forecast[:, k] * half
    return columns
