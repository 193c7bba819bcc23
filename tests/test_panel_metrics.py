"""Panel scores against numbers worked out by hand (and SciPy called by hand on the same numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockrnn.panel_metrics import SUMMARY_COLUMNS, against, ic_stats, panel_scores, rank_ic, summary_table

TICKERS = ["A", "B", "C", "D", "E"]
# Per-ticker RMSE: model "net" is below ridge_local on A, B, C and below the global ridge on B only.
RMSE = {
    "net": [1.0, 2.0, 3.0, 4.0, 5.0],
    "ridge_local": [1.5, 2.2, 3.1, 3.5, 4.0],
    "ridge": [0.5, 2.5, 2.0, 3.0, 4.5],
    "persistence": [1.2, 2.1, 3.3, 3.9, 6.0],
}


def summary() -> pd.DataFrame:
    rows = []
    for name, values in RMSE.items():
        for ticker, value, base in zip(TICKERS, values, RMSE["persistence"], strict=True):
            rows.append({"ticker": ticker, "model": name, "n": 50, "rmse": value, "skill": 1 - value / base})
    return pd.DataFrame(rows)


def test_summary_table_has_the_design_columns_and_nulls_as_nan():
    metrics = {
        "A": {"models": {"net": {"n": 5, "rmse": 1.0, "mae": 0.5, "skill": 0.1, "dm_pvalue": 0.2,
                                 "direction_accuracy": 0.6, "coverage_80": None, "coverage_95": None, "mape": 9}}},
    }  # fmt: skip
    table = summary_table(metrics)
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert table.loc[0, "ticker"] == "A" and table.loc[0, "rmse"] == 1.0 and math.isnan(table.loc[0, "coverage_80"])


def test_skill_shares_and_wilcoxon_against_hand_values():
    scores = panel_scores(summary())
    net = scores["net"]
    skill = [1 - 1.0 / 1.2, 1 - 2.0 / 2.1, 1 - 3.0 / 3.3, 1 - 4.0 / 3.9, 1 - 5.0 / 6.0]
    assert net["tickers"] == 5
    assert net["beats_persistence"] == pytest.approx(4 / 5)  # D only is worse than persistence
    assert net["median_skill"] == pytest.approx(1 - 3.0 / 3.3)
    assert net["mean_skill"] == pytest.approx(sum(skill) / 5)
    assert net["beats_ridge_local"] == pytest.approx(3 / 5)
    assert net["beats_ridge"] == pytest.approx(1 / 5)
    by_hand = stats.wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.2, 3.1, 3.5, 4.0])
    # Differences -0.5, -0.2, -0.1, +0.5, +1.0 have |rank| 3.5, 2, 1, 3.5, 5: W- = 6.5, W+ = 8.5.
    assert by_hand.statistic == pytest.approx(6.5)
    assert net["wilcoxon_p_vs_ridge_local"] == pytest.approx(by_hand.pvalue)
    assert net["wilcoxon_p_vs_ridge"] == pytest.approx(stats.wilcoxon(RMSE["net"], RMSE["ridge"]).pvalue)
    assert scores["ridge_local"]["beats_ridge_local"] is None  # no comparison of a model with itself
    assert scores["ridge_local"]["wilcoxon_p_vs_ridge_local"] is None
    assert scores["ridge_local"]["beats_ridge"] == pytest.approx(2 / 5)
    assert net["rank_ic_mean"] is None  # no forecasts given: no rank IC
    assert scores["persistence"]["beats_persistence"] is None and scores["persistence"]["median_skill"] == 0


def test_against_equal_rmse_and_missing_reference():
    table = summary()
    same = pd.concat([table, table[table["model"] == "net"].assign(model="twin")])
    assert against(same, "twin", "net") == (0.0, None)  # every pair equal: no test possible
    assert against(table[table["model"] != "ridge"], "net", "ridge") == (None, None)


def forecasts() -> pd.DataFrame:
    """3 dates x 5 tickers, log returns chosen so that Spearman is 1, -1 and 0.9 (one swap), plus a
    fourth date with only 4 tickers (left out)."""
    realised = [0.01, 0.02, 0.03, 0.04, 0.05]
    predicted = {
        "2021-01-04": [0.001, 0.002, 0.003, 0.004, 0.005],  # same order: rho = 1
        "2021-01-05": [0.005, 0.004, 0.003, 0.002, 0.001],  # reversed: rho = -1
        "2021-01-06": [0.002, 0.001, 0.003, 0.004, 0.005],  # one adjacent swap: 1 - 6*2/(5*24) = 0.9
        "2021-01-07": [0.001, 0.002, 0.003, 0.004],
    }
    rows = []
    for day, values in predicted.items():
        for ticker, f, r in zip(TICKERS, values, realised, strict=False):
            last = 50.0 + 10 * TICKERS.index(ticker)
            rows.append({"date": pd.Timestamp(day), "ticker": ticker, "last_close": last,
                         "actual": last * math.exp(r), "net": last * math.exp(f)})  # fmt: skip
    return pd.DataFrame(rows)


def test_rank_ic_on_three_dates_by_hand():
    ic = rank_ic(forecasts(), ["net"])
    assert list(ic.index) == list(pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"]))
    np.testing.assert_allclose(ic["net"].to_numpy(), [1.0, -1.0, 0.9])
    s = ic_stats(ic["net"])
    sd = math.sqrt(((1 - 0.3) ** 2 + (-1 - 0.3) ** 2 + (0.9 - 0.3) ** 2) / 2)
    assert s["rank_ic_mean"] == pytest.approx(0.3)
    assert s["rank_ic_t"] == pytest.approx(0.3 / (sd / math.sqrt(3)))
    assert s["rank_ic_positive_days"] == pytest.approx(2 / 3)
    assert s["rank_ic_days"] == 3


def test_rank_ic_uses_the_log_return_from_the_last_close_not_the_level():
    table = forecasts()
    # Forecast returns the reverse of the realised ones; the levels still rise from A to E with the last
    # close, as the actual levels do. An IC of levels would be +1; the IC of returns is -1.
    table["net"] = table["last_close"] ** 2 / table["actual"]
    assert (table.groupby("date")["net"].apply(lambda v: v.is_monotonic_increasing)).all()
    np.testing.assert_allclose(rank_ic(table, ["net"])["net"].to_numpy(), -1.0)


def test_ic_stats_with_too_few_days():
    assert ic_stats(pd.Series([0.2]))["rank_ic_t"] is None
    assert ic_stats(pd.Series([np.nan]))["rank_ic_mean"] is None
    scores = panel_scores(summary(), rank_ic(forecasts(), ["net"]))
    assert scores["net"]["rank_ic_mean"] == pytest.approx(0.3) and scores["ridge"]["rank_ic_mean"] is None


def test_rank_ic_matches_scipy_and_is_nan_for_a_constant_forecast():
    table = forecasts()
    rng = np.random.default_rng(0)
    table["noise"] = table["last_close"] * np.exp(rng.normal(0, 0.01, len(table)))
    table["flat"] = table["last_close"]  # persistence of the close: zero return for every ticker
    ic = rank_ic(table, ["noise", "flat"])
    for day, rows in table[table["date"].isin(ic.index)].groupby("date"):
        expected = stats.spearmanr(
            np.log(rows["noise"] / rows["last_close"]), np.log(rows["actual"] / rows["last_close"])
        )
        assert ic.loc[day, "noise"] == pytest.approx(expected.statistic)
    assert ic["flat"].isna().all() and ic_stats(ic["flat"])["rank_ic_mean"] is None


def test_rank_ic_counts_the_tickers_a_model_forecast_not_those_of_the_day():
    table = forecasts()
    table["sparse"] = table["net"]
    # 5 tickers on 2021-01-04 and 2021-01-06, but the sparse model forecast only two on the 4th: two
    # points always correlate +-1, so that day has no IC for it (the net model keeps all three days).
    table.loc[(table["date"] == "2021-01-04") & ~table["ticker"].isin(TICKERS[:2]), "sparse"] = np.nan
    ic = rank_ic(table, ["net", "sparse"])
    np.testing.assert_allclose(ic["net"].to_numpy(), [1.0, -1.0, 0.9])
    assert np.isnan(ic.loc["2021-01-04", "sparse"])
    np.testing.assert_allclose(ic["sparse"].to_numpy()[1:], [-1.0, 0.9])
    assert ic_stats(ic["sparse"])["rank_ic_days"] == 2
