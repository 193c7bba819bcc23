"""The project's own exceptions: each maps to one exit code of the CLI."""

from __future__ import annotations


class StockrnnError(Exception):
    """Base class; the CLI prints the message as one line and exits with `exit_code`."""

    exit_code = 2


class DataError(StockrnnError):
    """Bad input data: the message names the file (and row or column) and the problem."""


class RowError(DataError):
    """Bad data in one dated row of a file that parses (a duplicate date, a negative volume):
    `day` is its date, so a panel can keep the rows before it (`load_panel`)."""

    def __init__(self, message: str, day: object) -> None:
        super().__init__(message)
        self.day = day


class ConfigError(StockrnnError):
    """Bad option value, unknown model or preset, or a request the data cannot serve."""


class NothingToScore(ConfigError):
    """No ticker of a panel can be scored on a split (a panel backtest leaves such a fold out);
    `skipped` lists every ticker with its reason."""

    def __init__(self, message: str, skipped: list[dict] | None = None) -> None:
        super().__init__(message)
        self.skipped = list(skipped or [])


class TrainingError(StockrnnError):
    """Training failed (for example a non-finite loss); the message names the epoch."""

    exit_code = 3


class Interrupted(StockrnnError):
    """A first Ctrl-C came before anything was finished (a panel run with no ticker scored yet):
    nothing to keep, so the command ends as a second Ctrl-C would, writing nothing."""

    exit_code = 130
