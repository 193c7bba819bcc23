"""Figures. Each legend label carries that model's own RMSE, computed from the plotted series."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from .evaluate import Evaluation  # noqa: E402

COLORS = {"persistence": "#888888", "ridge": "#2ca02c", "lstm": "#d62728", "gru": "#1f77b4"}
BANDED = ("lstm", "gru")  # the networks' intervals are drawn; more bands would hide the lines


def forecast_figure(evaluation: Evaluation, path: str | Path, step: int = 1) -> Path:
    """The actual series and every model's forecast over the test period, one line each."""
    table = evaluation.wide(step)
    data = evaluation.metrics["data"]
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    ax.plot(table.index, table["actual"], color="black", lw=1.6, label="actual")
    for name in evaluation.models:
        m = evaluation.metrics["models"][name]["by_step"][step - 1]
        style = dict(lw=1.0, ls="--" if name == "persistence" else "-", color=COLORS.get(name))
        ax.plot(table.index, table[name], label=f"{name} (RMSE {m['rmse']:.3f})", **style)
        bands = evaluation.bands(name, step) if name in BANDED else None
        if bands is not None:
            covered = f"{m['coverage_80']:.0%}, {m['coverage_95']:.0%} covered"
            ax.fill_between(bands.index, bands["lo95"], bands["hi95"], color=COLORS.get(name), alpha=0.08, lw=0)
            ax.fill_between(
                bands.index, bands["lo80"], bands["hi80"], color=COLORS.get(name), alpha=0.18, lw=0,
                label=f"{name} 80% / 95% intervals ({covered})",
            )  # fmt: skip
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ahead = "next-day" if step == 1 else f"{step}-day-ahead"
    span = f"{table.index[0]:%Y-%m-%d} .. {table.index[-1]:%Y-%m-%d}"
    ax.set_title(f"{data['name']}: {ahead} {data['target']} forecasts, test {span}")
    ax.set_ylabel(data["target"])
    ax.set_xlabel("date")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
