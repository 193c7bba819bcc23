"""The processes bench/speed.py starts, one per measurement, so that peak memory is each one's
own: training the reference configuration on IBM, and an epoch over a synthetic panel."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
IBM = ROOT.parent / "shared" / "data" / "djia" / "IBM_2006-01-01_to_2018-01-01.csv"
TEST_START, TRAIN_END = "2017-01-01", "2016-12-31"


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child started by vfork and
    exec inherits its parent's ru_maxrss on Linux, so ru_maxrss would report the benchmark's."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_config(cell: str, seed: int, epochs: int):
    from stockrnn import model_config

    return model_config(cell, "reference", target="high", seed=seed, epochs=epochs)


def use_torch_modules() -> None:
    """The baseline: train through torch's own nn.LSTM / nn.GRU (autograd through every step),
    which is what the network did before the fused stack, everything else unchanged."""
    from stockrnn.models import RecurrentNet

    def forward(self, x):
        for rnn, drop in zip(self.recurrent, self.dropouts, strict=True):
            x = drop(rnn(x)[0])
        return self.head(x[:, -1])

    RecurrentNet.forward = forward


def worker_train(cell: str, epochs: int, seed: int, impl: str = "fused") -> dict:
    """Train the reference configuration through the library, timing every epoch."""
    from stockrnn import NetworkForecaster, load_prices

    if impl == "nn":
        use_torch_modules()
    prices = load_prices(IBM)
    stamps: list[float] = []
    model = NetworkForecaster(cell, reference_config(cell, seed, epochs))
    start = time.perf_counter()
    model.fit(prices, train_end=TRAIN_END, on_epoch=lambda _: stamps.append(time.perf_counter()))
    seconds = np.diff([start, *stamps]).tolist()
    forecast = model.rolling(prices, start=TEST_START)["step_1"].to_numpy()
    return {"epoch_seconds": seconds, "predicted": forecast.tolist(), "peak_mb": peak_mb()}


def worker_memory(tickers: int, days: int, features: int, window: int, batch: int) -> dict:
    """One epoch of batches over a synthetic panel: windows are views, never materialised."""
    from stockrnn.windows import WindowDataset, train_origins

    rng = np.random.default_rng(0)
    parts = []
    for _ in range(tickers):
        inputs = rng.standard_normal((days, features), dtype=np.float32)
        origins = train_origins(0, days, window, 1)
        parts.append((inputs, inputs[origins + 1, :1], origins))
    data = WindowDataset.panel(parts, window)
    del parts
    start, total = time.perf_counter(), 0.0
    order = torch.randperm(len(data))
    for i in range(0, len(data), batch):
        x, y = data.batch(order[i : i + batch])
        total += float(x[:, -1, 0].sum())  # touch every batch
    materialised = len(data) * window * features * 4 / 2**30
    return {
        "windows": len(data),
        "seconds": time.perf_counter() - start,
        "peak_mb": peak_mb(),
        "materialised_gb": materialised,
    }
