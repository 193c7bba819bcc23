"""The package as people meet it: a light `import stockrnn` and quick `--help`, the names the README
imports, plain output, files with the usual permissions."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import stockrnn
from stockrnn.files import atomic_dir, atomic_file
from stockrnn.progress import output_console

SRC = Path(__file__).resolve().parents[1] / "src"


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_cli_imports_no_torch_or_sklearn():
    result = run_python("-c", "import stockrnn.cli, sys; print('torch' in sys.modules, 'sklearn' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_in_a_real_process(option):
    result = run_python("-m", "stockrnn", option)
    assert result.returncode == 0, result.stderr
    assert "stockrnn" in result.stdout and result.stderr == ""


def test_the_readme_names_are_the_functions_even_after_their_modules_load():
    importlib.import_module("stockrnn.backtest")  # binds nothing over the function of that name
    importlib.import_module("stockrnn.evaluate")
    from stockrnn import Backtest, backtest, evaluate, load_folder
    from stockrnn.backtest import Backtest as BacktestClass
    from stockrnn.backtest import backtest as backtest_function
    from stockrnn.data import load_folder as load_folder_function
    from stockrnn.evaluate import evaluate as evaluate_function

    assert backtest is backtest_function and stockrnn.backtest is backtest_function
    assert evaluate is evaluate_function and stockrnn.evaluate is evaluate_function
    assert Backtest is BacktestClass and load_folder is load_folder_function
    for name in stockrnn.__all__:
        assert getattr(stockrnn, name) is not None
    with pytest.raises(AttributeError):
        stockrnn.no_such_name  # noqa: B018


def test_window_modes_of_the_light_options_match_the_backtest():
    from stockrnn.backtest import WINDOW_MODES
    from stockrnn.options import WINDOW_MODES as OPTION_MODES

    assert OPTION_MODES == WINDOW_MODES


def test_feature_kinds_are_one_tuple():
    from stockrnn import config, features

    assert features.KINDS is config.KINDS


def test_output_console_does_not_colour_digits():
    console = output_console()
    assert console.render_str("IBM: 3019 rows, 2006-01-03 .. 2017-12-29; 5 filled").spans == []


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_permissions_of_the_umask(tmp_path, umask_022):
    with atomic_dir(tmp_path / "run") as tmp:
        (tmp / "metrics.json").write_text("{}")
    with atomic_file(tmp_path / "next.csv") as tmp:
        tmp.write_text("date\n")
    assert mode(tmp_path / "run") == 0o755
    assert mode(tmp_path / "run" / "metrics.json") == 0o644
    assert mode(tmp_path / "next.csv") == 0o644
    os.umask(0o077)
    with atomic_file(tmp_path / "private.csv") as tmp:
        tmp.write_text("date\n")
    assert mode(tmp_path / "private.csv") == 0o600
