"""Variant `refit` of bench/panel.py (validation only): the global models refitted on every
training window, the validation tail included, after that tail has chosen their settings.

Why: the per-ticker ridge (`ridge_local`) chooses its penalty on its last 20% of windows and is then
refitted on all of them, so it has seen the latest one to two years before the scored span; the
global models are fitted without the panel's validation tail (the latest 10% of training dates),
so they have not. This variant gives the global models the same treatment: the pooled ridge keeps
its chosen penalty and is solved again on every window; a network is trained as usual (early
stopping on the tail) to learn its best number of epochs and the learning rate of each of them,
then trained afresh, from the same seed, for that many epochs on every window (each epoch still
samples EPOCH_WINDOWS of them), with the learning rates replayed. Its conformal intervals are then
in-sample (this variant is scored on RMSE only).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from stockrnn.global_models import GlobalNetwork, GlobalRidge, make_global
from stockrnn.models import keras_init_
from stockrnn.panel_training import ridge_moments, ridge_solve
from stockrnn.training import make_optimizer, own_rng, resolve_device


def learning_rates(val_losses: list[float], config) -> list[float]:
    """The learning rate of each epoch in a run whose validation losses were `val_losses`: the
    library's schedule (halved on a plateau, ReduceLROnPlateau) replayed on a dummy optimiser."""
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(dummy, factor=0.5, patience=max(1, config.patience // 3))
    rates = []
    for loss in val_losses:
        rates.append(dummy.param_groups[0]["lr"])
        schedule.step(loss)
    return rates


class RefitNetwork(GlobalNetwork):
    """A global network trained twice: with early stopping on the tail (to learn how long and
    at which learning rates), then afresh on every window for the best epoch's count."""

    def _fit_data(self, data, fit, val, on_epoch, stop, runner=None):
        if self.config.ensemble != 1:
            raise SystemExit("variant refit: one network per model (ensemble 1)")
        seen: list[float] = []
        super()._fit_data(data, fit, val, lambda info: seen.append(info.val_loss), stop)
        best = int(np.argmin(seen)) + 1
        self.first_epochs_ = len(seen)
        rates = learning_rates(seen[:best], self.config)
        with own_rng(self.device_):
            torch.manual_seed(self.config.seed)
            self.network_ = self._build().to(self.device_)
            member = self.network_.members[0]
            keras_init_(member)
            self.losses_ = [train_fixed(member, data, np.sort(np.concatenate([fit, val])), rates, self)]
        self.network_.eval()


def train_fixed(net: nn.Module, data, items: np.ndarray, rates: list[float], model: GlobalNetwork) -> list[float]:
    """One epoch per rate in `rates`, each on `model.epoch_windows` windows of `items` drawn
    afresh (the library loop's sampling and optimiser, with no validation)."""
    config = model.config
    optimizer = make_optimizer(net.parameters(), config)
    generator = torch.Generator().manual_seed(config.seed)
    pool = torch.as_tensor(items, dtype=torch.long)
    per_epoch = min(model.epoch_windows, len(pool))
    device = resolve_device(config.device)
    losses = []
    for rate in rates:
        for group in optimizer.param_groups:
            group["lr"] = rate
        net.train()
        order = pool[torch.randperm(len(pool), generator=generator)[:per_epoch]]
        total = 0.0
        for start in range(0, per_epoch, config.batch_size):
            x, y = data.batch(order[start : start + config.batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(net(x.to(device)), y.to(device))
            loss.backward()
            if config.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimizer.step()
            total += loss.item() * len(x)
        losses.append(total / per_epoch)
    return losses


class RefitRidge(GlobalRidge):
    """The pooled ridge with the penalty chosen on the tail, then solved on every window."""

    def _fit_data(self, data, fit, val, on_epoch, stop, runner=None):
        super()._fit_data(data, fit, val, on_epoch, stop)
        self.coef_, self.intercept_ = ridge_solve(ridge_moments(data, np.concatenate([fit, val])), self.alpha_)


def refit_model(name: str, config):
    """The global model `name` of variant `refit`."""
    if name == "ridge":
        return RefitRidge(config)
    if name in ("lstm", "gru"):
        return RefitNetwork(name, config)
    return make_global(name, config)
