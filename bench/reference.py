"""Reproduce the published experiment: the `reference` preset (the Keras recipe) on IBM
(train 2006-2016, test 2017) and Tata Global (train through 2017, test 2018), seeds 0, 1, 2,
next to persistence and ridge. Writes bench/results/reference.md and reference.json.

    .venv/bin/python bench/reference.py            # about 30 minutes on 2 cores
    .venv/bin/python bench/reference.py --seeds 0 --datasets ibm   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from stockrnn import evaluate, load_prices, make_forecaster, model_config

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DATASETS = {
    "ibm": (DATA / "djia" / "IBM_2006-01-01_to_2018-01-01.csv", "2017-01-01", "2.50 (LSTM), 3.27 (GRU)"),
    "tata": (DATA / "nse" / "NSE-TATAGLOBAL.csv", "2018-01-01", "not given as RMSE"),
}
MODELS = ("lstm", "gru", "persistence", "ridge")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default="ibm,tata")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument(
        "--name",
        help="results file name without extension (default: reference; reference-partial "
        "for fewer seeds or datasets, so that a quick check never replaces the published file)",
    )
    args = parser.parse_args()
    full = (args.seeds, args.datasets) == (parser.get_default("seeds"), parser.get_default("datasets"))
    name = args.name or ("reference" if full else "reference-partial")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {"machine": describe(), "seeds": seeds, "datasets": {}}
    started = time.perf_counter()
    for key in args.datasets.split(","):
        path, test_start, published = DATASETS[key]
        if not path.exists():
            print(f"skip {key}: {path} not found (the shared data folder is absent)", file=sys.stderr)
            continue
        prices = load_prices(path)
        runs = {name: [] for name in MODELS}
        for seed in seeds:
            t0 = time.perf_counter()
            models = [make_forecaster(n, model_config(n, "reference", target="high", seed=seed)) for n in MODELS]
            ev = evaluate(prices, models, test_start=test_start)
            for name in MODELS:
                runs[name].append(ev.metrics["models"][name]["rmse"])
            line = ", ".join(f"{n} {runs[n][-1]:.3f}" for n in MODELS)
            print(f"{key} seed {seed}: {line}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        results["datasets"][key] = {
            "file": path.name,
            "test_start": test_start,
            "test_days": ev.metrics["data"]["scored_days"],
            "published": published,
            "rmse": runs,
        }
    results["seconds"] = round(time.perf_counter() - started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(render(results))
    print(render(results))
    return 0


def render(results: dict) -> str:
    lines = [
        "# The reference experiment, reproduced",
        "",
        "The `reference` preset (the published Keras recipe: High only, 60-day windows, MinMax on the",
        "training span, 4 x 50 units with 4 dropout layers of 0.2, 50 epochs, batch 32; LSTM with",
        "RMSprop, GRU with SGD lr 0.01 momentum 0.9) next to persistence and ridge. Test RMSE of",
        "next-day High.",
        "",
        "Command: `.venv/bin/python bench/reference.py --seeds " + ",".join(map(str, results["seeds"])) + "`  ",
        f"Machine: {results['machine']}; run time {results['seconds'] / 60:.1f} min.",
        "",
    ]
    for d in results["datasets"].values():
        lines += [
            f"## {d['file']}: test from {d['test_start']} ({d['test_days']} days); published: {d['published']}",
            "",
            "| model | " + " | ".join(f"seed {s}" for s in results["seeds"]) + " | mean |",
            "|---|" + "---:|" * (len(results["seeds"]) + 1),
        ]
        for name, values in d["rmse"].items():
            cells = " | ".join(f"{v:.3f}" for v in values)
            lines.append(f"| {name} | {cells} | {statistics.fmean(values):.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
