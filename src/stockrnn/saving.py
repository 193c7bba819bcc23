"""Reading saved models back: `model.json` and `weights.safetensors` only, never a pickle.
(Writing is `Forecaster.save`.)"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from .config import ModelConfig
from .errors import ConfigError, DataError
from .intervals import Calibration

FORMAT_VERSION = 1  # the newest model.json this version reads and writes


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file; a pickle (torch.save) is refused before any parsing."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the saved model is incomplete)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":
        raise DataError(f"{path}: a pickle (torch.save) file, not safetensors; stockrnn never unpickles")
    if len(data) < 8:
        raise DataError(f"{path}: truncated ({len(data)} bytes), not a safetensors file")
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable safetensors file, truncated or damaged ({reason})") from None


def read_model_json(directory: str | Path) -> tuple[Path, dict]:
    """(path, state) of a saved model's `model.json`, checked to be one this version reads."""
    path = Path(directory) / "model.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (not a saved stockrnn model)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable model file, truncated or damaged ({exc})") from None
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"{path}: no valid format_version (not a saved stockrnn model)")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {version} was written by a newer stockrnn; this one reads up to "
            f"{FORMAT_VERSION} (upgrade stockrnn)"
        )
    return path, state


def write_weights(network: torch.nn.Module, directory: Path) -> None:
    """A network's tensors as `weights.safetensors` (no pickle)."""
    from safetensors.torch import save

    weights = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    # Written by us, not by safetensors' save_file, which makes its file 0600: the weights then follow the
    # umask as model.json beside them does, and a folder shared with others can be read as a whole.
    (directory / "weights.safetensors").write_bytes(save(weights))


def load_weights(network: torch.nn.Module, directory: Path) -> None:
    """Load `weights.safetensors` into `network` strictly: the same tensors, shapes, all finite."""
    path = directory / "weights.safetensors"
    weights = read_weights(path)
    expected = network.state_dict()
    if set(weights) != set(expected):
        odd = sorted(set(weights) ^ set(expected))
        raise DataError(f"{path}: weights do not match the model in model.json (tensors {', '.join(odd[:3])})")
    for key in expected:  # in the model's own order, so the first mismatch named is the first layer's
        tensor = weights[key]
        if tensor.shape != expected[key].shape:
            raise DataError(
                f"{path}: weights do not match the model in model.json ({key} has shape "
                f"{tuple(tensor.shape)}, the config needs {tuple(expected[key].shape)})"
            )
        if not torch.isfinite(tensor).all():
            raise DataError(f"{path}: tensor {key} holds NaN or infinite values")
    network.load_state_dict(weights, strict=True)


def load(directory: str | Path):
    """Rebuild a saved model from `model.json` and load its weights strictly; never unpickles."""
    directory = Path(directory)
    path, state = read_model_json(directory)
    if str(state.get("model", "")).startswith("global_"):  # one network or ridge for a panel
        from .global_models import load_global

        return load_global(directory)
    from .registry import make_forecaster

    try:
        model = make_forecaster(state["model"], ModelConfig.from_dict(state["config"]))
        model._restore(state, directory)
        features = getattr(model, "features_", None)  # persistence has none
        if features is not None and (features.target, features.kind) != (model.config.target, model.config.features):
            raise ConfigError(
                f"its features are of {features.target} ({features.kind}), its config of "
                f"{model.config.target} ({model.config.features})"
            )
        model.calibration_ = Calibration.from_dict(state.get("calibration"), model.config.horizon)
        model.fitted_ = dict(state["fitted"])
        for key in ("first", "last"):  # the training span, which `check_data` compares with
            if not isinstance(model.fitted_.get(key), str) or pd.isna(pd.Timestamp(model.fitted_[key])):
                raise ValueError(f"fitted.{key} is not a date")
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        reason = exc if isinstance(exc, ConfigError) else repr(exc)
        raise DataError(f"{path}: incomplete or invalid model file ({reason})") from None
    return model
