"""Untraded days (volume 0, open = high = low = close): a leading stretch is dropped and named,
later ones are listed and left out of scoring; interval bounds stay finite on zero-range days;
an infinite bound never counts as covering; no NumPy warning reaches the user."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from stockrnn import DataError, evaluate, load_prices, make_forecaster, model_config
from stockrnn.intervals import MIN_VOLATILITY, Calibration, interval_columns, volatility
from stockrnn.metrics import coverage

from conftest import SHARED, make_prices


def stale(frame: pd.DataFrame, rows: slice, jump: float = 1.0) -> pd.DataFrame:
    """Rows quoted without a trade: volume 0 and every price the close before the stretch; the
    prices after the stretch move by `jump` (a listing that resumes trading away from its quote)."""
    frame = frame.copy()
    frame.iloc[rows, :4] = frame["Close"].iloc[max(rows.start - 1, 0)]
    frame.iloc[rows, 4] = 0
    frame.iloc[rows.stop :, :4] *= jump
    return frame


@pytest.fixture
def untraded_csv(tmp_path):
    """200 rows: the first 120 an untraded stretch (3/5 of the file), then 3 untraded days inside."""
    frame = stale(stale(make_prices(200, seed=5), slice(0, 120)), slice(150, 153))
    path = tmp_path / "STALE.csv"
    frame.round(4).to_csv(path)
    return path, frame.index


def test_leading_untraded_stretch_is_dropped_and_named(untraded_csv):
    path, dates = untraded_csv
    prices = load_prices(path)  # the dropped stretch does not count towards the 5% repair limit
    repairs = prices.repairs
    assert len(prices) == 80 and prices.index[0] == dates[120]
    assert repairs.dropped_untraded == list(dates[:120])
    assert repairs.untraded == list(dates[150:153])
    summary = repairs.summary()
    assert f"120 leading untraded row(s) dropped ({dates[0]:%Y-%m-%d} .. {dates[119]:%Y-%m-%d}" in summary
    assert f"3 untraded day(s) (volume 0, high = low) not scored ({dates[150]:%Y-%m-%d} .. {dates[152]:%Y-%m-%d})" in (
        summary
    )
    report = repairs.to_dict()
    assert report["counts"]["dropped_untraded"] == 120 and report["counts"]["untraded"] == 3
    assert report["dropped_untraded"][0] == f"{dates[0]:%Y-%m-%d}" and len(report["untraded"]) == 3
    assert report["counts"]["rows_repaired"] == 3  # the interior days count, the leading stretch does not
    for column in ("high", "close"):  # a stale quote is no price in any column: never scored
        assert set(dates[150:153]) <= set(repairs.changed_dates(column))


def test_untraded_days_inside_the_history_count_towards_the_limit(tmp_path):
    path = tmp_path / "x.csv"
    stale(make_prices(100, seed=1), slice(40, 46)).round(4).to_csv(path)  # 6 of 100 rows
    with pytest.raises(DataError, match=r"6 of 100 rows \(6%\) needed repair.*6 untraded day\(s\)"):
        load_prices(path)
    assert load_prices(path, allow_gaps=True).repairs.rows_repaired() == 6


def test_a_file_with_no_traded_row_is_an_error(tmp_path):
    path = tmp_path / "x.csv"
    stale(make_prices(30), slice(0, 30)).to_csv(path)
    with pytest.raises(DataError, match="no traded row: every complete row is an untraded quote"):
        load_prices(path)


def test_zero_volume_with_a_real_range_is_not_untraded(tmp_path):
    frame = make_prices(50)
    frame.iloc[10:13, 4] = 0  # no volume reported, but the day has a range: a data gap, not a stale quote
    prices = load_prices(frame)
    assert prices.repairs.untraded == [] and prices.repairs.summary() == "no repairs"


def test_volatility_has_a_floor_and_intervals_stay_finite():
    frame = load_prices(stale(make_prices(120), slice(40, 80))).frame
    scale = volatility(frame)
    assert scale.min() == MIN_VOLATILITY and np.isfinite(scale).all()
    huge = Calibration({80: [1e6], 95: [1e7]}, n=100, held_out=True)  # a degenerate calibration
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        bounds = interval_columns(frame[["close"]].to_numpy(), scale, huge)
    for values in bounds.values():
        assert np.isfinite(values).all() and (values > 0).all()


def test_an_infinite_interval_never_covers():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    lower = np.array([0.5, -np.inf, 0.0, np.nan])
    upper = np.array([1.5, 3.0, np.inf, 5.0])
    assert coverage(actual, lower, upper) == pytest.approx(0.25)
    assert coverage(actual, lower[:1].repeat(4) * 0, np.full(4, 10.0)) == pytest.approx(1.0)


def test_evaluate_on_untraded_stretches_warns_nothing_and_skips_them():
    """A stale stretch in the calibration tail, then trading resumes 10% away: without a volatility
    floor the scores divide by ~0 and the bounds overflow (a NumPy RuntimeWarning)."""
    frame = stale(make_prices(400, seed=2), slice(0, 50))
    frame = stale(frame, slice(280, 310), jump=1.1)
    frame = stale(frame, slice(360, 365))
    prices = load_prices(frame)
    assert len(prices.repairs.dropped_untraded) == 50 and len(prices.repairs.untraded) == 35
    models = [make_forecaster(name, model_config(name, window=5, target="high")) for name in ("ridge", "persistence")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(prices, models, test_start=frame.index[340])
    assert result.metrics["data"]["excluded_repaired"] == 5
    for name in ("ridge", "persistence"):
        bands = result.bands(name)
        assert np.isfinite(bands.to_numpy()).all() and (bands["hi95"] / bands["lo95"]).max() < 2


TT = SHARED / "sp500" / "TT.csv"


@pytest.mark.skipif(not TT.exists(), reason=f"shared S&P 500 files not found at {SHARED}")
def test_shared_tt_file_with_a_penny_stock_history():
    """TT joins 2,279 untraded days of a penny stock to the 2020 listing: refused by the 5% limit,
    and with --allow-gaps loaded with every untraded day named and left out of scoring."""
    with pytest.raises(DataError, match=r"2278 of 4834 rows \(47%\) needed repair.*2278 untraded day\(s\)"):
        load_prices(TT)
    repairs = load_prices(TT, allow_gaps=True).repairs
    assert repairs.dropped_untraded == [pd.Timestamp("2000-01-03")] and len(repairs.untraded) == 2278
    assert repairs.untraded[-1] == pd.Timestamp("2018-08-16")
    mnst = load_prices(SHARED / "sp500" / "MNST.csv").repairs  # a normal file: a few untraded days, still loads
    assert len(mnst.untraded) == 22 and mnst.rows_repaired() == 22


def test_calibration_leaves_out_windows_whose_targets_are_untraded(tmp_path):
    """A stale quote gives persistence a zero error: counted in the calibration tail, a stretch of
    them shrank the intervals towards zero width. They are left out as they are left out of scoring."""
    frame = stale(make_prices(600, seed=7), slice(560, 585))
    prices = load_prices(frame.round(4), allow_gaps=True)
    config = model_config("persistence", val_fraction=0.1)
    model = make_forecaster("persistence", config).fit(prices)
    assert model.calibration_.n == round(599 * 0.1) - 25  # the 25 windows ending on a stale quote are out
    assert min(model.calibration_.quantiles[80]) > 0
