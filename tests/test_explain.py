"""`stockrnn explain`: the step-by-step pass reproduces torch, attributions are complete, the files and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stockrnn import ConfigError, make_forecaster, model_config
from stockrnn.explain import GATES, explain, integrated_gradients, net_through, step_through
from stockrnn.files import OUTPUT_MARK
from stockrnn.models import RecurrentNet

from conftest import TINY, make_prices

PRICES = make_prices(120, seed=3)


def fitted(cell: str, **overrides):
    settings = {**TINY, "ensemble": 2, **overrides}
    return make_forecaster(cell, model_config(cell, **settings)).fit(PRICES)


@pytest.fixture(scope="module")
def models() -> dict:
    return {cell: fitted(cell) for cell in ("lstm", "gru")}


def random_net(cell: str, layers: int) -> RecurrentNet:
    torch.manual_seed(1)
    net = RecurrentNet(cell, 3, 5, layers, dropout=0.3).double().eval()
    with torch.no_grad():
        for rnn in net.recurrent:  # non-zero biases, so every term of the cell equations matters
            rnn.bias_ih_l0.normal_(0, 0.5)
            rnn.bias_hh_l0.normal_(0, 0.5)
        net.head.bias.fill_(0.1)
    return net


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_through_reproduces_torch(cell: str, layers: int) -> None:
    net = random_net(cell, layers)
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    forecast, hidden, gates = net_through(net, x)
    with torch.no_grad():
        expected = net(x)  # eval mode, no autograd: torch's own nn.LSTM / nn.GRU modules
        layer_input = x
        for rnn, h, layer_gates in zip(net.recurrent, hidden, gates, strict=True):
            out, state = rnn(layer_input)
            torch.testing.assert_close(h, out, rtol=0, atol=1e-6)  # every step, not only the last
            if cell == "lstm":  # the `cell` entry is torch's own cell state
                torch.testing.assert_close(layer_gates["cell"][:, -1], state[1][0], rtol=0, atol=1e-6)
            layer_input = out
    torch.testing.assert_close(forecast, expected, rtol=0, atol=1e-6)
    assert [set(g) for g in gates] == [set(GATES[cell])] * layers
    for layer in gates:
        for name, value in layer.items():
            assert value.shape == (2, 7, 5)
            if name != "cell":
                assert value.min() > 0 and value.max() < 1


def test_step_through_float32_within_1e6() -> None:
    net = random_net("lstm", 2).float()
    x = torch.randn(1, 10, 3)
    with torch.no_grad():
        torch.testing.assert_close(net_through(net, x)[0], net(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(step_through(net.recurrent[0], x)[0], net.recurrent[0](x)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_attributions_sum_to_the_forecast_difference(models: dict, cell: str) -> None:
    e = explain(models[cell], PRICES)
    difference = e.output - e.baseline_output
    assert abs(difference) > 1e-3  # a real difference to account for
    assert e.attributions["attribution"].sum() == pytest.approx(difference, rel=0.01, abs=1e-5)
    assert abs(e.gap) < 1e-3 * abs(difference)  # the trapezoid rule with 128 intervals: far inside 1%
    # the forecast is the model's own: what `rolling` gives for the next day
    day = PRICES.index[-1] + pd.offsets.BDay(1)
    table = models[cell].rolling(pd.concat([PRICES, make_prices(1, start=str(day.date()))]), day)
    assert e.forecast == pytest.approx(float(table["step_1"].iloc[0]), rel=1e-6)


def test_ensemble_attributions_are_the_mean_of_the_members(models: dict) -> None:
    model = models["lstm"]
    network = model.network_.double()
    try:
        x = torch.randn(TINY["window"], model.features_.n_inputs, dtype=torch.float64)
        zero = torch.zeros_like(x)
        whole = integrated_gradients(network, x, zero)
        members = torch.stack([integrated_gradients(m, x, zero) for m in network.members]).mean(dim=0)
    finally:
        model.network_.float()
    torch.testing.assert_close(whole, members, rtol=0, atol=1e-9)


def test_the_window_ends_on_the_last_row_on_or_before_the_date(models: dict) -> None:
    saturday = PRICES.index[60] + pd.Timedelta(days=(5 - PRICES.index[60].weekday()) % 7)
    e = explain(models["gru"], PRICES, saturday)
    assert e.date == PRICES.index[PRICES.index <= saturday][-1]
    assert list(e.gates["date"].unique()) == list(PRICES.index[PRICES.index <= saturday][-TINY["window"] :])
    assert e.attributions.columns.tolist() == ["date", "feature", "input", "attribution"]
    assert e.attributions["feature"].unique().tolist() == models["gru"].features_.names_


def set_weights(model, **biases: float) -> None:
    """One unit path: only input 0 (close_return) reaches the state; gate biases as given."""
    net = model.network_.members[0]
    rnn, units = net.recurrent[0], net.recurrent[0].hidden_size
    order = ("input", "forget", "candidate", "output") if model.name == "lstm" else ("reset", "update", "candidate")
    with torch.no_grad():
        for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0):
            p.zero_()
        for k, name in enumerate(order):
            rnn.bias_ih_l0[k * units : (k + 1) * units] = biases.get(name, 0.0)
        rnn.weight_ih_l0[order.index("candidate") * units :, 0] = 1.0
        net.head.weight.fill_(1.0)
        net.head.bias.zero_()


def test_reading_of_a_constructed_lstm() -> None:
    model = fitted("lstm", ensemble=1)
    set_weights(model, forget=6.0, input=0.0)
    lines = explain(model, PRICES).reading
    text = " ".join(lines)
    assert "forget gate stays near 1.00 over the last 5 days" in text
    assert "carries what it saw earlier in the window forward" in text
    assert "input gate averages 0.50" in text
    assert "close_return moves it most" in text
    assert "The last day carries" in text and "in a window of 5 days" in text  # window 5: "last 5 days" says nothing
    set_weights(model, forget=-6.0)
    assert "drops its memory" in " ".join(explain(model, PRICES).reading)


def test_reading_of_a_constructed_gru() -> None:
    model = fitted("gru", ensemble=1)
    set_weights(model, update=6.0, reset=-6.0)
    text = " ".join(explain(model, PRICES).reading)
    assert "update gate stays near 1.00" in text and "mostly keeps its old state" in text
    assert "reset gate averages 0.00" in text and "mostly ignores the old state" in text
    set_weights(model, update=-6.0)
    text = " ".join(explain(model, PRICES).reading)
    assert "mostly replaces its state" in text and "close_return moves it most" in text


def test_reading_names_the_step_and_the_baseline() -> None:
    model = fitted("gru", ensemble=1, features="level", horizon=2, window=8)
    e = explain(model, PRICES, step=2)
    assert e.reading[0].startswith(f"GRU forecast of high for trading day 2 after {PRICES.index[-1]:%Y-%m-%d}")
    assert "every input at its training minimum" in e.reading[0]
    assert "The last 5 days carry" in e.reading[-1] and "in a window of 8 days" in e.reading[-1]
    assert abs(e.gap) < 1e-3 * abs(e.output - e.baseline_output)


def test_api_refuses_a_baseline_model() -> None:
    with pytest.raises(ConfigError, match="persistence model has no gates"):
        explain(make_forecaster("persistence").fit(PRICES), PRICES)


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory, models: dict) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("explain")
    data = root / "TEST.csv"
    PRICES.round(4).to_csv(data)
    dirs = {cell: model.save(root / cell) for cell, model in models.items()}
    dirs["ridge"] = make_forecaster("ridge", model_config("ridge", window=5)).fit(PRICES).save(root / "ridge")
    from stockrnn.global_models import global_config, make_global
    from stockrnn.panel import load_panel

    panel = load_panel({"A": PRICES, "B": make_prices(300, seed=5)})
    dirs["global"] = make_global("ridge", global_config("ridge", window=5)).fit_panel(panel).save(root / "global")
    return data, dirs


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cli_writes_the_files(cli, saved, tmp_path: Path, cell: str) -> None:
    data, dirs = saved
    out = tmp_path / "out"
    code, stdout, stderr = cli("explain", dirs[cell], "--data", data, "--date", "2020-04-15", "--member", "1",
                               "--out", out)  # fmt: skip
    assert code == 0, stderr
    assert "gate" in stdout and "moves it most" in stdout
    names = {"explain.png", "gates.csv", "attributions.csv", "explain_section.html", "report.html", OUTPUT_MARK}
    assert {p.name for p in out.iterdir()} == names
    gates = pd.read_csv(out / "gates.csv", parse_dates=["date"])
    assert gates.columns.tolist() == ["date", "layer", "gate", "unit", "value"]
    assert gates["gate"].unique().tolist() == list(GATES[cell])
    assert len(gates) == TINY["window"] * TINY["units"] * len(GATES[cell])
    assert gates["date"].max() == pd.Timestamp("2020-04-15")
    assert sorted(gates["unit"].unique()) == list(range(1, TINY["units"] + 1))
    attributions = pd.read_csv(out / "attributions.csv")
    assert attributions.columns.tolist() == ["date", "feature", "input", "attribution"]
    assert np.isfinite(attributions["attribution"]).all()
    assert (out / "explain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    section = (out / "explain_section.html").read_text()
    assert section.startswith("<h3>Inside the") and "data:image/png;base64," in section
    assert section in (out / "report.html").read_text()  # the report's explain section is this fragment


@pytest.mark.parametrize(
    "args, message",
    [
        (("ridge",), "a ridge model has no gates to explain"),
        (("lstm", "--date", "2031-01-01"), "--date 2031-01-01 is outside the data"),
        (("lstm", "--date", "2020-01-02"), "too few rows up to 2020-01-02 for one window"),
        (("lstm", "--member", "5"), "--member 5: the model has 2 ensemble member(s)"),
        (("lstm", "--date", "soon"), "--date 'soon' is not a date"),
        (("lstm", "--date", "04/03/2020"), "--date '04/03/2020' is ambiguous"),  # was read as 3 April
        (("lstm", "--date", "2020"), "--date '2020' is not a date: use YYYY-MM-DD"),  # was 2019-12-31
        (("global",), "the saved model is a global ridge (fit on a folder): explain takes a single-ticker"),
    ],
)
def test_cli_errors_are_one_line(cli, saved, tmp_path: Path, args: tuple, message: str) -> None:
    data, dirs = saved
    out = tmp_path / "out"
    code, stdout, stderr = cli("explain", dirs[args[0]], "--data", data, *args[1:], "--out", out)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr
    assert not out.exists()


def test_data_lacking_an_input_column_is_named_with_its_file(cli, saved, tmp_path: Path) -> None:
    _, dirs = saved
    data = tmp_path / "NOVOL.csv"
    PRICES.drop(columns="Volume").round(4).to_csv(data)
    code, _, stderr = cli("explain", dirs["lstm"], "--data", data, "--out", tmp_path / "out")
    assert code == 2 and stderr.count("\n") == 1
    assert f"{data}: the lstm model was trained on inputs the data cannot give: volume" in stderr
    assert not (tmp_path / "out").exists()


def test_another_tickers_file_is_explained_with_a_warning(cli, tmp_path: Path) -> None:
    # predict warned on another ticker's data; explain read it with no word.
    from stockrnn import load_prices

    own, other = tmp_path / "AAA.csv", tmp_path / "BBB.csv"
    PRICES.round(4).to_csv(own)
    make_prices(120, seed=8).round(4).to_csv(other)
    model_dir = make_forecaster("gru", model_config("gru", **TINY)).fit(load_prices(own)).save(tmp_path / "gru")
    code, _, stderr = cli("explain", model_dir, "--data", own, "--out", tmp_path / "a")
    assert code == 0 and "warning" not in stderr
    code, _, stderr = cli("explain", model_dir, "--data", other, "--out", tmp_path / "b")
    assert code == 0 and (tmp_path / "b" / "report.html").exists()
    assert "stockrnn: warning: the gru model was trained on AAA" in stderr and "the data is BBB" in stderr
    # data ending before the training end is a past window: explained, not refused
    short = tmp_path / "AAA-short.csv"
    PRICES.iloc[:90].round(4).to_csv(short)
    assert cli("explain", model_dir, "--data", short, "--out", tmp_path / "c")[0] == 0
