"""Writing a panel run: OUT/<ticker>/ as a single-ticker run, summary.csv, panel.json, rank_ic.csv
and the panel figures, all in one atomic folder (all or nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from .errors import ConfigError
from .files import atomic_dir
from .outputs import _clean, write_evaluation
from .panel import ticker_folder
from .panel_eval import PanelEvaluation
from .panel_plots import rmse_figure, skill_figure
from .report import ticker_href, write_report
from .runners import Unit, failures
from .runners_local import LocalRunner


def write_ticker(evaluation, folder: Path, report: bool, command: str | None) -> str:
    """One ticker's folder of a panel run (a runner unit when several processes write)."""
    write_evaluation(evaluation, folder, report=report, command=command, static=True)
    return folder.name


def write_panel(
    result: PanelEvaluation, out: str | Path, report: bool = True, command: str | None = None, jobs: int = 1
) -> Path:
    """Write every output into `out`, replacing a previous run there only once all are written.
    rmse_vs_ridge_local.png is left out when the run has no ridge_local; unless `report` is False,
    report.html is the panel's page, linking to each ticker's own report.html (the static page:
    PNG figures, no plotly.js, about 0.3 MB; the interactive one would be 5 MB a ticker). With
    `jobs` > 1 the ticker folders are written by that many local processes (their figures are
    most of the writing time), still inside the one temporary folder."""
    with atomic_dir(out) as tmp:
        units = [
            Unit(ticker, write_ticker, (evaluation, tmp / ticker_folder(ticker), report, command))
            for ticker, evaluation in result.evaluations.items()
        ]
        if jobs > 1 and len(units) > 1:
            with LocalRunner(jobs=jobs) as runner:
                failed = failures(runner.run(units))
            if failed:  # as the same failure in this process would end: ours exit 2, a bug exit 1
                first = failed[0]
                if first.error_type in ("ConfigError", "DataError"):
                    raise ConfigError(f"{out}: cannot write the outputs of {first.key} ({first.error})")
                raise RuntimeError(f"writing the outputs of {first.key}: {first.error_type}: {first.error}")
        else:
            for unit in units:
                write_ticker(*unit.args)
        result.summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        (tmp / "panel.json").write_text(json.dumps(_clean(result.panel), indent=2) + "\n")
        result.rank_ic.to_csv(tmp / "rank_ic.csv", date_format="%Y-%m-%d", float_format="%.6g")
        figures = {
            "skill_distribution.png": skill_figure(result.summary),
            "rmse_vs_ridge_local.png": rmse_figure(result.summary),
        }
        for name, figure in figures.items():
            if figure is not None:
                figure.savefig(tmp / name)
                plt.close(figure)
        if report:
            write_report(
                tmp / "report.html", panel=result.summary, panel_metrics=result.panel, rank_ic=result.rank_ic,
                command=command, ticker_link=lambda t: ticker_href(ticker_folder(t)),
            )  # fmt: skip
    return Path(out)
