"""Model settings, presets and their validation: one dataclass that every model reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .errors import ConfigError
from .registry import MODELS as REGISTRY

MODELS = tuple(REGISTRY)  # the model names (registry.py: one line per model)
NETWORKS = ("lstm", "gru")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
# What a window model sees (see features.py); defined here so that reading settings needs no sklearn.
KINDS = ("relative", "level")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model; saved with it, so a loaded model is rebuilt exactly."""

    target: str = "high"
    window: int = 10
    horizon: int = 1
    features: str = "relative"
    layers: int = 1
    units: int = 32
    dropout: float = 0.0
    epochs: int = 100  # at most: training stops early on the validation tail
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    val_fraction: float = 0.1  # the last windows of the training span, for early stopping
    patience: int = 10  # epochs without a better validation loss before training stops
    ensemble: int = 3  # networks trained with seeds seed, seed + 1, ...; forecasts averaged
    clip: float = 1.0  # gradient-norm clipping; 0 turns it off
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = {
            "window": self.window >= 1,
            "horizon": self.horizon >= 1,
            "layers": self.layers >= 1,
            "units": self.units >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "val_fraction": 0.0 <= self.val_fraction < 0.5,
            "patience": self.patience >= 1,
            "ensemble": self.ensemble >= 1,
            "clip": self.clip >= 0,
            "optimizer": self.optimizer in OPTIMIZERS,
            "features": self.features in KINDS,
            "device": self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"bad value for {name.replace('_', '-')}: {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> ModelConfig:
        """The config `to_dict` wrote, strictly: every field and no other (a saved model whose
        `window` went missing would load with the default and read windows of another length)."""
        known = [f.name for f in fields(cls)]
        missing, unknown = [k for k in known if k not in state], sorted(set(state) - set(known))
        if missing or unknown:
            wrong = [f"config lacks {', '.join(missing)}"] if missing else []
            wrong += [f"config has unknown {', '.join(unknown)}"] if unknown else []
            raise ConfigError(f"{'; '.join(wrong)} (written by another stockrnn version? fit the model again)")
        return cls(**state)


# A preset is a set of values per model name ("*" for all); explicit options override it.
PRESETS: dict[str, dict[str, dict]] = {
    # The published Keras recipe: 4 x 50 units, dropout 0.2, batch 32, 50 epochs, target only;
    # LSTM with RMSprop (Keras defaults), GRU with SGD (lr 0.01, momentum 0.9).
    "reference": {
        "*": dict(
            window=60,
            features="level",
            layers=4,
            units=50,
            dropout=0.2,
            epochs=50,
            batch_size=32,
            val_fraction=0.0,
            ensemble=1,
            clip=0.0,
        ),
        "lstm": dict(optimizer="rmsprop", lr=1e-3),
        "gru": dict(optimizer="sgd", lr=0.01),
    },
    # The defaults with one network instead of an ensemble: what `stockrnn demo` runs.
    "quick": {"*": dict(ensemble=1, epochs=60)},
}


def model_config(model: str, preset: str | None = None, **overrides) -> ModelConfig:
    """The config for `model`: defaults, then the preset's values, then explicit overrides."""
    if model not in MODELS:
        raise ConfigError(f"unknown model '{model}' (choose from {', '.join(MODELS)})")
    values: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
        values.update(PRESETS[preset].get("*", {}))
        values.update(PRESETS[preset].get(model, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(ModelConfig(), **values)


def parse_models(text: str) -> list[str]:
    """'lstm,gru' -> ['lstm', 'gru'], rejecting unknown or repeated names."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models is empty")
    for name in names:
        if name not in MODELS:
            raise ConfigError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    if len(set(names)) != len(names):
        raise ConfigError(f"--models names a model twice: {text}")
    return names
