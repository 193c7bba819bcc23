"""The Python API end to end: evaluation, seeds, repaired days, horizons, predict, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockrnn import ConfigError, DataError, evaluate, load, load_prices, make_forecaster, model_config
from stockrnn.files import OUTPUT_MARK

from conftest import TINY, make_prices


def tiny(name: str, **extra):
    return make_forecaster(name, model_config(name, **{**TINY, **extra}))


@pytest.fixture(scope="module")
def prices():
    return load_prices(make_prices(260, seed=5))


def test_same_seed_same_numbers_different_seed_different(prices):
    def run(seed: int):
        return evaluate(prices, [tiny("lstm", seed=seed), tiny("gru", seed=seed)], test_start=prices.index[200])

    first, again, other = run(1), run(1), run(2)
    pd.testing.assert_frame_equal(first.predictions, again.predictions, check_exact=True)
    assert first.metrics["models"] == again.metrics["models"]
    for name in ("lstm", "gru"):
        assert not np.allclose(first.predictions[name], other.predictions[name])


def test_persistence_is_always_added_and_scores_as_benchmark(prices):
    result = evaluate(prices, [tiny("ridge", window=5)], test_start=prices.index[200])
    assert result.models == ["ridge", "persistence"]
    actual = prices.frame["high"].to_numpy()
    expected = np.sqrt(np.mean((actual[200:] - actual[199:-1]) ** 2))
    assert result.metrics["models"]["persistence"]["rmse"] == pytest.approx(expected)
    ridge = result.metrics["models"]["ridge"]
    assert ridge["skill"] == pytest.approx(1 - ridge["rmse"] / expected)
    assert result.metrics["data"]["scored_days"] == 60


def test_repaired_target_days_are_not_scored(tmp_path):
    frame = make_prices(120, seed=2).round(4)
    frame = frame.astype(object)
    frame.iloc[110, frame.columns.get_loc("High")] = "null"
    path = tmp_path / "gap.csv"
    frame.to_csv(path)
    prices = load_prices(path)
    result = evaluate(prices, ["persistence"], test_start=prices.index[100])
    assert result.metrics["data"]["excluded_repaired"] == 1
    assert result.metrics["data"]["scored_days"] == 19
    assert result.metrics["data"]["repairs"]["filled"]["high"] == [prices.index[110].strftime("%Y-%m-%d")]
    assert result.metrics["models"]["persistence"]["n"] == 19


def test_multi_step_horizon(prices):
    result = evaluate(
        prices,
        [tiny("gru", horizon=3), make_forecaster("ridge", model_config("ridge", window=5, horizon=3))],
        test_start=prices.index[200],
    )
    assert result.horizon == 3
    steps = result.metrics["models"]["gru"]["by_step"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    table = result.predictions
    assert list(table.columns[:4]) == ["origin", "date", "step", "actual"]
    # Step k of origin o is the k-th trading day after o, and only days inside the test span.
    row = table[(table["step"] == 3)].iloc[0]
    assert row["date"] == prices.index[prices.index.get_loc(row["origin"]) + 3]
    assert (table["date"] <= prices.index[-1]).all() and (table["date"] >= prices.index[200]).all()
    assert (table["persistence"] == prices.frame["high"].reindex(table["origin"]).to_numpy()).all()


def test_a_test_span_shorter_than_the_horizon_keeps_the_long_layout(prices, tmp_path):
    """One test day holds step 1 only: the run is still of horizon 3 (it wrote the one-step table)."""
    from stockrnn.outputs import write_evaluation

    ridge = make_forecaster("ridge", model_config("ridge", window=5, horizon=3))
    result = evaluate(prices, [ridge], test_start=prices.index[-1])
    assert result.horizon == 3 and set(result.predictions["step"]) == {1}
    out = write_evaluation(result, tmp_path / "out", report=False)
    assert pd.read_csv(out / "predictions.csv").columns[:4].tolist() == ["origin", "date", "step", "actual"]
    assert (out / "error_by_step.png").exists()


def test_too_few_windows_for_a_validation_tail_names_the_data():
    small = load_prices(make_prices(14, seed=5))
    with pytest.raises(ConfigError, match=r"^<DataFrame>: 2 training windows are too few to hold out"):
        tiny("lstm", window=12).fit(small)


def test_predict_dates_are_next_weekdays(prices):
    model = make_forecaster("ridge", model_config("ridge", window=5, horizon=3)).fit(prices)
    future = model.predict(prices, horizon=3)
    last = prices.index[-1]
    assert list(future.index) == list(pd.bdate_range(last + pd.Timedelta(days=1), periods=3))
    assert all(d.weekday() < 5 for d in future.index) and future.index[0] > last
    with pytest.raises(ConfigError, match="trained for 1..3 steps"):
        model.predict(prices, horizon=4)


@pytest.mark.parametrize("name", ["lstm", "ridge", "persistence"])
def test_save_and_load_predict_the_same(prices, tmp_path, name):
    model = tiny(name) if name == "lstm" else make_forecaster(name, model_config(name, window=5))
    model.fit(prices, train_end=prices.index[199])
    model.save(tmp_path / "model")
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert files == ({"model.json", "weights.safetensors"} if name == "lstm" else {"model.json"}) | {OUTPUT_MARK}
    loaded = load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.rolling(prices, prices.index[200]), model.rolling(prices, prices.index[200]))


def test_load_refuses_a_missing_model(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path)


def test_unfitted_model_is_a_clear_error(prices):
    with pytest.raises(ConfigError, match="not fitted"):
        make_forecaster("ridge").rolling(prices, prices.index[100])
