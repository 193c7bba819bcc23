"""Panel skill benchmark (issue 11, point 6): defaults chosen on validation, then the test once.

    PYTHONPATH=src python bench/panel.py --phase validation [--variant default|seed1|seed2|recent]
    PYTHONPATH=src python bench/panel.py --phase test [--target close] [--data ../shared/data/djia]
    PYTHONPATH=src python bench/panel.py --render      # rebuild panel.md/.json from the runs so far

Each run calls `evaluate_panel` (the API, not the CLI) once and writes its own record to
bench/results/panel-runs/<phase>-<data>-<target>-<variant>.json (so that runs can go one per
process: its peak resident memory is that run's), then panel.md / panel.json are rebuilt from
every record. Validation never reads a row after the validation year (the panel is cut there).

Spans: sp500 trains through 2017 and validates on 2018, tests 2019-01-01 .. 2020-05-14; DJIA (ends
2017-12-29) trains through 2015 and validates on 2016, tests 2017. Variants (validation only):
`seedN` the global networks with seed N; `patienceN` early stopping after N epochs without a better
validation loss (default 4); `recent` the training windows of the last 3 training years
drawn twice as often (each appears twice in the sampling pool); `ensN` an ensemble of N networks
(seeds 0..N-1, forecasts averaged); `market` the panel's causal market inputs appended to every
ticker's (on each date, from every ticker's row that day: mean return, cross-sectional dispersion
of returns, mean day range and its 5-day mean), for every global model, the ridge included;
`market+ensN` both; `mtl` multi-task heads (High, Low and Close of the next day at once, the loss averaged over the
three; the forecast reads the target's head); `valall` early stopping on every validation window
instead of a fixed sample of 20,000.
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
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from stockrnn.global_models import GlobalNetwork, global_config, make_global  # noqa: E402
from stockrnn.panel import Panel, load_panel  # noqa: E402
from stockrnn.panel_eval import DEFAULT_PANEL_MODELS, evaluate_panel  # noqa: E402
from stockrnn.windows import train_origins  # noqa: E402

from machine import describe  # noqa: E402

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
RECENT_YEARS = 3


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


class RecentNetwork(GlobalNetwork):
    """The global network with the windows of the last RECENT_YEARS training years twice in the
    sampling pool (so drawn twice as often); validation windows unchanged."""

    def windows(self, panel, train_start=None, train_end=None):
        w = super().windows(panel, train_start, train_end)
        c = self.config
        dates = np.concatenate(
            [f.index[train_origins(0, len(f), c.window, c.horizon)].to_numpy() for f in w.frames.values()]
        )
        end = max(f.index[-1] for f in w.frames.values())
        recent = w.fit[dates[w.fit] > np.datetime64(end - pd.DateOffset(years=RECENT_YEARS))]
        return replace(w, fit=np.sort(np.concatenate([w.fit, recent])))


def market_frame(panel) -> pd.DataFrame:
    """Causal market inputs by date: on day d, from every ticker's row on d (returns clipped to
    +-0.2 so one spliced series cannot move the market): the mean return, its cross-sectional
    dispersion and the mean day range (log high/low), and that range's 5-day trailing mean."""
    parts = []
    for prices in panel.values():
        f = prices.frame if hasattr(prices, "frame") else prices
        close = f["close"].to_numpy(dtype=float)
        ret = np.clip(np.diff(np.log(close), prepend=np.nan), -0.2, 0.2)
        rng = np.clip(np.log(f["high"].to_numpy(dtype=float) / f["low"].to_numpy(dtype=float)), 0, 0.2)
        parts.append(pd.DataFrame({"ret": ret, "rng": rng}, index=f.index))
    long = pd.concat(parts)
    by_day = long.groupby(level=0)
    market = pd.DataFrame(
        {
            "market_return": by_day["ret"].mean(),
            "market_dispersion": by_day["ret"].std(),
            "market_range": by_day["rng"].mean(),
        }
    ).sort_index()
    market["market_range_5"] = market["market_range"].rolling(5, min_periods=1).mean()
    return market.fillna(0.0)


class MarketFeatures:
    """PanelFeatures with the market's inputs on each row's date appended (rows <= i only)."""

    def __new__(cls, target: str, market: pd.DataFrame):
        from stockrnn.panel_features import PanelFeatures

        class _Market(PanelFeatures):
            def raw(self, frame):
                values, names = super().raw(frame)
                extra = market.reindex(frame.index, method="ffill").fillna(0.0)
                return np.column_stack([values, extra.to_numpy()]), [*names, *market.columns]

        return _Market(target)


def market_model(name: str, config):
    """A global model whose inputs include the panel's market inputs (variant `market`)."""
    import stockrnn.panel_forecaster as pf

    model = make_global(name, config)
    fit_panel = model.fit_panel

    def fit_with_market(panel, *args, **kwargs):
        market = market_frame(panel)
        original = pf.PanelFeatures
        pf.PanelFeatures = lambda target: MarketFeatures(target, market)
        try:
            return fit_panel(panel, *args, **kwargs)
        finally:
            pf.PanelFeatures = original

    model.fit_panel = fit_with_market
    return model


HEADS = ("high", "low", "close")  # variant `mtl`: the target's head first, then the other two


def multitask_model(name: str, config):
    """Variant `mtl`: a global network with one output per target in HEADS (the loss averages
    them); the forecast reads the first head only. Ridge is unchanged (its heads are independent)."""
    import stockrnn.panel_forecaster as pf
    from stockrnn.models import Ensemble, RecurrentNet
    from stockrnn.panel_features import PanelFeatures

    if name == "ridge":
        return make_global(name, config)
    heads = [config.target, *[h for h in HEADS if h != config.target]]

    class MultiFeatures(PanelFeatures):
        def targets(self, frame, origins, horizon):
            parts = []
            for head in heads:
                self.target = head
                parts.append(super().targets(frame, origins, horizon))
            self.target = heads[0]
            return np.concatenate(parts, axis=1)

    class MultiNetwork(GlobalNetwork):
        def _build(self):
            c = self.config
            return Ensemble(
                [RecurrentNet(self.cell, len(self.names_), c.units, c.layers, c.dropout, c.horizon * len(heads))
                 for _ in range(c.ensemble)]
            )  # fmt: skip

        def _predict_windows(self, x):
            return super()._predict_windows(x)[:, : self.config.horizon]

        def windows(self, panel, train_start=None, train_end=None):
            original = pf.PanelFeatures
            pf.PanelFeatures = MultiFeatures
            try:
                return super().windows(panel, train_start, train_end)
            finally:
                pf.PanelFeatures = original

    return MultiNetwork(name, config)


def variant_setup(variant: str, target: str) -> tuple[dict, object]:
    """(configs, global_factory) of a variant."""
    if variant == "default":
        return {}, None
    if variant.startswith("seed"):
        seed = int(variant[4:])
        return {n: global_config(n, target=target, seed=seed) for n in ("lstm", "gru")}, None
    if variant.startswith("patience"):
        patience = int(variant[8:])
        return {n: global_config(n, target=target, patience=patience) for n in ("lstm", "gru")}, None
    if variant == "mtl":
        return {}, multitask_model
    if variant == "valall":  # early stopping on every validation window, not a 20,000 sample
        import stockrnn.panel_training as pt

        pt.VAL_WINDOWS = 10**9
        return {}, None
    if variant == "market":
        return {}, market_model
    if variant.startswith("market+ens"):  # market inputs and an ensemble of N
        n = int(variant.removeprefix("market+ens"))
        return {k: global_config(k, target=target, ensemble=n) for k in ("lstm", "gru")}, market_model
    if variant.startswith("ens"):
        n = int(variant[3:])
        return {k: global_config(k, target=target, ensemble=n) for k in ("lstm", "gru")}, None
    if variant == "recent":
        return {}, lambda name, config: RecentNetwork(name, config) if name != "ridge" else make_global(name, config)
    raise SystemExit(f"unknown variant '{variant}'")


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


def run(args: argparse.Namespace) -> dict:
    data_name = args.data.resolve().name
    start, end = SPANS[data_name][args.phase]
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


def variants(records: list[dict]) -> list[str]:
    """One line per sp500 validation run and global network: the experiments side by side."""
    lines = [
        "| validation run (sp500 2018, high) | network | epochs | median skill | beats ridge (p) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in records:
        if r["phase"] != "validation" or r["data"] != "sp500":
            continue
        for name in ("lstm", "gru"):
            m = r["panel"]["models"].get(name)
            if m:
                lines.append(
                    f"| {r['variant']} | {name} | {r['epochs'].get(name)} | {m['median_skill']:.4f} | "
                    f"{m['beats_ridge']:.1%} ({m['wilcoxon_p_vs_ridge']:.2g}) |"
                )
    return lines


def render() -> None:
    records = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    order = {"validation": 0, "test": 1}
    records.sort(key=lambda r: (order[r["phase"]], r["data"] != "sp500", r["target"], r["variant"] != "default"))
    lines = ["# Panel skill: validation, then the test once", "", (ROOT / "bench" / "results" / "panel-notes.md")
             .read_text() if (ROOT / "bench" / "results" / "panel-notes.md").exists() else ""]  # fmt: skip
    lines += [*variants(records), ""]
    for r in records:
        s = r["settings"]
        lines += [
            f"## {r['phase']}: {r['data']}, {r['target']}, {r['variant']}",
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
        "--variant", default="default", help="default, seedN, patienceN, recent, ensN, market, mtl or valall"
    )
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
            path = folder / f"{phase}-{record['data']}-{args.target}-{args.variant}.json"
            path.write_text(json.dumps(record, indent=1, default=str) + "\n")
            print(json.dumps({n: m["median_skill"] for n, m in record["panel"]["models"].items()}), flush=True)
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
