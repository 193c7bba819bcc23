"""load_prices: every layout, ordering, missing values and their repairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockrnn import ConfigError, DataError, load_prices
from stockrnn.data import snake_case

from conftest import IBM, TATA, make_prices, needs_shared


def write(tmp_path, text: str, name: str = "x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_snake_case_names():
    assert snake_case("Adj Close") == "adj_close"
    assert snake_case("Turnover (Lacs)") == "turnover_lacs"
    assert snake_case("Total Trade Quantity") == "total_trade_quantity"
    assert snake_case("openPrice") == "open_price"


def test_djia_layout(tmp_path):
    path = write(
        tmp_path,
        "Date,Open,High,Low,Close,Volume,Name\n"
        "2006-01-03,82.45,82.55,80.81,82.06,11715200,IBM\n"
        "2006-01-04,82.2,82.5,81.33,81.95,9840600,IBM\n",
    )
    prices = load_prices(path)
    assert list(prices.frame.columns) == ["open", "high", "low", "close", "volume"]
    assert prices.name == "IBM"
    assert prices.index.name == "date" and prices.index[0] == pd.Timestamp("2006-01-03")
    assert prices.frame.loc["2006-01-04", "high"] == 82.5
    assert prices.repairs.total() == 0


def test_nse_layout_newest_first(tmp_path):
    path = write(
        tmp_path,
        "Date,Open,High,Low,Last,Close,Total Trade Quantity,Turnover (Lacs)\n"
        "2018-09-28,234.05,235.95,230.2,233.5,233.75,3069914,7162.35\n"
        "2018-09-27,234.55,236.8,231.1,233.8,233.25,5082859,11859.95\n"
        "2018-09-26,240,240,232.5,235,234.25,2240909,5248.6\n",
    )
    prices = load_prices(path)
    assert prices.index.is_monotonic_increasing
    assert list(prices.frame.columns) == ["open", "high", "low", "last", "close", "volume", "turnover_lacs"]
    assert prices.frame["close"].tolist() == [234.25, 233.25, 233.75]  # Close, not Last
    assert prices.frame["volume"].iloc[-1] == 3069914
    assert prices.repairs.reordered


def test_yahoo_layout_any_order_with_null(tmp_path):
    path = write(
        tmp_path,
        "Volume,Adj Close,Date,Close,Low,High,Open\n"
        "100,9.5,2020-01-02,10,9,11,10\n"
        "null,null,2020-01-03,null,null,null,null\n"
        "120,10.5,2020-01-06,11,10,12,10.5\n",
    )
    prices = load_prices(path, allow_gaps=True)
    assert "adj_close" in prices.frame.columns
    # The missing row is filled forward from the row before and reported, never dropped silently.
    assert prices.frame.loc["2020-01-03", "close"] == 10
    assert prices.frame.loc["2020-01-03", "adj_close"] == 9.5
    assert [d.strftime("%Y-%m-%d") for d in prices.repairs.filled["close"]] == ["2020-01-03"]
    assert prices.repairs.to_dict()["counts"]["filled"] == 6


@pytest.mark.parametrize("token", ["", "null", "NaN", "nan", "NA", "N/A", "-"])
def test_missing_tokens_are_filled_forward(tmp_path, token):
    path = write(
        tmp_path,
        f"Date,Open,High,Low,Close\n2020-01-02,10,11,9,10\n2020-01-03,10,{token},9,10\n2020-01-06,10,12,9,11\n",
    )
    prices = load_prices(path, allow_gaps=True)
    assert prices.frame.loc["2020-01-03", "high"] == 11
    assert list(prices.repairs.changed_dates("high")) == [pd.Timestamp("2020-01-03")]


def test_high_low_widened_after_fill(tmp_path):
    # The filled open (12) lies above the day's high (11): the high is widened to contain it.
    path = write(tmp_path, "Date,Open,High,Low,Close\n2020-01-02,12,12.5,11,12\n2020-01-03,,11,9,10\n")
    prices = load_prices(path, allow_gaps=True)
    row = prices.frame.loc["2020-01-03"]
    assert row["open"] == 12 and row["high"] == 12
    assert prices.repairs.widened["high"] == [pd.Timestamp("2020-01-03")]
    assert pd.Timestamp("2020-01-03") in prices.repairs.changed_dates("high")


def test_nonpositive_rows_dropped_and_named(tmp_path):
    path = write(
        tmp_path,
        "Date,Open,High,Low,Close\n2020-01-02,10,11,9,10\n2020-01-03,10,11,0.0,10\n2020-01-06,10,12,9,11\n",
    )
    prices = load_prices(path, allow_gaps=True)
    assert len(prices) == 2
    assert prices.repairs.dropped_nonpositive == [pd.Timestamp("2020-01-03")]
    assert "2020-01-03" in prices.repairs.summary()


def test_leading_missing_rows_dropped_and_reported(tmp_path):
    path = write(tmp_path, "Date,Open,High,Low,Close\n2020-01-02,,11,9,10\n2020-01-03,10,11,9,10\n")
    prices = load_prices(path, allow_gaps=True)
    assert len(prices) == 1
    assert prices.repairs.dropped_leading_missing == [pd.Timestamp("2020-01-02")]


def test_dataframe_source_with_date_index():
    frame = make_prices(20)
    prices = load_prices(frame)
    assert len(prices) == 20
    np.testing.assert_allclose(prices.frame["high"].to_numpy(), frame["High"].to_numpy())


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_builtin_datasets(name):
    prices = load_prices(name)
    assert prices.name == name
    assert prices.index[0] == pd.Timestamp("1999-01-04")
    assert prices.index[-1] == pd.Timestamp("2018-12-31")
    assert {"open", "high", "low", "close", "adj_close", "volume"} <= set(prices.frame.columns)
    assert (prices.frame[["open", "high", "low", "close"]] > 0).all().all()
    assert (prices.frame["low"] <= prices.frame[["open", "close"]].min(axis=1)).all()


@needs_shared
def test_shared_ibm_file():
    prices = load_prices(IBM)
    assert prices.name == "IBM" and len(prices) == 3020
    assert prices.repairs.filled.keys() == {"open", "low"}  # IBM's two empty cells, 2017-07-31
    assert pd.Timestamp("2017-07-31") in prices.repairs.filled["open"]


@needs_shared
def test_shared_tata_file():
    prices = load_prices(TATA)
    assert len(prices) == 2035
    assert prices.index[0] == pd.Timestamp("2010-07-21") and prices.index.is_monotonic_increasing


def test_data_error_is_one_line(tmp_path):
    path = write(tmp_path, "Date,Open,High,Low,Close\n2020-01-02,10,abc,9,10\n")
    with pytest.raises(DataError) as info:
        load_prices(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "line 2" in message and "column high" in message and "'abc'" in message


# -- files people have: nasdaq.com exports, slash dates, a date and a close ----------------------
def nasdaq_csv(rows: int = 40) -> str:
    """nasdaq.com's historical-quotes layout: newest first, month-first dates, '$' prices."""
    frame = make_prices(rows, start="2024-01-02").round(4)
    lines = ["Date,Close/Last,Volume,Open,High,Low"]
    for day, row in frame.iloc[::-1].iterrows():
        lines.append(
            f"{day:%m/%d/%Y},${row['Close']},{int(row['Volume'])},${row['Open']}, ${row['High']},$ {row['Low']}"
        )
    return "\n".join(lines) + "\n"


def test_nasdaq_com_layout(tmp_path):
    frame = make_prices(40, start="2024-01-02").round(4)
    prices = load_prices(write(tmp_path, nasdaq_csv(40)))
    assert list(prices.frame.columns) == ["close", "volume", "open", "high", "low"]
    assert list(prices.index) == list(frame.index)  # 01/31/2024 is January 31st, sorted oldest first
    np.testing.assert_allclose(prices.frame["close"], frame["Close"])
    np.testing.assert_allclose(prices.frame["low"], frame["Low"])
    assert prices.repairs.reordered and prices.missing_ohlc == ()


def test_slash_dates_day_first_when_a_first_part_exceeds_12(tmp_path):
    text = "Date,Close\n30/12/2019,10\n31/12/2019,11\n02/01/2020,12\n"
    prices = load_prices(write(tmp_path, text))
    assert list(prices.index) == list(pd.to_datetime(["2019-12-30", "2019-12-31", "2020-01-02"]))


def test_slash_dates_with_no_part_above_12_are_an_error(tmp_path):
    path = write(tmp_path, "Date,Close\n01/02/2020,10\n01/03/2020,11\n01/06/2020,12\n")
    with pytest.raises(DataError, match=r"line 2: date '01/02/2020': the order of day and month cannot be told"):
        load_prices(path)


@pytest.mark.parametrize("odd", ["16/06/2020", "2020-06-16"])
def test_year_first_and_day_first_dates_in_one_column_are_an_error(tmp_path, odd):
    # One '16/06/2020' among ISO dates made pandas read 2020-01-02 as 1 February, silently (exit 0).
    rows = [f"2020-01-{d:02d},{10 + d}" for d in (2, 3, 6, 7, 8, 9, 10)]
    rows[4] = f"{odd},15"
    if odd.startswith("2020"):  # the other way round: day-first file, one ISO row
        rows = [f"{d:02d}/01/2020,{10 + d}" for d in (2, 3, 6, 7, 8, 9, 13)]
        rows[4] = f"{odd},15"
    path = write(tmp_path, "Date,Close\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=rf"line 6: date '{odd}' is written another way than the first row's"):
        load_prices(path)


def test_date_and_close_only(tmp_path):
    frame = make_prices(60)
    prices = load_prices(write(tmp_path, frame[["Close"]].round(4).to_csv()))
    assert list(prices.frame.columns) == ["close"] and len(prices) == 60
    assert prices.missing_ohlc == ("open", "high", "low") and prices.repairs.summary() == "no repairs"
    with pytest.raises(ConfigError, match="no column for target 'high'"):
        prices.column("high")


def test_close_only_file_is_still_validated(tmp_path):
    path = write(tmp_path, "Date,Close\n2020-01-02,10\n2020-01-03,-1\n2020-01-06,\n2020-01-07,11\n")
    prices = load_prices(path, allow_gaps=True)
    assert prices.repairs.dropped_nonpositive == [pd.Timestamp("2020-01-03")]
    assert prices.repairs.filled == {"close": [pd.Timestamp("2020-01-06")]}
    with pytest.raises(DataError, match="line 3, column close: 'ten' is not a number"):
        load_prices(write(tmp_path, "Date,Close\n2020-01-02,10\n2020-01-03,ten\n", "y.csv"))


def test_a_file_without_a_price_column(tmp_path):
    with pytest.raises(DataError, match=r"no price column \(expected Close.*columns: date, volume\)"):
        load_prices(write(tmp_path, "Date,Volume\n2020-01-02,10\n"))
    forecast = "date,forecast,lo80,hi80,lo95,hi95\n2020-01-02,10,9,11,8,12\n"
    with pytest.raises(DataError, match="a forecast stockrnn predict wrote\\? keep it out of the data folder$"):
        load_prices(write(tmp_path, forecast, "next.csv"))


def test_high_low_close_without_open_is_widened_around_the_close(tmp_path):
    path = write(tmp_path, "Date,High,Low,Close\n2020-01-02,11,9,10\n2020-01-03,11,9,12\n")
    prices = load_prices(path, allow_gaps=True)
    assert prices.frame["high"].tolist() == [11, 12] and prices.missing_ohlc == ("open",)


@pytest.mark.parametrize("cell", ["$1,234.50", " $1,234.50", "$ 1234.5", "\u20ac1234.5", "\u00a31,234.5"])
def test_currency_signs_before_prices(tmp_path, cell):
    text = f'Date,Close\n2020-01-02,"{cell}"\n2020-01-03,1240\n'
    assert load_prices(write(tmp_path, text)).frame["close"].iloc[0] == 1234.5
