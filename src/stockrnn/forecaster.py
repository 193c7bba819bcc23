"""The estimator facade: every model, network or baseline, has `fit`, `rolling`, `predict`,
`save` and `load`, so evaluation and reports treat them alike.

Learned state ends in `_` (scikit-learn's rule); `__init__` only stores settings.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from . import __version__, interrupt
from .config import ModelConfig, model_config
from .data import Prices, as_prices
from .errors import ConfigError, DataError, TrainingError
from .features import Features
from .files import atomic_dir
from .intervals import Calibration, calibrate, interval_columns, volatility
from .models import Ensemble, RecurrentNet, keras_init_
from .training import EpochCallback, resolve_device, seed_everything, train
from .windows import WindowDataset, position, train_origins

FORMAT_VERSION = 1
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)
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

    def _fit(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Price forecasts (len(origins), horizon) made from rows up to each origin only."""
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict, directory: Path) -> None:
        pass

    # -- the public API -----------------------------------------------------------------------
    def fit(
        self,
        prices: Prices | pd.DataFrame,
        train_start: str | pd.Timestamp | None = None,
        train_end: str | pd.Timestamp | None = None,
    ) -> Forecaster:
        """Fit on the rows from `train_start` to `train_end` (inclusive); returns self."""
        prices = as_prices(prices)
        prices.column(self.config.target)
        frame = prices.frame.loc[train_start:train_end]
        need = self.history + self.config.horizon
        if len(frame) < need:
            raise ConfigError(
                f"{prices.source}: too few rows for training: {len(frame)} rows, one window of "
                f"{self.history} rows and {self.config.horizon} target row(s) need {need}"
            )
        self._fit(frame)
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
        self._check_inputs(prices)
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
        self._check_inputs(prices)
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

    def _check_inputs(self, prices: Prices) -> None:
        """The data must give what the model was fitted on; window models check their inputs."""

    def _calibrate(self, frame: pd.DataFrame, changed: pd.DatetimeIndex | None = None) -> Calibration | None:
        """Conformal interval widths from the last training windows (the networks' validation tail,
        held out from their gradient steps): forecasts made by the fitted model, training rows only.
        Windows whose targets fall on `changed` days (repaired values, untraded quotes) are left
        out, as they are left out of scoring: a stale quote would score a zero error."""
        origins = train_origins(0, len(frame), self.history, self.config.horizon)
        n_tail = int(round(len(origins) * self.config.val_fraction))
        # Persistence learns nothing; ridge refits on every window, so its tail is in-sample.
        held_out = isinstance(self, Persistence) or (isinstance(self, NetworkForecaster) and n_tail > 0)
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


class Persistence(Forecaster):
    """Tomorrow = today: every step is the last known value of the target."""

    name = "persistence"

    @property
    def history(self) -> int:
        return 1

    def _fit(self, frame: pd.DataFrame) -> None:
        pass

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        last = frame[self.config.target].to_numpy(dtype=float)[origins]
        return np.repeat(last[:, None], self.config.horizon, axis=1)


class WindowForecaster(Forecaster):
    """A model of the last `window` rows of features: builds features and windows for subclasses."""

    def _windows(self, frame: pd.DataFrame, origins: np.ndarray, with_targets: bool) -> WindowDataset:
        targets = self.features_.targets(frame, origins, self.config.horizon) if with_targets else None
        return WindowDataset(self.features_.inputs(frame), targets, origins, self.config.window)

    def _fit(self, frame: pd.DataFrame) -> None:
        origins = train_origins(0, len(frame), self.config.window, self.config.horizon)
        self.features_ = Features(self.config.target, self.config.features).fit(frame, origins, self.config.horizon)
        self._fit_windows(self._windows(frame, origins, with_targets=True))

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        data = self._windows(frame, origins, with_targets=False)
        outputs = np.concatenate(
            [
                self._predict_windows(data.batch(torch.arange(i, min(i + PREDICT_CHUNK, len(data))))[0])
                for i in range(0, len(data), PREDICT_CHUNK)
            ]
        )
        return self.features_.to_price(outputs, frame, origins)

    def _check_inputs(self, prices: Prices) -> None:
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

    def _fit_windows(self, data: WindowDataset) -> None:
        raise NotImplementedError

    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict:
        return {"features": self.features_.to_dict()}

    def _restore(self, state: dict, directory: Path) -> None:
        self.features_ = Features.from_dict(state["features"])


class RidgeForecaster(WindowForecaster):
    """Linear regression on the same window as the networks; the penalty is chosen on the last
    20% of the training windows (a validation tail), then the model is refitted on all of them."""

    name = "ridge"

    def _fit_windows(self, data: WindowDataset) -> None:
        x, y = data.batch(torch.arange(len(data)))
        x, y = x.flatten(1).double().numpy(), y.double().numpy()
        n_val = len(x) // 5
        best = (np.inf, 1.0)
        if n_val >= 5:
            for alpha in RIDGE_ALPHAS:
                model = Ridge(alpha=alpha).fit(x[:-n_val], y[:-n_val])
                predicted = model.predict(x[-n_val:]).reshape(n_val, -1)  # (n, horizon) also when horizon is 1
                best = min(best, (float(np.mean((predicted - y[-n_val:]) ** 2)), alpha))
        self.alpha_ = best[1]
        model = Ridge(alpha=self.alpha_).fit(x, y)
        self.coef_, self.intercept_ = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)

    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        return x.flatten(1).double().numpy() @ self.coef_.T + self.intercept_

    def _state(self) -> dict:
        ridge = {"alpha": self.alpha_, "coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}
        return {**super()._state(), "ridge": ridge}

    def _restore(self, state: dict, directory: Path) -> None:
        super()._restore(state, directory)
        self.alpha_ = float(state["ridge"]["alpha"])
        self.coef_ = np.asarray(state["ridge"]["coef"], dtype=float)
        self.intercept_ = np.asarray(state["ridge"]["intercept"], dtype=float)
        want = (self.config.horizon, self.config.window * self.features_.n_inputs)
        if self.coef_.shape != want or self.intercept_.shape != want[:1]:
            raise DataError(
                f"{directory / 'model.json'}: ridge coefficients of shape {self.coef_.shape} do not match "
                f"the config, which needs (horizon, window x inputs) = {want}"
            )
        if not (np.isfinite(self.coef_).all() and np.isfinite(self.intercept_).all()):
            raise DataError(f"{directory / 'model.json'}: ridge coefficients are not finite")


class NetworkForecaster(WindowForecaster):
    """An LSTM or GRU network (`cell`), trained on shuffled windows with the configured optimiser."""

    def __init__(self, cell: str = "lstm", config: ModelConfig | None = None, on_epoch: EpochCallback | None = None):
        super().__init__(config)
        self.cell = cell
        self.name = cell
        self.on_epoch = on_epoch

    def _build(self) -> Ensemble:
        c = self.config
        members = [
            RecurrentNet(self.cell, self.features_.n_inputs, c.units, c.layers, c.dropout, c.horizon)
            for _ in range(c.ensemble)
        ]
        return Ensemble(members)

    def _fit_windows(self, data: WindowDataset) -> None:
        self.device_ = resolve_device(self.config.device)
        seed_everything(self.config.seed)
        self.network_ = self._build().to(self.device_)
        self.losses_ = []
        for i, member in enumerate(self.network_.members):
            if i > 0 and interrupt.requested():  # Ctrl-C: keep the members trained so far
                self.network_.members = self.network_.members[:i]
                self.config = replace(self.config, ensemble=i)
                break
            seed_everything(self.config.seed + i)
            keras_init_(member)  # each member's initial weights come from its own seed
            losses = train(member, data, self.config, self.device_, self.on_epoch, label=self.cell, member=i)
            self.losses_.append(losses)
        self.network_.eval()

    @torch.no_grad()
    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        self.network_.eval()
        return self.network_(x.to(self.device_)).double().cpu().numpy()

    def _write_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(weights, str(directory / "weights.safetensors"))

    def _restore(self, state: dict, directory: Path) -> None:
        super()._restore(state, directory)
        path = directory / "weights.safetensors"
        weights = read_weights(path)
        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build()
        expected = self.network_.state_dict()
        if set(weights) != set(expected):
            odd = sorted(set(weights) ^ set(expected))
            raise DataError(f"{path}: weights do not match the model in model.json (tensors {', '.join(odd[:3])})")
        for key in expected:  # in the model's own order, so the first mismatch named is the first layer's
            tensor = weights[key]
            if tensor.shape != expected[key].shape:
                raise DataError(
                    f"{path}: weights do not match the model in model.json ({key} has shape "
                    f"{tuple(tensor.shape)}, the config needs {tuple(expected[key].shape)})"
                )
            if not torch.isfinite(tensor).all():
                raise DataError(f"{path}: tensor {key} holds NaN or infinite values")
        self.network_.load_state_dict(weights, strict=True)
        self.network_.to(self.device_).eval()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file; a pickle (torch.save) is refused before any parsing."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the saved model is incomplete)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":
        raise DataError(f"{path}: a pickle (torch.save) file, not safetensors; stockrnn never unpickles")
    if len(data) < 8:
        raise DataError(f"{path}: truncated ({len(data)} bytes), not a safetensors file")
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable safetensors file, truncated or damaged ({reason})") from None


def make_forecaster(name: str, config: ModelConfig | None = None, on_epoch: EpochCallback | None = None) -> Forecaster:
    """A forecaster by model name: 'lstm', 'gru', 'ridge' or 'persistence'."""
    config = config or model_config(name)
    if name in ("lstm", "gru"):
        return NetworkForecaster(name, config, on_epoch)
    if name == "ridge":
        return RidgeForecaster(config)
    if name == "persistence":
        return Persistence(config)
    raise ConfigError(f"unknown model '{name}'")


def load(directory: str | Path) -> Forecaster:
    """Rebuild a saved model from `model.json` and load its weights strictly; never unpickles. A
    global model (`stockrnn fit --data FOLDER`) comes back as its GlobalForecaster."""
    directory = Path(directory)
    path = directory / "model.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (not a saved stockrnn model)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable model file, truncated or damaged ({exc})") from None
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"{path}: no valid format_version (not a saved stockrnn model)")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {version} was written by a newer stockrnn; this one reads up to "
            f"{FORMAT_VERSION} (upgrade stockrnn)"
        )
    if str(state.get("model", "")).startswith("global_"):  # one model for a whole panel
        from .global_models import load_global

        return load_global(directory)
    try:
        model = make_forecaster(state["model"], ModelConfig.from_dict(state["config"]))
        model._restore(state, directory)
        model.calibration_ = Calibration.from_dict(state.get("calibration"), model.config.horizon)
        model.fitted_ = dict(state["fitted"])
        for key in ("first", "last"):  # the training span, which `check_data` compares with
            if not isinstance(model.fitted_.get(key), str) or pd.isna(pd.Timestamp(model.fitted_[key])):
                raise ValueError(f"fitted.{key} is not a date")
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        reason = exc if isinstance(exc, ConfigError) else repr(exc)
        raise DataError(f"{path}: incomplete or invalid model file ({reason})") from None
    return model


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
