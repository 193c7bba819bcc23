"""How much does pooling buy, by the number of tickers pooled? (issue 11, validation years only)

    PYTHONPATH=src python bench/panel_scale.py --year 2008 [--year 2018 ...] [--runs-only]

Why: the issue's floors (the global LSTM beating ridge_local on 90% of tickers, median skill 0.118)
come from a probe on 495 S&P 500 files; ../shared/data/sp500 has 250. If a global network gains
from more tickers, part of the gap to those floors is the panel's size, not the model. So the
default global LSTM and pooled ridge are trained on nested subsets of one year's panel (a quarter
within a half within all of it, drawn by a seeded permutation) and scored on the same tickers:
on the quarter by models pooled over the quarter, the half and the whole panel; on the half by the
half and the whole panel. And, as the probe did for unseen tickers, the models pooled over the half
forecast the other half, which they never saw, against the whole panel's models that saw it.

The whole panel's forecasts, ridge_local's and persistence's are those of bench/panel_blend.py's
default runs (same code, same defaults, cached in --blend-cache); ridge_local and persistence are
per ticker, so a subset changes nothing for them. The subsets' runs are cached in --cache so that
two processes can compute years side by side (`--runs-only`); the last call renders
bench/results/panel_scale.md and .json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from panel_blend import cache_file, forecasts, heading, parse_years, pct, publish, summary, year_parser  # noqa: E402
from stockrnn.global_models import make_global  # noqa: E402
from stockrnn.panel import Panel  # noqa: E402
from stockrnn.panel_eval import evaluate_panel  # noqa: E402
from stockrnn.panel_metrics import panel_scores  # noqa: E402

from panel import load  # noqa: E402

OUT = ROOT / "bench" / "results"
POOLED = ("lstm", "ridge")
SUBSET_SEED = 11  # the permutation that draws the nested subsets


def subsets(tickers: list[str]) -> dict[str, list[str]]:
    """Nested subsets of the sorted tickers: quarter within half within all."""
    order = list(np.random.default_rng(SUBSET_SEED).permutation(sorted(tickers)))
    return {"quarter": order[: len(order) // 4], "half": order[: len(order) // 2], "other": order[len(order) // 2 :]}


def subset_run(data: Path, year: int, pooled: list[str], unseen: list[str], path: Path) -> pd.DataFrame:
    """Step-1 forecasts of the global LSTM and ridge pooled over `pooled` (train through year - 1,
    score year) for the tickers of `pooled` (seen) and of `unseen` (never in their training)."""
    if path.exists():
        return pd.read_csv(path, parse_dates=["date"])
    start = time.perf_counter()
    panel = load(data, f"{year}-12-31", None)
    made: dict = {}

    def tracked(name, config):
        made[name] = make_global(name, config)
        return made[name]

    first, last = f"{year}-01-01", f"{year}-12-31"
    run = evaluate_panel(
        Panel({t: panel[t] for t in pooled}, source=panel.source), ",".join(POOLED),
        test_start=first, test_end=last, global_factory=tracked,
    )  # fmt: skip
    parts = [e.wide().reset_index().assign(ticker=t, seen=True) for t, e in run.evaluations.items()]
    for ticker in unseen:
        frame = panel[ticker].frame
        days = frame.index[(frame.index >= first) & (frame.index <= last)]
        columns = {name: made[name].rolling(panel[ticker], first, last)["step_1"].to_numpy() for name in POOLED}
        parts.append(pd.DataFrame({"date": days, **columns}).assign(ticker=ticker, seen=False))
    table = pd.concat(parts, ignore_index=True)[["ticker", "date", "seen", *POOLED]]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    table.to_csv(partial, index=False)
    partial.replace(path)
    print(f"{year} {path.stem}: {len(pooled)} pooled, {time.perf_counter() - start:.0f} s", flush=True)
    return table


def year_runs(data: Path, year: int, blend_cache: Path, cache: Path) -> dict[str, pd.DataFrame]:
    """The whole panel's run and the two subset runs of `year`, step-1 forecasts by ticker/date."""
    whole = forecasts(data, year, blend_cache)
    sets = subsets(list(whole["ticker"].unique()))
    runs = {"all": whole}
    for name, unseen in (("quarter", []), ("half", sets["other"])):
        runs[name] = subset_run(data, year, sets[name], unseen, cache_file(cache, data, f"{year}-{name}"))
    return runs


def aligned(whole: pd.DataFrame, run: pd.DataFrame, name: str) -> pd.Series:
    """`run`'s forecasts of model `name` on `whole`'s rows (ticker, date)."""
    keyed = run.set_index(["ticker", "date"])[name]
    return pd.Series(keyed.reindex(pd.MultiIndex.from_frame(whole[["ticker", "date"]])).to_numpy(), index=whole.index)


def year_scale(data: Path, year: int, blend_cache: Path, cache: Path) -> dict:
    """Scores of the pooled models by pool size on fixed sets of tickers, for one validation year."""
    runs = year_runs(data, year, blend_cache, cache)
    whole = runs["all"]
    sets = subsets(list(whole["ticker"].unique()))
    checks = {  # scored set -> the pools whose models score it
        "quarter": ("quarter", "half", "all"),
        "half": ("half", "all"),
        "other": ("half", "all"),  # the half's models never saw these tickers
    }
    result = {"year": year, "sizes": {k: len(v) for k, v in sets.items()} | {"all": int(whole["ticker"].nunique())}}
    for scored, pools in checks.items():
        table = whole[whole["ticker"].isin(sets[scored])]
        columns = {f"{m}@{p}": table[m] if p == "all" else aligned(table, runs[p], m) for m in POOLED for p in pools}
        missing = [k for k, v in columns.items() if v.isna().any()]
        if missing:
            raise SystemExit(f"{year} {scored}: {', '.join(missing)} lack forecasts for some scored rows")
        columns |= {"ridge_local": table["ridge_local"], "persistence": table["persistence"]}
        rmse_skill = summary(table, columns)
        s = panel_scores(rmse_skill)
        rmse = rmse_skill.pivot_table(index="ticker", columns="model", values="rmse", aggfunc="first")
        models = {}
        for p in pools:
            for m in POOLED:
                k = f"{m}@{p}"
                models[k] = {key: s[k][key] for key in ("median_skill", "mean_skill", "beats_ridge_local",
                                                        "wilcoxon_p_vs_ridge_local")}  # fmt: skip
            models[f"lstm@{p}"]["beats_ridge_same_pool"] = float(np.mean(rmse[f"lstm@{p}"] < rmse[f"ridge@{p}"]))
        result[scored] = {"tickers": len(sets[scored]), "models": models,
                          "ridge_local_median_skill": s["ridge_local"]["median_skill"]}  # fmt: skip
    return result


SCORED = {
    "quarter": "the quarter (every pool saw them)",
    "half": "the half (both pools saw them)",
    "other": "the other half (the half's models never saw them)",
}


def render(record: dict) -> str:
    lines = heading("What pooling buys, by the number of tickers pooled (validation years)", record) + [
        "`M@pool`: the default global model M (LSTM or pooled ridge) trained on the pool's tickers",
        "(quarter within half within all, a seeded draw), scored on the row's set of tickers. ridge_local",
        "is per ticker, the same in every row. *vs ridge, same pool*: share of tickers where the LSTM",
        "beats the pooled ridge trained on the same pool. Means over the years at the end.",
        "",
    ]
    means: dict = {}
    for y in record["years"]:
        sizes = y["sizes"]
        lines += [
            f"## {y['year']} (pools: quarter {sizes['quarter']}, half {sizes['half']}, all {sizes['all']} tickers)",
            "",
            "| scored on | model@pool | median skill | mean skill | beats ridge_local (p) | vs ridge, same pool |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for scored, label in SCORED.items():
            block = y[scored]
            for k, m in block["models"].items():
                lines.append(
                    f"| {label} | {k} | {m['median_skill']:.4f} | {m['mean_skill']:.4f} | "
                    f"{pct(m['beats_ridge_local'])} ({m['wilcoxon_p_vs_ridge_local']:.1g}) | "
                    f"{pct(m.get('beats_ridge_same_pool'))} |"
                )
                for key in ("median_skill", "beats_ridge_local", "beats_ridge_same_pool"):
                    if m.get(key) is not None:
                        means.setdefault((scored, k, key), []).append(m[key])
            lines.append(f"| {label} | ridge_local | {block['ridge_local_median_skill']:.4f} | | | |")
        lines.append("")
    lines += [
        f"## Means over {len(record['years'])} years",
        "",
        "| scored on | model@pool | median skill | beats ridge_local | vs ridge, same pool |",
        "|---|---|---:|---:|---:|",
    ]
    for scored, k in dict.fromkeys((s, k) for s, k, _ in means):
        row = [np.mean(means[(scored, k, key)]) if (scored, k, key) in means else None
               for key in ("median_skill", "beats_ridge_local", "beats_ridge_same_pool")]  # fmt: skip
        lines.append(f"| {SCORED[scored]} | {k} | {row[0]:.4f} | {pct(row[1])} | {pct(row[2])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = year_parser(__doc__, "/tmp/stockrnn-panel-scale")
    parser.add_argument("--blend-cache", type=Path, default=Path("/tmp/stockrnn-panel-blend"))
    args = parse_years(parser)
    if args.runs_only:
        for y in args.year:
            year_runs(args.data, y, args.blend_cache, args.cache)
        return 0
    years = [year_scale(args.data, y, args.blend_cache, args.cache) for y in args.year]
    return publish("panel_scale", years, render)


if __name__ == "__main__":
    raise SystemExit(main())
