"""Training a global model on a panel's windows: sampled epochs for the networks, normal
equations for the pooled ridge. Kept apart from global_models.py, which holds the estimators.

Why sampled epochs: a panel holds millions of windows and neighbouring windows of one ticker
overlap almost entirely, so a full pass teaches little more than a random 60,000 of them; an
epoch of fresh samples lets early stopping on the validation tail look in often.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import ModelConfig
from .forecaster import PREDICT_CHUNK
from .interrupt import StopToken
from .training import EpochCallback, train_windows
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
    stop: StopToken | None = None,
) -> list[float]:
    """Train `net` on windows `fit` of `data`, `epoch_windows` of them drawn afresh each epoch;
    early stopping, halving the learning rate and restoring the best weights on windows `val`
    (a fixed sample of at most VAL_WINDOWS), as training.train does on a positional tail."""
    generator = torch.Generator().manual_seed(config.seed + member)
    fit_items = torch.as_tensor(fit, dtype=torch.long)
    val_items = torch.as_tensor(val, dtype=torch.long)
    if len(val_items) > VAL_WINDOWS:
        val_items = val_items[torch.randperm(len(val_items), generator=generator)[:VAL_WINDOWS].sort().values]
    return train_windows(
        net, data, fit_items, val_items, config, device, generator, epoch_windows, on_epoch, label, member, stop
    )


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
