"""metrics.json of a run, shared by evaluate and backtest: the scores of a long prediction table,
the data and how far they can be trusted, each model's settings, the trading diagnostic."""

from __future__ import annotations

import pandas as pd

from .data import Prices
from .forecaster import Forecaster, Persistence, RidgeForecaster, versions
from .metrics import coverage, score
from .trading import NOTE, buy_and_hold, long_or_flat

# Too few scored test days: a Diebold-Mariano test on fewer than about 60 daily errors has little
# power and its small-sample p-value rests on a handful of large errors.
MIN_TEST_DAYS = 60
# Too few training windows: a network of the default size has about 5k weights, and with fewer
# than 500 windows its 10% validation tail (early stopping, interval calibration) holds under 50.
MIN_NETWORK_WINDOWS = 500
# Ridge fits window x inputs coefficients (about 60) and picks its penalty on a 20% tail: under
# 100 windows that tail holds under 20 and the penalty is a guess.
MIN_RIDGE_WINDOWS = 100
# A split-conformal 95% interval needs ceil((n + 1) 0.95) <= n calibration scores: n >= 19.
MIN_CALIBRATION = 19


def train_windows(rows: int, model: Forecaster) -> int:
    """Training windows in `rows` rows (as the forecaster's `train_origins` counts them)."""
    return max(0, rows - model.history - model.config.horizon + 1)


def min_windows(model: Forecaster) -> int | None:
    """The fewest training windows a fit of this kind is trusted on; None for persistence and for a
    global model (fitted on every ticker's windows: one ticker's count says nothing of its fit)."""
    if isinstance(model, Persistence) or getattr(model, "fitted_on_panel", False):
        return None
    return MIN_RIDGE_WINDOWS if isinstance(model, RidgeForecaster) else MIN_NETWORK_WINDOWS


def model_settings(model: Forecaster) -> dict:
    """metrics.json's settings of one model: only the fields it uses, and ridge's fitted penalty."""
    config = model.config.to_dict()
    if isinstance(model, Persistence):
        return {k: config[k] for k in ("target", "horizon")}
    if isinstance(model, RidgeForecaster):
        entry = {k: config[k] for k in ("target", "window", "horizon", "features", "val_fraction")}
        if hasattr(model, "alpha_"):
            entry["alpha"] = model.alpha_
        return entry
    return config


def run_metrics(
    prices: Prices,
    predictions: pd.DataFrame,
    models: list[Forecaster],
    first: int,
    last: int,
    run: dict,
    entries: dict,
    train_rows: int,
    cost_bps: float,
    settings: dict | None,
) -> dict:
    """metrics.json for a long prediction table, shared by evaluate and backtest: scores, the data
    (with warnings when the data are too few to trust), settings (`run` holds the command's own),
    trading, versions. `train_rows`: the rows of the smallest training span."""
    index = prices.index
    target, horizon = models[0].config.target, models[0].config.horizon
    names = [m.name for m in models]
    metrics_models, trading = score_models(prices, predictions, names, target, horizon, cost_bps)
    changed = predictions["date"].isin(prices.repairs.changed_dates(target))
    step1 = predictions["step"] == 1
    windows = {m.name: train_windows(train_rows, m) for m in models if min_windows(m) is not None}
    data = {
        "source": prices.source,
        "name": prices.name,
        "target": target,
        "rows": len(prices),
        "first": f"{index[0]:%Y-%m-%d}",
        "last": f"{index[-1]:%Y-%m-%d}",
        "repairs": prices.repairs.to_dict(),
        "test_days": last - first + 1,
        "scored_days": int((step1 & ~changed).sum()),
        "excluded_repaired": int((step1 & changed).sum()),
        "train_windows": windows,
        "small_train": [m.name for m in models if m.name in windows and windows[m.name] < min_windows(m)],
    }
    data["short_test"] = data["scored_days"] < MIN_TEST_DAYS
    no_bands = [name for name in names if f"{name}_lo80" not in predictions]
    data["warnings"] = data_warnings(data, models, no_bands)
    return {
        "models": metrics_models,
        "data": data,
        "settings": {
            "test_start": f"{index[first]:%Y-%m-%d}",
            "test_end": f"{index[last]:%Y-%m-%d}",
            **run,
            "horizon": horizon,
            "cost_bps": cost_bps,
            **(settings or {}),
            "models": entries,
        },
        "trading": trading,
        "versions": versions(),
        "interrupted": False,
    }


def data_warnings(data: dict, models: list[Forecaster], no_bands: list[str]) -> list[str]:
    """Short sentences for the table and metrics.json: what the data are too few to support."""
    warnings = []
    if data["short_test"]:
        warnings.append(
            f"only {data['scored_days']} test days scored (fewer than {MIN_TEST_DAYS}): the Diebold-Mariano "
            "test has little power and its p-value is not to be trusted"
        )
    for model in models:
        if model.name in data["small_train"]:
            warnings.append(
                f"{model.name} trained on only {data['train_windows'][model.name]} windows (fewer than "
                f"{min_windows(model)}): too few to fit it reliably"
            )
    if no_bands:
        warnings.append(
            f"no intervals for {', '.join(no_bands)} (blank cov80/cov95): the calibration tail held fewer than "
            f"{MIN_CALIBRATION} windows, the least a 95% interval needs"
        )
    return warnings


def score_models(
    prices: Prices,
    predictions: pd.DataFrame,
    names: list[str],
    target: str,
    horizon: int,
    cost_bps: float,
    with_trading: bool = True,
) -> tuple[dict, dict | None]:
    """metrics.json's per-model entries (step 1 headline, `by_step`, interval coverage) for the
    rows of a long prediction table, leaving out days whose target was repaired; and, for a close
    target, the long-or-flat trading diagnostic (None otherwise, or when `with_trading` is False)."""
    index, series = prices.index, prices.column(target)
    scored = predictions[~predictions["date"].isin(prices.repairs.changed_dates(target))]
    values = series.to_numpy(dtype=float)
    result = {}
    for name in names:
        by_step = []
        for step in range(1, horizon + 1):
            rows = scored[scored["step"] == step]
            actual = rows["actual"].to_numpy()
            m = score(
                actual,
                rows[name].to_numpy(),
                values[index.get_indexer(rows["origin"])],
                rows["persistence"].to_numpy(),
                horizon=step,
                is_persistence=name == "persistence",
            )
            if f"{name}_lo80" in rows:
                for level in (80, 95):
                    m[f"coverage_{level}"] = coverage(actual, rows[f"{name}_lo{level}"], rows[f"{name}_hi{level}"])
            by_step.append({"step": step, **m})
        result[name] = {**{k: v for k, v in by_step[0].items() if k != "step"}, "by_step": by_step}
    if target != "close" or not with_trading:
        for name in names:
            result[name]["trading"] = None
        return result, None
    days = predictions[predictions["step"] == 1]  # every day: a strategy lives through repaired days too
    last_close = values[index.get_indexer(days["origin"])]
    close = days["actual"].to_numpy()
    for name in names:  # persistence never forecasts a rise, so never trades: no row of its own
        trading_of = None if name == "persistence" else long_or_flat(last_close, close, days[name].to_numpy(), cost_bps)
        result[name]["trading"] = trading_of
    trading = {
        "rule": "long-or-flat",
        "cost_bps": cost_bps,
        "note": NOTE,
        "buy_and_hold": buy_and_hold(last_close, close, cost_bps),
    }
    return result, trading
