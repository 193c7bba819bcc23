"""The estimator facade shared by the global (panel) models: building the panel's windows,
the date-based validation tail, conformal calibration on it, and rolling/predict/save for any
ticker. The models themselves (one network, one pooled ridge) are in global_models.py.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import ModelConfig
from .data import Prices, as_prices
from .errors import ConfigError, DataError
from .files import atomic_dir
from .forecaster import FORMAT_VERSION, PREDICT_CHUNK, _check_finite, fingerprint, versions
from .interrupt import StopToken
from .intervals import Calibration, calibrate, interval_columns
from .panel_features import (
    INPUT_BOUND,
    MAX_LOG_RATIO,
    MIN_INPUT_SCALE,
    MIN_SCALE,
    TARGET_BOUND,
    PanelFeatures,
    SeriesStats,
    origin_scale,
    split_origins,
    stats_rows,
    validation_cutoff,
)
from .runners import Runner
from .training import EpochCallback
from .windows import WindowDataset, position, train_origins

CALIBRATION_FRACTION = 0.1  # the tail that calibrates intervals when val_fraction is 0 (then in-sample)
NO_CLOSE = "no close column: a global model measures its target against the close"
# What a global model forecasts: a price within a day's move of the close, as a bounded log ratio
# to it (volume is no such price, and an adjusted close may lie far from the close in old years).
GLOBAL_TARGETS = ("open", "high", "low", "close", "last")


def check_global_target(name: str, target: str) -> None:
    """Refuse a target a global model cannot forecast (see GLOBAL_TARGETS), before any work."""
    if target not in GLOBAL_TARGETS:
        raise ConfigError(
            f"a global {name} model forecasts a price as its ratio to the close ({', '.join(GLOBAL_TARGETS)}), "
            f"not '{target}'; the per-ticker models (ridge_local, lstm_local, ...) forecast any column"
        )


@dataclass(frozen=True)
class PanelWindows:
    """A panel's training windows: `fit` and `val` index the windows of `data` (one array for
    every ticker, windows as views); `cutoff` is the first date of the validation tail."""

    frames: dict[str, pd.DataFrame]
    skipped: list[dict]
    cutoff: pd.Timestamp | None
    data: WindowDataset
    fit: np.ndarray
    val: np.ndarray


class GlobalForecaster:
    """Shared behaviour: per-ticker statistics, the date-based split, rolling/predict, saving."""

    name = "global"

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        if self.config.features != "relative":
            raise ConfigError(f"a global {self.name} model needs relative features, not '{self.config.features}'")
        check_global_target(self.name, self.config.target)

    # -- what a subclass provides -------------------------------------------------------------
    def _fit_data(
        self,
        data: WindowDataset,
        fit: np.ndarray,
        val: np.ndarray,
        on_epoch: EpochCallback | None,
        stop: StopToken | None,
        runner: Runner | None = None,
    ):
        """Fit on windows `fit`, early stopping/penalty choice on `val`; a `runner` with several
        jobs may train parts (ensemble members) side by side."""
        raise NotImplementedError

    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict, directory: Path) -> None:
        pass

    def _write_weights(self, directory: Path) -> None:
        pass

    # -- fitting ------------------------------------------------------------------------------
    def fit_panel(
        self,
        panel: Mapping[str, Prices],
        train_start: str | pd.Timestamp | None = None,
        train_end: str | pd.Timestamp | None = None,
        on_epoch: EpochCallback | None = None,
        stop: StopToken | None = None,
        runner: Runner | None = None,
    ) -> GlobalForecaster:
        """Fit one model on the windows from `train_start` to `train_end` (inclusive) of every
        ticker; tickers too short or unusable are skipped (listed in `fitted_["skipped"]`). A `stop`
        request (a first Ctrl-C) ends a network's training after the current batch. With a
        `runner` of several jobs, an ensemble's members train as its units (same numbers)."""
        windows = self.windows(panel, train_start, train_end)
        frames, cutoff = windows.frames, windows.cutoff
        self._fit_data(windows.data, windows.fit, windows.val, on_epoch, stop, runner)
        self.train_end_ = max(f.index[-1] for f in frames.values())
        self.calibration_ = self._calibrate(frames, cutoff)
        prints = {t: fingerprint(f) for t, f in frames.items()}
        digest = hashlib.sha256("".join(f"{t}:{p};" for t, p in prints.items()).encode())
        self.fitted_ = {
            "tickers": len(frames),
            "skipped": windows.skipped,
            "first": min(f.index[0] for f in frames.values()).strftime("%Y-%m-%d"),
            "last": self.train_end_.strftime("%Y-%m-%d"),
            "validation_start": None if cutoff is None else cutoff.strftime("%Y-%m-%d"),
            "windows": len(windows.fit),
            "validation_windows": len(windows.val),
            "fingerprint": digest.hexdigest()[:16],
            # each ticker's training rows, which `check_data` compares a later file with
            "training_rows": {
                t: [f"{f.index[0]:%Y-%m-%d}", f"{f.index[-1]:%Y-%m-%d}", prints[t]] for t, f in frames.items()
            },
        }
        return self

    def windows(
        self,
        panel: Mapping[str, Prices],
        train_start: str | pd.Timestamp | None = None,
        train_end: str | pd.Timestamp | None = None,
    ) -> PanelWindows:
        """The panel's training windows in model units, split by date; sets the per-ticker
        statistics (`series_`). What `fit_panel` trains on, and what benchmarks time."""
        c = self.config
        self.features_ = PanelFeatures(c.target)
        frames, skipped = self._training_frames(panel, train_start, train_end)
        self.series_ = {t: self.features_.stats(f) for t, f in frames.items()}
        cutoff = validation_cutoff([f.index for f in frames.values()], c.val_fraction)
        parts, fit, val, offset = [], [], [], 0
        for ticker, frame in frames.items():
            origins = train_origins(0, len(frame), c.window, c.horizon)
            fit_mask, val_mask = split_origins(frame.index, origins, c.horizon, cutoff)
            inputs = self.features_.inputs(frame, self.series_[ticker])
            parts.append((inputs, self.features_.targets(frame, origins, c.horizon), origins))
            fit.append(np.flatnonzero(fit_mask) + offset)
            val.append(np.flatnonzero(val_mask) + offset)
            offset += len(origins)
        fit, val = np.concatenate(fit), np.concatenate(val)
        if len(fit) == 0 or (cutoff is not None and len(val) == 0):
            raise ConfigError(f"the panel's {offset} training windows are too few to hold out a validation tail")
        return PanelWindows(frames, skipped, cutoff, WindowDataset.panel(parts, c.window), fit, val)

    def _training_frames(self, panel: Mapping[str, Prices], train_start, train_end):
        """{ticker: training rows} of the usable tickers, and [{ticker, reason}] of the others.

        The model's inputs are those most tickers have (ties: the longer list), so which tickers
        train does not depend on the order of the files; a ticker with other inputs is skipped."""
        need = self.config.window + self.config.horizon
        frames, skipped, inputs = {}, [], {}
        for ticker, prices in panel.items():
            try:
                prices = as_prices(prices)
                prices.column(self.config.target)
                if "close" not in prices.frame.columns:
                    raise ConfigError(NO_CLOSE)
                frame = prices.frame.loc[train_start:train_end]
                if len(frame) < need:
                    raise ConfigError(f"{len(frame)} training rows, one window needs {need}")
            except (ConfigError, DataError) as exc:
                skipped.append({"ticker": str(ticker), "reason": str(exc)})
                continue
            frames[str(ticker)] = frame
            inputs[str(ticker)] = tuple(self.features_.raw(frame.iloc[:1])[1])
        if not frames:
            reasons = "; ".join(f"{s['ticker']}: {s['reason']}" for s in skipped[:3])
            raise ConfigError(f"no ticker of the panel can be trained on ({reasons})")
        counts = Counter(inputs.values())
        names = max(counts, key=lambda have: (counts[have], len(have), have))
        for ticker, have in inputs.items():
            if have != names:
                del frames[ticker]
                reason = (
                    f"inputs {list(have)} differ from the {list(names)} of {counts[names]} of {len(inputs)} tickers"
                )
                skipped.append({"ticker": ticker, "reason": reason})
        self.names_ = list(names)
        return frames, skipped

    def _calibrate(self, frames: dict[str, pd.DataFrame], cutoff: pd.Timestamp | None) -> Calibration | None:
        """Conformal widths from the forecasts on the panel's validation tail (held out from the
        fit); with no tail (val_fraction 0), the latest tenth of training dates, in-sample."""
        c = self.config
        held_out = cutoff is not None
        if cutoff is None:
            cutoff = validation_cutoff([f.index for f in frames.values()], CALIBRATION_FRACTION)
        actual, forecast, scale = [], [], []
        for ticker, frame in frames.items():
            origins = train_origins(0, len(frame), c.window, c.horizon)
            origins = origins[split_origins(frame.index, origins, c.horizon, cutoff)[1]]
            if len(origins) == 0:
                continue
            target = frame[c.target].to_numpy(dtype=float)
            actual.append(target[origins[:, None] + np.arange(1, c.horizon + 1)])
            forecast.append(self._forecast(frame, origins, self.series_[ticker]))
            scale.append(origin_scale(frame)[origins])
        if not actual:
            return None
        return calibrate(np.concatenate(actual), np.concatenate(forecast), np.concatenate(scale), held_out=held_out)

    # -- forecasting --------------------------------------------------------------------------
    def cannot_forecast(self, prices: Prices) -> str | None:
        """Why this model cannot forecast `prices`, or None: a ticker it never saw needs a close and
        the inputs the model was fitted on, and so does one it saw (a panel run leaves such a ticker
        out for every model)."""
        try:
            self._stats_for(prices, len(prices.frame) - 1)
        except ConfigError as exc:
            return str(exc).removeprefix(f"{prices.source}: ")
        return None

    def _stats_for(self, prices: Prices, first_origin: int) -> SeriesStats:
        """A ticker seen in training: its training statistics; any other: see panel_features. Either
        needs a close and the inputs the model was fitted on (a seen ticker's file may lack a column
        it had in training)."""
        if "close" not in prices.frame.columns:
            raise ConfigError(f"{prices.source}: {NO_CLOSE}")
        names = self.features_.raw(prices.frame.iloc[:1])[1]  # the inputs follow from the columns alone
        if names != self.names_:
            raise ConfigError(f"{prices.source}: the data has inputs {names}, the model was fitted on {self.names_}")
        if prices.name in self.series_:
            return self.series_[prices.name]
        return SeriesStats.fit(self.features_.raw(stats_rows(prices.frame, first_origin, self.train_end_))[0])

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray, stats: SeriesStats) -> np.ndarray:
        """Price forecasts (len(origins), horizon) from rows up to each origin only."""
        data = WindowDataset(self.features_.inputs(frame, stats), None, origins, self.config.window)
        outputs = np.concatenate(
            [
                self._predict_windows(data.batch(torch.arange(i, min(i + PREDICT_CHUNK, len(data))))[0])
                for i in range(0, len(data), PREDICT_CHUNK)
            ]
        )
        return self.features_.to_price(outputs, frame, origins)

    def rolling(
        self, prices: Prices | pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """For each trading day d in [start, end], the forecasts made with data up to the day
        before d (as Forecaster.rolling). Index: the origin; columns step_k and the intervals."""
        self._check_fitted()
        prices = as_prices(prices)
        frame = prices.frame
        first = position(frame.index, start, "start", prices.source)
        last = len(frame) - 1 if end is None else int(frame.index.searchsorted(pd.Timestamp(end), "right")) - 1
        if last < first:
            raise ConfigError(f"{prices.source}: no trading day between {start} and {end}")
        origins = np.arange(first, last + 1) - 1
        if origins[0] < self.config.window - 1:
            raise ConfigError(
                f"{prices.source}: too few rows before {frame.index[first]:%Y-%m-%d} for one window: "
                f"{first} rows, the global {self.name} model needs {self.config.window}"
            )
        values = self._forecast(frame, origins, self._stats_for(prices, int(origins[0])))
        _check_finite(values, frame.index[origins], self.name)
        columns = {f"step_{k}": values[:, k - 1] for k in range(1, values.shape[1] + 1)}
        if self.calibration_ is not None:
            columns.update(interval_columns(values, origin_scale(frame)[origins], self.calibration_))
        return pd.DataFrame(columns, index=pd.DatetimeIndex(frame.index[origins], name="origin"))

    def check_data(self, prices: Prices | pd.DataFrame) -> str | None:
        """A one-line warning when `prices` is a ticker this model trained on and its rows over that
        ticker's training span differ from those it saw (revised or other data), else None."""
        self._check_fitted()
        prices = as_prices(prices)
        seen = self.fitted_.get("training_rows", {}).get(prices.name)  # absent in older model files
        if seen is None:
            return None
        first, last, digest = seen
        index = prices.frame.index
        if len(index) and index[0] <= pd.Timestamp(first) and fingerprint(prices.frame.loc[first:last]) != digest:
            return (
                f"{prices.source}: the rows from {first} to {last} differ from those the global {self.name} model "
                f"was trained on for {prices.name} (revised or other data)"
            )
        return None

    def predict(self, prices: Prices | pd.DataFrame, horizon: int = 1) -> pd.DataFrame:
        """Forecasts for the next `horizon` weekdays after the last row of `prices`, which must reach
        the training end (else the forecast is for days the model was trained on, for some ticker)."""
        self._check_fitted()
        if not 1 <= horizon <= self.config.horizon:
            raise ConfigError(
                f"horizon {horizon} is not available: the model was trained for 1..{self.config.horizon} steps"
            )
        prices = as_prices(prices)
        frame = prices.frame
        if len(frame) < self.config.window:
            raise ConfigError(
                f"{prices.source}: {len(frame)} rows, the global {self.name} model needs {self.config.window}"
            )
        if frame.index[-1] < self.train_end_:
            raise ConfigError(
                f"{prices.source}: the data ends on {frame.index[-1]:%Y-%m-%d}, before the global {self.name} model's "
                f"training end {self.train_end_:%Y-%m-%d}: forecast from data that reaches at least its training end"
            )
        origin = np.array([len(frame) - 1])
        values = self._forecast(frame, origin, self._stats_for(prices, len(frame) - 1))[:, :horizon]
        _check_finite(values, frame.index[-1:], self.name)
        dates = pd.bdate_range(frame.index[-1] + pd.Timedelta(days=1), periods=horizon, name="date")
        table = pd.DataFrame({"forecast": values[0]}, index=dates)
        if self.calibration_ is not None:
            bounds = interval_columns(values, origin_scale(frame)[origin], self.calibration_)
            for band in ("lo80", "hi80", "lo95", "hi95"):
                table[band] = [bounds[f"{band}_{k}"][0] for k in range(1, horizon + 1)]
        return table

    # -- saving -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """model.json (config, per-ticker statistics, calibration) and, for networks,
        weights.safetensors, written atomically; nothing pickled."""
        self._check_fitted()
        state = {
            "format_version": FORMAT_VERSION,
            "model": f"global_{self.name}",
            "config": self.config.to_dict(),
            "fitted": self.fitted_,
            "calibration": None if self.calibration_ is None else self.calibration_.to_dict(),
            "versions": versions(),
            "panel": {
                "inputs": self.names_,
                "train_end": self.train_end_.strftime("%Y-%m-%d"),
                "min_scale": MIN_SCALE,
                "min_input_scale": MIN_INPUT_SCALE,
                "input_bound": INPUT_BOUND,
                "max_log_ratio": MAX_LOG_RATIO,
                "target_bound": TARGET_BOUND,
                "statistics_rule": "seen tickers: their training rows; others: their rows up to the "
                "training end and the first forecast origin",
            },
            "series": {t: s.to_dict() for t, s in self.series_.items()},
            **self._state(),
        }
        with atomic_dir(directory) as tmp:
            self._write_weights(tmp)
            (tmp / "model.json").write_text(json.dumps(state, indent=2) + "\n")
        return Path(directory)

    def _check_fitted(self) -> None:
        if not hasattr(self, "fitted_"):
            raise ConfigError(f"the global {self.name} model is not fitted yet: call fit_panel() first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
