"""The estimator contract: every model, network or baseline, has `fit`, `rolling`, `predict`,
`save` and `load`, so evaluation and reports treat them alike. The models themselves live in
`baselines.py` (persistence, ridge) and `networks.py` (LSTM, GRU); `registry.py` names them and
`saving.py` reads saved ones back.

Learned state ends in `_` (scikit-learn's rule); `__init__` only stores settings.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .config import ModelConfig
from .data import Prices, as_prices
from .errors import ConfigError, DataError, TrainingError
from .features import Features
from .files import atomic_dir
from .interrupt import StopToken
from .intervals import Calibration, calibrate, interval_columns, volatility
from .saving import FORMAT_VERSION
from .training import EpochCallback
from .windows import WindowDataset, position, train_origins

PREDICT_CHUNK = 4096


class Forecaster:
    """Shared behaviour: training-span slicing, the rolling and forecasting paths, saving."""

    name = "forecaster"

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()

    # -- what a subclass provides -------------------------------------------------------------
    @property
    def history(self) -> int:
        """Rows of history one forecast needs (the origin included)."""
        return self.config.window

    def _fit(self, frame: pd.DataFrame, on_epoch: EpochCallback | None = None, stop: StopToken | None = None) -> None:
        raise NotImplementedError

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Price forecasts (len(origins), horizon) made from rows up to each origin only."""
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict, directory: Path) -> None:
        pass

    def _tail_held_out(self, n_tail: int) -> bool:
        """Whether the model never trained on its last `n_tail` training windows (the calibration
        tail); a model that refits on every window, as ridge does, says False."""
        return False

    # -- the public API -----------------------------------------------------------------------
    def fit(
        self,
        prices: Prices | pd.DataFrame,
        train_start: str | pd.Timestamp | None = None,
        train_end: str | pd.Timestamp | None = None,
        on_epoch: EpochCallback | None = None,
        stop: StopToken | None = None,
    ) -> Forecaster:
        """Fit on the rows from `train_start` to `train_end` (inclusive); returns self. A network
        tells `on_epoch` after each epoch of each ensemble member (the baselines have no epochs), and
        a `stop` request (a first Ctrl-C) ends its training after the current batch."""
        prices = as_prices(prices)
        prices.column(self.config.target)
        frame = prices.frame.loc[train_start:train_end]
        need = self.history + self.config.horizon
        if len(frame) < need:
            raise ConfigError(
                f"{prices.source}: too few rows for training: {len(frame)} rows, one window of "
                f"{self.history} rows and {self.config.horizon} target row(s) need {need}"
            )
        try:
            self._fit(frame, on_epoch, stop)
        except ConfigError as exc:  # e.g. too few windows for a validation tail: say which data
            if str(exc).startswith(f"{prices.source}:"):
                raise
            raise ConfigError(f"{prices.source}: {exc}") from None
        self.calibration_ = self._calibrate(frame, prices.repairs.changed_dates(self.config.target))
        self.fitted_ = {
            "name": prices.name,
            "source": prices.source,
            "rows": len(frame),
            "first": frame.index[0].strftime("%Y-%m-%d"),
            "last": frame.index[-1].strftime("%Y-%m-%d"),
            "fingerprint": fingerprint(frame),
        }
        return self

    def rolling(
        self,
        prices: Prices | pd.DataFrame,
        start: str | pd.Timestamp,
        end: str | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """For each trading day d in [start, end], the forecasts made with data up to the day
        before d. Index: the origin (last day of data used); columns step_1..step_H."""
        self._check_fitted()
        prices = as_prices(prices)
        self.check_inputs(prices)
        frame = prices.frame
        first = position(frame.index, start, "start", prices.source)
        last = len(frame) - 1 if end is None else int(frame.index.searchsorted(pd.Timestamp(end), "right")) - 1
        if last < first:
            raise ConfigError(f"{prices.source}: no trading day between {start} and {end}")
        origins = np.arange(first, last + 1) - 1
        if origins[0] < self.history - 1:
            raise ConfigError(
                f"{prices.source}: too few rows before {frame.index[first]:%Y-%m-%d} for one window: "
                f"{first} rows, the {self.name} model needs {self.history}"
            )
        values = self._forecast(frame, origins)
        _check_finite(values, frame.index[origins], self.name)
        columns = {f"step_{k}": values[:, k - 1] for k in range(1, values.shape[1] + 1)}
        if self.calibration_ is not None:
            columns.update(interval_columns(values, volatility(frame)[origins], self.calibration_))
        return pd.DataFrame(columns, index=pd.DatetimeIndex(frame.index[origins], name="origin"))

    def predict(self, prices: Prices | pd.DataFrame, horizon: int = 1) -> pd.DataFrame:
        """Forecasts for the next `horizon` weekdays after the last row of `prices`.

        Weekdays, not exchange trading days: the tool knows no exchange holidays."""
        self._check_fitted()
        if not 1 <= horizon <= self.config.horizon:
            raise ConfigError(
                f"horizon {horizon} is not available: the model was trained for 1..{self.config.horizon} steps"
            )
        prices = as_prices(prices)
        self.check_inputs(prices)
        frame = prices.frame
        if len(frame) < self.history:
            raise ConfigError(f"{prices.source}: {len(frame)} rows, the {self.name} model needs {self.history}")
        values = self._forecast(frame, np.array([len(frame) - 1]))[:, :horizon]
        _check_finite(values, frame.index[-1:], self.name)
        dates = pd.bdate_range(frame.index[-1] + pd.Timedelta(days=1), periods=horizon, name="date")
        table = pd.DataFrame({"forecast": values[0]}, index=dates)
        if self.calibration_ is not None:
            bounds = interval_columns(values, volatility(frame)[-1:], self.calibration_)
            for band in ("lo80", "hi80", "lo95", "hi95"):
                table[band] = [bounds[f"{band}_{k}"][0] for k in range(1, horizon + 1)]
        return table

    def check_data(self, prices: Prices | pd.DataFrame) -> str | None:
        """Is `prices` the data to forecast from with this model? A ConfigError when it ends before
        the training end (its forecasts would be for days the model trained on); a warning (one
        line) when it names another ticker, or its rows over the training span differ; else None."""
        self._check_fitted()
        prices = as_prices(prices)
        fitted, index = self.fitted_, prices.frame.index
        if index[-1] < pd.Timestamp(fitted["last"]):
            raise ConfigError(
                f"{prices.source}: the data ends on {index[-1]:%Y-%m-%d}, before the model's training end "
                f"{fitted['last']}: forecast from data that reaches at least its training end"
            )
        trained_on = f"{fitted['name']} ({fitted.get('source', 'unknown source')})" if fitted.get("name") else None
        if trained_on and fitted["name"] != prices.name:
            return f"the {self.name} model was trained on {trained_on}, the data is {prices.name} ({prices.source})"
        span = prices.frame.loc[fitted["first"] : fitted["last"]]
        if index[0] <= pd.Timestamp(fitted["first"]) and fingerprint(span) != fitted.get("fingerprint"):
            return (
                f"{prices.source}: the rows from {fitted['first']} to {fitted['last']} differ from those the "
                f"{self.name} model was trained on (revised or other data)"
            )
        return None

    def check_inputs(self, prices: Prices) -> None:
        """The data must give what the model was fitted on; window models check their inputs."""

    def _calibrate(self, frame: pd.DataFrame, changed: pd.DatetimeIndex | None = None) -> Calibration | None:
        """Conformal interval widths from the last training windows (the networks' validation tail,
        held out from their gradient steps): forecasts made by the fitted model, training rows only.
        Windows whose targets fall on `changed` days (repaired values, untraded quotes) are left
        out, as they are left out of scoring: a stale quote would score a zero error."""
        origins = train_origins(0, len(frame), self.history, self.config.horizon)
        n_tail = int(round(len(origins) * self.config.val_fraction))
        held_out = self._tail_held_out(n_tail)
        if n_tail == 0:  # no validation tail (val_fraction 0): the last tenth, which the model saw
            n_tail = int(round(len(origins) * 0.1))
        tail = origins[len(origins) - n_tail :]
        if changed is not None and len(changed) and len(tail):
            steps = tail[:, None] + np.arange(1, self.config.horizon + 1)
            tail = tail[~frame.index[steps.ravel()].isin(changed).reshape(steps.shape).any(axis=1)]
        target = frame[self.config.target].to_numpy(dtype=float)
        actual = target[tail[:, None] + np.arange(1, self.config.horizon + 1)]
        forecast = self._forecast(frame, tail) if len(tail) else np.empty((0, self.config.horizon))
        return calibrate(actual, forecast, volatility(frame)[tail], held_out=held_out)

    def save(self, directory: str | Path) -> Path:
        """Write `model.json` (and `weights.safetensors` for networks) into `directory`, atomically."""
        self._check_fitted()
        state = {
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "config": self.config.to_dict(),
            "fitted": self.fitted_,
            "calibration": None if self.calibration_ is None else self.calibration_.to_dict(),
            "versions": versions(),
            **self._state(),
        }
        with atomic_dir(directory) as tmp:
            self._write_weights(tmp)
            (tmp / "model.json").write_text(json.dumps(state, indent=2) + "\n")
        return Path(directory)

    def _write_weights(self, directory: Path) -> None:
        pass

    def _check_fitted(self) -> None:
        if not hasattr(self, "fitted_"):
            raise ConfigError(f"the {self.name} model is not fitted yet: call fit() first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


class WindowForecaster(Forecaster):
    """A model of the last `window` rows of features: builds features and windows for subclasses."""

    def _windows(self, frame: pd.DataFrame, origins: np.ndarray, with_targets: bool) -> WindowDataset:
        targets = self.features_.targets(frame, origins, self.config.horizon) if with_targets else None
        return WindowDataset(self.features_.inputs(frame), targets, origins, self.config.window)

    def _fit(self, frame: pd.DataFrame, on_epoch: EpochCallback | None = None, stop: StopToken | None = None) -> None:
        origins = train_origins(0, len(frame), self.config.window, self.config.horizon)
        self.features_ = Features(self.config.target, self.config.features).fit(frame, origins, self.config.horizon)
        self._fit_windows(self._windows(frame, origins, with_targets=True), on_epoch, stop)

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        data = self._windows(frame, origins, with_targets=False)
        outputs = np.concatenate(
            [
                self._predict_windows(data.batch(torch.arange(i, min(i + PREDICT_CHUNK, len(data))))[0])
                for i in range(0, len(data), PREDICT_CHUNK)
            ]
        )
        return self.features_.to_price(outputs, frame, origins)

    def check_inputs(self, prices: Prices) -> None:
        """A model fitted with volume cannot forecast from data without it (and the reverse)."""
        _, names = self.features_._raw_inputs(prices.frame.iloc[-1:])
        missing = [n for n in self.features_.names_ if n not in names]
        extra = [n for n in names if n not in self.features_.names_]
        columns = ", ".join(prices.frame.columns)
        if missing:
            raise DataError(
                f"{prices.source}: the {self.name} model was trained on inputs the data cannot give: "
                f"{', '.join(missing)} (the data has columns {columns})"
            )
        if extra:
            raise DataError(
                f"{prices.source}: the data gives inputs the {self.name} model was not trained on: "
                f"{', '.join(extra)} (the data has columns {columns})"
            )

    def _fit_windows(
        self, data: WindowDataset, on_epoch: EpochCallback | None = None, stop: StopToken | None = None
    ) -> None:
        raise NotImplementedError

    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict:
        return {"features": self.features_.to_dict()}

    def _restore(self, state: dict, directory: Path) -> None:
        self.features_ = Features.from_dict(state["features"])


def _check_finite(values: np.ndarray, origins: pd.DatetimeIndex, name: str) -> None:
    """Never hand out a NaN forecast: a non-finite one means training or the inputs went wrong."""
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        day = origins[int(np.argmax(bad))]
        raise TrainingError(
            f"the {name} model gave a non-finite forecast from {day:%Y-%m-%d} (the weights diverged, or the "
            "inputs lie far outside the training range: check the data for extreme values, or lower --lr)"
        )


def fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of the training rows, to tell later which data a saved model saw."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def versions() -> dict:
    return {
        "stockrnn": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


# The models, importable from here as before the split.
from .baselines import RIDGE_ALPHAS, Persistence, RidgeForecaster  # noqa: E402
from .networks import NetworkForecaster  # noqa: E402
from .registry import make_forecaster  # noqa: E402
from .saving import load, read_weights  # noqa: E402

__all__ = [
    "FORMAT_VERSION",
    "PREDICT_CHUNK",
    "RIDGE_ALPHAS",
    "Forecaster",
    "NetworkForecaster",
    "Persistence",
    "RidgeForecaster",
    "WindowForecaster",
    "fingerprint",
    "load",
    "make_forecaster",
    "read_weights",
    "versions",
]
