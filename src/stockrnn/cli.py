"""The `stockrnn` command: the group, `main` (one line and an exit code for every failure) and the
commands, each in its own module (evaluate_command, model_commands, panel_command, explain_command,
tune_command) as argument parsing and printing over the public API, nothing else."""

from __future__ import annotations

import os
import sys

import click

from . import __version__, interrupt
from .errors import Interrupted, StockrnnError
from .evaluate_command import backtest_command, demo_command, evaluate_command
from .explain_command import explain_command
from .model_commands import fit_command, predict_command
from .tune_command import tune_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stockrnn")
def cli() -> None:
    """Forecast stock prices with LSTM and GRU networks, and see honestly whether they beat
    the naive forecast "tomorrow = today"."""


def _first_ctrl_c() -> None:
    print("stockrnn: stopping training after the current batch (Ctrl-C again to quit now)", file=sys.stderr)


for command in (evaluate_command, demo_command, backtest_command, fit_command, predict_command, explain_command,
                tune_command):  # fmt: skip
    cli.add_command(command)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning as one line of ours, not Python's two-line form with the source line."""
    text = " ".join(str(message).split())
    print(f"stockrnn: warning: {text} ({category.__name__})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and the documented exit code for every failure."""
    import warnings

    try:
        with interrupt.two_stage_ctrl_c(_first_ctrl_c) as stop, warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            obj = {"argv": list(sys.argv[1:] if argv is None else argv), "stop": stop}  # cli_common.stop_token
            result = cli.main(args=argv, prog_name="stockrnn", standalone_mode=False, obj=obj)
            if stop.aborted:  # a second Ctrl-C whose KeyboardInterrupt Python dropped (see interrupt.py)
                raise KeyboardInterrupt
    except click.exceptions.UsageError as exc:
        print(f"stockrnn: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except StockrnnError as exc:
        print(f"stockrnn: {'' if isinstance(exc, Interrupted) else 'error: '}{exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("stockrnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, unless STOCKRNN_DEBUG asks for the traceback
        if os.environ.get("STOCKRNN_DEBUG"):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"stockrnn: internal error: {type(exc).__name__}: {reason} (please report it)", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
