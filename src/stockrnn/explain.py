"""What a saved LSTM or GRU did with one window: its gates at every step, and what its forecast rests on.

Gates come from `step_through`, the cell equations written out with torch's own parameter layout,
run in float64. It reproduces `nn.LSTM`/`nn.GRU` (tests compare hidden states and forecasts to
1e-6), so the gates shown are the ones the model used; torch's modules do not expose them.

Attributions are integrated gradients (Sundararajan et al. 2017) of the ensemble's forecast, in
model output units (for `relative` features the scaled log ratio of the target to the last
close; for `level` features the MinMax-scaled price), against the all-zeros window in scaled input
space: every input at its training mean for `relative` features (StandardScaler), at its
training minimum for `level` features (MinMaxScaler). They sum to the forecast's difference from
the baseline window's forecast, in those units (completeness; the trapezoid rule over
`IG_STEPS` points leaves a gap far below the forecast's own size, reported as `gap`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import Prices, as_prices
from .errors import ConfigError
from .forecaster import Forecaster, NetworkForecaster
from .models import RecurrentNet
from .windows import parse_day

IG_STEPS = 128  # trapezoid intervals of the path integral
GATES = {"lstm": ("input", "forget", "output", "cell"), "gru": ("update", "reset")}
RECENT_DAYS = 5  # the "last days" the reading talks about
BASELINES = {"relative": "every input at its training mean", "level": "every input at its training minimum"}


@dataclass
class Explanation:
    """One window explained. Layers and units are numbered from 1, ensemble members from 0."""

    model: str  # "lstm" or "gru"
    target: str
    date: pd.Timestamp  # the window's last day: the forecast is for the next trading day
    member: int  # the ensemble member whose gates are shown
    gates: pd.DataFrame  # date, layer, gate, unit, value (one row per step, layer, gate and unit)
    attributions: pd.DataFrame  # date, feature, input, attribution (model output units)
    forecast: float  # the ensemble's forecast of `target`, in price units
    baseline_forecast: float  # the same for the baseline (all-zeros) window
    output: float  # the ensemble's forecast in model output units
    baseline_output: float
    step: int = 1  # which forecast step (of the model's horizon) is explained
    baseline: str = "every input at its training mean"  # what the all-zeros scaled window means
    reading: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """Completeness check: sum of attributions minus (output - baseline_output), model units."""
        return float(self.attributions["attribution"].sum() - (self.output - self.baseline_output))

    def gate_means(self) -> pd.DataFrame:
        """Mean over units per day: index date, columns (layer, gate)."""
        return self.gates.groupby(["date", "layer", "gate"], sort=False)["value"].mean().unstack(["layer", "gate"])

    def attribution_matrix(self) -> pd.DataFrame:
        """Features x days."""
        return self.attributions.pivot(index="feature", columns="date", values="attribution").loc[
            list(dict.fromkeys(self.attributions["feature"]))
        ]


# -- the step-by-step pass ----------------------------------------------------------------------
def step_through(rnn: nn.LSTM | nn.GRU, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hidden states (batch, steps, units) and gates {name: (batch, steps, units)} of one
    single-layer batch-first module for input x (batch, steps, inputs), zero initial state.

    LSTM (rows of weight_ih_l0: i, f, g, o): c' = f * c + i * g, h' = o * tanh(c').
    GRU (rows: r, z, n): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h,
    so torch's update gate z is the weight of the OLD state."""
    w_ih, w_hh, b_ih, b_hh = (
        p.to(x.dtype) for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    )
    units, lstm = rnn.hidden_size, isinstance(rnn, nn.LSTM)
    from_x = x @ w_ih.T + b_ih  # (batch, steps, gates x units)
    h = x.new_zeros(x.shape[0], units)
    c = x.new_zeros(x.shape[0], units)
    hidden, gates = [], {name: [] for name in GATES["lstm" if lstm else "gru"]}
    for t in range(x.shape[1]):
        from_h = h @ w_hh.T + b_hh  # (batch, gates x units)
        if lstm:
            i, f, g, o = (from_x[:, t] + from_h).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip(gates, (i, f, o, c), strict=True):
                gates[name].append(value)
        else:
            xr, xz, xn = from_x[:, t].chunk(3, dim=1)
            hr, hz, hn = from_h.chunk(3, dim=1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            gates["update"].append(z)
            gates["reset"].append(r)
        hidden.append(h)
    return torch.stack(hidden, dim=1), {name: torch.stack(v, dim=1) for name, v in gates.items()}


def net_through(net: RecurrentNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[dict]]:
    """The network's forecast (batch, horizon), hidden states per layer and gates per layer, as
    in eval mode (dropout off)."""
    hidden, gates = [], []
    for rnn in net.recurrent:
        x, layer_gates = step_through(rnn, x)
        hidden.append(x)
        gates.append(layer_gates)
    head = net.head
    return x[:, -1] @ head.weight.to(x.dtype).T + head.bias.to(x.dtype), hidden, gates


# -- integrated gradients -----------------------------------------------------------------------
def integrated_gradients(
    net: nn.Module, x: torch.Tensor, baseline: torch.Tensor, step: int = 1, n: int = IG_STEPS
) -> torch.Tensor:
    """Attributions (window, inputs) of output `step` of `net` for one window x (window, inputs):
    (x - baseline) times the mean gradient along the straight path, by the trapezoid rule."""
    alphas = torch.linspace(0, 1, n + 1, dtype=x.dtype).view(-1, 1, 1)
    path = (baseline + alphas * (x - baseline)).requires_grad_(True)  # (n + 1, window, inputs)
    with torch.enable_grad():
        out = net(path)[:, step - 1]  # (n + 1,)
        (grads,) = torch.autograd.grad(out.sum(), path)
    weights = torch.full((n + 1, 1, 1), 1.0 / n, dtype=x.dtype)
    weights[0] = weights[-1] = 0.5 / n
    return (x - baseline) * (grads * weights).sum(dim=0)


# -- the API --------------------------------------------------------------------------------------
def explain(
    model: Forecaster, prices: Prices | pd.DataFrame, date: str | pd.Timestamp | None = None,
    member: int = 0, step: int = 1,
) -> Explanation:  # fmt: skip
    """Gates of ensemble `member` and attributions of the ensemble's forecast for the window that
    ends at `date` (the last row on or before it; default the last row of `prices`)."""
    if hasattr(model, "fit_panel"):  # a GlobalForecaster: its inputs are per-ticker standardised panel features
        raise ConfigError(
            f"the saved model is a global {model.name} (fit on a folder): explain takes a single-ticker lstm or gru "
            "model (fit on one file)"
        )
    if not isinstance(model, NetworkForecaster):
        raise ConfigError(f"a {model.name} model has no gates to explain: explain takes a saved lstm or gru model")
    model._check_fitted()
    prices = as_prices(prices)
    prices.column(model.config.target)
    model.check_inputs(prices)  # the file named, and the column it lacks (volume, say)
    frame, window = prices.frame, model.config.window
    origin = window_end(frame.index, date, prices.source)
    if origin < window - 1:
        raise ConfigError(
            f"{prices.source}: too few rows up to {frame.index[origin]:%Y-%m-%d} for one window: "
            f"{origin + 1} rows, the {model.name} model needs {window}"
        )
    members = model.network_.members
    if not 0 <= member < len(members):
        raise ConfigError(f"--member {member}: the model has {len(members)} ensemble member(s), 0..{len(members) - 1}")
    if not 1 <= step <= model.config.horizon:
        raise ConfigError(f"step {step}: the model forecasts steps 1..{model.config.horizon}")
    frame = frame.iloc[: origin + 1]  # inputs of a row use that row and earlier rows only
    x = torch.as_tensor(model.features_.inputs(frame)[-window:], dtype=torch.float64)  # (window, inputs)
    network = copy.deepcopy(model.network_).cpu().double().eval()
    baseline = torch.zeros_like(x)
    with torch.no_grad():
        outputs = network(torch.stack([x, baseline]))  # (2, horizon)
        _, _, gates = net_through(network.members[member], x[None])
    attributions = integrated_gradients(network, x, baseline, step)
    prices_out = model.features_.to_price(outputs.numpy(), frame, np.array([origin, origin]))[:, step - 1]
    dates = frame.index[-window:]
    explanation = Explanation(
        model=model.name,
        target=model.config.target,
        date=frame.index[-1],
        member=member,
        gates=gates_frame(gates, dates),
        attributions=attributions_frame(attributions.numpy(), x.numpy(), dates, model.features_.names_),
        forecast=float(prices_out[0]),
        baseline_forecast=float(prices_out[1]),
        output=float(outputs[0, step - 1]),
        baseline_output=float(outputs[1, step - 1]),
        step=step,
        baseline=BASELINES[model.features_.kind],
    )
    explanation.reading = reading(explanation)
    return explanation


def window_end(index: pd.DatetimeIndex, date: str | pd.Timestamp | None, source: str) -> int:
    """Position of the last row on or before `date` (default: the last row); a ConfigError
    naming the data's span when the date lies outside it."""
    if date is None:
        return len(index) - 1
    stamp = parse_day(date, "--date")  # YYYY-MM-DD only, as every other date option
    if stamp < index[0].normalize() or stamp > index[-1].normalize():
        first, last = index[0].strftime("%Y-%m-%d"), index[-1].strftime("%Y-%m-%d")
        raise ConfigError(f"{source}: --date {stamp:%Y-%m-%d} is outside the data ({first} .. {last})")
    return int(index.searchsorted(stamp, side="right")) - 1


def gates_frame(gates: list[dict[str, torch.Tensor]], dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Long table date, layer, gate, unit, value from per-layer {gate: (1, steps, units)}."""
    parts = []
    for layer, layer_gates in enumerate(gates, start=1):
        for name, values in layer_gates.items():
            v = values[0].numpy()  # (steps, units)
            parts.append(
                pd.DataFrame(
                    {
                        "date": np.repeat(dates, v.shape[1]),
                        "layer": layer,
                        "gate": name,
                        "unit": np.tile(np.arange(1, v.shape[1] + 1), v.shape[0]),
                        "value": v.ravel(),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def attributions_frame(values: np.ndarray, inputs: np.ndarray, dates: pd.DatetimeIndex, names: list[str]):
    """Long table date, feature, input (the scaled input), attribution (model output units)."""
    steps, n = values.shape
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n),
            "feature": np.tile(names, steps),
            "input": inputs.ravel(),
            "attribution": values.ravel(),
        }
    )


# -- the plain-language reading --------------------------------------------------------------------
def reading(e: Explanation) -> list[str]:
    """A few sentences from the numbers: what the gates did over the last days, and which
    inputs and days moved the forecast away from the baseline window's forecast."""
    day = "the trading day" if e.step == 1 else f"trading day {e.step}"
    lines = [
        f"{e.model.upper()} forecast of {e.target} for {day} after {e.date:%Y-%m-%d}: {e.forecast:.4g} "
        f"(the baseline window, {e.baseline}, gives {e.baseline_forecast:.4g})."
    ]
    means = e.gate_means()
    recent = means.iloc[-RECENT_DAYS:]
    days = len(recent)
    for layer in sorted({layer for layer, _ in means.columns}):
        where = f" in layer {layer}" if means.columns.get_level_values(0).nunique() > 1 else ""
        lines += _gate_sentences(e.model, recent, layer, days, where)
    lines += _attribution_sentences(e)
    return lines


def _gate_sentences(cell: str, recent: pd.DataFrame, layer: int, days: int, where: str) -> list[str]:
    span = f"over the last {days} days" if days > 1 else "on the last day"
    if cell == "lstm":
        forget, write = float(recent[(layer, "forget")].mean()), float(recent[(layer, "input")].mean())
        if forget >= 0.7:
            sense = "the network carries what it saw earlier in the window forward"
        elif forget <= 0.3:
            sense = "the network drops its memory almost every day: the forecast rests on the latest days"
        else:
            sense = "the network keeps part of its memory and lets part of it fade"
        writes = "lets in much" if write >= 0.6 else "lets in little" if write <= 0.4 else "lets in about half"
        return [
            f"The forget gate{where} stays near {forget:.2f} {span}: {sense}.",
            f"The input gate{where} averages {write:.2f} {span}: each day {writes} of what is new.",
        ]
    update, reset = float(recent[(layer, "update")].mean()), float(recent[(layer, "reset")].mean())
    if update >= 0.7:
        sense = "each day the network mostly keeps its old state (in torch's GRU the update gate weights the old state)"
    elif update <= 0.3:
        sense = "each day the network mostly replaces its state with what the new day brings"
    else:
        sense = "each day the network blends its old state with the new day"
    looks = "mostly ignores" if reset <= 0.3 else "mostly uses" if reset >= 0.7 else "partly uses"
    return [
        f"The update gate{where} stays near {update:.2f} {span}: {sense}.",
        f"The reset gate{where} averages {reset:.2f}: the candidate state {looks} the old state.",
    ]


def _attribution_sentences(e: Explanation) -> list[str]:
    table = e.attributions
    difference = e.output - e.baseline_output
    by_feature = table.groupby("feature", sort=False)["attribution"].sum()
    lead = by_feature.abs().idxmax()
    top = table.loc[table["attribution"].abs().idxmax()]
    total = float(table["attribution"].abs().sum())
    dates = sorted(table["date"].unique())
    days = RECENT_DAYS if len(dates) > RECENT_DAYS else 1  # "the last 5 of 5 days" would say nothing
    recent = table["date"] >= dates[-days]
    share = float(table.loc[recent, "attribution"].abs().sum()) / total if total > 0 else 0.0
    span = f"The last {days} days carry" if days > 1 else "The last day carries"
    return [
        f"Against the baseline window the forecast is {'higher' if difference >= 0 else 'lower'} by "
        f"{abs(difference):.3g} model units; {lead} moves it most, {_signed(by_feature[lead])} summed over the window.",
        f"The largest single input-day is {top['feature']} on {top['date']:%Y-%m-%d}, which pushes the forecast "
        f"{'up' if top['attribution'] > 0 else 'down'} ({_signed(top['attribution'])}).",
        f"{span} {share:.0%} of all attribution (by absolute size), in a window of {len(dates)} days.",
    ]


def _signed(value: float) -> str:
    return f"{value:+.3g}"
