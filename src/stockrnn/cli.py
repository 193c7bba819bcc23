"""The `stockrnn` command: argument parsing and printing over the public API, nothing else."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .config import NETWORKS, PRESETS, model_config, parse_models
from .data import load_prices
from .errors import StockrnnError
from .evaluate import Evaluation, evaluate
from .forecaster import make_forecaster
from .outputs import write_evaluation
from .training import EpochInfo

DEMO = dict(data="sp500", train_start="2010-01-01", test_start="2018-01-01", preset="quick")


def network_options(command: Callable) -> Callable:
    """Options shared by every command that trains a model; each overrides the preset's value."""
    options = [
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            help="Start from a named set of settings; explicit options override it.",
        ),
        click.option("--window", type=click.IntRange(min=1), help="Days of history per input window.  [default: 60]"),
        click.option("--layers", type=click.IntRange(min=1), help="Stacked recurrent layers.  [default: 4]"),
        click.option("--units", type=click.IntRange(min=1), help="Units per recurrent layer.  [default: 50]"),
        click.option(
            "--dropout",
            type=click.FloatRange(0, 1, max_open=True),
            help="Dropout after each recurrent layer.  [default: 0.2]",
        ),
        click.option("--epochs", type=click.IntRange(min=1), help="Training epochs.  [default: 50]"),
        click.option("--batch-size", type=click.IntRange(min=1), help="Windows per mini-batch.  [default: 32]"),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.  [default: 0.001]"),
        click.option("--optimizer", type=click.Choice(["adam", "rmsprop", "sgd"]), help="Optimiser.  [default: adam]"),
        click.option(
            "--horizon",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Trading days ahead to forecast (one output per step).",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seeds Python, NumPy and torch: same seed, same numbers.",
        ),
        click.option(
            "--device", default="auto", show_default=True, help="auto (CUDA when present, else CPU), cpu or cuda."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stockrnn")
def cli() -> None:
    """Forecast stock prices with LSTM and GRU networks, and see honestly whether they beat
    the naive forecast "tomorrow = today"."""


@cli.command("evaluate")
@click.option(
    "--data", "source", default="sp500", show_default=True, help="A CSV file, or a built-in dataset: sp500, nasdaq."
)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, ...).")
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
@click.option("--out", type=click.Path(file_okay=False), help="Output folder.  [default: runs/<data>-<target>]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate_command(
    source: str, target: str, test_start, test_end, train_start, model_names: str, out, quiet: bool, **options
) -> None:
    """Fit on the data before --test-start, forecast every test day from the days before it,
    score each model against persistence and write metrics.json, predictions.csv, forecast.png."""
    run_evaluation(source, target, test_start, test_end, train_start, model_names, out, quiet, options)


@cli.command("demo")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo_command(out: str, quiet: bool) -> None:
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
    )


def run_evaluation(source, target, test_start, test_end, train_start, model_names, out, quiet, options) -> Evaluation:
    names = parse_models(model_names)
    preset = options.pop("preset", None)
    configs = {name: model_config(name, preset, target=target, **options) for name in names}
    console, errors = Console(), Console(stderr=True)
    prices = load_prices(source)
    prices.column(target)
    out = Path(out) if out else Path("runs") / f"{prices.name}-{target}"
    console.print(
        f"[bold]{prices.name}[/]: {len(prices)} rows, {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}; "
        f"repairs: {prices.repairs.summary()}"
    )

    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description:<6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        disable=quiet,
        transient=False,
    )
    models = []
    for name, config in configs.items():
        callback = None
        if name in NETWORKS:
            task = progress.add_task(name, total=config.epochs * config.ensemble, loss="-")
            callback = _epoch_callback(progress, task, config.epochs)
        models.append(make_forecaster(name, config, callback))
    with progress:
        evaluation = evaluate(
            prices, models, test_start, test_end, train_start, settings={"preset": preset, "data": source}
        )
    evaluation.metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    write_evaluation(evaluation, out)
    print_table(console, evaluation)
    console.print(f"Outputs in [bold]{out}[/]: metrics.json, predictions.csv, forecast.png")
    return evaluation


def _epoch_callback(progress: Progress, task, epochs: int) -> Callable[[EpochInfo], None]:
    """Advance the model's bar one epoch (to the member's end on early stopping), show the loss."""

    def on_epoch(info: EpochInfo) -> None:
        done = (info.member + 1) * epochs if info.last else info.member * epochs + info.epoch
        shown = f"{info.loss:.3g}" + ("" if info.val_loss is None else f"  val {info.val_loss:.3g}")
        progress.update(task, completed=done, loss=shown)

    return on_epoch


def print_table(console: Console, evaluation: Evaluation) -> None:
    """The score table, and in words which models beat persistence."""
    s, d = evaluation.metrics["settings"], evaluation.metrics["data"]
    excluded = f", {d['excluded_repaired']} repaired days not scored" if d["excluded_repaired"] else ""
    span = f"test {s['test_start']} .. {s['test_end']}"
    title = f"{d['name']} {d['target']}: {span} ({d['scored_days']} days scored{excluded})"
    table = Table(title=title, title_justify="left")
    for column in ("model", "RMSE", "MAE", "MAPE %", "direction", "skill", "DM p", "lag"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for name in evaluation.models:
        m = evaluation.metrics["models"][name]
        table.add_row(
            name,
            fmt(m["rmse"], ".4f"),
            fmt(m["mae"], ".4f"),
            fmt(m["mape"], ".3f"),
            fmt(m["direction_accuracy"], ".1%"),
            fmt(m["skill"], "+.3f"),
            fmt(m["dm_pvalue"], ".3f"),
            fmt(m["best_lag"], "d"),
        )
    console.print(table)
    for name in evaluation.models:
        if name != "persistence":
            console.print(f"  {name}: {evaluation.verdict(name)}")
    console.print(
        "skill = 1 - RMSE/RMSE(persistence), above 0 beats it; DM p: Diebold-Mariano test against persistence "
        "(HLN-corrected); lag: the lag of the actual's moves that the forecast's moves match best "
        "(1+: follows the price)"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and the documented exit code for every failure."""
    try:
        result = cli.main(args=argv, prog_name="stockrnn", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        print(f"stockrnn: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except StockrnnError as exc:
        print(f"stockrnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("stockrnn: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
