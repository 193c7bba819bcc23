"""Writing an evaluation's files: metrics.json, predictions.csv and figures, all or nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .evaluate import Evaluation
from .files import atomic_dir
from .plots import forecast_figure


def _clean(value):
    """JSON has no NaN: non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_evaluation(evaluation: Evaluation, out: str | Path) -> Path:
    """Write the outputs into `out`, replacing a previous run there only once all are written."""
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(_clean(evaluation.metrics), indent=2) + "\n")
        table = evaluation.wide(1).reset_index() if evaluation.horizon == 1 else evaluation.predictions
        table.to_csv(tmp / "predictions.csv", index=False, date_format="%Y-%m-%d", float_format="%.6g")
        forecast_figure(evaluation, tmp / "forecast.png")
    return Path(out)
