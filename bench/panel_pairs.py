"""How far the global network is from beating ridge_local on 90% of tickers, and why (issue 11).

    PYTHONPATH=src python bench/panel_pairs.py --year 2008 [--year 2018 ...]

For each validation year (sp500: train through Y - 1, score Y; never the test) one default panel
run of the global LSTM, ridge_local and persistence, then per ticker the RMSE ratio of the LSTM to
ridge_local: its quantiles and its spread tell how large a lead over ridge_local a 90% share would
take. Beside it the equal-weight average of the two forecasts, the most a per-ticker mix of them
could give without fitting anything more. Writes bench/results/panel_pairs.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from stockrnn.panel_eval import evaluate_panel  # noqa: E402

from machine import describe  # noqa: E402
from panel import default_data, load  # noqa: E402

OUT = ROOT / "bench" / "results"
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def rmse(forecast, actual) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast) - np.asarray(actual)) ** 2)))


def year_pairs(data: Path, year: int) -> dict:
    """Per-ticker RMSE ratios of one default panel run on validation year `year`."""
    start = time.perf_counter()
    panel = load(data, f"{year}-12-31", None)
    run = evaluate_panel(panel, "lstm,ridge_local,persistence", test_start=f"{year}-01-01", test_end=f"{year}-12-31")
    ratio, mixed, skill = [], [], []
    for evaluation in run.evaluations.values():
        w = evaluation.wide()
        local = rmse(w["ridge_local"], w["actual"])
        ratio.append(rmse(w["lstm"], w["actual"]) / local)
        mixed.append(rmse((w["lstm"] + w["ridge_local"]) / 2, w["actual"]) / local)
        skill.append(1 - rmse(w["lstm"], w["actual"]) / rmse(w["persistence"], w["actual"]))
    log_ratio = np.log(ratio)
    return {
        "year": year,
        "tickers": len(ratio),
        "lstm_median_skill": float(np.median(skill)),
        "beats_ridge_local": float(np.mean(np.asarray(ratio) < 1)),
        "ratio_quantiles": dict(zip(map(str, QUANTILES), np.quantile(ratio, QUANTILES).tolist(), strict=True)),
        "log_ratio_sd": float(np.std(log_ratio)),
        "median_lead": float(1 - np.median(ratio)),
        # a 90% share needs the ratio's 90th percentile below 1: the median lead that takes if the
        # whole distribution moved and its spread stayed
        "lead_for_90": float(1 - np.exp(np.median(log_ratio) - np.quantile(log_ratio, 0.9))),
        "mix_beats_ridge_local": float(np.mean(np.asarray(mixed) < 1)),
        "seconds": time.perf_counter() - start,
    }


def render(record: dict) -> str:
    lines = [
        "# The global LSTM against ridge_local, ticker by ticker (validation years)",
        "",
        f"Command: `{record['command']}` ({record['date']}). Machine: {record['machine']}.",
        "",
        "Per ticker, RMSE of the global LSTM / RMSE of ridge_local (defaults, seed 0). *Median lead*:",
        "1 - the median ratio. *Lead for 90%*: the median lead it would take for 90% of tickers to",
        "beat ridge_local, were the ratios' spread this year's. *Average*: the equal-weight average of",
        "the two forecasts against ridge_local.",
        "",
        "| year | tickers | LSTM median skill | beats ridge_local | ratio p10 / p25 / median / p75 / p90 "
        "| sd of log ratio | median lead | lead for 90% | average beats ridge_local |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for y in record["years"]:
        q = " / ".join(f"{v:.4f}" for v in y["ratio_quantiles"].values())
        lines.append(
            f"| {y['year']} | {y['tickers']} | {y['lstm_median_skill']:.4f} | {y['beats_ridge_local']:.1%} | {q} "
            f"| {y['log_ratio_sd']:.4f} | {y['median_lead']:.2%} | {y['lead_for_90']:.2%} "
            f"| {y['mix_beats_ridge_local']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=int, action="append", required=True, help="sp500 validation year, <= 2018")
    parser.add_argument("--data", type=Path, default=default_data())
    args = parser.parse_args()
    if any(not 2001 <= y <= 2018 for y in args.year):
        raise SystemExit("--year is a validation year, 2001 .. 2018 (2019 on is the test)")
    record = {
        "command": "bench/panel_pairs.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": describe(),
        "years": [year_pairs(args.data, y) for y in args.year],
    }
    (OUT / "panel_pairs.json").write_text(json.dumps(record, indent=1) + "\n")
    (OUT / "panel_pairs.md").write_text(render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
