"""The report's figures as PNG pictures (matplotlib) inside the page as data: URIs, for a page
with no plotly.js: a ticker's page in a panel (about 0.3 MB instead of 5 MB) and a panel page
too large for plotly.js. Each kind has the name of its interactive twin in report_figures."""

from __future__ import annotations

import base64
import io
from html import escape

import matplotlib.pyplot as plt
import numpy as np

from . import plots
from .evaluate import Evaluation
from .panel_plots import rank_ic_figure, skill_figure
from .report_figures import LAG_DAYS, MAX_LAG, lag_correlations

DPI = 90  # about 1000 pixels wide: the page's width, and a quarter fewer bytes than the files' 110


def lag_figure(evaluation: Evaluation, path: plots.Target) -> plots.Target:
    """Left: the last test days with the actual shifted by one day (a model on that line only
    repeats yesterday). Right: each model's `lag_correlations` (what `best_lag` picks from)."""
    table = evaluation.wide(1)
    recent = table.iloc[-LAG_DAYS:]
    target = evaluation.metrics["data"]["target"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, gridspec_kw={"width_ratios": [1.8, 1]})
    left.plot(recent.index, recent["actual"], color="black", lw=1.6, label="actual")
    left.plot(recent.index, table["actual"].shift(1).iloc[-LAG_DAYS:], color="#ff7f0e", lw=3, alpha=0.45,
              label="actual shifted by one day")  # fmt: skip
    rivals = [n for n in evaluation.models if n != "persistence"]
    width = 0.8 / max(len(rivals), 1)
    for i, name in enumerate(rivals):
        left.plot(recent.index, recent[name], lw=1.0, color=plots.COLORS.get(name), label=name)
        corr = lag_correlations(evaluation, name)
        lags = np.arange(MAX_LAG + 1) + (i - (len(rivals) - 1) / 2) * width
        right.bar(lags, [np.nan if c is None else c for c in corr], width, color=plots.COLORS.get(name), label=name)
    left.set_title(f"last {len(recent)} test days")
    left.set_ylabel(target)
    left.tick_params(axis="x", labelrotation=30)
    right.set_title("predicted change vs the actual's change k days before", fontsize=9)
    right.set_xlabel("lag k (trading days)")
    right.axhline(0.0, color="#555555", lw=0.8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    plots.fixed_layout(fig, left=0.07, bottom=0.19, top=0.9, wspace=0.18)
    return plots.save(fig, path)


# kind -> draw(*the interactive figure's arguments, file): the same arguments as report_figures' twin
DRAW = {
    "forecast": lambda evaluation, step, bands, out: plots.forecast_figure(evaluation, out, step),
    "lag_check": lag_figure,
    "error_by_step": plots.error_by_step_figure,
    "folds": plots.folds_figure,
    "skill_distribution": lambda summary, points, out: plots.save(skill_figure(summary), out),
    "rank_ic": lambda series, points, out: plots.save(rank_ic_figure(series), out),
}


def image(kind: str, div_id: str, *args) -> str:
    """The figure `kind` drawn from `args` as an <img> whose source is the PNG itself."""
    buffer = io.BytesIO()
    with plt.rc_context({"savefig.dpi": DPI}):
        DRAW[kind](*args, buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = escape(kind.replace("_", " "))
    return f'<img id="{div_id}" class="figure" alt="{alt}" src="data:image/png;base64,{data}">'
