"""Command-line options shared by several commands; the help shows the defaults of ModelConfig.

Light on purpose: `stockrnn --help` imports this module, never torch or scikit-learn."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import click

from .config import OPTIMIZERS, PRESETS, ModelConfig

DEFAULTS = ModelConfig()
DATA_HELP = "A CSV or Parquet file, a folder of them (one ticker per file), sp500, nasdaq or yahoo:TICKER."
ONE_SOURCE_HELP = "A CSV or Parquet file, sp500, nasdaq or yahoo:TICKER."
MAX_SEED = 2**32 - 1  # NumPy's seeds; ensemble member i is seeded with seed + i, which torch takes too
WINDOW_MODES = ("expanding", "rolling")  # backtest.WINDOW_MODES, without importing torch for --help
DEFAULT_THREADS = 1  # runners.DEFAULT_THREADS (bench/results/threads.md), without importing torch


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """torch would fail later, with a traceback, on a name such as 'cuda:x'."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise click.BadParameter(f"{value!r} is not auto, cpu, cuda or cuda:N")
    return value


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """click's ranges let nan through (every comparison with nan is false)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def cost_option(command: Callable) -> Callable:
    return click.option(
        "--cost-bps",
        type=click.FloatRange(0, 10_000),
        callback=_finite,
        default=5.0,
        show_default=True,
        help="Cost in basis points of every buy and every sell in the long-or-flat diagnostic (close target).",
    )(command)


def report_option(command: Callable) -> Callable:
    return click.option(
        "--no-report", "no_report", is_flag=True, help="Skip report.html (the self-contained page of the run)."
    )(command)


def allow_gaps_option(command: Callable) -> Callable:
    return click.option(
        "--allow-gaps",
        is_flag=True,
        help="Accept data where more than 5% of rows needed repair (filled, widened or dropped).",
    )(command)


def network_options(command: Callable) -> Callable:
    """Options shared by every command that trains a model; each overrides the preset's value."""
    options = [
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            help="Start from a named set of settings; explicit options override it.",
        ),
        click.option(
            "--preset-file",
            type=click.Path(dir_okay=False),
            help="Start from the settings in a JSON preset file (such as `stockrnn tune`'s best.json); "
            "explicit options override it.",
        ),
        click.option(
            "--window",
            type=click.IntRange(min=1),
            help=f"Days of history per input window.  [default: {DEFAULTS.window}]",
        ),
        click.option(
            "--layers", type=click.IntRange(min=1), help=f"Stacked recurrent layers.  [default: {DEFAULTS.layers}]"
        ),
        click.option(
            "--units", type=click.IntRange(min=1), help=f"Units per recurrent layer.  [default: {DEFAULTS.units}]"
        ),
        click.option(
            "--dropout",
            type=click.FloatRange(0, 1, max_open=True),
            callback=_finite,
            help=f"Dropout after each recurrent layer.  [default: {DEFAULTS.dropout}]",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=1),
            help=f"Most training epochs (early stopping may end sooner).  [default: {DEFAULTS.epochs}]",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            help=f"Windows per mini-batch.  [default: {DEFAULTS.batch_size}]",
        ),
        click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            callback=_finite,
            help=f"Learning rate.  [default: {DEFAULTS.lr:g}]",
        ),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), help=f"Optimiser.  [default: {DEFAULTS.optimizer}]"),
        click.option(
            "--horizon",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Trading days ahead to forecast (one output per step).",
        ),
        click.option(
            "--seed",
            type=click.IntRange(0, MAX_SEED),
            default=0,
            show_default=True,
            help="Seeds Python, NumPy and torch: same seed, same numbers.",
        ),
        click.option(
            "--device",
            default="auto",
            show_default=True,
            callback=_device,
            help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def skip_bad_option(command: Callable) -> Callable:
    return click.option(
        "--skip-bad",
        is_flag=True,
        help="With a folder: skip a file that cannot be read (listed with its reason) instead of stopping.",
    )(command)


def runner_options(command: Callable) -> Callable:
    """How the units of a panel run (one per ticker) are run; the results do not depend on it."""
    options = [
        click.option(
            "--jobs",
            type=click.IntRange(min=0),
            default=1,
            show_default=True,
            help="Units run at once (tickers of a folder run); 0: one per core.",
        ),
        click.option(
            "--engine",
            type=click.Choice(("local", "ray")),
            default="local",
            show_default=True,
            help="local: processes on this machine; ray: Ray tasks (the `stockrnn[ray]` extra).",
        ),
        click.option("--address", help="HOST:PORT of a Ray cluster to join (with --engine ray; default: a local Ray)."),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=DEFAULT_THREADS,
            show_default=True,
            help="torch threads per unit and for the global fits (bench/results/threads.md: 1 is as fast).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
