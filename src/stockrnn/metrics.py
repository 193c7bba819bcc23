"""Forecast scores and the tests that say whether a model really beats persistence.

Plain NumPy/SciPy on arrays: nothing here knows about models or torch.
"""

from __future__ import annotations

import math

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


def best_lag(actual: np.ndarray, forecast: np.ndarray, max_lag: int = 5) -> int | None:
    """The lag k in 0..max_lag that maximises the correlation between the forecast's daily change
    and the actual's daily change k days earlier. A best lag of 1 or more means the forecast
    mostly repeats moves that already happened: it follows the price."""
    df, da = np.diff(np.asarray(forecast, dtype=float)), np.diff(np.asarray(actual, dtype=float))
    best, best_corr = None, -np.inf
    for k in range(max_lag + 1):
        f, a = df[k:], da[: len(da) - k]
        if len(f) < 3 or np.std(f) == 0 or np.std(a) == 0:
            continue
        corr = float(np.corrcoef(f, a)[0, 1])
        if corr > best_corr:
            best, best_corr = k, corr
    return best


def score(
    actual: np.ndarray,
    forecast: np.ndarray,
    last: np.ndarray,
    persistence: np.ndarray,
    horizon: int = 1,
    is_persistence: bool = False,
) -> dict:
    """Every per-model metric of metrics.json for one step; keys that cannot be computed are None."""
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
        "best_lag": best_lag(actual, forecast),
        "coverage_80": None,
        "coverage_95": None,
        "n": int(len(actual)),
    }
