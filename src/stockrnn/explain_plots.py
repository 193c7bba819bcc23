"""The explain figure (gate heatmaps, per-day gate means, attribution heatmap) and its HTML section."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .explain import Explanation  # noqa: E402

MAX_TICKS = 12


def explain_figure(e: Explanation, title: str = "") -> Figure:
    """One heatmap (units x days) per layer and gate, then the per-day mean of every gate and the
    attributions (features x days); dates on every x axis."""
    layers = sorted(e.gates["layer"].unique())
    names = list(dict.fromkeys(e.gates["gate"]))
    dates = pd.DatetimeIndex(sorted(e.gates["date"].unique()))
    ncols = len(names)
    fig = plt.figure(figsize=(max(3.4 * ncols + 1.5, 10.0), 2.6 * len(layers) + 3.6), dpi=100, layout="constrained")
    grid = fig.add_gridspec(len(layers) + 1, ncols, height_ratios=[1.0] * len(layers) + [1.3])
    for row, layer in enumerate(layers):
        for col, name in enumerate(names):
            ax = fig.add_subplot(grid[row, col])
            part = e.gates[(e.gates["layer"] == layer) & (e.gates["gate"] == name)]
            matrix = part.pivot(index="unit", columns="date", values="value").to_numpy()
            extent = (-0.5, len(dates) - 0.5, len(matrix) + 0.5, 0.5)  # units numbered from 1, as in gates.csv
            style = dict(aspect="auto", interpolation="none", extent=extent)
            if name == "cell":  # the cell state is not a gate: it is unbounded and signed
                limit = float(np.abs(matrix).max()) or 1.0
                image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, **style)
            else:
                image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, **style)
            fig.colorbar(image, ax=ax, fraction=0.06, pad=0.02)
            ax.set_title(f"layer {layer}: {name}" + (" state" if name == "cell" else " gate"), fontsize=9)
            ax.set_ylabel("unit", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            _date_axis(ax, dates)
    half = max(1, ncols // 2)
    means = e.gate_means()
    ax = fig.add_subplot(grid[-1, :half])
    for (layer, name), values in means.items():
        label = name if len(layers) == 1 else f"layer {layer} {name}"
        ax.plot(np.arange(len(dates)), values.to_numpy(), marker="o", ms=3, lw=1.2, label=label)
    ax.set_title("mean over units, per day", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _date_axis(ax, dates)
    ax = fig.add_subplot(grid[-1, half:])
    matrix = e.attribution_matrix()
    limit = float(np.abs(matrix.to_numpy()).max()) or 1.0
    image = ax.imshow(matrix.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="none")
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="model units")
    ax.set_yticks(np.arange(len(matrix)), matrix.index, fontsize=7)
    ax.set_title(
        f"integrated gradients of the forecast, features x days\n(sum {e.attributions['attribution'].sum():+.3g}"
        f" = forecast - baseline forecast {e.output - e.baseline_output:+.3g})",
        fontsize=9,
    )
    _date_axis(ax, dates)
    fig.suptitle(
        title
        or f"{e.model.upper()} window ending {e.date:%Y-%m-%d} (gates of member {e.member}): "
        f"forecast of {e.target} {e.forecast:.4g}, baseline window {e.baseline_forecast:.4g}",
        fontsize=11,
    )
    return fig


def _date_axis(ax, dates: pd.DatetimeIndex) -> None:
    every = max(1, int(np.ceil(len(dates) / MAX_TICKS)))
    ticks = np.arange(len(dates))[::every]
    ax.set_xticks(ticks, [f"{d:%m-%d}" for d in dates[ticks]], rotation=45, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def explain_section(e: Explanation, png: bytes) -> str:
    """An HTML fragment (no page around it) for report.html: the reading and the figure inline."""
    items = "\n".join(f"    <li>{html.escape(line)}</li>" for line in e.reading)
    image = base64.b64encode(png).decode("ascii")
    note = (
        "Gates: ensemble member {member}, recomputed step by step from the saved weights (equal to torch's "
        "own forward pass). Attributions: integrated gradients of the ensemble's forecast in model output units, "
        "against the all-zeros window in scaled input space ({baseline}); they sum to "
        "{total:+.4g}, the forecast's difference from the baseline's ({difference:+.4g})."
    ).format(
        member=e.member,
        baseline=e.baseline,
        total=e.attributions["attribution"].sum(),
        difference=e.output - e.baseline_output,
    )
    return (
        f"<h3>Inside the {html.escape(e.model.upper())}: the window ending {e.date:%Y-%m-%d}</h3>\n"
        f"  <ul>\n{items}\n  </ul>\n"
        f'  <img alt="gates and attributions" style="max-width:100%" src="data:image/png;base64,{image}">\n'
        f"  <p><small>{html.escape(note)}</small></p>\n"
    )
