"""Training speed of the global (panel) network on the S&P 500 files, fused stack vs torch.

    PYTHONPATH=src python bench/panel_speed.py [--threads 1] [--rounds 3] [--validate]

Loads every file of --data (skipping those that raise DataError), builds the panel's training
windows (through --train-end, validation tail by date), then times training epochs of
EPOCH_WINDOWS sampled windows exactly as `fit_panel` runs them (`train_sampled`), alternating
the fused wavefront stack, the same stack with its former padded input block (the reference
for trimming it) and torch's own nn.LSTM/nn.GRU in the same process. Reports
windows/s, the achieved GFLOP/s of the recurrent layers, a profile of a fused batch and the
peak resident memory. --validate also fits the default global LSTM and the pooled ridge and
scores them on the year after --train-end (validation only: nothing after --val-end is read).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from stockrnn import recurrent  # noqa: E402
from stockrnn.data import load_prices  # noqa: E402
from stockrnn.errors import DataError  # noqa: E402
from stockrnn.global_models import GlobalNetwork, global_config, make_global  # noqa: E402
from stockrnn.models import RecurrentNet, keras_init_  # noqa: E402
from stockrnn.panel_training import EPOCH_WINDOWS, train_sampled  # noqa: E402

from machine import describe  # noqa: E402

GATES = {"lstm": 4, "gru": 3}


def peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TorchNet(RecurrentNet):
    """The baseline: the same network trained through torch's nn.LSTM / nn.GRU modules."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for rnn, drop in zip(self.recurrent, self.dropouts, strict=True):
            x = drop(rnn(x)[0])
        return self.head(x[:, -1])


def flops_per_window(cell: str, steps: int, units: int, inputs: int, layers: int = 1) -> float:
    """Multiply-adds of the recurrent layers x2, forward plus backward (twice the forward)."""
    sizes = [inputs] + [units] * (layers - 1)
    return 2 * 3 * sum(GATES[cell] * units * (n + units) for n in sizes) * steps


def load_panel(folder: Path, end: pd.Timestamp) -> tuple[dict, list]:
    panel, skipped = {}, []
    for path in sorted(folder.glob("*.csv")):
        try:
            prices = load_prices(path, allow_gaps=True)
        except DataError as exc:
            skipped.append((path.name, str(exc)[:80]))
            continue
        panel[prices.name] = prices.slice(end=end)  # nothing after the validation year is ever read
    return panel, skipped


IMPLS = ("fused", "padded", "torch")


@contextmanager
def padded_layout(on: bool):
    """The fused stack with the layout it had before a single layer's input block was trimmed to
    its own inputs (every input block as wide as the units): the reference for that change."""
    trimmed = recurrent.input_width
    if on:
        recurrent.input_width = lambda n_in, h, n_layers: max(n_in, h) + 1
        recurrent._POOL.clear()  # workspaces are reused by shape: none of the other layout may serve
    try:
        yield
    finally:
        recurrent.input_width = trimmed
        if on:
            recurrent._POOL.clear()


def time_epoch(cell: str, impl: str, windows, config, n_inputs: int, epoch_windows: int) -> tuple[float, float]:
    """(wall, CPU) seconds for one training epoch of `epoch_windows` sampled windows, after a
    warm-up. CPU seconds are this process's (all threads): less sensitive to a shared machine.
    `impl`: "fused" (the stack as trained), "padded" (the same stack with the former padded input
    block) or "torch" (nn.LSTM / nn.GRU)."""
    torch.manual_seed(0)
    cls = TorchNet if impl == "torch" else RecurrentNet
    net = cls(cell, n_inputs, config.units, config.layers, config.dropout, config.horizon)
    keras_init_(net)
    one = replace(config, epochs=1)
    none = np.empty(0, dtype=np.int64)
    with padded_layout(impl == "padded"):
        train_sampled(net, windows.data, windows.fit, none, one, torch.device("cpu"), 4 * config.batch_size)
        start, cpu = time.perf_counter(), time.process_time()
        train_sampled(net, windows.data, windows.fit, none, one, torch.device("cpu"), epoch_windows)
        return time.perf_counter() - start, time.process_time() - cpu


def profile_batches(cell: str, windows, config, n_inputs: int, batches: int = 20) -> dict:
    """Self time per operation over `batches` fused training batches."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    net = RecurrentNet(cell, n_inputs, config.units, config.layers, config.dropout, config.horizon)
    none = np.empty(0, dtype=np.int64)
    one = replace(config, epochs=1)
    train_sampled(net, windows.data, windows.fit, none, one, torch.device("cpu"), 4 * config.batch_size)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_sampled(net, windows.data, windows.fit, none, one, torch.device("cpu"), batches * config.batch_size)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return {
        "ms_per_batch": total / batches / 1000,
        "top": [
            {"name": e.key, "ms_per_batch": e.self_cpu_time_total / batches / 1000, "calls": e.count / batches}
            for e in events[:12]
        ],
    }


def validate(panel: dict, train_end: pd.Timestamp, val_end: pd.Timestamp, models: list[str]) -> dict:
    """Median skill over tickers (1 - RMSE / RMSE of persistence) on the year after train_end."""
    out = {}
    start = train_end + pd.Timedelta(days=1)
    for name in models:
        t0 = time.perf_counter()
        epochs = []
        model = make_global(name).fit_panel(panel, train_end=train_end, on_epoch=epochs.append)
        fit_s = time.perf_counter() - t0
        skills = []
        for prices in panel.values():
            frame = prices.frame
            if len(frame.loc[start:val_end]) < 50 or len(frame.loc[:train_end]) < 100:
                continue
            rolled = model.rolling(prices, start, val_end)
            days = frame.index.get_indexer(rolled.index) + 1
            actual = frame["high"].to_numpy()[days]
            persistence = frame["high"].to_numpy()[days - 1]
            rmse = np.sqrt(np.mean((rolled["step_1"].to_numpy() - actual) ** 2))
            skills.append(1 - rmse / np.sqrt(np.mean((persistence - actual) ** 2)))
        out[name] = {
            "fit_seconds": fit_s,
            "epochs": len(epochs),
            "tickers": len(skills),
            "median_skill": float(np.median(skills)),
            "mean_skill": float(np.mean(skills)),
            "beats_persistence": float(np.mean(np.array(skills) > 0)),
            "windows": model.fitted_["windows"],
        }
        print(name, out[name], flush=True)
    return out


def render(results: dict) -> str:
    """The results as markdown: the speed table, the profile, memory, validation skill."""
    w, c = results["windows"], results["config"]
    lines = [
        "# Global network training speed (panel)",
        "",
        f"{w['tickers']} S&P 500 tickers, training through {results['train_end']}: {w['fit']:,} training windows, "
        f"{w['val']:,} validation windows (from {w['validation_start']}), {w['inputs']} inputs, window {c['window']}, "
        f"{c['layers']} x {c['units']} units, batch {c['batch_size']}, epochs of {c['epoch_windows']:,} sampled "
        f"windows; torch {results['torch']}, {results['threads']} torch thread(s). Load average before/after: "
        f"{results['load_before'][0]:.1f} / {results['load_after'][0]:.1f}.",
        "",
        f"Machine: {results['machine']}. Command: `{results['command']}`",
        "",
    ]
    if "speed" in results:
        lines += [
            "| network | windows/s | windows per CPU-s | GFLOP/s | rounds (windows/s) |",
            "|---|---:|---:|---:|---|",
        ]
        for key, r in results["speed"].items():
            rounds = ", ".join(f"{v:.0f}" for v in r["rounds"])
            name = (
                key.replace("_fused", " fused stack")
                .replace("_padded", " fused stack, former padded layout")
                .replace("_torch", " torch nn module")
            )
            lines.append(
                f"| {name} | {r['windows_per_s']:,.0f} | {r['windows_per_cpu_s']:,.0f} | {r['gflops']:.1f} | {rounds} |"
            )
        lines += ["", "GFLOP/s: multiply-adds of the recurrent layer x2, forward plus backward (x3).", ""]
    for cell, prof in results.get("profile", {}).items():
        lines += [f"Profile, fused {cell}: {prof['ms_per_batch']:.1f} ms per batch (self time, top operations):", ""]
        lines += [f"- `{e['name']}` {e['ms_per_batch']:.2f} ms ({e['calls']:.0f} calls)" for e in prof["top"][:6]]
        lines.append("")
    lines.append(
        f"Peak resident memory: {results['peak_mb']:.0f} MB (after building the windows: {w['peak_mb_after']:.0f} MB)."
    )
    if "validation" in results:
        lines += [
            "",
            "| model | median skill | mean skill | beats persistence | tickers | epochs | fit s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, v in results["validation"].items():
            lines.append(
                f"| global {name} | {v['median_skill']:.3f} | {v['mean_skill']:.3f} | {v['beats_persistence']:.0%} | "
                f"{v['tickers']} | {v['epochs']} | {v['fit_seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def write_markdown(out: Path, results: dict) -> None:
    """OUT.md: the run's tables, then the notes kept by hand beside it (OUT-notes.md), if any."""
    notes = out.with_name(out.stem + "-notes.md")
    out.with_suffix(".md").write_text(render(results) + ("\n" + notes.read_text() if notes.exists() else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/sp500"))
    parser.add_argument("--train-end", default="2017-12-31")
    parser.add_argument("--val-end", default="2018-12-31")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epoch-windows", type=int, default=EPOCH_WINDOWS)
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed sections (validation only)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "panel_speed.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the CLI's --threads)")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json and the notes")
    args = parser.parse_args()
    if args.render:
        write_markdown(args.out, json.loads(args.out.read_text()))
        return 0
    torch.set_num_threads(args.threads)
    train_end, val_end = pd.Timestamp(args.train_end), pd.Timestamp(args.val_end)
    results: dict = {"threads": torch.get_num_threads(), "load_before": os.getloadavg(), "torch": torch.__version__}
    results["machine"] = describe()
    results["command"] = "PYTHONPATH=src python " + " ".join(shlex.quote(a) for a in sys.argv)

    t0 = time.perf_counter()
    panel, skipped = load_panel(args.data, val_end)
    results["load"] = {"seconds": time.perf_counter() - t0, "tickers": len(panel), "skipped": skipped}
    config = global_config("lstm")
    t0 = time.perf_counter()
    windows = GlobalNetwork("lstm", config).windows(panel, train_end=train_end)
    n_inputs = windows.data.inputs.shape[1]
    results["windows"] = {
        "seconds": time.perf_counter() - t0,
        "tickers": len(windows.frames),
        "fit": len(windows.fit),
        "val": len(windows.val),
        "validation_start": str(windows.cutoff.date()),
        "inputs": n_inputs,
        "peak_mb_after": peak_mb(),
    }
    print(json.dumps(results, default=str), flush=True)

    speed: dict = {f"{cell}_{impl}": [] for cell in GATES for impl in IMPLS}
    cpu: dict = {key: [] for key in speed}
    for _ in range(0 if args.no_speed else args.rounds):
        for cell in GATES:
            for impl in IMPLS:
                seconds, cpu_seconds = time_epoch(cell, impl, windows, config, n_inputs, args.epoch_windows)
                speed[f"{cell}_{impl}"].append(args.epoch_windows / seconds)
                cpu[f"{cell}_{impl}"].append(args.epoch_windows / cpu_seconds)
                print(
                    cell,
                    impl,
                    f"{args.epoch_windows / seconds:.0f} windows/s",
                    f"{args.epoch_windows / cpu_seconds:.0f} per CPU-s",
                    os.getloadavg()[0],
                    flush=True,
                )
    results["speed"] = {
        key: {
            "windows_per_s": float(np.median(rates)),
            "rounds": rates,
            "windows_per_cpu_s": float(np.median(cpu[key])),
            "gflops": float(np.median(rates))
            * flops_per_window(key.split("_")[0], config.window, config.units, n_inputs)
            / 1e9,
        }
        for key, rates in speed.items()
        if rates
    }
    if not args.no_speed:
        results["profile"] = {cell: profile_batches(cell, windows, config, n_inputs) for cell in GATES}
    del windows
    if args.validate:
        results["validation"] = validate(panel, train_end, val_end, ["lstm", "ridge"])
    results["peak_mb"] = peak_mb()
    results["load_after"] = os.getloadavg()
    results["config"] = {**config.to_dict(), "epoch_windows": args.epoch_windows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["train_end"] = args.train_end
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_markdown(args.out, results)
    for key, s in results["speed"].items():
        print(f"{key}: {s['windows_per_s']:.0f} windows/s, {s['gflops']:.1f} GFLOP/s")
    print(f"peak RSS {results['peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
