"""1 vs 2 threads for the global network's training epoch, on synthetic windows of the same
shapes as the S&P 500 panel (7 inputs, window 20, 1 x 64 units, batch 512), alternating in one
process. Run: OMP_NUM_THREADS=2 PYTHONPATH=src python bench/panel_threads.py"""

import os
import sys
import types

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import numpy as np
import torch

from panel_speed import time_epoch
from stockrnn.global_models import global_config
from stockrnn.windows import WindowDataset

rng = np.random.default_rng(0)
n = 200_000
data = WindowDataset(
    rng.normal(size=(n, 7)).astype(np.float32), rng.normal(size=(n - 19, 1)).astype(np.float32), np.arange(19, n), 20
)
w = types.SimpleNamespace(data=data, fit=np.arange(n - 19))
cfg = global_config("lstm")
N = 16384
for rnd in range(2):
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for cell in ("lstm", "gru"):
            for impl in ("fused", "torch"):
                s, c = time_epoch(cell, impl, w, cfg, 7, N)
                print(
                    rnd,
                    threads,
                    cell,
                    impl,
                    round(N / s),
                    "per CPU-s",
                    round(N / c),
                    "load",
                    os.getloadavg()[0],
                    flush=True,
                )
