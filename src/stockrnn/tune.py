"""Hyperparameter search (Optuna, TPE sampler, median pruning) scored on a validation tail inside
the training span: the test period is cut off before any trial sees the data.

    rows:  [ fit ........................ | validation (--val-days) | test (never read) ]
                                          ^ val_start               ^ test_start

A trial fits one network (ensemble 1) on the fit rows and scores its rolling next-day forecasts
over the validation rows; the objective is RMSE / persistence RMSE (1 - skill), comparable across
windows. One trial is the module-level function `run_trial(params, spec)`, so a runner can send it
to another process; the search itself is Optuna's ask/tell loop over a journal file in `--out`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from .config import NETWORKS, ModelConfig
from .data import load_prices
from .errors import ConfigError, DataError, TrainingError
from .evaluate import DEFAULT_TEST_ROWS
from .files import check_apart, check_target
from .forecaster import fingerprint, make_forecaster
from .global_models import GLOBAL_DEFAULTS
from .interrupt import StopToken, token
from .metrics import rmse
from .options import MAX_SEED
from .runners import DEFAULT_THREADS, Outcome, RunInterrupted, Runner, Unit, make_runner
from .sources import is_folder
from .training import EpochCallback, EpochInfo, resolve_device
from .tune_panel import GLOBAL_SPACE, panel_trial_spec, run_panel_trial
from .tune_study import (
    PRUNER,
    STUDY_FILE,
    STUDY_NAME,
    TuneResult,
    counts,
    finished,
    journal,
    open_study,
    tell,
    write_best,
)
from .windows import position

DEFAULT_EPOCHS = 50
# Trials asked together: fixed, so that --jobs changes how fast the search runs, never what it finds.
BATCH = 4
VAL_DAYS = 252  # the validation tail: at most a trading year, at most a fifth of the training span
# What the search varies; the ensemble is fixed at one network per trial (members average out noise
# but do not change which settings are good, and would multiply the cost of every trial).
SPACE = {
    "window": CategoricalDistribution([5, 10, 20, 40, 60]),
    "units": CategoricalDistribution([16, 32, 64, 128]),
    "layers": IntDistribution(1, 3),
    "dropout": FloatDistribution(0.0, 0.5),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "batch_size": CategoricalDistribution([32, 64, 128, 256]),
}
BAD_INPUT = {"ConfigError": ConfigError, "DataError": DataError}  # a trial's bad input ends the search


# -- one trial ---------------------------------------------------------------------------------
def run_trial(params: dict, spec: dict, report: EpochCallback | None = None, stop: StopToken | None = None) -> dict:
    """Fit `spec["model"]` with `params` on the rows before the validation period and score it
    there. Pure: the result depends on (params, spec) only. `report`, when given, is told every
    epoch and may stop the trial by raising optuna.TrialPruned; a `stop` request (a first Ctrl-C)
    ends its training after the current batch. Returns {"state": "complete", "value", "rmse",
    "persistence_rmse", "skill", "days", "epochs"}, {"state": "pruned", ...} or {"state": "fail",
    "error"} (training diverged)."""
    if spec["panel"]:
        return run_panel_trial(params, spec, report, stop)
    prices = load_prices(spec["data"], allow_gaps=spec["allow_gaps"]).slice(end=spec["train_end"])
    index = prices.index
    first = position(index, spec["val_start"], "validation start", prices.source)
    config = trial_config(params, spec)
    epochs: list[int] = []

    def on_epoch(info: EpochInfo) -> None:
        epochs.append(info.epoch)
        if report is not None:
            report(info)

    model = make_forecaster(spec["model"], config)
    try:
        model.fit(prices, train_end=index[first - 1], on_epoch=on_epoch, stop=stop)
        forecast = model.rolling(prices, index[first])["step_1"].to_numpy()
    except optuna.TrialPruned:
        return {"state": "pruned", "epochs": max(epochs, default=0)}
    except TrainingError as exc:
        return {"state": "fail", "error": str(exc), "epochs": max(epochs, default=0)}
    persistence = make_forecaster("persistence", ModelConfig(target=spec["target"]))
    naive = persistence.fit(prices, train_end=index[first - 1]).rolling(prices, index[first])["step_1"].to_numpy()
    series = prices.column(spec["target"])
    scored = ~index[first:].isin(prices.repairs.changed_dates(spec["target"]))  # repaired days are not scored
    actual = series.to_numpy(dtype=float)[first:][scored]
    model_rmse, naive_rmse = rmse(actual, forecast[scored]), rmse(actual, naive[scored])
    if not naive_rmse > 0:
        raise ConfigError(f"{prices.source}: the target does not move over the validation period: nothing to tune on")
    return {
        "state": "complete",
        "value": model_rmse / naive_rmse,
        "rmse": model_rmse,
        "persistence_rmse": naive_rmse,
        "skill": 1.0 - model_rmse / naive_rmse,
        "days": int(scored.sum()),
        "epochs": max(epochs, default=0),
    }


def trial_config(params: dict, spec: dict) -> ModelConfig:
    """The fixed settings of the study with the trial's tuned values."""
    return ModelConfig(
        target=spec["target"], epochs=spec["epochs"], seed=spec["seed"], device=spec["device"], ensemble=1, **params
    )


def pruning_reporter(trial: optuna.Trial) -> EpochCallback:
    """Each epoch's validation loss (the network's early-stopping tail) to Optuna; raises
    optuna.TrialPruned when the pruner says this trial is worse than the median at that epoch."""

    def report(info: EpochInfo) -> None:
        if info.val_loss is None:
            return
        trial.report(info.val_loss, info.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {info.epoch}")

    return report


def run_trial_in_worker(
    params: dict, spec: dict, study_path: str, trial_id: int, stop: StopToken | None = None
) -> dict:
    """`run_trial` as a runner's unit, in whichever process runs it: the trial's epochs are reported,
    and the pruner asked, through the study's journal file, which processes share safely (it locks
    appends). `interrupted` says whether a first Ctrl-C (`stop`) cut the training short: only the
    sequential runner's in-process trials share the driver's token; a worker process gets a token of
    its own, never set, so its trials run to the end and count."""
    stop = token(stop)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=STUDY_NAME, storage=journal(Path(study_path)), pruner=optuna.pruners.MedianPruner(**PRUNER)
    )
    result = run_trial(params, spec, pruning_reporter(optuna.Trial(study, trial_id)), stop)
    return {**result, "interrupted": stop.requested}


# -- the search --------------------------------------------------------------------------------
def tune(
    source: str,
    model: str,
    trials: int,
    out: str | Path,
    resume: bool = False,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    target: str = "high",
    test_start: str | None = None,
    val_days: int | None = None,
    device: str = "auto",
    allow_gaps: bool = False,
    space: dict | None = None,
    on_trial: Callable[[dict], None] | None = None,
    jobs: int = 1,
    engine: str = "local",
    threads: int = DEFAULT_THREADS,
    address: str | None = None,
    epoch_windows: int | None = None,
    stop: StopToken | None = None,
    batch: int = BATCH,
) -> TuneResult:
    """Run the search until the study in `out` holds `trials` finished trials (complete, pruned or
    failed by diverging; a trial stopped by Ctrl-C does not count), then write `out/best.json`.
    `source` a folder: the trials tune the global network of the panel (tune_panel.py; an epoch
    is `epoch_windows` sampled windows, by default GlobalNetwork's), and best.json applies to global models.

    `batch` trials are asked from the study together (TPE's constant liar keeps them apart), run as
    units, told, and the next batch asked; they run `jobs` at a time on a runner (`engine` local or
    ray, `threads` torch threads each; one job is the sequential runner). The proposals depend on
    `batch`, never on `jobs`, the engine, the machine's load or the order the units finish in.
    A `stop` request (a first Ctrl-C) ends the running trials' training and asks no new ones."""
    stop = token(stop)
    if model not in NETWORKS:
        raise ConfigError(f"tune searches a network's settings: --model lstm or gru, not '{model}'")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {trials}")
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, not {batch}")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed must be 0 .. {MAX_SEED}, not {seed}")
    resolve_device(ModelConfig(device=device).device)  # a bad --device fails before any file
    out = Path(out)
    check_apart(out, [source])  # never a study inside the data it tunes on
    if not resume:
        check_target(out)  # new, empty or a stockrnn output: a user's folder of files is refused
    runner = make_runner(engine, jobs, threads, address, seed)  # bad engine options fail before any file
    panel = is_folder(source)
    space = space or (GLOBAL_SPACE if panel else SPACE)
    if panel:
        widest = max(_choices(space.get("window"), GLOBAL_DEFAULTS["window"]))
        spec = panel_trial_spec(
            source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space, widest, VAL_DAYS,
            epoch_windows,
        )  # fmt: skip
    else:
        spec = trial_spec(source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space)
    spec["batch"] = batch  # reported in best.json; a resumed study may ask in other batches
    with runner:  # one Ray session (or none) for the whole search, joined before the study's folder is made
        study = open_study(out, resume, spec, seed)
        started = time.perf_counter()
        if on_trial is not None:  # the settings are checked: from here on progress can be shown
            on_trial(counts(study))
        while (left := trials - finished(study)) > 0 and not stop.requested:
            run_batch(study, runner, spec, space, (out / STUDY_FILE).resolve(), min(batch, left), stop)
            if on_trial is not None:
                on_trial(counts(study))
    return write_best(study, out, spec, interrupted=stop.requested, seconds=time.perf_counter() - started)


def run_batch(
    study: optuna.Study, runner: Runner, spec: dict, space: dict, path: Path, size: int, stop: StopToken | None = None
) -> None:
    """Ask `size` trials (TPE's constant liar counts the ones asked but not told, so they differ),
    run them as units and tell each its outcome. A second Ctrl-C (RunInterrupted) tells the trials
    that finished, marks the others interrupted and goes on up; a trial's bad input ends the search."""
    asked = {f"trial-{t.number}": t for t in (study.ask(space) for _ in range(size))}
    units = [
        Unit(key, run_trial_in_worker, (t.params, spec, str(path), t._trial_id), {"stop": stop})
        for key, t in asked.items()
    ]
    try:
        outcomes = runner.run(units, stop=stop)
    except RunInterrupted as stop:
        for key, trial in asked.items():
            tell(study, trial, outcome_result(stop.outcomes.get(key)))
        raise
    for key, trial in asked.items():  # a trial a first Ctrl-C kept from starting has no outcome
        tell(study, trial, outcome_result(outcomes.get(key)))
    bad = [o for o in outcomes.values() if o.error_type in BAD_INPUT]
    if bad:
        raise BAD_INPUT[bad[0].error_type](bad[0].error)


def outcome_result(outcome: Outcome | None) -> dict:
    """A unit's outcome as `run_trial`'s result: no outcome (stopped by Ctrl-C, or never started
    after one) is an interrupted trial; a unit that failed (its worker died twice, an error) is a
    failed trial that counts."""
    if outcome is None:
        return {"state": "fail", "interrupted": True}
    if outcome.ok:
        return outcome.value
    return {"state": "fail", "error": f"{outcome.error_type}: {outcome.error}"}


def trial_spec(source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space) -> dict:
    """Everything a trial needs besides its params, with the spans as dates (so a trial in another
    process cuts the same rows). A folder's spec is tune_panel.panel_trial_spec's."""
    prices = load_prices(source, allow_gaps=allow_gaps)
    prices.column(target)
    index = prices.index
    if test_start is None:
        if len(index) <= DEFAULT_TEST_ROWS:
            raise ConfigError(
                f"{prices.source}: {len(index)} rows; give --test-start (default: the last {DEFAULT_TEST_ROWS} rows)"
            )
        test_first = len(index) - DEFAULT_TEST_ROWS
    else:
        test_first = position(index, test_start, "test start", prices.source)
    n_val = val_days if val_days is not None else min(VAL_DAYS, test_first // 5)
    fit_rows = test_first - n_val
    widest = max(_choices(space.get("window"), ModelConfig().window))
    need = widest + 20  # the widest window, and enough windows for the network's early-stopping tail
    if n_val < 1 or fit_rows < need:
        raise ConfigError(
            f"{prices.source}: {test_first} rows before the test start, {n_val} of them for validation, leave "
            f"{max(fit_rows, 0)} to fit on; the widest window ({widest}) needs {need} (lower --val-days)"
        )
    moves = prices.column(target).iloc[fit_rows - 1 : test_first]  # persistence's errors there
    if moves.nunique() <= 1:  # a trial would find this after its training, with the study folder made
        raise ConfigError(f"{prices.source}: the target does not move over the validation period: nothing to tune on")
    resolved = Path(str(source)).resolve()
    return {
        "data": str(resolved) if resolved.is_file() else str(source),
        "fingerprint": fingerprint(prices.frame.iloc[:test_first]),  # the rows a trial reads
        "allow_gaps": allow_gaps,
        "panel": False,
        "model": model,
        "target": target,
        "train_end": index[test_first - 1].strftime("%Y-%m-%d"),
        "val_start": index[fit_rows].strftime("%Y-%m-%d"),
        "test_start": None if test_first >= len(index) else index[test_first].strftime("%Y-%m-%d"),
        "val_days": n_val,
        "epochs": epochs,
        "epoch_windows": None,
        "seed": seed,
        "device": device,
        "space": {name: repr(d) for name, d in space.items()},
    }


def _choices(distribution, default: int) -> list[int]:
    if distribution is None:
        return [default]
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.high]
