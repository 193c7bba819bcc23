"""Windows: boundaries, counts, the first test window, and no copies of every window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stockrnn import load_prices, make_forecaster, model_config
from stockrnn.features import Features
from stockrnn.windows import WindowDataset, train_origins

from conftest import make_prices


def test_train_origins_boundaries_and_count():
    origins = train_origins(0, 100, window=10, horizon=1)
    assert origins[0] == 9  # the first window is rows 0..9, its target row 10
    assert origins[-1] == 98  # the last target is row 99, the last training row
    assert len(origins) == 100 - 10  # rows - window windows, as in the Keras recipe
    assert len(train_origins(0, 100, window=10, horizon=3)) == 100 - 10 - 2


def test_window_contents_and_targets():
    values = np.arange(20, dtype=np.float32)[:, None]
    origins = train_origins(0, 20, 4, 2)
    targets = values[origins[:, None] + np.array([1, 2]), 0]
    data = WindowDataset(values, targets, origins, window=4)
    x, y = data.batch(torch.tensor([0, 5]))
    assert x.shape == (2, 4, 1) and y.shape == (2, 2)
    assert x[0, :, 0].tolist() == [0, 1, 2, 3] and y[0].tolist() == [4, 5]
    assert x[1, :, 0].tolist() == [5, 6, 7, 8] and y[1].tolist() == [9, 10]
    assert len(data) == 20 - 4 - 1


def test_windows_are_a_view_not_a_copy():
    values = np.zeros((10_000, 3), dtype=np.float32)
    data = WindowDataset(values, None, train_origins(0, 10_000, 60, 1), window=60)
    # The strided view shares the one input array: no (windows x window x features) copy exists.
    assert data._view.untyped_storage().data_ptr() == data.inputs.untyped_storage().data_ptr()
    assert data._view.shape == (10_000 - 60 + 1, 3, 60)


def test_first_test_window_looks_back_into_training():
    prices = load_prices(make_prices(120))
    model = make_forecaster("persistence").fit(prices, train_end=prices.index[99])
    forecasts = model.rolling(prices, prices.index[100])
    # The first test day is row 100; its forecast is made at origin row 99, the last training day.
    assert forecasts.index[0] == prices.index[99]
    assert forecasts["step_1"].iloc[0] == prices.frame["high"].iloc[99]
    assert len(forecasts) == 20


def test_scaler_sees_training_rows_only():
    frame = make_prices(200)
    frame.iloc[150:, frame.columns.get_loc("High")] *= 10  # a test period far above training
    prices = load_prices(frame)
    config = model_config("ridge", window=5, features="level")
    model = make_forecaster("ridge", config).fit(prices, train_end=prices.index[149])
    train_high = prices.frame["high"].iloc[:150]
    assert model.features_.input_scaler_.data_max_[0] == train_high.max()
    assert model.features_.input_scaler_.data_min_[0] == train_high.min()
    relative = make_forecaster("ridge", model_config("ridge", window=5)).fit(prices, train_end=prices.index[149])
    expected = relative.features_._raw_inputs(prices.frame.iloc[:150])[0].mean(axis=0)
    np.testing.assert_allclose(relative.features_.input_scaler_.mean_, expected)


@pytest.mark.parametrize("kind", ["level", "relative"])
def test_features_roundtrip_to_price(kind):
    prices = load_prices(make_prices(50))
    origins = np.arange(0, 47)
    features = Features("high", kind).fit(prices.frame, origins, 3)
    scaled = features.targets(prices.frame, origins, 3)
    back = features.to_price(scaled, prices.frame, origins)
    expected = prices.frame["high"].to_numpy()[origins[:, None] + np.arange(1, 4)]
    np.testing.assert_allclose(back, expected, rtol=1e-5)


def test_relative_features_are_ratios_of_the_last_close():
    prices = load_prices(make_prices(80))
    origins = np.arange(10, 70)
    features = Features("high", "relative").fit(prices.frame, origins, 1)
    frame = prices.frame
    raw, names = features._raw_inputs(frame)
    assert names[:4] == ["close_return", "open_gap", "high_range", "low_range"] and "volume_relative" in names
    assert raw[5, 0] == pytest.approx(np.log(frame["close"].iloc[5] / frame["close"].iloc[4]))
    assert raw[5, 2] == pytest.approx(np.log(frame["high"].iloc[5] / frame["close"].iloc[5]))
    target = features._raw_targets(frame, origins, 1)
    assert target[0, 0] == pytest.approx(np.log(frame["high"].iloc[11] / frame["close"].iloc[10]))
    # Scalers are fitted on the given rows and windows: standardised training targets.
    scaled = features.targets(frame, origins, 1)
    assert abs(scaled.mean()) < 1e-5 and scaled.std() == pytest.approx(1.0, rel=1e-3)
