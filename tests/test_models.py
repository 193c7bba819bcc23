"""The network and the reference preset: architecture, initialisation and optimiser settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stockrnn import ConfigError, model_config
from stockrnn.models import Ensemble, RecurrentNet
from stockrnn.training import make_optimizer, resolve_device


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reference_architecture(cell):
    config = model_config(cell, "reference")
    assert (config.window, config.layers, config.units, config.dropout) == (60, 4, 50, 0.2)
    assert (config.epochs, config.batch_size, config.features) == (50, 32, "level")
    net = RecurrentNet(cell, 1, config.units, config.layers, config.dropout)
    recurrent = [m for m in net.modules() if isinstance(m, nn.LSTM | nn.GRU)]
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(recurrent) == 4 and all(isinstance(m, nn.LSTM if cell == "lstm" else nn.GRU) for m in recurrent)
    assert all(m.num_layers == 1 and m.hidden_size == 50 for m in recurrent)
    assert len(dropouts) == 4 and all(d.p == 0.2 for d in dropouts)
    assert isinstance(net.head, nn.Linear) and net.head.out_features == 1
    assert net(torch.zeros(3, 60, 1)).shape == (3, 1)


def test_reference_optimisers():
    lstm = make_optimizer([nn.Parameter(torch.zeros(1))], model_config("lstm", "reference"))
    assert isinstance(lstm, torch.optim.RMSprop)
    group = lstm.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["momentum"]) == (1e-3, 0.9, 1e-7, 0)
    gru = make_optimizer([nn.Parameter(torch.zeros(1))], model_config("gru", "reference"))
    assert isinstance(gru, torch.optim.SGD)
    group = gru.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.9, False)


def test_defaults_differ_from_reference_only_where_chosen():
    default, reference = model_config("lstm"), model_config("lstm", "reference")
    assert default.features == "relative" and reference.features == "level"
    assert default.optimizer == "adam" and default.val_fraction > 0 and default.ensemble >= 1
    assert reference.val_fraction == 0 and reference.ensemble == 1 and reference.clip == 0


def test_ensemble_forecast_is_the_mean_of_its_members():
    torch.manual_seed(0)
    members = [RecurrentNet("gru", 3, 8, 1, 0.0) for _ in range(3)]
    ensemble = Ensemble(members).eval()
    x = torch.randn(5, 7, 3)
    expected = torch.stack([m(x) for m in members]).mean(dim=0)
    torch.testing.assert_close(ensemble(x), expected)


def test_explicit_options_override_preset():
    config = model_config("gru", "reference", lr=0.05, layers=2)
    assert config.lr == 0.05 and config.layers == 2 and config.optimizer == "sgd"


def test_keras_initialisation():
    torch.manual_seed(0)
    net = RecurrentNet("lstm", 1, 50, 2, 0.2)
    rnn = net.recurrent[1]
    w = rnn.weight_hh_l0.detach()  # (4 * units, units): orthogonal columns
    torch.testing.assert_close(w.T @ w, torch.eye(50), atol=1e-5, rtol=0)
    bias = rnn.bias_ih_l0.detach()
    assert torch.all(bias[50:100] == 1) and torch.all(bias[:50] == 0) and torch.all(bias[100:] == 0)
    assert torch.all(rnn.bias_hh_l0 == 0) and torch.all(net.head.bias == 0)
    limit = (6 / (50 + 200)) ** 0.5  # Glorot-uniform bound for the (units -> 4 units) input kernel
    assert rnn.weight_ih_l0.abs().max() <= limit
    gru = RecurrentNet("gru", 1, 8, 1, 0.0).recurrent[0]
    assert torch.all(gru.bias_ih_l0 == 0)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown preset"):
        model_config("lstm", "nope")
    with pytest.raises(ConfigError, match="unknown model"):
        model_config("transformer")
    with pytest.raises(ConfigError, match="dropout"):
        model_config("lstm", dropout=1.5)


def test_device_selection(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
