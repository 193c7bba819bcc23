"""stockrnn: LSTM and GRU stock forecasts, judged honestly against naive baselines.

The public names are imported on first use (PEP 562), so `import stockrnn` and `stockrnn --help`
do not pay for torch, scikit-learn and pandas.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# Public name -> the submodule that defines it.
_EXPORTS = {
    "Backtest": "backtest",
    "backtest": "backtest",
    "ConfigError": "errors",
    "DataError": "errors",
    "StockrnnError": "errors",
    "TrainingError": "errors",
    "Evaluation": "evaluate",
    "evaluate": "evaluate",
    "Forecaster": "forecaster",
    "NetworkForecaster": "forecaster",
    "Persistence": "forecaster",
    "RidgeForecaster": "forecaster",
    "load": "forecaster",
    "make_forecaster": "forecaster",
    "ModelConfig": "config",
    "model_config": "config",
    "Prices": "data",
    "load_folder": "data",
    "load_prices": "data",
    "Explanation": "explain",
    "explain": "explain",
    "Panel": "panel",
    "load_panel": "panel",
    "PanelEvaluation": "panel_eval",
    "evaluate_panel": "panel_eval",
    "StopToken": "interrupt",
    "EpochInfo": "training",
}
# Functions named like the module that holds them: `stockrnn.backtest` means the function.
_SHADOWED = {name for name, module in _EXPORTS.items() if name == module}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Importing `stockrnn.backtest` binds the submodule as the package's `backtest` attribute,
    which would hide the function of that name; that one binding is skipped."""

    def __setattr__(self, name: str, value) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
