"""Holdout evaluation over any forecaster: fit before the test start, forecast every test day
from data up to the day before, score against the actuals and against persistence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import ModelConfig
from .data import Prices, as_prices
from .errors import ConfigError
from .forecaster import Forecaster, Persistence, make_forecaster
from .interrupt import StopToken
from .scoring import model_settings, run_metrics, score_models  # noqa: F401 (score_models: the API)
from .training import EpochCallbacks
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
        """The horizon asked for (metrics' settings), not the largest step forecast: a test span
        shorter than the horizon holds step 1 only, and its outputs still have the long layout."""
        asked = self.metrics.get("settings", {}).get("horizon")
        return int(asked) if asked is not None else int(self.predictions["step"].max())

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
        """In words, for every step: does this model beat persistence (lower RMSE), is it
        significant at 5%, can the data carry the claim, and does the forecast only trail the price?
        The one place the verdict is worded (tables and reports use it)."""
        m = self.metrics["models"][name]
        if name == "persistence":
            return "the benchmark: repeats the last value"
        words = skill_words(m.get("by_step") or [{"step": 1, **m}])
        data = self.metrics.get("data", {})
        few = []
        if data.get("short_test"):
            few.append(f"only {data['scored_days']} test days")
        if name in data.get("small_train", []):
            few.append(f"only {data['train_windows'][name]} training windows")
        if few:
            words += f"; but {' and '.join(few)}: too few to trust"
        if m.get("follows_price") and words != "no verdict":
            words += "; follows the price (its predicted moves do not anticipate the real ones)"
        return words


def skill_words(steps: list[dict]) -> str:
    """'beats persistence, significant at 5% (p=0.001)' for one step; for several, the steps grouped
    by outcome: 'beats persistence at steps 1-2 (significant at 5%, p<=0.010) but loses to it at
    steps 3-5 (not significant, p>=0.21)'."""
    if any(s["skill"] is None for s in steps):
        return "no verdict"
    if len(steps) == 1:
        s = steps[0]
        words = "beats persistence" if s["skill"] > 0 else "loses to persistence"
        if s["dm_pvalue"] is None:
            return words + " (no test possible)"
        if s["dm_pvalue"] < SIGNIFICANCE:
            return words + f", significant at 5% (p={s['dm_pvalue']:.3f})"
        return words + f", not significant at 5% (p={s['dm_pvalue']:.2f})"

    def outcome(s: dict) -> tuple[bool, bool | None]:
        return s["skill"] > 0, None if s["dm_pvalue"] is None else s["dm_pvalue"] < SIGNIFICANCE

    groups: list[list[dict]] = []
    for s in steps:
        if groups and outcome(groups[-1][-1]) == outcome(s):
            groups[-1].append(s)
        else:
            groups.append([s])
    parts = []
    for i, group in enumerate(groups):
        beats, significant = outcome(group[0])
        first, last = group[0]["step"], group[-1]["step"]
        where = f"step {first}" if first == last else f"steps {first}-{last}"
        if len(groups) == 1:
            where = f"every step {first}-{last}"
        pvalues = [s["dm_pvalue"] for s in group]
        if significant is None:
            test = "no test possible"
        elif significant:
            test = f"significant at 5%, p{'=' if len(group) == 1 else '<='}{max(pvalues):.3f}"
        else:
            test = f"not significant, p{'=' if len(group) == 1 else '>='}{min(pvalues):.2f}"
        if i == 0:
            verb = "beats persistence" if beats else "loses to persistence"
            parts.append(f"{verb} at {where} ({test})")
        else:
            joint = " but " if beats != outcome(groups[i - 1][0])[0] else ", "
            parts.append(f"{joint}{'beats it' if beats else 'loses to it'} at {where} ({test})")
    return "".join(parts)


def evaluate(
    prices: Prices | pd.DataFrame,
    models: Sequence[Forecaster | str],
    test_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
    train_start: str | pd.Timestamp | None = None,
    settings: dict | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
    on_epoch: EpochCallbacks | None = None,
    stop: StopToken | None = None,
    targets_until: str | pd.Timestamp | None = None,
) -> Evaluation:
    """Fit every model on rows before `test_start` (from `train_start`), forecast each test day
    from the data up to the day before, and score. Persistence is always included: skill and the
    Diebold-Mariano test are measured against it. `test_start` defaults to the last 252 rows.
    `on_epoch(name, config)` gives each model's epoch callback (None: no progress); a `stop` request
    (a first Ctrl-C) ends the networks' training after the current batch, and the run goes on.
    `targets_until` (a fold of a panel backtest): the step-k forecasts from the last origins whose
    targets fall after `test_end` are kept up to this date, as one walk over every fold keeps them."""
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

    lower = 0 if train_start is None else int(index.searchsorted(pd.Timestamp(train_start)))
    forecasts, _ = walk_forward(prices, models, [(lower, first, last)], lambda model: model, None, on_epoch, stop)
    through = last if targets_until is None else int(index.searchsorted(pd.Timestamp(targets_until), "right")) - 1
    predictions = long_table(series, forecasts, first, last, horizon, max(last, through))
    run = {
        "train_start": prices.frame.loc[train_start:].index[0].strftime("%Y-%m-%d"),
        "train_end": train_end.strftime("%Y-%m-%d"),
    }
    rows = len(prices.frame.loc[train_start:train_end])
    entries = {m.name: model_settings(m) for m in models}
    metrics = run_metrics(prices, predictions, models, first, last, run, entries, rows, cost_bps, settings)
    return Evaluation(predictions, metrics, names)


def walk_forward(
    prices: Prices,
    models: Sequence[Forecaster],
    folds: Sequence[tuple[int, int, int]],
    to_fit: Callable[[Forecaster], Forecaster],
    after_fold: Callable[[int, list[Forecaster]], bool] | None = None,
    on_epoch: EpochCallbacks | None = None,
    stop: StopToken | None = None,
) -> tuple[dict[str, pd.DataFrame], list[list[Forecaster]]]:
    """The one core of holdout evaluation and backtests. Each fold (begin, start, end) in row
    positions: fit `to_fit(model)` for every model on rows begin..start-1 and forecast each day
    start..end from the days before it. A holdout evaluation is one fold fitting the models
    themselves; a backtest fits a fresh copy per fold. `after_fold(i, fitted)` may stop the walk
    by returning True (a first Ctrl-C). Returns each model's forecasts (all folds in order) and
    the fitted models of each fold. `on_epoch(name, config)` is asked once per model for the epoch
    callback its fits get; `stop` goes to every fit."""
    index = prices.index
    frames: dict[str, list[pd.DataFrame]] = {m.name: [] for m in models}
    callbacks = {m.name: None if on_epoch is None else on_epoch(m.name, m.config) for m in models}
    fitted_by_fold = []
    for i, (begin, start, end) in enumerate(folds):
        fitted = [
            to_fit(m).fit(prices, index[begin], index[start - 1], on_epoch=callbacks[m.name], stop=stop) for m in models
        ]
        for model in fitted:
            frames[model.name].append(model.rolling(prices, index[start], index[end]))
        fitted_by_fold.append(fitted)
        if after_fold is not None and after_fold(i, fitted):
            break
    return {name: pd.concat(parts) for name, parts in frames.items()}, fitted_by_fold


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


def long_table(
    series: pd.Series, forecasts: dict[str, pd.DataFrame], first: int, last: int, horizon: int,
    through: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """origin, date, step, actual and one column per model (plus `<model>_lo80`, ... for models
    with intervals); only targets inside the test span (up to row `through` when given: a fold's
    last origins aim past its end). `forecasts` come from `rolling` over test days first..last, so
    their origins are first - 1 .. last - 1."""
    origins = np.arange(first, last + 1) - 1
    steps = np.arange(1, horizon + 1)
    target_pos = (origins[:, None] + steps).ravel()
    keep = target_pos <= (last if through is None else through)
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
