"""What a window model sees and predicts: inputs and targets built from prices, and back to prices.

Two kinds:
- `level` (the reference recipe): the target price alone, MinMax-scaled on the training span.
  A network fed levels cannot forecast outside the training range and mostly learns to repeat
  a smoothed recent price.
- `relative` (the default): every input is a log ratio or a relative volume, and the target is
  the log ratio of the future target price to the last known close, so the model learns what
  is learnable (the size and sign of the next move), not the price itself. Inputs are built
  from the columns the data has: without open, high or low (a Date,Close file) the inputs made
  from them are left out; without a close, the target's own last value takes the close's place.

Every statistic (scaler bounds, means, deviations) is fitted on training rows only, and every
input of a row uses that row and earlier rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from .config import KINDS  # noqa: F401
from .errors import DataError

VOLUME_DAYS = 20  # the "recent average" that volume is compared with
VOLATILITY_DAYS = (5, 20)  # trailing means of the daily high-low range


def _matrix(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """values[o + 1 .. o + horizon] for each origin o, as (len(origins), horizon)."""
    return values[origins[:, None] + np.arange(1, horizon + 1)]


class Features:
    """Builds model inputs (rows, n_inputs) and targets (windows, horizon) from a price frame."""

    def __init__(self, target: str = "high", kind: str = "relative") -> None:
        self.target = target
        self.kind = kind

    def _base(self, frame: pd.DataFrame) -> str:
        """The price that inputs and the relative target are measured against: the close, or the
        target itself in data without a close (a Date,Adj Close file)."""
        return "close" if "close" in frame.columns else self.target

    # -- inputs -------------------------------------------------------------------------------
    def _raw_inputs(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        if self.kind == "level":
            return frame[[self.target]].to_numpy(dtype=float), [self.target]
        base = self._base(frame)
        close = frame[base].to_numpy(dtype=float)
        prev = np.concatenate([close[:1], close[:-1]])  # the first row has no previous close
        columns = {f"{base}_return": np.log(close / prev)}
        if base == "close":  # the day's open and range relative to the close, where the data has them
            has = set(frame.columns)
            if "open" in has:
                columns["open_gap"] = np.log(frame["open"].to_numpy(dtype=float) / prev)
            for column in ("high", "low"):
                if column in has:
                    columns[f"{column}_range"] = np.log(frame[column].to_numpy(dtype=float) / close)
            if {"high", "low"} <= has:  # recent volatility: the size of tomorrow's excursions from the close
                day_range = pd.Series(np.log(frame["high"].to_numpy(dtype=float) / frame["low"].to_numpy(dtype=float)))
                for days in VOLATILITY_DAYS:
                    columns[f"range_mean_{days}"] = day_range.rolling(days, min_periods=1).mean().to_numpy()
            if self.target not in ("open", "high", "low", "close"):
                columns[f"{self.target}_ratio"] = np.log(frame[self.target].to_numpy(dtype=float) / close)
        if "volume" in frame.columns:
            volume = np.log1p(frame["volume"].to_numpy(dtype=float))
            recent = pd.Series(volume).rolling(VOLUME_DAYS, min_periods=1).mean().to_numpy()
            columns["volume_relative"] = volume - recent
        return np.column_stack(list(columns.values())), list(columns)

    # -- targets ------------------------------------------------------------------------------
    def _raw_targets(self, frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
        target = frame[self.target].to_numpy(dtype=float)
        if self.kind == "level":
            return _matrix(target, origins, horizon)
        close = frame[self._base(frame)].to_numpy(dtype=float)
        return np.log(_matrix(target, origins, horizon) / close[origins, None])

    # -- fit and transform --------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> Features:
        """Fit the scalers on the training rows in `frame` and training windows `origins`."""
        raw, self.names_ = self._raw_inputs(frame)
        if self.kind == "level":
            self.input_scaler_ = MinMaxScaler().fit(raw)
            self.target_scaler_ = self.input_scaler_
        else:
            self.input_scaler_ = StandardScaler().fit(raw)
            self.target_scaler_ = StandardScaler().fit(self._raw_targets(frame, origins, horizon).reshape(-1, 1))
        return self

    @property
    def n_inputs(self) -> int:
        return len(self.names_)

    def inputs(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, n_inputs) float32 model inputs; row i depends on rows <= i only."""
        raw, names = self._raw_inputs(frame)
        if names != self.names_:
            lacking = [n for n in self.names_ if n not in names]
            raise DataError(
                f"the data gives the inputs {', '.join(names)}; the model was fitted on {', '.join(self.names_)}"
                + (f" (missing: {', '.join(lacking)}: the data lacks a column they are made from)" if lacking else "")
            )
        return self.input_scaler_.transform(raw).astype(np.float32)

    def targets(self, frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
        """(len(origins), horizon) training targets in model units."""
        raw = self._raw_targets(frame, origins, horizon)
        return self.target_scaler_.transform(raw.reshape(-1, 1)).reshape(raw.shape).astype(np.float32)

    def to_price(self, values: np.ndarray, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Model outputs (n, horizon) for windows with `origins` back to prices."""
        values = np.asarray(values, dtype=float)
        raw = self.target_scaler_.inverse_transform(values.reshape(-1, 1)).reshape(values.shape)
        if self.kind == "level":
            return raw
        return frame[self._base(frame)].to_numpy(dtype=float)[origins, None] * np.exp(raw)

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "kind": self.kind,
            "names": self.names_,
            "input_scaler": _scaler_state(self.input_scaler_),
            "target_scaler": _scaler_state(self.target_scaler_),
        }

    @classmethod
    def from_dict(cls, state: dict) -> Features:
        features = cls(state["target"], state["kind"])
        features.names_ = list(state["names"])
        features.input_scaler_ = _scaler_from_state(state["input_scaler"])
        features.target_scaler_ = _scaler_from_state(state["target_scaler"])
        return features


def _scaler_state(scaler: MinMaxScaler | StandardScaler) -> dict:
    if isinstance(scaler, MinMaxScaler):
        return {"kind": "minmax", "data_min": scaler.data_min_.tolist(), "data_max": scaler.data_max_.tolist()}
    return {"kind": "standard", "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}


def _scaler_from_state(state: dict) -> MinMaxScaler | StandardScaler:
    """Rebuild a fitted scaler from plain numbers (fitting on the two bounds, or setting moments)."""
    if state["kind"] == "minmax":
        return MinMaxScaler().fit(np.array([state["data_min"], state["data_max"]], dtype=float))
    # The fitted moments are set, not refitted: fitting on (mean - scale, mean + scale) gives a
    # mean and scale that differ from the saved ones in the last bit about half the time, and a
    # loaded model would then not be the computation that was saved.
    mean, scale = np.asarray(state["mean"], dtype=float), np.asarray(state["scale"], dtype=float)
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale**2
    scaler.n_features_in_, scaler.n_samples_seen_ = len(mean), 2
    return scaler
