"""How many torch threads one unit of work should use: 1 or 2, on a quiet machine and beside busy ones.

    .venv/bin/python bench/threads.py              # one round: minutes when the machine is busy
    .venv/bin/python bench/threads.py --rounds 3

Each measurement is a fresh process that fits the default LSTM (one network, 3 epochs, built-in
`sp500`) with `torch.set_num_threads(T)` and reports seconds per epoch. The four cases (1 or 2
threads, quiet or beside two busy `python -c 'while 1: pass'` processes) alternate within each
round, so a change in the machine's load hits every case alike. Writes bench/results/threads.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
BUSY = [sys.executable, "-c", "while 1: pass"]


def worker(threads: int) -> None:
    """One measurement: print seconds per epoch of the default LSTM with `threads` torch threads."""
    import torch

    import stockrnn

    torch.set_num_threads(threads)
    prices = stockrnn.load_prices("sp500")
    config = stockrnn.model_config("lstm", ensemble=1, epochs=EPOCHS, patience=EPOCHS)
    start = time.perf_counter()
    stockrnn.make_forecaster("lstm", config).fit(prices)
    print(f"{(time.perf_counter() - start) / EPOCHS:.4f}")


def measure(threads: int, busy: int) -> float:
    hogs = [subprocess.Popen(BUSY) for _ in range(busy)]
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(threads)], capture_output=True, text=True, check=True
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return float(out.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    cases = [(threads, busy) for busy in (0, 2) for threads in (1, 2)]
    times: dict[tuple[int, int], list[float]] = {case: [] for case in cases}
    load_before = load_average()
    for round_ in range(args.rounds):
        for case in cases:
            times[case].append(measure(*case))
            print(f"round {round_ + 1}: {case[0]} thread(s), {case[1]} busy: {times[case][-1]:.2f} s/epoch", flush=True)
            write(times, load_before)  # after every measurement: a run stopped early keeps its numbers


def write(times: dict[tuple[int, int], list[float]], load_before: str) -> None:
    rows = [
        f"| {threads} | {'quiet' if busy == 0 else f'{busy} busy processes beside it'} | "
        f"{statistics.median(got):.2f} | {', '.join(f'{t:.2f}' for t in got)} |"
        for (threads, busy), got in times.items()
        if got
    ]
    text = "\n".join(
        [
            "# Torch threads per unit of work",
            "",
            f"Machine: {describe()}. Load average before the run: {load_before} (the machine was shared",
            "with other jobs while this ran: 'quiet' means no extra busy processes of ours, not an idle machine).",
            "",
            f"Default LSTM (one network, {EPOCHS} epochs) fit on the built-in `sp500`, a fresh process per",
            "measurement, the cases alternating within each round. Seconds per epoch:",
            "",
            "| torch threads | beside | median s/epoch | each round |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )
    (ROOT / "bench" / "results" / "threads.md").write_text(text)


if __name__ == "__main__":
    main()
