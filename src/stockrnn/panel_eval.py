"""Holdout evaluation over a panel: global models fitted once on every ticker's training rows, local
models fitted per ticker, every ticker scored by `evaluate` as a single file would be, then the
panel scores (skill shares, tests against ridge, the daily rank IC).

One date split for the whole panel, so that a global model never sees a test day of any ticker:
training rows are those before `test_start` (from `train_start`), test days `test_start..test_end`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .config import ModelConfig, model_config
from .data import Prices
from .errors import ConfigError, StockrnnError
from .evaluate import DEFAULT_COST_BPS, DEFAULT_TEST_ROWS, Evaluation, evaluate
from .forecaster import make_forecaster, versions
from .interrupt import StopToken, token
from .panel import Panel
from .panel_metrics import MIN_TICKERS_PER_DAY, panel_scores, rank_ic, summary_table
from .runners import DEFAULT_THREADS, Runner, SequentialRunner, Unit, thread_limit
from .training import EpochCallback

GLOBAL_MODELS = ("lstm", "gru", "ridge")
LOCAL_MODELS = ("lstm_local", "gru_local", "ridge_local")
PANEL_MODELS = (*GLOBAL_MODELS, *LOCAL_MODELS, "persistence")
DEFAULT_PANEL_MODELS = ("lstm", "gru", "ridge", "ridge_local", "persistence")
IC_NOTE = (
    "Spearman correlation across tickers, per test day, of log(forecast / last close) with "
    "log(actual / last close), step 1; for a High target the actual is the day's high, so the IC also "
    "rewards ranking the day's range: persistence (the last high) scores above 0, compare with it"
)

Progress = Callable[[str, int, int], None]  # (unit just finished, units done, units in all)


@dataclass
class PanelEvaluation:
    """Per-ticker evaluations, summary.csv (ticker x model), panel.json's content and the daily
    rank IC (date x model)."""

    evaluations: dict[str, Evaluation]
    summary: pd.DataFrame
    panel: dict
    rank_ic: pd.DataFrame

    @property
    def models(self) -> list[str]:
        return list(self.panel["models"])

    @property
    def failed(self) -> list[dict]:
        return self.panel["failed"]

    @property
    def exit_code(self) -> int:
        """0, or 4 when some tickers or global fits failed (each listed in panel.json)."""
        return 4 if self.failed else 0


class GlobalMember:
    """A global model, fitted once on the panel, seen by `evaluate` as one ticker's forecaster:
    `fit` only checks that the panel fit ended before this ticker's test span; the forecasts come
    from the global model."""

    fitted_on_panel = True  # scoring: no warning about this one ticker's few training windows

    def __init__(self, model, train_end: pd.Timestamp) -> None:
        self.model = model
        self.name = model.name
        self.config = model.config
        self.train_end = train_end

    @property
    def history(self) -> int:
        return getattr(self.model, "history", self.config.window)

    def fit(self, prices: Prices, train_start=None, train_end=None, on_epoch=None, stop=None) -> GlobalMember:
        if train_end is not None and len(prices.frame.loc[pd.Timestamp(train_end) : self.train_end]) > 1:
            raise ConfigError(
                f"{prices.source}: the global {self.name} model was trained on rows up to {self.train_end:%Y-%m-%d}, "
                f"after this ticker's training end {pd.Timestamp(train_end):%Y-%m-%d}"
            )
        return self

    def rolling(self, prices: Prices, start, end=None) -> pd.DataFrame:
        return self.model.rolling(prices, start, end)

    def predict(self, prices: Prices, horizon: int = 1) -> pd.DataFrame:
        return self.model.predict(prices, horizon)


def panel_models(models: str | Sequence[str] | None) -> list[str]:
    """Model names of a panel run ('lstm,ridge_local'), checked, persistence added."""
    if models is None:
        return list(DEFAULT_PANEL_MODELS)
    names = [n.strip().lower() for n in (models.split(",") if isinstance(models, str) else models) if n.strip()]
    for name in names:
        if name not in PANEL_MODELS:
            raise ConfigError(f"unknown model '{name}' for a panel (choose from {', '.join(PANEL_MODELS)})")
    if len(set(names)) != len(names):
        raise ConfigError(f"models name a model twice: {', '.join(names)}")
    return names if "persistence" in names else [*names, "persistence"]


def default_test_start(panel: Panel) -> pd.Timestamp:
    """The date 252 trading days before the panel's last date (over the union of its dates)."""
    dates = panel.dates  # of every ticker that read: held ones too
    if len(dates) <= DEFAULT_TEST_ROWS:
        raise ConfigError(f"{panel.source}: {len(dates)} dates; give a test start (default: the last 252)")
    return dates[-DEFAULT_TEST_ROWS]


def evaluate_panel(
    panel: Panel,
    models: str | Sequence[str] | None = None,
    test_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
    train_start: str | pd.Timestamp | None = None,
    configs: Mapping[str, ModelConfig] | None = None,
    preset: str | None = None,
    on_progress: Progress | None = None,
    global_factory: Callable | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
    runner: Runner | None = None,
    on_epoch: Callable[[str, ModelConfig], EpochCallback | None] | None = None,
    stop: StopToken | None = None,
    targets_until: str | pd.Timestamp | None = None,
    **overrides,
) -> PanelEvaluation:
    """Fit the global models once on the training rows of every ticker, then `evaluate` each ticker
    with those, fresh local models and persistence. A ticker with too little history is skipped
    (listed with its reason); one with no row in the test span is not scored (listed) but its
    training rows still train the global models, so that who trains depends on no row after the
    test start; a ticker or global fit that fails with a StockrnnError is listed in
    `panel["failed"]` and the rest go on.

    Configs: `configs[name]` where given (keyed by panel model name: "lstm", "ridge_local", ...),
    else global models start from `global_models.global_config` and local ones from `model_config`,
    then `preset`, then `overrides` (target, window, epochs, ...). `global_factory(name, config)`
    makes a global model (default: `global_models.make_global`). `on_progress(unit, done, total)`
    is called after each global fit (unit "<name> (global)") and each ticker (unit "tickers": a
    runner may finish them in any order); `on_epoch(name, config)` gives a global network's epoch
    callback. Each ticker is one unit of `runner` (default: sequential in this process), seeded from
    the run seed and the ticker, so the results do not depend on the engine or the jobs. A first
    Ctrl-C (`stop.request()`) ends the training under way after its batch (in this process: units
    in worker processes run to their end) and cancels the tickers not started: the finished ones
    are kept, the others listed in `skipped`, and `panel["settings"]["interrupted"]` is true, as is
    the metrics' `interrupted` of the ticker whose training it cut short (none is scored when it came
    during the global fits); a second one raises `RunInterrupted` (a KeyboardInterrupt) and nothing
    is kept. `targets_until`: as `evaluate`'s (a fold of a panel backtest). With no ticker to score,
    `NothingToScore` (a ConfigError) says why for the first few."""
    stop = token(stop)
    names = panel_models(models)
    configs = {n: (configs or {}).get(n) or _config(n, preset, overrides) for n in names}
    global_factory = global_factory or make_global_model
    target, horizon = configs[names[0]].target, configs[names[0]].horizon
    if any((c.target, c.horizon) != (target, horizon) for c in configs.values()):
        raise ConfigError("all models of one panel run need the same target and horizon")
    start = _day(test_start, "test start") if test_start is not None else default_test_start(panel)
    test_end, train_start = _day(test_end, "test end"), _day(train_start, "train start")
    if test_end is not None and test_end < start:
        raise ConfigError(f"test end {test_end:%Y-%m-%d} is before the test start {start:%Y-%m-%d}")
    if train_start is not None and train_start >= start:
        raise ConfigError(f"train start {train_start:%Y-%m-%d} is not before the test start {start:%Y-%m-%d}")
    panel = panel.judged(start)  # validation on the rows before the test only, as the rest of the split
    need = max(1 if n == "persistence" else c.window for n, c in configs.items()) + horizon
    # who trains: rows before the start only
    trainable = panel.require_history(start, need, train_start=train_start, target=target)
    if not trainable:
        raise trainable.nothing_left(f"no ticker can train before the test start {start:%Y-%m-%d}", panel)
    usable = trainable.require_test_rows(start, test_end)  # who is scored
    if not usable:
        raise usable.nothing_left(f"no ticker to score from {start:%Y-%m-%d}", panel)
    train_end = start - pd.Timedelta(days=1)
    n_global = sum(n in GLOBAL_MODELS for n in names)
    total = len(usable) + n_global
    global_names = [n for n in names if n in GLOBAL_MODELS]
    if runner is not None and runner.jobs > 1 and len(global_names) > 1 and global_factory is make_global_model:
        fitted, failed = _fit_globals(
            runner, trainable, global_names, configs, (train_start, train_end), on_progress, stop, total
        )
    else:
        failed, fitted = [], {}
        threads = DEFAULT_THREADS if runner is None else runner.threads
        for done, name in enumerate(global_names, start=1):
            callback = None if on_epoch is None else on_epoch(name, configs[name])
            try:
                with thread_limit(threads):  # as a unit in a worker would compute (same bits)
                    fitted[name] = global_factory(name, configs[name]).fit_panel(
                        trainable, train_start, train_end, callback, stop, runner
                    )
            except StockrnnError as exc:
                failed.append({"unit": f"{name} (global fit)", "error": str(exc)})
            if on_progress is not None:
                on_progress(f"{name} (global)", done, total)

    scoring, usable = usable, _forecastable(usable, fitted)  # every model is scored on the same tickers
    if not usable:
        raise usable.nothing_left(f"no ticker left to score from {start:%Y-%m-%d}", scoring)
    total = len(usable) + n_global
    shared = dict(
        panel=usable, names=names, configs=configs, fitted=fitted, train_end=train_end, stop=stop,
        spans=dict(
            test_start=start, test_end=test_end, train_start=train_start, cost_bps=cost_bps, targets_until=targets_until
        ),
    )  # fmt: skip
    evaluations, errors, interrupted = _run_tickers(runner, shared, list(usable), on_progress, n_global, total)
    failed += errors
    reached = set(evaluations) | {f["unit"] for f in errors}
    reason = "not evaluated: the run was interrupted (Ctrl-C)"
    cancelled = [{"ticker": t, "reason": reason} for t in usable if t not in reached]

    scored = [n for n in names if n not in GLOBAL_MODELS or n in fitted]
    summary = summary_table({t: e.metrics for t, e in evaluations.items()})
    forecasts = step_one(evaluations, usable, target)
    ic = rank_ic(forecasts, scored)
    few = forecasts["date"].nunique() - len(ic)
    settings = {
        "source": panel.source,
        "tickers_loaded": len(panel),
        "tickers_evaluated": len(evaluations),
        "test_start": start.strftime("%Y-%m-%d"),
        "test_end": max((e.metrics["settings"]["test_end"] for e in evaluations.values()), default=None),
        "train_start": None if train_start is None else train_start.strftime("%Y-%m-%d"),
        "train_end": max(p.frame.loc[:train_end].index[-1] for p in trainable.values()).strftime("%Y-%m-%d"),
        "target": target,
        "horizon": horizon,
        "cost_bps": cost_bps,
        "preset": preset,
        "interrupted": interrupted,
        "rank_ic": {
            "definition": IC_NOTE,
            "min_tickers_per_day": MIN_TICKERS_PER_DAY,
            "days": len(ic),
            "days_left_out": few,  # test days with fewer tickers than that
        },
        "models": {n: _model_settings(n, configs[n], fitted.get(n)) for n in names},
    }
    content = {
        "models": panel_scores(summary, ic),
        "skipped": usable.skipped + cancelled,
        "failed": failed,
        "settings": settings,
        "versions": versions(),
    }
    return PanelEvaluation(evaluations, summary, content, ic)


def _forecastable(panel: Panel, fitted: Mapping[str, object]) -> Panel:
    """The panel without the tickers a fitted global model cannot forecast (one it never saw, its fit
    having skipped it for want of a close or of its inputs), each listed in `skipped` with why."""
    reasons = {}
    for ticker, prices in panel.items():
        for name, model in fitted.items():
            why = model.cannot_forecast(prices)
            if why is not None:
                reasons[ticker] = f"the global {name} model cannot forecast it ({why}): not scored"
                break
    return panel.without(reasons)


def evaluate_ticker(shared: dict, ticker: str) -> Evaluation:
    """One ticker of a panel run (a runner unit): the global members, fresh local models and
    persistence, scored by `evaluate` on the shared date split. `shared["stop"]` is the driver's token
    in the driver's process (the sequential runner), a fresh one nothing sets in a worker process."""
    names, configs, fitted = shared["names"], shared["configs"], shared["fitted"]
    members = [
        _member(n, configs[n], fitted, shared["train_end"]) for n in names if n not in GLOBAL_MODELS or n in fitted
    ]
    panel = shared["panel"]
    settings = {"ticker": ticker, "panel": panel.source}
    evaluation = evaluate(panel[ticker], members, settings=settings, stop=shared["stop"], **shared["spans"])
    evaluation.metrics["interrupted"] = shared["stop"].requested  # its training cut short by a first Ctrl-C
    return evaluation


def make_global_model(name: str, config: ModelConfig) -> object:
    """global_models.make_global, imported when a panel run first needs it (it brings torch)."""
    from .global_models import make_global

    return make_global(name, config)


def fit_global(panel: Panel, name: str, config: dict, span: tuple) -> object:
    """A runner unit: one global model fitted on the shared panel (ensemble members in turn)."""
    return make_global_model(name, ModelConfig.from_dict(config)).fit_panel(panel, *span)


def _fit_globals(
    runner: Runner, panel: Panel, names: list[str], configs: dict, span: tuple,
    on_progress: Progress | None, stop: StopToken, total: int,
) -> tuple[dict, list[dict]]:  # fmt: skip
    """The global models side by side, one runner unit each (same numbers as one after another:
    each fit seeds itself from its config and runs with the runner's threads); no epoch progress."""

    def progress(done: int, failed: int, count: int) -> None:
        if on_progress is not None and done > 0:
            on_progress(f"global model {done}/{count}", done, total)  # printed "global model 1/3 fitted"

    units = [Unit(f"{name} (global fit)", fit_global, (name, configs[name].to_dict(), span)) for name in names]
    outcomes = runner.run(units, panel, progress, stop)
    done = {n: outcomes.get(u.key) for n, u in zip(names, units, strict=True)}
    fitted = {n: outcome.value for n, outcome in done.items() if outcome is not None and outcome.ok}
    failed = [
        {"unit": u.key, "error": _error(outcomes[u.key].error, outcomes[u.key].error_type)}
        for u in units
        if u.key in outcomes and not outcomes[u.key].ok
    ]
    return fitted, failed


def _run_tickers(
    runner: Runner | None, shared: dict, tickers: list[str], on_progress: Progress | None, before: int, total: int
) -> tuple[dict[str, Evaluation], list[dict], bool]:
    """Every ticker as a unit of `runner`: (evaluations in ticker order, failures, interrupted)."""

    def progress(done: int, failed: int, count: int) -> None:
        if on_progress is not None and done > 0:
            on_progress("tickers", before + done, total)

    runner = runner if runner is not None else SequentialRunner()
    units = [Unit(ticker, evaluate_ticker, (ticker,)) for ticker in tickers]
    outcomes = runner.run(units, shared, progress, shared["stop"])  # a second Ctrl-C (RunInterrupted): exit 130
    interrupted = shared["stop"].requested  # a first Ctrl-C: units not started were cancelled
    evaluations = {t: outcomes[t].value for t in tickers if t in outcomes and outcomes[t].ok}
    failed = [
        {"unit": t, "error": _error(outcomes[t].error, outcomes[t].error_type)}
        for t in tickers
        if t in outcomes and not outcomes[t].ok
    ]
    return evaluations, failed, interrupted


def _error(message: str | None, error_type: str | None) -> str:
    """A failure's message; a bug (not one of our errors) keeps its type, as `main` prints it."""
    ours = {"StockrnnError", "DataError", "ConfigError", "TrainingError"}
    return str(message) if error_type in ours else f"{error_type}: {message}"


def step_one(evaluations: Mapping[str, Evaluation], panel: Mapping[str, Prices], target: str) -> pd.DataFrame:
    """Every ticker's scored step-1 forecasts with the last close before each (the last target price
    in data without a close): `date, ticker, last_close, actual, <model>...`; days whose target was
    repaired are left out, as in scoring."""
    parts = []
    for ticker, evaluation in evaluations.items():
        prices = panel[ticker]
        rows = evaluation.predictions[evaluation.predictions["step"] == 1]
        rows = rows[~rows["date"].isin(prices.repairs.changed_dates(target))]
        base = "close" if "close" in prices.frame.columns else target  # as features.py without a close
        close = prices.frame[base].reindex(rows["origin"]).to_numpy()
        parts.append(rows[["date", "actual", *evaluation.models]].assign(ticker=ticker, last_close=close))
    if not parts:
        return pd.DataFrame(columns=["date", "ticker", "last_close", "actual"])
    return pd.concat(parts, ignore_index=True)


def _day(value: str | pd.Timestamp | None, what: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise ConfigError(f"{what} '{value}' is not a date (use YYYY-MM-DD)") from None


def _config(name: str, preset: str | None, overrides: dict) -> ModelConfig:
    """A local model or persistence: the single-ticker config; a global model: the global defaults
    (global_models.global_config), then the preset, then the overrides."""
    if name in GLOBAL_MODELS:
        from .global_models import global_config

        return global_config(name, preset, **overrides)
    return model_config(name.removesuffix("_local"), preset, **overrides)


def _model_settings(name: str, config: ModelConfig, fitted_model) -> dict:
    """panel.json's settings of one model: its kind, its config and, for a global model, the
    tickers its panel fit left out (with reasons), so that none is dropped silently."""
    kind = "global" if name in GLOBAL_MODELS else "local" if name in LOCAL_MODELS else "baseline"
    entry = {"kind": kind, "config": config.to_dict()}
    if fitted_model is not None:
        fitted = getattr(fitted_model, "fitted_", {})
        entry["fit_skipped"] = list(fitted.get("skipped", []))
        entry["windows"] = fitted.get("windows")
    return entry


def _member(name: str, config: ModelConfig, fitted: dict, train_end: pd.Timestamp):
    """The forecaster `evaluate` gets for this model on one ticker (a fresh one for local models)."""
    if name in fitted:
        return GlobalMember(fitted[name], train_end)
    model = make_forecaster(name.removesuffix("_local"), config)
    model.name = name
    return model
