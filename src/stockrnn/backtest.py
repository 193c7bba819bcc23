"""Walk-forward backtests: refit every model, scaler and fresh weights included, on the data
before each refit date, forecast until the next one, and score every out-of-sample forecast
together and per fold. Only the public forecaster methods are called (fit, rolling)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import model_config
from .data import Prices, as_prices
from .errors import ConfigError
from .evaluate import DEFAULT_COST_BPS, Evaluation, long_table, prepare_models, test_span, walk_forward
from .forecaster import Forecaster, RidgeForecaster, make_forecaster
from .interrupt import StopToken, token
from .scoring import model_settings, run_metrics, score_models
from .training import EpochCallbacks
from .windows import position

WINDOW_MODES = ("expanding", "rolling")
FOLD_KEYS = ("rmse", "mae", "skill", "coverage_80", "coverage_95", "n")
FoldCallback = Callable[[int, int, dict | None], None]  # (folds done, folds, the fold just done)


@dataclass
class Backtest(Evaluation):
    """An Evaluation whose predictions carry a `fold` column, with one entry per fold."""

    folds: list[dict] = field(default_factory=list)


def refit_positions(first: int, last: int, refit_every: int) -> list[int]:
    """Row positions of the refit dates: the first test day, then every `refit_every` trading
    days while inside the test span; `refit_every` 0 fits once."""
    if refit_every < 0:
        raise ConfigError(f"--refit-every must be 0 (fit once) or a number of trading days, not {refit_every}")
    return [first] if refit_every == 0 else list(range(first, last + 1, refit_every))


def fresh(model: Forecaster) -> Forecaster:
    """An unfitted copy with the same settings: new scaler, new weights from the same seed."""
    return make_forecaster(model.name, model.config)


def backtest(
    prices: Prices | pd.DataFrame,
    models: Sequence[Forecaster | str],
    test_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
    refit_every: int = 63,
    window_mode: str = "expanding",
    train_days: int | None = None,
    train_start: str | pd.Timestamp | None = None,
    settings: dict | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
    on_fold: FoldCallback | None = None,
    on_epoch: EpochCallbacks | None = None,
    stop: StopToken | None = None,
) -> Backtest:
    """Walk forward from `test_start`: at each refit date fit fresh models on the rows before it
    (all of them from `train_start`, or the last `train_days` in rolling mode) and forecast each
    day until the next refit date from the data up to the day before. Persistence and ridge are
    always included. A `stop` request (a first Ctrl-C) ends the training under way after its batch
    and the backtest after the current fold. `on_epoch(name, config)` gives each model's epoch
    callback, told in every fold."""
    stop = token(stop)
    prices = as_prices(prices)
    models, target, horizon = prepare_models(models)
    if not any(isinstance(m, RidgeForecaster) for m in models):
        models.append(make_forecaster("ridge", model_config("ridge", target=target, horizon=horizon)))
    names = [m.name for m in models]
    series = prices.column(target)
    index = prices.index
    first, last = test_span(prices, test_start, test_end)
    if window_mode not in WINDOW_MODES:
        raise ConfigError(f"--window-mode must be expanding or rolling, not {window_mode!r}")
    if window_mode == "rolling" and not train_days:
        raise ConfigError("--window-mode rolling needs --train-days N (trading days of each training span)")
    if window_mode == "expanding" and train_days is not None:  # it would be ignored, yet recorded
        raise ConfigError("--train-days N needs --window-mode rolling (expanding spans train on every row before)")
    lower = 0 if train_start is None else position(index, train_start, "train start", prices.source)
    if lower >= first:
        raise ConfigError(f"{prices.source}: the train start {index[lower]:%Y-%m-%d} is not before the test start")
    need = max(m.history for m in models) + horizon
    rows = train_days if window_mode == "rolling" else first - lower
    if rows < need or first - lower < need:
        raise ConfigError(
            f"{prices.source}: too few training rows before the test start: {min(rows, first - lower)}, "
            f"the models need at least {need}"
        )
    if window_mode == "rolling" and train_days > first - lower:  # every fold would train on fewer rows
        raise ConfigError(
            f"{prices.source}: --train-days {train_days} is more than the {first - lower} training rows before "
            "the test start (the first fold could not train on that many); give fewer, or --window-mode expanding"
        )
    starts = refit_positions(first, last, refit_every)
    if on_fold is not None:
        on_fold(0, len(starts), None)  # the settings are valid: work starts

    spans = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else last
        spans.append((max(lower, start - train_days) if window_mode == "rolling" else lower, start, end))
    folds: list[dict] = []
    alphas: dict[str, list[float]] = {m.name: [] for m in models if isinstance(m, RidgeForecaster)}

    def after_fold(i: int, fitted: list[Forecaster]) -> bool:
        begin, start, end = spans[i]
        folds.append({
            "fold": i + 1,
            "train_start": f"{index[begin]:%Y-%m-%d}",
            "train_end": f"{index[start - 1]:%Y-%m-%d}",
            "test_start": f"{index[start]:%Y-%m-%d}",
            "test_end": f"{index[end]:%Y-%m-%d}",
            "train_rows": start - begin,
        })  # fmt: skip
        for model in fitted:
            if model.name in alphas:
                alphas[model.name].append(model.alpha_)
        if on_fold is not None:
            on_fold(i + 1, len(spans), folds[-1])
        return stop.requested  # first Ctrl-C: score the folds done so far

    forecasts, _ = walk_forward(prices, models, spans, fresh, after_fold, on_epoch, stop)
    last = spans[len(folds) - 1][2]
    predictions = long_table(series, forecasts, first, last, horizon)
    fold_starts = index[[int(index.get_loc(pd.Timestamp(f["test_start"]))) for f in folds]]
    origin_next = index[index.get_indexer(predictions["origin"]) + 1]  # the step-1 day: whose fold made it
    predictions.insert(3, "fold", np.searchsorted(fold_starts, origin_next, side="right"))
    for fold in folds:
        part = predictions[predictions["fold"] == fold["fold"]]
        scored, _ = score_models(prices, part, names, target, horizon, cost_bps, with_trading=False)
        fold["models"] = {name: {k: scored[name][k] for k in FOLD_KEYS} for name in names}
    entries = {m.name: model_settings(m) for m in models}
    for name, values in alphas.items():
        entries[name]["alpha_by_fold"] = values  # the penalty each fold's fit chose
    run = {
        "refit_every": refit_every,
        "window_mode": window_mode,
        "train_days": train_days,
        "train_start": f"{index[lower]:%Y-%m-%d}",
    }
    train_rows = min(f["train_rows"] for f in folds)
    metrics = run_metrics(prices, predictions, models, first, last, run, entries, train_rows, cost_bps, settings)
    metrics = {"models": metrics.pop("models"), "folds": folds, **metrics, "interrupted": stop.requested}
    return Backtest(predictions, metrics, names, folds)
