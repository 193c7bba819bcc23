"""report.html: one self-contained page per run folder (plotly.js inlined once, no request to any
network address) that says the verdict in words first, then shows the scores, the interactive
figures, the lag check, the data and its repairs, the settings, the versions and the command.
A static page has the same sections with PNG figures and no plotly.js (a panel's ticker pages)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote

import matplotlib
import pandas as pd
import plotly
import plotly.offline

from . import report_figures as figures
from . import report_static
from .config import NETWORKS
from .evaluate import SIGNIFICANCE, Evaluation
from .files import atomic_file
from .report_tables import (
    data_summary,
    folds_table,
    key_values,
    lag_table,
    panel_table,
    panel_verdict,
    score_table,
    settings_tables,
    table,
    trading_table,
)

MAX_BYTES = 6_000_000  # "under 6 MB", in decimal megabytes: the stricter reading
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": True}

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 20px 40px;color:#222}
h1{font-size:1.5em;margin:.8em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
nav a{margin-right:.9em}.verdict{background:#f5f7fa;border-left:4px solid #1f77b4;padding:.5em 1em}
.warn{background:#fff4e5;border-left:4px solid #ff7f0e;padding:.5em 1em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}
th,td{padding:3px 9px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.t,th.t{text-align:left}th{background:#fafafa}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.scroll{max-height:600px;overflow:auto}pre{background:#f6f6f6;padding:.6em;overflow:auto}
.note{color:#666;font-size:.9em}input[type=search]{padding:4px 8px;width:22em}
img.figure{max-width:100%;height:auto}
"""

# A table sort (click a header: ascending, click again: descending; numbers as numbers, "-" last)
# and a filter box: plain DOM code, no library.
TABLE_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending", num = th.dataset.type === "num";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows).map(function (row) {
        var text = row.cells[col].textContent.trim(), value = num ? parseFloat(text) : text.toLowerCase();
        return {row: row, value: value, missing: num ? isNaN(value) : text === "-"};
      });
      rows.sort(function (a, b) {
        if (a.missing || b.missing) return a.missing - b.missing;
        return (a.value < b.value ? -1 : a.value > b.value ? 1 : 0) * (up ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r.row); });
    });
  });
});
document.querySelectorAll("input[data-filter]").forEach(function (box) {
  var body = document.getElementById(box.dataset.filter).tBodies[0];
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    Array.prototype.forEach.call(body.rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  });
});
"""


HOW = (
    '<p class="note">Drag to zoom, double-click to zoom out, shift-drag to pan; click a legend entry to hide or '
    "show it (the baselines' interval bands start hidden). Hover for the values of a day.</p>"
)


# A panel page's choices, from the richest to the smallest file: interactive with every point, without
# the skill points and daily rank IC, static (no plotly.js), static with the first tickers of the table.
PANEL_CHOICES = (
    {"static": False, "points": True, "max_rows": None},
    {"static": False, "points": False, "max_rows": None},
    {"static": True, "points": False, "max_rows": None},
    {"static": True, "points": False, "max_rows": 10_000},
    {"static": True, "points": False, "max_rows": 1_000},
)

LEFT_OUT = {
    "all": "",
    "networks": '<p class="note">The baselines\' interval bands are left out to keep this file under 6 MB.</p>',
    "none": '<p class="note">The interval bands are left out to keep this file under 6 MB.</p>',
}


def ticker_href(ticker: str) -> str:
    """The link to a ticker's own report inside a panel folder."""
    return quote(f"{ticker}/report.html")


def write_report(
    path: str | Path,
    evaluation: Evaluation | None = None,
    *,
    panel: pd.DataFrame | None = None,
    panel_metrics: dict | None = None,
    rank_ic: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
    history: pd.Series | None = None,
    metadata: dict | None = None,
    command: str | None = None,
    explain_html: str | None = None,
    ticker_link: Callable[[str], str] | None = ticker_href,
    static: bool = False,
) -> Path:
    """Write report.html atomically and return its path. Give an `evaluation` (or backtest) for a
    run folder; `panel` (summary.csv's rows) with `panel_metrics` (panel.json) and `rank_ic` (date
    index, one column per model) for a panel's folder; `forecast` (predict's table) with the
    `history` of the target and `metadata` (data/settings/versions as in metrics.json) for predict.
    `command` is the command line that made the run; `explain_html` a trusted HTML fragment;
    `ticker_link` the relative link to a ticker's folder. `static`: PNG figures and no plotly.js
    (a ticker's page in a panel, about 0.3 MB). A long test period whose page would reach 6 MB
    loses the baselines' interval bands, then all bands; a large panel's page loses the figures'
    points, then plotly.js, then table rows (see PANEL_CHOICES): never the limit."""
    parts = dict(
        panel=panel, panel_metrics=panel_metrics, rank_ic=rank_ic, forecast=forecast, history=history,
        metadata=metadata, command=command, explain_html=explain_html, ticker_link=ticker_link,
    )  # fmt: skip
    choices = [{"bands": bands, "static": static} for bands in figures.BAND_CHOICES]
    if panel is not None:
        choices = [choice for choice in PANEL_CHOICES if static <= choice["static"]]
    for choice in choices:
        html = render_report(evaluation, **parts, **choice)
        if len(html.encode()) < MAX_BYTES:
            break
    with atomic_file(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)


def render_report(
    evaluation: Evaluation | None = None,
    *,
    panel: pd.DataFrame | None = None,
    panel_metrics: dict | None = None,
    rank_ic: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
    history: pd.Series | None = None,
    metadata: dict | None = None,
    command: str | None = None,
    explain_html: str | None = None,
    ticker_link: Callable[[str], str] | None = ticker_href,
    bands: str = "all",
    static: bool = False,
    points: bool = True,
    max_rows: int | None = None,
) -> str:
    """The page as a string (see `write_report`); `bands`: "all", "networks" or "none"; `points`:
    the panel's skill points and daily rank IC; `max_rows`: the panel table's most rows."""
    if evaluation is None and panel is None and forecast is None and not explain_html:
        raise ValueError("a report needs an evaluation, a panel summary, a forecast or an explanation")
    if static and forecast is not None:
        raise ValueError("a forecast's page is interactive only")
    draw = Charts(static)
    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)
    if panel is not None:
        sections += panel_sections(panel, panel_metrics or {}, rank_ic, ticker_link, draw, points, max_rows)
        metadata = metadata or panel_metrics
    if evaluation is not None:
        sections += evaluation_sections(evaluation, bands, draw)
        metadata = evaluation.metrics
    if forecast is not None:
        sections += forecast_sections(forecast, history, metadata or {})
    if explain_html:
        sections.append(("explain", "Explanation", explain_html))
    sections += run_sections(metadata or {}, command, static)
    return page(title(evaluation, panel, metadata or {}), sections, static)


def title(evaluation: Evaluation | None, panel: pd.DataFrame | None, metadata: dict) -> str:
    if panel is not None:
        return f"stockrnn panel report: {panel['ticker'].nunique()} tickers"
    data = metadata.get("data", {})
    kind = "backtest" if evaluation is not None and evaluation.metrics.get("folds") else "evaluation"
    if evaluation is None:
        kind = "forecast" if metadata.get("settings", {}).get("date") is None else "explanation"
    return f"stockrnn {kind}: {data.get('name', data.get('source', ''))} {data.get('target', '')}".strip()


def page(heading: str, sections: list[tuple[str, str, str]], static: bool = False) -> str:
    plotly_js = "" if static else f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n'
    nav = " ".join(f'<a href="#{anchor}">{escape(name)}</a>' for anchor, name, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{escape(name)}</h2>\n{html}</section>' for a, name, html in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)}</title><style>{CSS}</style>\n{plotly_js}</head><body>\n"
        f"<h1>{escape(heading)}</h1><nav>{nav}</nav>\n{body}\n<script>{TABLE_JS}</script>\n</body></html>\n"
    )


def figure(fig, div_id: str) -> str:
    """A figure as a div and its script, using the page's one copy of plotly.js."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG)


class Charts:
    """Draws a figure kind of report_figures: interactive (Plotly) or static (a PNG, report_static),
    so that both pages come from the same sections."""

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self.how = "" if static else HOW

    def __call__(self, kind: str, div_id: str, *args) -> str:
        if self.static:
            return report_static.image(kind, div_id, *args)
        return figure(getattr(figures, kind)(*args), div_id)


def _rmse(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def verdict_words(evaluation: Evaluation) -> str:
    """Which models beat persistence (and whether significantly), whether the networks beat
    ridge: a lead sentence and one line per model, from `Evaluation.verdict`."""
    models = evaluation.metrics["models"]
    rivals = [n for n in evaluation.models if n != "persistence"]
    beats = [n for n in rivals if (models[n]["skill"] or 0) > 0]
    significant = [n for n in beats if models[n]["dm_pvalue"] is not None and models[n]["dm_pvalue"] < SIGNIFICANCE]
    if beats:
        lead = (
            f"{len(beats)} of {len(rivals)} models beat persistence on RMSE ({', '.join(beats)}); "
            f"{len(significant)} significantly at 5% ({', '.join(significant) or 'none'})."
        )
    else:
        lead = f"No model beats persistence (tomorrow = today) on RMSE: {len(rivals)} tried."
    lines = [f"<li><b>{escape(n)}</b>: {escape(evaluation.verdict(n))}</li>" for n in rivals]
    for network in (n for n in rivals if n.removesuffix("_local") in NETWORKS):
        ridge = "ridge_local" if network.endswith("_local") and "ridge_local" in models else "ridge"
        if ridge not in models or models[network]["rmse"] is None or models[ridge]["rmse"] is None:
            continue
        better = models[network]["rmse"] < models[ridge]["rmse"]
        lines.append(
            f"<li><b>{escape(network)}</b> {'beats' if better else 'does not beat'} {escape(ridge)}: RMSE "
            f"{_rmse(models[network]['rmse'])} against {_rmse(models[ridge]['rmse'])}.</li>"
        )
    if not any(n.removesuffix("_local") in NETWORKS for n in rivals):
        lines.append("<li>No network in this run.</li>")
    warn = ""
    if evaluation.metrics.get("interrupted"):
        warn = '<p class="warn">Interrupted: the networks stopped early (Ctrl-C); the scores are of what was done.</p>'
    step = "" if evaluation.horizon == 1 else f" Headline scores are for step 1 of {evaluation.horizon}."
    return f'{warn}<div class="verdict"><p><b>{escape(lead)}</b>{escape(step)}</p><ul>{"".join(lines)}</ul></div>'


def evaluation_sections(
    evaluation: Evaluation, bands: str = "all", draw: Charts | None = None
) -> list[tuple[str, str, str]]:
    draw = draw or Charts()
    metrics = evaluation.metrics
    s, d = metrics["settings"], metrics["data"]
    excluded = f", {d['excluded_repaired']} repaired days not scored" if d.get("excluded_repaired") else ""
    span = f"Test {s['test_start']} .. {s['test_end']}: {d.get('scored_days', '-')} days scored{excluded}."
    chart = draw("forecast", "forecast-chart", evaluation, 1, bands)
    sections = [
        ("verdict", "Verdict", verdict_words(evaluation)),
        ("scores", "Scores", f'<p class="note">{escape(span)}</p>' + score_table(evaluation)),
        ("forecast", "Forecasts", draw.how + ("" if draw.static else LEFT_OUT[bands]) + chart),
        (
            "lag",
            "Lag check",
            '<p class="note">A model that only repeats yesterday lies on the orange line (the actual shifted by one '
            "day) and its RMSE against yesterday is far below its RMSE against today. The bars correlate each "
            "model's predicted change (forecast minus the last value) with the actual's change k days before: a "
            "forecast that anticipates the move peaks at lag 0 (the best lag of the table), one that echoes moves "
            "already made peaks at lag 1 or later.</p>"
            + draw("lag_check", "lag-chart", evaluation)
            + lag_table(evaluation),
        ),
    ]
    if evaluation.horizon > 1:
        sections.append(("steps", "Error by step", draw("error_by_step", "step-chart", evaluation)))
    if metrics.get("folds"):
        sections.append(("folds", "Folds", folds_table(evaluation) + draw("folds", "fold-chart", evaluation)))
    if metrics.get("trading"):
        sections.append(("trading", "Trading diagnostic", trading_table(metrics)))
    return sections


def panel_sections(
    summary: pd.DataFrame,
    info: dict,
    rank_ic: pd.DataFrame | None,
    link: Callable[[str], str] | None,
    draw: Charts | None = None,
    points: bool = True,
    max_rows: int | None = None,
) -> list[tuple[str, str, str]]:
    draw = draw or Charts()
    tickers = list(dict.fromkeys(summary["ticker"]))
    shown = summary
    if max_rows is not None and len(summary) > max_rows:  # whole tickers, in the summary's order
        keep = tickers[: max(1, max_rows * len(tickers) // len(summary))]
        shown = summary[summary["ticker"].isin(set(keep))]
    left_out = []
    if not points:
        left_out.append("the skill distribution's points and the daily rank IC are left out")
    if draw.static:
        left_out.append("the figures are pictures (no plotly.js in this file)")
    if len(shown) < len(summary):
        first = shown["ticker"].nunique()
        left_out.append(f"the table shows the first {first} of {len(tickers)} tickers (summary.csv has them all)")
    note = f'<p class="note">To keep this file under 6 MB: {escape("; ".join(left_out))}.</p>' if left_out else ""
    warn = ""
    if (info.get("settings") or {}).get("interrupted"):
        warn = (
            '<p class="warn">Interrupted (Ctrl-C): the scores are of what was finished by then (tickers not reached '
            "are listed under Skipped; a backtest ends with the fold under way); a ticker whose training it cut "
            "short says so on its own page.</p>"
        )
    sections = [("verdict", "Verdict", warn + panel_verdict(summary))]
    if info.get("models"):
        frame = pd.DataFrame.from_dict(info["models"], orient="index")
        sections.append(("models", "Models across tickers", table(frame, index_name="model")))
    table_html = (
        '<p><input type="search" data-filter="ticker-table" placeholder="filter: ticker, model or verdict words"> '
        '<span class="note">click a column header to sort; the ticker links to its own report; verdict: against '
        "persistence, significant when the Diebold-Mariano p is below 5%</span></p>" + note + panel_table(shown, link)
    )
    sections.append(("tickers", "Tickers", table_html))
    sections.append(("skill", "Skill distribution", draw("skill_distribution", "skill-chart", summary, points)))
    if rank_ic is not None and not rank_ic.empty:
        sections.append(("rank-ic", "Rank IC", draw("rank_ic", "rank-ic-chart", rank_ic, points)))
    headings = {"skipped": "skipped", "left_out_of_folds": "left out of some folds", "failed": "failed"}
    problems = "".join(
        f"<h3>{heading} ({len(info[key])})</h3>" + table(pd.DataFrame(info[key]), index=False)
        for key, heading in headings.items()
        if info.get(key)
    )
    if problems:
        sections.append(("problems", "Skipped and failed", problems))
    return sections


def forecast_sections(forecast: pd.DataFrame, history: pd.Series | None, metadata: dict) -> list[tuple[str, str, str]]:
    frame = forecast.copy()
    frame.index = [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(frame.index)]
    chart = "" if history is None else figure(figures.future(history, forecast), "forecast-chart")
    return [("forecast", "Forecast", table(frame, index_name="date") + chart)]


def run_sections(metadata: dict, command: str | None, static: bool = False) -> list[tuple[str, str, str]]:
    """The data with every repair, the settings, the versions and the command, for any report."""
    sections = []
    if metadata.get("data"):
        sections.append(("data", "Data and repairs", data_summary(metadata["data"])))
    if metadata.get("settings"):
        sections.append(("settings", "Settings", settings_tables(metadata["settings"])))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    drawn_by = {"matplotlib": matplotlib.__version__} if static else {"plotly": plotly.__version__}
    versions = {**(metadata.get("versions") or {}), **drawn_by}
    command_html = '<p class="note">not recorded (made from Python)</p>'
    if command:
        command_html = f"<pre><code>{escape(command)}</code></pre>"
    sections.append(("run", "Command and versions", command_html + key_values(versions) + f"<p>Written {made}.</p>"))
    return sections
