"""load_panel and Panel: every source kind, and no ticker dropped silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockrnn.errors import DataError
from stockrnn.panel import Panel, load_panel, ticker_folder

from conftest import make_prices

TICKERS = ("AAA", "BBB", "CCC")


def frames() -> dict[str, pd.DataFrame]:
    return {t: make_prices(120, seed=i).round(4) for i, t in enumerate(TICKERS)}


@pytest.fixture
def folder(tmp_path):
    for ticker, frame in frames().items():
        frame.to_csv(tmp_path / f"{ticker}.csv")
    return tmp_path


def test_folder_loads_every_file_as_a_ticker(folder):
    panel = load_panel(folder)
    assert isinstance(panel, Panel) and list(panel) == list(TICKERS)
    assert panel.skipped == [] and panel.source == str(folder)
    for ticker, frame in frames().items():
        np.testing.assert_allclose(panel[ticker].frame["close"].to_numpy(), frame["Close"].to_numpy())
        assert panel[ticker].repairs.source_rows == len(frame)


def test_list_of_paths(folder):
    panel = load_panel([folder / "CCC.csv", folder / "AAA.csv"])
    assert list(panel) == ["CCC", "AAA"]
    assert panel["AAA"].source.endswith("AAA.csv")


def test_dict_of_dataframes_names_each_ticker():
    panel = load_panel(frames())
    assert list(panel) == list(TICKERS)
    assert panel["BBB"].name == "BBB" and panel["BBB"].source == "<DataFrame BBB>"
    np.testing.assert_allclose(panel["BBB"].frame["high"].to_numpy(), frames()["BBB"]["High"].to_numpy())


def test_long_dataframe_with_a_ticker_column():
    long = pd.concat([f.assign(Ticker=t) for t, f in frames().items()])  # dates repeat in the index
    panel = load_panel(long)
    assert list(panel) == list(TICKERS)
    for ticker, frame in frames().items():
        np.testing.assert_allclose(panel[ticker].frame["close"].to_numpy(), frame["Close"].to_numpy())
        assert "ticker" not in panel[ticker].frame.columns


def test_long_dataframe_without_a_ticker_column_is_an_error():
    with pytest.raises(DataError, match="no ticker column"):
        load_panel(make_prices(50))


def test_unreadable_file_stops_naming_it_unless_skip_bad(folder):
    (folder / "BAD.csv").write_text("when,what\nyesterday,nothing\n")
    with pytest.raises(DataError, match=r"BAD\.csv: no date column"):
        load_panel(folder)
    panel = load_panel(folder, skip_bad=True)
    assert list(panel) == list(TICKERS)
    assert [s["ticker"] for s in panel.skipped] == ["BAD"]
    assert "BAD.csv: no date column" in panel.skipped[0]["reason"]


def test_validation_failures_are_skipped_with_a_reason_without_skip_bad(folder):
    flat = make_prices(120, seed=9)
    flat[["Open", "High", "Low", "Close"]] = 10.0
    flat.to_csv(folder / "FLAT.csv")
    holes = make_prices(120, seed=8).round(4)
    holes.iloc[10:30, holes.columns.get_loc("High")] = np.nan  # 20 of 120 rows repaired: over 5%
    holes.to_csv(folder / "HOLES.csv")
    panel = load_panel(folder)
    assert list(panel) == list(TICKERS)
    reasons = {s["ticker"]: s["reason"] for s in panel.skipped}
    assert set(reasons) == {"FLAT", "HOLES"}
    assert "every price is 10" in reasons["FLAT"] and "FLAT.csv" in reasons["FLAT"]
    assert "needed repair" in reasons["HOLES"]
    assert "HOLES" in load_panel(folder, allow_gaps=True)  # the repair limit is load_prices' own


def test_spliced_history_is_skipped():
    spliced = make_prices(200, seed=5)
    spliced.iloc[::4, :4] *= 3.0  # every fourth day three times the price: no one company's history
    panel = load_panel({**frames(), "SPLICED": spliced})
    assert "SPLICED" not in panel
    assert panel.skipped[0]["ticker"] == "SPLICED" and "spliced or unadjusted" in panel.skipped[0]["reason"]


def test_require_history_moves_short_and_flat_tickers_to_skipped():
    parts = {**frames(), "LATE": make_prices(60, seed=4, start="2020-05-01")}
    flat_target = make_prices(120, seed=6)
    flat_target["High"] = 200.0  # high constant, so only that target has nothing to learn
    parts["FLATHIGH"] = flat_target
    panel = load_panel(parts)
    test_start = panel["AAA"].index[100]
    kept = panel.require_history(test_start, need_rows=20, target="high")
    assert list(kept) == list(TICKERS) and len(panel) == 5  # the original panel is unchanged
    reasons = {s["ticker"]: s["reason"] for s in kept.skipped}
    assert reasons["LATE"].startswith("13 rows before the test start 2020-05-20") and "need 20" in reasons["LATE"]
    assert "high is constant" in reasons["FLATHIGH"]
    assert "FLATHIGH" in panel.require_history(test_start, need_rows=20, target="close")
    late = panel["AAA"].index[-1] + pd.Timedelta(days=30)
    trainable = panel.require_history(late, need_rows=20)
    assert "AAA" in trainable  # what comes after the test start does not decide who trains
    after = trainable.require_test_rows(late)
    reason = {s["ticker"]: s["reason"] for s in after.skipped}["AAA"]
    assert "AAA" not in after and "no rows in the test span (data ends" in reason
    gap = load_panel({"AAA": panel["AAA"].frame.drop(panel["AAA"].index[50:60])})  # rows before and after
    reason = gap.require_test_rows(panel["AAA"].index[50], panel["AAA"].index[59]).skipped[0]["reason"]
    assert reason == "no rows in the test span (a gap over the whole span): not scored"
    with pytest.raises(TypeError):  # train start and target by name: a date in the target's place is an error
        panel.require_history(test_start, 20, None, "2020-06-30")


def test_duplicate_ticker_is_an_error(folder):
    frames()["AAA"].assign(Name="AAA").to_csv(folder / "AAA_copy.csv")
    with pytest.raises(DataError, match="ticker AAA is in both"):
        load_panel(folder)


def test_require_history_on_a_ticker_with_no_rows_left_says_so():
    """A panel cut before a ticker's first day (as a validation run cuts it) holds an empty frame."""
    from stockrnn.data import Prices

    panel = load_panel(frames())
    empty = Prices(panel["AAA"].frame.iloc[:0], panel["AAA"].repairs, "AAA.csv", "AAA")
    cut = Panel({**{t: panel[t] for t in panel}, "AAA": empty}, source="cut")
    kept = cut.require_history(panel["BBB"].index[100], need_rows=20)
    reasons = {s["ticker"]: s["reason"] for s in kept.skipped}
    assert "AAA" not in kept and "(no rows at all)" in reasons["AAA"]


def test_tickers_that_would_share_an_output_folder_stop_the_load():
    parts = frames()
    with pytest.raises(
        DataError, match=r"tickers BRK B \(<DataFrame BRK B>\) and BRK_B .* share the output folder BRK_B"
    ):
        load_panel({**parts, "BRK B": parts["AAA"], "BRK_B": parts["BBB"]})
    with pytest.raises(DataError, match="tickers abc .* and ABC"):  # one folder on macOS and Windows
        load_panel({"abc": parts["AAA"], "ABC": parts["BBB"]})
    # a ticker named like a file of the panel folder gets its own folder name
    assert ticker_folder("summary.csv") == "summary.csv_" and ticker_folder("Panel.JSON") == "Panel.JSON_"
    assert ticker_folder("BRK/B") == "BRK_B" and ticker_folder("summary") == "summary"


def test_a_broken_link_in_the_folder_is_named_not_dropped(folder):
    (folder / "LINK.csv").symlink_to(folder / "gone.csv")
    with pytest.raises(DataError, match=r"LINK.csv: a broken link \(to "):
        load_panel(folder)
    skipped = load_panel(folder, skip_bad=True).skipped
    assert [s["ticker"] for s in skipped] == ["LINK"] and "broken link" in skipped[0]["reason"]
