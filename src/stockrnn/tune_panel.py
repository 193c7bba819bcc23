"""`stockrnn tune` on a folder of tickers: the trials fit the GLOBAL network (one LSTM or GRU for
every ticker, global_models.GlobalNetwork) and are scored on the panel's validation tail.

    dates of the panel:  [ fit ................. | validation (--val-days) | test (never read) ]
                                                 ^ val_start                ^ test_start

The spans are dates over the union of the panel's dates (as a panel evaluate's test start and a
global model's own validation tail, panel_features.validation_cutoff), so every ticker is cut on
the same day. A trial fits the network on every ticker's rows before `val_start` (its early
stopping uses the model's own tail inside them) and forecasts each trained ticker's validation
days; the objective is the median over tickers of RMSE / persistence RMSE (1 - the median skill,
the panel's headline), so no ticker counts more for its price level.
"""

from __future__ import annotations

import hashlib
from functools import reduce
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from .config import ModelConfig
from .errors import ConfigError, TrainingError
from .forecaster import fingerprint, make_forecaster
from .interrupt import StopToken
from .metrics import rmse
from .panel_features import validation_cutoff
from .panel_training import EPOCH_WINDOWS
from .training import EpochCallback, EpochInfo
from .windows import parse_day

# The global network's search space: as a single file's, with larger batches (GLOBAL_DEFAULTS
# trains on batches of 512: a panel has a million windows, a file a few thousand).
GLOBAL_SPACE = {
    "window": CategoricalDistribution([5, 10, 20, 40, 60]),
    "units": CategoricalDistribution([16, 32, 64, 128]),
    "layers": IntDistribution(1, 3),
    "dropout": FloatDistribution(0.0, 0.5),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "batch_size": CategoricalDistribution([128, 256, 512, 1024]),
}


def panel_trial_spec(source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space,
                     widest: int, val_cap: int, epoch_windows: int | None = None) -> dict:  # fmt: skip
    """`tune.trial_spec` for a folder: the spans as dates over the union of the panel's dates."""
    from .panel import load_panel
    from .panel_eval import default_test_start
    from .panel_forecaster import check_global_target

    check_global_target(model, target)  # before the study folder is made
    panel = load_panel(source, allow_gaps=allow_gaps)
    test = default_test_start(panel) if test_start is None else parse_day(test_start, "--test-start")
    loaded, panel = panel, panel.judged(test)  # validation on the rows before the test, as every trial's
    if not panel:
        raise panel.nothing_left(f"no usable ticker before the test start {test:%Y-%m-%d}", loaded)
    for prices in panel.values():
        prices.column(target)
    dates = reduce(pd.Index.union, (p.index for p in panel.values()))
    before = dates[dates < test]
    n_val = val_days if val_days is not None else min(val_cap, len(before) // 5)
    fit_dates = len(before) - n_val
    need = widest + 20  # the widest window, and enough windows for the network's early-stopping tail
    if n_val < 1 or fit_dates < need:
        raise ConfigError(
            f"{panel.source}: {len(before)} dates before the test start, {n_val} of them for validation, leave "
            f"{max(fit_dates, 0)} to fit on; the widest window ({widest}) needs {need} (lower --val-days)"
        )
    val_start = validation_cutoff([before], n_val / len(before))
    after = dates[dates >= test]
    if test_start is not None and not len(after):
        raise ConfigError(
            f"{panel.source}: test start {test:%Y-%m-%d} is outside the data "
            f"({dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d})"
        )
    rows = {t: p.frame.loc[: before[-1]] for t, p in panel.items()}  # the rows a trial reads
    if not any(r[target].iloc[max(int(r.index.searchsorted(val_start)) - 1, 0) :].nunique() > 1 for r in rows.values()):
        # a trial would find this after its training, with the study folder made
        raise ConfigError(
            f"{panel.source}: no ticker's {target} moves over the validation days ({val_start:%Y-%m-%d} .. "
            f"{before[-1]:%Y-%m-%d}): nothing to tune on"
        )
    prints = "".join(f"{t}:{fingerprint(r)};" for t, r in rows.items())
    return {
        "data": str(Path(str(source)).resolve()),
        "fingerprint": hashlib.sha256(prints.encode()).hexdigest()[:16],
        "allow_gaps": allow_gaps,
        "panel": True,
        "model": model,
        "target": target,
        "train_end": before[-1].strftime("%Y-%m-%d"),
        "val_start": val_start.strftime("%Y-%m-%d"),
        "test_start": after[0].strftime("%Y-%m-%d") if len(after) else None,
        "val_days": n_val,
        "epochs": epochs,
        "epoch_windows": epoch_windows or EPOCH_WINDOWS,
        "seed": seed,
        "device": device,
        "space": {name: repr(d) for name, d in space.items()},
    }


def run_panel_trial(
    params: dict, spec: dict, report: EpochCallback | None = None, stop: StopToken | None = None
) -> dict:
    """`tune.run_trial` for a panel: fit the global network with `params` on the dates before the
    validation tail, score every trained ticker's next-day forecasts on it. Only rows up to
    `train_end` are kept after loading; the test period never reaches the model or the score."""
    from .global_models import GlobalNetwork, global_config
    from .panel import load_panel

    train_end, val_start = pd.Timestamp(spec["train_end"]), pd.Timestamp(spec["val_start"])
    loaded = load_panel(spec["data"], allow_gaps=spec["allow_gaps"]).judged(train_end + pd.Timedelta(days=1))
    panel = {ticker: prices.slice(end=train_end) for ticker, prices in loaded.items()}
    config = global_config(
        spec["model"], None, target=spec["target"], epochs=spec["epochs"], seed=spec["seed"], device=spec["device"],
        ensemble=1, **params,
    )  # fmt: skip
    network = GlobalNetwork(spec["model"], config, epoch_windows=spec["epoch_windows"])
    epochs: list[int] = []

    def on_epoch(info: EpochInfo) -> None:
        epochs.append(info.epoch)
        if report is not None:
            report(info)

    fit_end = val_start - pd.Timedelta(days=1)  # label slicing: every row before the validation tail
    try:
        network.fit_panel(panel, train_end=fit_end, on_epoch=on_epoch, stop=stop)
        ratios, days, unscored = _score(network, panel, val_start, spec["target"])
    except optuna.TrialPruned:
        return {"state": "pruned", "epochs": max(epochs, default=0)}
    except TrainingError as exc:
        return {"state": "fail", "error": str(exc), "epochs": max(epochs, default=0)}
    if not ratios:
        raise ConfigError(f"{spec['data']}: no ticker has validation days after {spec['val_start']} to score on")
    value = float(np.median(ratios))
    return {
        "state": "complete",
        "value": value,
        "skill": 1.0 - value,
        "tickers": len(ratios),
        "days": days,
        # every ticker of the folder not scored, with why: none is left out silently
        "skipped": [*loaded.skipped, *network.fitted_["skipped"], *unscored],
        "epochs": max(epochs, default=0),
    }


def _score(network, panel: dict, val_start: pd.Timestamp, target: str) -> tuple[list, int, list[dict]]:
    """Each trained ticker's RMSE / persistence RMSE over its validation days (repaired days and
    tickers whose target does not move there left out), the days scored in all, and the trained
    tickers left out with why."""
    persistence = make_forecaster("persistence", ModelConfig(target=target))
    ratios, days, unscored = [], 0, []
    for ticker in network.series_:
        prices = panel[ticker]
        index = prices.index
        first = int(index.searchsorted(val_start))
        scored = ~index[first:].isin(prices.repairs.changed_dates(target))
        if not scored.any():
            unscored.append({"ticker": ticker, "reason": "no validation day to score (ended or repaired)"})
            continue
        forecast = network.rolling(prices, val_start)["step_1"].to_numpy()
        naive = persistence.fit(prices, train_end=index[first - 1]).rolling(prices, val_start)["step_1"].to_numpy()
        actual = prices.column(target).to_numpy(dtype=float)[first:][scored]
        naive_rmse = rmse(actual, naive[scored])
        if not naive_rmse > 0:
            unscored.append({"ticker": ticker, "reason": f"its {target} does not move over the validation days"})
            continue
        ratios.append(rmse(actual, forecast[scored]) / naive_rmse)
        days += int(scored.sum())
    return ratios, days, unscored
