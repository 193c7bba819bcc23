"""The CLI over a folder of tickers: `evaluate --data FOLDER` (a panel run), `fit --data FOLDER`
(a global model) and `predict DIR --data FOLDER` (every ticker's forecast)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .cli_common import check_preset_span, command_line, day, make_config, out_folder, stop_token
from .errors import ConfigError, Interrupted
from .progress import PanelProgress, output_console, strong

GLOBAL_NAMES = ("lstm", "gru", "ridge")  # panel_eval.GLOBAL_MODELS, without importing torch
SHOWN = 20  # tickers whose forecast fit prints


def panel_config(name: str, preset: str | None, target: str, options: dict):
    """A panel model's config: a global one from `global_config` (its own defaults: window 20,
    64 units, ...), then --preset or --preset-file, then the explicit options; a local one or
    persistence as on a single file."""
    if name not in GLOBAL_NAMES:
        return make_config(name.removesuffix("_local"), preset, target, options)
    from .global_models import global_config
    from .presets import load_preset_file

    values = {k: v for k, v in options.items() if k != "preset_file"}
    if options.get("preset_file") is None:
        return global_config(name, preset, target=target, **values)
    if preset is not None:
        raise ConfigError("give --preset or --preset-file, not both")
    file_values = load_preset_file(options["preset_file"])
    explicit = {k: v for k, v in values.items() if v is not None}
    return global_config(name, None, **{**file_values, "target": target, **explicit})


def make_panel_runner(runner: dict, seed: int):
    """The runner of --engine/--jobs/--threads/--address; --threads also sets the driver's torch
    and BLAS threads (the global fits), so every engine computes with the same thread count."""
    from .runners import limit_threads, make_runner

    made = make_runner(runner["engine"], runner["jobs"], runner["threads"], runner["address"], seed)
    limit_threads(runner["threads"])
    return made


def writers(runner: dict, engine) -> int:
    """Processes that write the ticker folders: the local engine's jobs (Ray's workers may be on
    other machines, so a Ray run writes here, in this process)."""
    return engine.jobs if runner["engine"] == "local" else 1


def run_panel(
    source, target, test_start, test_end, train_start, model_names, out, quiet, options, allow_gaps, cost_bps, report,
    skip_bad, runner,
):  # fmt: skip
    """`evaluate --data FOLDER`: load the panel, fit the global models, evaluate every ticker
    (each a runner unit), write and print the panel outputs; returns the PanelEvaluation."""
    from .panel import load_panel
    from .panel_eval import default_test_start, evaluate_panel, panel_models
    from .panel_outputs import write_panel
    from .panel_tables import print_panel

    names = panel_models(model_names)
    preset = options.pop("preset", None)
    configs = {name: panel_config(name, preset, target, options) for name in names}
    spans = dict(
        test_start=day(test_start, "--test-start"),
        test_end=day(test_end, "--test-end"),
        train_start=day(train_start, "--train-start"),
    )
    engine = make_panel_runner(runner, options["seed"])
    out = out_folder(out, Path("runs") / f"{Path(source).resolve().name}-{target}", source, options.get("preset_file"))
    console = output_console()
    started = time.perf_counter()
    progress = PanelProgress(quiet)
    with progress, engine:
        panel = load_panel(source, skip_bad=skip_bad, allow_gaps=allow_gaps, on_load=progress.loaded)
        check_preset_span(options, spans["test_start"] or default_test_start(panel))
        result = evaluate_panel(
            panel, names, configs=configs, preset=preset, cost_bps=cost_bps, runner=engine,
            on_progress=progress.unit, on_epoch=progress.epochs, stop=stop_token(), **spans,
        )  # fmt: skip
    nothing_scored(result)
    settings = result.panel["settings"]
    settings.update(seconds=round(time.perf_counter() - started, 1), preset_file=options.get("preset_file"))
    settings["runner"] = {k: runner[k] for k in ("engine", "jobs", "threads")}
    write_panel(result, out, report=report, command=command_line(), jobs=writers(runner, engine))
    print_panel(console, result)
    for name, entry in settings["models"].items():
        if entry.get("windows") is not None:
            console.print(f"global {name}: fitted on {entry['windows']:,} training windows")
    note = " (interrupted: the tickers finished so far)" if settings.get("interrupted") else ""
    files = f": one folder per ticker ({len(result.evaluations)}), summary.csv, panel.json, rank_ic.csv"
    console.print(strong("Outputs in ", (str(out), "bold"), f"{files}{', report.html' if report else ''}{note}"))
    return result


def nothing_scored(result) -> None:
    """A first Ctrl-C before any ticker was scored (during the global fits): an empty summary is no
    result, so the run ends as a second Ctrl-C would (exit 130), writing nothing."""
    if result.panel["settings"].get("interrupted") and not result.evaluations:
        raise Interrupted("interrupted before any ticker was scored: nothing written")


def backtest_folder(
    source, target, model_names, test_start, test_end, train_start, refit_every, window_mode, train_days, out,
    allow_gaps, skip_bad, report, quiet, options, runner,
):  # fmt: skip
    """`backtest --data FOLDER`: the panel refitted at each refit date (global models included),
    written as a panel run whose panel.json and metrics.json files carry `folds`."""
    from .panel import load_panel
    from .panel_backtest import backtest_panel
    from .panel_eval import default_test_start, panel_models
    from .panel_outputs import write_panel
    from .panel_tables import print_panel

    if window_mode != "expanding" or train_days is not None:
        raise ConfigError("backtest on a folder trains on every row before each refit date: no --window-mode rolling")
    names = panel_models(model_names)
    preset, cost_bps = options.pop("preset", None), options.pop("cost_bps")
    configs = {name: panel_config(name, preset, target, options) for name in names}
    days = day(test_start, "--test-start"), day(test_end, "--test-end"), day(train_start, "--train-start")
    engine = make_panel_runner(runner, options["seed"])
    out = out_folder(
        out, Path("runs") / f"backtest-{Path(source).resolve().name}-{target}", source, options.get("preset_file")
    )
    console = output_console()
    started = time.perf_counter()
    progress = PanelProgress(quiet)
    with progress, engine:
        panel = load_panel(source, skip_bad=skip_bad, allow_gaps=allow_gaps, on_load=progress.loaded)
        check_preset_span(options, days[0] or default_test_start(panel))
        result = backtest_panel(
            panel, names, days[0], days[1], refit_every, days[2], configs, preset, cost_bps, engine, progress.fold,
            progress.unit, progress.epochs, stop=stop_token(),
        )  # fmt: skip
    nothing_scored(result)
    settings = result.panel["settings"]
    settings.update(seconds=round(time.perf_counter() - started, 1), preset_file=options.get("preset_file"))
    settings["runner"] = {k: runner[k] for k in ("engine", "jobs", "threads")}
    write_panel(result, out, report=report, command=command_line(), jobs=writers(runner, engine))
    print_panel(console, result)
    console.print(f"{len(result.panel['folds'])} folds, refit every {refit_every} trading days")
    files = f": one folder per ticker ({len(result.evaluations)}), summary.csv, panel.json (with folds), rank_ic.csv"
    console.print(strong("Outputs in ", (str(out), "bold"), f"{files}{', report.html' if report else ''}"))
    return result


def fit_panel(source, target, model_name, train_start, train_end, save_dir, allow_gaps, skip_bad, quiet, options):
    """`fit --data FOLDER`: one global model on the training rows of every ticker, saved; prints
    the next-day forecast of the first tickers."""
    import pandas as pd

    from .global_models import make_global
    from .panel import load_panel

    if model_name not in GLOBAL_NAMES:
        raise ConfigError(
            f"{source}: is a folder; fit and predict take one price file for the {model_name} model "
            f"(a folder fits a global {', '.join(GLOBAL_NAMES)})"
        )
    preset = options.pop("preset", None)
    config = panel_config(model_name, preset, target, options)
    start, end = day(train_start, "--train-start"), day(train_end, "--train-end")
    default = Path("runs") / "models" / f"{Path(source).resolve().name}-{target}-global_{model_name}"
    save_dir = out_folder(save_dir, default, source, options.get("preset_file"))
    progress = PanelProgress(quiet)
    with progress:
        loaded = load_panel(source, skip_bad=skip_bad, allow_gaps=allow_gaps, on_load=progress.loaded)
        panel = loaded if end is None else loaded.judged(end + pd.Timedelta(days=1))  # on the training rows
        if not panel:
            raise panel.nothing_left("no ticker to train on", loaded)
        model = make_global(model_name, config).fit_panel(
            panel, start, end, progress.epochs(model_name, config), stop=stop_token()
        )
    model.save(save_dir)
    console = output_console()
    f = model.fitted_
    console.print(
        f"global {model_name} fitted on {f['tickers']} tickers ({f['windows']:,} windows, {f['first']} .. "
        f"{f['last']}); {len(panel.skipped) + len(f['skipped'])} skipped"
    )
    for entry in [*panel.skipped, *f["skipped"]]:
        console.print(f"  skipped {entry['ticker']}: {entry['reason']}")
    for entry in (s for s in loaded.skipped if s["ticker"] in panel):  # its training rows pass, its file fails
        console.print(f"  trained on, not forecast {entry['ticker']}: {entry['reason']}")
    # a ticker delisted before the training end trains the model but has no next day to forecast
    current = [t for t in loaded if t in model.series_ and loaded[t].index[-1] >= model.train_end_]
    tables = [model.predict(loaded[t], 1).assign(ticker=t) for t in current[:SHOWN]]
    if tables:
        print_panel_forecast(console, forecast_table(tables), f"global {model_name} next-day forecast of {target}")
    more = f" (forecasts of the first {SHOWN} shown)" if len(current) > SHOWN else ""
    console.print(strong(f"Saved the global {model_name} model in ", (str(save_dir), "bold"), more))


def predict_panel(model, source, horizon, out, allow_gaps, skip_bad, report: bool = True) -> None:
    """`predict DIR --data FOLDER` with a global model: one table (date, ticker, forecast, bounds);
    `--out DIR` writes it as forecast.csv with report.html (the table, the data, the model)."""
    from .files import atomic_dir, atomic_file
    from .panel import load_panel

    if not hasattr(model, "fit_panel"):
        raise ConfigError(
            f"{source}: is a folder; the saved {model.name} model is a single-ticker model: predict it on one file"
        )
    panel = load_panel(source, skip_bad=skip_bad, allow_gaps=allow_gaps)
    tables, failed, revised = [], [], []
    for ticker, prices in panel.items():
        try:
            tables.append(model.predict(prices, horizon).assign(ticker=ticker))
        except ConfigError as exc:
            failed.append({"ticker": ticker, "reason": str(exc)})
            continue
        if model.check_data(prices) is not None:
            revised.append(ticker)
    if not tables:
        why = next(iter([*failed, *panel.skipped]), {"reason": "no ticker"})["reason"]
        raise ConfigError(f"{source}: no ticker could be forecast ({why})")
    table = forecast_table(tables)
    warning = None
    if revised:
        names = ", ".join(revised[:5]) + (f" and {len(revised) - 5} more" if len(revised) > 5 else "")
        warning = (
            f"{source}: the training rows of {len(revised)} ticker(s) differ from those the global {model.name} "
            f"model was trained on (revised or other data): {names}"
        )
    if out and str(out).lower().endswith(".csv"):
        with atomic_file(out) as tmp:
            table.to_csv(tmp, index=False, date_format="%Y-%m-%d")
    elif out:
        from .forecaster import versions
        from .model_commands import fitted_settings
        from .report import write_report

        with atomic_dir(out) as tmp:
            table.to_csv(tmp / "forecast.csv", index=False, date_format="%Y-%m-%d")
            if report:
                data = {"source": str(source), "name": panel.source, "target": model.config.target,
                        "tickers": len(tables), "skipped": [*panel.skipped, *failed],
                        "warnings": [warning] if warning else []}  # fmt: skip
                settings = {"model": f"global {model.name}", "fitted": fitted_settings(model),
                            "config": model.config.to_dict()}  # fmt: skip
                metadata = {"data": data, "settings": settings, "versions": versions()}
                write_report(tmp / "report.html", forecast=table.set_index("date"), metadata=metadata,
                             command=command_line())  # fmt: skip
    if warning:  # after every check, so that a failing run prints its error line alone
        print(f"stockrnn: warning: {warning}", file=sys.stderr)
    console = output_console()
    print_panel_forecast(console, table, f"global {model.name} forecast of {model.config.target}")
    for entry in [*panel.skipped, *failed]:
        console.print(f"  skipped {entry['ticker']}: {entry['reason']}")
    if out:
        where = out if str(out).lower().endswith(".csv") else Path(out) / "forecast.csv"
        console.print(strong("Written to ", (str(where), "bold")))


def forecast_table(tables: list):
    """Per-ticker forecasts (indexed by date, with a ticker column) as one table: date, ticker,
    forecast, lo80, hi80, lo95, hi95."""
    import pandas as pd

    table = pd.concat(tables).reset_index()
    return table[["date", "ticker", *[c for c in table.columns if c not in ("date", "ticker")]]]


def print_panel_forecast(console, table, title: str) -> None:
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for column in table.columns:
        out.add_column(column, justify="left" if column in ("date", "ticker") else "right")
    for row in table.itertuples(index=False):
        out.add_row(f"{row[0]:%Y-%m-%d}", str(row[1]), *(f"{v:.6g}" for v in row[2:]))
    console.print(out)
