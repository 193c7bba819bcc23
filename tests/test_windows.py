"""Windows: boundaries, counts, the first test window, and no copies of every window."""

from __future__ import annotations

import numpy as np
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
    data = WindowDataset(values, values[:, 0], train_origins(0, 20, 4, 2), window=4, horizon=2)
    x, y = data.batch(torch.tensor([0, 5]))
    assert x.shape == (2, 4, 1) and y.shape == (2, 2)
    assert x[0, :, 0].tolist() == [0, 1, 2, 3] and y[0].tolist() == [4, 5]
    assert x[1, :, 0].tolist() == [5, 6, 7, 8] and y[1].tolist() == [9, 10]
    assert len(data) == 20 - 4 - 1


def test_windows_are_a_view_not_a_copy():
    values = np.zeros((10_000, 3), dtype=np.float32)
    data = WindowDataset(values, None, train_origins(0, 10_000, 60, 1), window=60, horizon=1)
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
    model = make_forecaster("ridge", model_config("ridge", window=5)).fit(prices, train_end=prices.index[149])
    train_high = prices.frame["high"].iloc[:150]
    assert model.features_.scaler_.data_max_[0] == train_high.max()
    assert model.features_.scaler_.data_min_[0] == train_high.min()


def test_features_roundtrip_to_price():
    prices = load_prices(make_prices(50))
    features = Features("high").fit(prices.frame)
    scaled = features.targets(prices.frame)
    back = features.to_price(scaled[:, None], prices.frame, np.arange(50))
    np.testing.assert_allclose(back[:, 0], prices.frame["high"].to_numpy(), rtol=1e-5)
