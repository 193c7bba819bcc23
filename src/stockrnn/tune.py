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
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from . import interrupt
from .config import NETWORKS, ModelConfig
from .data import load_prices
from .errors import ConfigError, TrainingError
from .evaluate import DEFAULT_TEST_ROWS
from .forecaster import make_forecaster
from .metrics import rmse
from .presets import write_preset_file
from .training import EpochCallback, EpochInfo
from .windows import position

STUDY_NAME = "stockrnn"
STUDY_FILE = "study.log"
BEST_FILE = "best.json"
DEFAULT_EPOCHS = 50
VAL_DAYS = 252  # the validation tail: at most a trading year, at most a fifth of the training span
# Prune only after 3 finished trials, and never in a trial's first 5 epochs.
PRUNER = dict(n_startup_trials=3, n_warmup_steps=5)
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
# Settings of the study that a resume must share: trials of other settings are not comparable.
SHARED_KEYS = {
    "data": "--data",
    "model": "--model",
    "target": "--target",
    "train_end": "--test-start",
    "val_start": "--val-days",
    "epochs": "--epochs",
    "seed": "--seed",
    "space": "the search space",
}


@dataclass
class TuneResult:
    """The best trial's settings and scores, and what the study holds."""

    model: str
    settings: dict
    score: dict
    study: dict
    path: Path  # best.json
    trials: list[dict] = field(default_factory=list)  # number, state, value, params of every trial


# -- one trial ---------------------------------------------------------------------------------
def run_trial(params: dict, spec: dict, report: EpochCallback | None = None) -> dict:
    """Fit `spec["model"]` with `params` on the rows before the validation period and score it
    there. Pure: the result depends on (params, spec) only. `report`, when given, is told every
    epoch and may stop the trial by raising optuna.TrialPruned. Returns {"state": "complete", "value",
    "rmse", "persistence_rmse", "skill", "days", "epochs"}, {"state": "pruned", ...} or
    {"state": "fail", "error"} (training diverged)."""
    prices = load_prices(spec["data"], allow_gaps=spec["allow_gaps"]).slice(end=spec["train_end"])
    index = prices.index
    first = position(index, spec["val_start"], "validation start", prices.source)
    config = trial_config(params, spec)
    epochs: list[int] = []

    def on_epoch(info: EpochInfo) -> None:
        epochs.append(info.epoch)
        if report is not None:
            report(info)

    model = make_forecaster(spec["model"], config, on_epoch)
    try:
        model.fit(prices, train_end=index[first - 1])
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


def run_trial_in_worker(params: dict, spec: dict, study_path: str, trial_id: int) -> dict:
    """`run_trial` for a runner's worker process: the trial's epochs are reported, and the pruner
    asked, through the study's journal file, which processes share safely (it locks appends)."""
    study = optuna.load_study(
        study_name=STUDY_NAME, storage=journal(Path(study_path)), pruner=optuna.pruners.MedianPruner(**PRUNER)
    )
    return run_trial(params, spec, pruning_reporter(optuna.Trial(study, trial_id)))


def journal(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


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
) -> TuneResult:
    """Run the search until the study in `out` holds `trials` finished trials (complete, pruned or
    failed by diverging; a trial stopped by Ctrl-C does not count), then write `out/best.json`."""
    if model not in NETWORKS:
        raise ConfigError(f"tune searches a network's settings: --model lstm or gru, not '{model}'")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {trials}")
    space = space or SPACE
    spec = trial_spec(source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space)
    out = Path(out)
    study = open_study(out, resume, spec, seed)
    started = time.perf_counter()
    if on_trial is not None:  # the settings are checked: from here on progress can be shown
        on_trial(counts(study))
    while finished(study) < trials and not interrupt.requested():
        trial = study.ask(space)
        result = run_trial(trial.params, spec, pruning_reporter(trial))
        tell(study, trial, result)
        if on_trial is not None:
            on_trial(counts(study))
    return write_best(study, out, spec, interrupted=interrupt.requested(), seconds=time.perf_counter() - started)


def trial_spec(source, model, target, test_start, val_days, epochs, seed, device, allow_gaps, space) -> dict:
    """Everything a trial needs besides its params, with the spans as dates (so a trial in another
    process cuts the same rows). `panel` is the hook for global models on a folder of tickers."""
    if Path(str(source)).is_dir():
        raise ConfigError(f"{source}: is a folder; tune on a folder needs the panel models (not yet wired)")
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
    resolved = Path(str(source)).resolve()
    return {
        "data": str(resolved) if resolved.is_file() else str(source),
        "allow_gaps": allow_gaps,
        "panel": False,
        "model": model,
        "target": target,
        "train_end": index[test_first - 1].strftime("%Y-%m-%d"),
        "val_start": index[fit_rows].strftime("%Y-%m-%d"),
        "test_start": None if test_first >= len(index) else index[test_first].strftime("%Y-%m-%d"),
        "val_days": n_val,
        "epochs": epochs,
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


def open_study(out: Path, resume: bool, spec: dict, seed: int) -> optuna.Study:
    """The study in `out/study.log`: new (refusing to overwrite one) or resumed (refusing other settings)."""
    path = out / STUDY_FILE
    if path.exists() and not resume:
        raise ConfigError(f"{path}: a study is already there; pass --resume to continue it, or choose another --out")
    if resume and not path.exists():
        raise ConfigError(f"{path}: no study to resume (run without --resume to start one)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        storage = journal(path)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the study here ({exc.strerror or exc})") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(**PRUNER),
        load_if_exists=resume,
    )
    if resume:
        stored = study.user_attrs.get("spec", {})
        for key, option in SHARED_KEYS.items():
            if stored.get(key) != spec[key]:
                raise ConfigError(
                    f"{path}: the study was made with another {option} ({key} {stored.get(key)!r}, not "
                    f"{spec[key]!r}); resume with the same settings or choose another --out"
                )
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            # left running by a killed search (one search per study): it never finished
            storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    else:
        study.set_user_attr("spec", spec)
    # Seeded from --seed and the trials already made: a rerun proposes the same sequence, and a
    # resumed search does not repeat the random start-up proposals of the first session.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    return study


def tell(study: optuna.Study, trial: optuna.Trial, result: dict) -> None:
    """Record a trial's outcome; one stopped by Ctrl-C is marked failed and interrupted (not counted)."""
    for key, value in result.items():
        if key not in ("state", "value"):
            trial.set_user_attr(key, value)
    if interrupt.requested():
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
    elif result["state"] == "complete":
        study.tell(trial, result["value"])
    elif result["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def finished(study: optuna.Study) -> int:
    """Trials that count toward --trials: complete, pruned, or failed on their own (diverged)."""
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and "error" in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


def counts(study: optuna.Study) -> dict:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return {
        "finished": finished(study),
        "complete": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and "error" in t.user_attrs for t in trials),
        "stopped": sum(t.state == TrialState.FAIL and "interrupted" in t.user_attrs for t in trials),
        "best": min((t.value for t in complete), default=None),
    }


def write_best(study: optuna.Study, out: Path, spec: dict, interrupted: bool, seconds: float) -> TuneResult:
    """best.json (a preset file) from the best complete trial; an error if none completed."""
    summary = counts(study)
    if summary["complete"] == 0:
        if interrupted:
            raise ConfigError(f"interrupted before any trial completed; nothing written (the study is in {out})")
        raise TrainingError(
            f"no trial completed ({summary['pruned']} pruned, {summary['failed']} failed: "
            f"{_first_error(study)}); nothing written"
        )
    best = study.best_trial
    attrs = best.user_attrs
    settings = {**best.params, "epochs": spec["epochs"]}
    score = {
        "objective": best.value,
        "rmse": attrs["rmse"],
        "persistence_rmse": attrs["persistence_rmse"],
        "skill": attrs["skill"],
        "days": attrs["days"],
        "val_start": spec["val_start"],
        "val_end": spec["train_end"],
    }
    info = {
        "name": STUDY_NAME,
        "storage": STUDY_FILE,
        "best_trial": best.number,
        **{k: summary[k] for k in ("finished", "complete", "pruned", "failed", "stopped")},
        "data": spec["data"],
        "target": spec["target"],
        "train_end": spec["train_end"],
        "test_start": spec["test_start"],
        "seed": spec["seed"],
        "ensemble": 1,
        "sampler": "TPE",
        "pruner": f"median ({PRUNER['n_startup_trials']} start-up trials, {PRUNER['n_warmup_steps']} warm-up epochs)",
        "seconds": round(seconds, 1),
        "interrupted": interrupted,
    }
    path = write_preset_file(out / BEST_FILE, spec["model"], settings, score=score, study=info)
    rows = [
        {  # a pruned trial's Optuna value is its last validation loss, not the objective: left out
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "params": t.params,
        }
        for t in study.get_trials(deepcopy=False)
    ]
    return TuneResult(spec["model"], settings, score, info, path, rows)


def _first_error(study: optuna.Study) -> str:
    errors = [t.user_attrs["error"] for t in study.get_trials(deepcopy=False) if "error" in t.user_attrs]
    return errors[0] if errors else "none"
