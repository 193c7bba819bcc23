"""Date splits and the lazy sliding-window dataset: index arithmetic over one array, no copies.

A window is named by its *origin* `o`, the last row it may use: inputs are rows
`o - window + 1 .. o`, targets the next `horizon` rows `o + 1 .. o + horizon`. A forecast for
day `d` therefore has origin `d - 1` and can never see day `d` or later.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch

from .errors import ConfigError

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
NUMERIC_DAY = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")  # 05/03/2018, 5.3.18


def parse_day(day: str | pd.Timestamp, what: str) -> pd.Timestamp:
    """A date given as text must be YYYY-MM-DD: '05/03/2018' is 5 March in some places and
    3 May in others, so it is refused rather than guessed. Timestamps and dates pass as they are."""
    text = day.strip() if isinstance(day, str) else day
    if isinstance(text, str) and NUMERIC_DAY.fullmatch(text):
        raise ConfigError(f"{what} '{day}' is ambiguous (day/month order): use YYYY-MM-DD")
    try:
        stamp = pd.NaT if isinstance(text, str) and not ISO_DAY.fullmatch(text) else pd.Timestamp(text)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise ConfigError(f"{what} '{day}' is not a date: use YYYY-MM-DD")
    return stamp.normalize()


def position(index: pd.DatetimeIndex, day: str | pd.Timestamp, what: str, source: str) -> int:
    """Position of the first row on or after `day`; a ConfigError if there is none."""
    stamp = parse_day(day, what)
    pos = int(index.searchsorted(stamp, side="left"))
    if pos >= len(index) or (what == "test start" and stamp < index[0]):
        first, last = index[0].strftime("%Y-%m-%d"), index[-1].strftime("%Y-%m-%d")
        raise ConfigError(f"{source}: {what} {stamp:%Y-%m-%d} is outside the data ({first} .. {last})")
    return pos


def train_origins(first_row: int, end_row: int, window: int, horizon: int) -> np.ndarray:
    """Origins of every training window whose inputs and targets lie in rows [first_row, end_row)."""
    return np.arange(first_row + window - 1, end_row - horizon, dtype=np.int64)


class WindowDataset(torch.utils.data.Dataset):
    """Windows over one (rows, features) tensor; `batch` gathers many windows in one indexing op.

    `targets`, when given, holds one row per window: (len(origins), horizon)."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray | None, origins: np.ndarray, window: int) -> None:
        if len(origins) and (origins.min() < window - 1 or origins.max() >= len(inputs)):
            raise ValueError("window origins out of range")
        if targets is not None and len(targets) != len(origins):
            raise ValueError("one target row per window origin is needed")
        self.inputs = torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32))
        self.targets = None if targets is None else torch.as_tensor(np.asarray(targets, dtype=np.float32))
        self.origins = torch.as_tensor(origins, dtype=torch.long)
        self.window = window
        # (rows - window + 1, features, window): a strided view, not a copy of every window.
        self._view = self.inputs.unfold(0, window, 1)

    @classmethod
    def panel(cls, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], window: int) -> WindowDataset:
        """Windows over many series at once (a panel of tickers) from (inputs, targets, origins)
        per series: the series are stacked into one array and each one's origins shifted by its
        offset, so windows stay views and none crosses from one series into the next."""
        offsets = np.cumsum([0] + [len(inputs) for inputs, _, _ in parts[:-1]])
        for inputs, _, origins in parts:
            if len(origins) and (origins.min() < window - 1 or origins.max() >= len(inputs)):
                raise ValueError("window origins out of range")
        return cls(
            np.concatenate([np.asarray(inputs, dtype=np.float32) for inputs, _, _ in parts]),
            np.concatenate([targets for _, targets, _ in parts]),
            np.concatenate([origins + offset for (_, _, origins), offset in zip(parts, offsets, strict=True)]),
            window,
        )

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], None if y is None else y[0]

    def batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Windows `items` as (batch, window, features) inputs and (batch, horizon) targets."""
        x = self._view[self.origins[items] - self.window + 1].transpose(1, 2)
        return x, None if self.targets is None else self.targets[items]

    def split(self, n_last: int) -> tuple[WindowDataset, WindowDataset]:
        """(all but the last `n_last` windows, the last `n_last`): a validation tail in time order."""
        head, tail = self._subset(slice(0, len(self) - n_last)), self._subset(slice(len(self) - n_last, len(self)))
        return head, tail

    def _subset(self, part: slice) -> WindowDataset:
        subset = object.__new__(WindowDataset)
        subset.inputs, subset._view, subset.window = self.inputs, self._view, self.window
        subset.origins = self.origins[part]
        subset.targets = None if self.targets is None else self.targets[part]
        return subset
