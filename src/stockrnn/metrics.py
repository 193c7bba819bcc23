"""Forecast scores and the tests that say whether a model really beats persistence.

Plain NumPy/SciPy on arrays: nothing here knows about models or torch.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast) - np.asarray(actual)) ** 2)))


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast) - np.asarray(actual))))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    actual = np.asarray(actual, dtype=float)
    return float(100.0 * np.mean(np.abs((np.asarray(forecast) - actual) / actual)))


def direction_accuracy(actual: np.ndarray, forecast: np.ndarray, last: np.ndarray) -> float | None:
    """Over days where the actual moved from its last known value, the share of days where the
    forecast moved the same way from that value. None when the actual never moved."""
    moved = np.sign(np.asarray(actual) - last)
    predicted = np.sign(np.asarray(forecast) - last)
    days = moved != 0
    if not days.any():
        return None
    return float(np.mean(predicted[days] == moved[days]))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of actuals inside [lower, upper]: an 80% interval should hold about 0.80. An interval
    with a non-finite bound never covers: an infinite width says nothing, it is no hit."""
    actual = np.asarray(actual, dtype=float)
    if len(actual) == 0:
        return None
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    inside = (actual >= lower) & (actual <= upper) & np.isfinite(lower) & np.isfinite(upper)
    return float(np.mean(inside))


def skill(model_rmse: float, persistence_rmse: float) -> float | None:
    """1 - RMSE / RMSE_persistence: above 0 means better than persistence."""
    if persistence_rmse == 0 or not math.isfinite(persistence_rmse):
        return None
    return 1.0 - model_rmse / persistence_rmse


def diebold_mariano(
    actual: np.ndarray, forecast: np.ndarray, benchmark: np.ndarray, horizon: int = 1
) -> tuple[float | None, float | None]:
    """Diebold-Mariano test of `forecast` against `benchmark`, squared-error loss, with the
    Harvey-Leybourne-Newbold small-sample correction; two-sided p-value from Student's t with
    n - 1 degrees of freedom. A negative statistic means `forecast` has the smaller errors.
    Returns (None, None) when the loss differential is constant (for example, identical models)."""
    actual = np.asarray(actual, dtype=float)
    d = (np.asarray(forecast) - actual) ** 2 - (np.asarray(benchmark) - actual) ** 2
    n = len(d)
    if n < 3:
        return None, None
    mean = d.mean()
    centred = d - mean
    # Long-run variance: autocovariances up to lag h - 1 (h-step forecasts are MA(h-1)).
    gamma = [float(centred @ centred) / n]
    for lag in range(1, horizon):
        gamma.append(float(centred[lag:] @ centred[:-lag]) / n)
    variance = (gamma[0] + 2.0 * sum(gamma[1:])) / n
    if variance <= 1e-300:
        return None, None
    dm = mean / math.sqrt(variance)
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    stat = dm * correction
    pvalue = 2.0 * stats.t.sf(abs(stat), df=n - 1)
    return float(stat), float(pvalue)


MAX_LAG = 5
# One-sided 5% critical value of a correlation on n pairs is about 1.645 / sqrt(n): a lag-0
# correlation below it is indistinguishable from a forecast whose moves are noise.
Z_ONE_SIDED_5 = 1.645


def change_correlations(
    actual: np.ndarray, forecast: np.ndarray, last: np.ndarray, max_lag: int = MAX_LAG
) -> list[float | None]:
    """Correlation of the forecast's predicted change (forecast - last known value) with the
    realised change (actual - last) of the same origin (lag 0) and of the origin k rows earlier
    (lag k = 1..max_lag, a move already known when the forecast was made). None where a side is
    constant or fewer than 3 pairs remain."""
    predicted = np.asarray(forecast, dtype=float) - np.asarray(last, dtype=float)
    realised = np.asarray(actual, dtype=float) - np.asarray(last, dtype=float)
    result: list[float | None] = []
    for k in range(max_lag + 1):
        p, r = predicted[k:], realised[: len(realised) - k]
        if len(p) < 3 or np.std(p) == 0 or np.std(r) == 0:
            result.append(None)
        else:
            result.append(float(np.corrcoef(p, r)[0, 1]))
    return result


def best_lag(actual: np.ndarray, forecast: np.ndarray, last: np.ndarray, max_lag: int = MAX_LAG) -> int | None:
    """The lag k in 0..max_lag whose realised change the predicted change tracks most closely
    (largest |correlation|, see `change_correlations`): 0 when the forecast anticipates the move it
    forecasts, 1+ when it mostly echoes moves that had already happened. None for a constant
    predicted change (persistence), which tracks nothing."""
    corr = change_correlations(actual, forecast, last, max_lag)
    known = [(abs(c), -k, k) for k, c in enumerate(corr) if c is not None]
    return max(known)[2] if known else None


def follows_price(actual: np.ndarray, forecast: np.ndarray, last: np.ndarray, max_lag: int = MAX_LAG) -> bool | None:
    """True when the forecast only repeats (or trails) the last value instead of anticipating the
    move: its predicted change is constant, or not significantly positively correlated with the
    realised change (one-sided 5%), or correlated more strongly with a move already known. None
    under 3 scored days (a last step past the test's end): nothing to judge."""
    if len(np.asarray(actual)) < 3:
        return None
    corr = change_correlations(actual, forecast, last, max_lag)
    now = corr[0]
    if now is None or now <= Z_ONE_SIDED_5 / math.sqrt(len(np.asarray(actual))):
        return True
    return any(c is not None and abs(c) > now for c in corr[1:])


def score(
    actual: np.ndarray,
    forecast: np.ndarray,
    last: np.ndarray,
    persistence: np.ndarray,
    horizon: int = 1,
    is_persistence: bool = False,
) -> dict:
    """Every per-model metric of metrics.json for one step; keys that cannot be computed are None
    (the errors NaN, written as null, when no day is scored: a last fold whose only day was a
    repaired one; NumPy's warnings about the empty mean are then expected and kept quiet)."""
    if len(actual):
        return _score(actual, forecast, last, persistence, horizon, is_persistence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _score(actual, forecast, last, persistence, horizon, is_persistence)


def _score(actual, forecast, last, persistence, horizon: int, is_persistence: bool) -> dict:
    value = rmse(actual, forecast)
    if is_persistence:
        dm_stat = dm_pvalue = direction = None
    else:
        dm_stat, dm_pvalue = diebold_mariano(actual, forecast, persistence, horizon)
        direction = direction_accuracy(actual, forecast, last)
    return {
        "rmse": value,
        "mae": mae(actual, forecast),
        "mape": mape(actual, forecast),
        "direction_accuracy": direction,
        "skill": skill(value, rmse(actual, persistence)),
        "dm_stat": dm_stat,
        "dm_pvalue": dm_pvalue,
        "best_lag": best_lag(actual, forecast, last),
        "follows_price": follows_price(actual, forecast, last),
        "change_corr": change_correlations(actual, forecast, last, 0)[0],
        "coverage_80": None,
        "coverage_95": None,
        "n": int(len(actual)),
    }
