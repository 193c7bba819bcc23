"""Accuracy benchmark: every DJIA file in ../shared/data/djia, project defaults, next-day forecasts.

Train through 2016, test 2017, targets high and close, models persistence, ridge, lstm, gru.
Writes bench/results/accuracy.md (per-ticker RMSE, skill, DM p-value, medians, wins) and
accuracy.json.

    .venv/bin/python bench/accuracy.py                       # all 24 tickers, both targets
    .venv/bin/python bench/accuracy.py --tickers IBM,KO      # a quick look (accuracy-partial.md)
    .venv/bin/python bench/accuracy.py --train-end 2015-12-31 --test-start 2016-01-01 \\
        --test-end 2016-12-31 --set window=10              # a validation run (see tune.py)

Each ticker runs in its own process with one torch thread (`--jobs`, default: the cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
DJIA = ROOT.parent / "shared" / "data" / "djia"
MODELS = ("persistence", "ridge", "lstm", "gru")


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_one(
    path: str,
    target: str,
    models: tuple[str, ...],
    train_end: str,
    test_start: str,
    test_end: str | None,
    overrides: dict,
    seed: int,
) -> dict:
    """Evaluate one ticker and target; runs in a worker process with one torch thread."""
    import torch

    torch.set_num_threads(1)
    from stockrnn import evaluate, load_prices, make_forecaster, model_config

    started = time.perf_counter()
    prices = load_prices(path)
    prices = prices.slice(None, test_end) if test_end else prices
    forecasters = [make_forecaster(m, model_config(m, target=target, seed=seed, **overrides)) for m in models]
    result = evaluate(prices, forecasters, test_start=test_start)
    assert result.metrics["settings"]["train_end"] <= train_end
    keys = ("rmse", "skill", "dm_pvalue", "direction_accuracy", "best_lag")
    return {
        "ticker": prices.name,
        "target": target,
        "days": result.metrics["data"]["scored_days"],
        "seconds": round(time.perf_counter() - started, 1),
        "models": {m: {k: result.metrics["models"][m][k] for k in keys} for m in result.models},
    }


def run(
    tickers: list[str],
    targets: list[str],
    models: tuple[str, ...],
    train_end: str,
    test_start: str,
    test_end: str | None,
    overrides: dict,
    jobs: int,
    seed: int = 0,
) -> list[dict]:
    files = sorted(DJIA.glob("*.csv"))
    if not files:
        sys.exit(f"no data: {DJIA} not found (the shared data folder is absent)")
    if tickers:
        files = [f for f in files if f.name.split("_")[0] in tickers]
    tasks = [(str(f), t) for t in targets for f in files]
    rows = []
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns) as progress, ProcessPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("tickers x targets", total=len(tasks))
        futures = [
            pool.submit(run_one, f, t, models, train_end, test_start, test_end, overrides, seed) for f, t in tasks
        ]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            skills = "  ".join(f"{m} {row['models'][m]['skill']:+.3f}" for m in models if m != "persistence")
            progress.console.print(f"{row['ticker']:>6} {row['target']:<6} {skills}  ({row['seconds']:.0f} s)")
            progress.advance(task)
    return sorted(rows, key=lambda r: (targets.index(r["target"]), r["ticker"]))


def summarise(rows: list[dict], models: tuple[str, ...]) -> dict:
    """Per target and model: median skill, median RMSE ratio to persistence, wins, significant wins."""
    summary: dict = {}
    for target in dict.fromkeys(r["target"] for r in rows):
        group = [r for r in rows if r["target"] == target]
        summary[target] = {}
        for m in models:
            if m == "persistence":
                continue
            skills = [r["models"][m]["skill"] for r in group]
            pvalues = [r["models"][m]["dm_pvalue"] for r in group]
            summary[target][m] = {
                "median_skill": statistics.median(skills),
                "mean_skill": statistics.fmean(skills),
                "min_skill": min(skills),
                "median_rmse_ratio": statistics.median(1 - s for s in skills),
                "wins": sum(s > 0 for s in skills),
                "significant_wins": sum(
                    s > 0 and p is not None and p < 0.05 for s, p in zip(skills, pvalues, strict=True)
                ),
                "tickers": len(group),
            }
    return summary


def render(results: dict) -> str:
    models = results["models"]
    lines = [
        "# Accuracy benchmark: next-day forecasts on the 24 DJIA stocks",
        "",
        f"Train through {results['train_end']}, test {results['test_start']} .. {results['test_end'] or 'end'}; "
        f"project defaults{' with ' + str(results['overrides']) if results['overrides'] else ''}, "
        f"seed {results['seed']}.",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}; run time {results['seconds'] / 60:.1f} min with {results['jobs']} processes.",
        "",
        "skill = 1 - RMSE / RMSE(persistence) (above 0 beats persistence); p = Diebold-Mariano p-value "
        "against persistence (HLN-corrected, two-sided); * = significant at 5%.",
        "",
    ]
    lines += [*floor_lines(results), ""]
    for target, per_model in results["summary"].items():
        lines += [
            f"## Target: {target}",
            "",
            "| model | median skill | mean skill | worst skill | "
            "median RMSE / persistence | beats persistence | significantly |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m, s in per_model.items():
            lines.append(
                f"| {m} | {s['median_skill']:+.4f} | {s['mean_skill']:+.4f} | {s['min_skill']:+.4f} | "
                f"{s['median_rmse_ratio']:.4f} | {s['wins']}/{s['tickers']} | {s['significant_wins']}/{s['tickers']} |"
            )
        lines += ["", *paired_lines(results, target)]
        lines += [
            "",
            "| ticker | persistence RMSE | "
            + " | ".join(f"{m} RMSE | {m} skill (p)" for m in models if m != "persistence")
            + " |",
            "|---|---:|" + "---:|---:|" * (len(models) - 1),
        ]
        for r in (r for r in results["rows"] if r["target"] == target):
            cells = []
            for m in models:
                if m == "persistence":
                    continue
                v = r["models"][m]
                star = "*" if v["dm_pvalue"] is not None and v["dm_pvalue"] < 0.05 else ""
                p = "-" if v["dm_pvalue"] is None else f"{v['dm_pvalue']:.3f}"
                cells.append(f"{v['rmse']:.4f} | {v['skill']:+.4f} ({p}){star}")
            lines.append(f"| {r['ticker']} | {r['models']['persistence']['rmse']:.4f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def floor_lines(results: dict) -> list[str]:
    """The issue's floors for the networks, checked against this run's numbers."""
    summary, rows = results["summary"], results["rows"]
    if "high" not in summary or not {"lstm", "gru", "ridge"} <= set(results["models"]):
        return []
    lines = [
        "## Floors (next-day High, networks at the project defaults)",
        "",
        "| floor | lstm | gru |",
        "|---|---|---|",
    ]

    def mark(ok: bool, text: str) -> str:
        return f"{'met' if ok else 'MISSED'}: {text}"

    ibm = next((r for r in rows if r["ticker"] == "IBM" and r["target"] == "high"), None)
    if ibm is not None:
        cells = [mark(ibm["models"][m]["rmse"] <= 1.35, f"{ibm['models'][m]['rmse']:.3f}") for m in ("lstm", "gru")]
        lines.append(
            f"| IBM RMSE <= 1.35 (persistence {ibm['models']['persistence']['rmse']:.3f}) | " + " | ".join(cells) + " |"
        )
    high = summary["high"]
    cells = [
        mark(high[m]["wins"] == high[m]["tickers"], f"{high[m]['wins']}/{high[m]['tickers']}") for m in ("lstm", "gru")
    ]
    lines.append("| beats persistence on every ticker | " + " | ".join(cells) + " |")
    cells = [mark(high[m]["median_skill"] >= 0.13, f"{high[m]['median_skill']:+.4f}") for m in ("lstm", "gru")]
    lines.append("| median skill >= 0.13 | " + " | ".join(cells) + " |")
    ridge = high["ridge"]["median_skill"]
    cells = [
        mark(high[m]["median_skill"] >= ridge, f"{high[m]['median_skill']:+.4f} vs {ridge:+.4f}")
        for m in ("lstm", "gru")
    ]
    lines.append("| median skill >= ridge's | " + " | ".join(cells) + " |")
    if "close" in summary:
        close = summary["close"]
        cells = [
            mark(close[m]["median_rmse_ratio"] <= 1.01, f"{close[m]['median_rmse_ratio']:.4f}") for m in ("lstm", "gru")
        ]
        lines.append("| next-day Close: median RMSE / persistence <= 1.01 | " + " | ".join(cells) + " |")
    return lines


def paired_lines(results: dict, target: str) -> list[str]:
    """Each network against ridge, ticker by ticker: wins and a Wilcoxon signed-rank test on the
    RMSE differences, so that a difference in medians can be told from noise."""
    from scipy.stats import wilcoxon

    rows = [r for r in results["rows"] if r["target"] == target]
    lines = [
        "| network vs ridge | lower RMSE than ridge | median RMSE ratio to ridge | Wilcoxon p (paired) |",
        "|---|---:|---:|---:|",
    ]
    for m in ("lstm", "gru"):
        if m not in results["models"] or "ridge" not in results["models"]:
            continue
        ratios = [r["models"][m]["rmse"] / r["models"]["ridge"]["rmse"] for r in rows]
        diffs = [r["models"][m]["rmse"] - r["models"]["ridge"]["rmse"] for r in rows]
        p = wilcoxon(diffs).pvalue if len(rows) >= 6 else float("nan")
        lines.append(f"| {m} | {sum(d < 0 for d in diffs)}/{len(rows)} | {statistics.median(ratios):.4f} | {p:.3f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", default="", help="comma-separated tickers (default: all files)")
    parser.add_argument("--targets", default="high,close")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--train-end", default="2016-12-31")
    parser.add_argument("--test-start", default="2017-01-01")
    parser.add_argument("--test-end", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--name",
        help="results file name without extension (default: accuracy; accuracy-partial "
        "for a run off the defaults, so that a quick look never replaces the published file)",
    )
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the saved .json")
    args = parser.parse_args()
    out = ROOT / "bench" / "results"
    asked = {k: v for k, v in vars(args).items() if k not in ("name", "render", "jobs")}
    full = all(v == parser.get_default(k) for k, v in asked.items())
    args.name = args.name or ("accuracy" if full or args.render else "accuracy-partial")
    if args.render:
        results = json.loads((out / f"{args.name}.json").read_text())
        (out / f"{args.name}.md").write_text(render(results))
        return 0
    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    models = tuple(m for m in args.models.split(","))
    started = time.perf_counter()
    tickers = [t for t in args.tickers.split(",") if t]
    rows = run(
        tickers,
        args.targets.split(","),
        models,
        args.train_end,
        args.test_start,
        args.test_end,
        overrides,
        args.jobs,
        args.seed,
    )
    results = {
        "command": "python bench/accuracy.py " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "jobs": args.jobs,
        "train_end": args.train_end,
        "test_start": args.test_start,
        "test_end": args.test_end,
        "overrides": overrides,
        "seed": args.seed,
        "models": models,
        "seconds": round(time.perf_counter() - started),
        "rows": rows,
        "summary": summarise(rows, models),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(render(results))
    for target, per_model in results["summary"].items():
        print(
            target,
            "  ".join(
                f"{m}: median skill {s['median_skill']:+.4f} wins {s['wins']}/{s['tickers']}"
                for m, s in per_model.items()
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
