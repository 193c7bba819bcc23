"""Panel figures: the spread of skill across tickers, and each model's per-ticker RMSE against
ridge_local. Each function returns a matplotlib Figure; `panel_outputs.py` saves it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .plots import COLORS  # noqa: E402

REFERENCE = "ridge_local"


def skill_figure(summary: pd.DataFrame, title: str = "") -> Figure:
    """A box per model of the per-ticker skill (1 - RMSE / RMSE persistence), a line at 0."""
    names = [n for n in dict.fromkeys(summary["model"]) if n != "persistence"]
    values = [summary.loc[summary["model"] == n, "skill"].dropna().to_numpy() for n in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 2), 4.5), dpi=110)
    if names:
        ax.boxplot(values, showmeans=True)
        ax.set_xticks(
            range(1, len(names) + 1), [f"{n}\n({len(v)} tickers)" for n, v in zip(names, values, strict=True)]
        )
    ax.axhline(0.0, color=COLORS["persistence"], ls="--", lw=1, label="persistence (skill 0)")
    ax.set_ylabel("skill per ticker (above 0 beats persistence)")
    ax.set_title(title or "skill across tickers (box: quartiles, triangle: mean)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return fig


def rmse_figure(summary: pd.DataFrame, reference: str = REFERENCE, title: str = "") -> Figure | None:
    """Per-ticker RMSE of every other model (persistence aside) against `reference`, log-log with the
    diagonal: points below it are tickers where the model has the lower error. None without the
    reference model in the run."""
    rmse = summary.pivot_table(index="ticker", columns="model", values="rmse", aggfunc="first")
    names = [n for n in dict.fromkeys(summary["model"]) if n not in (reference, "persistence")]
    if reference not in rmse or not names:
        return None
    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    for name in names:
        pairs = rmse[[reference, name]].dropna()
        below = float(np.mean(pairs[name] < pairs[reference])) if len(pairs) else float("nan")
        color = COLORS.get(name.removesuffix("_local"))
        marker = "x" if name.endswith("_local") else "o"
        ax.scatter(pairs[reference], pairs[name], s=14, alpha=0.7, color=color, marker=marker,
                   label=f"{name} ({below:.0%} of {len(pairs)} below)")  # fmt: skip
    values = rmse[[reference, *names]].to_numpy(dtype=float)
    low, high = np.nanmin(values[values > 0]), np.nanmax(values)
    ax.plot([low, high], [low, high], color="black", lw=0.8, label="equal RMSE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"RMSE of {reference} (per ticker)")
    ax.set_ylabel("RMSE of the model (per ticker)")
    ax.set_title(title or f"per-ticker RMSE against {reference}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return fig


def rank_ic_figure(series: pd.DataFrame, smooth: int = 21) -> Figure:
    """Each model's daily cross-sectional rank IC as its rolling mean (the daily values are noise at this size)."""
    fig, ax = plt.subplots(figsize=(11, 4), dpi=110)
    for name in series.columns:
        mean = series[name].astype(float).rolling(smooth, min_periods=1).mean()
        ax.plot(series.index, mean, lw=1.4, color=COLORS.get(str(name).removesuffix("_local")), label=str(name))
    ax.axhline(0.0, color="#555555", ls=":", lw=1)
    ax.set_title(f"rank IC over time ({smooth}-day mean; forecast vs actual move, across tickers)")
    ax.set_ylabel("rank IC")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return fig
