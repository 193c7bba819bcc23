"""The report's HTML tables, built from metrics.json's dictionaries; every string from data is escaped."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd

from .config import NETWORKS
from .evaluate import SIGNIFICANCE, Evaluation

HIDDEN = ("by_step", "trading")  # nested entries of a model's metrics, shown in their own sections
PERCENT = ("direction_accuracy", "coverage_80", "coverage_95")
PANEL_COLUMNS = ("ticker", "model", "n", "rmse", "mae", "skill", "dm_pvalue", "direction_accuracy", "coverage_80",
                 "coverage_95")  # fmt: skip


def cell(value, key: str = "") -> str:
    """One value as table text: '-' for missing, percentages for shares, 4 significant digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if key in PERCENT:
            return f"{value:.1%}"
        if key.endswith("skill"):
            return f"{value:+.4f}"
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return escape(json.dumps(value, default=str))
    return escape(str(value))


def table(frame: pd.DataFrame, index: bool = True, index_name: str = "", **attrs: str) -> str:
    """A DataFrame as an HTML table (index first when `index`), numbers right-aligned by the CSS."""
    attr = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    heads = ([index_name] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for key, row in frame.iterrows():
        cells = ([f"<td>{escape(str(key))}</td>"] if index else []) + [
            f"<td>{cell(v, str(c))}</td>" for c, v in row.items()
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<table{attr}><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in heads)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def key_values(values: dict) -> str:
    rows = "".join(f"<tr><th class=t>{escape(str(k))}</th><td class=t>{cell(v)}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def score_table(evaluation: Evaluation) -> str:
    """One row per model, one column per metrics.json key (every key a model has, nested ones aside)."""
    models = evaluation.metrics["models"]
    keys = list(dict.fromkeys(k for m in models.values() for k in m if k not in HIDDEN))
    frame = pd.DataFrame([[models[n].get(k) for k in keys] for n in evaluation.models], index=evaluation.models)
    frame.columns = keys
    return table(frame.astype(object).where(frame.notna(), None), index_name="model", id="score-table")


def lag_table(evaluation: Evaluation) -> str:
    return table(lag_rows(evaluation).astype(object), index_name="model")


def lag_rows(evaluation: Evaluation) -> pd.DataFrame:
    """Per model: RMSE against today's actual and against yesterday's, and the best lag, over the
    days the score table scores (repaired days left out), so that its first column is the score
    table's RMSE. Yesterday's actual is persistence's forecast, the first test day's included."""
    wide = evaluation.wide(1)
    yesterday = wide["persistence"]
    scored = ~wide.index.isin(pd.to_datetime(sorted(repaired_days(evaluation.metrics["data"]))))
    rows = {}
    for name in evaluation.models:
        ok = scored & wide[name].notna().to_numpy()
        f = wide.loc[ok, name]
        rows[name] = {
            "RMSE vs actual": float(np.sqrt(np.mean((f - wide.loc[ok, "actual"]) ** 2))) if ok.any() else None,
            "RMSE vs yesterday's actual": float(np.sqrt(np.mean((f - yesterday[ok]) ** 2))) if ok.any() else None,
            "best lag": evaluation.metrics["models"][name].get("best_lag"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def repaired_days(data: dict) -> set[str]:
    """The days metrics.json's scores leave out: the target's filled or widened values and the
    untraded days (Repairs.changed_dates, read back from metrics.json's `data`)."""
    repairs, target = data.get("repairs") or {}, data["target"]
    kinds = ("filled", "widened")
    return {d for k in kinds for d in (repairs.get(k) or {}).get(target, [])} | set(repairs.get("untraded") or [])


def folds_table(evaluation: Evaluation) -> str:
    """One row per walk-forward fold: its spans and each model's RMSE and skill."""
    rows = []
    for fold in evaluation.metrics["folds"]:
        row = {
            "fold": fold["fold"],
            "trained on": f"{fold['train_start']} .. {fold['train_end']}",
            "rows": fold.get("train_rows"),
            "forecasts": f"{fold['test_start']} .. {fold['test_end']}",
        }
        for name in evaluation.models:
            row[f"{name} RMSE"] = fold["models"][name]["rmse"]
            row[f"{name} skill"] = fold["models"][name]["skill"]
        rows.append(row)
    frame = pd.DataFrame(rows).astype(object)
    return f'<div class="scroll">{table(frame, index=False, id="fold-table")}</div>'


def trading_table(metrics: dict) -> str:
    """The long-or-flat rule on each model's close forecast next to buy-and-hold."""
    trading = metrics["trading"]
    rows = {name: m["trading"] for name, m in metrics["models"].items() if m.get("trading")}
    rows["buy-and-hold"] = trading["buy_and_hold"]
    frame = pd.DataFrame.from_dict(rows, orient="index").astype(object)
    for column in ("total_return", "max_drawdown", "days_in_market"):
        frame[column] = [cell(v, "direction_accuracy") for v in frame[column]]
    note = f"{trading['rule']}, {trading['cost_bps']:g} bp per buy and per sell; {trading['note']}."
    return f'<p class="note">{escape(note)}</p>' + table(frame, index_name="rule")


def _dates(values: list) -> str:
    shown = ", ".join(escape(str(v)) for v in values)
    return shown if len(values) <= 12 else f"<details><summary>{len(values)} dates</summary>{shown}</details>"


# The repairs listed by date (repairs.py), as the page names them.
REPAIR_LISTS = {
    "dropped_nonpositive": "dropped nonpositive",
    "dropped_leading_missing": "dropped leading missing",
    "dropped_untraded": "dropped leading untraded",
    "untraded": "untraded (kept, not scored)",
}


def data_summary(data: dict) -> str:
    """Source, span and scored days, then every repair and finding of loading, with its dates."""
    facts = {k: v for k, v in data.items() if k != "repairs"}
    repairs = data.get("repairs") or {}
    rows = []
    for kind in ("filled", "widened"):
        for column, dates in (repairs.get(kind) or {}).items():
            rows.append((f"{kind} ({column})", len(dates), _dates(dates)))
    for kind, label in REPAIR_LISTS.items():
        if repairs.get(kind):
            rows.append((label, len(repairs[kind]), _dates(repairs[kind])))
    if repairs.get("reordered_ascending"):
        rows.append(("rows sorted oldest first", "", ""))
    for gap in repairs.get("gaps") or []:
        rows.append(("gap (finding, not changed)", f"{gap['days']} days", f"{gap['from']} .. {gap['to']}"))
    for jump in repairs.get("possible_splits") or []:
        rows.append(("possible split (finding)", f"x{jump['close_ratio']}", escape(str(jump["date"]))))
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(n))}</td><td class=t>{d}</td></tr>" for k, n, d in rows)
    listed = (
        f"<table id=repairs-table><thead><tr><th>repair</th><th>count</th><th class=t>dates</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
        if rows
        else "<p>No repairs: every value is the source's.</p>"
    )
    counts = repairs.get("counts")
    return key_values(facts) + "<h3>Repairs</h3>" + listed + (key_values(counts) if counts else "")


def settings_tables(settings: dict) -> str:
    """Run settings as key/value rows; the per-model configurations as one table."""
    plain = {k: v for k, v in settings.items() if k != "models"}
    html = key_values(plain)
    if settings.get("models"):
        frame = pd.DataFrame.from_dict(settings["models"], orient="index").astype(object)
        html += f'<div class="scroll">{table(frame, index_name="model")}</div>'
    return html


def panel_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """summary.csv's rows with each model's rank on its ticker (1 = lowest RMSE) and its verdict
    against persistence (significant: Diebold-Mariano p below 5%)."""
    frame = summary[[c for c in PANEL_COLUMNS if c in summary]].copy()
    frame["rank"] = summary.groupby("ticker")["rmse"].rank(method="min").astype("Int64")
    skill = summary["skill"].astype(float)
    significant = summary["dm_pvalue"].astype(float) < SIGNIFICANCE
    frame["verdict"] = np.select(
        [summary["model"] == "persistence", skill.isna(), (skill > 0) & significant, skill > 0],
        ["benchmark", "no verdict", "beats, significant", "beats, not significant"],
        "loses",
    )
    return frame


def panel_table(summary: pd.DataFrame, link: Callable[[str], str] | None) -> str:
    """The sortable, filterable per-ticker table: ticker (a link to its report), model, scores, rank, verdict."""
    frame = panel_rows(summary)
    text = ("ticker", "model", "verdict")
    heads = "".join(
        f"<th{'' if c in text else ' data-type=num'}{' class=t' if c in text else ''}>{escape(c)}</th>"
        for c in frame.columns
    )
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            shown = cell(None if value is pd.NA else value, column)
            if column == "ticker" and link is not None:
                shown = f'<a href="{escape(link(str(value)))}">{shown}</a>'
            cells.append(f"<td{' class=t' if column in text else ''}>{shown}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table id="ticker-table" class="sortable"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def panel_verdict(summary: pd.DataFrame) -> str:
    """Per model: on how many tickers it beats persistence (significantly) and the ridge baselines."""
    rows = []
    rmse = summary.pivot_table(index="ticker", columns="model", values="rmse", aggfunc="first")
    for name, part in summary.groupby("model", sort=False):
        if name == "persistence":
            continue
        skill = part["skill"].astype(float)
        significant = ((skill > 0) & (part["dm_pvalue"].astype(float) < SIGNIFICANCE)).sum()
        words = (
            f"beats persistence on {(skill > 0).sum()} of {len(part)} tickers ({significant} significantly at 5%), "
            f"median skill {skill.median():+.3f}"
        )
        for ridge in ("ridge", "ridge_local"):
            if ridge != name and ridge in rmse and str(name).removesuffix("_local") in NETWORKS:
                both = rmse[[name, ridge]].dropna()
                words += f"; beats {ridge} on {(both[name] < both[ridge]).sum()} of {len(both)}"
        rows.append(f"<li><b>{escape(str(name))}</b>: {escape(words)}</li>")
    medians = summary[summary["model"] != "persistence"].groupby("model")["skill"].median()
    lead = f"{summary['ticker'].nunique()} tickers."
    if medians.notna().any():
        best = medians.idxmax()
        lead += f" Highest median skill: {best} ({medians[best]:+.3f}; above 0 beats persistence)."
    return f'<div class="verdict"><p><b>{escape(lead)}</b></p><ul>{"".join(rows)}</ul></div>'
