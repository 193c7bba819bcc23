"""Speed-up of the engines on one per-ticker job: sequential, `--jobs 2` local processes, and an
embedded local Ray with 2 jobs, the same units in one run (issue 12, part 5).

    .venv/bin/python bench/engines.py                              # all 250 tickers, ridge + GRU
    .venv/bin/python bench/engines.py --tickers 20 --quick-units   # a smoke run (engines-partial.md)

The job: ../shared/data/sp500 (tickers without enough history before 2019 are skipped, as a panel
run skips them), one unit per ticker that fits fresh local models (ridge, and the GRU of the `quick`
preset) on the rows through 2018 and scores them on 2019-01-01 .. 2020-05-14. Every engine runs with
one torch thread per unit. Reported per engine: wall time (Ray's start-up shown apart), speed-up over
sequential, per-unit overhead = (jobs x wall - sum of the units' own wall times) / units (the worker
time not spent inside units: start-up, imports, transfers, idle at the end), and the peak resident
memory of each worker process. The per-ticker results must be identical across engines (asserted).
Floor (issue 12): `--jobs 2` at least 1.7x as fast as sequential on 2 cores; Ray within 15% of it.
Writes bench/results/engines.md and engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from engines_units import TEST_START, evaluate_ticker

from machine import describe

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = ROOT.parent / "shared" / "data" / "sp500"
RESULTS = BENCH / "results"
JOBS = 2
ENGINES = ("sequential", "local", "ray")
NEED_ROWS = 300  # rows before the test start: the GRU's window and its early-stopping tail, with room


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return describe().split(",")[0]


def load_job(folder: Path, tickers: int | None) -> dict:
    """{ticker: Prices} of the usable tickers, first `tickers` in name order."""
    from stockrnn.panel import load_panel

    panel = load_panel(folder, skip_bad=True).require_history(TEST_START, NEED_ROWS, target="high")
    panel = panel.require_test_rows(TEST_START)
    names = sorted(panel)[:tickers]
    return {name: panel[name] for name in names}


def make(engine: str):
    from stockrnn.runners import make_runner

    return make_runner(engine, jobs=1 if engine == "sequential" else JOBS, threads=1, seed=0)


def run_engine(engine: str, shared: dict, quick_units: bool) -> dict:
    """One engine on every unit: wall time, the per-ticker results, and the units' own times."""
    from stockrnn.runners import Unit, failures

    units = [Unit(t, evaluate_ticker, (t, quick_units)) for t in shared]
    runner = make(engine)
    started = time.perf_counter()
    with runner:  # Ray starts here (and stops at the end): timed apart from the run
        ready = time.perf_counter()
        outcomes = runner.run(units, shared=shared)
        wall = time.perf_counter() - ready
    bad = failures(outcomes)
    if bad:
        first = bad[0]
        raise SystemExit(f"{engine}: {len(bad)} unit(s) failed, first {first.key}: {first.error_type}: {first.error}")
    values = {key: outcomes[key].value for key in sorted(outcomes)}
    jobs = 1 if engine == "sequential" else JOBS
    unit_seconds = sum(v["seconds"] for v in values.values())
    peaks: dict[int, float] = {}
    for v in values.values():
        peaks[v["pid"]] = max(peaks.get(v["pid"], 0.0), v["max_rss_mb"])
    return {
        "engine": engine,
        "jobs": jobs,
        "threads": 1,
        "startup_seconds": round(ready - started, 2),
        "wall_seconds": round(wall, 2),
        "unit_seconds": round(unit_seconds, 2),
        "overhead_per_unit_seconds": round((jobs * wall - unit_seconds) / len(values), 3),
        "worker_peak_rss_mb": sorted(round(m) for m in peaks.values()),
        "results": {k: {"rmse": v["rmse"], "forecasts_sha256": v["forecasts_sha256"]} for k, v in values.items()},
    }


def ray_worker_path() -> None:
    """Ray's workers inherit the driver's environment: bench/ (the unit's module) and this checkout's source."""
    entries = [str(BENCH), str(ROOT / "src"), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(e for e in entries if e))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="Folder of per-ticker CSV files.")
    parser.add_argument("--tickers", type=int, help="Only the first N usable tickers (default: all).")
    parser.add_argument("--quick-units", action="store_true", help="Ridge only (a smoke run), no GRU.")
    parser.add_argument("--rounds", type=int, default=1, help="Repeat; each round turns the engines' order.")
    parser.add_argument("--engines", default=",".join(ENGINES), help="Comma-separated subset of the engines.")
    parser.add_argument(
        "--out",
        type=Path,
        help="Results files, without suffix (default: results/engines; "
        "engines-partial for a subset, so that a smoke run never replaces the published file).",
    )
    args = parser.parse_args()
    full = args.tickers is None and not args.quick_units and args.engines == parser.get_default("engines")
    args.out = args.out or RESULTS / ("engines" if full else "engines-partial")
    if not args.data.is_dir():
        print(f"engines.py: {args.data} not found (the shared S&P 500 data)", file=sys.stderr)
        return 2
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    ray_worker_path()
    command = "bench/engines.py " + shlex.join(sys.argv[1:])
    before, date = load_average(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shared = load_job(args.data, args.tickers)
    print(f"{len(shared)} tickers, engines {', '.join(engines)}, {args.rounds} round(s)", file=sys.stderr)
    runs = []
    for round_ in range(args.rounds):
        order = engines[round_ % len(engines) :] + engines[: round_ % len(engines)]
        for engine in order:
            run = run_engine(engine, shared, args.quick_units)
            run["round"] = round_
            runs.append(run)
            print(f"round {round_} {engine}: {run['wall_seconds']} s", file=sys.stderr)
    reference = runs[0]["results"]
    identical = all(run["results"] == reference for run in runs)
    assert identical, "per-ticker results differ between engines"
    summary = summarise(runs, engines)
    document = {
        "command": command,
        "date": date,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "describe": describe()},
        "load_average_before": before,
        "load_average_after": load_average(),
        "tickers": len(shared),
        "units": "ridge" if args.quick_units else "ridge + gru (quick preset)",
        "test_start": TEST_START,
        "identical_results": identical,
        "summary": summary,
        "runs": [{k: v for k, v in run.items() if k != "results"} for run in runs],
        "results": reference,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(document))
    print(markdown(document))
    return 0


def summarise(runs: list[dict], engines: list[str]) -> dict:
    """Per engine: the best wall time over the rounds, its speed-up over sequential, overhead, memory."""
    best = {e: min((r for r in runs if r["engine"] == e), key=lambda r: r["wall_seconds"]) for e in engines}
    base = best.get("sequential", {}).get("wall_seconds")
    out = {}
    for engine, run in best.items():
        out[engine] = {
            "wall_seconds": run["wall_seconds"],
            "startup_seconds": run["startup_seconds"],
            "speedup": round(base / run["wall_seconds"], 2) if base else None,
            "overhead_per_unit_seconds": run["overhead_per_unit_seconds"],
            "worker_peak_rss_mb": max(run["worker_peak_rss_mb"]),
        }
    if "local" in out and "ray" in out:
        out["ray_vs_local"] = round(out["ray"]["wall_seconds"] / out["local"]["wall_seconds"], 3)
    return out


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = [
        "# Engines: sequential, `--jobs 2` local processes, local Ray (2 jobs)",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {doc['machine']['cpu']}, {doc['machine']['cores']} cores; {doc['machine']['describe']}  ",
        f"Date: {doc['date']}; load average before {doc['load_average_before']}, after {doc['load_average_after']}",
        "",
        f"Job: {doc['tickers']} tickers of sp500, one unit per ticker ({doc['units']}), train through 2018, "
        f"test {doc['test_start']} .. end of data; 1 torch thread per unit in every engine. Best of "
        f"{max(r['round'] for r in doc['runs']) + 1} round(s).",
        "",
        "| engine | jobs | wall s | start-up s | speed-up | overhead s/unit | worker peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, row in s.items():
        if engine == "ray_vs_local":
            continue
        jobs = 1 if engine == "sequential" else JOBS
        lines.append(
            f"| {engine} | {jobs} | {row['wall_seconds']} | {row['startup_seconds']} | {row['speedup']} | "
            f"{row['overhead_per_unit_seconds']} | {row['worker_peak_rss_mb']} |"
        )
    lines += [
        "",
        f"Per-ticker results identical across engines (RMSE bits and a digest of every forecast): "
        f"{'yes' if doc['identical_results'] else 'NO'}.",
    ]
    if "ray_vs_local" in s:
        lines.append(f"Ray wall / local wall: {s['ray_vs_local']} (floor: at most 1.15).")
    if "local" in s and s["local"]["speedup"]:
        lines.append(f"Local speed-up over sequential: {s['local']['speedup']} (floor: at least 1.7 on 2 cores).")
    lines += [
        "",
        "Overhead per unit = (jobs x wall - sum of the units' own wall times) / units. Start-up (Ray's embedded",
        "cluster) is outside the wall time and shown apart. The sequential engine's peak RSS is the driver's.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
