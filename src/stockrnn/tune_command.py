"""`stockrnn tune`: the Optuna search of a network's settings, with progress and the best table."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import stop_token
from .options import MAX_SEED, ONE_SOURCE_HELP, allow_gaps_option


@click.command("tune")
@click.option(
    "--data", "source", required=True, help=ONE_SOURCE_HELP + " A folder: tunes the global network of the panel."
)
@click.option(
    "--model",
    "model_name",
    type=click.Choice(("lstm", "gru")),
    default="lstm",
    show_default=True,
    help="Network whose settings are searched.",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Trials in the study in all (with --resume, the ones already done count).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for the study (study.log) and best.json.  [default: runs/tune/<data>-<target>-<model>]",
)
@click.option("--resume", is_flag=True, help="Continue the study in --out; its finished trials are kept.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Most epochs per trial (early stopping and pruning end many sooner).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seeds every trial's network and the TPE sampler.",
)
@click.option("--target", default="high", show_default=True, help="Column to forecast (high, close, adj_close, ...).")
@click.option(
    "--test-start",
    help="First day of the test period, YYYY-MM-DD: no trial reads it or anything after it.  "
    "[default: the last 252 rows]",
)
@click.option(
    "--val-days",
    type=click.IntRange(min=1),
    help="Trading days before the test start on which trials are scored.  "
    "[default: 252, or a fifth of the rows before the test start if fewer]",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present, else CPU), cpu or cuda.")
@allow_gaps_option
@click.option(
    "--jobs",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Trials run at a time (0: one per core), at most --batch.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Trials proposed together, each with the others in mind: the search depends on it, never on --jobs "
    "or --engine.",
)
@click.option(
    "--engine",
    type=click.Choice(("local", "ray")),
    default="local",
    show_default=True,
    help="Where parallel trials run: processes on this machine, or Ray (embedded, or the cluster at --address).",
)
@click.option(
    "--address",
    help="HOST:PORT of a Ray cluster to run the trials on (with --engine ray; its workers need --out "
    "at the same path, for the study's journal).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Torch threads per trial, in every engine: scores never depend on --engine.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def tune_command(
    source, model_name, trials, out, resume, epochs, seed, target, test_start, val_days, device, allow_gaps,
    jobs, batch, engine, address, threads, quiet,
) -> None:  # fmt: skip
    """Search window, units, layers, dropout, learning rate and batch size of an LSTM or GRU with
    Optuna (TPE sampler; trials worse than the median after 5 epochs are pruned). Each trial fits
    one network (no ensemble) on the rows before the validation period and is scored by its
    next-day RMSE there relative to persistence's (lower is better; below 1 beats persistence).
    The validation period is the last --val-days before --test-start; the test period is never
    read. The best settings go to OUT/best.json, a preset file for `--preset-file`.

    On a folder the trials fit the global network (one for every ticker) and are scored by the
    median over tickers of that ratio, on the last --val-days dates of the panel before
    --test-start; best.json then sets the global models of `evaluate/fit --data FOLDER`.

    --batch trials are proposed together, then run --jobs at a time: the same --seed and --batch
    give the same trials with any --jobs and --engine. A first Ctrl-C lets the running trials
    finish (in this process: stops the trial's training, which then does not count) and starts no
    more."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .progress import output_console
    from .tune import tune

    out = Path(out) if out else Path("runs") / "tune" / f"{Path(str(source)).stem}-{target}-{model_name}"
    progress = Progress(
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    task = progress.add_task("trials", total=trials, counts="")

    def on_trial(c: dict) -> None:
        if not progress.live.is_started:  # shown once the settings are checked: an error stays one line
            progress.start()
        best = "-" if c["best"] is None else f"{c['best']:.4f}"
        shown = f"pruned {c['pruned']}  failed {c['failed']}  best {best}"
        progress.update(task, completed=c["finished"], counts=shown)

    try:
        result = tune(
            source, model_name, trials, out, resume=resume, epochs=epochs, seed=seed, target=target,
            test_start=test_start, val_days=val_days, device=device, allow_gaps=allow_gaps, on_trial=on_trial,
            jobs=jobs, engine=engine, threads=threads, address=address, stop=stop_token(), batch=batch,
        )  # fmt: skip
    finally:
        if progress.live.is_started:
            progress.stop()
    print_best(output_console(), result)


def print_best(console, result) -> None:
    """The best settings and their validation scores, then where the files are."""
    from rich.table import Table

    from .progress import strong

    s, st = result.score, result.study
    console.print(
        strong(
            (f"best {result.model}", "bold"),
            f", from trial {st['best_trial']} of the study's {st['finished']} "
            f"({st['complete']} complete, {st['pruned']} pruned, {st['failed']} failed)",
        )
    )
    table = Table()
    table.add_column("setting")
    table.add_column("value", justify="right")
    for key, value in result.settings.items():
        table.add_row(key.replace("_", "-"), f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    span = f"validation {s['val_start']} .. {s['val_end']}"
    if "rmse" in s:
        scores = f"({s['days']} days): RMSE {s['rmse']:.4f}, persistence {s['persistence_rmse']:.4f}, skill "
    else:  # a panel: the global network's median over the tickers
        scores = f"({s['tickers']} tickers, {s['days']} ticker-days): median skill "
    console.print(f"{span} {scores}{s['skill']:+.4f}", highlight=False)
    for entry in s.get("skipped", []):  # a panel: the folder's tickers the best trial did not score
        console.print(f"  skipped {entry['ticker']}: {entry['reason']}")
    note = "; interrupted: --resume continues the search" if st["interrupted"] else ""
    console.print(strong("Best settings in ", (str(result.path), "bold"), f" (use with --preset-file){note}"))
