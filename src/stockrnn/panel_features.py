"""Per-series scaling for global (panel) models: one model reads every ticker in common units.

Inputs are the single-ticker `relative` inputs (features.py), standardised with each ticker's
own training statistics. The target is the log ratio of the future target price to the close at
the origin, divided by the ticker's trailing 20-day mean log(high / low) at the origin (a causal
volatility: rows up to the origin only), so a calm and a wild stock give targets of one size.

Broken data must not give absurd forecasts (a price series spliced onto another one 2,000 times
larger, days with high == low): every scale has a floor, standardised inputs are bounded, and
the forecast log ratio is bounded before it becomes a price.

Statistics rule (no look-ahead): a ticker seen in training keeps the statistics of its training
rows; any other ticker gets them from its own rows up to the training end and up to the first
forecast origin (the rows before the first forecast origin if fewer than MIN_STATS_ROWS remain).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .features import Features
from .intervals import volatility

MIN_SCALE = 0.005  # floor on the volatility that divides the target (0.5% daily range)
MIN_INPUT_SCALE = 1e-3  # floor on each input's standard deviation (a constant input stays finite)
INPUT_BOUND = 10.0  # standardised inputs are clipped to +-10 deviations
MAX_LOG_RATIO = 0.25  # forecasts and training targets: |log(target / close)| <= 0.25
TARGET_BOUND = 5.0  # training targets: at most 5 x sqrt(step) trailing daily ranges from the close
MIN_STATS_ROWS = 20  # fewest rows for an unseen ticker's statistics


@dataclass(frozen=True)
class SeriesStats:
    """One ticker's input means and deviations (floored), from its own rows before a cut-off."""

    mean: np.ndarray
    scale: np.ndarray
    rows: int

    @classmethod
    def fit(cls, raw: np.ndarray) -> SeriesStats:
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        return cls(raw.mean(axis=0), np.maximum(raw.std(axis=0), MIN_INPUT_SCALE), len(raw))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "rows": self.rows}

    @classmethod
    def from_dict(cls, state: dict, n_inputs: int) -> SeriesStats:
        mean, scale = np.asarray(state["mean"], dtype=float), np.asarray(state["scale"], dtype=float)
        if mean.shape != (n_inputs,) or scale.shape != (n_inputs,):
            raise ValueError(f"series statistics need {n_inputs} means and scales")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("series statistics are not finite and positive")
        return cls(mean, scale, int(state["rows"]))


class PanelFeatures:
    """Inputs, targets and prices for any ticker, in the units a global model uses."""

    def __init__(self, target: str = "high") -> None:
        self.target = target
        self._features = Features(target, "relative")

    def raw(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Unscaled inputs (rows, n_inputs) and their names; row i uses rows <= i only."""
        return self._features._raw_inputs(frame)

    def stats(self, frame: pd.DataFrame) -> SeriesStats:
        return SeriesStats.fit(self.raw(frame)[0])

    def inputs(self, frame: pd.DataFrame, stats: SeriesStats) -> np.ndarray:
        """(rows, n_inputs) float32 standardised, bounded inputs."""
        raw = np.nan_to_num(self.raw(frame)[0], nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip((raw - stats.mean) / stats.scale, -INPUT_BOUND, INPUT_BOUND).astype(np.float32)

    def targets(self, frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
        """(len(origins), horizon) float32: log(target[o + k] / close[o]) / scale[o], bounded
        (a splice or a crash day would otherwise dominate the squared loss: on the S&P 500
        panel the bound steadied the training loss and left validation skill unchanged)."""
        target = frame[self.target].to_numpy(dtype=float)
        close = frame["close"].to_numpy(dtype=float)
        ratio = np.log(target[origins[:, None] + np.arange(1, horizon + 1)] / close[origins, None])
        ratio = np.clip(np.nan_to_num(ratio, nan=0.0), -MAX_LOG_RATIO, MAX_LOG_RATIO)
        bound = TARGET_BOUND * np.sqrt(np.arange(1, horizon + 1))
        return np.clip(ratio / origin_scale(frame)[origins, None], -bound, bound).astype(np.float32)

    def to_price(self, values: np.ndarray, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Model outputs (n, horizon) back to prices, the log ratio bounded by MAX_LOG_RATIO."""
        ratio = np.asarray(values, dtype=float) * origin_scale(frame)[origins, None]
        ratio = np.clip(np.nan_to_num(ratio, nan=0.0), -MAX_LOG_RATIO, MAX_LOG_RATIO)
        return frame["close"].to_numpy(dtype=float)[origins, None] * np.exp(ratio)


def origin_scale(frame: pd.DataFrame) -> np.ndarray:
    """The trailing 20-day mean log(high / low) at each row (rows <= i), floored at MIN_SCALE."""
    return np.maximum(volatility(frame), MIN_SCALE)


def stats_rows(frame: pd.DataFrame, first_origin: int, train_end: pd.Timestamp | None) -> pd.DataFrame:
    """The rows an unseen ticker's statistics come from: up to the first forecast origin
    (inclusive) and up to the training end, unless that leaves fewer than MIN_STATS_ROWS rows."""
    causal = frame.iloc[: first_origin + 1]
    if train_end is not None:
        capped = causal.loc[:train_end]
        if len(capped) >= MIN_STATS_ROWS:
            return capped
    return causal


def validation_cutoff(dates: Iterable[pd.DatetimeIndex], fraction: float) -> pd.Timestamp | None:
    """The first date of the panel's validation tail: the latest `fraction` of the distinct
    training dates of all tickers together; None when the tail would be empty."""
    union = pd.DatetimeIndex(np.unique(np.concatenate([np.asarray(d, dtype="datetime64[ns]") for d in dates])))
    n_tail = int(round(len(union) * fraction))
    return union[len(union) - n_tail] if n_tail > 0 else None


def split_origins(
    index: pd.DatetimeIndex, origins: np.ndarray, horizon: int, cutoff: pd.Timestamp | None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, validation) over `origins`: a window is validation when its first
    target day is on or after the cut-off, fitting when its last target day is before it (a
    multi-step window that straddles the cut-off is in neither, so no target is in both)."""
    if cutoff is None:
        return np.ones(len(origins), bool), np.zeros(len(origins), bool)
    first = index[origins + 1] >= cutoff
    last = index[origins + horizon] < cutoff
    return np.asarray(last), np.asarray(first)
