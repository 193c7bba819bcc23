"""Panel scores: how a model does across tickers, from per-ticker scores and dated forecasts.

Pure pandas/SciPy on two tables, nothing about models or files:
- the summary, one row per ticker and model (`SUMMARY_COLUMNS`, summary.csv);
- the step-1 forecasts, one row per ticker and date with `last_close`, `actual` and one column per
  model, for the daily cross-sectional rank IC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

SUMMARY_COLUMNS = (
    "ticker", "model", "n", "rmse", "mae", "skill", "dm_pvalue", "direction_accuracy", "coverage_80", "coverage_95",
)  # fmt: skip
REFERENCES = ("ridge_local", "ridge")  # per-ticker RMSE of every model is compared with these two
MIN_TICKERS_PER_DAY = 5  # a rank correlation over fewer tickers says little: such days are left out


def summary_table(metrics: Mapping[str, dict]) -> pd.DataFrame:
    """summary.csv from each ticker's metrics.json: one row per ticker and model (step-1 scores)."""
    rows = [
        {"ticker": ticker, "model": name, **{k: m.get(k) for k in SUMMARY_COLUMNS[2:]}}
        for ticker, per_ticker in metrics.items()
        for name, m in per_ticker["models"].items()
    ]
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    numeric = list(SUMMARY_COLUMNS[2:])
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")  # None -> NaN
    return table


def rank_ic(forecasts: pd.DataFrame, models: Sequence[str], min_tickers: int = MIN_TICKERS_PER_DAY) -> pd.DataFrame:
    """The daily cross-sectional rank IC: for each date and model, the Spearman correlation across
    tickers of the forecast log return from the last close, log(forecast / last_close), with the
    realised one, log(actual / last_close). For a High target the realised value is the next day's
    high over the last close, so the IC asks whether a model ranks tomorrow's highs right; part of
    that is ranking volatility (the high sits above the close by the day's range), which is why
    persistence of the high scores a positive IC too: read a model's IC against persistence's.

    `forecasts`: columns `date, ticker, last_close, actual, <model>...`. Index: the dates with at
    least `min_tickers` tickers; a model's IC is NaN on a day where fewer than `min_tickers` of them
    have its forecast (two points always correlate +-1), or where either side is constant."""
    realised = np.log(forecasts["actual"] / forecasts["last_close"])
    counts = forecasts.groupby("date")["ticker"].nunique()
    days = counts.index[counts >= min_tickers]
    result = {}
    for name in models:
        if len(days) == 0 or name not in forecasts:
            result[name] = pd.Series(np.nan, index=days, dtype=float)
            continue
        predicted = np.log(forecasts[name] / forecasts["last_close"])
        pairs = pd.DataFrame({"date": forecasts["date"], "f": predicted, "r": realised}).dropna()
        pairs = pairs[pairs["date"].isin(days)]
        usable = pairs.groupby("date")["f"].size()  # a day counts the tickers this model forecast
        pairs = pairs[pairs["date"].isin(usable.index[usable >= min_tickers])]
        result[name] = _spearman_by_date(pairs).reindex(days)
    return pd.DataFrame(result, index=pd.DatetimeIndex(days, name="date"), columns=list(models))


def _spearman_by_date(pairs: pd.DataFrame) -> pd.Series:
    """Spearman's rho of `f` and `r` within each date: the Pearson correlation of the within-day ranks
    (ties share their average rank); NaN where either side is constant (no warning per day)."""
    ranks = pairs.groupby("date")[["f", "r"]].rank()
    centred = ranks - ranks.groupby(pairs["date"]).transform("mean")
    sums = (
        pd.DataFrame({"fr": centred["f"] * centred["r"], "ff": centred["f"] ** 2, "rr": centred["r"] ** 2})
        .groupby(pairs["date"])
        .sum()
    )
    denominator = np.sqrt(sums["ff"] * sums["rr"])
    return (sums["fr"] / denominator.where(denominator > 0)).astype(float)


def ic_stats(ic: pd.Series) -> dict:
    """Mean IC over the days with one, its t-statistic mean / (sd / sqrt(days)), share of days above 0."""
    values = ic.dropna().to_numpy(dtype=float)
    if len(values) == 0:
        return {"rank_ic_mean": None, "rank_ic_t": None, "rank_ic_positive_days": None, "rank_ic_days": 0}
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    t = mean / (sd / math.sqrt(len(values))) if sd > 0 else None
    return {
        "rank_ic_mean": mean,
        "rank_ic_t": t,
        "rank_ic_positive_days": float(np.mean(values > 0)),
        "rank_ic_days": len(values),
    }


def against(summary: pd.DataFrame, model: str, reference: str) -> tuple[float | None, float | None]:
    """(share of tickers where `model` has the lower RMSE, Wilcoxon signed-rank p of the paired
    per-ticker RMSEs) over tickers where both were scored; (None, None) if there are none or the
    model is the reference. p is None when every pair is equal (no test possible)."""
    if model == reference:
        return None, None
    rmse = summary.pivot_table(index="ticker", columns="model", values="rmse", aggfunc="first")
    if model not in rmse or reference not in rmse:
        return None, None
    pairs = rmse[[model, reference]].dropna()
    if pairs.empty:
        return None, None
    share = float(np.mean(pairs[model] < pairs[reference]))
    differences = (pairs[model] - pairs[reference]).to_numpy()
    if not np.any(differences != 0):
        return share, None
    return share, float(stats.wilcoxon(pairs[model], pairs[reference]).pvalue)


def panel_scores(summary: pd.DataFrame, ic: pd.DataFrame | None = None) -> dict[str, dict]:
    """panel.json's "models": per model, tickers scored, share with skill > 0 (null for persistence
    itself, as a comparison of a model with itself is everywhere), median and mean skill,
    share with a lower RMSE than ridge_local and than the global ridge with Wilcoxon p-values, and
    the rank IC statistics."""
    result = {}
    for name in dict.fromkeys(summary["model"]):
        rows = summary[(summary["model"] == name) & summary["rmse"].notna()]
        skill = rows["skill"].dropna()
        entry = {
            "tickers": int(rows["ticker"].nunique()),
            "beats_persistence": float(np.mean(skill > 0)) if len(skill) and name != "persistence" else None,
            "median_skill": float(skill.median()) if len(skill) else None,
            "mean_skill": float(skill.mean()) if len(skill) else None,
        }
        for reference in REFERENCES:
            share, p = against(summary, name, reference)
            entry[f"beats_{reference}"], entry[f"wilcoxon_p_vs_{reference}"] = share, p
        column = ic[name] if ic is not None and name in ic else pd.Series(dtype=float)
        entry.update(ic_stats(column))
        result[name] = entry
    return result
