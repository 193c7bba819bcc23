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
or three such passes, and patience 4 stops it soon after; one network: on our 250-file S&P 500
set (train through 2017, score 2018) an ensemble of three lifted the share of tickers on which the
LSTM beats the pooled ridge (77% against 49-72% for single seeds) but not the median skill
(0.230 against 0.228-0.230), at three times the training time (bench/results/panel.md). These
defaults stop after about 5-14 epochs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import NETWORKS, PRESETS, ModelConfig, model_config
from .errors import ConfigError, DataError, TrainingError
from .forecaster import RIDGE_ALPHAS
from .interrupt import StopToken, token
from .intervals import Calibration
from .models import Ensemble, RecurrentNet, keras_init_
from .networks import NetworkWeights
from .panel_features import PanelFeatures, SeriesStats
from .panel_forecaster import GlobalForecaster, PanelWindows, check_global_target
from .panel_training import EPOCH_WINDOWS, flat_windows, ridge_moments, ridge_solve, train_sampled, window_chunks
from .runners import Runner, Unit
from .saving import read_model_json
from .training import EpochCallback, resolve_device, with_own_rng
from .windows import WindowDataset

GLOBAL_DEFAULTS = dict(window=20, units=64, layers=1, batch_size=512, lr=2e-3, epochs=30, patience=4, ensemble=1)
GLOBAL_MODELS = ("lstm", "gru", "ridge")
__all__ = [
    "GLOBAL_DEFAULTS",
    "GlobalForecaster",
    "GlobalNetwork",
    "GlobalRidge",
    "PanelWindows",
    "global_config",
    "load_global",
    "make_global",
]


def global_config(name: str, preset: str | None = None, **overrides) -> ModelConfig:
    """A global model's config: ModelConfig's defaults, then GLOBAL_DEFAULTS, then the preset,
    then explicit (non-None) overrides."""
    model_config(name, preset)  # validates the name and the preset
    values = dict(GLOBAL_DEFAULTS)
    if preset is not None:
        values.update(PRESETS[preset].get("*", {}))
        values.update(PRESETS[preset].get(name, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = model_config(name, None, **values)
    check_global_target(name, config.target)
    return config


class GlobalNetwork(NetworkWeights, GlobalForecaster):
    """One LSTM or GRU (or an ensemble of them) for every ticker, trained on sampled windows."""

    def __init__(self, cell: str, config: ModelConfig | None = None, epoch_windows: int = EPOCH_WINDOWS) -> None:
        if cell not in NETWORKS:
            raise ConfigError(f"unknown cell '{cell}' (choose from {', '.join(NETWORKS)})")
        self.cell = self.name = cell
        self.epoch_windows = epoch_windows
        super().__init__(config or global_config(cell))

    def _build(self) -> Ensemble:
        c = self.config
        return Ensemble(
            [
                RecurrentNet(self.cell, len(self.names_), c.units, c.layers, c.dropout, c.horizon)
                for _ in range(c.ensemble)
            ]
        )

    @with_own_rng
    def _fit_data(
        self,
        data: WindowDataset,
        fit: np.ndarray,
        val: np.ndarray,
        on_epoch: EpochCallback | None,
        stop: StopToken | None,
        runner: Runner | None = None,
    ):
        stop = token(stop)
        self.device_ = resolve_device(self.config.device)
        if runner is not None and runner.jobs > 1 and self.config.ensemble > 1:
            self.network_, self.losses_ = self._fit_members(data, fit, val, runner, stop)
            self.network_.to(self.device_).eval()
            return
        torch.manual_seed(self.config.seed)
        self.network_ = self._build().to(self.device_)
        self.losses_ = []
        for i, member in enumerate(self.network_.members):
            if i > 0 and stop.requested:  # Ctrl-C: keep the members trained so far
                self.network_.members = self.network_.members[:i]
                self.config = replace(self.config, ensemble=i)
                break
            args = (data, fit, val, self.config, self.device_, i, self.epoch_windows)
            self.losses_.append(train_member(member, *args, on_epoch, stop))
        self.network_.eval()

    def _fit_members(self, data: WindowDataset, fit: np.ndarray, val: np.ndarray, runner: Runner, stop: StopToken):
        """Each ensemble member as a unit of `runner` (the cores train members side by side). A
        member's numbers are those of the sequential loop: it is seeded from the run seed and its
        index alone, and runs with the runner's thread count."""
        spec = (self.cell, self.config.to_dict(), len(self.names_))
        units = [Unit(f"global {self.cell} member {i}", _member_unit, (*spec, i)) for i in range(self.config.ensemble)]
        outcomes = runner.run(units, shared=(data, fit, val, self.epoch_windows), stop=stop)
        done = [outcomes[u.key] for u in units if u.key in outcomes and outcomes[u.key].ok]
        failed = [outcomes[u.key] for u in units if u.key in outcomes and not outcomes[u.key].ok]
        if failed:
            raise TrainingError(f"{failed[0].key}: {failed[0].error}")
        if not done:
            raise TrainingError(f"global {self.cell}: no ensemble member finished (interrupted)")
        if len(done) < self.config.ensemble:  # a first Ctrl-C: keep the members trained so far
            self.config = replace(self.config, ensemble=len(done))
        network = self._build()
        for member, outcome in zip(network.members, done, strict=True):
            member.load_state_dict(outcome.value[0])
        return network, [outcome.value[1] for outcome in done]

    def _restore(self, state: dict, directory: Path) -> None:
        self._load_network(directory)


def train_member(
    member: RecurrentNet,
    data: WindowDataset,
    fit: np.ndarray,
    val: np.ndarray,
    config: ModelConfig,
    device: torch.device,
    index: int,
    epoch_windows: int,
    on_epoch: EpochCallback | None = None,
    stop: StopToken | None = None,
) -> list[float]:
    """Train ensemble member `index` from its own seed (config.seed + index): the same numbers
    in the sequential loop and in a runner's worker."""
    torch.manual_seed(config.seed + index)
    keras_init_(member)  # each member's initial weights come from its own seed
    label = f"global {member.cell}"
    return train_sampled(member, data, fit, val, config, device, epoch_windows, on_epoch, label, index, stop)


def _member_unit(shared: tuple, cell: str, config: dict, n_inputs: int, index: int) -> tuple[dict, list[float]]:
    """A runner unit: (state_dict, losses) of one member trained on the shared windows (the
    runner restores the worker's random state after it)."""
    data, fit, val, epoch_windows = shared
    c = ModelConfig.from_dict(config)
    member = RecurrentNet(cell, n_inputs, c.units, c.layers, c.dropout, c.horizon)
    losses = train_member(member, data, fit, val, c, resolve_device(c.device), index, epoch_windows)
    return {k: v.detach().cpu() for k, v in member.state_dict().items()}, losses


class GlobalRidge(GlobalForecaster):
    """One ridge regression on the pooled windows of every ticker (the bar a global network must
    clear). Solved from accumulated normal equations, so a million windows are never copied
    into one float64 matrix; the penalty is chosen on the validation tail, the fit excludes it."""

    name = "ridge"

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__(config or global_config("ridge"))

    def _fit_data(
        self,
        data: WindowDataset,
        fit: np.ndarray,
        val: np.ndarray,
        on_epoch: EpochCallback | None,
        stop: StopToken | None,
        runner: Runner | None = None,
    ):
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
    path, state = read_model_json(directory)
    kind = str(state.get("model", ""))
    if not kind.startswith("global_"):
        raise DataError(f"{path}: model '{kind}' is not a global model")
    try:
        model = make_global(kind.removeprefix("global_"), ModelConfig.from_dict(state["config"]))
        model.features_ = PanelFeatures(model.config.target)
        model.names_ = [str(n) for n in state["panel"]["inputs"]]
        model.train_end_ = pd.Timestamp(state["panel"]["train_end"])
        if pd.isna(model.train_end_):  # None reads as NaT, and every check against it would pass
            raise ValueError("panel.train_end is not a date")
        model.series_ = {str(t): SeriesStats.from_dict(s, len(model.names_)) for t, s in state["series"].items()}
        model._restore(state, directory)
        model.calibration_ = Calibration.from_dict(state.get("calibration"), model.config.horizon)
        model.fitted_ = dict(state["fitted"])
        for ticker, (first, last, digest) in model.fitted_.get("training_rows", {}).items():
            if (
                not all(isinstance(v, str) for v in (first, last, digest))
                or pd.isna(pd.Timestamp(first))
                or pd.isna(pd.Timestamp(last))
            ):
                raise ValueError(f"fitted.training_rows of {ticker} is not [first, last, fingerprint]")
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        reason = exc if isinstance(exc, ConfigError) else repr(exc)
        raise DataError(f"{path}: incomplete or invalid model file ({reason})") from None
    return model
