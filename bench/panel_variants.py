"""The variants that bench/panel.py tries on validation (never on the test), apart from its runner.

`seedN` the global networks with seed N; `patienceN` early stopping after N epochs without a better
validation loss (default 4); `recent` the training windows of the last 3 training years drawn twice
as often (each appears twice in the sampling pool); `ensN` an ensemble of N networks (seeds
0..N-1, forecasts averaged); `market` the panel's causal market inputs appended to every ticker's
(on each date, from every ticker's row that day: mean return, cross-sectional dispersion of
returns, mean day range and its 5-day mean), for every global model, the ridge included;
`market+ensN` both; `mtl` multi-task heads (High, Low and Close of the next day at once, the loss
averaged over the three; the forecast reads the target's head); `valall` early stopping on every
validation window instead of a fixed sample of 20,000; `ema` the networks' weights averaged over
the steps (an exponential moving average, decay 0.99: about the last 100 batches), early stopping
and the forecasts on the averaged weights; `weighted` each training window's squared error
weighted by the square of the trailing volatility that scales its target (per ticker, mean 1), so
that the loss is the squared error of the log ratio, as a price RMSE weighs the days; `weighted+ema`
both. Only the networks change in `ema` and `weighted` (the pooled ridge is the default one).
`volunits` the price inputs (return, gap, ranges, range means) of each row divided by that row's
trailing volatility (the scale of the target), with the log of that volatility as one more input,
for every global model: a crash then moves one input, not all of them out of the training range;
`volunits+raw` those inputs besides the usual ones (14 inputs, not 8); `volunits+ema` volatility
units with the networks' weights averaged as in `ema`. `longvol` two more inputs for every global
model: log of the 60- and 250-day mean day range over the 20-day one (long-memory volatility). `localheads` the global
networks with a per-ticker ridge head on their last hidden state (bench/panel_localheads.py). `refit`
the global models refitted on every training window, the validation tail included, once it has
chosen their settings (bench/panel_refit.py).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from panel_localheads import localheads_model
from panel_refit import refit_model
from stockrnn.global_models import GlobalNetwork, global_config, make_global
from stockrnn.panel_features import origin_scale
from stockrnn.windows import train_origins

RECENT_YEARS = 3
EMA_DECAY = 0.99


class RecentNetwork(GlobalNetwork):
    """The global network with the windows of the last RECENT_YEARS training years twice in the
    sampling pool (so drawn twice as often); validation windows unchanged."""

    def windows(self, panel, train_start=None, train_end=None):
        w = super().windows(panel, train_start, train_end)
        c = self.config
        dates = np.concatenate(
            [f.index[train_origins(0, len(f), c.window, c.horizon)].to_numpy() for f in w.frames.values()]
        )
        end = max(f.index[-1] for f in w.frames.values())
        recent = w.fit[dates[w.fit] > np.datetime64(end - pd.DateOffset(years=RECENT_YEARS))]
        return replace(w, fit=np.sort(np.concatenate([w.fit, recent])))


def market_frame(panel) -> pd.DataFrame:
    """Causal market inputs by date: on day d, from every ticker's row on d (returns clipped to
    +-0.2 so one spliced series cannot move the market): the mean return, its cross-sectional
    dispersion and the mean day range (log high/low), and that range's 5-day trailing mean."""
    parts = []
    for prices in panel.values():
        f = prices.frame if hasattr(prices, "frame") else prices
        close = f["close"].to_numpy(dtype=float)
        ret = np.clip(np.diff(np.log(close), prepend=np.nan), -0.2, 0.2)
        rng = np.clip(np.log(f["high"].to_numpy(dtype=float) / f["low"].to_numpy(dtype=float)), 0, 0.2)
        parts.append(pd.DataFrame({"ret": ret, "rng": rng}, index=f.index))
    long = pd.concat(parts)
    by_day = long.groupby(level=0)
    market = pd.DataFrame(
        {
            "market_return": by_day["ret"].mean(),
            "market_dispersion": by_day["ret"].std(),
            "market_range": by_day["rng"].mean(),
        }
    ).sort_index()
    market["market_range_5"] = market["market_range"].rolling(5, min_periods=1).mean()
    return market.fillna(0.0)


class MarketFeatures:
    """PanelFeatures with the market's inputs on each row's date appended (rows <= i only)."""

    def __new__(cls, target: str, market: pd.DataFrame):
        from stockrnn.panel_features import PanelFeatures

        class _Market(PanelFeatures):
            def raw(self, frame):
                values, names = super().raw(frame)
                extra = market.reindex(frame.index, method="ffill").fillna(0.0)
                return np.column_stack([values, extra.to_numpy()]), [*names, *market.columns]

        return _Market(target)


def with_features(name: str, config, features):
    """A global model whose panel fit builds its inputs with `features(panel, target)` in place of
    PanelFeatures (the fitted model keeps that instance, so its forecasts use them too)."""
    import stockrnn.panel_forecaster as pf

    model = make_global(name, config)
    fit_panel = model.fit_panel

    def fit_with_features(panel, *args, **kwargs):
        original = pf.PanelFeatures
        pf.PanelFeatures = lambda target: features(panel, target)
        try:
            return fit_panel(panel, *args, **kwargs)
        finally:
            pf.PanelFeatures = original

    model.fit_panel = fit_with_features
    return model


def market_model(name: str, config):
    """A global model whose inputs include the panel's market inputs (variant `market`)."""
    return with_features(name, config, lambda panel, target: MarketFeatures(target, market_frame(panel)))


HEADS = ("high", "low", "close")  # variant `mtl`: the target's head first, then the other two


def multitask_model(name: str, config):
    """Variant `mtl`: a global network with one output per target in HEADS (the loss averages
    them); the forecast reads the first head only. Ridge is unchanged (its heads are independent)."""
    import stockrnn.panel_forecaster as pf
    from stockrnn.models import Ensemble, RecurrentNet
    from stockrnn.panel_features import PanelFeatures

    if name == "ridge":
        return make_global(name, config)
    heads = [config.target, *[h for h in HEADS if h != config.target]]

    class MultiFeatures(PanelFeatures):
        def targets(self, frame, origins, horizon):
            parts = []
            for head in heads:
                self.target = head
                parts.append(super().targets(frame, origins, horizon))
            self.target = heads[0]
            return np.concatenate(parts, axis=1)

    class MultiNetwork(GlobalNetwork):
        def _build(self):
            c = self.config
            return Ensemble(
                [RecurrentNet(self.cell, len(self.names_), c.units, c.layers, c.dropout, c.horizon * len(heads))
                 for _ in range(c.ensemble)]
            )  # fmt: skip

        def _predict_windows(self, x):
            return super()._predict_windows(x)[:, : self.config.horizon]

        def windows(self, panel, train_start=None, train_end=None):
            original = pf.PanelFeatures
            pf.PanelFeatures = MultiFeatures
            try:
                return super().windows(panel, train_start, train_end)
            finally:
                pf.PanelFeatures = original

    return MultiNetwork(name, config)


class VolUnitsFeatures:
    """PanelFeatures whose price inputs (return, gap, ranges, range means) are divided by the
    row's own trailing volatility (origin_scale, rows <= i), with log(volatility) as one more
    input: inputs in units of the current regime, which stay in the training range in a crash.
    With `keep`, the usual inputs stay and the volatility-unit ones are appended."""

    def __new__(cls, target: str, keep: bool = False):
        from stockrnn.panel_features import PanelFeatures

        class _VolUnits(PanelFeatures):
            def raw(self, frame):
                values, names = super().raw(frame)
                scale = origin_scale(frame)
                price = [i for i, n in enumerate(names) if n != "volume_relative"]
                units = values[:, price] / scale[:, None]
                unit_names = [f"{names[i]}_vol" for i in price]
                if keep:
                    return np.column_stack([values, units, np.log(scale)]), [*names, *unit_names, "log_volatility"]
                values = values.copy()
                values[:, price] = units
                return np.column_stack([values, np.log(scale)]), [*names, "log_volatility"]

        return _VolUnits(target)


def volunits_model(name: str, config, keep: bool = False):
    """A global model whose inputs are in volatility units (variant `volunits`), or have those
    besides the usual ones (`volunits+raw`)."""
    return with_features(name, config, lambda panel, target: VolUnitsFeatures(target, keep))


LONG_DAYS = (60, 250)  # variant `longvol`: the longer trailing means of the day's range


class LongVolFeatures:
    """PanelFeatures with log(mean range over LONG_DAYS / mean range over 20 days) appended (rows
    <= i only): how the current volatility stands against the quarter's and the year's, the
    long-memory part of a HAR volatility model, which a 20-day window with 5- and 20-day means
    does not see."""

    def __new__(cls, target: str):
        from stockrnn.panel_features import PanelFeatures

        class _LongVol(PanelFeatures):
            def raw(self, frame):
                values, names = super().raw(frame)
                day_range = pd.Series(np.log(frame["high"].to_numpy(dtype=float) / frame["low"].to_numpy(dtype=float)))
                day_range = day_range.clip(lower=0.0)
                short = np.maximum(day_range.rolling(20, min_periods=1).mean().to_numpy(), 1e-4)
                extra = [np.log(np.maximum(day_range.rolling(d, min_periods=1).mean().to_numpy(), 1e-4) / short)
                         for d in LONG_DAYS]  # fmt: skip
                return np.column_stack([values, *extra]), [*names, *(f"range_mean_{d}_vs_20" for d in LONG_DAYS)]

        return _LongVol(target)


def variant_setup(variant: str, target: str) -> tuple[dict, object]:
    """(configs, global_factory) of a variant."""
    if variant == "default":
        return {}, None
    if variant.startswith("seed"):
        seed = int(variant[4:])
        return {n: global_config(n, target=target, seed=seed) for n in ("lstm", "gru")}, None
    if variant.startswith("patience"):
        patience = int(variant[8:])
        return {n: global_config(n, target=target, patience=patience) for n in ("lstm", "gru")}, None
    if variant == "mtl":
        return {}, multitask_model
    if variant == "valall":  # early stopping on every validation window, not a 20,000 sample
        import stockrnn.panel_training as pt

        pt.VAL_WINDOWS = 10**9
        return {}, None
    if variant == "market":
        return {}, market_model
    if variant == "volunits":
        return {}, volunits_model
    if variant == "volunits+raw":
        return {}, lambda name, config: volunits_model(name, config, keep=True)
    if variant == "volunits+ema":  # the two candidates of the third and fourth sessions together
        train_networks_with_variant_loop(ema=True)
        return {}, volunits_model
    if variant == "localheads":
        return {}, localheads_model
    if variant == "refit":
        return {}, refit_model
    if variant == "longvol":
        return {}, lambda name, config: with_features(name, config, lambda panel, t: LongVolFeatures(t))
    if variant.startswith("market+ens"):  # market inputs and an ensemble of N
        n = int(variant.removeprefix("market+ens"))
        return {k: global_config(k, target=target, ensemble=n) for k in ("lstm", "gru")}, market_model
    if variant.startswith("ens"):
        n = int(variant[3:])
        return {k: global_config(k, target=target, ensemble=n) for k in ("lstm", "gru")}, None
    if variant in ("ema", "weighted", "weighted+ema"):
        return {}, averaged_or_weighted(ema="ema" in variant, weighted="weighted" in variant)
    if variant == "recent":
        return {}, lambda name, config: RecentNetwork(name, config) if name != "ridge" else make_global(name, config)
    raise SystemExit(f"unknown variant '{variant}'")


class WeightedNetwork(GlobalNetwork):
    """Variant `weighted`: the windows carry loss weights (`data.weights`): the square of the
    trailing volatility at each origin (the scale of the target), divided by its mean over the
    ticker's windows, so that every ticker still counts alike."""

    def windows(self, panel, train_start=None, train_end=None):
        w = super().windows(panel, train_start, train_end)
        c = self.config
        weights = []
        for frame in w.frames.values():
            scale = origin_scale(frame)[train_origins(0, len(frame), c.window, c.horizon)] ** 2
            weights.append(scale / scale.mean())
        w.data.weights = torch.as_tensor(np.concatenate(weights), dtype=torch.float32)
        return w


def train_networks_with_variant_loop(ema: bool) -> None:
    """Global networks of this process train with `train_variant` (weights of the data, if any;
    with `ema`, the averaged weights) in place of the library's loop."""
    import stockrnn.panel_training as pt

    pt.train_windows = lambda *args, **kwargs: train_variant(*args, ema=ema, **kwargs)


def averaged_or_weighted(ema: bool, weighted: bool):
    """A factory for variants `ema`, `weighted` and both: the global networks train with
    `train_variant` in place of the library's loop; the pooled ridge is unchanged."""
    train_networks_with_variant_loop(ema)

    def factory(name, config):
        if name == "ridge":
            return make_global(name, config)
        return (WeightedNetwork if weighted else GlobalNetwork)(name, config)

    return factory


def _loss(net, data, items) -> torch.Tensor:
    """Mean squared error of the windows `items`, weighted where the data carries weights."""
    x, y = data.batch(items)
    error = ((net(x) - y) ** 2).mean(dim=1)
    weights = getattr(data, "weights", None)
    return error.mean() if weights is None else (weights[items] * error).mean()


@torch.no_grad()
def _val_loss(net, data, items, chunk: int = 4096) -> float:
    net.eval()
    return sum(float(_loss(net, data, items[i : i + chunk])) * len(items[i : i + chunk])
               for i in range(0, len(items), chunk)) / len(items)  # fmt: skip


def train_variant(net, data, fit, val, config, device, generator, per_epoch=None, on_epoch=None, label="network",
                  member=0, stop=None, ema=False):  # fmt: skip
    """stockrnn.training.train_windows (sampled epochs, the learning rate halved on a plateau,
    early stopping, the best epoch's weights kept) with the window weights of the data, if any,
    and, with `ema`, validation and the kept weights from the moving average of the weights."""
    from stockrnn.training import make_optimizer

    optimizer = make_optimizer(net.parameters(), config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, config.patience // 3))
    swa = torch.optim.swa_utils
    averaged = swa.AveragedModel(net, multi_avg_fn=swa.get_ema_multi_avg_fn(EMA_DECAY)) if ema else None
    judged = averaged.module if ema else net
    per_epoch = min(per_epoch or len(fit), len(fit))
    losses, best, best_state, stale = [], math.inf, None, 0
    for _ in range(config.epochs):
        net.train()
        order = fit[torch.randperm(len(fit), generator=generator)[:per_epoch]]
        total = 0.0
        for start in range(0, per_epoch, config.batch_size):
            items = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(net, data, items)
            loss.backward()
            if config.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimizer.step()
            if ema:
                averaged.update_parameters(net)
            total += loss.item() * len(items)
        losses.append(total / per_epoch)
        val_loss = _val_loss(judged, data, val)
        scheduler.step(val_loss)
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
        else:
            stale += 1
        if stale >= config.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return losses
