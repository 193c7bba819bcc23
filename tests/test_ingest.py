"""Data users really have: Parquet, folders, European CSVs, time zones, Yahoo Finance; the
validation report (repairs, gaps, split-like jumps, the 5% limit). Bad input: test_bad_input.py."""

from __future__ import annotations

import json
import sys
import types
import warnings

import numpy as np
import pandas as pd
import pytest

from stockrnn import DataError, evaluate, load_prices, make_forecaster, model_config
from stockrnn.data import load_folder

from conftest import FAST, HEADER, SHARED, TINY, assert_clean_failure, make_prices, needs_shared, walk_csv, write


# -- 1. sources ---------------------------------------------------------------------------------
def test_parquet_file_matches_csv(tmp_path):
    frame = make_prices(60)
    frame.to_parquet(tmp_path / "AAA.parquet")
    frame.to_csv(tmp_path / "AAA.csv")
    from_parquet, from_csv = load_prices(tmp_path / "AAA.parquet"), load_prices(tmp_path / "AAA.csv")
    assert from_parquet.name == "AAA" and list(from_parquet.frame.columns) == ["open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(from_parquet.frame, from_csv.frame, check_exact=False, rtol=1e-12)


def test_parquet_with_a_date_index_that_is_also_a_column(tmp_path):
    # set_index("Date", drop=False) keeps both: that was "internal error: cannot insert Date" (exit 1).
    frame = make_prices(60)
    frame.reset_index().set_index("Date", drop=False).to_parquet(tmp_path / "AAA.parquet")
    prices = load_prices(tmp_path / "AAA.parquet")
    assert list(prices.index) == list(frame.index) and prices.repairs.summary() == "no repairs"
    assert load_prices(frame.reset_index().set_index("Date", drop=False)).index.equals(prices.index)


def test_a_null_in_a_parquet_string_column_is_a_missing_value(tmp_path):
    # A real null was read as the text 'nan' and refused: "'nan' is not a number".
    frame = make_prices(60)
    frame["Close"] = frame["Close"].round(4).astype(str).astype(object)
    frame.iloc[6, frame.columns.get_loc("Close")] = None
    frame.to_parquet(tmp_path / "AAA.parquet")
    prices = load_prices(tmp_path / "AAA.parquet")
    assert "missing values filled forward (close 1)" in prices.repairs.summary()
    assert prices.frame["close"].iloc[6] == prices.frame["close"].iloc[5]


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
