"""`stockrnn explain`: the gates and attributions of a saved LSTM/GRU for one window, as files."""

from __future__ import annotations

import sys

import click

from .cli_common import default_out, is_folder, out_folder, output_folder
from .options import ONE_SOURCE_HELP, allow_gaps_option


@click.command("explain")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--data", "source", required=True, help=ONE_SOURCE_HELP)
@click.option(
    "--date", "day", help="Last day of the window, YYYY-MM-DD (the last row on or before it).  [default: the last row]"
)
@click.option(
    "--member", type=click.IntRange(min=0), default=0, show_default=True, help="Ensemble member whose gates are shown."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    callback=output_folder,
    help="Output folder.  [default: runs/explain/<data>-<model>]",
)
@allow_gaps_option
def explain_command(model_dir, source, day, member, out, allow_gaps) -> None:
    """Run the LSTM or GRU saved in MODEL_DIR over the window of --data that ends at --date, and
    write its gates at every step (gates.csv), which inputs and days its forecast rests on
    (attributions.csv: integrated gradients against the window of training means), explain.png,
    explain_section.html (for report.html) and report.html; print a plain-language reading."""
    from .cli_common import command_line
    from .data import load_prices
    from .errors import ConfigError
    from .explain import explain
    from .explain_plots import explain_figure, explain_section, png_bytes
    from .files import atomic_dir
    from .forecaster import load, versions
    from .plots import literal
    from .progress import output_console, strong
    from .report import write_report

    model = load(model_dir)
    if is_folder(source):
        raise ConfigError(f"{source}: is a folder; explain takes one price file")
    prices = load_prices(source, allow_gaps=allow_gaps)
    out = out_folder(out, default_out("explain", f"{prices.name}-{model.name}"), source, model_dir)
    # Another ticker's file (or another span) is explained as asked, but said so, as `predict` does.
    warning = None
    if hasattr(model, "check_data"):
        try:
            warning = model.check_data(prices)
        except ConfigError:  # data ending before the training end: a past window, fine to explain
            warning = None
    explanation = explain(model, prices, day, member=member)
    png = png_bytes(explain_figure(explanation, f"{literal(prices.name)}: " + _title(explanation)))
    section = explain_section(explanation, png)
    with atomic_dir(out) as tmp:
        (tmp / "explain.png").write_bytes(png)
        explanation.gates.to_csv(tmp / "gates.csv", index=False, date_format="%Y-%m-%d", float_format="%.6g")
        explanation.attributions.to_csv(
            tmp / "attributions.csv", index=False, date_format="%Y-%m-%d", float_format="%.6g"
        )
        (tmp / "explain_section.html").write_text(section)
        data = {"source": prices.source, "name": prices.name, "target": model.config.target, "rows": len(prices),
                "first": f"{prices.index[0]:%Y-%m-%d}", "last": f"{prices.index[-1]:%Y-%m-%d}",
                "repairs": prices.repairs.to_dict()}  # fmt: skip
        settings = {"model": model.name, "date": f"{explanation.date:%Y-%m-%d}", "config": model.config.to_dict()}
        write_report(
            tmp / "report.html", explain_html=section,
            metadata={"data": data, "settings": settings, "versions": versions()}, command=command_line(),
        )  # fmt: skip
    if warning:  # after every check, so that a failing run prints its error line alone
        print(f"stockrnn: warning: {warning}", file=sys.stderr)
    console = output_console()
    for line in explanation.reading:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(strong("Outputs in ", (str(out), "bold"), ": explain.png, gates.csv, attributions.csv, report.html"))


def _title(e) -> str:
    return (
        f"{e.model.upper()} window ending {e.date:%Y-%m-%d} (gates of member {e.member}): "
        f"forecast of {e.target} {e.forecast:.4g}, baseline window {e.baseline_forecast:.4g}"
    )
