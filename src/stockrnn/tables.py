"""The printed tables of the command line: data summary, scores, trading diagnostic, folds,
forecasts. Printing only; the numbers come from metrics.json's dictionaries."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from .backtest import Backtest
from .data import Prices
from .evaluate import Evaluation


def print_data(console: Console, prices: Prices) -> None:
    console.print(
        f"[bold]{prices.name}[/]: {len(prices)} rows, {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}; "
        f"repairs: {prices.repairs.summary()}"
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


def print_table(console: Console, evaluation: Evaluation) -> None:
    """The score table, and in words which models beat persistence."""
    s, d = evaluation.metrics["settings"], evaluation.metrics["data"]
    excluded = f", {d['excluded_repaired']} repaired days not scored" if d["excluded_repaired"] else ""
    span = f"test {s['test_start']} .. {s['test_end']}"
    title = f"{d['name']} {d['target']}: {span} ({d['scored_days']} days scored{excluded})"
    table = Table(title=title, title_justify="left")
    for column in ("model", "RMSE", "MAE", "MAPE %", "direction", "skill", "DM p", "lag", "cov80", "cov95"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

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
            fmt(m["best_lag"], "d"),
            fmt(m["coverage_80"], ".0%"),
            fmt(m["coverage_95"], ".0%"),
        )
    console.print(table)
    for name in evaluation.models:
        if name != "persistence":
            console.print(f"  {name}: {evaluation.verdict(name)}")
    console.print(
        "skill = 1 - RMSE/RMSE(persistence), above 0 beats it; DM p: Diebold-Mariano test against persistence "
        "(HLN-corrected); lag: the lag of the actual's moves that the forecast's moves match best "
        "(1+: follows the price); cov80/cov95: share of actuals inside the 80%/95% intervals"
    )
    print_trading(console, evaluation.metrics)


def print_trading(console: Console, metrics: dict) -> None:
    """The long-or-flat diagnostic next to buy-and-hold, for a close target."""
    trading = metrics.get("trading")
    if not trading:
        return
    table = Table(
        title=f"long-or-flat on the forecast close, {trading['cost_bps']:g} bp per buy and per sell "
        f"({trading['note']})",
        title_justify="left",
    )
    for column in ("rule", "total return", "Sharpe", "max drawdown", "trades", "in market"):
        table.add_column(column, justify="left" if column == "rule" else "right", no_wrap=True)
    rows = {name: m["trading"] for name, m in metrics["models"].items() if m.get("trading")}
    rows["buy-and-hold"] = trading["buy_and_hold"]
    for name, t in rows.items():
        sharpe = "-" if t["sharpe"] is None else f"{t['sharpe']:.2f}"
        table.add_row(
            name, f"{t['total_return']:+.1%}", sharpe, f"{t['max_drawdown']:.1%}", str(t["trades"]),
            f"{t['days_in_market']:.0%}",
        )  # fmt: skip
    console.print(table)
