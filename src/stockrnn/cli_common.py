"""What the command modules share: configs from the options, the command line for the report,
date options and the one-file check. Light: no torch, scikit-learn or pandas at import."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .config import model_config
from .errors import ConfigError
from .interrupt import StopToken

if TYPE_CHECKING:
    import pandas as pd

    from .data import Prices


def make_config(name: str, preset: str | None, target: str, options: dict):
    """A model's config from the defaults, `--preset` or `--preset-file` (not both), then the
    explicit options; `options` may hold `preset_file`, which is taken out of it."""
    from .presets import apply_preset_file

    preset_file = options.get("preset_file")
    values = {k: v for k, v in options.items() if k != "preset_file"}
    if preset_file is None:
        return model_config(name, preset, target=target, **values)
    if preset is not None:
        raise ConfigError("give --preset or --preset-file, not both")
    return apply_preset_file(preset_file, name, target=target, **values)


def check_preset_span(options: dict, test_start: pd.Timestamp) -> None:
    """With --preset-file, refuse a test starting inside the span its settings were tuned on."""
    if options.get("preset_file") is not None:
        from .presets import check_tuned_before

        check_tuned_before(options["preset_file"], test_start.date())


def command_line() -> str:
    """The command that made this run, for report.html."""
    context = click.get_current_context(silent=True)
    argv = (context.find_root().obj or {}).get("argv") if context is not None else None
    return shlex.join(["stockrnn", *(sys.argv[1:] if argv is None else argv)])


def stop_token() -> StopToken:
    """The token `main`'s Ctrl-C handler sets (a first Ctrl-C), for the command to pass to the API;
    a command run outside `main` gets one that is never set."""
    context = click.get_current_context(silent=True)
    stop = (context.find_root().obj or {}).get("stop") if context is not None else None
    return stop if stop is not None else StopToken()


def is_folder(source: str) -> bool:
    """`sources.is_folder` (a bare built-in name and a folder of that name here: asked), imported
    when a command runs, so that this module stays light."""
    from .sources import is_folder as names_folder

    return names_folder(source)


def load_one(source: str, allow_gaps: bool, command: str = "fit and predict take") -> Prices:
    from .data import load_prices

    if is_folder(source):
        raise ConfigError(f"{source}: is a folder; {command} one price file (evaluate runs folders)")
    return load_prices(source, allow_gaps=allow_gaps)


def day(value: str | None, option: str) -> pd.Timestamp | None:
    """A date option: YYYY-MM-DD only ('05/03/2018' could be 5 March or 3 May)."""
    from .windows import parse_day

    return None if value is None else parse_day(value, option)


def single_source_runner(runner: dict) -> None:
    """A single file is one unit, run in this process with `--threads` torch threads (default 1:
    bench/results/threads.md; a second thread gained at most 2% on a quiet machine and cost many
    times over beside another busy process). A wrong combination of the other runner options is
    still an error (as on a folder) rather than silently ignored."""
    if runner["address"] is not None and runner["engine"] != "ray":
        raise ConfigError("--address joins a Ray cluster: it needs --engine ray")
    set_threads(runner["threads"])


def set_threads(threads: int) -> None:
    from .runners import limit_threads

    limit_threads(threads)


def output_folder(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An --out or --save folder, checked before any work (files.check_target): a run must not train
    for minutes and then refuse to write, nor replace a folder of the user's files."""
    if value is not None and not value.lower().endswith(".csv"):  # predict --out x.csv is a file
        from .files import check_target

        check_target(value)
    return value


def default_out(*parts: str) -> Path:
    """runs/<parts...>: the last part holds a name read from the data (a file's Name column), made a
    single safe folder name as a panel's ticker folders are ('../x' or 'BRK/B' would leave runs/)."""
    from .panel import ticker_folder

    return Path("runs", *parts[:-1], ticker_folder(parts[-1]))


def out_folder(out: str | None, default: Path, *inputs: str | Path | None) -> Path:
    """The output folder of a command, --out or its default, checked before the training: one
    `atomic_dir` may replace (files.check_target), and neither one of the inputs nor holding one."""
    from .files import check_apart, check_target

    path = Path(out) if out else default
    check_target(path)
    check_apart(path, inputs)
    return path
