"""`stockrnn fit` and `stockrnn predict`: one saved model, fitted on a file (or, for a global model,
a folder) and forecasting the weekdays after the last row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli_common import (
    command_line,
    day,
    default_out,
    is_folder,
    load_one,
    make_config,
    out_folder,
    output_folder,
    stop_token,
)
from .config import MODELS, NETWORKS
from .files import atomic_dir, atomic_file, check_apart, check_file_target
from .options import ONE_SOURCE_HELP, allow_gaps_option, network_options, report_option, skip_bad_option
from .progress import TrainingProgress, output_console, strong

if TYPE_CHECKING:
    from .data import Prices

# The first line of a forecast table predict writes (one ticker; a panel): an existing --out FILE.csv
# that starts otherwise is the user's, and is not overwritten.
FORECAST_HEADERS = ("date,forecast", "date,ticker,forecast")
FOLDER_HELP = " A folder (one ticker per file) with a global model (lstm, gru, ridge)."


@click.command("fit")
@click.option("--data", "source", default="sp500", show_default=True, help=ONE_SOURCE_HELP + FOLDER_HELP)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option(
    "--model", "model_name", type=click.Choice(MODELS), default="lstm", show_default=True, help="Model to fit."
)
@click.option("--train-start", help="First training day, YYYY-MM-DD.  [default: the first row]")
@click.option("--train-end", help="Last training day, YYYY-MM-DD.  [default: the last row]")
@network_options
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False),
    callback=output_folder,
    help="Folder for model.json and weights.safetensors.  [default: runs/models/<data>-<target>-<model>]",
)
@allow_gaps_option
@skip_bad_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def fit_command(
    source, target, model_name, train_start, train_end, save_dir, allow_gaps, skip_bad, quiet, **options
) -> None:
    """Fit one model on the rows of --data (from --train-start to --train-end), save it to --save
    and print its forecast for the next weekdays after the last row. On a folder, one global model
    fitted on every ticker."""
    if is_folder(source):
        from .panel_command import fit_panel

        return fit_panel(
            source, target, model_name, train_start, train_end, save_dir, allow_gaps, skip_bad, quiet, options
        )
    from .forecaster import make_forecaster
    from .tables import print_data, print_forecast

    preset = options.pop("preset", None)
    config = make_config(model_name, preset, target, options)
    start, end = day(train_start, "--train-start"), day(train_end, "--train-end")
    console = output_console()
    prices = load_one(source, allow_gaps)
    prices.column(target)
    save_dir = out_folder(
        save_dir, default_out("models", f"{prices.name}-{target}-{model_name}"), source, options.get("preset_file")
    )
    print_data(console, prices)
    progress = TrainingProgress(quiet)
    callback = progress.callback(model_name, config) if model_name in NETWORKS else None
    model = make_forecaster(model_name, config)
    stop = stop_token()
    with progress:
        model.fit(prices, train_start=start, train_end=end, on_epoch=callback, stop=stop)
    model.fitted_["interrupted"] = stop.requested
    model.save(save_dir)
    print_forecast(console, model.predict(prices, config.horizon), f"{model_name} forecast of {target}")
    note = " (training interrupted: saved the weights reached so far)" if stop.requested else ""
    console.print(strong(f"Saved the {model_name} model in ", (str(save_dir), "bold"), note))


@click.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--data", "source", required=True, help=ONE_SOURCE_HELP + FOLDER_HELP)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Weekdays ahead to forecast (at most the horizon the model was trained for).",
)
@click.option(
    "--out",
    type=click.Path(),
    callback=output_folder,
    help="Also write the forecast: to this file if it ends in .csv, else into this folder "
    "(forecast.csv and report.html, for a folder of data the panel's forecast.csv and report.html).",
)
@allow_gaps_option
@skip_bad_option
@report_option
def predict_command(model_dir, source, horizon, out, allow_gaps, skip_bad, no_report) -> None:
    """Load the model saved in MODEL_DIR (by `stockrnn fit`) and forecast the next weekdays after
    the last row of --data; with a global model and a folder, every ticker of it. Loading reads
    JSON and safetensors only: nothing is unpickled."""
    from .forecaster import load
    from .tables import print_data, print_forecast

    if out:
        check_apart(out, [source, model_dir])  # --out over the data file or the model would replace it
    if out and str(out).lower().endswith(".csv"):
        check_file_target(out, source, FORECAST_HEADERS)
    model = load(model_dir)
    if is_folder(source):
        from .panel_command import predict_panel

        return predict_panel(model, source, horizon, out, allow_gaps, skip_bad, not no_report)
    prices = load_one(source, allow_gaps)
    prices.column(model.config.target)
    warning = model.check_data(prices) if hasattr(model, "check_data") else None
    table = model.predict(prices, horizon)
    if out and str(out).lower().endswith(".csv"):
        with atomic_file(out) as tmp:
            table.reset_index().to_csv(tmp, index=False, date_format="%Y-%m-%d")
    elif out:
        write_forecast_folder(model, prices, table, Path(out), not no_report, warning)
    if warning:  # after every check, so that a failing run prints its error line alone
        print(f"stockrnn: warning: {warning}", file=sys.stderr)
    console = output_console()
    print_data(console, prices)
    kind = "global " if hasattr(model, "fit_panel") else ""  # one model fitted on a folder of tickers
    print_forecast(console, table, f"{kind}{model.name} forecast of {model.config.target}")
    if out:
        console.print(strong("Written to ", (str(out), "bold")))


def fitted_settings(model) -> dict:
    """The report's view of what a model was fitted on: its fitted_ less a global model's per-ticker
    training rows (a line per ticker; model.json keeps them)."""
    return {k: v for k, v in model.fitted_.items() if k != "training_rows"}


def write_forecast_folder(model, prices: Prices, table, out: Path, report: bool, warning: str | None) -> None:
    """predict --out DIR: forecast.csv and report.html (the forecast after the history), all or nothing."""
    from .forecaster import versions
    from .report import write_report

    with atomic_dir(out) as tmp:
        table.reset_index().to_csv(tmp / "forecast.csv", index=False, date_format="%Y-%m-%d")
        if report:
            data = {"source": prices.source, "name": prices.name, "target": model.config.target, "rows": len(prices),
                    "first": f"{prices.index[0]:%Y-%m-%d}", "last": f"{prices.index[-1]:%Y-%m-%d}",
                    "repairs": prices.repairs.to_dict(), "warnings": [warning] if warning else []}  # fmt: skip
            settings = {"model": model.name, "fitted": fitted_settings(model), "config": model.config.to_dict()}
            metadata = {"data": data, "settings": settings, "versions": versions()}
            history = prices.column(model.config.target)
            write_report(
                tmp / "report.html", forecast=table, history=history, metadata=metadata, command=command_line()
            )
