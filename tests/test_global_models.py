"""Global (panel) models: one network or one pooled ridge for every ticker of a panel."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from stockrnn.config import model_config
from stockrnn.data import Prices, load_prices
from stockrnn.errors import ConfigError, DataError
from stockrnn.global_models import GlobalRidge, global_config, load_global, make_global
from stockrnn.panel_features import (
    MAX_LOG_RATIO,
    TARGET_BOUND,
    PanelFeatures,
    SeriesStats,
    split_origins,
    validation_cutoff,
)

from conftest import TINY, make_prices

TRAIN_END = pd.Timestamp("2020-12-31")
TEST_START = pd.Timestamp("2021-01-04")
SETTINGS = dict(TINY, window=5, batch_size=64)


def ticker(name: str, frame: pd.DataFrame) -> Prices:
    return replace(load_prices(frame), name=name, source=f"{name}.csv")


def make_panel(scale: dict[str, float] | None = None, after: pd.Timestamp | None = None) -> dict[str, Prices]:
    """Tickers of different lengths and start dates; optionally prices from `after` on scaled."""
    specs = {"AAA": (420, 0, "2019-09-02"), "BBB": (300, 1, "2020-02-03"), "CCC": (520, 2, "2019-05-01")}
    panel = {}
    for name, (rows, seed, start) in specs.items():
        frame = make_prices(rows, seed, start)
        if scale and after is not None:
            frame.loc[frame.index >= after, ["Open", "High", "Low", "Close"]] *= scale.get(name, 1.0)
        panel[name] = ticker(name, frame)
    return panel


def fit(name: str, panel: dict[str, Prices], **overrides) -> object:
    config = global_config(name, **{**SETTINGS, **overrides})
    return make_global(name, config).fit_panel(panel, train_end=TRAIN_END)


class Spy(GlobalRidge):
    """A pooled ridge that keeps the windows it was fitted on."""

    def _fit_data(self, data, fit, val, on_epoch, stop, runner=None):
        self.seen = (data, fit, val)
        super()._fit_data(data, fit, val, on_epoch, stop, runner)


def test_windows_never_cross_tickers_and_targets_belong_to_their_ticker() -> None:
    panel = make_panel()
    model = Spy(global_config("ridge", **SETTINGS)).fit_panel(panel, train_end=TRAIN_END)
    data, fit_items, val_items = model.seen
    rows = [len(p.frame.loc[:TRAIN_END]) for p in panel.values()]
    starts = np.cumsum([0] + rows[:-1])
    origins = data.origins.numpy()
    block = np.searchsorted(starts, origins, side="right") - 1  # the ticker of each window's last row
    first_row = origins - model.config.window + 1
    assert (first_row >= starts[block]).all()  # the window's first row is in the same ticker
    assert (origins + model.config.horizon < starts[block] + np.array(rows)[block]).all()  # and its target
    assert len(np.intersect1d(fit_items, val_items)) == 0
    # Each target is its own ticker's next-day high over the close, in that ticker's volatility units.
    features = PanelFeatures("high")
    for k, prices in enumerate(panel.values()):
        frame = prices.frame.loc[:TRAIN_END]
        mine = block == k
        local = origins[mine] - starts[k]
        expected = features.targets(frame, local, 1)
        np.testing.assert_allclose(data.targets[mine].numpy(), expected, rtol=1e-6)


def test_validation_tail_is_the_latest_dates_of_the_whole_panel() -> None:
    panel = make_panel()
    model = Spy(global_config("ridge", **SETTINGS)).fit_panel(panel, train_end=TRAIN_END)
    dates = pd.DatetimeIndex(sorted(set().union(*(p.frame.loc[:TRAIN_END].index for p in panel.values()))))
    cutoff = dates[len(dates) - round(len(dates) * 0.1)]
    assert model.fitted_["validation_start"] == f"{cutoff:%Y-%m-%d}"
    # Every ticker contributes exactly its windows whose target day is on or after the cut-off,
    # whatever its length: not the last 10% of each ticker's windows, nor of the stacked array.
    counts = []
    for prices in panel.values():
        index = prices.frame.loc[:TRAIN_END].index
        origins = np.arange(model.config.window - 1, len(index) - 1)
        counts.append(int((index[origins + 1] >= cutoff).sum()))
    assert model.fitted_["validation_windows"] == sum(counts)
    # Tickers of 300..520 rows ending on the same day hold out the same days, not 10% of their own windows.
    assert len(set(counts)) == 1 and counts[0] > 0
    assert len({round(len(p.frame.loc[:TRAIN_END]) * 0.1) for p in panel.values()}) == 3


def test_split_origins_keeps_straddling_multi_step_windows_out_of_both() -> None:
    index = pd.bdate_range("2020-01-01", periods=30)
    origins = np.arange(4, 28)
    cutoff = validation_cutoff([index[:10], index], 0.2)  # union of 30 dates: the last 6
    assert cutoff == index[24]
    fit_mask, val_mask = split_origins(index, origins, 2, cutoff)
    assert index[origins[val_mask] + 1].min() >= cutoff
    assert index[origins[fit_mask] + 2].max() < cutoff
    assert not (fit_mask & val_mask).any() and (~(fit_mask | val_mask)).sum() == 1  # origin 23 straddles


@pytest.mark.parametrize("name", ["lstm", "ridge"])
def test_no_look_ahead_for_any_ticker(name: str) -> None:
    """Changing every ticker's prices from day t on changes no forecast for a day up to t:
    neither the seen tickers' nor an unseen one's (the model is refitted on the changed panel)."""
    t = pd.Timestamp("2021-02-01")
    unseen = make_prices(300, seed=7, start="2020-03-02")
    before = fit(name, make_panel())
    after = fit(name, make_panel({"AAA": 1.5, "BBB": 0.5, "CCC": 2.0}, after=t))
    changed = unseen.copy()
    changed.loc[changed.index >= t, ["Open", "High", "Low", "Close"]] *= 3.0
    pairs = [(make_panel()[k], make_panel({"AAA": 1.5, "BBB": 0.5, "CCC": 2.0}, after=t)[k]) for k in ("AAA", "CCC")]
    pairs.append((ticker("NEW", unseen), ticker("NEW", changed)))
    for original, modified in pairs:
        a = before.rolling(original, TEST_START).loc[: t - pd.Timedelta(days=1)]  # origins before t
        b = after.rolling(modified, TEST_START).loc[: t - pd.Timedelta(days=1)]
        assert len(a) > 10
        pd.testing.assert_frame_equal(a, b, rtol=1e-6)
    # and the change does show on the days after t, so the comparison can fail
    late = before.rolling(pairs[0][0], TEST_START).loc[t:]
    assert not np.allclose(late["step_1"], after.rolling(pairs[0][1], TEST_START).loc[t:]["step_1"], rtol=1e-3)


@pytest.mark.parametrize("name", ["lstm", "gru", "ridge"])
def test_an_unseen_ticker_predicts_and_rolls_and_save_load_round_trips(name: str, tmp_path) -> None:
    model = fit(name, make_panel())
    new = ticker("NEW", make_prices(260, seed=11, start="2020-02-03"))
    rolled = model.rolling(new, TEST_START)
    predicted = model.predict(new)
    assert np.isfinite(rolled.to_numpy()).all() and np.isfinite(predicted.to_numpy()).all()
    assert list(rolled.columns) == ["step_1", "lo80_1", "hi80_1", "lo95_1", "hi95_1"]
    assert (rolled["lo95_1"] <= rolled["step_1"]).all() and (rolled["step_1"] <= rolled["hi95_1"]).all()
    assert list(predicted.columns) == ["forecast", "lo80", "hi80", "lo95", "hi95"]
    model.save(tmp_path / "m")
    loaded = load_global(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.series_.keys() == model.series_.keys()
    for prices in (new, make_panel()["BBB"]):
        pd.testing.assert_frame_equal(loaded.rolling(prices, TEST_START), model.rolling(prices, TEST_START), rtol=1e-6)
    pd.testing.assert_frame_equal(loaded.predict(new), predicted, rtol=1e-6)
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))


def test_same_seed_same_numbers_with_an_ensemble() -> None:
    panel = make_panel()
    first = fit("gru", panel, ensemble=2, seed=3).rolling(panel["AAA"], TEST_START)
    again = fit("gru", panel, ensemble=2, seed=3).rolling(panel["AAA"], TEST_START)
    other = fit("gru", panel, ensemble=2, seed=4).rolling(panel["AAA"], TEST_START)
    pd.testing.assert_frame_equal(first, again, rtol=1e-6)
    assert not np.allclose(first["step_1"], other["step_1"], rtol=1e-6)


def broken_tickers() -> dict[str, Prices]:
    """A history spliced from a $0.03 series and a $100 one, and one with high == low days."""
    spliced = make_prices(500, seed=5, start="2019-01-01")
    spliced.iloc[:250, :4] *= 0.0003
    flat = make_prices(500, seed=6, start="2019-01-01")
    days = flat.index[::3]
    flat.loc[days, ["Open", "High", "Low"]] = np.repeat(flat.loc[days, ["Close"]].to_numpy(), 3, axis=1)
    flat.loc[flat.index[100:140], ["Open", "High", "Low", "Close"]] = 50.0  # a stretch of zero range
    return {"SPLICE": ticker("SPLICE", spliced), "FLAT": ticker("FLAT", flat)}


@pytest.mark.parametrize("name", ["lstm", "ridge"])
def test_spliced_history_and_zero_range_days_give_sane_forecasts(name: str) -> None:
    broken = broken_tickers()
    model = fit(name, {**make_panel(), **broken})
    assert model.fitted_["tickers"] == 5
    for prices in broken.values():
        for seen in (True, False):
            if not seen:
                prices = replace(prices, name=prices.name + "_unseen")
            rolled = model.rolling(prices, "2020-06-01")
            close = prices.frame["close"].loc[rolled.index]
            assert np.isfinite(rolled.to_numpy()).all()
            ratio = rolled["step_1"] / close
            assert ratio.between(0.7, 1.3).all()
            assert ratio.between(np.exp(-MAX_LOG_RATIO) - 1e-9, np.exp(MAX_LOG_RATIO) + 1e-9).all()


def test_forecast_ratio_is_bounded_and_statistics_are_floored() -> None:
    frame = load_prices(make_prices(60)).frame
    features = PanelFeatures("high")
    origins = np.array([30, 40])
    prices = features.to_price(np.array([[1e6], [-1e6]]), frame, origins)
    close = frame["close"].to_numpy()[origins]
    np.testing.assert_allclose(prices[:, 0] / close, [np.exp(MAX_LOG_RATIO), np.exp(-MAX_LOG_RATIO)])
    spliced = broken_tickers()["SPLICE"].frame
    origins = np.arange(19, len(spliced) - 2)
    targets = features.targets(spliced, origins, 2)
    assert np.abs(targets).max() <= TARGET_BOUND * np.sqrt(2) + 1e-6
    assert targets[origins == 249, 0][0] == pytest.approx(TARGET_BOUND)  # the day before the splice: bounded
    stats = SeriesStats.fit(np.ones((10, 3)))
    assert (stats.scale > 0).all()
    assert np.isfinite(features.inputs(frame, features.stats(frame.iloc[:1]))).all()


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="relative"):
        make_global("lstm", global_config("lstm", features="level"))
    with pytest.raises(ConfigError, match="unknown global model"):
        make_global("persistence")
    with pytest.raises(ConfigError, match="not fitted"):
        make_global("ridge").predict(make_panel()["AAA"])
    short = {"S": ticker("S", make_prices(5))}
    with pytest.raises(ConfigError, match="no ticker"):
        make_global("ridge", global_config("ridge", **SETTINGS)).fit_panel(short)


def test_the_inputs_are_those_most_tickers_have_whatever_the_order_of_the_files() -> None:
    panel = make_panel()
    odd = ticker("ABC", make_prices(400, 3, "2019-09-02").drop(columns="Volume"))
    no_close = ticker("NOC", make_prices(400, 4, "2019-09-02").drop(columns="Close"))
    for tickers in ({"ABC": odd, "NOC": no_close, **panel}, {**panel, "NOC": no_close, "ABC": odd}):
        model = fit("ridge", tickers)
        assert model.fitted_["tickers"] == 3 and model.names_ == fit("ridge", panel).names_
        reasons = {s["ticker"]: s["reason"] for s in model.fitted_["skipped"]}
        assert set(reasons) == {"ABC", "NOC"}
        assert "of 3 of 4 tickers" in reasons["ABC"] and "no close column" in reasons["NOC"]
        np.testing.assert_allclose(
            model.predict(panel["AAA"])["forecast"], fit("ridge", panel).predict(panel["AAA"])["forecast"], rtol=1e-9
        )
    with pytest.raises(ConfigError, match="NOC.csv: no close column"):
        model.predict(replace(no_close, name="NEW"))
    with pytest.raises(ConfigError, match="no ticker of the panel"):
        fit("ridge", {"NOC": no_close})


def test_global_config_layers_defaults_preset_and_overrides() -> None:
    config = global_config("lstm")
    assert (config.window, config.units, config.batch_size, config.ensemble) == (20, 64, 512, 1)
    assert global_config("lstm", "quick", units=8).units == 8
    assert global_config("gru", "reference").optimizer == "sgd"  # the preset wins over the panel defaults
    with pytest.raises(ConfigError, match="unknown preset"):
        global_config("lstm", "nope")


def test_load_refuses_a_single_ticker_model_and_damaged_statistics(tmp_path) -> None:
    model = fit("ridge", make_panel())
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    state = json.loads(path.read_text())
    assert state["model"] == "global_ridge" and set(state["series"]) == {"AAA", "BBB", "CCC"}
    path.write_text(json.dumps({**state, "model": "ridge"}))
    with pytest.raises(DataError, match="not a global model"):
        load_global(tmp_path / "m")
    state["series"]["AAA"]["scale"][0] = -1.0
    path.write_text(json.dumps(state))
    with pytest.raises(DataError, match="invalid model file"):
        load_global(tmp_path / "m")


def test_a_seen_ticker_without_a_column_it_trained_on_is_refused_naming_the_file() -> None:
    """Its training statistics alone said nothing of its inputs: the forecast failed inside NumPy."""
    panel = make_panel()
    model = fit("ridge", panel)
    short = replace(panel["AAA"], frame=panel["AAA"].frame.drop(columns="volume"))
    with pytest.raises(ConfigError, match="AAA.csv: the data has inputs"):
        model.predict(short)
    assert model.cannot_forecast(short).startswith("the data has inputs")
    assert model.cannot_forecast(panel["AAA"]) is None


def test_a_global_model_forecasts_prices_only() -> None:
    """Its target is a bounded log ratio to the close: volume came out in price units."""
    for name in ("ridge", "lstm"):
        with pytest.raises(ConfigError, match="not 'volume'; the per-ticker models"):
            global_config(name, target="volume")
        with pytest.raises(ConfigError, match="not 'adj_close'"):
            make_global(name, model_config(name, target="adj_close"))
    assert global_config("ridge", target="low").target == "low"


def test_load_refuses_a_config_with_a_key_missing_or_unknown_and_no_training_end(tmp_path) -> None:
    model = fit("lstm", make_panel())
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    state = json.loads(path.read_text())
    for broken, reason in (
        ({**state, "config": {k: v for k, v in state["config"].items() if k != "window"}}, "config lacks window"),
        ({**state, "config": {**state["config"], "depth": 3}}, "config has unknown depth"),
        ({**state, "panel": {**state["panel"], "train_end": None}}, "panel.train_end is not a date"),
        ({**state, "calibration": {**state["calibration"], "q80": [float("nan")]}}, "calibration q80 needs 1"),
    ):
        path.write_text(json.dumps(broken))
        with pytest.raises(DataError, match=f"{path}: incomplete or invalid model file .*{reason}"):
            load_global(tmp_path / "m")
