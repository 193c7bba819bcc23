"""Honest tuning of the network defaults: validation inside the training years only.

Protocol: train through 2015, validate on 2016, all 24 DJIA tickers, next-day High, LSTM next to
ridge (same inputs and target) and persistence. Candidates are compared on median validation
skill; the winner becomes the project default for both LSTM and GRU. 2017 is never looked at
here: it is for the final report (bench/accuracy.py) only.

    .venv/bin/python bench/tune.py            # runs the candidates without saved results, then
                                              # writes bench/results/tuning.md
    .venv/bin/python bench/tune.py --rerun    # runs every candidate again (about 5-8 min each)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from accuracy import run, summarise
from machine import describe

RESULTS = Path(__file__).resolve().parent / "results"
FIXED = dict(features="relative", epochs=100, batch_size=64, lr=1e-3, optimizer="adam", val_fraction=0.1, patience=10)
# Each candidate names every setting it varies, so a result never depends on today's defaults.
CANDIDATES = {
    "c1": dict(window=20, layers=1, units=32, dropout=0.0, ensemble=3),
    "c2": dict(window=10, layers=1, units=32, dropout=0.0, ensemble=3),
    "c3": dict(window=20, layers=1, units=64, dropout=0.1, ensemble=3),
    "c4": dict(window=10, layers=1, units=32, dropout=0.0, ensemble=5),
    "c5": dict(window=10, layers=1, units=64, dropout=0.1, ensemble=3),
}
SPAN = dict(train_end="2015-12-31", test_start="2016-01-01", test_end="2016-12-31")
MODELS = ("persistence", "ridge", "lstm")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated candidate names")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    for name in names:
        path = RESULTS / f"tune-{name}.json"
        if path.exists() and not args.rerun:
            continue
        started = time.perf_counter()
        rows = run(
            [],
            ["high"],
            MODELS,
            SPAN["train_end"],
            SPAN["test_start"],
            SPAN["test_end"],
            {**FIXED, **CANDIDATES[name]},
            args.jobs,
        )
        result = {
            "candidate": name,
            "settings": {**FIXED, **CANDIDATES[name]},
            "machine": describe(),
            "seconds": round(time.perf_counter() - started),
            "rows": rows,
            "summary": summarise(rows, MODELS),
        }
        path.write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "tuning.md").write_text(render())
    print((RESULTS / "tuning.md").read_text())
    return 0


def render() -> str:
    lines = [
        "# Tuning the network defaults on validation data",
        "",
        "Protocol: train through 2015-12-31, validate on 2016 (252 days), the 24 DJIA tickers of",
        "`../shared/data/djia`, next-day High; LSTM next to ridge (same inputs and target; its penalty",
        "chosen on the last 20% of the training windows) and persistence. Every network trains on the",
        "relative inputs (log ratios to the last close, volume relative to its 20-day mean, 5- and",
        "20-day mean high-low range) and the relative target (log of the target over the last close),",
        f"with {FIXED}: Adam, early stopping on the last 10% of the training windows (best weights",
        "restored, learning rate halved when the validation loss stalls), gradient clipping 1.0.",
        "The test year 2017 played no part in these choices.",
        "",
        "Command: `.venv/bin/python bench/tune.py` (each candidate: `bench/accuracy.py --targets high "
        "--models persistence,ridge,lstm --train-end 2015-12-31 --test-start 2016-01-01 --test-end 2016-12-31 "
        "--set ...`)",
        "",
        "| candidate | settings | LSTM median skill | LSTM mean skill | LSTM beats persistence | "
        "ridge median skill | minutes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    best, best_skill = None, -1.0
    for name in CANDIDATES:
        path = RESULTS / f"tune-{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        high = result["summary"]["high"]
        lstm, ridge = high["lstm"], high["ridge"]
        settings = ", ".join(f"{k}={v}" for k, v in CANDIDATES[name].items())
        lines.append(
            f"| {name} | {settings} | {lstm['median_skill']:+.4f} | {lstm['mean_skill']:+.4f} | "
            f"{lstm['wins']}/{lstm['tickers']} | {ridge['median_skill']:+.4f} | {result['seconds'] / 60:.1f} |"
        )
        if lstm["median_skill"] > best_skill:
            best, best_skill = name, lstm["median_skill"]
    machine = json.loads((RESULTS / f"tune-{best}.json").read_text())["machine"] if best else "-"
    lines += [
        "",
        f"Chosen: **{best}** (highest median validation skill). Machine: {machine}; one process, one torch "
        "thread, beside other work, so the minutes are only a rough guide.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
