"""The training loop: shuffled mini-batches, the optimiser, a non-finite-loss guard, progress."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from . import interrupt
from .config import ModelConfig
from .errors import ConfigError, TrainingError
from .windows import WindowDataset

EpochCallback = Callable[[int, float], None]


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' is CUDA when present, else CPU; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here (use cpu or auto)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and torch, so a rerun gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, config: ModelConfig) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD; RMSprop and SGD with the Keras defaults the reference recipe used."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, alpha=0.9, eps=1e-7)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=False)


def train(
    net: nn.Module,
    data: WindowDataset,
    config: ModelConfig,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    label: str = "network",
) -> list[float]:
    """Train `net` on every window of `data` for `config.epochs` epochs; returns the epoch losses.

    Windows are reshuffled every epoch and the last, partial batch is kept (nothing is dropped).
    """
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(net.parameters(), config)
    loss_fn = nn.MSELoss()
    n = len(data)
    losses: list[float] = []
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            items = order[start : start + config.batch_size]
            x, y = data.batch(items)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(items)
            if interrupt.requested():  # first Ctrl-C: stop after this batch, keep what was learned
                break
        epoch_loss = total / n
        if not math.isfinite(epoch_loss):
            raise TrainingError(
                f"training {label} failed at epoch {epoch}: the loss became {epoch_loss} "
                f"(check the data for extreme values, or lower --lr from {config.lr:g})"
            )
        losses.append(epoch_loss)
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss)
        if interrupt.requested():
            break
    net.eval()
    return losses
