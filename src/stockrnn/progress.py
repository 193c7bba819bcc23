"""What the user sees while a command runs: the output console and the per-model progress bars."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .training import EpochInfo


def output_console() -> Console:
    """Tables on stdout; when stdout is a file or pipe, 120 columns so the score table never wraps."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def new_progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=False,
    )


def epoch_callback(progress: Progress, task, epochs: int) -> Callable[[EpochInfo], None]:
    """Advance the model's bar one epoch (to the member's end on early stopping), show the loss."""

    def on_epoch(info: EpochInfo) -> None:
        done = (info.member + 1) * epochs if info.last else info.member * epochs + info.epoch
        shown = f"{info.loss:.3g}" + ("" if info.val_loss is None else f"  val {info.val_loss:.3g}")
        progress.update(task, completed=done, loss=shown)

    return on_epoch


def fold_progress(quiet: bool) -> Progress:
    """A backtest's bar: folds done, the last fold's dates, time spent and time left."""
    return Progress(
        TextColumn("folds"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
