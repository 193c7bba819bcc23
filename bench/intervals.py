"""Interval coverage benchmark: do the 80% and 95% intervals of each model hold their level?

IBM High (train through 2016, test 2017) and sp500 High (train through 2015, test 2016-2018),
project defaults, horizon 5 so the table also shows how the error and the interval width grow
with the step. Writes bench/results/intervals.md and intervals.json.

    OMP_NUM_THREADS=1 .venv/bin/python bench/intervals.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from stockrnn import evaluate, load_prices, make_forecaster, model_config

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
IBM = ROOT.parent / "shared" / "data" / "djia" / "IBM_2006-01-01_to_2018-01-01.csv"
CASES = {
    "IBM": dict(source=IBM, test_start="2017-01-01", test_end="2017-12-31"),
    "sp500": dict(source="sp500", test_start="2016-01-01", test_end="2018-12-31"),
}
MODELS = ("lstm", "gru", "ridge", "persistence")
HORIZON = 5


def run(name: str, case: dict) -> dict:
    prices = load_prices(case["source"])
    models = [make_forecaster(m, model_config(m, target="high", horizon=HORIZON)) for m in MODELS]
    started = time.perf_counter()
    result = evaluate(prices, models, test_start=case["test_start"], test_end=case["test_end"])
    out = {"seconds": round(time.perf_counter() - started, 1), "settings": result.metrics["settings"], "models": {}}
    for model in MODELS:
        m = result.metrics["models"][model]
        bands = result.bands(model, 1)
        width = None if bands is None else float(((bands["hi80"] - bands["lo80"]) / result.wide()[model]).mean())
        out["models"][model] = {
            "coverage_80": m["coverage_80"],
            "coverage_95": m["coverage_95"],
            "width_80_pct": None if width is None else 100 * width,
            "by_step": [{k: s[k] for k in ("step", "rmse", "coverage_80", "coverage_95")} for s in m["by_step"]],
        }
    print(name, json.dumps({k: (v["coverage_80"], v["coverage_95"]) for k, v in out["models"].items()}), flush=True)
    return out


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    if not IBM.exists():
        print(f"shared data not found at {IBM}", file=sys.stderr)
        return 2
    results = {name: run(name, case) for name, case in CASES.items()}
    lines = [
        "# Interval coverage",
        "",
        f"`bench/intervals.py`, {describe()}. Project defaults, target high, horizon {HORIZON}; "
        "IBM: train 2006-2016, test 2017; sp500: train 1999-2015, test 2016-2018. Coverage is the share "
        "of test days whose actual lies inside the interval (step 1 unless stated); the goal is within "
        "5 points of 80% and 95%. Width: mean 80% interval width at step 1, in % of the forecast.",
        "",
        "| data | model | coverage 80% | coverage 95% | width 80% | cov80 step 5 | cov95 step 5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for model, m in result["models"].items():
            last = m["by_step"][-1]
            lines.append(
                f"| {name} | {model} | {fmt(m['coverage_80'], '.1%')} | {fmt(m['coverage_95'], '.1%')} | "
                f"{fmt(m['width_80_pct'], '.2f')}% | {fmt(last['coverage_80'], '.1%')} | "
                f"{fmt(last['coverage_95'], '.1%')} |"
            )
    lines += ["", "RMSE by step (trading days ahead):", "", "| data | model | " + " | ".join(
        f"step {k}" for k in range(1, HORIZON + 1)) + " |", "|---|---|" + "---|" * HORIZON]  # fmt: skip
    for name, result in results.items():
        for model, m in result["models"].items():
            lines.append(f"| {name} | {model} | " + " | ".join(f"{s['rmse']:.3f}" for s in m["by_step"]) + " |")
    lines.append("")
    lines.append("Seconds: " + ", ".join(f"{name} {r['seconds']}" for name, r in results.items()))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "intervals.md").write_text("\n".join(lines) + "\n")
    (ROOT / "bench" / "results" / "intervals.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
