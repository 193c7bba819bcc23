"""Variant `localheads` of bench/panel.py: the global network's body, with one small linear head
per ticker on top of it.

Why: ridge_local wins on the tickers whose own history says something the pooled model averages
away. A per-ticker ridge (sklearn's, with its intercept) on the global network's last hidden state,
fitted to the residual of the global forecast in model units, can keep that, and shrinks to the
global forecast when it has nothing to say. Per ticker the penalty is chosen from ALPHAS, or no
head at all, on that ticker's windows in the panel's date-based validation tail (the same dates
the network stopped on), then the head is refitted on all of that ticker's training windows.
Tickers never seen in training get the global forecast. Only the networks change; the pooled ridge
is the default one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from stockrnn.forecaster import PREDICT_CHUNK
from stockrnn.global_models import GlobalNetwork, make_global
from stockrnn.panel_features import SeriesStats, split_origins
from stockrnn.windows import WindowDataset, train_origins

ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 1e4)


class LocalHeadsNetwork(GlobalNetwork):
    """A global LSTM/GRU whose forecast for a training ticker adds that ticker's head."""

    def _hidden_and_output(self, frame: pd.DataFrame, origins: np.ndarray, stats: SeriesStats):
        """The first member's last hidden state (the input of its dense head) and its output, in
        model units, for the windows ending at `origins`."""
        data = WindowDataset(self.features_.inputs(frame, stats), None, origins, self.config.window)
        member = self.network_.members[0]
        hidden, output = [], []
        hook = member.head.register_forward_hook(lambda module, args, out: hidden.append(args[0].detach()))
        try:
            with torch.no_grad():
                for i in range(0, len(data), PREDICT_CHUNK):
                    x = data.batch(torch.arange(i, min(i + PREDICT_CHUNK, len(data))))[0]
                    output.append(member(x.to(self.device_)).cpu())
        finally:
            hook.remove()
        return torch.cat(hidden).double().cpu().numpy(), torch.cat(output).double().numpy()

    def fit_panel(self, panel, train_start=None, train_end=None, on_epoch=None, stop=None, runner=None):
        super().fit_panel(panel, train_start, train_end, on_epoch, stop, runner)
        c = self.config
        frames, _ = self._training_frames(panel, train_start, train_end)
        cutoff = pd.Timestamp(self.fitted_["validation_start"])
        self.heads_: dict[str, Ridge] = {}
        self.chosen_: dict[str, float | None] = {}
        for ticker, frame in frames.items():
            origins = train_origins(0, len(frame), c.window, c.horizon)
            fit, val = split_origins(frame.index, origins, c.horizon, cutoff)
            target = self.features_.targets(frame, origins, c.horizon)[:, 0].astype(float)
            hidden, output = self._hidden_and_output(frame, origins, self.series_[ticker])
            residual = target - output[:, 0]
            best = (float(np.mean(residual[val] ** 2)), None)  # no head: the global forecast
            for alpha in ALPHAS if fit.any() and val.any() else ():
                error = residual[val] - Ridge(alpha=alpha).fit(hidden[fit], residual[fit]).predict(hidden[val])
                best = min(best, (float(np.mean(error**2)), alpha), key=lambda b: b[0])
            self.chosen_[ticker] = best[1]
            if best[1] is not None:
                self.heads_[ticker] = Ridge(alpha=best[1]).fit(hidden, residual)
        return self

    def _forecast(self, frame: pd.DataFrame, origins: np.ndarray, stats: SeriesStats) -> np.ndarray:
        ticker = next((t for t, s in self.series_.items() if s is stats), None)
        head = getattr(self, "heads_", {}).get(ticker)
        if head is None:
            return super()._forecast(frame, origins, stats)
        hidden, output = self._hidden_and_output(frame, origins, stats)
        return self.features_.to_price(output + head.predict(hidden)[:, None], frame, origins)


def localheads_model(name: str, config):
    """Variant `localheads`: the global networks with per-ticker heads; the pooled ridge as is."""
    return LocalHeadsNetwork(name, config) if name != "ridge" else make_global(name, config)
