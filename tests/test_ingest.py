"""Data users really have: Parquet, folders, European CSVs, time zones, Yahoo Finance; the
validation report (repairs, gaps, split-like jumps, the 5% limit); and every bad input ending
with exit 2, one line naming the file (and line or column), and no output left behind."""

from __future__ import annotations

import io
import json
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stockrnn import DataError, evaluate, load_prices, make_forecaster, model_config
from stockrnn.data import load_folder

from conftest import SHARED, TINY, make_prices, needs_shared

FAST = ["--models", "persistence", "--quiet"]
HEADER = "Date,Open,High,Low,Close,Volume\n"


def walk_csv(rows: int = 40, start: str = "2020-01-01", seed: int = 0) -> str:
    return make_prices(rows, seed=seed, start=start).round(4).to_csv()


def write(tmp_path: Path, content: str | bytes, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# -- 1. sources ---------------------------------------------------------------------------------
def test_parquet_file_matches_csv(tmp_path):
    frame = make_prices(60)
    frame.to_parquet(tmp_path / "AAA.parquet")
    frame.to_csv(tmp_path / "AAA.csv")
    from_parquet, from_csv = load_prices(tmp_path / "AAA.parquet"), load_prices(tmp_path / "AAA.csv")
    assert from_parquet.name == "AAA" and list(from_parquet.frame.columns) == ["open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(from_parquet.frame, from_csv.frame, check_exact=False, rtol=1e-12)


def test_parquet_with_tz_aware_date_column_and_ticker(tmp_path):
    frame = make_prices(30).reset_index()
    frame["Date"] = frame["Date"].dt.tz_localize("Asia/Kolkata")  # midnight in Mumbai is 18:30 UTC the day before
    frame["ticker"] = "TATA"
    frame.to_parquet(tmp_path / "prices.parquet")
    prices = load_prices(tmp_path / "prices.parquet")
    assert prices.name == "TATA"
    assert prices.index[0] == pd.Timestamp("2020-01-01") and prices.index.tz is None


def test_parquet_named_csv_is_read_as_parquet(tmp_path):
    make_prices(30).to_parquet(tmp_path / "odd.csv")
    assert len(load_prices(tmp_path / "odd.csv")) == 30


def test_folder_one_ticker_per_file_in_name_order(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    make_prices(50, seed=1).assign(Name="ZZZ").to_csv(folder / "a_file.csv")  # ticker from the Name column
    make_prices(40, seed=2).to_parquet(folder / "BBB.parquet")  # ticker from the file name
    make_prices(45, seed=3).to_csv(folder / "CCC_2020-01-01_to_2020-03-01.csv")
    (folder / "README.md").write_text("not data")
    (folder / ".hidden.csv").write_text("junk")
    panel = load_folder(folder)
    assert list(panel) == ["BBB", "CCC", "ZZZ"]  # file-name order: BBB.parquet, CCC_..., a_file.csv
    assert [len(p) for p in panel.values()] == [40, 45, 50]
    assert panel["BBB"].source.endswith("BBB.parquet")


def test_folder_with_the_same_ticker_twice(tmp_path):
    make_prices(30).to_csv(tmp_path / "IBM.csv")
    make_prices(30).assign(Name="IBM").to_csv(tmp_path / "other.csv")
    with pytest.raises(DataError, match="ticker IBM is in both IBM.csv and other.csv"):
        load_folder(tmp_path)


@needs_shared
def test_shared_djia_folder():
    panel = load_folder(SHARED / "djia")
    assert len(panel) == 24 and "IBM" in panel and "AAPL" in panel
    assert panel["HD"].repairs.dropped_nonpositive == [pd.Timestamp("2009-04-17")]
    assert not panel["AAPL"].repairs.jumps  # split-adjusted: no jump beyond x1.8


def test_semicolon_file_with_decimal_commas_and_day_first_dates(tmp_path):
    text = (
        "Datum;Open;High;Low;Close;Volume\n"
        "02.01.2020;1.234,50;1.240,00;1.230,25;1.235,75;1.000\n"
        "03.01.2020;1.235,00;1.250,50;1.231,00;1.249,00;2.500\n"
        "13.01.2020;1.249,00;1.260,00;1.245,00;1.255,00;3.000\n"
    )
    prices = load_prices(write(tmp_path, text.replace("Datum", "date")))
    assert list(prices.index) == list(pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-13"]))
    assert prices.frame["open"].tolist() == [1234.5, 1235.0, 1249.0]
    assert prices.frame["volume"].tolist() == [1000, 2500, 3000]


def test_thousands_separators(tmp_path):
    text = HEADER + '2020-01-02,"1,234.5","1,240",1230,1235,"12,000,000"\n2020-01-03,1235,1250,1231,1249,"9 000"\n'
    prices = load_prices(write(tmp_path, text))
    assert prices.frame["open"].tolist() == [1234.5, 1235.0]
    assert prices.frame["volume"].tolist() == [12_000_000, 9000]


@pytest.mark.parametrize("name", ["date", "timestamp", "Datetime", "DATE", "Time"])
def test_date_column_under_other_names(tmp_path, name):
    prices = load_prices(write(tmp_path, walk_csv(10).replace("Date,", f"{name},", 1)))
    assert len(prices) == 10 and prices.index[0] == pd.Timestamp("2020-01-01")


def test_unnamed_index_column_as_written_by_pandas(tmp_path):
    frame = make_prices(10)
    frame.index.name = None
    assert load_prices(write(tmp_path, frame.to_csv())).index[0] == pd.Timestamp("2020-01-01")


def test_times_and_time_zones_become_local_dates(tmp_path):
    text = (
        "Datetime,Open,High,Low,Close\n"
        "2020-01-02 00:00:00-05:00,10,11,9,10\n"  # winter offset
        "2020-06-01 00:00:00-04:00,10,11,9,10.5\n"  # summer offset: mixed offsets in one column
        "2020-06-02T00:00:00+05:30,10,11,9,10.2\n"  # midnight in Mumbai, 18:30 UTC the day before
        "2020-06-03 15:30:00Z,10,11,9,10.1\n"
        "2020-06-04 09:30,10,11,9,10.3\n"
    )
    prices = load_prices(write(tmp_path, text))
    expected = pd.to_datetime(["2020-01-02", "2020-06-01", "2020-06-02", "2020-06-03", "2020-06-04"])
    assert list(prices.index) == list(expected)


def test_epoch_seconds_timestamps(tmp_path):
    text = "timestamp,open,high,low,close\n1577923200,10,11,9,10\n1578009600,10,11,9,10.5\n"
    assert list(load_prices(write(tmp_path, text)).index) == list(pd.to_datetime(["2020-01-02", "2020-01-03"]))


def test_adj_close_as_target(cli, tmp_path):
    frame = make_prices(120)
    frame.insert(4, "Adj Close", frame["Close"] * 0.9)
    path = write(tmp_path, frame.round(4).to_csv())
    out = tmp_path / "out"
    code, stdout, err = cli("evaluate", "--data", path, "--target", "adj_close", "--test-start", "2020-05-01",
                            "--out", out, *FAST)  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["target"] == "adj_close"
    actual = pd.read_csv(out / "predictions.csv")["actual"].to_numpy()
    np.testing.assert_allclose(actual, (frame["Close"] * 0.9).round(4).loc["2020-05-01":].to_numpy(), rtol=1e-5)


# -- files without open, high, low: the inputs made from them are left out -----------------------
OHLC_INPUTS = {"open_gap", "high_range", "low_range", "range_mean_5", "range_mean_20"}


def test_evaluate_a_date_close_file(tmp_path):
    frame = make_prices(300)  # 218 training rows: enough validation windows for a 95% interval
    path = write(tmp_path, frame[["Close"]].round(4).to_csv())
    models = [
        make_forecaster("lstm", model_config("lstm", **TINY, ensemble=1, target="close")),
        make_forecaster("ridge", model_config("ridge", window=5, target="close")),
        make_forecaster("persistence", model_config("persistence", target="close")),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(load_prices(path), models, test_start="2020-11-02")
    assert models[0].features_.names_ == ["close_return"] == models[1].features_.names_
    for name in ("lstm", "ridge", "persistence"):
        m = result.metrics["models"][name]
        assert m["n"] == len(frame.loc["2020-11-02":]) and np.isfinite(m["rmse"]) and m["coverage_80"] is not None
    saved = json.loads(json.dumps(models[1].features_.to_dict()))
    assert saved["names"] == ["close_return"]


def test_close_only_inputs_keep_volume_and_skip_ohlc():
    frame = make_prices(80)[["Close", "Volume"]]
    model = make_forecaster("ridge", model_config("ridge", window=5, target="close")).fit(frame)
    assert model.features_.names_ == ["close_return", "volume_relative"]
    assert not OHLC_INPUTS & set(model.features_.names_)
    full = make_forecaster("ridge", model_config("ridge", window=5, target="close")).fit(make_prices(80))
    assert set(full.features_.names_) >= OHLC_INPUTS  # with open/high/low the inputs are as before


def test_a_file_with_only_adj_close_is_measured_against_itself():
    frame = make_prices(80)
    frame = pd.DataFrame({"Adj Close": frame["Close"] * 0.9}, index=frame.index)
    model = make_forecaster("ridge", model_config("ridge", window=5, target="adj_close")).fit(frame)
    assert model.features_.names_ == ["adj_close_return"]
    forecast = model.predict(frame)["forecast"].iloc[0]
    assert forecast == pytest.approx(frame["Adj Close"].iloc[-1], rel=0.05)  # a ratio of the last value


def test_level_features_on_a_close_only_file():
    frame = make_prices(80)[["Close"]]
    model = make_forecaster("ridge", model_config("ridge", window=5, target="close", features="level")).fit(frame)
    assert model.features_.names_ == ["close"] and np.isfinite(model.predict(frame)["forecast"]).all()


def test_a_model_fitted_with_ohlc_refuses_a_close_only_file():
    model = make_forecaster("ridge", model_config("ridge", window=5, target="close")).fit(make_prices(80))
    with pytest.raises(DataError, match="trained on inputs the data cannot give: open_gap, high_range.*columns close"):
        model.predict(make_prices(80)[["Close", "Volume"]])


def test_cli_evaluate_on_a_date_close_file(cli, tmp_path):
    path = write(tmp_path, make_prices(120)[["Close"]].round(4).to_csv())
    out = tmp_path / "out"
    code, stdout, err = cli("evaluate", "--data", path, "--target", "close", "--models", "ridge",
                            "--window", "5", "--test-start", "2020-05-01", "--out", out, "--quiet")  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["data"]["rows"] == 120
    assert "no open, high, low column(s): the inputs built from them" in " ".join(stdout.split())


# -- Yahoo Finance: a replay of the frame yfinance 1.7.0 returns, never the network ---------------
def yahoo_history_frame(rows: int = 30, tz: str = "America/New_York") -> pd.DataFrame:
    """What `yf.Ticker(t).history(period="max", interval="1d", auto_adjust=False, actions=False)`
    returns in yfinance 1.7.0: flat columns Open, High, Low, Close, Adj Close, Volume (int64), on a
    DatetimeIndex named Date at midnight in the exchange's time zone."""
    base = make_prices(rows, seed=5)
    index = pd.DatetimeIndex(base.index.date, name="Date").tz_localize(tz)
    return pd.DataFrame(
        {
            "Open": base["Open"].to_numpy(),
            "High": base["High"].to_numpy(),
            "Low": base["Low"].to_numpy(),
            "Close": base["Close"].to_numpy(),
            "Adj Close": base["Close"].to_numpy() * 0.97,
            "Volume": base["Volume"].to_numpy().astype(np.int64),
        },
        index=index,
    )


def fake_yfinance(monkeypatch, frame: pd.DataFrame | None = None, error: Exception | None = None) -> list[dict]:
    calls: list[dict] = []

    class Ticker:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        def history(self, **kwargs) -> pd.DataFrame:
            calls.append({"symbol": self.symbol, **kwargs})
            if error is not None:
                raise error
            return frame

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(Ticker=Ticker, __version__="1.7.0"))
    return calls


def test_yahoo_replay(monkeypatch):
    frame = yahoo_history_frame()
    calls = fake_yfinance(monkeypatch, frame)
    prices = load_prices("yahoo:AAPL")
    assert calls == [{"symbol": "AAPL", "period": "max", "interval": "1d", "auto_adjust": False, "actions": False}]
    assert prices.name == "AAPL" and prices.source == "yahoo:AAPL"
    assert list(prices.frame.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert prices.index.tz is None and list(prices.index.date) == list(frame.index.date)
    np.testing.assert_array_equal(prices.frame["adj_close"].to_numpy(), frame["Adj Close"].to_numpy())


def test_yahoo_replay_east_of_utc_keeps_the_local_date(monkeypatch):
    frame = yahoo_history_frame(tz="Asia/Kolkata")
    fake_yfinance(monkeypatch, frame)
    assert list(load_prices("yahoo:TATAGLOBAL.NS").index.date) == list(frame.index.date)


def test_download_shaped_frame_with_column_levels():
    """`yf.download(...)` returns (Price, Ticker) column levels; a frame like it loads as one ticker."""
    frame = yahoo_history_frame()
    frame.columns = pd.MultiIndex.from_product([frame.columns, ["AAPL"]], names=["Price", "Ticker"])
    frame = frame.sort_index(axis=1, level=0)
    prices = load_prices(frame)
    assert set(prices.frame.columns) == {"open", "high", "low", "close", "adj_close", "volume"}
    two = pd.concat({"AAPL": yahoo_history_frame(), "MSFT": yahoo_history_frame()}, axis=1, names=["Ticker", "Price"])
    with pytest.raises(DataError, match="several tickers"):
        load_prices(two.swaplevel(0, 1, axis=1))


def test_yahoo_without_the_extra(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # import fails as when not installed
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", "yahoo:AAPL", "--out", out, *FAST)
    assert_clean_failure(code, err, "pip install 'stockrnn[yahoo]'", out)


@pytest.mark.parametrize(
    ("frame", "error", "expected"),
    [
        (pd.DataFrame(), None, "Yahoo Finance returned no prices"),
        (None, ConnectionError("Failed to resolve host\nmore detail"), "download failed (ConnectionError"),
    ],
)
def test_yahoo_failures(cli, monkeypatch, tmp_path, frame, error, expected):
    fake_yfinance(monkeypatch, frame, error)
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", "yahoo:NOPE", "--out", out, *FAST)
    assert_clean_failure(code, err, f"yahoo:NOPE: {expected}", out)


# -- 2. validation with a report ----------------------------------------------------------------
def with_missing_highs(rows: int, missing: int) -> str:
    lines = walk_csv(rows).splitlines()
    for i in range(missing):
        cells = lines[5 + 3 * i].split(",")
        cells[2] = ""
        lines[5 + 3 * i] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_five_percent_repaired_is_fine(tmp_path):
    prices = load_prices(write(tmp_path, with_missing_highs(100, 5)))
    assert prices.repairs.rows_repaired() == 5 and len(prices.repairs.filled["high"]) == 5


def test_more_than_five_percent_repaired_is_an_error_unless_allowed(cli, tmp_path):
    path = write(tmp_path, with_missing_highs(100, 6))
    with pytest.raises(DataError, match=r"6 of 100 rows \(6%\) needed repair, more than 5%.*--allow-gaps"):
        load_prices(path)
    assert load_prices(path, allow_gaps=True).repairs.rows_repaired() == 6
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--test-start", "2020-02-03", "--out", out, *FAST)
    assert_clean_failure(code, err, "needed repair", out)
    code, stdout, err = cli(
        "evaluate", "--data", path, "--test-start", "2020-02-03", "--out", out, "--allow-gaps", *FAST
    )
    assert code == 0, err
    assert "repairs: missing values filled forward (high 6)" in " ".join(stdout.split())
    assert json.loads((out / "metrics.json").read_text())["data"]["repairs"]["counts"]["rows_repaired"] == 6


def test_a_dataframe_is_repaired_and_reported_without_the_limit():
    frame = make_prices(50)
    frame.iloc[5:15, 1] = np.nan
    prices = load_prices(frame)
    assert prices.repairs.rows_repaired() == 10
    with pytest.raises(DataError, match="needed repair"):
        load_prices(frame, allow_gaps=False)


def test_gaps_over_ten_days_are_reported(tmp_path):
    frame = make_prices(80)
    frame = frame.drop(frame.loc["2020-02-10":"2020-02-21"].index)  # Fri 7th -> Mon 24th: 17 days
    frame = frame.drop(frame.loc["2020-03-03":"2020-03-10"].index)  # Mon 2nd -> Wed 11th: 9 days
    prices = load_prices(write(tmp_path, frame.to_csv()))
    assert prices.repairs.gaps == [(pd.Timestamp("2020-02-07"), pd.Timestamp("2020-02-24"))]
    assert "1 gap(s) over 10 days (2020-02-07 .. 2020-02-24)" in prices.repairs.summary()
    assert prices.repairs.to_dict()["gaps"] == [{"from": "2020-02-07", "to": "2020-02-24", "days": 17}]
    assert prices.repairs.rows_repaired() == 0


def test_split_like_jumps_are_reported(tmp_path):
    frame = make_prices(60)
    frame.loc["2020-02-03":, ["Open", "High", "Low", "Close"]] /= 2  # an unadjusted 2:1 split
    frame.loc["2020-03-02":, ["Open", "High", "Low", "Close"]] *= 1.7  # a big move, not a split
    prices = load_prices(write(tmp_path, frame.to_csv()))
    assert [d for d, _ in prices.repairs.jumps] == [pd.Timestamp("2020-02-03")]
    assert prices.repairs.jumps[0][1] == pytest.approx(0.5, rel=0.05)
    assert "possible unadjusted split: close jumps 2020-02-03 x0.5" in prices.repairs.summary()
    assert prices.repairs.to_dict()["possible_splits"][0]["date"] == "2020-02-03"


# -- 3. errors -----------------------------------------------------------------------------------
def assert_clean_failure(code: int, err: str, expected: str, out: Path) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stockrnn: error: ") and "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


GOOD = walk_csv(30)
GOOD_LINES = GOOD.splitlines()


def replace_line(number: int, text: str) -> str:
    lines = list(GOOD_LINES)
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def shifted() -> str:
    """From line 10 on, a field goes missing before High: every later column moves left."""
    lines = list(GOOD_LINES)
    for i in range(9, len(lines)):
        cells = lines[i].split(",")
        lines[i] = ",".join(cells[:2] + cells[3:])
    return "\n".join(lines) + "\n"


# name: (file content, text the error line must hold)
BAD_INPUTS = {
    "binary": (bytes(range(256)) * 4, "binary file, not CSV text"),
    "not_utf8": (GOOD.replace("2020-01-08", "2020-01-08\xe9").encode("latin-1"), "line 7: not UTF-8 text (byte 0xe9)"),
    "cut_last_line": (GOOD[: GOOD.rindex(",") - 3], f"line {len(GOOD_LINES)}: cut off after 5 of 6 fields"),
    "columns_shift": (shifted(), "line 10: malformed CSV: 5 fields, the header has 6"),
    "extra_field": (replace_line(12, GOOD_LINES[11] + ",7"), "line 12: malformed CSV: 7 fields, the header has 6"),
    "xlsx_as_csv": (xlsx_bytes(), "an Excel .xlsx workbook?), not CSV text"),
    "xls_as_csv": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "an Excel .xls workbook"),
    "html_page": ("<!DOCTYPE html><html><body>Too many requests</body></html>", "looks like HTML"),
    "negative_volume": (replace_line(5, "2020-01-06,10,11,9,10,-100"), "line 5, column volume: negative volume -100"),
    "all_equal": (HEADER + "".join(f"2020-01-{d:02d},10,10,10,10,100\n" for d in range(1, 29)), "every price is 10"),
    "after_today": (
        GOOD + "2999-01-02,10,11,9,10,100\n",
        f"line {len(GOOD_LINES) + 1}: date '2999-01-02' is after today",
    ),
    "infinite": (replace_line(8, "2020-01-09,10,inf,9,10,100"), "line 8, column high: 'inf' is not a finite number"),
    "huge": (replace_line(8, "2020-01-09,10,1e999,9,10,100"), "line 8, column high: '1e999' is not a finite number"),
    "header_repeated": (GOOD + GOOD_LINES[0] + "\n", f"line {len(GOOD_LINES) + 1} repeats the header"),
    "ancient_date": (replace_line(2, "1700-01-02,10,11,9,10,100"), "line 2: date '1700-01-02' is before 1800"),
    "text_in_volume": (replace_line(4, "2020-01-03,10,11,9,10,lots"), "line 4, column volume: 'lots' is not a number"),
    "no_separator": ("just some text\nmore text\n", "line 1: no separator in the header"),
    "pickle": (b"\x80\x04\x95" + bytes(50), "binary file"),
    "whitespace_only": ("\n\n   \n", "file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs(cli, tmp_path, case):
    content, expected = BAD_INPUTS[case]
    path = write(tmp_path, content, f"{case}.csv")
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{path}: ", out)
    assert expected in err


def test_constant_target_column(cli, tmp_path):
    frame = make_prices(60)
    frame["Close"] = 42.0
    frame["High"] = frame[["Open", "Close"]].max(axis=1) + 1
    frame["Low"] = frame[["Open", "Close"]].min(axis=1) - 1
    path = write(tmp_path, frame.to_csv())
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--target", "close", "--out", out, *FAST)
    assert_clean_failure(code, err, "column close is 42 on every row: nothing to forecast", out)


def test_damaged_parquet(cli, tmp_path):
    path = tmp_path / "bad.parquet"
    make_prices(30).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{path}: not a readable Parquet file", out)


@pytest.mark.parametrize("contents", [{}, {"README.md": "prices are elsewhere", "notes.txt": "x"}])
def test_folder_with_no_readable_file(cli, tmp_path, contents):
    folder = tmp_path / "empty"
    folder.mkdir()
    for name, text in contents.items():
        (folder / name).write_text(text)
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", folder, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{folder}: no readable file in the folder", out)


def test_folder_with_one_bad_file_names_it_and_writes_nothing(cli, tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    make_prices(120, seed=1).to_csv(folder / "AAA.csv")
    write(folder, replace_line(9, "2020-01-12,10,11,9,ten,100"), "BBB.csv")
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", folder, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{folder / 'BBB.csv'}: line 9, column close: 'ten' is not a number", out)


def test_folder_run_writes_per_ticker_outputs_and_summary(cli, tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    make_prices(120, seed=1).to_csv(folder / "AAA.csv")
    make_prices(130, seed=2).to_parquet(folder / "BBB.parquet")
    out = tmp_path / "out"
    code, stdout, err = cli("evaluate", "--data", folder, "--test-start", "2020-05-01", "--out", out,
                            "--models", "ridge,ridge_local", "--window", "5", "--quiet")  # fmt: skip
    assert code == 0, err
    assert {"AAA", "BBB", "summary.csv", "panel.json", "rank_ic.csv"} <= {p.name for p in out.iterdir()}
    for ticker in ("AAA", "BBB"):
        files = {p.name for p in (out / ticker).iterdir()}
        assert files >= {"metrics.json", "predictions.csv", "forecast.png"}
        metrics = json.loads((out / ticker / "metrics.json").read_text())
        assert metrics["data"]["name"] == ticker and metrics["settings"]["ticker"] == ticker
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["ticker", "model", "n", "rmse", "mae", "skill", "dm_pvalue",
                                     "direction_accuracy", "coverage_80", "coverage_95"]  # fmt: skip
    assert summary[["ticker", "model"]].values.tolist() == [
        ["AAA", "ridge"], ["AAA", "ridge_local"], ["AAA", "persistence"],
        ["BBB", "ridge"], ["BBB", "ridge_local"], ["BBB", "persistence"],
    ]  # fmt: skip
    ridge = json.loads((out / "BBB" / "metrics.json").read_text())["models"]["ridge_local"]
    assert summary.iloc[4]["rmse"] == pytest.approx(ridge["rmse"], rel=1e-5)
    panel = json.loads((out / "panel.json").read_text())
    assert panel["settings"]["tickers_evaluated"] == 2 and panel["failed"] == [] and panel["skipped"] == []
    assert panel["settings"]["models"]["ridge"]["kind"] == "global"
    assert "ridge_local" in stdout and "summary.csv" in stdout


def test_fit_and_predict_refuse_a_folder(cli, tmp_path):
    make_prices(30).to_csv(tmp_path / "AAA.csv")
    code, _, err = cli("fit", "--data", tmp_path, "--model", "persistence", "--save", tmp_path / "m")
    assert code == 2 and "is a folder; fit and predict take one price file" in err
