"""Saved models people can pass around: model.json plus safetensors weights, loaded without
unpickling anything, refusing damaged or foreign files with exit 2, and predicting exactly what
the saved model predicted (through the API and through `stockrnn predict`)."""

from __future__ import annotations

import io
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import stockrnn
from stockrnn import DataError, load, load_prices, make_forecaster, model_config
from stockrnn.files import OUTPUT_MARK

from conftest import TINY, make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--dropout", "0", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def prices():
    return load_prices(make_prices(160, seed=4))


@pytest.fixture(scope="module")
def saved(prices, tmp_path_factory) -> dict[str, tuple[stockrnn.Forecaster, Path]]:
    """One fitted and saved model of each kind, horizon 2."""
    root = tmp_path_factory.mktemp("models")
    models = {}
    for name in ("lstm", "gru", "ridge", "persistence"):
        overrides = TINY if name in ("lstm", "gru") else {"window": 5}
        model = make_forecaster(name, model_config(name, target="close", horizon=2, seed=1, **overrides))
        model.fit(prices, train_end="2020-06-30")
        models[name] = (model, model.save(root / name))
    return models


@pytest.mark.parametrize("name", ["lstm", "gru", "ridge", "persistence"])
def test_save_format(saved, name):
    model, directory = saved[name]
    files = {p.name for p in directory.iterdir()}
    assert files == ({"model.json", "weights.safetensors"} if name in ("lstm", "gru") else {"model.json"}) | {
        OUTPUT_MARK
    }
    state = json.loads((directory / "model.json").read_text())
    assert state["format_version"] == 1 and state["model"] == name
    assert state["config"]["target"] == "close" and state["config"]["horizon"] == 2
    assert len(state["fitted"]["fingerprint"]) == 16 and state["fitted"]["last"] == "2020-06-30"
    assert {"stockrnn", "torch", "python"} <= set(state["versions"])
    if name != "persistence":
        assert state["features"]["kind"] == "relative" and "close_return" in state["features"]["names"]
        assert state["features"]["input_scaler"]["kind"] == "standard"
    if name in ("lstm", "gru"):
        data = (directory / "weights.safetensors").read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        assert "members.0.head.weight" in header and header["members.0.head.weight"]["dtype"] == "F32"


@pytest.mark.parametrize("name", ["lstm", "gru", "ridge", "persistence"])
def test_loaded_model_predicts_exactly_the_same(saved, prices, name):
    model, directory = saved[name]
    loaded = load(directory)
    assert type(loaded) is type(model) and loaded.config == model.config
    pd.testing.assert_frame_equal(loaded.predict(prices, 2), model.predict(prices, 2), check_exact=True)
    pd.testing.assert_frame_equal(
        loaded.rolling(prices, "2020-07-01"), model.rolling(prices, "2020-07-01"), check_exact=True
    )


def test_loading_never_unpickles(saved, prices, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    for _, directory in saved.values():
        load(directory).predict(prices, 1)


def test_saving_replaces_a_previous_model_whole(saved, prices, tmp_path):
    directory = tmp_path / "model"
    saved["lstm"][0].save(directory)
    saved["ridge"][0].save(directory)  # a ridge model over an LSTM: no stale weights file is left
    assert {p.name for p in directory.iterdir()} == {"model.json", OUTPUT_MARK}
    assert load(directory).name == "ridge"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def read_forecast(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, parse_dates=["date"]).set_index("date")
    table.index = pd.DatetimeIndex(table.index.as_unit("ns"), freq=None)
    return table


def test_cli_predict_matches_the_saved_model_exactly(cli, saved, prices, tmp_path):
    data = tmp_path / "prices.csv"
    prices.frame.to_csv(data, float_format="%.17g")  # the same numbers, read back exactly
    model, directory = saved["lstm"]
    out = tmp_path / "forecast.csv"
    code, stdout, err = cli("predict", directory, "--data", data, "--horizon", "2", "--out", out)
    assert code == 0, err
    expected = model.predict(load_prices(data), 2)
    expected.index.freq = None
    pd.testing.assert_frame_equal(read_forecast(out), expected, check_exact=True, check_names=False)
    assert "forecast" in stdout and f"{expected.index[0]:%Y-%m-%d}" in stdout


def test_cli_fit_then_predict(cli, tmp_path):
    data = tmp_path / "AAA.csv"
    make_prices(150, seed=9).to_csv(data)
    directory = tmp_path / "model"
    code, stdout, err = cli("fit", "--data", data, "--model", "gru", "--target", "close", "--horizon", "3",
                            "--save", directory, *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    assert "Saved the gru model" in stdout
    out = tmp_path / "f.csv"
    code, _, err = cli("predict", directory, "--data", data, "--horizon", "3", "--out", out)
    assert code == 0, err
    api = load(directory).predict(load_prices(data), 3)
    api.index.freq = None
    table = read_forecast(out)
    pd.testing.assert_frame_equal(table, api, check_exact=True, check_names=False)
    assert list(table.index) == list(pd.bdate_range("2020-07-29", periods=3))
    state = json.loads((directory / "model.json").read_text())
    assert state["fitted"]["interrupted"] is False and state["fitted"]["rows"] == 150


class Boom:
    """A pickle that would leave a file behind if anything ever unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def damage(directory: Path, how: str, tmp_path: Path) -> str:
    """Break a copy of a saved LSTM in one way; returns the text the error line must hold."""
    weights, meta = directory / "weights.safetensors", directory / "model.json"
    state = json.loads(meta.read_text())
    if how == "no_model_json":
        meta.unlink()
        return "model.json: no such file (not a saved stockrnn model)"
    if how == "no_weights":
        weights.unlink()
        return "weights.safetensors: no such file (the saved model is incomplete)"
    if how == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:-100])
        return "weights.safetensors: not a readable safetensors file, truncated or damaged"
    if how == "tiny_weights":
        weights.write_bytes(b"\x01\x02")
        return "weights.safetensors: truncated (2 bytes)"
    if how == "truncated_json":
        meta.write_text(meta.read_text()[:-30])
        return "model.json: not a readable model file, truncated or damaged"
    if how == "shape_mismatch":
        state["config"]["units"] = 8
        meta.write_text(json.dumps(state))
        return "(members.0.recurrent.0.weight_ih_l0 has shape (16, 7), the config needs (32, 7))"
    if how == "newer_format":
        state["format_version"] = 2
        meta.write_text(json.dumps(state))
        return "model.json: format version 2 was written by a newer stockrnn; this one reads up to 1"
    if how == "pickle_weights":
        weights.write_bytes(pickle.dumps(Boom(tmp_path / "unpickled.marker")))
        return "weights.safetensors: a pickle (torch.save) file, not safetensors; stockrnn never unpickles"
    if how == "torch_save_weights":
        buffer = io.BytesIO()
        torch.save({"head.weight": torch.zeros(2, 4)}, buffer)
        weights.write_bytes(buffer.getvalue())
        return "a pickle (torch.save) file, not safetensors"
    if how == "nan_weights":
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights))
        tensors["members.0.head.bias"][0] = float("nan")
        save_file(tensors, str(weights))
        return "tensor members.0.head.bias holds NaN or infinite values"
    if how == "extra_tensor":
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights))
        tensors["backdoor"] = torch.zeros(1)
        save_file(tensors, str(weights))
        return "weights do not match the model in model.json (tensors backdoor)"
    if how == "unknown_model":
        state["model"] = "transformer"
        meta.write_text(json.dumps(state))
        return "model.json: incomplete or invalid model file (unknown model 'transformer'"
    if how == "no_format_version":
        meta.write_text(json.dumps([1, 2, 3]))
        return "model.json: no valid format_version"
    invalid = "model.json: incomplete or invalid model file ("
    if how == "config_key_missing":  # it loaded with the default window and read shorter windows
        del state["config"]["window"]
        meta.write_text(json.dumps(state))
        return invalid + "config lacks window (written by another stockrnn version? fit the model again)"
    if how == "target_edited":  # it forecast the close and called it volume
        state["config"]["target"] = "volume"
        meta.write_text(json.dumps(state))
        return invalid + "its features are of close (relative), its config of volume (relative)"
    if how == "nan_calibration":  # the only damage whose line named no file
        state["calibration"] = {"q80": [float("nan")], "q95": [1.0, 1.0], "n": 20, "held_out": True}
        meta.write_text(json.dumps(state))
        return invalid + "calibration q80 needs 2 finite non-negative values, got [nan]"
    raise ValueError(how)


DAMAGES = [
    "no_model_json", "no_weights", "truncated_weights", "tiny_weights", "truncated_json", "shape_mismatch",
    "newer_format", "pickle_weights", "torch_save_weights", "nan_weights", "extra_tensor", "unknown_model",
    "no_format_version", "config_key_missing", "target_edited", "nan_calibration",
]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_models_are_refused(cli, saved, prices, tmp_path, how):
    directory = tmp_path / "model"
    saved["lstm"][0].save(directory)
    expected = damage(directory, how, tmp_path)
    with pytest.raises(DataError, match="^" + str(directory)):
        load(directory)
    data = tmp_path / "prices.csv"
    prices.frame.to_csv(data)
    out = tmp_path / "forecast.csv"
    code, stdout, err = cli("predict", directory, "--data", data, "--out", out)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert expected in err, err
    assert str(directory) in err
    assert not out.exists() and not list(tmp_path.glob(".forecast.csv*"))
    assert not (tmp_path / "unpickled.marker").exists()


def test_ridge_coefficients_must_match_the_config(saved, tmp_path):
    directory = tmp_path / "ridge"
    saved["ridge"][0].save(directory)
    state = json.loads((directory / "model.json").read_text())
    state["config"]["window"] = 7
    (directory / "model.json").write_text(json.dumps(state))
    with pytest.raises(DataError, match="ridge coefficients of shape"):
        load(directory)


def test_predict_horizon_beyond_the_trained_one(cli, saved, prices, tmp_path):
    data = tmp_path / "prices.csv"
    prices.frame.to_csv(data)
    code, _, err = cli("predict", saved["ridge"][1], "--data", data, "--horizon", "3")
    assert code == 2 and "horizon 3 is not available: the model was trained for 1..2 steps" in err


def test_loaded_weights_are_the_saved_ones(saved):
    model, directory = saved["gru"]
    loaded = load(directory)
    for key, value in model.network_.state_dict().items():
        assert torch.equal(value.cpu(), loaded.network_.state_dict()[key].cpu()), key
    assert np.isfinite(loaded.predict(model_prices := load_prices(make_prices(30)), 1)["forecast"]).all()
    assert len(model_prices) == 30


def test_fit_and_predict_help_explain_every_option(cli):
    code, out, _ = cli("fit", "--help")
    assert code == 0
    for option in ("--data", "--target", "--model", "--train-end", "--window", "--horizon", "--seed", "--save",
                   "--allow-gaps"):  # fmt: skip
        assert option in out
    code, out, _ = cli("predict", "--help")
    assert code == 0 and "MODEL_DIR" in out and "unpickled" in out
    for option in ("--data", "--horizon", "--out", "--allow-gaps"):
        assert option in out


def test_saved_scalers_are_restored_bit_for_bit():
    """A loaded model must be the saved computation: the scalers' moments come back exactly (a refit
    on two points gave means and scales off by one bit, and forecasts that differed in the last bit)."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from stockrnn.features import _scaler_from_state, _scaler_state

    rng = np.random.default_rng(0)
    x = rng.normal(rng.normal(0, 1, 8) * 1e-3, rng.uniform(1e-3, 1e-1, 8), (500, 8))
    for scaler in (StandardScaler().fit(x), MinMaxScaler().fit(x)):
        restored = _scaler_from_state(json.loads(json.dumps(_scaler_state(scaler))))
        np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))
        np.testing.assert_array_equal(restored.inverse_transform(x), scaler.inverse_transform(x))


def test_stockrnn_load_reads_a_global_model(tmp_path):
    """One `load` for every saved model: a panel's global model comes back as itself."""
    from stockrnn.global_models import GlobalRidge

    from conftest import make_prices

    panel = {name: load_prices(make_prices(300, seed=i)).slice() for i, name in enumerate(("A", "B", "C"))}
    panel = {name: stockrnn.data.Prices(p.frame, p.repairs, p.source, name) for name, p in panel.items()}
    model = GlobalRidge().fit_panel(panel, train_end=panel["A"].index[249])
    model.save(tmp_path / "g")
    loaded = load(tmp_path / "g")
    assert isinstance(loaded, GlobalRidge)
    start = panel["B"].index[260]
    pd.testing.assert_frame_equal(loaded.rolling(panel["B"], start), model.rolling(panel["B"], start), rtol=1e-9)


def test_a_model_name_outside_the_registry_is_a_config_error():
    with pytest.raises(stockrnn.ConfigError, match="unknown model 'arima' \\(choose from lstm, gru, persistence"):
        make_forecaster("arima")


def test_the_weights_are_as_readable_as_model_json(saved):
    # safetensors wrote its file 0600 beside a 0644 model.json: others sharing the folder could not predict.
    for _, directory in saved.values():
        weights = directory / "weights.safetensors"
        if weights.exists():
            assert weights.stat().st_mode & 0o777 == (directory / "model.json").stat().st_mode & 0o777
