"""The `stockrnn` command: argument parsing and printing over the public API, nothing else."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__, interrupt
from .config import MODELS, NETWORKS, model_config, parse_models
from .errors import ConfigError, StockrnnError
from .files import atomic_dir, atomic_file
from .options import (
    DATA_HELP,
    ONE_SOURCE_HELP,
    WINDOW_MODES,
    allow_gaps_option,
    cost_option,
    network_options,
    report_option,
)
from .progress import FoldProgress, TrainingProgress, output_console

if TYPE_CHECKING:  # the modules that need torch, scikit-learn or pandas load inside the commands
    import pandas as pd

    from .data import Prices
    from .evaluate import Evaluation

DEMO = dict(data="sp500", train_start="2010-01-01", test_start="2018-01-01", preset="quick")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stockrnn")
def cli() -> None:
    """Forecast stock prices with LSTM and GRU networks, and see honestly whether they beat
    the naive forecast "tomorrow = today"."""


@cli.command("evaluate")
@click.option("--data", "source", default="sp500", show_default=True, help=DATA_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option("--test-start", help="First test day, YYYY-MM-DD.  [default: the last 252 rows]")
@click.option("--test-end", help="Last test day, YYYY-MM-DD.  [default: the last row]")
@click.option("--train-start", help="First training day, YYYY-MM-DD.  [default: the first row]")
@click.option(
    "--models",
    "model_names",
    default="lstm,gru,persistence,ridge",
    show_default=True,
    help="Comma-separated: lstm, gru, persistence, ridge. Persistence is always computed.",
)
@network_options
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder; a folder run writes OUT/<ticker>/... and OUT/summary.csv.  [default: runs/<data>-<target>]",
)
@cost_option
@allow_gaps_option
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate_command(
    source: str, target: str, test_start, test_end, train_start, model_names: str, out, quiet: bool, **options
) -> None:
    """Fit on the data before --test-start, forecast every test day from the days before it,
    score each model against persistence and write metrics.json, predictions.csv, forecast.png.
    With a folder as --data, the same for each ticker, plus summary.csv. Networks get 80% and 95%
    intervals; with --target close, a long-or-flat trading diagnostic is printed and saved."""
    allow_gaps, cost_bps, report = options.pop("allow_gaps"), options.pop("cost_bps"), not options.pop("no_report")
    run_evaluation(
        source, target, test_start, test_end, train_start, model_names, out, quiet, options, allow_gaps, cost_bps,
        report,
    )  # fmt: skip


@cli.command("demo")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo_command(out: str, quiet: bool, no_report: bool) -> None:
    """`evaluate` on the built-in S&P 500 index (train 2010-2017, test 2018) with the small
    `quick` preset: a first look in well under two minutes."""
    run_evaluation(
        DEMO["data"],
        "high",
        DEMO["test_start"],
        None,
        DEMO["train_start"],
        "lstm,gru,persistence,ridge",
        out,
        quiet,
        {"preset": DEMO["preset"], "horizon": 1, "seed": 0, "device": "auto"},
        report=not no_report,
    )


def run_evaluation(
    source, target, test_start, test_end, train_start, model_names, out, quiet, options, allow_gaps=False, cost_bps=5.0,
    report=True,
) -> Evaluation | dict[str, Evaluation]:  # fmt: skip
    """`evaluate` for one source, or for each ticker of a folder (then a dict ticker -> Evaluation)."""
    from .data import load_prices
    from .outputs import write_evaluation
    from .tables import print_data, print_table

    names = parse_models(model_names)
    preset = options.pop("preset", None)
    configs = {name: make_config(name, preset, target, options) for name in names}
    console = output_console()
    spans = dict(
        test_start=_day(test_start, "--test-start"),
        test_end=_day(test_end, "--test-end"),
        train_start=_day(train_start, "--train-start"),
        cost_bps=cost_bps,
    )
    settings = {"preset": preset, "preset_file": options.get("preset_file"), "data": source}
    if Path(str(source)).is_dir():
        return run_folder(console, source, target, spans, configs, out, quiet, settings, allow_gaps, report)
    prices = load_prices(source, allow_gaps=allow_gaps)
    prices.column(target)
    out = Path(out) if out else Path("runs") / f"{prices.name}-{target}"
    print_data(console, prices)
    evaluation = evaluate_one(prices, configs, spans, settings, quiet)
    write_evaluation(evaluation, out, report, command_line())
    print_table(console, evaluation)
    files = ["metrics.json", "predictions.csv", "forecast.png"]
    files += ["error_by_step.png"] if evaluation.horizon > 1 else []
    files += ["report.html"] if report else []
    console.print(f"Outputs in [bold]{out}[/]: {', '.join(files)}")
    return evaluation


def run_folder(
    console, folder, target, spans, configs, out, quiet, settings, allow_gaps, report=True
) -> dict[str, Evaluation]:
    """Each ticker through the single-source path; all outputs appear together or not at all."""
    import pandas as pd

    from .data import load_folder
    from .outputs import write_evaluation
    from .tables import print_data, print_table

    panel = load_folder(folder, allow_gaps=allow_gaps)
    for prices in panel.values():  # every file is checked before any training starts
        prices.column(target)
    out = Path(out) if out else Path("runs") / f"{Path(folder).resolve().name}-{target}"
    evaluations, rows = {}, []
    with atomic_dir(out) as tmp:
        for ticker, prices in panel.items():
            print_data(console, prices)
            evaluation = evaluate_one(prices, configs, spans, {**settings, "ticker": ticker}, quiet, ticker)
            write_evaluation(evaluation, tmp / safe_name(ticker), report, command_line())
            print_table(console, evaluation)
            evaluations[ticker] = evaluation
            for name in evaluation.models:
                m = evaluation.metrics["models"][name]
                rows.append(
                    {"ticker": ticker, "model": name, **{k: m[k] for k in ("rmse", "mae", "skill", "dm_pvalue")}}
                )
        pd.DataFrame(rows).to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
    console.print(f"Outputs in [bold]{out}[/]: one folder per ticker ({len(panel)}) and summary.csv")
    return evaluations


def safe_name(ticker: str) -> str:
    """A ticker as a folder name ('BRK/B' -> 'BRK_B')."""
    return re.sub(r"[^\w.\-^=]", "_", ticker).lstrip(".") or "ticker"


def evaluate_one(
    prices: Prices, configs: dict, spans: dict, settings: dict, quiet: bool, ticker: str | None = None
) -> Evaluation:
    """Fit and score fresh models on one ticker; marks the run interrupted after a first Ctrl-C."""
    from .evaluate import evaluate
    from .forecaster import make_forecaster

    started = time.perf_counter()
    progress = TrainingProgress(quiet)
    models = []
    for name, config in configs.items():
        callback = progress.callback(name, config, ticker) if name in NETWORKS else None
        models.append(make_forecaster(name, config, callback))
    with progress:
        evaluation = evaluate(prices, models, settings=settings, **spans)
    evaluation.metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    evaluation.metrics["interrupted"] = interrupt.requested()
    return evaluation


@cli.command("backtest")
@click.option("--data", "source", default="sp500", show_default=True, help=ONE_SOURCE_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option(
    "--models",
    "model_names",
    default="lstm,gru,persistence,ridge",
    show_default=True,
    help="Comma-separated: lstm, gru, persistence, ridge. Persistence and ridge are always in.",
)
@click.option(
    "--test-start", help="First out-of-sample day and first refit date, YYYY-MM-DD.  [default: the last 252 rows]"
)
@click.option("--test-end", help="Last out-of-sample day, YYYY-MM-DD.  [default: the last row]")
@click.option("--train-start", help="First training day of the expanding window, YYYY-MM-DD.  [default: the first row]")
@click.option(
    "--refit-every",
    type=click.IntRange(min=0),
    default=63,
    show_default=True,
    help="Refit every N trading days (63: a quarter); 0 fits once.",
)
@click.option(
    "--window-mode",
    type=click.Choice(WINDOW_MODES),
    default="expanding",
    show_default=True,
    help="Train on every row before the refit date (expanding) or the last --train-days (rolling).",
)
@click.option("--train-days", type=click.IntRange(min=1), help="Trading days of each training span (rolling mode).")
@network_options
@cost_option
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder.  [default: runs/backtest-<data>-<target>]",
)
@allow_gaps_option
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def backtest_command(
    source, target, model_names, test_start, test_end, train_start, refit_every, window_mode, train_days, out,
    allow_gaps, no_report, quiet, **options,
) -> None:  # fmt: skip
    """Walk forward from --test-start: at every refit date fit each model afresh (scaler and
    weights) on the data before it, forecast each day until the next refit date from the days
    before it, and score all out-of-sample forecasts together and per fold. Writes metrics.json
    (with `folds`), predictions.csv, forecast.png, folds.png and error_by_step.png."""
    from .backtest import backtest
    from .forecaster import make_forecaster
    from .outputs import write_backtest
    from .tables import print_data, print_folds, print_table

    names = parse_models(model_names)
    preset, cost_bps = options.pop("preset", None), options.pop("cost_bps")
    configs = {name: make_config(name, preset, target, options) for name in names}
    days = _day(test_start, "--test-start"), _day(test_end, "--test-end"), _day(train_start, "--train-start")
    console = output_console()
    prices = load_one(source, allow_gaps, "backtest takes")
    prices.column(target)
    out = Path(out) if out else Path("runs") / f"backtest-{prices.name}-{target}"
    print_data(console, prices)
    started = time.perf_counter()
    progress = FoldProgress(quiet)
    models = [make_forecaster(name, config) for name, config in configs.items()]
    try:
        result = backtest(
            prices, models, days[0], days[1], refit_every, window_mode, train_days, days[2],
            settings={"preset": preset, "preset_file": options.get("preset_file"), "data": source},
            cost_bps=cost_bps, on_fold=progress.update,
        )  # fmt: skip
    finally:
        progress.stop()
    result.metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    write_backtest(result, out, not no_report, command_line())
    print_table(console, result)
    print_folds(console, result)
    report = "" if no_report else ", report.html"
    console.print(
        f"Outputs in [bold]{out}[/]: metrics.json, predictions.csv, forecast.png, folds.png, error_by_step.png{report}"
    )


@cli.command("fit")
@click.option("--data", "source", default="sp500", show_default=True, help=ONE_SOURCE_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option(
    "--model", "model_name", type=click.Choice(MODELS), default="lstm", show_default=True, help="Model to fit."
)
@click.option("--train-start", help="First training day, YYYY-MM-DD.  [default: the first row]")
@click.option("--train-end", help="Last training day, YYYY-MM-DD.  [default: the last row]")
@network_options
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False),
    help="Folder for model.json and weights.safetensors.  [default: runs/models/<data>-<target>-<model>]",
)
@allow_gaps_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def fit_command(source, target, model_name, train_start, train_end, save_dir, allow_gaps, quiet, **options) -> None:
    """Fit one model on the rows of --data (from --train-start to --train-end), save it to --save
    and print its forecast for the next weekdays after the last row."""
    from .forecaster import make_forecaster
    from .tables import print_data, print_forecast

    preset = options.pop("preset", None)
    config = make_config(model_name, preset, target, options)
    start, end = _day(train_start, "--train-start"), _day(train_end, "--train-end")
    console = output_console()
    prices = load_one(source, allow_gaps)
    prices.column(target)
    save_dir = Path(save_dir) if save_dir else Path("runs") / "models" / f"{prices.name}-{target}-{model_name}"
    print_data(console, prices)
    progress = TrainingProgress(quiet)
    callback = progress.callback(model_name, config) if model_name in NETWORKS else None
    model = make_forecaster(model_name, config, callback)
    with progress:
        model.fit(prices, train_start=start, train_end=end)
    model.fitted_["interrupted"] = interrupt.requested()
    model.save(save_dir)
    print_forecast(console, model.predict(prices, config.horizon), f"{model_name} forecast of {target}")
    note = " (training interrupted: saved the weights reached so far)" if interrupt.requested() else ""
    console.print(f"Saved the {model_name} model in [bold]{save_dir}[/]{note}")


@cli.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--data", "source", required=True, help=ONE_SOURCE_HELP)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Weekdays ahead to forecast (at most the horizon the model was trained for).",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Also write the forecast: to this file if it ends in .csv, else into this folder "
    "(forecast.csv and report.html).",
)
@allow_gaps_option
@report_option
def predict_command(model_dir, source, horizon, out, allow_gaps, no_report) -> None:
    """Load the model saved in MODEL_DIR (by `stockrnn fit`) and forecast the next weekdays after
    the last row of --data. Loading reads JSON and safetensors only: nothing is unpickled."""
    from .forecaster import load
    from .tables import print_data, print_forecast

    model = load(model_dir)
    prices = load_one(source, allow_gaps)
    prices.column(model.config.target)
    warning = model.check_data(prices)
    table = model.predict(prices, horizon)
    if out and str(out).lower().endswith(".csv"):
        with atomic_file(out) as tmp:
            table.reset_index().to_csv(tmp, index=False, date_format="%Y-%m-%d")
    elif out:
        write_forecast_folder(model, prices, table, Path(out), not no_report, warning)
    if warning:  # after every check, so that a failing run prints its error line alone
        print(f"stockrnn: warning: {warning}", file=sys.stderr)
    console = output_console()
    print_data(console, prices)
    print_forecast(console, table, f"{model.name} forecast of {model.config.target}")
    if out:
        console.print(f"Written to [bold]{out}[/]")


def write_forecast_folder(model, prices: Prices, table, out: Path, report: bool, warning: str | None) -> None:
    """predict --out DIR: forecast.csv and report.html (the forecast after the history), all or nothing."""
    from .forecaster import versions
    from .report import write_report

    with atomic_dir(out) as tmp:
        table.reset_index().to_csv(tmp / "forecast.csv", index=False, date_format="%Y-%m-%d")
        if report:
            data = {"source": prices.source, "name": prices.name, "target": model.config.target, "rows": len(prices),
                    "first": f"{prices.index[0]:%Y-%m-%d}", "last": f"{prices.index[-1]:%Y-%m-%d}",
                    "repairs": prices.repairs.to_dict(), "warnings": [warning] if warning else []}  # fmt: skip
            settings = {"model": model.name, "fitted": model.fitted_, "config": model.config.to_dict()}
            metadata = {"data": data, "settings": settings, "versions": versions()}
            history = prices.column(model.config.target)
            write_report(
                tmp / "report.html", forecast=table, history=history, metadata=metadata, command=command_line()
            )


def make_config(name: str, preset: str | None, target: str, options: dict):
    """A model's config from the defaults, `--preset` or `--preset-file` (not both), then the
    explicit options; `options` may hold `preset_file`, which is taken out of it."""
    from .presets import apply_preset_file

    preset_file = options.get("preset_file")
    values = {k: v for k, v in options.items() if k != "preset_file"}
    if preset_file is None:
        return model_config(name, preset, target=target, **values)
    if preset is not None:
        raise ConfigError("give --preset or --preset-file, not both")
    return apply_preset_file(preset_file, name, target=target, **values)


def command_line() -> str:
    """The command that made this run, for report.html."""
    context = click.get_current_context(silent=True)
    argv = (context.find_root().obj or {}).get("argv") if context is not None else None
    return shlex.join(["stockrnn", *(sys.argv[1:] if argv is None else argv)])


def load_one(source: str, allow_gaps: bool, command: str = "fit and predict take") -> Prices:
    from .data import load_prices

    if Path(str(source)).is_dir():
        raise ConfigError(f"{source}: is a folder; {command} one price file (evaluate runs folders)")
    return load_prices(source, allow_gaps=allow_gaps)


def _day(value: str | None, option: str) -> pd.Timestamp | None:
    """A date option: YYYY-MM-DD only ('05/03/2018' could be 5 March or 3 May)."""
    from .windows import parse_day

    return None if value is None else parse_day(value, option)


def _first_ctrl_c() -> None:
    print("stockrnn: stopping training after the current batch (Ctrl-C again to quit now)", file=sys.stderr)


from .explain_command import explain_command  # noqa: E402

cli.add_command(explain_command)
from .tune_command import tune_command  # noqa: E402

cli.add_command(tune_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and the documented exit code for every failure."""
    try:
        with interrupt.two_stage_ctrl_c(_first_ctrl_c):
            obj = {"argv": list(sys.argv[1:] if argv is None else argv)}
            result = cli.main(args=argv, prog_name="stockrnn", standalone_mode=False, obj=obj)
    except click.exceptions.UsageError as exc:
        print(f"stockrnn: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except StockrnnError as exc:
        print(f"stockrnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("stockrnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, unless STOCKRNN_DEBUG asks for the traceback
        if os.environ.get("STOCKRNN_DEBUG"):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"stockrnn: internal error: {type(exc).__name__}: {reason} (please report it)", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
