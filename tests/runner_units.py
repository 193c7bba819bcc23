"""Units of work for the runner tests. A module of its own, on the workers' import path, because
units travel to other processes by name (tests/test_*.py modules are not importable there)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import torch

from stockrnn.errors import DataError


def fit_tiny(shared: np.ndarray, steps: int = 15) -> list[str]:
    """Train a tiny LSTM from the global random state the runner seeded: weights from torch's
    generator, noise from numpy's. Returns the losses and the weight sum, exactly, as float hex."""
    net = torch.nn.LSTM(1, 8, batch_first=True)
    head = torch.nn.Linear(8, 1)
    x = torch.as_tensor(shared, dtype=torch.float32).reshape(-1, 10, 1)
    noise = torch.as_tensor(np.random.normal(0, 0.1, size=(x.shape[0], 1)), dtype=torch.float32)
    y = x[:, -1, :] + noise
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.01)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(net(x)[0][:, -1, :]), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item().hex())
    total = sum(p.detach().double().sum().item() for p in [*net.parameters(), *head.parameters()])
    return [*losses, total.hex()]


def kill_once(shared, marker: str) -> str:
    """Kill this worker process on the first attempt (a marker file remembers it), succeed on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return "second attempt"


def kill_always(shared, marker: str) -> str:
    """Kill this worker process on every attempt; counts the attempts in the marker file."""
    path = Path(marker)
    path.write_text(path.read_text() + "x" if path.exists() else "x")
    os.kill(os.getpid(), signal.SIGKILL)
    return "never"


def bad_data(shared, marker: str) -> None:
    """Bad input: reported at once, never retried (the marker counts the attempts)."""
    path = Path(marker)
    path.write_text(path.read_text() + "x" if path.exists() else "x")
    raise DataError("prices.csv: row 7: Close is negative (-3.0)")


def fails(shared) -> None:
    raise ValueError("always fails")


def node_and_fit(shared: np.ndarray) -> tuple[str, list[str]]:
    """Which Ray node ran this unit, and `fit_tiny`'s result."""
    import ray

    return ray.get_runtime_context().get_node_id(), fit_tiny(shared, steps=5)


def unpicklable(shared) -> object:
    """A result no process can send back (a lambda does not pickle by name)."""
    return lambda: "never sent"


def threads_inside(shared=None) -> tuple[int, list[int]]:
    """The torch threads and the BLAS threads (threadpoolctl) a unit computes with."""
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({info["num_threads"] for info in threadpool_info()})
