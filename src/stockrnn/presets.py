"""Preset files: a JSON set of ModelConfig values, such as the `best.json` that `stockrnn tune`
writes, which `--preset-file F` applies like a named preset (explicit options override it).

A file is either the tuned document

    {"format": "stockrnn-preset", "version": 1, "model": "gru", "settings": {"window": 20, ...},
     "score": {...}, "study": {...}}

or, written by hand, a flat object of settings (`{"window": 20, "units": 64}`). Only the
settings are applied; `model`, `score` and `study` say where they came from.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import fields, replace
from datetime import date
from pathlib import Path

from .config import ModelConfig, model_config
from .errors import ConfigError
from .files import atomic_file

PRESET_FORMAT = "stockrnn-preset"
PRESET_VERSION = 1
_TYPES = typing.get_type_hints(ModelConfig)
_FIELDS = tuple(f.name for f in fields(ModelConfig))
# Set by every command's own options (their defaults included), so a file's value would never be used.
RUN_KEYS = ("target", "horizon", "seed", "device")
_MODEL_FIELDS = tuple(name for name in _FIELDS if name not in RUN_KEYS)


def load_preset_file(path: str | Path) -> dict:
    """The settings of a preset file, checked: known ModelConfig fields, right types, valid values.
    Any problem is a one-line ConfigError naming the file and the key."""
    path = Path(path)
    settings = _settings_of(_document(path), path)
    checked = {key: _checked(key, value, path) for key, value in settings.items()}
    try:
        replace(ModelConfig(), **checked)  # the range checks of the config itself
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return checked


def check_tuned_before(path: str | Path, test_start: date) -> None:
    """Refuse a test that starts on or before the last validation day of the tuned preset `path`:
    `tune` chose its settings on those days, so scoring them there would score the choice on the
    days it was made on (honest evaluation). A preset without a tuned span passes."""
    path = Path(path)
    score = _document(path).get("score")
    span = score if isinstance(score, dict) else {}
    try:
        chosen_from, chosen_to = (date.fromisoformat(str(span[key])) for key in ("val_start", "val_end"))
    except (KeyError, ValueError):
        return
    if test_start <= chosen_to:
        raise ConfigError(
            f"{path}: tune chose these settings on {chosen_from} .. {chosen_to}, and this test starts on "
            f"{test_start}: it would score them on days they were chosen on (tune with --test-start "
            f"{test_start} or earlier)"
        )


def apply_preset_file(path: str | Path, model_name: str, **overrides) -> ModelConfig:
    """The config of `model_name`: defaults, then the file's settings, then the explicit
    overrides that are not None (as `--preset NAME` does)."""
    settings = load_preset_file(path)
    return model_config(model_name, None, **{**settings, **{k: v for k, v in overrides.items() if v is not None}})


def write_preset_file(path: str | Path, model: str, settings: dict, **extra) -> Path:
    """Write a tuned preset document atomically; `extra` holds the informative sections."""
    document = {"format": PRESET_FORMAT, "version": PRESET_VERSION, "model": model, "settings": settings, **extra}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n")
    return Path(path)


def _document(path: Path) -> dict:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such preset file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the preset file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: a preset file holds a JSON object, not {type(document).__name__}")
    return document


def _settings_of(document: dict, path: Path) -> dict:
    if "format" not in document:
        return document  # a hand-written flat object of settings
    if document["format"] != PRESET_FORMAT:
        raise ConfigError(f"{path}: format {document['format']!r} is not {PRESET_FORMAT!r}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= PRESET_VERSION:
        raise ConfigError(f"{path}: preset version {version!r} is not one this stockrnn reads (1..{PRESET_VERSION})")
    settings = document.get("settings")
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: no 'settings' object in the preset file")
    return settings


def _checked(key: str, value, path: Path):
    """`value` as the type of ModelConfig field `key` (an int is a fine float), or a ConfigError."""
    if key in RUN_KEYS:
        option = "--" + key.replace("_", "-")
        raise ConfigError(f"{path}: '{key}' is a setting of the run, not of the model: give {option} instead")
    if key not in _FIELDS:
        raise ConfigError(f"{path}: unknown setting '{key}' (known: {', '.join(_MODEL_FIELDS)})")
    kind = _TYPES[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: setting '{key}' must be a finite number, not {json.dumps(value)}")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{path}: setting '{key}' must be {kind.__name__}, not {json.dumps(value)}")
    return value
