"""Panel skill benchmark (issue 11, point 6): defaults chosen on validation, then the test once.

    PYTHONPATH=src python bench/panel.py --phase validation [--variant default|seed1|ema|...] [--year 2008]
    PYTHONPATH=src python bench/panel.py --phase test [--target close] [--data ../shared/data/djia]
    PYTHONPATH=src python bench/panel.py --render      # rebuild panel.md/.json from the runs so far

Each run calls `evaluate_panel` (the API, not the CLI) once and writes its own record to
bench/results/panel-runs/<phase>-<data>-<target>-<variant>.json (so that runs can go one per
process: its peak resident memory is that run's), then panel.md / panel.json are rebuilt from
every record. Validation never reads a row after the validation year (the panel is cut there).

Spans: sp500 trains through 2017 and validates on 2018, tests 2019-01-01 .. 2020-05-14; with
`--year Y` (sp500, validation only) it trains through Y - 1 and validates on Y instead, so that
settings are judged on several years (2008, 2011 and 2015 besides 2018: a crash, a summer of
turmoil, a calm year). DJIA (ends 2017-12-29) trains through 2015 and validates on 2016, tests
2017. The variants (validation only) are in bench/panel_variants.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from stockrnn.global_models import make_global  # noqa: E402
from stockrnn.panel import Panel, load_panel  # noqa: E402
from stockrnn.panel_eval import DEFAULT_PANEL_MODELS, evaluate_panel  # noqa: E402

from machine import describe  # noqa: E402
from panel_variants import variant_setup  # noqa: E402

RUNS = ROOT / "bench" / "results" / "panel-runs"
OUT = ROOT / "bench" / "results" / "panel"
SPANS = {  # data set -> phase -> (test start, test end)
    "sp500": {"validation": ("2018-01-01", "2018-12-31"), "test": ("2019-01-01", "2020-05-14")},
    "djia": {"validation": ("2016-01-01", "2016-12-31"), "test": ("2017-01-01", "2017-12-31")},
}
FLOORS = {  # issue 11 point 6, for the global LSTM and GRU on sp500 (test)
    "beats_persistence": (">=", 0.99),
    "median_skill": (">=", 0.118),
    "beats_ridge_local": (">=", 0.90),
    "beats_ridge": (">", 0.5),
    "wilcoxon_p_vs_ridge": ("<", 0.01),
}


def default_data() -> Path:
    """../shared/data/sp500 beside the repo (main's layout), else one level up (a worktree's)."""
    near = ROOT.parent / "shared" / "data" / "sp500"
    return near if near.exists() else ROOT.parent.parent / "shared" / "data" / "sp500"


def peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(data: Path, end: str | None, tickers: int | None) -> Panel:
    """The panel, cut after `end` (nothing later is read), optionally its first `tickers` files."""
    panel = load_panel(data, skip_bad=True)
    names = list(panel)[:tickers] if tickers else list(panel)
    cut = pd.Timestamp(end) if end else None
    kept = {t: panel[t].slice(end=cut) for t in names}
    empty = [{"ticker": t, "reason": f"no rows up to {end}"} for t, p in kept.items() if p.frame.empty]
    kept = {t: p for t, p in kept.items() if not p.frame.empty}
    return Panel(kept, [*panel.skipped, *empty], panel.source)


def machine() -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        model = ""
    return {"describe": describe(), "cpu": model, "cores": os.cpu_count(), "threads": torch.get_num_threads()}


def commit() -> str:
    """The code a run measured: the short commit, with "+changes" when the tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def span(data_name: str, phase: str, year: int | None) -> tuple[str, str]:
    """(first, last) scored day: the phase's span, or with `year` (sp500 validation) that year."""
    if year is None:
        return SPANS[data_name][phase]
    if data_name != "sp500" or phase != "validation" or not 2001 <= year <= 2018:
        raise SystemExit("--year is for sp500 validation runs, 2001 .. 2018 (2019 on is the test)")
    return f"{year}-01-01", f"{year}-12-31"


def run(args: argparse.Namespace) -> dict:
    data_name = args.data.resolve().name
    start, end = span(data_name, args.phase, args.year)
    models = args.models or ",".join(DEFAULT_PANEL_MODELS)
    configs, factory = variant_setup(args.variant, args.target)
    made: dict = {}

    def tracked(name, config):
        made[name] = (factory or make_global)(name, config)
        return made[name]

    record: dict = {
        "phase": args.phase,
        "data": data_name,
        "target": args.target,
        "variant": args.variant,
        "year": int(start[:4]) if args.phase == "validation" else None,
        "commit": commit(),
        "command": "PYTHONPATH=src python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "span": {"test_start": start, "test_end": end},
    }
    t0 = time.perf_counter()
    panel = load(args.data, end if args.phase == "validation" else None, args.tickers)
    record["load_seconds"] = time.perf_counter() - t0
    marks: list[tuple[str, float]] = []
    loads: list[float] = []

    def progress(unit: str, done: int, total: int) -> None:
        marks.append((unit, time.perf_counter()))
        loads.append(os.getloadavg()[0])
        if unit.endswith("(global)") or done % 50 == 0 or done == total:
            print(f"{done}/{total} {unit} {time.perf_counter() - t0:.0f}s load {loads[-1]:.1f}", flush=True)

    t1 = time.perf_counter()
    result = evaluate_panel(
        panel, models=models, test_start=start, test_end=end, configs=configs or None,
        on_progress=progress, global_factory=tracked, target=args.target,
    )  # fmt: skip
    record["evaluate_seconds"] = time.perf_counter() - t1
    fits, previous = {}, t1
    for unit, at in marks:
        if unit.endswith("(global)"):
            fits[unit.split()[0]] = at - previous
        previous = at
    record["global_fit_seconds"] = fits
    record["load_during"] = {"mean": float(np.mean(loads)) if loads else None, "max": max(loads, default=None)}
    record["load_after"] = os.getloadavg()
    record["peak_mb"] = peak_mb()
    record["panel"] = {k: result.panel[k] for k in ("models", "skipped", "failed")}
    record["settings"] = result.panel["settings"]
    record["epochs"] = {n: [len(x) for x in getattr(m, "losses_", [])] for n, m in made.items()}
    return record


def floors(models: dict) -> list[str]:
    lines = []
    for name in ("lstm", "gru"):
        if name not in models:
            continue
        for key, (op, bound) in FLOORS.items():
            value = models[name].get(key)
            ok = value is not None and {">=": value >= bound, ">": value > bound, "<": value < bound}[op]
            shown = "n/a" if value is None else f"{value:.4g}"
            lines.append(f"- {'PASS' if ok else 'FAIL'}: global {name} {key} {shown} {op} {bound}")
    return lines


def table(record: dict) -> list[str]:
    def f(v, fmt=".3f"):
        return "" if v is None else format(v, fmt)

    lines = [
        "| model | tickers | beats persistence | median skill | mean skill | beats ridge_local (p) | "
        "beats ridge (p) | rank IC mean (t) | IC > 0 days |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in record["panel"]["models"].items():
        lines.append(
            f"| {name} | {m['tickers']} | {f(m['beats_persistence'], '.1%')} | {f(m['median_skill'], '.4f')} | "
            f"{f(m['mean_skill'], '.4f')} | {f(m['beats_ridge_local'], '.1%')} "
            f"({f(m['wilcoxon_p_vs_ridge_local'], '.2g')}) | "
            f"{f(m['beats_ridge'], '.1%')} ({f(m['wilcoxon_p_vs_ridge'], '.2g')}) | "
            f"{f(m['rank_ic_mean'], '.4f')} ({f(m['rank_ic_t'], '.1f')}) | {f(m['rank_ic_positive_days'], '.0%')} |"
        )
    return lines


def code(record: dict) -> str:
    return record.get("commit", "before 6d3066b")


def year(record: dict) -> int:
    """The validation year of a record (the records before --year existed were all 2018)."""
    return record.get("year") or int(record["settings"]["test_start"][:4])


def variants(records: list[dict]) -> list[str]:
    """One line per sp500 validation run (High) and global network: the experiments side by side."""
    lines = [
        "| year | variant | code | network | epochs | median skill | mean skill | beats ridge_local "
        "| beats ridge (p) |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r["phase"] != "validation" or r["data"] != "sp500" or r["target"] != "high":
            continue
        for name in ("lstm", "gru"):
            m = r["panel"]["models"].get(name)
            if m:
                local = "" if m.get("beats_ridge_local") is None else f"{m['beats_ridge_local']:.1%}"
                ridge = m.get("beats_ridge")
                ridge = "" if ridge is None else f"{ridge:.1%} ({m['wilcoxon_p_vs_ridge']:.2g})"
                lines.append(
                    f"| {year(r)} | {r['variant']} | {code(r)} | {name} | {r['epochs'].get(name)} | "
                    f"{m['median_skill']:.4f} | {m['mean_skill']:.4f} | {local} | {ridge} |"
                )
    return lines


SEEDS = ("default", "seed1", "seed2")  # the default settings with seeds 0, 1 and 2


def years(records: list[dict]) -> list[str]:
    """The default settings on each sp500 validation year (High), over seeds 0-2 where all three
    ran with the current code: how far the comparisons move from one year to the next."""
    runs: dict = {}
    for r in records:
        sp500_high = r["data"] == "sp500" and r["target"] == "high"
        if r["phase"] == "validation" and sp500_high and "commit" in r and r["variant"] in SEEDS:
            runs.setdefault(year(r), {})[r["variant"]] = r["panel"]["models"]
    lines = [
        "| year | network | median skill | beats ridge_local (seeds) | beats ridge (seeds) | ridge_local | ridge |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for y in sorted(runs):
        if set(runs[y]) != set(SEEDS):
            continue
        for name in ("lstm", "gru"):
            got = [runs[y][s][name] for s in SEEDS]
            shares = {k: [m[k] for m in got] for k in ("beats_ridge_local", "beats_ridge")}
            spread = {k: f"{np.mean(v):.1%} ({min(v):.0%}-{max(v):.0%})" for k, v in shares.items()}
            lines.append(
                f"| {y} | {name} | {np.mean([m['median_skill'] for m in got]):.4f} | {spread['beats_ridge_local']} | "
                f"{spread['beats_ridge']} | {runs[y]['default']['ridge_local']['median_skill']:.4f} | "
                f"{runs[y]['default']['ridge']['median_skill']:.4f} |"
            )
    return lines if len(lines) > 2 else []


def render() -> None:
    # Every record but the smoke runs', those of earlier code in folders of their own (before-<commit>/).
    records = [json.loads(p.read_text()) for p in sorted(RUNS.rglob("*.json")) if "smoke" not in p.parts]
    order = {"validation": 0, "test": 1}
    records.sort(
        key=lambda r: (
            order[r["phase"]], r["data"] != "sp500", r["target"], "commit" not in r, -year(r) if r["phase"] ==
            "validation" else 0, r["variant"] != "default", r["variant"],
        )
    )  # fmt: skip
    lines = ["# Panel skill: validation, then the test once", "", (ROOT / "bench" / "results" / "panel-notes.md")
             .read_text() if (ROOT / "bench" / "results" / "panel-notes.md").exists() else ""]  # fmt: skip
    table_of_years = years(records)
    if table_of_years:
        lines += [
            "Validation years (sp500, High; train through the year before; the default settings, mean of seeds "
            "0-2, the range over the seeds in brackets; ridge_local and ridge: median skill):",
            "",
            *table_of_years,
            "",
            "Every validation run:",
            "",
        ]
    lines += [*variants(records), ""]
    for r in records:
        s = r["settings"]
        lines += [
            f"## {r['phase']}{' ' + str(year(r)) if r['phase'] == 'validation' else ''}: {r['data']}, "
            f"{r['target']}, {r['variant']} (code {code(r)})",
            "",
            f"Train {s['train_start'] or 'from the start'} .. {s['train_end']}, "
            f"score {s['test_start']} .. {s['test_end']}; "
            f"{s['tickers_evaluated']} of {s['tickers_loaded']} tickers evaluated, {len(r['panel']['failed'])} failed.",
            "",
            *table(r),
            "",
        ]
        if r["phase"] == "test" and r["data"] == "sp500" and r["target"] == "high":
            total = r["evaluate_seconds"] + r["load_seconds"]
            lines += [
                "Floors (issue 11 point 6; point 7 for time and memory):",
                "",
                *floors(r["panel"]["models"]),
                f"- {'PASS' if total <= 600 else 'FAIL'}: loading + evaluate {total:.0f} s <= 600 s",
                f"- {'PASS' if r['peak_mb'] < 2048 else 'FAIL'}: peak RSS {r['peak_mb']:.0f} MB < 2048 MB",
                "",
            ]
        fits = ", ".join(f"{k} {v:.0f} s, epochs {r['epochs'].get(k)}" for k, v in r["global_fit_seconds"].items())
        lines += [
            f"Whole evaluate {r['evaluate_seconds']:.0f} s (global fits: {fits}; loading {r['load_seconds']:.0f} s); "
            f"peak RSS {r['peak_mb']:.0f} MB; load average before {r['load_before'][0]:.1f}, during mean "
            f"{r['load_during']['mean']:.1f} / max {r['load_during']['max']:.1f}, after {r['load_after'][0]:.1f} "
            f"(a shared 2-core machine: under load the wall time overstates a quiet run's).",
            "",
            f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, torch threads {r['machine']['threads']}; "
            f"{r['date']}. Command: `{r['command']}`",
            "",
        ]
    OUT.with_suffix(".md").write_text("\n".join(lines).rstrip() + "\n")
    OUT.with_suffix(".json").write_text(json.dumps({"runs": records}, indent=1, default=str) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("validation", "test", "both"), default="both")
    parser.add_argument("--data", type=Path, default=default_data(), help="default: ../shared/data/sp500")
    parser.add_argument("--target", choices=("high", "close"), default="high")
    parser.add_argument(
        "--variant",
        default="default",
        help="default, seedN, patienceN, recent, ensN, market, market+ensN, mtl, valall, ema, weighted, "
        "weighted+ema, volunits, volunits+raw, volunits+ema, localheads, longvol or refit (bench/panel_variants.py)",
    )
    parser.add_argument("--year", type=int, help="sp500 validation: train through YEAR - 1, score YEAR (default 2018)")
    parser.add_argument("--models", help="panel models (default: lstm,gru,ridge,ridge_local,persistence)")
    parser.add_argument("--tickers", type=int, help="only the first N tickers (a smoke run)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--render", action="store_true", help="only rebuild panel.md/.json from the records")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.render:
        RUNS.mkdir(parents=True, exist_ok=True)
        for phase in ("validation", "test") if args.phase == "both" else (args.phase,):
            record = run(argparse.Namespace(**{**vars(args), "phase": phase}))
            folder = RUNS / "smoke" if args.tickers else RUNS  # smoke runs stay out of the results
            folder.mkdir(exist_ok=True)
            fold = f"-{args.year}" if args.year and args.year != 2018 else ""
            path = folder / f"{phase}{fold}-{record['data']}-{args.target}-{args.variant}.json"
            path.write_text(json.dumps(record, indent=1, default=str) + "\n")
            print(json.dumps({n: m["median_skill"] for n, m in record["panel"]["models"].items()}), flush=True)
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
