"""The training loop: shuffled mini-batches, the optimiser, a non-finite-loss guard, progress."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .errors import ConfigError, TrainingError
from .interrupt import StopToken, token
from .windows import WindowDataset

EpochCallback = Callable[["EpochInfo"], None]
# For a run of several models (evaluate, backtest, a panel run): each model's callback, by its name and config.
EpochCallbacks = Callable[[str, ModelConfig], "EpochCallback | None"]


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' is CUDA when present, else CPU; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here (use cpu or auto)")
    return torch.device(name)


@contextmanager
def own_rng(device: torch.device | None = None) -> Iterator[None]:
    """A block with torch's global random state to itself: what it seeds and draws (weight init and
    dropout masks, which have no generator argument) is undone after it, so a fit gives the same
    numbers for the same seed and leaves the caller's random state as it was. The windows' order
    has a torch.Generator of its own; NumPy's and Python's global generators are not used."""
    devices = list(range(torch.cuda.device_count())) if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def with_own_rng(fit: Callable) -> Callable:
    """A model's fitting method run in `own_rng` on the model's device: it may seed torch's global
    generator (`torch.manual_seed`) freely, the caller's random state is restored afterwards."""

    @functools.wraps(fit)
    def fit_with_own_rng(self, *args, **kwargs):
        with own_rng(resolve_device(self.config.device)):
            return fit(self, *args, **kwargs)

    return fit_with_own_rng


def make_optimizer(params, config: ModelConfig) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD; RMSprop and SGD with the Keras defaults the reference recipe used."""
    # foreach: one multi-tensor operation per step instead of a Python loop over the parameters.
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, foreach=True)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, alpha=0.9, eps=1e-7, foreach=True)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=False, foreach=True)


@dataclass(frozen=True)
class EpochInfo:
    """What the progress display is told after each epoch of each ensemble member."""

    member: int
    epoch: int
    loss: float
    val_loss: float | None
    last: bool  # the member's training ends after this epoch (all epochs done, early stop or a stop request)
    seconds: float = 0.0  # since this member's training began
    interrupted: bool = False  # a stop request (a first Ctrl-C) ends it, not the epochs or early stopping


def train(
    net: nn.Module,
    data: WindowDataset,
    config: ModelConfig,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    label: str = "network",
    member: int = 0,
    stop: StopToken | None = None,
) -> list[float]:
    """Train `net` on the windows of `data`; returns the training loss of each epoch.

    With `config.val_fraction > 0` the last windows in time are held out: the learning rate is
    halved when their loss stalls, training stops after `config.patience` epochs without
    improvement, and the weights of the best validation epoch are restored. Windows are
    reshuffled every epoch and the last, partial batch is kept (nothing is dropped).
    """
    n_val = int(round(len(data) * config.val_fraction))
    if config.val_fraction > 0 and (n_val < 1 or len(data) - n_val < 1):
        raise ConfigError(f"{len(data)} training windows are too few to hold out a validation tail")
    generator = torch.Generator().manual_seed(config.seed + member)
    items = torch.arange(len(data))
    fit, val = items[: len(data) - n_val], items[len(data) - n_val :]
    return train_windows(net, data, fit, val, config, device, generator, None, on_epoch, label, member, stop)


def train_windows(
    net: nn.Module,
    data: WindowDataset,
    fit: torch.Tensor,
    val: torch.Tensor,
    config: ModelConfig,
    device: torch.device,
    generator: torch.Generator,
    per_epoch: int | None = None,
    on_epoch: EpochCallback | None = None,
    label: str = "network",
    member: int = 0,
    stop: StopToken | None = None,
) -> list[float]:
    """The one training loop: each epoch, `per_epoch` windows of `fit` (all of them, by default)
    in a fresh random order from `generator`; early stopping, halving the learning rate and
    restoring the best weights on windows `val` (none: no early stopping). A single ticker's
    network runs full epochs over its windows; a panel's global network samples each epoch. A
    `stop` request (a first Ctrl-C) ends training after the current batch, keeping what was learned."""
    stop = token(stop)
    optimizer = make_optimizer(net.parameters(), config)
    scheduler = None
    if len(val):
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, config.patience // 3)
        )
    loss_fn = nn.MSELoss()
    per_epoch = len(fit) if per_epoch is None else min(per_epoch, len(fit))
    started = time.perf_counter()
    losses: list[float] = []
    best_loss, best_state, stale = math.inf, None, 0
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = fit[torch.randperm(len(fit), generator=generator)[:per_epoch]]
        total, seen = 0.0, 0
        for start in range(0, per_epoch, config.batch_size):
            items = order[start : start + config.batch_size]
            x, y = data.batch(items)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            if config.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimizer.step()
            total += loss.item() * len(items)
            seen += len(items)
            if stop.requested:  # first Ctrl-C: stop after this batch, keep what was learned
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
            val_loss = window_loss(net, data, val, device)
            scheduler.step(val_loss)
            if val_loss < best_loss:
                best_loss, stale = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        last = epoch == config.epochs or stale >= config.patience
        if on_epoch is not None:
            seconds, interrupted = time.perf_counter() - started, stop.requested
            on_epoch(EpochInfo(member, epoch, epoch_loss, val_loss, last or interrupted, seconds, interrupted))
        if last or stop.requested:  # read again: the callback may have asked to stop
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return losses


@torch.no_grad()
def window_loss(net: nn.Module, data: WindowDataset, items: torch.Tensor, device: torch.device, chunk: int = 4096):
    """Mean squared error of `net` over windows `items` of `data`, in eval mode (no dropout)."""
    net.eval()
    total = 0.0
    for start in range(0, len(items), chunk):
        x, y = data.batch(items[start : start + chunk])
        total += float(((net(x.to(device)) - y.to(device)) ** 2).mean(dim=1).sum())
    return total / len(items)


def evaluate_loss(net: nn.Module, data: WindowDataset, device: torch.device, chunk: int = 4096) -> float:
    """Mean squared error of `net` over every window of `data`, in eval mode (no dropout)."""
    return window_loss(net, data, torch.arange(len(data)), device, chunk)
