"""Writing an evaluation's files: metrics.json, predictions.csv and figures, all or nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .evaluate import BANDS, Evaluation
from .files import atomic_dir
from .plots import error_by_step_figure, folds_figure, forecast_figure
from .report import write_report


def _clean(value):
    """JSON has no NaN: non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_evaluation(
    evaluation: Evaluation, out: str | Path, report: bool = True, command: str | None = None, static: bool = False
) -> Path:
    """Write the outputs into `out`, replacing a previous run there only once all are written:
    metrics.json, predictions.csv, forecast.png, folds.png for a panel backtest's ticker (its
    metrics have `folds`), error_by_step.png for a multi-step run, and report.html (unless `report`
    is False; `command` is the command line it names; `static`: the small page with PNG figures and
    no plotly.js, as a panel writes for each ticker)."""
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(_clean(evaluation.metrics), indent=2) + "\n")
        write_predictions(evaluation, tmp / "predictions.csv")
        forecast_figure(evaluation, tmp / "forecast.png")
        if evaluation.metrics.get("folds"):
            folds_figure(evaluation, tmp / "folds.png")
        if evaluation.horizon > 1:
            error_by_step_figure(evaluation, tmp / "error_by_step.png")
        if report:
            write_report(tmp / "report.html", evaluation, command=command, static=static)
    return Path(out)


def write_predictions(evaluation: Evaluation, path: Path) -> None:
    """`date, actual, <model>...` for horizon 1, else the long `origin, date, step, actual, <model>...`;
    then `<model>_lo80, <model>_hi80, <model>_lo95, <model>_hi95` for each model with intervals
    (the bounds its coverage was computed from)."""
    bands = [c for name in evaluation.models for c in (f"{name}_{band}" for band in BANDS)
             if c in evaluation.predictions]  # fmt: skip
    if evaluation.horizon == 1:
        table = evaluation.predictions[["date", "actual", *evaluation.models, *bands]]
    else:
        table = evaluation.predictions[["origin", "date", "step", "actual", *evaluation.models, *bands]]
    table.to_csv(path, index=False, date_format="%Y-%m-%d", float_format="%.6g")


def write_backtest(result: Evaluation, out: str | Path, report: bool = True, command: str | None = None) -> Path:
    """A backtest's metrics.json (with `folds`), predictions.csv and figures, all or nothing:
    forecast.png (next-day forecasts with interval bands), folds.png, error_by_step.png, and
    report.html unless `report` is False."""
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(_clean(result.metrics), indent=2) + "\n")
        write_predictions(result, tmp / "predictions.csv")
        forecast_figure(result, tmp / "forecast.png")
        folds_figure(result, tmp / "folds.png")
        error_by_step_figure(result, tmp / "error_by_step.png")
        if report:
            write_report(tmp / "report.html", result, command=command)
    return Path(out)
