"""Holdout evaluation over any forecaster: fit before the test start, forecast every test day
from data up to the day before, score against the actuals and against persistence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import ModelConfig
from .data import Prices, as_prices
from .errors import ConfigError
from .forecaster import Forecaster, Persistence, make_forecaster, versions
from .metrics import coverage, score
from .trading import NOTE, buy_and_hold, long_or_flat
from .windows import position

DEFAULT_TEST_ROWS = 252
SIGNIFICANCE = 0.05
BANDS = ("lo80", "hi80", "lo95", "hi95")
DEFAULT_COST_BPS = 5.0


@dataclass
class Evaluation:
    """Predictions (long: origin, date, step, actual, one column per model) and metrics.json."""

    predictions: pd.DataFrame
    metrics: dict
    models: list[str] = field(default_factory=list)

    @property
    def horizon(self) -> int:
        return int(self.predictions["step"].max())

    def table(self) -> pd.DataFrame:
        """One row per model with the headline (step 1) metrics."""
        rows = {
            name: {k: v for k, v in m.items() if k not in ("by_step", "trading")}
            for name, m in self.metrics["models"].items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    def wide(self, step: int = 1) -> pd.DataFrame:
        """Predictions for one step as `date, actual, <model>...` (predictions.csv for horizon 1)."""
        rows = self.predictions[self.predictions["step"] == step]
        return rows.set_index("date")[["actual", *self.models]]

    def bands(self, name: str, step: int = 1) -> pd.DataFrame | None:
        """The model's interval bounds for one step (columns lo80, hi80, lo95, hi95), by date;
        None for a model without intervals."""
        columns = [f"{name}_{band}" for band in BANDS]
        if not set(columns) <= set(self.predictions.columns):
            return None
        rows = self.predictions[self.predictions["step"] == step].set_index("date")[columns]
        return rows.set_axis(list(BANDS), axis=1)

    def verdict(self, name: str) -> str:
        """In words: does this model beat persistence (lower RMSE), and is it significant at 5%?"""
        m = self.metrics["models"][name]
        if name == "persistence":
            return "the naive benchmark"
        if m["skill"] is None:
            return "no verdict"
        beats = m["skill"] > 0
        words = "beats persistence" if beats else "loses to persistence"
        if m["dm_pvalue"] is None:
            words += " (no test possible)"
        elif m["dm_pvalue"] < SIGNIFICANCE:
            words += f", significant at 5% (p={m['dm_pvalue']:.3f})"
        else:
            words += f", not significant at 5% (p={m['dm_pvalue']:.2f})"
        if m["best_lag"] is not None and m["best_lag"] >= 1:
            words += "; follows the price"
        return words


def evaluate(
    prices: Prices | pd.DataFrame,
    models: Sequence[Forecaster | str],
    test_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
    train_start: str | pd.Timestamp | None = None,
    settings: dict | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
) -> Evaluation:
    """Fit every model on rows before `test_start` (from `train_start`), forecast each test day
    from the data up to the day before, and score. Persistence is always included: skill and the
    Diebold-Mariano test are measured against it. `test_start` defaults to the last 252 rows."""
    prices = as_prices(prices)
    models, target, horizon = prepare_models(models)
    names = [m.name for m in models]
    series = prices.column(target)

    index = prices.index
    first, last = test_span(prices, test_start, test_end)
    train_end = index[first - 1]
    if train_start is not None:
        position(index, train_start, "train start", prices.source)
    for model in models:  # fail fast on too little history, before any training starts
        rows = len(prices.frame.loc[train_start:train_end])
        if rows < model.history + horizon:
            raise ConfigError(
                f"{prices.source}: too few rows before the test start for one window: {rows} rows, "
                f"the {model.name} model needs {model.history + horizon}"
            )

    forecasts = {}
    for model in models:
        model.fit(prices, train_start=train_start, train_end=train_end)
        forecasts[model.name] = model.rolling(prices, index[first], index[last])

    predictions = long_table(series, forecasts, first, last, horizon)
    changed = prices.repairs.changed_dates(target)
    metrics_models, trading = score_models(prices, predictions, names, target, horizon, cost_bps)
    metrics = {
        "models": metrics_models,
        "data": {
            "source": prices.source,
            "name": prices.name,
            "target": target,
            "rows": len(prices),
            "first": index[0].strftime("%Y-%m-%d"),
            "last": index[-1].strftime("%Y-%m-%d"),
            "repairs": prices.repairs.to_dict(),
            "test_days": last - first + 1,
            "scored_days": int(((predictions["step"] == 1) & ~predictions["date"].isin(changed)).sum()),
            "excluded_repaired": int(((predictions["step"] == 1) & predictions["date"].isin(changed)).sum()),
        },
        "settings": {
            "test_start": index[first].strftime("%Y-%m-%d"),
            "test_end": index[last].strftime("%Y-%m-%d"),
            "train_start": prices.frame.loc[train_start:].index[0].strftime("%Y-%m-%d"),
            "train_end": train_end.strftime("%Y-%m-%d"),
            "horizon": horizon,
            "cost_bps": cost_bps,
            **(settings or {}),
            "models": {m.name: m.config.to_dict() for m in models},
        },
        "trading": trading,
        "versions": versions(),
        "interrupted": False,
    }
    return Evaluation(predictions, metrics, names)


def test_span(
    prices: Prices, test_start: str | pd.Timestamp | None, test_end: str | pd.Timestamp | None
) -> tuple[int, int]:
    """Positions of the first and last test day; the default start is the last 252 rows."""
    index = prices.index
    if test_start is None:
        if len(index) <= DEFAULT_TEST_ROWS:
            raise ConfigError(
                f"{prices.source}: {len(index)} rows; give --test-start (default: the last {DEFAULT_TEST_ROWS} rows)"
            )
        test_start = index[-DEFAULT_TEST_ROWS]
    first = position(index, test_start, "test start", prices.source)
    last = len(index) - 1 if test_end is None else int(index.searchsorted(pd.Timestamp(test_end), "right")) - 1
    if last < first:
        raise ConfigError(f"{prices.source}: test end {pd.Timestamp(test_end):%Y-%m-%d} is before the test start")
    if first == 0:
        raise ConfigError(f"{prices.source}: no rows before the test start {index[0]:%Y-%m-%d} to train on")
    return first, last


def prepare_models(models: Sequence[Forecaster | str]) -> tuple[list[Forecaster], str, int]:
    """Model objects with one target and horizon, persistence added (the benchmark of skill)."""
    models = [make_forecaster(m) if isinstance(m, str) else m for m in models]
    if not models:
        raise ConfigError("no models to evaluate")
    target, horizon = models[0].config.target, models[0].config.horizon
    for model in models:
        if (model.config.target, model.config.horizon) != (target, horizon):
            raise ConfigError("all models of one evaluation need the same target and horizon")
    if not any(isinstance(m, Persistence) for m in models):
        models.append(Persistence(ModelConfig(target=target, horizon=horizon)))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models share a name: {', '.join(names)}")
    return models, target, horizon


def score_models(
    prices: Prices, predictions: pd.DataFrame, names: list[str], target: str, horizon: int, cost_bps: float
) -> tuple[dict, dict | None]:
    """metrics.json's per-model entries (step 1 headline, `by_step`, interval coverage) for the
    rows of a long prediction table, leaving out days whose target was repaired; and, for a close
    target, the long-or-flat trading diagnostic (None otherwise)."""
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
    if target != "close":
        for name in names:
            result[name]["trading"] = None
        return result, None
    days = predictions[predictions["step"] == 1]  # every day: a strategy lives through repaired days too
    last_close = values[index.get_indexer(days["origin"])]
    close = days["actual"].to_numpy()
    for name in names:
        result[name]["trading"] = long_or_flat(last_close, close, days[name].to_numpy(), cost_bps)
    trading = {
        "rule": "long-or-flat",
        "cost_bps": cost_bps,
        "note": NOTE,
        "buy_and_hold": buy_and_hold(last_close, close, cost_bps),
    }
    return result, trading


def long_table(
    series: pd.Series, forecasts: dict[str, pd.DataFrame], first: int, last: int, horizon: int
) -> pd.DataFrame:
    """origin, date, step, actual and one column per model (plus `<model>_lo80`, ... for models
    with intervals); only targets inside the test span. `forecasts` come from `rolling` over
    test days first..last, so their origins are first - 1 .. last - 1."""
    origins = np.arange(first, last + 1) - 1
    steps = np.arange(1, horizon + 1)
    target_pos = (origins[:, None] + steps).ravel()
    keep = target_pos <= last
    dates = series.index
    table = pd.DataFrame(
        {
            "origin": np.repeat(dates[origins], horizon)[keep],
            "date": dates[target_pos[keep]],
            "step": np.tile(steps, len(origins))[keep],
            "actual": series.to_numpy(dtype=float)[target_pos[keep]],
        }
    )
    steps_columns = [f"step_{k}" for k in steps]
    for name, frame in forecasts.items():
        table[name] = frame[steps_columns].to_numpy().ravel()[keep]
    for name, frame in forecasts.items():
        if f"lo80_{horizon}" in frame:
            for band in BANDS:
                table[f"{name}_{band}"] = frame[[f"{band}_{k}" for k in steps]].to_numpy().ravel()[keep]
    return table
