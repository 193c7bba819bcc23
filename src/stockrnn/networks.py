"""The LSTM and GRU forecasters: an ensemble of recurrent networks trained on shuffled windows,
saved as safetensors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .forecaster import WindowForecaster
from .interrupt import StopToken, token
from .models import Ensemble, RecurrentNet, keras_init_
from .saving import load_weights, write_weights
from .training import EpochCallback, resolve_device, train, with_own_rng
from .windows import WindowDataset


class NetworkWeights:
    """What a fitted `network_` (an Ensemble built by `_build`) does for a forecaster, per ticker or
    global: forecast windows, write its weights, and load them back."""

    @torch.no_grad()
    def _predict_windows(self, x: torch.Tensor) -> np.ndarray:
        self.network_.eval()
        return self.network_(x.to(self.device_)).double().cpu().numpy()

    def _write_weights(self, directory: Path) -> None:
        write_weights(self.network_, directory)

    @with_own_rng  # the default init of the weights it loads over draws from torch's generator
    def _load_network(self, directory: Path) -> None:
        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build()
        load_weights(self.network_, directory)
        self.network_.to(self.device_).eval()


class NetworkForecaster(NetworkWeights, WindowForecaster):
    """An LSTM or GRU network (`cell`), trained on shuffled windows with the configured optimiser."""

    def __init__(self, cell: str = "lstm", config: ModelConfig | None = None):
        super().__init__(config)
        self.cell = cell
        self.name = cell

    def _tail_held_out(self, n_tail: int) -> bool:
        return n_tail > 0  # the validation tail is held out from the gradient steps

    def _build(self) -> Ensemble:
        c = self.config
        members = [
            RecurrentNet(self.cell, self.features_.n_inputs, c.units, c.layers, c.dropout, c.horizon)
            for _ in range(c.ensemble)
        ]
        return Ensemble(members)

    @with_own_rng
    def _fit_windows(
        self, data: WindowDataset, on_epoch: EpochCallback | None = None, stop: StopToken | None = None
    ) -> None:
        stop = token(stop)
        self.device_ = resolve_device(self.config.device)
        torch.manual_seed(self.config.seed)
        self.network_ = self._build().to(self.device_)
        self.losses_ = []
        for i, member in enumerate(self.network_.members):
            if i > 0 and stop.requested:  # Ctrl-C: keep the members trained so far
                self.network_.members = self.network_.members[:i]
                self.config = replace(self.config, ensemble=i)
                break
            torch.manual_seed(self.config.seed + i)
            keras_init_(member)  # each member's initial weights come from its own seed
            losses = train(member, data, self.config, self.device_, on_epoch, self.cell, i, stop)
            self.losses_.append(losses)
        self.network_.eval()

    def _restore(self, state: dict, directory: Path) -> None:
        super()._restore(state, directory)
        self._load_network(directory)
