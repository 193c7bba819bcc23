"""Model names and the classes behind them: adding a model is one class and one line here.

Kept free of heavy imports (the command line reads the names at start-up); a class is imported
when a model of its name is made."""

from __future__ import annotations

import importlib

# name -> (module, class, keyword arguments)
MODELS: dict[str, tuple[str, str, dict]] = {
    "lstm": ("networks", "NetworkForecaster", {"cell": "lstm"}),
    "gru": ("networks", "NetworkForecaster", {"cell": "gru"}),
    "persistence": ("baselines", "Persistence", {}),
    "ridge": ("baselines", "RidgeForecaster", {}),
}


def make_forecaster(name: str, config=None):
    """A forecaster by model name ('lstm', 'gru', 'ridge', 'persistence'): an unfitted model with
    `config` (default: that model's defaults). Progress callbacks go to `fit`, not here."""
    from .config import model_config
    from .errors import ConfigError

    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    module, cls, kwargs = MODELS[name]
    model_class = getattr(importlib.import_module(f".{module}", __package__), cls)
    return model_class(**kwargs, config=config or model_config(name))
