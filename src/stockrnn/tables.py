"""The printed tables of the command line: data summary, scores, trading diagnostic, folds,
forecasts. Printing only; the numbers come from metrics.json's dictionaries."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from .backtest import Backtest
from .data import Prices
from .evaluate import Evaluation
from .progress import strong


def print_data(console: Console, prices: Prices) -> None:
    console.print(
        strong(
            (prices.name, "bold"),
            f": {len(prices)} rows, {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}; "
            f"repairs: {prices.repairs.summary()}",
        )
    )
    missing = prices.missing_ohlc
    if missing:
        console.print(
            f"  no {', '.join(missing)} column(s): the inputs built from them (open gap, high and low ranges, "
            "range means) are left out, and intervals scale with recent close-to-close moves"
        )


def print_folds(console: Console, result: Backtest) -> None:
    """One row per fold: its dates and each model's next-day RMSE."""
    table = Table(title="folds: next-day RMSE", title_justify="left")
    for column in ("fold", "trained on", "forecasts", *result.models):
        table.add_column(column, justify="right" if column in result.models else "left", no_wrap=True)
    for fold in result.folds:
        rmse = [fold["models"][name]["rmse"] for name in result.models]
        table.add_row(
            str(fold["fold"]), f"{fold['train_start']} .. {fold['train_end']}",
            f"{fold['test_start']} .. {fold['test_end']}", *(f"{v:.4f}" for v in rmse),
        )  # fmt: skip
    console.print(table)


def print_forecast(console: Console, table: pd.DataFrame, title: str) -> None:
    out = Table(title=title, title_justify="left")
    out.add_column("date")
    for column in table.columns:
        out.add_column(column, justify="right")
    for day, row in table.iterrows():
        out.add_row(f"{day:%Y-%m-%d}", *(f"{v:.6g}" for v in row))
    console.print(out)


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def lag_cell(name: str, m: dict) -> str:
    """The lag column: the best-matching lag, and whether the forecast only follows the price."""
    if name == "persistence":
        return "repeats"
    lag = fmt(m["best_lag"], "d")
    return f"{lag} follows" if m.get("follows_price") else lag


def print_table(console: Console, evaluation: Evaluation) -> None:
    """The score table (step 1), skill by step for a multi-step run, the verdict in words for every
    step, and the warnings when the data are too few to trust."""
    s, d = evaluation.metrics["settings"], evaluation.metrics["data"]
    horizon = s.get("horizon", 1)
    excluded = f", {d['excluded_repaired']} repaired days not scored" if d["excluded_repaired"] else ""
    span = f"test {s['test_start']} .. {s['test_end']}"
    ahead = "next-day forecasts" if horizon == 1 else f"step 1 of {horizon}"
    title = f"{d['name']} {d['target']}, {ahead}: {span} ({d['scored_days']} days scored{excluded})"
    table = Table(title=title, title_justify="left")
    for column in ("model", "RMSE", "MAE", "MAPE %", "direction", "skill", "DM p", "lag", "cov80", "cov95"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for name in evaluation.models:
        m = evaluation.metrics["models"][name]
        table.add_row(
            name,
            fmt(m["rmse"], ".4f"),
            fmt(m["mae"], ".4f"),
            fmt(m["mape"], ".3f"),
            fmt(m["direction_accuracy"], ".1%"),
            fmt(m["skill"], "+.3f"),
            fmt(m["dm_pvalue"], ".3f"),
            lag_cell(name, m),
            fmt(m["coverage_80"], ".0%"),
            fmt(m["coverage_95"], ".0%"),
        )
    console.print(table)
    if horizon > 1:
        print_steps(console, evaluation)
    for name in evaluation.models:
        console.print(f"  {name}: {evaluation.verdict(name)}")
    for warning in d.get("warnings", []):
        console.print(strong(("warning", "bold yellow"), f": {warning}"))
    console.print(
        "skill = 1 - RMSE/RMSE(persistence), above 0 beats it; DM p: Diebold-Mariano test against persistence "
        "(HLN-corrected); lag: the lag k whose realised move the forecast's predicted move (forecast - last "
        "value) correlates with best, 0 = the move being forecast, k = the move k days earlier; 'follows': the "
        "predicted moves do not anticipate the real one (no significant positive lag-0 correlation, or an "
        "earlier move matches better); cov80/cov95: share of actuals inside the 80%/95% intervals"
    )
    print_trading(console, evaluation.metrics)


def print_steps(console: Console, evaluation: Evaluation) -> None:
    """Skill and Diebold-Mariano p-value of every model at every step (rows: steps)."""
    names = [name for name in evaluation.models if name != "persistence"]
    title = "skill against persistence by step (DM p)"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("step", justify="right")
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    steps = {name: evaluation.metrics["models"][name]["by_step"] for name in names}
    for k in range(evaluation.metrics["settings"]["horizon"]):
        cells = []
        for name in names:
            m = steps[name][k]
            cells.append(f"{fmt(m['skill'], '+.3f')} ({fmt(m['dm_pvalue'], '.3f')})")
        table.add_row(str(k + 1), *cells)
    console.print(table)


def print_trading(console: Console, metrics: dict) -> None:
    """The long-or-flat diagnostic next to buy-and-hold, for a close target; persistence never
    trades, so it has no row."""
    trading = metrics.get("trading")
    if not trading:
        return
    table = Table(
        title=f"long-or-flat on the forecast close, {trading['cost_bps']:g} bp per buy and per sell "
        f"({trading['note']})",
        title_justify="left",
    )
    columns = ("rule", "total return", "Sharpe", "Sharpe 90%", "random timing", "max drawdown", "trades", "in market")
    for column in columns:
        table.add_column(column, justify="left" if column == "rule" else "right", no_wrap=True)
    rows = {name: m["trading"] for name, m in metrics["models"].items() if m.get("trading")}
    rows["buy-and-hold"] = trading["buy_and_hold"]
    for name, t in rows.items():
        interval = "-" if t.get("sharpe_lo") is None else f"{t['sharpe_lo']:.2f} .. {t['sharpe_hi']:.2f}"
        table.add_row(
            name, f"{t['total_return']:+.1%}", fmt(t["sharpe"], ".2f"), interval, fmt(t.get("random_timing"), ".0%"),
            f"{t['max_drawdown']:.1%}", str(t["trades"]), f"{t['days_in_market']:.0%}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "Sharpe 90%: stationary-bootstrap interval of the annualised Sharpe ratio; random timing: share of "
        "random schedules with as many days in the market whose Sharpe (before costs) is at least as high"
    )
