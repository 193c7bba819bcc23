"""Training a global model on a panel's windows: sampled epochs for the networks, normal
equations for the pooled ridge. Kept apart from global_models.py, which holds the estimators.

Why sampled epochs: a panel holds millions of windows and neighbouring windows of one ticker
overlap almost entirely, so a full pass teaches little more than a random 60,000 of them; an
epoch of fresh samples lets early stopping on the validation tail look in often.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from . import interrupt
from .config import ModelConfig
from .errors import TrainingError
from .forecaster import PREDICT_CHUNK
from .training import EpochCallback, EpochInfo, make_optimizer
from .windows import WindowDataset

EPOCH_WINDOWS = 60_000  # training windows sampled (without replacement) per epoch
VAL_WINDOWS = 20_000  # validation windows scored per epoch for early stopping (a fixed sample)


def train_sampled(
    net: nn.Module,
    data: WindowDataset,
    fit: np.ndarray,
    val: np.ndarray,
    config: ModelConfig,
    device: torch.device,
    epoch_windows: int = EPOCH_WINDOWS,
    on_epoch: EpochCallback | None = None,
    label: str = "network",
    member: int = 0,
) -> list[float]:
    """Train `net` on windows `fit` of `data`, `epoch_windows` of them drawn afresh each epoch;
    early stopping, halving the learning rate and restoring the best weights on windows `val`
    (a fixed sample of at most VAL_WINDOWS), as training.train does on a positional tail."""
    generator = torch.Generator().manual_seed(config.seed + member)
    fit_items = torch.as_tensor(fit, dtype=torch.long)
    val_items = torch.as_tensor(val, dtype=torch.long)
    if len(val_items) > VAL_WINDOWS:
        val_items = val_items[torch.randperm(len(val_items), generator=generator)[:VAL_WINDOWS].sort().values]
    optimizer = make_optimizer(net.parameters(), config)
    scheduler = None
    if len(val_items):
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, config.patience // 3)
        )
    loss_fn = nn.MSELoss()
    per_epoch = min(epoch_windows, len(fit_items))
    losses: list[float] = []
    best_loss, best_state, stale = math.inf, None, 0
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = fit_items[torch.randperm(len(fit_items), generator=generator)[:per_epoch]]
        total, seen = 0.0, 0
        for start in range(0, per_epoch, config.batch_size):
            x, y = data.batch(order[start : start + config.batch_size])
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            if config.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
            if interrupt.requested():
                break
        epoch_loss = total / seen
        if not math.isfinite(epoch_loss):
            raise TrainingError(
                f"training {label} failed at epoch {epoch}: the loss became {epoch_loss} "
                f"(check the data for extreme values, or lower --lr from {config.lr:g})"
            )
        losses.append(epoch_loss)
        val_loss = None
        if scheduler is not None:
            val_loss = window_loss(net, data, val_items, device)
            scheduler.step(val_loss)
            if val_loss < best_loss:
                best_loss, stale = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        last = epoch == config.epochs or stale >= config.patience
        if on_epoch is not None:
            seconds = time.perf_counter() - started  # the progress line's time of this member
            on_epoch(EpochInfo(member, epoch, epoch_loss, val_loss, last or interrupt.requested(), seconds))
        if last or interrupt.requested():
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return losses


@torch.no_grad()
def window_loss(net: nn.Module, data: WindowDataset, items: torch.Tensor, device: torch.device) -> float:
    """Mean squared error of `net` over windows `items` of `data`, in eval mode."""
    net.eval()
    total = 0.0
    for start in range(0, len(items), PREDICT_CHUNK):
        x, y = data.batch(items[start : start + PREDICT_CHUNK])
        total += float(((net(x.to(device)) - y.to(device)) ** 2).mean(dim=1).sum())
    return total / len(items)


def flat_windows(x: torch.Tensor) -> np.ndarray:
    return x.flatten(1).double().numpy()


def window_chunks(data: WindowDataset, items: np.ndarray):
    for start in range(0, len(items), PREDICT_CHUNK):
        yield data.batch(torch.as_tensor(items[start : start + PREDICT_CHUNK], dtype=torch.long))


def ridge_moments(data: WindowDataset, items: np.ndarray) -> tuple:
    """n, sums and cross-products of the flattened windows and targets, float64, chunk by chunk."""
    n, sx, sy, xx, xy = 0, 0.0, 0.0, 0.0, 0.0
    for x, y in window_chunks(data, items):
        x, y = flat_windows(x), y.double().numpy()
        n, sx, sy = n + len(x), sx + x.sum(axis=0), sy + y.sum(axis=0)
        xx, xy = xx + x.T @ x, xy + x.T @ y
    return n, sx, sy, xx, xy


def ridge_solve(moments: tuple, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised intercept (scikit-learn's Ridge): coef (horizon, p), intercept."""
    n, sx, sy, xx, xy = moments
    mx, my = sx / n, sy / n
    centred_xx = xx - n * np.outer(mx, mx)
    centred_xy = xy - n * np.outer(mx, my)
    w = np.linalg.solve(centred_xx + alpha * np.eye(len(mx)), centred_xy)  # (p, horizon)
    return w.T, my - mx @ w
