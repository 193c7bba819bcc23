"""Fuzzing the loader: mutated CSV text (cut lines, swapped columns, junk bytes, random numbers)
either loads as valid prices or raises DataError with one line naming the file: never another
exception. 300 examples by default; STOCKRNN_FUZZ_EXAMPLES=20000 for a long local run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockrnn import DataError, Prices, load_prices
from stockrnn.data import PRICE_LIKE

from conftest import make_prices

EXAMPLES = int(os.environ.get("STOCKRNN_FUZZ_EXAMPLES", "300"))
BASE = make_prices(40, seed=11).round(4)
BASE.insert(4, "Adj Close", (BASE["Close"] * 0.98).round(4))
BASE_LINES = BASE.to_csv().splitlines()
WORKDIR = Path(tempfile.mkdtemp(prefix="stockrnn-fuzz-"))

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(
        [
            "",
            "null",
            "NaN",
            "-",
            "N/A",
            "1,234.5",
            "1.234,5",
            "0",
            "-0.0",
            "1e308",
            "1e999",
            "inf",
            "2020-13-45",
            "2020-01-02",
            "abc",
            '"',
            '""',
            "10;11",
            "\t",
            " 12 ",
        ]
    ),  # fmt: skip
    st.text(max_size=8),
)


@st.composite
def mutated_csv(draw) -> bytes:
    lines = list(BASE_LINES)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "drop", "dup", "swap_lines", "swap_cols", "cell", "date", "sep", "junk"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        if op == "cut":  # a line cut part way, or the whole file cut after it
            line = lines[i]
            lines[i] = line[: draw(st.integers(0, len(line)))]
            if draw(st.booleans()):
                lines = lines[: i + 1]
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap_lines":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "swap_cols":  # in the header only, or from some line on (columns that shift part way)
            a, b = draw(st.integers(0, 6)), draw(st.integers(0, 6))
            for k in range(i, len(lines) if draw(st.booleans()) else i + 1):
                parts = lines[k].split(",")
                if max(a, b) < len(parts):
                    parts[a], parts[b] = parts[b], parts[a]
                lines[k] = ",".join(parts)
        elif op in ("cell", "date"):
            parts = lines[i].split(",")
            col = 0 if op == "date" else draw(st.integers(0, max(len(parts) - 1, 0)))
            if parts:
                parts[min(col, len(parts) - 1)] = draw(cells)
            lines[i] = ",".join(parts)
        elif op == "sep":
            lines[i] = lines[i].replace(",", draw(st.sampled_from([";", "\t", ",,", " "])))
        else:  # junk bytes land in the encoded text below
            pass
    data = ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        junk = draw(st.binary(min_size=1, max_size=12))
        at = draw(st.integers(0, len(data)))
        data = data[:at] + junk + data[at:]
    return data


def check_valid(prices: Prices) -> None:
    frame = prices.frame
    index = frame.index
    assert isinstance(index, pd.DatetimeIndex) and index.tz is None and len(frame) >= 1
    assert index.is_monotonic_increasing and index.is_unique and (index == index.normalize()).all()
    ohlc = [c for c in ("open", "high", "low", "close") if c in frame.columns]
    assert any(c in PRICE_LIKE for c in frame.columns)  # a mutated header may drop a price name, not all
    values = frame.to_numpy(dtype=float)
    assert np.isfinite(values).all()
    assert (frame[ohlc] > 0).all().all()
    body = frame[[c for c in ("open", "close") if c in frame.columns]]
    if "low" in frame.columns:
        assert (frame["low"] <= body.min(axis=1).fillna(np.inf)).all()
    if "high" in frame.columns:
        assert (frame["high"] >= body.max(axis=1).fillna(-np.inf)).all()
    assert prices.repairs.rows_repaired() <= prices.repairs.source_rows


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_csv(), allow_gaps=st.booleans())
def test_loader_returns_valid_prices_or_a_data_error(data: bytes, allow_gaps: bool):
    path = WORKDIR / "fuzz.csv"
    path.write_bytes(data)
    try:
        prices = load_prices(path, allow_gaps=allow_gaps)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return
    check_valid(prices)


def test_the_unmutated_base_loads():
    path = WORKDIR / "base.csv"
    path.write_text("\n".join(BASE_LINES) + "\n")
    prices = load_prices(path)
    check_valid(prices)
    assert len(prices) == 40 and prices.repairs.rows_repaired() == 0
