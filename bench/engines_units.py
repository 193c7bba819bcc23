"""The unit of work of bench/engines.py, in a module of its own: units travel to worker processes by
module name, and a script run as __main__ is not importable there under its own name. Local workers
get the driver's sys.path (bench/ first); Ray's workers get bench/ on PYTHONPATH from the driver."""

from __future__ import annotations

import hashlib
import os
import resource
import time

# Imported when the unit arrives in a worker, not inside it: the unit's own time is the work alone.
from stockrnn.config import model_config
from stockrnn.evaluate import evaluate
from stockrnn.forecaster import make_forecaster

TEST_START = "2019-01-01"  # train through 2018, test 2019-01-01 .. 2020-05-14 (the data's end)


def models(quick_units: bool) -> list:
    """Fresh local models for one ticker: ridge, and with full units the GRU of the `quick` preset."""
    chosen = [make_forecaster("ridge", model_config("ridge"))]
    if not quick_units:
        chosen.append(make_forecaster("gru", model_config("gru", preset="quick")))
    return chosen


def evaluate_ticker(shared: dict, ticker: str, quick_units: bool = False) -> dict:
    """Fit and score one ticker's local models. Returns each model's RMSE as float hex and a digest
    of every forecast (compared across engines to the last digit), the unit's own wall time, and
    this process's pid and peak resident memory so far (the driver takes the maximum per pid)."""
    started = time.perf_counter()
    evaluation = evaluate(shared[ticker], models(quick_units), test_start=TEST_START)
    forecasts = evaluation.predictions[evaluation.models].to_numpy(dtype="float64")
    return {
        "rmse": {name: float(evaluation.metrics["models"][name]["rmse"]).hex() for name in evaluation.models},
        "forecasts_sha256": hashlib.sha256(forecasts.tobytes()).hexdigest(),
        "seconds": time.perf_counter() - started,
        "pid": os.getpid(),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: kilobytes
    }
