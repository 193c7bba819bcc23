"""The training loop: validation tail, early stopping with the best weights restored, progress."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from stockrnn import load_prices, make_forecaster, model_config
from stockrnn.models import RecurrentNet
from stockrnn.training import EpochInfo, evaluate_loss, train
from stockrnn.windows import WindowDataset, train_origins

from conftest import make_prices


def dataset(rows: int = 300, window: int = 5) -> WindowDataset:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(rows, 2)).astype(np.float32)
    origins = train_origins(0, rows, window, 1)
    targets = inputs[origins + 1, :1] * 0.5 + inputs[origins, 1:2]  # learnable
    return WindowDataset(inputs, targets, origins, window)


def test_early_stopping_restores_the_best_weights():
    data = dataset()
    config = model_config("lstm", window=5, units=8, epochs=40, patience=3, val_fraction=0.2, lr=0.05)
    torch.manual_seed(0)
    net = RecurrentNet("lstm", 2, 8, 1, 0.0)
    seen: list[EpochInfo] = []
    train(net, data, config, torch.device("cpu"), seen.append)
    val_losses = [info.val_loss for info in seen]
    assert seen[-1].last and all(not info.last for info in seen[:-1])
    _, tail = data.split(int(round(len(data) * 0.2)))
    # The weights kept are those of the best validation epoch, not the last one.
    assert evaluate_loss(net, tail, torch.device("cpu")) == pytest.approx(min(val_losses), rel=1e-5)
    if len(seen) < 40:  # stopped early: `patience` epochs without improvement
        best = int(np.argmin(val_losses))
        assert len(seen) - 1 - best == 3


def test_validation_tail_is_the_latest_windows():
    data = dataset()
    head, tail = data.split(30)
    assert len(head) == len(data) - 30 and len(tail) == 30
    assert head.origins.max() < tail.origins.min()
    torch.testing.assert_close(tail.batch(torch.tensor([0]))[1], data.batch(torch.tensor([len(data) - 30]))[1])


def test_no_validation_trains_every_epoch():
    data = dataset()
    config = model_config("gru", "reference", window=5, units=4, layers=1, epochs=3)
    seen: list[EpochInfo] = []
    train(RecurrentNet("gru", 2, 4, 1, 0.0), data, config, torch.device("cpu"), seen.append)
    assert [i.epoch for i in seen] == [1, 2, 3] and all(i.val_loss is None for i in seen)


def test_ensemble_members_differ_and_are_all_trained():
    prices = load_prices(make_prices(200))
    config = model_config("lstm", window=5, units=4, epochs=3, ensemble=3)
    model = make_forecaster("lstm", config).fit(prices)
    assert len(model.network_.members) == 3 and len(model.losses_) == 3
    first = [m.head.weight.detach() for m in model.network_.members]
    assert not torch.allclose(first[0], first[1])


def test_progress_callbacks_go_to_fit_not_to_the_model():
    """A model holds no callback (it would have to travel with it to a worker process): `fit` takes it."""
    prices = load_prices(make_prices(200))
    config = model_config("lstm", window=5, units=4, epochs=3, ensemble=2, val_fraction=0.0)
    model = make_forecaster("lstm", config)
    seen: list[EpochInfo] = []
    model.fit(prices, on_epoch=seen.append)
    assert [(i.member, i.epoch) for i in seen] == [(m, e) for m in (0, 1) for e in (1, 2, 3)]
    assert not hasattr(model, "on_epoch")
    with pytest.raises(TypeError):
        make_forecaster("lstm", config, seen.append)


def test_evaluate_asks_each_model_for_its_epoch_callback():
    from stockrnn import evaluate

    prices = load_prices(make_prices(200))
    models = [make_forecaster("gru", model_config("gru", window=5, units=4, epochs=2, ensemble=1)), "ridge"]
    asked, seen = [], []

    def on_epoch(name, config):
        asked.append(name)
        return seen.append if name == "gru" else None

    evaluate(prices, models, test_start="2020-06-01", on_epoch=on_epoch)
    assert asked == ["gru", "ridge", "persistence"] and [i.epoch for i in seen] == [1, 2]


def random_states() -> tuple:
    state = np.random.get_state()
    return torch.initial_seed(), torch.get_rng_state(), (state[0], state[1].copy(), *state[2:]), random.getstate()


def assert_same_states(before: tuple, after: tuple) -> None:
    assert after[0] == before[0] and torch.equal(after[1], before[1])
    assert after[2][0] == before[2][0] and np.array_equal(after[2][1], before[2][1]) and after[2][2:] == before[2][2:]
    assert after[3] == before[3]


def test_a_fit_leaves_the_callers_random_state_alone_and_repeats_itself():
    """Seeding is the fit's own business: the caller's torch, NumPy and Python generators are as they
    were, and the same seed gives the same forecasts whatever the caller's state (dropout included)."""
    prices = load_prices(make_prices(200))
    config = model_config("lstm", window=5, units=4, layers=2, dropout=0.3, epochs=2, ensemble=2)
    forecasts = []
    for caller_seed in (123, 456):
        torch.manual_seed(caller_seed)
        np.random.seed(caller_seed)
        random.seed(caller_seed)
        before = random_states()
        model = make_forecaster("lstm", config).fit(prices, train_end="2020-06-01")
        assert_same_states(before, random_states())
        forecasts.append(model.rolling(prices, "2020-06-02"))
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])


def test_a_global_fit_leaves_the_callers_random_state_alone_and_repeats_itself():
    from stockrnn.global_models import global_config, make_global
    from stockrnn.panel import load_panel

    panel = load_panel({t: make_prices(200, seed=i) for i, t in enumerate(("AAA", "BBB"))})
    config = global_config("gru", window=5, units=4, layers=2, dropout=0.3, epochs=2, batch_size=16)
    forecasts = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        before = random_states()
        model = make_global("gru", config).fit_panel(panel, train_end="2020-06-01")
        assert_same_states(before, random_states())
        forecasts.append(model.rolling(panel["AAA"], "2020-06-02"))
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
