"""stockrnn: LSTM and GRU stock forecasts, judged honestly against naive baselines."""

__version__ = "0.1.0"

from .config import ModelConfig, model_config  # noqa: E402
from .data import Prices, load_prices  # noqa: E402
from .errors import ConfigError, DataError, StockrnnError, TrainingError  # noqa: E402
from .evaluate import Evaluation, evaluate  # noqa: E402
from .explain import Explanation, explain  # noqa: E402
from .forecaster import Forecaster, NetworkForecaster, Persistence, RidgeForecaster, load, make_forecaster  # noqa: E402
from .panel import Panel, load_panel  # noqa: E402
from .panel_eval import PanelEvaluation, evaluate_panel  # noqa: E402

__all__ = [
    "ConfigError",
    "DataError",
    "Evaluation",
    "Explanation",
    "Forecaster",
    "ModelConfig",
    "NetworkForecaster",
    "Panel",
    "PanelEvaluation",
    "Persistence",
    "Prices",
    "RidgeForecaster",
    "StockrnnError",
    "TrainingError",
    "__version__",
    "evaluate",
    "evaluate_panel",
    "explain",
    "load",
    "load_panel",
    "load_prices",
    "make_forecaster",
    "model_config",
]
