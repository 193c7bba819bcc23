"""How fast stockrnn trains and forecasts, and how that compares with Keras on the same machine.

    .venv/bin/python bench/speed.py                        # stockrnn alone (about 3 minutes)
    .venv/bin/python bench/speed.py --vs keras             # + Keras 3 side by side (make bench-setup)
    .venv/bin/python bench/speed.py --vs keras --accuracy  # + 50-epoch test RMSE, seeds 0,1,2, both sides

Sections, each written into bench/results/speed.json (a run replaces only the sections it ran)
and rendered into bench/results/speed.md:
- `training`: the `reference` configuration (4 x 50 units, window 60, batch 32, IBM through
  2016: 2,709 windows) for LSTM and GRU: seconds per epoch, windows per second, the time for
  50 epochs, the achieved GFLOP/s of the recurrent layers next to this machine's matrix-multiply
  rate on the same shapes, and peak resident memory. With `--vs keras`, stockrnn and Keras run
  alternately, `--rounds` times, each in a fresh process, and the ratio of their throughputs is
  reported per round with its median.
- `accuracy` (`--accuracy`): full 50-epoch trainings, seeds 0, 1, 2, test RMSE on IBM 2017.
- `defaults`: `stockrnn evaluate` with the defaults on one ticker, end to end.
- `inference`: one next-day forecast, and one batch of 500 series.
- `memory`: one epoch of batches over 500 synthetic tickers x 5,000 days x 5 features, window 60.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speed_workers import IBM, TEST_START, TRAIN_END, reference_config, worker_memory, worker_train

ROOT = Path(__file__).resolve().parents[1]
KERAS_PYTHON = ROOT / ".venv-keras" / "bin" / "python"
CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}


# -- workers: each measurement runs in a fresh process (speed_workers.py) -----------------------
def run_worker(args: list[str], python: Path | str = sys.executable, threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run([str(python), *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ours(cell: str, epochs: int, seed: int, threads: int, impl: str = "fused") -> dict:
    args = ["--cell", cell, "--epochs", str(epochs), "--seed", str(seed), "--impl", impl]
    return run_worker([__file__, "--worker", "train", *args], threads=threads)


def keras(cell: str, epochs: int, seed: int, threads: int, windows: Path) -> dict:
    script = str(ROOT / "bench" / "keras_worker.py")
    args = [
        script,
        "--windows",
        str(windows),
        "--cell",
        cell,
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
    ]
    return run_worker(args, python=KERAS_PYTHON, threads=threads)


# -- what the Keras side trains on: the same windows, built by the library ------------------------
def write_windows(path: Path) -> tuple[np.ndarray, object]:
    """The reference windows (High, MinMax fitted on training rows) for Keras; returns the actual
    test-period High and the fitted features, which turn scaled forecasts back into prices."""
    from stockrnn import load_prices
    from stockrnn.features import Features
    from stockrnn.windows import WindowDataset, train_origins

    frame = load_prices(IBM).frame
    first = int(frame.index.searchsorted(np.datetime64(TEST_START)))
    train = frame.iloc[:first]
    origins = train_origins(0, first, 60, 1)
    features = Features("high", "level").fit(train, origins, 1)
    fit = WindowDataset(features.inputs(train), features.targets(train, origins, 1), origins, 60)
    x, y = fit.batch(torch.arange(len(fit)))
    test_origins = np.arange(first - 1, len(frame) - 1)
    test = WindowDataset(features.inputs(frame), None, test_origins, 60)
    x_test, _ = test.batch(torch.arange(len(test)))
    np.savez(path, x=x.numpy(), y=y.numpy(), x_test=x_test.numpy())
    return frame["high"].to_numpy()[first:], (features, frame, test_origins)


def keras_prices(predicted: list, scaling) -> np.ndarray:
    features, frame, origins = scaling
    return features.to_price(np.asarray(predicted, dtype=float), frame, origins)[:, 0]


def rmse(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast) - actual) ** 2)))


# -- arithmetic ---------------------------------------------------------------------------------
def flops_per_epoch(
    cell: str, windows: int, steps: int = 60, units: int = 50, layers: int = 4, inputs: int = 1
) -> float:
    """Multiply-adds of the recurrent layers, forward (x2 for a multiply-add) and backward (twice
    the forward: gradients of the inputs and of the weights)."""
    sizes = [inputs] + [units] * (layers - 1)
    macs = sum(GATES[cell] * units * (n + units) for n in sizes) * steps * windows
    return 2 * macs * 3


def matmul_rate(shape: tuple[int, int, int], threads: int, seconds: float = 0.5) -> float:
    """GFLOP/s of (m x k) @ (k x n) in torch at this thread count."""
    torch.set_num_threads(threads)
    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(20):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            a @ b
        count += 50
    return 2 * m * k * n * count / (time.perf_counter() - start) / 1e9


# -- sections -------------------------------------------------------------------------------------
def summarise_epochs(seconds: list[float]) -> float:
    """Seconds per epoch: the median after the first epoch (which includes warm-up)."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def section_training(args, windows: Path | None) -> dict:
    out: dict = {"epochs_per_run": args.epochs, "rounds": args.rounds, "threads": args.threads, "cells": {}}
    for cell in CELLS:
        runs = []
        for r in range(args.rounds):
            mine = ours(cell, args.epochs, r, args.threads)
            row = {"stockrnn_s": summarise_epochs(mine["epoch_seconds"]), "stockrnn_mb": mine["peak_mb"]}
            row["torch_nn_s"] = summarise_epochs(ours(cell, args.epochs, r, args.threads, "nn")["epoch_seconds"])
            if args.threads != 1:
                row["stockrnn_1thread_s"] = summarise_epochs(ours(cell, args.epochs, r, 1)["epoch_seconds"])
            if windows is not None:
                theirs = keras(cell, args.epochs, r, args.threads, windows)
                row.update(keras_s=summarise_epochs(theirs["epoch_seconds"]), keras_mb=theirs["peak_mb"])
                row["ratio"] = row["keras_s"] / row["stockrnn_s"]
                out["keras"] = theirs["versions"]
            runs.append(row)
            print(f"  {cell} round {r + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
        per_epoch = statistics.median(r["stockrnn_s"] for r in runs)
        flops = flops_per_epoch(cell, WINDOWS)
        entry = {
            "runs": runs,
            "seconds_per_epoch": per_epoch,
            "windows_per_second": WINDOWS / per_epoch,
            "seconds_50_epochs": 50 * per_epoch,
            "gflop_per_epoch": flops / 1e9,
            "gflops": flops / per_epoch / 1e9,
            "peak_mb": max(r["stockrnn_mb"] for r in runs),
            "torch_nn_seconds_per_epoch": statistics.median(r["torch_nn_s"] for r in runs),
        }
        if args.threads != 1:
            entry["one_thread_seconds_per_epoch"] = statistics.median(r["stockrnn_1thread_s"] for r in runs)
        if windows is not None:
            ratios = [r["ratio"] for r in runs]
            entry.update(ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios))
            entry["keras_seconds_per_epoch"] = statistics.median(r["keras_s"] for r in runs)
            entry["keras_peak_mb"] = max(r["keras_mb"] for r in runs)
        out["cells"][cell] = entry
    shapes = {
        "input+recurrent (32x51 @ 51x200)": (32, 51, 200),
        "input+recurrent (32x100 @ 100x200)": (32, 100, 200),
        "GRU (32x100 @ 100x150)": (32, 100, 150),
        "large (1024x1024 @ 1024x1024)": (1024, 1024, 1024),
    }
    out["matmul_gflops"] = {name: {t: matmul_rate(s, t) for t in (1, args.threads)} for name, s in shapes.items()}
    torch.set_num_threads(args.threads)
    return out


def section_accuracy(args, windows: Path, scaling, actual: np.ndarray) -> dict:
    """50 epochs, seeds 0, 1, 2, both sides; run as `--jobs` parallel processes of one thread each."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(side, cell, seed) for seed in (0, 1, 2) for cell in CELLS for side in ("stockrnn", "keras")]

    def one(job):
        side, cell, seed = job
        if side == "stockrnn":
            result = ours(cell, 50, seed, 1)
            forecast = np.asarray(result["predicted"])
        else:
            result = keras(cell, 50, seed, 1, windows)
            forecast = keras_prices(result["predicted"], scaling)
        score = rmse(forecast, actual)
        print(f"  {side} {cell} seed {seed}: RMSE {score:.3f}", flush=True)
        return job, score

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, jobs))
    out: dict = {"test_days": len(actual), "cells": {}}
    for cell in CELLS:
        entry = {}
        for side in ("stockrnn", "keras"):
            entry[side] = [score for (s, c, _), score in results if s == side and c == cell]
        entry["stockrnn_mean"], entry["keras_mean"] = float(np.mean(entry["stockrnn"])), float(np.mean(entry["keras"]))
        entry["ratio"] = entry["stockrnn_mean"] / entry["keras_mean"]
        out["cells"][cell] = entry
    return out


def section_defaults() -> dict:
    """`stockrnn evaluate` with the defaults (LSTM, GRU, ridge, persistence) on one ticker."""
    stockrnn = Path(sys.executable).with_name("stockrnn")
    with tempfile.TemporaryDirectory() as out:
        command = [str(stockrnn), "evaluate", "--data", str(IBM), "--test-start", TEST_START, "--out", out, "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
    shown = f"stockrnn evaluate --data {IBM.relative_to(ROOT.parent)} --test-start {TEST_START}"
    return {"command": shown, "seconds": seconds}


def section_inference() -> dict:
    """Forecast latency: through the API (features, network, intervals) for the next day, and the
    reference network's forward pass alone for 1 and for 500 series."""
    from stockrnn import load_prices, make_forecaster, model_config
    from stockrnn.models import RecurrentNet

    def timed(fn, repeat: int) -> float:
        fn()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    prices = load_prices(IBM)
    model = make_forecaster("lstm", model_config("lstm", epochs=2)).fit(prices, train_end=TRAIN_END)
    out = {"api_next_day_ms": 1000 * timed(lambda: model.predict(prices), 20)}
    net = RecurrentNet("lstm", 1, 50, 4, 0.2).eval()
    for n in (1, 500):
        x = torch.randn(n, 60, 1)
        with torch.no_grad():
            out[f"reference_forward_{n}_ms"] = 1000 * timed(lambda x=x: net(x), 20)
    return out


def section_profile(windows: Path, batches: int = 20) -> dict:
    """Where a training batch of the reference configuration spends its time, by operation."""
    from torch.profiler import ProfilerActivity, profile

    from stockrnn.models import RecurrentNet
    from stockrnn.training import make_optimizer

    data = np.load(windows)
    x, y = torch.as_tensor(data["x"]), torch.as_tensor(data["y"])
    out = {}
    for cell in CELLS:
        torch.manual_seed(0)
        net = RecurrentNet(cell, 1, 50, 4, 0.2)
        optimizer = make_optimizer(net.parameters(), reference_config(cell, 0, 50))

        def step(i: int, net=net, optimizer=optimizer) -> None:
            xb, yb = x[32 * i : 32 * i + 32], y[32 * i : 32 * i + 32]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(net(xb), yb).backward()
            optimizer.step()

        for i in range(5):
            step(i)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(batches):
                step(i)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        out[cell] = {
            "ms_per_batch": total / batches / 1000,
            "top": [
                {"name": e.key, "ms_per_batch": e.self_cpu_time_total / batches / 1000, "calls": e.count / batches}
                for e in events[:10]
            ],
        }
    return out


def section_memory() -> dict:
    return run_worker([__file__, "--worker", "memory"])


WINDOWS = 2709  # reference training windows: IBM 2006-01-03 .. 2016-12-30, window 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vs", choices=("keras",), help="train Keras side by side (needs make bench-setup)")
    parser.add_argument("--accuracy", action="store_true", help="also the 50-epoch RMSE, seeds 0,1,2, both sides")
    parser.add_argument("--sections", default="training,profile,defaults,inference,memory")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per cell")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes for --accuracy")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--worker", choices=("train", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--cell", default="lstm", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("fused", "nn"), default="fused", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "train":
        print(json.dumps(worker_train(args.cell, args.epochs, args.seed, args.impl)))
        return 0
    if args.worker == "memory":
        print(json.dumps(worker_memory(500, 5000, 5, 60, 256)))
        return 0
    if not IBM.exists():
        print(f"speed.py needs {IBM} (the shared data folder)", file=sys.stderr)
        return 2
    if args.vs == "keras" and not KERAS_PYTHON.exists():
        print("the Keras environment is missing: run `make bench-setup` first", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "bench"))
    from machine import describe
    from speed_report import render

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "speed.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    torch.set_num_threads(args.threads)
    results.update(
        machine=describe(), command="bench/speed.py " + " ".join(sys.argv[1:]), date=time.strftime("%Y-%m-%d")
    )
    with tempfile.TemporaryDirectory() as tmp:
        windows = Path(tmp) / "windows.npz"
        actual, scaling = write_windows(windows)
        sections = args.sections.split(",")
        if "training" in sections:
            print("training (reference configuration)", flush=True)
            results["training"] = section_training(args, windows if args.vs == "keras" else None)
        if "profile" in sections:
            print("profile", flush=True)
            results["profile"] = section_profile(windows)
        if args.accuracy:
            print("accuracy (50 epochs, seeds 0, 1, 2)", flush=True)
            results["accuracy"] = section_accuracy(args, windows, scaling, actual)
    if "defaults" in sections:
        print("defaults end to end", flush=True)
        results["defaults"] = section_defaults()
    if "inference" in sections:
        results["inference"] = section_inference()
    if "memory" in sections:
        print("memory", flush=True)
        results["memory"] = section_memory()
    for name in sections + (["accuracy"] if args.accuracy else []):
        if name in results:  # each section keeps the command that produced it
            results[name]["run_by"] = results["command"]
    path.write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "speed.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
