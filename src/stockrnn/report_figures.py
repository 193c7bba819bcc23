"""The report's interactive figures (Plotly): each function returns a `go.Figure`, report.py embeds
them. Values go in as float32 and dates as `YYYY-MM-DD` strings so a year of forecasts stays small
next to the 4.8 MB of plotly.js that the report carries once."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .config import NETWORKS
from .evaluate import Evaluation
from .metrics import MAX_LAG, change_correlations
from .report_tables import repaired_days

COLORS = {
    "actual": "#111111",
    "persistence": "#888888",
    "ridge": "#2ca02c",
    "ridge_local": "#98df8a",
    "lstm": "#d62728",
    "lstm_local": "#ff9896",
    "gru": "#1f77b4",
    "gru_local": "#aec7e8",
}
OTHER = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")
DAY = "%Y-%m-%d"  # dates in hover labels as in the tables
LAG_DAYS = 60  # the lag check shows the last days of the test period, where a one-day shift is visible


def color(name: str, i: int = 0) -> str:
    return COLORS.get(name, OTHER[i % len(OTHER)])


def _days(index: pd.Index) -> list[str]:
    return [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(index)]


def _values(series) -> np.ndarray:
    return np.asarray(series, dtype=np.float32)


def _layout(fig: go.Figure, title: str, ytitle: str, height: int = 460) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
        yaxis_title=ytitle,
    )
    return fig


BAND_CHOICES = ("all", "networks", "none")  # from the richest chart to the smallest file


def forecast(evaluation: Evaluation, step: int = 1, bands: str = "all") -> go.Figure:
    """The actual series and one line per model over the test period, the RMSE in each label; each
    model's 80% and 95% bands as one legend entry of their own, shown for the networks (for ridge
    in a run without one) and one click away for the others (all at once would hide the lines).
    `bands` "networks" or "none" leaves bands out to keep a long test period's file small."""
    table = evaluation.wide(step)
    data = evaluation.metrics["data"]
    x = _days(table.index)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x, y=_values(table["actual"]), name="actual", mode="lines", line={"color": color("actual"), "width": 2},
            hovertemplate="%{y:.4g}", meta="actual",
        )
    )  # fmt: skip
    networks = [n for n in evaluation.models if n.removesuffix("_local") in NETWORKS]
    for i, name in enumerate(evaluation.models):
        m = evaluation.metrics["models"][name]["by_step"][step - 1]
        network = name in networks
        drawn = bands == "all" or (bands == "networks" and network)
        interval = evaluation.bands(name, step) if drawn else None
        if interval is not None:
            for level, opacity in (("95", 0.08), ("80", 0.16)):
                lo, hi = _values(interval[f"lo{level}"]), _values(interval[f"hi{level}"])
                fig.add_trace(
                    go.Scatter(
                        x=x + x[::-1], y=np.concatenate([hi, lo[::-1]]), fill="toself", mode="lines",
                        line={"width": 0}, fillcolor=color(name, i), opacity=opacity,
                        name=f"{name} 80% and 95% intervals", legendgroup=f"{name} band", hoverinfo="skip",
                        showlegend=level == "95",
                        visible=True if network or (not networks and name != "persistence") else "legendonly",
                    )
                )  # fmt: skip
        rmse = "-" if m["rmse"] is None else f"{m['rmse']:.4g}"
        custom = None if interval is None else np.stack([_values(interval["lo80"]), _values(interval["hi80"])], axis=1)
        hover = "" if interval is None else " (80%: %{customdata[0]:.4g} .. %{customdata[1]:.4g})"
        fig.add_trace(
            go.Scatter(
                x=x, y=_values(table[name]), name=f"{name} (RMSE {rmse})", mode="lines", meta=name,
                line={"color": color(name, i), "width": 1.3, "dash": "dash" if name == "persistence" else "solid"},
                customdata=custom, hovertemplate="%{y:.4g}" + hover,
            )
        )  # fmt: skip
    for fold in evaluation.metrics.get("folds") or []:
        fig.add_vline(x=fold["test_start"], line={"color": "#999999", "width": 1, "dash": "dot"})
    fig.update_xaxes(hoverformat=DAY)
    ahead = "next-day" if step == 1 else f"{step}-day-ahead"
    refits = " (dotted: refit dates)" if evaluation.metrics.get("folds") else ""
    return _layout(fig, f"{escape(str(data['name']))}: {ahead} {data['target']} forecasts{refits}", data["target"])


def lag_correlations(evaluation: Evaluation, name: str) -> list[float | None]:
    """The curve behind `best_lag`, k = 0..5: the correlation of the model's predicted change
    (forecast - last value) with the realised change k days earlier, over the scored step-1 days
    (`metrics.change_correlations`, as scoring computes it; a peak at k >= 1: it repeats old moves)."""
    wide = evaluation.wide(1)
    rows = wide[~wide.index.isin(pd.to_datetime(sorted(repaired_days(evaluation.metrics["data"]))))]
    last = rows["persistence"].to_numpy()  # persistence's step-1 forecast is the last known value
    return change_correlations(rows["actual"].to_numpy(), rows[name].to_numpy(), last, MAX_LAG)


def lag_check(evaluation: Evaluation) -> go.Figure:
    """Left: the last weeks of the test period with the actual shifted by one day (yesterday's
    value); a model whose line lies on the shifted one only repeats yesterday. Right: for each model,
    `lag_correlations` (what `best_lag` picks from)."""
    from plotly.subplots import make_subplots

    table = evaluation.wide(1)
    recent = table.iloc[-LAG_DAYS:]
    yesterday = table["actual"].shift(1).iloc[-LAG_DAYS:]
    x = _days(recent.index)
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.08,
        subplot_titles=(f"last {len(recent)} test days", "predicted change vs the actual's change k days before"),
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=x, y=_values(recent["actual"]), name="actual", line={"color": color("actual"), "width": 2}),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=_values(yesterday), name="actual shifted by one day", line={"color": "#ff7f0e", "width": 3},
            opacity=0.45,
        ),
        row=1, col=1,
    )  # fmt: skip
    lags = list(range(MAX_LAG + 1))
    for i, name in enumerate(n for n in evaluation.models if n != "persistence"):
        fig.add_trace(
            go.Scatter(
                x=x, y=_values(recent[name]), name=name, legendgroup=name, mode="lines",
                line={"color": color(name, i), "width": 1.3},
            ),
            row=1, col=1,
        )  # fmt: skip
        corr = lag_correlations(evaluation, name)
        fig.add_trace(
            go.Bar(
                x=lags, y=[np.nan if c is None else c for c in corr], name=f"{name} by lag", legendgroup=name,
                marker_color=color(name, i), showlegend=False, hovertemplate=f"{name}, lag %{{x}}: %{{y:.2f}}",
            ),
            row=1, col=2,
        )  # fmt: skip
    fig.update_xaxes(title_text="lag k (trading days)", dtick=1, row=1, col=2)
    fig.update_xaxes(hoverformat=DAY, row=1, col=1)
    fig.update_layout(hovermode="closest", barmode="group")
    return _layout(fig, "", evaluation.metrics["data"]["target"])


def error_by_step(evaluation: Evaluation) -> go.Figure:
    """RMSE against the step for every model: how fast the error grows with the horizon."""
    fig = go.Figure()
    for i, name in enumerate(evaluation.models):
        steps = evaluation.metrics["models"][name]["by_step"]
        fig.add_trace(
            go.Scatter(
                x=[s["step"] for s in steps], y=[s["rmse"] for s in steps], name=name, mode="lines+markers",
                line={"color": color(name, i), "dash": "dash" if name == "persistence" else "solid"},
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="step (trading days ahead)", dtick=1)
    return _layout(fig, "Error by step", f"RMSE of {evaluation.metrics['data']['target']}", height=380)


def folds(evaluation: Evaluation) -> go.Figure:
    """Each model's next-day RMSE in each walk-forward fold, grouped by fold."""
    fig = go.Figure()
    labels = [f"{f['fold']}: {f['test_start']}" for f in evaluation.metrics["folds"]]
    for i, name in enumerate(evaluation.models):
        values = [f["models"][name]["rmse"] for f in evaluation.metrics["folds"]]
        skills = [f["models"][name]["skill"] for f in evaluation.metrics["folds"]]
        fig.add_trace(
            go.Bar(
                x=labels, y=values, name=name, marker_color=color(name, i),
                customdata=[np.nan if s is None else s for s in skills],
                hovertemplate=f"{name}: RMSE %{{y:.4g}}, skill %{{customdata:+.3f}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="fold: first forecast day")
    return _layout(fig, "RMSE by fold", "next-day RMSE", height=380)


def skill_distribution(summary: pd.DataFrame, points: bool = True) -> go.Figure:
    """Per model, the skill of every ticker as a box with its points (hover: the ticker); without
    `points` the boxes alone (a large panel's page stays small)."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(summary.groupby("model", sort=False)):
        if name == "persistence":
            continue
        tickers = [escape(t) for t in rows["ticker"].astype(str)]  # Plotly reads tags in hover text
        fig.add_trace(
            go.Box(
                y=_values(rows["skill"]), name=str(name), text=tickers if points else None,
                boxpoints="all" if points else "outliers",
                jitter=0.4, pointpos=0, marker={"size": 4, "color": color(str(name), i)}, line={"width": 1.2},
                hovertemplate="%{text}: skill %{y:+.3f}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_hline(y=0, line={"color": "#555555", "dash": "dot"})
    fig.update_layout(hovermode="closest", showlegend=False)
    return _layout(fig, "Skill per ticker (above 0 beats persistence)", "skill", height=420)


def rank_ic(series: pd.DataFrame, points: bool = True, smooth: int = 21) -> go.Figure:
    """The daily cross-sectional rank IC of each model (unless `points` is False) and its rolling
    mean (the bold line)."""
    fig = go.Figure()
    x = _days(series.index)
    for i, name in enumerate(series.columns):
        values = series[name].astype(float)
        if points:
            fig.add_trace(
                go.Scatter(
                    x=x, y=_values(values), name=f"{name} daily", legendgroup=str(name), mode="lines", opacity=0.3,
                    line={"color": color(str(name), i), "width": 0.8}, showlegend=False, hovertemplate="%{y:.3f}",
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=_values(values.rolling(smooth, min_periods=1).mean()), name=f"{name} ({smooth}-day mean)",
                legendgroup=str(name), mode="lines", line={"color": color(str(name), i), "width": 2},
                hovertemplate="%{y:.3f}",
            )
        )  # fmt: skip
    fig.add_hline(y=0, line={"color": "#555555", "dash": "dot"})
    fig.update_xaxes(hoverformat=DAY)
    return _layout(fig, "Rank IC over time (forecast vs actual move, across tickers)", "rank IC", height=400)


def future(history: pd.Series, table: pd.DataFrame, days: int = 120) -> go.Figure:
    """predict's forecast after the last days of the series, with its 80% and 95% bands."""
    recent = history.iloc[-days:]
    x = _days(table.index)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=_days(recent.index), y=_values(recent), name="actual", line={"color": color("actual"), "width": 2})
    )
    for level, opacity in (("95", 0.1), ("80", 0.2)):
        if f"lo{level}" in table:
            lo, hi = _values(table[f"lo{level}"]), _values(table[f"hi{level}"])
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1], y=np.concatenate([hi, lo[::-1]]), fill="toself", mode="lines", line={"width": 0},
                    fillcolor=color("lstm"), opacity=opacity, name=f"{level}% interval", hoverinfo="skip",
                )
            )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=_values(table["forecast"]), name="forecast", mode="lines+markers", line={"color": color("lstm")}
        )
    )
    fig.update_xaxes(hoverformat=DAY)
    return _layout(fig, "Forecast after the last day of the data", str(history.name or "value"), height=400)
