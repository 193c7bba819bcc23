"""Walk-forward backtest of a panel: at each refit date the global models are fitted afresh on every
ticker's rows before it (and the local models per ticker), each ticker is forecast until the next
refit date, and every ticker's out-of-sample forecasts are scored together, then the panel scores.

Each fold is one `evaluate_panel` run on that fold's test span (so the same no-look-ahead split and
the same runner units); the refit dates follow `backtest.refit_positions` on the union of the
panel's dates. Expanding training windows only (every row before the refit date)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from .backtest import FOLD_KEYS, refit_positions
from .config import ModelConfig
from .errors import ConfigError, NothingToScore
from .evaluate import BANDS, DEFAULT_COST_BPS, Evaluation
from .forecaster import make_forecaster
from .interrupt import StopToken, token
from .panel import Panel
from .panel_eval import (
    GLOBAL_MODELS,
    GlobalMember,
    PanelEvaluation,
    Progress,
    _config,
    _day,
    default_test_start,
    evaluate_panel,
    panel_models,
    step_one,
)
from .panel_metrics import panel_scores, rank_ic, summary_table
from .scoring import model_settings, run_metrics

FoldCallback = Callable[[int, int, dict], None]  # (folds done, folds, the fold just done)


def backtest_panel(
    panel: Panel,
    models: str | Sequence[str] | None = None,
    test_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
    refit_every: int = 63,
    train_start: str | pd.Timestamp | None = None,
    configs: Mapping[str, ModelConfig] | None = None,
    preset: str | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
    runner=None,
    on_fold: FoldCallback | None = None,
    on_progress: Progress | None = None,
    on_epoch=None,
    stop: StopToken | None = None,
    **overrides,
) -> PanelEvaluation:
    """Refit and forecast fold by fold, then score each ticker over all its folds (its metrics.json
    gets `folds`) and the panel over the combined scores; panel.json gets `folds`. A ticker or
    global fit that fails in a fold is listed in `failed` as "<unit> (fold k)"; a ticker scored
    in no fold is listed in `skipped` with its first reason. A first Ctrl-C (`stop`) ends after the fold
    (before it, when no ticker of the fold was scored yet); every ticker is then marked interrupted."""
    stop = token(stop)
    names = panel_models(models)
    configs = {n: (configs or {}).get(n) or _config(n, preset, overrides) for n in names}
    dates = panel.dates  # of every ticker that read: held ones too
    start = _day(test_start, "test start") if test_start is not None else default_test_start(panel)
    first = int(dates.searchsorted(start))
    last = len(dates) - 1 if test_end is None else int(dates.searchsorted(_day(test_end, "test end"), "right")) - 1
    if first >= len(dates) or last < first:
        raise ConfigError(f"{panel.source}: no date of the panel in the test span from {start:%Y-%m-%d}")
    starts = refit_positions(first, last, refit_every)
    runs, folds, empty, read = [], [], None, panel.loaded
    for i, begin in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else last
        span = {"fold": i + 1, "test_start": f"{dates[begin]:%Y-%m-%d}", "test_end": f"{dates[end]:%Y-%m-%d}"}
        try:
            result = evaluate_panel(
                panel, names, dates[begin], dates[end], train_start, configs, preset, on_progress, cost_bps=cost_bps,
                runner=runner, on_epoch=on_epoch, stop=stop, targets_until=dates[last],
            )  # fmt: skip
        except NothingToScore as exc:  # no ticker of this fold can be scored: the others go on
            empty = empty or exc
            runs.append(None)
            left = [e for e in exc.skipped if e["ticker"] in read]
            folds.append({**span, "train_end": None, "tickers_evaluated": 0, "models": {}, "skipped": left})
            if on_fold is not None:
                on_fold(i + 1, len(starts), folds[-1])
            continue
        if stop.requested and not result.evaluations and any(runs):
            break  # a first Ctrl-C during this fold's global fits: the folds before it stand
        fold = {
            **span,
            "train_end": result.panel["settings"]["train_end"],
            "tickers_evaluated": len(result.evaluations),
            "models": {n: m["median_skill"] for n, m in result.panel["models"].items()},  # median skill
            "skipped": [e for e in result.panel["skipped"] if e["ticker"] in read],  # read, not scored here
        }
        runs.append(result)
        folds.append(fold)
        if on_fold is not None:
            on_fold(i + 1, len(starts), fold)
        if stop.requested:
            break
    if not any(runs):
        raise empty
    return _combine(panel, runs, folds, names, configs, refit_every, train_start, cost_bps, stop.requested)


def _combine(panel, runs, folds, names, configs, refit_every, train_start, cost_bps, interrupted) -> PanelEvaluation:
    """The folds' per-ticker evaluations joined and scored per ticker, then the panel scores. A fold
    with no ticker to score has no run (None); a ticker left out of some folds is listed with them."""
    done = [(f, r) for f, r in zip(folds, runs, strict=True) if r is not None]
    failed = [
        {"unit": f"{entry['unit']} (fold {f['fold']})", "error": entry["error"]} for f, r in done for entry in r.failed
    ]
    # A global model whose fit failed in a fold has no forecast for any ticker there: scored over its
    # other folds it would rest on the tickers those folds hold, so it is not scored at all.
    lost = {n: [f["fold"] for f, r in done if n in _failed_fits(r)] for n in names}
    lost = {n: ks for n, ks in lost.items() if ks}
    for name, ks in lost.items():
        where = ", ".join(map(str, ks))
        failed.append({"unit": f"{name} (global)", "error": f"not scored: its fit failed in fold {where}"})
    evaluations = {}
    for ticker, prices in panel.loaded.items():  # a ticker held back at load may pass in a fold
        parts = [(f["fold"], r.evaluations[ticker]) for f, r in done if ticker in r.evaluations]
        if parts:
            evaluations[ticker] = _ticker(
                prices, parts, configs, refit_every, train_start, cost_bps, panel, interrupted, set(lost)
            )
    skipped, seen = [], set()
    for r in (r for r in runs if r is not None):
        for entry in r.panel["skipped"]:
            if entry["ticker"] not in evaluations and entry["ticker"] not in seen:
                skipped.append(entry)
                seen.add(entry["ticker"])
    partly = {}  # ticker -> the folds it was left out of, with the first reason
    for fold in folds:
        for entry in fold["skipped"]:
            if entry["ticker"] in evaluations:
                partly.setdefault(entry["ticker"], {"ticker": entry["ticker"], "folds": [], "reason": entry["reason"]})
                partly[entry["ticker"]]["folds"].append(fold["fold"])
    scored = sorted({n for e in evaluations.values() for n in e.models}, key=names.index)
    summary = summary_table({t: e.metrics for t, e in evaluations.items()})
    forecasts = step_one(evaluations, panel.loaded, configs[names[0]].target)
    ic = rank_ic(forecasts, scored)
    settings = copy.deepcopy(done[-1][1].panel["settings"])
    settings.update(
        tickers_evaluated=len(evaluations),
        test_start=folds[0]["test_start"],
        test_end=folds[-1]["test_end"],
        train_end=done[0][0]["train_end"],
        refit_every=refit_every,
        window_mode="expanding",
        interrupted=interrupted,
    )
    settings["rank_ic"].update(days=len(ic), days_left_out=forecasts["date"].nunique() - len(ic))
    content = {
        "models": panel_scores(summary, ic),
        "skipped": skipped,
        "left_out_of_folds": list(partly.values()),
        "failed": failed,
        "folds": folds,
        "settings": settings,
        "versions": done[-1][1].panel["versions"],
    }
    return PanelEvaluation(evaluations, summary, content, ic)


def _failed_fits(run: PanelEvaluation) -> set[str]:
    """The global models whose fit failed in this fold's run."""
    return {n for n in GLOBAL_MODELS if any(f["unit"] == f"{n} (global fit)" for f in run.failed)}


def _ticker(prices, parts, configs, refit_every, train_start, cost_bps, panel, interrupted, lost) -> Evaluation:
    """One ticker's folds as one evaluation: predictions with a `fold` column, scored together, for
    the models it has in every fold but those in `lost` (a global fit failed in some fold)."""
    names = [n for n in parts[0][1].models if n not in lost and all(n in e.models for _, e in parts)]
    columns = ["origin", "date", "step", "actual", *names, *(f"{n}_{b}" for n in names for b in BANDS)]
    predictions = pd.concat(
        [e.predictions[[c for c in columns if c in e.predictions]].assign(fold=k) for k, e in parts], ignore_index=True
    )
    predictions.insert(3, "fold", predictions.pop("fold"))
    index = prices.index
    first = int(index.searchsorted(pd.Timestamp(parts[0][1].metrics["settings"]["test_start"])))
    last = int(index.searchsorted(pd.Timestamp(parts[-1][1].metrics["settings"]["test_end"]), "right")) - 1
    train_end = parts[0][1].metrics["settings"]["train_end"]
    models = [_stand_in(n, configs[n], train_end) for n in names]
    rows = len(prices.frame.loc[train_start:train_end])
    run = {"refit_every": refit_every, "window_mode": "expanding", "train_start": f"{index[0]:%Y-%m-%d}"}
    if train_start is not None:
        run["train_start"] = f"{prices.frame.loc[train_start:].index[0]:%Y-%m-%d}"
    entries = {m.name: model_settings(m) for m in models}
    settings = {"ticker": prices.name, "panel": panel.source}
    metrics = run_metrics(prices, predictions, models, first, last, run, entries, rows, cost_bps, settings)
    train_ends = {k: e.metrics["settings"]["train_end"] for k, e in parts}
    folds = [
        {
            "fold": k,
            "train_start": e.metrics["settings"]["train_start"],
            "train_end": e.metrics["settings"]["train_end"],
            "test_start": e.metrics["settings"]["test_start"],
            "test_end": e.metrics["settings"]["test_end"],
            "train_rows": len(prices.frame.loc[e.metrics["settings"]["train_start"] : train_ends[k]]),
            "models": {n: {key: e.metrics["models"][n].get(key) for key in FOLD_KEYS} for n in names},
        }
        for k, e in parts
    ]
    metrics = {"models": metrics.pop("models"), "folds": folds, **metrics, "interrupted": interrupted}
    return Evaluation(predictions, metrics, names)


def _stand_in(name: str, config: ModelConfig, train_end: str):
    """An unfitted model of this name and config, for the settings and warnings of metrics.json."""
    if name in GLOBAL_MODELS:
        from .global_models import make_global

        return GlobalMember(make_global(name, config), pd.Timestamp(train_end))
    model = make_forecaster(name.removesuffix("_local"), config)
    model.name = name
    return model
