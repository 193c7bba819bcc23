"""Shared fixtures: synthetic price histories, CSV writers and an in-process CLI runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stockrnn.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IBM = SHARED / "djia" / "IBM_2006-01-01_to_2018-01-01.csv"
TATA = SHARED / "nse" / "NSE-TATAGLOBAL.csv"
needs_shared = pytest.mark.skipif(not IBM.exists(), reason=f"shared price data not found at {SHARED}")

# Small enough to train in well under a second.
# What a single-file evaluate writes (with its report).
EVALUATE_FILES = {"metrics.json", "predictions.csv", "forecast.png", "report.html", ".stockrnn"}
TINY = dict(window=5, layers=1, units=4, dropout=0.0, epochs=2, batch_size=16)


def make_prices(rows: int = 300, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """A geometric random walk with consistent OHLCV columns, on weekdays."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = close * np.exp(rng.normal(0, 0.005, rows))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, rows)))
    volume = rng.integers(1_000, 10_000, rows)
    index = pd.bdate_range(start, periods=rows, name="Date")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}, index=index)


FAST = ["--models", "persistence", "--quiet"]  # CLI flags of a run that trains nothing
HEADER = "Date,Open,High,Low,Close,Volume\n"


def walk_csv(rows: int = 40, start: str = "2020-01-01", seed: int = 0) -> str:
    """make_prices as CSV text, rounded as a download would be."""
    return make_prices(rows, seed=seed, start=start).round(4).to_csv()


def write(tmp_path: Path, content: str | bytes, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def assert_clean_failure(code: int, err: str, expected: str, out: Path) -> None:
    """Bad input's contract: exit 2, one line naming what is wrong, no traceback, no output
    (not even a half-written temporary folder beside it)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stockrnn: error: ") and "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.fixture
def prices_frame() -> pd.DataFrame:
    return make_prices()


@pytest.fixture
def csv_file(tmp_path: Path, prices_frame: pd.DataFrame) -> Path:
    path = tmp_path / "TEST.csv"
    prices_frame.round(4).to_csv(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of four tickers' price files (AAA .. DDD), 300 weekdays from 2020-01-01 (a test
    module may define its own `folder`)."""
    folder = tmp_path / "panel"
    folder.mkdir()
    for i, ticker in enumerate(("AAA", "BBB", "CCC", "DDD")):
        make_prices(300, seed=10 + i).to_csv(folder / f"{ticker}.csv")
    return folder


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
