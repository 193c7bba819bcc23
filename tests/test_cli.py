"""The command line: bad input gets exit 2 and one line naming the problem, and no output;
a good run writes the documented files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import EVALUATE_FILES, assert_clean_failure, make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--epochs", "2", "--quiet"]
HEADER = "Date,Open,High,Low,Close,Volume\n"
ROW = "{d},10,11,9,10,100\n"


def rows(n: int, start: str = "2020-01-01") -> str:
    return "".join(ROW.format(d=d.strftime("%Y-%m-%d")) for d in pd.bdate_range(start, periods=n))


BAD_FILES = {
    "empty": ("", "file is empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary file"),
    "not_utf8": (b"Date,Open,High,Low,Close\n2020-01-02,10,11,9,10\n\xff\xfe\n", "not UTF-8"),
    "header_only": (HEADER, "header but no data rows"),
    "no_date": ("Open,High,Low,Close\n10,11,9,10\n", "no date column"),
    "no_high": ("Date,Open,Low,Close\n2020-01-02,10,9,10\n", "no column for target 'high'"),  # the file loads
    "bad_date": (HEADER + ROW.format(d="2020-01-02") + ROW.format(d="yesterday"), "line 3: date 'yesterday'"),
    "bad_price": (HEADER + "2020-01-02,10,eleven,9,10,100\n", "line 2, column high: 'eleven' is not a number"),
    "duplicate": (HEADER + ROW.format(d="2020-01-02") + ROW.format(d="2020-01-02"), "duplicate date 2020-01-02"),
    "ragged": (HEADER + ROW.format(d="2020-01-02") + "2020-01-03,10,11,9,10,100,7,8\n", "malformed CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files(cli, tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--out", out, *TINY_ARGS)
    assert_clean_failure(code, err, expected, out)
    assert str(path) in err


def test_missing_file(cli, tmp_path):
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", tmp_path / "nope.csv", "--out", out)
    assert_clean_failure(code, err, "nope.csv: no such file", out)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "adj_close"], "no column for target 'adj_close'"),
        (["--test-start", "2031-01-01"], "test start 2031-01-01 is outside the data"),
        (["--test-start", "2019-01-01"], "test start 2019-01-01 is outside the data"),
        (["--test-start", "not-a-date"], "--test-start 'not-a-date' is not a date: use YYYY-MM-DD"),
        (["--test-start", "05/03/2020"], "--test-start '05/03/2020' is ambiguous (day/month order): use YYYY-MM-DD"),
        (["--test-end", "2020-02-30"], "--test-end '2020-02-30' is not a date: use YYYY-MM-DD"),
        (["--train-start", "2020-01-01T10:00"], "--train-start '2020-01-01T10:00' is not a date"),
        (["--test-start", "2020-01-06"], "too few rows before the test start for one window"),
        (["--models", "lstm,prophet"], "unknown model 'prophet'"),
        (["--preset", "fancy"], "Invalid value for '--preset'"),
        (["--epochs", "0"], "Invalid value for '--epochs'"),
        (["--dropout", "1.5"], "Invalid value for '--dropout'"),
        (["--lr", "fast"], "Invalid value for '--lr'"),
        (["--lr", "nan"], "Invalid value for '--lr': nan is not a finite number"),
        (["--cost-bps", "inf"], "Invalid value for '--cost-bps'"),
        (["--cost-bps", "nan"], "Invalid value for '--cost-bps': nan is not a finite number"),
        (["--optimizer", "lion"], "Invalid value for '--optimizer'"),
        (["--device", "tpu"], "Invalid value for '--device': 'tpu' is not auto, cpu, cuda or cuda:N"),
        (["--device", "cuda:x"], "Invalid value for '--device'"),
        (["--seed", str(2**70)], "Invalid value for '--seed'"),
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_options(cli, csv_file, tmp_path, args, expected):
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", csv_file, "--out", out, *TINY_ARGS, *args)
    assert_clean_failure(code, err, expected, out)


def test_real_process_exit_code_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "stockrnn", "evaluate", "--data", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_training_failure_exits_3_naming_the_epoch(cli, tmp_path):
    path = tmp_path / "big.csv"
    make_prices(200).to_csv(path)
    out = tmp_path / "out"
    code, _, err = cli(
        "evaluate", "--data", path, "--out", out, *TINY_ARGS, "--models", "lstm",
        "--optimizer", "sgd", "--lr", "1e30", "--test-start", "2020-09-01",
    )  # fmt: skip
    assert code == 3, err
    assert "failed at epoch 1" in err and "--lr" in err and "Traceback" not in err
    assert not out.exists()


def test_evaluate_end_to_end_on_builtin_slice(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli(
        "evaluate", "--data", "sp500", "--train-start", "2017-06-01", "--test-start", "2018-09-01",
        "--out", out, *TINY_ARGS, "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == EVALUATE_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"models", "data", "settings", "versions"}
    assert list(metrics["models"]) == ["lstm", "gru", "persistence", "ridge"]
    keys = {"rmse", "mae", "mape", "direction_accuracy", "skill", "dm_stat", "dm_pvalue", "best_lag", "by_step"}
    assert all(keys <= set(m) for m in metrics["models"].values())
    assert metrics["models"]["persistence"]["direction_accuracy"] is None
    assert metrics["models"]["persistence"]["skill"] == 0.0
    assert metrics["data"]["source"] == "sp500" and metrics["data"]["repairs"]["counts"]["filled"] == 0
    assert metrics["settings"]["test_start"] == "2018-09-04"
    assert metrics["settings"]["models"]["lstm"]["seed"] == 3 and metrics["interrupted"] is False
    table = pd.read_csv(out / "predictions.csv", parse_dates=["date"])
    assert list(table.columns[:6]) == ["date", "actual", "lstm", "gru", "persistence", "ridge"]  # then interval bounds
    assert table["date"].iloc[0] == pd.Timestamp("2018-09-04") and len(table) == metrics["data"]["scored_days"]
    assert (out / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("lstm", "gru", "persistence", "ridge"):
        assert f"{name} " in stdout or f"{name}:" in stdout
    assert "persistence" in stdout and "Outputs in" in stdout


def test_demo_help_and_version(cli):
    code, out, _ = cli("demo", "--help")
    assert code == 0 and "S&P 500" in out
    code, out, _ = cli("evaluate", "--help")
    for option in ("--data", "--target", "--test-start", "--models", "--preset", "--window", "--horizon", "--out"):
        assert option in out
    code, out, _ = cli("--version")
    assert code == 0 and "stockrnn" in out


def test_an_unexpected_exception_is_one_line_and_exit_1(cli, csv_file, tmp_path, monkeypatch):
    """The last resort in `main` for a bug; the command fuzz test shows no input reaches it."""
    import stockrnn.data

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(stockrnn.data, "load_prices", broken)
    monkeypatch.delenv("STOCKRNN_DEBUG", raising=False)
    code, _, err = cli("fit", "--data", csv_file, "--save", tmp_path / "m", "--quiet")
    assert code == 1 and err == "stockrnn: internal error: RuntimeError: boom (please report it)\n"


def test_a_library_warning_reaches_the_terminal_as_one_line(cli, csv_file, tmp_path, monkeypatch):
    """Python prints a warning as two lines with the library's source line; ours is one line."""
    import warnings

    import stockrnn.data

    real = stockrnn.data.load_prices

    def warns(*args, **kwargs):
        warnings.warn("overflow encountered\nin exp", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stockrnn.data, "load_prices", warns)
    code, _, err = cli("fit", "--data", csv_file, "--model", "ridge", "--save", tmp_path / "m", "--quiet")
    assert code == 0
    assert err == "stockrnn: warning: overflow encountered in exp (RuntimeWarning)\n"


def test_names_and_paths_print_as_they_are(cli, tmp_path):
    """What the user named is never read as rich markup or matplotlib mathematics: a ticker
    `k[red]o` printed as "ko", an output folder `o[/b]x` failed after the run (exit 1), a ticker
    `K$\\x$O` failed to draw its figure."""
    for name in ("k[red]o", "K$\\x$O"):
        data = tmp_path / f"{name}.csv"
        make_prices(120).round(4).to_csv(data)
        out = tmp_path / "o[" / "b]x"  # the folder `o[/b]x`
        code, stdout, err = cli("evaluate", "--data", data, "--test-start", "2020-05-01", "--models", "ridge",
                                "--out", out, "--no-report", "--quiet")  # fmt: skip
        assert code == 0, err
        assert stdout.startswith(f"{name}: 120 rows") and "Outputs in" in stdout and str(out) in stdout
        assert (out / "forecast.png").stat().st_size > 0
