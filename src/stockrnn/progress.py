"""What the user sees while a command runs: the output console, and training and fold progress.

On a terminal, rich bars: one per network ("lstm 2/3": member 2 of the ensemble of 3) with the
member's epochs, and a folds bar for backtests. When stderr is a file or a pipe a bar shows
nothing until the end, so plain lines are printed instead: one per finished member (epochs run,
best validation loss, seconds), one per finished fold, and at most one progress line a minute.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

if TYPE_CHECKING:
    from .config import ModelConfig
    from .training import EpochInfo

PLAIN_EVERY = 60.0  # seconds between two plain progress lines while a member trains


def output_console() -> Console:
    """Tables on stdout; when stdout is a file or pipe, 120 columns so the score table never wraps.
    No highlighting: rich would colour the digits inside dates and sentences. No markup: what a
    user named (a path, a ticker, a file in a reason) is printed as it is, never read as rich's
    tags (`k[red]o` lost its tag, a folder `a[/b]c` failed after the run); `strong` bolds a part."""
    console = Console(highlight=False, markup=False)
    return console if console.is_terminal else Console(width=120, highlight=False, markup=False)


def strong(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs, none of it read as markup: for
    `output_console`, e.g. strong("Outputs in ", (str(out), "bold"), ": metrics.json")."""
    return Text.assemble(*parts)


def _plain(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


class TrainingProgress:
    """Training progress of the networks of one command; a context manager around the fitting."""

    def __init__(self, quiet: bool, clock: Callable[[], float] = time.monotonic) -> None:
        console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.plain = not quiet and not console.is_terminal
        self.clock = clock
        self.last_line = clock()
        self.bars = Progress(
            TextColumn("{task.description:<10}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TextColumn("{task.fields[loss]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or self.plain,
            transient=False,
        )

    def __enter__(self) -> TrainingProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def callback(self, name: str, config: ModelConfig, ticker: str | None = None) -> Callable[[EpochInfo], None]:
        """The `on_epoch` of one network: its bar, or its plain lines."""
        label = f"{ticker} {name}" if ticker else name
        members, epochs = config.ensemble, config.epochs
        # Started at its first epoch, so that its clock does not count the models trained before it.
        task = self.bars.add_task(
            f"{label} 1/{members}", total=epochs, status=f"epoch 0/{epochs}", loss="", start=False
        )
        best = {"val": math.inf}

        def on_epoch(info: EpochInfo) -> None:
            if info.epoch == 1:
                best["val"] = math.inf
            if info.val_loss is not None:
                best["val"] = min(best["val"], info.val_loss)
            member = f"{label} {info.member + 1}/{members}"
            ended = ""
            if info.last and info.epoch < epochs:
                ended = " (interrupted)" if info.interrupted else " (early stopping)"
            status = f"epoch {info.epoch}/{epochs}{ended}"
            loss = f"loss {_number(info.loss)}" + ("" if info.val_loss is None else f"  val {_number(info.val_loss)}")
            if info.member == 0 and info.epoch == 1:
                self.bars.start_task(task)
            self.bars.update(
                task, description=member, completed=epochs if info.last else info.epoch, status=status, loss=loss
            )
            if not self.plain:
                return
            if info.last:
                score = f"best val loss {_number(best['val'])}" if info.val_loss is not None else loss
                _plain(f"{member}: {info.epoch}/{epochs} epochs{ended}, {score}, {info.seconds:.1f} s")
                self.last_line = self.clock()
            elif self.clock() - self.last_line >= PLAIN_EVERY:
                _plain(f"{member}: {status}, {loss.replace('  val', ', val loss')}")
                self.last_line = self.clock()

        return on_epoch


class FoldProgress:
    """A backtest's folds: done of total, the last fold's dates, time spent and left."""

    def __init__(self, quiet: bool) -> None:
        console = Console(stderr=True, highlight=False)
        self.plain = not quiet and not console.is_terminal
        self.started = time.monotonic()
        self.bars = Progress(
            TextColumn("folds"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or self.plain,
        )
        self.task = self.bars.add_task("folds", total=None, last="")
        self.shown = False

    def update(self, done: int, total: int, fold: dict | None) -> None:
        """`on_fold` of `backtest`: called with fold None once the settings are checked, so an
        error before any training stays one line."""
        if fold is None and not self.shown:
            self.bars.start()
            self.shown = True
        last = "" if fold is None else f"(to {fold['test_end']})"
        self.bars.update(self.task, completed=done, total=total, last=last)
        if self.plain and fold is not None:
            seconds = time.monotonic() - self.started
            _plain(f"fold {done}/{total} ({fold['test_start']} .. {fold['test_end']}) done, {seconds:.0f} s")

    def stop(self) -> None:
        if self.shown:
            self.bars.stop()


class PanelProgress(TrainingProgress):
    """A panel run: files loaded, each global network's epochs (loss, val loss, time left), then
    tickers evaluated (done of all, time left). Plain lines off a terminal, as TrainingProgress."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(quiet)
        self.bars = Progress(
            TextColumn("{task.description:<18}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TextColumn("{task.fields[loss]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.bars.console,
            disable=quiet or self.plain,
        )
        self.tasks: dict[str, int] = {}
        self.fits = 0

    def count(self, label: str, done: int, total: int) -> None:
        """A counting bar ("files loaded", "tickers evaluated"); plain: a line when it completes and
        at most one a minute before."""
        if label not in self.tasks:
            self.tasks[label] = self.bars.add_task(label, total=total, status="", loss="")
        self.bars.update(self.tasks[label], completed=done, total=total, status=f"{done}/{total}")
        if self.plain and label != "folds" and (done == total or self.clock() - self.last_line >= PLAIN_EVERY):
            _plain(f"{label}: {done}/{total}")
            self.last_line = self.clock()

    def loaded(self, done: int, total: int) -> None:
        self.count("files loaded", done, total)

    def epochs(self, name: str, config: ModelConfig) -> Callable[[EpochInfo], None] | None:
        """`on_epoch` of evaluate_panel: the global networks' bars (the pooled ridge has no epochs)."""
        return self.callback(f"global {name}", config) if name in ("lstm", "gru") else None

    def fold(self, done: int, total: int, fold: dict) -> None:
        """`on_fold` of backtest_panel: a folds bar, a plain line per fold; the next fold fits again."""
        self.fits = 0
        if self.plain:
            _plain(f"fold {done}/{total} ({fold['test_start']} .. {fold['test_end']}) done")
            self.last_line = self.clock()
        self.count("folds", done, total)

    def unit(self, unit: str, done: int, total: int) -> None:
        """`on_progress` of evaluate_panel: each global fit ("<name> (global)"), then the tickers."""
        if unit != "tickers":
            self.fits += 1
            if self.plain:
                _plain(f"{unit} fitted")
            return
        self.count("tickers evaluated", done - self.fits, total - self.fits)
