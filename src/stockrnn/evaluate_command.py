"""`stockrnn evaluate`, `demo` and `backtest`: a holdout or walk-forward run on one source; a
folder goes to the panel run (panel_command.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from .cli_common import (
    check_preset_span,
    command_line,
    day,
    default_out,
    is_folder,
    load_one,
    make_config,
    out_folder,
    output_folder,
    set_threads,
    single_source_runner,
    stop_token,
)
from .config import NETWORKS, parse_models
from .options import (
    DATA_HELP,
    DEFAULT_THREADS,
    WINDOW_MODES,
    allow_gaps_option,
    cost_option,
    network_options,
    report_option,
    runner_options,
    skip_bad_option,
)
from .progress import FoldProgress, TrainingProgress, output_console, strong

if TYPE_CHECKING:  # the modules that need torch, scikit-learn or pandas load inside the commands
    from .data import Prices
    from .evaluate import Evaluation

DEMO = dict(data="sp500", train_start="2010-01-01", test_start="2018-01-01", preset="quick")
SINGLE_MODELS = "lstm,gru,persistence,ridge"
MODELS_HELP = (
    "Comma-separated: lstm, gru, persistence, ridge; on a folder lstm, gru, ridge are global and "
    "lstm_local, gru_local, ridge_local per ticker. Persistence is always computed.  "
    "[default: lstm,gru,persistence,ridge; on a folder lstm,gru,ridge,ridge_local,persistence]"
)


@click.command("evaluate")
@click.option("--data", "source", default="sp500", show_default=True, help=DATA_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option("--test-start", help="First test day, YYYY-MM-DD.  [default: the last 252 rows]")
@click.option("--test-end", help="Last test day, YYYY-MM-DD.  [default: the last row]")
@click.option("--train-start", help="First training day, YYYY-MM-DD.  [default: the first row]")
@click.option("--models", "model_names", help=MODELS_HELP)
@network_options
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    callback=output_folder,
    help="Output folder; a folder run writes OUT/<ticker>/..., OUT/summary.csv and OUT/panel.json.  "
    "[default: runs/<data>-<target>]",
)
@cost_option
@allow_gaps_option
@skip_bad_option
@runner_options
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate_command(
    source: str, target: str, test_start, test_end, train_start, model_names, out, quiet: bool, **options
) -> int:
    """Fit on the data before --test-start, forecast every test day from the days before it,
    score each model against persistence and write metrics.json, predictions.csv, forecast.png.
    With a folder as --data, a panel run: global models fitted once on every ticker, local ones per
    ticker, each ticker scored, plus summary.csv and panel.json. Networks get 80% and 95%
    intervals; with --target close, a long-or-flat trading diagnostic is printed and saved."""
    allow_gaps, cost_bps, report = options.pop("allow_gaps"), options.pop("cost_bps"), not options.pop("no_report")
    runner, skip_bad = {k: options.pop(k) for k in ("engine", "jobs", "threads", "address")}, options.pop("skip_bad")
    if is_folder(source):
        from .panel_command import run_panel

        result = run_panel(
            source, target, test_start, test_end, train_start, model_names, out, quiet, options, allow_gaps,
            cost_bps, report, skip_bad, runner,
        )  # fmt: skip
        return result.exit_code
    single_source_runner(runner)
    run_evaluation(
        source, target, test_start, test_end, train_start, model_names or SINGLE_MODELS, out, quiet, options,
        allow_gaps, cost_bps, report,
    )  # fmt: skip
    return 0


@click.command("demo")
@click.option(
    "--out",
    default="runs/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    callback=output_folder,
    help="Output folder.",
)
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo_command(out: str, quiet: bool, no_report: bool) -> None:
    """`evaluate` on the built-in S&P 500 index (train 2010-2017, test 2018) with the small
    `quick` preset: a first look in well under two minutes."""
    set_threads(DEFAULT_THREADS)
    run_evaluation(
        DEMO["data"],
        "high",
        DEMO["test_start"],
        None,
        DEMO["train_start"],
        SINGLE_MODELS,
        out,
        quiet,
        {"preset": DEMO["preset"], "horizon": 1, "seed": 0, "device": "auto"},
        report=not no_report,
    )


def run_evaluation(
    source, target, test_start, test_end, train_start, model_names, out, quiet, options, allow_gaps=False, cost_bps=5.0,
    report=True,
) -> Evaluation:  # fmt: skip
    """`evaluate` for one source."""
    from .data import load_prices
    from .evaluate import test_span
    from .outputs import write_evaluation
    from .tables import print_data, print_table

    names = parse_models(model_names)
    preset = options.pop("preset", None)
    configs = {name: make_config(name, preset, target, options) for name in names}
    console = output_console()
    spans = dict(
        test_start=day(test_start, "--test-start"),
        test_end=day(test_end, "--test-end"),
        train_start=day(train_start, "--train-start"),
        cost_bps=cost_bps,
    )
    settings = {"preset": preset, "preset_file": options.get("preset_file"), "data": source}
    prices = load_prices(source, allow_gaps=allow_gaps)
    prices.column(target)
    check_preset_span(options, prices.index[test_span(prices, spans["test_start"], spans["test_end"])[0]])
    out = out_folder(out, default_out(f"{prices.name}-{target}"), source, options.get("preset_file"))
    print_data(console, prices)
    evaluation = evaluate_one(prices, configs, spans, settings, quiet)
    write_evaluation(evaluation, out, report, command_line())
    print_table(console, evaluation)
    files = ["metrics.json", "predictions.csv", "forecast.png"]
    files += ["error_by_step.png"] if evaluation.horizon > 1 else []
    files += ["report.html"] if report else []
    console.print(strong("Outputs in ", (str(out), "bold"), f": {', '.join(files)}"))
    return evaluation


def evaluate_one(
    prices: Prices, configs: dict, spans: dict, settings: dict, quiet: bool, ticker: str | None = None
) -> Evaluation:
    """Fit and score fresh models on one ticker; marks the run interrupted after a first Ctrl-C."""
    from .evaluate import evaluate
    from .forecaster import make_forecaster

    started = time.perf_counter()
    progress = TrainingProgress(quiet)
    models = [make_forecaster(name, config) for name, config in configs.items()]

    def on_epoch(name: str, config):
        return progress.callback(name, config, ticker) if name in NETWORKS else None

    stop = stop_token()
    with progress:
        evaluation = evaluate(prices, models, settings=settings, on_epoch=on_epoch, stop=stop, **spans)
    evaluation.metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    evaluation.metrics["interrupted"] = stop.requested
    return evaluation


@click.command("backtest")
@click.option("--data", "source", default="sp500", show_default=True, help=DATA_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option(
    "--models",
    "model_names",
    help="Comma-separated: lstm, gru, persistence, ridge (on a folder also lstm_local, gru_local, ridge_local). "
    "Persistence is always in, and on a single file ridge too.  "
    "[default: lstm,gru,persistence,ridge; on a folder lstm,gru,ridge,ridge_local,persistence]",
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
    callback=output_folder,
    help="Output folder.  [default: runs/backtest-<data>-<target>]",
)
@allow_gaps_option
@skip_bad_option
@runner_options
@report_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def backtest_command(
    source, target, model_names, test_start, test_end, train_start, refit_every, window_mode, train_days, out,
    allow_gaps, skip_bad, no_report, quiet, **options,
) -> int:  # fmt: skip
    """Walk forward from --test-start: at every refit date fit each model afresh (scaler and
    weights) on the data before it, forecast each day until the next refit date from the days
    before it, and score all out-of-sample forecasts together and per fold. Writes metrics.json
    (with `folds`), predictions.csv, forecast.png, folds.png and error_by_step.png. On a folder, the
    global models are refitted on every ticker at each refit date, and the panel outputs get `folds`."""
    from .backtest import backtest
    from .evaluate import test_span
    from .forecaster import make_forecaster
    from .outputs import write_backtest
    from .tables import print_data, print_folds, print_table

    runner = {k: options.pop(k) for k in ("engine", "jobs", "threads", "address")}
    if is_folder(source):
        from .panel_command import backtest_folder

        result = backtest_folder(
            source, target, model_names, test_start, test_end, train_start, refit_every, window_mode, train_days,
            out, allow_gaps, skip_bad, not no_report, quiet, options, runner,
        )  # fmt: skip
        return result.exit_code
    single_source_runner(runner)
    names = parse_models(model_names or SINGLE_MODELS)
    preset, cost_bps = options.pop("preset", None), options.pop("cost_bps")
    configs = {name: make_config(name, preset, target, options) for name in names}
    days = day(test_start, "--test-start"), day(test_end, "--test-end"), day(train_start, "--train-start")
    console = output_console()
    prices = load_one(source, allow_gaps, "backtest takes")
    prices.column(target)
    check_preset_span(options, prices.index[test_span(prices, days[0], days[1])[0]])
    out = out_folder(out, default_out(f"backtest-{prices.name}-{target}"), source, options.get("preset_file"))
    print_data(console, prices)
    started = time.perf_counter()
    progress = FoldProgress(quiet)
    models = [make_forecaster(name, config) for name, config in configs.items()]
    try:
        result = backtest(
            prices, models, days[0], days[1], refit_every, window_mode, train_days, days[2],
            settings={"preset": preset, "preset_file": options.get("preset_file"), "data": source},
            cost_bps=cost_bps, on_fold=progress.update, stop=stop_token(),
        )  # fmt: skip
    finally:
        progress.stop()
    result.metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    write_backtest(result, out, not no_report, command_line())
    print_table(console, result)
    print_folds(console, result)
    report = "" if no_report else ", report.html"
    files = f": metrics.json, predictions.csv, forecast.png, folds.png, error_by_step.png{report}"
    console.print(strong("Outputs in ", (str(out), "bold"), files))
    return 0
