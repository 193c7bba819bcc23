"""Runs and panels for the report tests: one small evaluation (a TINY network with intervals, ridge,
persistence; close target, one repaired day), a small backtest and a made-up panel summary."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from stockrnn import evaluate, make_forecaster, model_config
from stockrnn.backtest import backtest

from conftest import TINY, make_prices

COMMAND = "stockrnn evaluate --data TEST.csv --target close --models lstm,ridge"
PANEL_MODELS = ("lstm", "gru", "ridge", "ridge_local", "persistence")


def repaired_prices() -> pd.DataFrame:
    frame = make_prices(300)
    frame.iloc[250, frame.columns.get_loc("Close")] = np.nan  # a test day: filled forward, not scored
    return frame


@functools.cache  # shared by the report and the browser tests; nothing changes it
def small_evaluation(target: str = "close"):
    network = make_forecaster("lstm", model_config("lstm", target=target, **TINY, ensemble=1))
    ridge = make_forecaster("ridge", model_config("ridge", target=target))
    return evaluate(repaired_prices(), [network, ridge], test_start="2020-10-01")


@functools.cache
def small_backtest():
    network = make_forecaster("gru", model_config("gru", horizon=3, **TINY, ensemble=1))
    return backtest(make_prices(300), [network], test_start="2020-08-03", refit_every=40)


def made_up_panel(
    tickers: int = 250, days: int = 252, seed: int = 0, markup_ticker: bool = True
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """summary.csv rows, a panel.json and a rank-IC series shaped as design.md says, from random numbers;
    the first ticker named with HTML markup unless `markup_ticker` is False (the README's picture)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(tickers):
        base = float(rng.uniform(0.5, 5.0))
        for model in PANEL_MODELS:
            skill = 0.0 if model == "persistence" else float(rng.normal(-0.01, 0.03))
            rows.append({
                "ticker": f"T{t:03d}", "model": model, "n": days, "rmse": base * (1 - skill), "mae": base * 0.8,
                "skill": None if model == "persistence" else skill,
                "dm_pvalue": None if model == "persistence" else float(rng.uniform()),
                "direction_accuracy": None if model == "persistence" else float(rng.uniform(0.4, 0.6)),
                "coverage_80": float(rng.uniform(0.7, 0.9)), "coverage_95": float(rng.uniform(0.88, 0.99)),
            })  # fmt: skip
    summary = pd.DataFrame(rows)
    if markup_ticker:
        summary.loc[summary["ticker"] == "T000", "ticker"] = "<b>&BAD"  # escaped, never markup
    models = {
        m: {"tickers": tickers, "beats_persistence": int((summary[summary.model == m].skill > 0).sum())}
        for m in PANEL_MODELS
        if m != "persistence"
    }
    info = {
        "models": models,
        "skipped": [{"ticker": "EMPTY", "reason": "no rows"}],
        "failed": [],
        "settings": {"test_start": "2020-01-02", "models": {"lstm": {"units": 4}}},
        "versions": {"stockrnn": "0.1.0"},
    }
    index = pd.bdate_range("2020-01-02", periods=days)
    rank_ic = pd.DataFrame(rng.normal(0.02, 0.1, (days, 4)), index=index, columns=list(PANEL_MODELS[:4]))
    return summary, info, rank_ic
