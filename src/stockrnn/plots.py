"""Figures. Each legend label carries that model's own RMSE, computed from the plotted series."""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .evaluate import Evaluation  # noqa: E402

COLORS = {"persistence": "#888888", "ridge": "#2ca02c", "lstm": "#d62728", "gru": "#1f77b4"}
BANDED = ("lstm", "gru")  # the networks' intervals are drawn; more bands would hide the lines
Target = str | Path | BinaryIO  # a file name, or an open binary file (report.html embeds the PNG bytes)


def literal(text: object) -> str:
    """A name (a ticker, a file's stem) to draw as it is: matplotlib reads text between two `$` as
    mathematics, and a name such as `K$\\x$O` would fail to draw."""
    return str(text).replace("$", r"\$")


def _share(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def ahead(evaluation: Evaluation, step: int = 1) -> str:
    """The horizon actually forecast, for titles: 'next-day' or 'step 2 of 5 (2-day-ahead)'."""
    horizon = evaluation.horizon
    if horizon == 1:
        return "next-day"
    return f"step {step} of {horizon} ({'next-day' if step == 1 else f'{step}-day-ahead'})"


def forecast_figure(evaluation: Evaluation, path: Target, step: int = 1) -> Target:
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
            covered = f"{_share(m['coverage_80'])}, {_share(m['coverage_95'])} covered"  # None: no day scored
            ax.fill_between(bands.index, bands["lo95"], bands["hi95"], color=COLORS.get(name), alpha=0.08, lw=0)
            ax.fill_between(
                bands.index, bands["lo80"], bands["hi80"], color=COLORS.get(name), alpha=0.18, lw=0,
                label=f"{name} 80% / 95% intervals ({covered})",
            )  # fmt: skip
    span = f"{table.index[0]:%Y-%m-%d} .. {table.index[-1]:%Y-%m-%d}"
    title = f"{literal(data['name'])}: {ahead(evaluation, step)} {data['target']} forecasts, test {span}"
    return _finish(fig, ax, title, data["target"], path)


def _finish(fig, ax, title: str, ylabel: str, path: Target) -> Target:
    """Date axis, title, legend, save and close: the same for every time-series figure."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("date")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fixed_layout(fig)
    return save(fig, path)


# Fixed margins for the figures drawn for every ticker of a panel: tight_layout measures every
# text box and was about half the time of drawing such a figure (0.1-0.3 s a figure).
MARGINS = dict(left=0.08, right=0.985, top=0.92, bottom=0.11)


def fixed_layout(fig, **margins) -> None:
    fig.subplots_adjust(**{**MARGINS, **margins})


def save(fig, path: Target) -> Target:
    """Save as PNG and close; a path comes back as a Path, an open file as itself."""
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path) if isinstance(path, str | Path) else path


def folds_figure(result: Evaluation, path: Target) -> Target:
    """A backtest's next-day forecasts and the actuals, a dotted line at every refit date and the
    networks' 80% band; each fold shaded in turn so the refits stand out."""
    table = result.wide(1)
    data = result.metrics["data"]
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    for fold in result.metrics["folds"]:
        start, end = pd.Timestamp(fold["test_start"]), pd.Timestamp(fold["test_end"])
        if fold["fold"] % 2 == 0:
            ax.axvspan(start, end, color="#000000", alpha=0.04, lw=0)
        ax.axvline(start, color="#555555", lw=0.6, ls=":")
    ax.plot(table.index, table["actual"], color="black", lw=1.4, label="actual")
    for name in result.models:
        rmse = result.metrics["models"][name]["rmse"]
        style = dict(lw=0.9, ls="--" if name == "persistence" else "-", color=COLORS.get(name))
        ax.plot(table.index, table[name], label=f"{name} (RMSE {rmse:.3f})", **style)
        bands = result.bands(name, 1) if name in BANDED else None
        if bands is not None:
            ax.fill_between(bands.index, bands["lo80"], bands["hi80"], color=COLORS.get(name), alpha=0.15, lw=0)
    s = result.metrics["settings"]
    every = "fitted once" if s["refit_every"] == 0 else f"refit every {s['refit_every']} trading days (dotted)"
    title = f"{literal(data['name'])}: walk-forward {ahead(result)} {data['target']} forecasts, {every}"
    return _finish(fig, ax, title, data["target"], path)


def error_by_step_figure(result: Evaluation, path: Target) -> Target:
    """RMSE and skill against the step for every model: how fast the error grows with the horizon,
    and at which step a model stops beating persistence."""
    data = result.metrics["data"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for name in result.models:
        steps = result.metrics["models"][name]["by_step"]
        style = dict(marker="o", color=COLORS.get(name), ls="--" if name == "persistence" else "-", label=name)
        x = [s["step"] for s in steps]
        left.plot(x, [s["rmse"] for s in steps], **style)
        if name != "persistence":
            right.plot(x, [math.nan if s["skill"] is None else s["skill"] for s in steps], **style)
    right.axhline(0.0, color=COLORS["persistence"], ls="--", lw=1.0, label="persistence (skill 0)")
    left.set_ylabel(f"RMSE of {data['target']}")
    right.set_ylabel("skill = 1 - RMSE / RMSE(persistence)")
    for ax in (left, right):
        ax.set_xlabel("step (trading days ahead)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    left.set_title("error by step")
    right.set_title("skill by step (above 0 beats persistence)")
    fig.suptitle(f"{literal(data['name'])} {data['target']}: forecasts 1 to {result.horizon} trading days ahead")
    fig.tight_layout()
    return save(fig, path)
