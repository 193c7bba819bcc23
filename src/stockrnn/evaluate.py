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
from .metrics import score
from .windows import position

DEFAULT_TEST_ROWS = 252
SIGNIFICANCE = 0.05


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
        rows = {name: {k: v for k, v in m.items() if k != "by_step"} for name, m in self.metrics["models"].items()}
        return pd.DataFrame.from_dict(rows, orient="index")

    def wide(self, step: int = 1) -> pd.DataFrame:
        """Predictions for one step as `date, actual, <model>...` (predictions.csv for horizon 1)."""
        rows = self.predictions[self.predictions["step"] == step]
        return rows.drop(columns=["origin", "step"]).set_index("date")

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
) -> Evaluation:
    """Fit every model on rows before `test_start` (from `train_start`), forecast each test day
    from the data up to the day before, and score. Persistence is always included: skill and the
    Diebold-Mariano test are measured against it. `test_start` defaults to the last 252 rows."""
    prices = as_prices(prices)
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
    series = prices.column(target)

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

    predictions = _long_table(series, forecasts, first, last, horizon)
    changed = prices.repairs.changed_dates(target)
    scored = predictions[~predictions["date"].isin(changed)]
    values = series.to_numpy(dtype=float)
    metrics_models = {}
    for name in names:
        by_step = []
        for step in range(1, horizon + 1):
            rows = scored[scored["step"] == step]
            last_known = values[index.get_indexer(rows["origin"])]
            m = score(
                rows["actual"].to_numpy(),
                rows[name].to_numpy(),
                last_known,
                rows["persistence"].to_numpy(),
                horizon=step,
                is_persistence=name == "persistence",
            )
            by_step.append({"step": step, **m})
        metrics_models[name] = {**{k: v for k, v in by_step[0].items() if k != "step"}, "by_step": by_step}

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
            "scored_days": int((scored["step"] == 1).sum()),
            "excluded_repaired": int(((predictions["step"] == 1) & predictions["date"].isin(changed)).sum()),
        },
        "settings": {
            "test_start": index[first].strftime("%Y-%m-%d"),
            "test_end": index[last].strftime("%Y-%m-%d"),
            "train_start": prices.frame.loc[train_start:].index[0].strftime("%Y-%m-%d"),
            "train_end": train_end.strftime("%Y-%m-%d"),
            "horizon": horizon,
            **(settings or {}),
            "models": {m.name: m.config.to_dict() for m in models},
        },
        "versions": versions(),
        "interrupted": False,
    }
    return Evaluation(predictions, metrics, names)


def _long_table(
    series: pd.Series, forecasts: dict[str, pd.DataFrame], first: int, last: int, horizon: int
) -> pd.DataFrame:
    """origin, date, step, actual and one column per model; only targets inside the test span."""
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
    for name, frame in forecasts.items():
        table[name] = frame.to_numpy().ravel()[keep]
    return table
