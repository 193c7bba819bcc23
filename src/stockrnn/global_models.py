"""Global models of a panel: ONE network (or one pooled ridge) fitted on every ticker's training
windows, which then forecasts any ticker, one it never saw included.

Why global: a single ticker has a few thousand noisy windows; 250 tickers have a million, and
what they share (how tomorrow's high relates to today's range, gap and volume, in units of each
stock's own volatility) is learnable from all of them. Units are made common per series
(panel_features.py): inputs standardised with each ticker's training statistics, the target
divided by a causal trailing volatility, floors and bounds so broken data stays harmless.

Windows never cross tickers (`WindowDataset.panel`). The validation tail, for early stopping,
the ridge penalty and the conformal intervals, is by date across the whole panel: the windows
whose targets fall in the latest `val_fraction` of the panel's training dates.

Default network settings (GLOBAL_DEFAULTS), from the panel probe (about 500 S&P 500 tickers):
1 layer of 64 units on a 20-day window reached median skill 0.120 against 0.115 for the pooled
ridge; batches of 512 with Adam at 2e-3 keep the fused stack busy (few Python steps per window);
an epoch is EPOCH_WINDOWS = 60,000 windows sampled afresh, since the probe converged within two
or three such passes, and patience 4 stops it soon after; one network, as an ensemble member
costs a full training run while a million windows already average out the seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import interrupt
from .config import NETWORKS, PRESETS, ModelConfig, model_config
from .data import Prices, as_prices
from .errors import ConfigError, DataError
from .files import atomic_dir
from .forecaster import FORMAT_VERSION, PREDICT_CHUNK, RIDGE_ALPHAS, _check_finite, fingerprint, read_weights, versions
from .intervals import Calibration, calibrate, interval_columns
from .models import Ensemble, RecurrentNet, keras_init_
from .panel_features import (
    INPUT_BOUND,
    MAX_LOG_RATIO,
    MIN_INPUT_SCALE,
    MIN_SCALE,
    PanelFeatures,
    SeriesStats,
    origin_scale,
    split_origins,
    stats_rows,
    validation_cutoff,
)
from .panel_training import EPOCH_WINDOWS, flat_windows, ridge_moments, ridge_solve, train_sampled, window_chunks
from .training import EpochCallback, resolve_device, seed_everything
from .windows import WindowDataset, position, train_origins

GLOBAL_DEFAULTS = dict(window=20, units=64, layers=1, batch_size=512, lr=2e-3, epochs=30, patience=4, ensemble=1)
CALIBRATION_FRACTION = 0.1  # the tail that calibrates intervals when val_fraction is 0 (then in-sample)
GLOBAL_MODELS = ("lstm", "gru", "ridge")


def global_config(name: str, preset: str | None = None, **overrides) -> ModelConfig:
    """A global model's config: ModelConfig's defaults, then GLOBAL_DEFAULTS, then the preset,
    then explicit (non-None) overrides."""
    model_config(name, preset)  # validates the name and the preset
    values = dict(GLOBAL_DEFAULTS)
    if preset is not None:
        values.update(PRESETS[preset].get("*", {}))
        values.update(PRESETS[preset].get(name, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return model_config(name, None, **values)


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

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or global_config(self.name)
        if self.config.features != "relative":
            raise ConfigError(f"a global {self.name} model needs relative features, not '{self.config.features}'")

    # -- what a subclass provides -------------------------------------------------------------
    def _fit_data(self, data: WindowDataset, fit: np.ndarray, val: np.ndarray, on_epoch: EpochCallback | None):
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
    ) -> GlobalForecaster:
        """Fit one model on the windows from `train_start` to `train_end` (inclusive) of every
        ticker; tickers too short or unusable are skipped (listed in `fitted_["skipped"]`)."""
        windows = self.windows(panel, train_start, train_end)
        frames, cutoff = windows.frames, windows.cutoff
        self._fit_data(windows.data, windows.fit, windows.val, on_epoch)
        self.train_end_ = max(f.index[-1] for f in frames.values())
        self.calibration_ = self._calibrate(frames, cutoff)
        digest = hashlib.sha256("".join(f"{t}:{fingerprint(f)};" for t, f in frames.items()).encode())
        self.fitted_ = {
            "tickers": len(frames),
            "skipped": windows.skipped,
            "first": min(f.index[0] for f in frames.values()).strftime("%Y-%m-%d"),
            "last": self.train_end_.strftime("%Y-%m-%d"),
            "validation_start": None if cutoff is None else cutoff.strftime("%Y-%m-%d"),
            "windows": len(windows.fit),
            "validation_windows": len(windows.val),
            "fingerprint": digest.hexdigest()[:16],
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
        """{ticker: training rows} of the usable tickers, and [{ticker, reason}] of the others."""
        need = self.config.window + self.config.horizon
        frames, skipped, names = {}, [], None
        for ticker, prices in panel.items():
            try:
                prices = as_prices(prices)
                prices.column(self.config.target)
                frame = prices.frame.loc[train_start:train_end]
                if len(frame) < need:
                    raise ConfigError(f"{len(frame)} training rows, one window needs {need}")
                have = self.features_.raw(frame.iloc[:1])[1]
                names = names or have
                if have != names:
                    raise ConfigError(f"inputs {have} differ from the panel's {names}")
            except (ConfigError, DataError) as exc:
                skipped.append({"ticker": str(ticker), "reason": str(exc)})
                continue
            frames[str(ticker)] = frame
        if not frames:
            reasons = "; ".join(f"{s['ticker']}: {s['reason']}" for s in skipped[:3])
            raise ConfigError(f"no ticker of the panel can be trained on ({reasons})")
        self.names_ = names
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
    def _stats_for(self, prices: Prices, first_origin: int) -> SeriesStats:
        """A ticker seen in training: its training statistics; any other: see panel_features."""
        if prices.name in self.series_:
            return self.series_[prices.name]
        rows = stats_rows(prices.frame, first_origin, self.train_end_)
        raw, names = self.features_.raw(rows)
        if names != self.names_:
            raise ConfigError(f"{prices.source}: the data has inputs {names}, the model was fitted on {self.names_}")
        return SeriesStats.fit(raw)

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

    def predict(self, prices: Prices | pd.DataFrame, horizon: int = 1) -> pd.DataFrame:
        """Forecasts for the next `horizon` weekdays after the last row of `prices`."""
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


class GlobalNetwork(GlobalForecaster):
    """One LSTM or GRU (or an ensemble of them) for every ticker, trained on sampled windows."""

    def __init__(self, cell: str, config: ModelConfig | None = None, epoch_windows: int = EPOCH_WINDOWS) -> None:
        if cell not in NETWORKS:
            raise ConfigError(f"unknown cell '{cell}' (choose from {', '.join(NETWORKS)})")
        self.cell = self.name = cell
        self.epoch_windows = epoch_windows
        super().__init__(config)

    def _build(self) -> Ensemble:
        c = self.config
        return Ensemble(
            [
                RecurrentNet(self.cell, len(self.names_), c.units, c.layers, c.dropout, c.horizon)
                for _ in range(c.ensemble)
            ]
        )

    def _fit_data(self, data: WindowDataset, fit: np.ndarray, val: np.ndarray, on_epoch: EpochCallback | None):
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
            losses = train_sampled(
                member,
                data,
                fit,
                val,
                self.config,
                self.device_,
                self.epoch_windows,
                on_epoch,
                f"global {self.cell}",
                i,
            )
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
        path = directory / "weights.safetensors"
        weights = read_weights(path)
        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build()
        expected = self.network_.state_dict()
        if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
            raise DataError(f"{path}: weights do not match the model in model.json")
        if not all(torch.isfinite(t).all() for t in weights.values()):
            raise DataError(f"{path}: a tensor holds NaN or infinite values")
        self.network_.load_state_dict(weights, strict=True)
        self.network_.to(self.device_).eval()


class GlobalRidge(GlobalForecaster):
    """One ridge regression on the pooled windows of every ticker (the bar a global network must
    clear). Solved from accumulated normal equations, so a million windows are never copied
    into one float64 matrix; the penalty is chosen on the validation tail, the fit excludes it."""

    name = "ridge"

    def _fit_data(self, data: WindowDataset, fit: np.ndarray, val: np.ndarray, on_epoch: EpochCallback | None):
        moments = ridge_moments(data, fit)
        best = (np.inf, 1.0)
        if len(val) >= 5:
            for alpha in RIDGE_ALPHAS:
                coef, intercept = ridge_solve(moments, alpha)
                error = sum(
                    float(((flat_windows(x) @ coef.T + intercept - y.double().numpy()) ** 2).sum())
                    for x, y in window_chunks(data, val)
                )
                best = min(best, (error / (len(val) * self.config.horizon), alpha))
        self.alpha_ = best[1]
        self.coef_, self.intercept_ = ridge_solve(moments, self.alpha_)

    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        return flat_windows(x) @ self.coef_.T + self.intercept_

    def _state(self) -> dict:
        return {"ridge": {"alpha": self.alpha_, "coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}}

    def _restore(self, state: dict, directory: Path) -> None:
        self.alpha_ = float(state["ridge"]["alpha"])
        self.coef_ = np.asarray(state["ridge"]["coef"], dtype=float)
        self.intercept_ = np.asarray(state["ridge"]["intercept"], dtype=float)
        want = (self.config.horizon, self.config.window * len(self.names_))
        if self.coef_.shape != want or self.intercept_.shape != want[:1]:
            raise DataError(f"{directory / 'model.json'}: ridge coefficients of shape {self.coef_.shape}, need {want}")
        if not (np.isfinite(self.coef_).all() and np.isfinite(self.intercept_).all()):
            raise DataError(f"{directory / 'model.json'}: ridge coefficients are not finite")


def make_global(name: str, config: ModelConfig | None = None) -> GlobalForecaster:
    """A global model by name: 'lstm', 'gru' or 'ridge'."""
    if name in NETWORKS:
        return GlobalNetwork(name, config or global_config(name))
    if name == "ridge":
        return GlobalRidge(config or global_config(name))
    raise ConfigError(f"unknown global model '{name}' (choose from {', '.join(GLOBAL_MODELS)})")


def load_global(directory: str | Path) -> GlobalForecaster:
    """Rebuild a saved global model from model.json (and its weights); never unpickles."""
    directory = Path(directory)
    path = directory / "model.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (not a saved stockrnn model)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable model file, truncated or damaged ({exc})") from None
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise DataError(f"{path}: no format_version this stockrnn reads (1..{FORMAT_VERSION})")
    kind = str(state.get("model", ""))
    if not kind.startswith("global_"):
        raise DataError(f"{path}: model '{kind}' is not a global model")
    try:
        model = make_global(kind.removeprefix("global_"), ModelConfig.from_dict(state["config"]))
        model.features_ = PanelFeatures(model.config.target)
        model.names_ = [str(n) for n in state["panel"]["inputs"]]
        model.train_end_ = pd.Timestamp(state["panel"]["train_end"])
        model.series_ = {str(t): SeriesStats.from_dict(s, len(model.names_)) for t, s in state["series"].items()}
        model._restore(state, directory)
        model.calibration_ = Calibration.from_dict(state.get("calibration"), model.config.horizon)
        model.fitted_ = dict(state["fitted"])
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        reason = exc if isinstance(exc, ConfigError) else repr(exc)
        raise DataError(f"{path}: incomplete or invalid model file ({reason})") from None
    return model
