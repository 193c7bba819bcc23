"""The baselines every report sets the networks beside: persistence (tomorrow = today) and a
ridge regression on the same window of inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from .errors import DataError
from .forecaster import Forecaster, WindowForecaster
from .windows import WindowDataset

RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)


class Persistence(Forecaster):
    """Tomorrow = today: every step is the last known value of the target."""

    name = "persistence"

    @property
    def history(self) -> int:
        return 1

    def _fit(self, frame: pd.DataFrame, on_epoch=None, stop=None) -> None:
        pass

    def _tail_held_out(self, n_tail: int) -> bool:
        return True  # persistence learns nothing

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        last = frame[self.config.target].to_numpy(dtype=float)[origins]
        return np.repeat(last[:, None], self.config.horizon, axis=1)


class RidgeForecaster(WindowForecaster):
    """Linear regression on the same window as the networks; the penalty is chosen on the last
    20% of the training windows (a validation tail), then the model is refitted on all of them."""

    name = "ridge"

    def _fit_windows(self, data: WindowDataset, on_epoch=None, stop=None) -> None:
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
