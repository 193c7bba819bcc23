"""The printed panel table: one row per model with its scores across tickers, then the skipped and
failed tickers. Printing only; the numbers come from panel.json's dictionary."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from .panel_eval import PanelEvaluation
from .progress import strong

COLUMNS = (
    ("model", "model", None), ("tickers", "tickers", "d"), ("beats\npers.", "beats_persistence", ".0%"),
    ("median\nskill", "median_skill", "+.4f"), ("mean\nskill", "mean_skill", "+.4f"),
    ("<\nridge_local", "beats_ridge_local", ".0%"), ("\np", "wilcoxon_p_vs_ridge_local", ".2g"),
    ("<\nridge", "beats_ridge", ".0%"), ("\np ", "wilcoxon_p_vs_ridge", ".2g"),
    ("rank\nIC", "rank_ic_mean", "+.4f"), ("\nt", "rank_ic_t", "+.2f"), ("IC\n> 0", "rank_ic_positive_days", ".0%"),
)  # fmt: skip


def print_panel(console: Console, result: PanelEvaluation) -> None:
    """The panel table with a line explaining its columns, then who was skipped or failed and why."""
    s = result.panel["settings"]
    title = (
        f"panel {s['source']}: {s['target']}, {s['tickers_evaluated']} tickers evaluated, test from "
        f"{s['test_start']} (rank IC over {s['rank_ic']['days']} days, {s['rank_ic']['days_left_out']} days with "
        f"fewer than {s['rank_ic']['min_tickers_per_day']} tickers left out)"
    )
    # Two-line headers and no outer edge: twelve columns fit in 120 characters (a file or a pipe),
    # so rich never cuts a number short.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for header, _, spec in COLUMNS:
        table.add_column(header, justify="left" if spec is None else "right", no_wrap=True)
    for name, m in result.panel["models"].items():
        cells = [name] + ["-" if m.get(key) is None else format(m[key], spec) for _, key, spec in COLUMNS[1:]]
        table.add_row(*cells)
    console.print(table)
    console.print(
        "beats pers.: share of tickers with skill > 0; < ridge_local / < ridge: share of tickers with a lower RMSE "
        "than the per-ticker / the pooled ridge, p: Wilcoxon signed-rank test of the per-ticker RMSEs; rank IC: "
        f"mean daily Spearman correlation across tickers of forecast and realised log return from the last close "
        f"(days with fewer than {s['rank_ic']['min_tickers_per_day']} tickers left out), t: its t-statistic"
    )
    for entry in result.panel["skipped"]:
        console.print(f"  skipped {entry['ticker']}: {entry['reason']}")
    for entry in result.panel.get("left_out_of_folds", []):  # a backtest: scored in the other folds
        folds = ", ".join(map(str, entry["folds"]))
        console.print(
            f"  partly skipped {entry['ticker']} (fold {folds} of {len(result.panel['folds'])}): {entry['reason']}"
        )
    for entry in result.panel["failed"]:
        console.print(strong("  ", ("failed", "red"), f" {entry['unit']}: {entry['error']}"))
