"""Does the global network know something ridge_local does not? A per-ticker blend, weight chosen
the year before (issue 11, validation years only).

    PYTHONPATH=src python bench/panel_blend.py --year 2008 [--year 2018 ...] [--runs-only]

Why: the global network beats ridge_local on most tickers in every year but never on 90% of them;
bench/panel_pairs.py showed that the equal-weight average of the two does better than either. If a
blend w * network + (1 - w) * ridge_local beats ridge_local on far more tickers than the network
alone, the network carries information the per-ticker ridge lacks (and the filer can decide whether
such a blend is the product's global model). The same blend of the POOLED ridge with ridge_local is
the bar: a network that earns its name must beat it too.

For each scored year Y the weight w (0 .. 1 by 0.05) of each global model is chosen on year Y - 1
(a panel run trained through Y - 2, scoring Y - 1: all inside Y's training span), minimising the
mean over tickers of MSE(blend) / MSE(persistence); then the models of Y's run (trained through
Y - 1, the defaults) are blended with that w and scored on Y. Each year's run is one default
`evaluate_panel` (lstm, gru, ridge, ridge_local, persistence); its step-1 forecasts are kept in
--cache so that two processes can compute years side by side (`--runs-only`) and the last one
renders. Writes bench/results/panel_blend.md and .json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from stockrnn.panel_eval import evaluate_panel  # noqa: E402
from stockrnn.panel_metrics import panel_scores  # noqa: E402

from machine import describe  # noqa: E402
from panel import commit, default_data, load  # noqa: E402

OUT = ROOT / "bench" / "results"
MODELS = ("lstm", "gru", "ridge", "ridge_local", "persistence")
GLOBAL = ("lstm", "gru", "ridge")
WEIGHTS = np.round(np.arange(0, 1.0001, 0.05), 2)


def cache_file(cache: Path, data: Path, name: str) -> Path:
    """A cached run's file, named after the data folder (its path, its files and their sizes) too, so
    that a run over other data never reads it."""
    files = sorted((p.name, p.stat().st_size) for p in Path(data).iterdir() if p.is_file())
    key = hashlib.sha256(f"{Path(data).resolve()}|{files}".encode()).hexdigest()[:10]
    return cache / f"{key}-{name}.csv"


def forecasts(data: Path, year: int, cache: Path) -> pd.DataFrame:
    """Step-1 forecasts of one default panel run scoring `year` (train through year - 1): columns
    ticker, date, actual and one per model; from the cache when it holds them (same data)."""
    path = cache_file(cache, data, str(year))
    if path.exists():
        return pd.read_csv(path, parse_dates=["date"])
    start = time.perf_counter()
    panel = load(data, f"{year}-12-31", None)
    run = evaluate_panel(panel, ",".join(MODELS), test_start=f"{year}-01-01", test_end=f"{year}-12-31")
    table = pd.concat([e.wide().reset_index().assign(ticker=t) for t, e in run.evaluations.items()], ignore_index=True)[
        ["ticker", "date", "actual", *MODELS]
    ]
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    table.to_csv(partial, index=False)
    partial.replace(path)
    print(f"{year}: {table['ticker'].nunique()} tickers, {time.perf_counter() - start:.0f} s", flush=True)
    return table


def mse(table: pd.DataFrame, column: pd.Series) -> pd.Series:
    """Per-ticker mean squared error of `column` against the actual."""
    return ((column - table["actual"]) ** 2).groupby(table["ticker"]).mean()


def blended(table: pd.DataFrame, name: str, w: float) -> pd.Series:
    return w * table[name] + (1 - w) * table["ridge_local"]


def choose_weight(table: pd.DataFrame, name: str) -> tuple[float, list[float]]:
    """The w of WEIGHTS with the lowest mean over tickers of MSE(blend) / MSE(persistence)."""
    base = mse(table, table["persistence"])
    losses = [float((mse(table, blended(table, name, w)) / base).mean()) for w in WEIGHTS]
    return float(WEIGHTS[int(np.argmin(losses))]), losses


def summary(table: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """summary.csv's ticker/model/rmse/skill for `columns` (name -> forecasts), for panel_scores."""
    base = np.sqrt(mse(table, table["persistence"]))
    rows = []
    for name, column in columns.items():
        rmse = np.sqrt(mse(table, column))
        rows.append(pd.DataFrame({"ticker": rmse.index, "model": name, "rmse": rmse.values, "skill": 1 - rmse / base}))
    return pd.concat(rows, ignore_index=True)


def year_blend(data: Path, year: int, cache: Path) -> dict:
    """Weights chosen on year - 1, applied to year's run; panel scores of every blend and model."""
    before, scored = forecasts(data, year - 1, cache), forecasts(data, year, cache)
    chosen = {name: choose_weight(before, name) for name in GLOBAL}
    columns = {name: scored[name] for name in MODELS}
    for name in GLOBAL:
        columns[f"{name}+rl@{chosen[name][0]:.2f}"] = blended(scored, name, chosen[name][0])
        columns[f"{name}+rl@0.50"] = blended(scored, name, 0.5)
    table = summary(scored, columns)
    scores = panel_scores(table)
    # against the pooled ridge's own blend (same rule for choosing w): the fair linear bar
    bar = f"ridge+rl@{chosen['ridge'][0]:.2f}"
    rmse = table.pivot_table(index="ticker", columns="model", values="rmse", aggfunc="first")
    for name in columns:
        scores[name]["beats_ridge_blend"] = float(np.mean(rmse[name] < rmse[bar])) if name != bar else None
    return {
        "year": year,
        "weights_from": year - 1,
        "tickers": int(scored["ticker"].nunique()),
        "weights": {name: {"w": w, "losses": losses} for name, (w, losses) in chosen.items()},
        "ridge_blend": bar,
        "models": {
            name: {
                k: scores[name][k]
                for k in (
                    "median_skill",
                    "mean_skill",
                    "beats_persistence",
                    "beats_ridge_local",
                    "wilcoxon_p_vs_ridge_local",
                    "beats_ridge",
                    "beats_ridge_blend",
                )
            }
            for name in columns
        },  # fmt: skip
    }


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def heading(title: str, record: dict) -> list[str]:
    """A results page's title and the line saying what ran it, when, on which code and machine."""
    return [
        f"# {title}",
        "",
        f"Command: `{record['command']}` ({record['date']}, code {record['commit']}). Machine: {record['machine']}.",
        "",
    ]


def render(record: dict) -> str:
    lines = heading("The global models blended with ridge_local, ticker by ticker (validation years)", record) + [
        "`M+rl@w`: w * M + (1 - w) * ridge_local per ticker and day, w chosen on the year before (a run",
        "trained two years back, see bench/panel_blend.py) or fixed at 0.50. *vs ridge blend*: share",
        "of tickers with a lower RMSE than the pooled ridge blended with ridge_local by the same rule.",
        "",
    ]
    for y in record["years"]:
        w = ", ".join(f"{n} {v['w']:.2f}" for n, v in y["weights"].items())
        lines += [
            f"## {y['year']} ({y['tickers']} tickers; weights chosen on {y['weights_from']}: {w})",
            "",
            "| model | median skill | mean skill | beats persistence | beats ridge_local (p) "
            "| beats pooled ridge | vs ridge blend |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, m in y["models"].items():
            p = m["wilcoxon_p_vs_ridge_local"]
            lines.append(
                f"| {name} | {m['median_skill']:.4f} | {m['mean_skill']:.4f} | {pct(m['beats_persistence'])} "
                f"| {pct(m['beats_ridge_local'])}{'' if p is None else f' ({p:.0e})'} "
                f"| {pct(m['beats_ridge'])} | {pct(m['beats_ridge_blend'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def year_parser(doc: str, cache: str) -> argparse.ArgumentParser:
    """The arguments of a script over validation years whose default runs are cached."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=int, action="append", required=True, help="sp500 validation year, <= 2018")
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--cache", type=Path, default=Path(cache))
    parser.add_argument("--runs-only", action="store_true", help="only compute (and cache) the runs of --year")
    return parser


def parse_years(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed arguments, stopping on a --year that is not a validation year."""
    args = parser.parse_args()
    if any(not 2002 <= y <= 2018 for y in args.year):
        raise SystemExit("--year is a validation year, 2002 .. 2018 (2019 on is the test)")
    return args


def publish(script: str, years: list[dict], render) -> int:
    """Write bench/results/<script>.json and .md (the command, date, code and machine with the
    years' results) and print the page."""
    record = {
        "command": f"PYTHONPATH=src python bench/{script}.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit(),
        "machine": describe(),
        "years": years,
    }
    (OUT / f"{script}.json").write_text(json.dumps(record, indent=1) + "\n")
    (OUT / f"{script}.md").write_text(render(record))
    print(render(record))
    return 0


def main() -> int:
    args = parse_years(year_parser(__doc__, "/tmp/stockrnn-panel-blend"))
    if args.runs_only:
        for y in args.year:
            forecasts(args.data, y, args.cache)
        return 0
    return publish("panel_blend", [year_blend(args.data, y, args.cache) for y in args.year], render)


if __name__ == "__main__":
    raise SystemExit(main())
