"""The study of `stockrnn tune` in its journal file (`--out/study.log`): opened new or resumed,
told each trial's outcome, counted, and summed up in `best.json` (a preset file).

The journal file is Optuna's storage that several processes append to safely (it locks), so trials
running in a runner's workers report their epochs to it and ask the pruner through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .errors import ConfigError, Interrupted, TrainingError
from .files import MARK_TEXT, OUTPUT_MARK
from .presets import write_preset_file

STUDY_NAME = "stockrnn"
STUDY_FILE = "study.log"
BEST_FILE = "best.json"
NEW_STUDY = "it cannot be resumed: start a new study with another --out"
# Prune only after 3 finished trials, and never in a trial's first 5 epochs.
PRUNER = dict(n_startup_trials=3, n_warmup_steps=5)
# Settings of the study that a resume must share: trials of other settings are not comparable.
SHARED_KEYS = {
    "data": "--data",
    "fingerprint": "version of the data (its rows before the test start differ)",
    "allow_gaps": "--allow-gaps",
    "model": "--model",
    "target": "--target",
    "train_end": "--test-start",
    "val_start": "--val-days",
    "epochs": "--epochs",
    "epoch_windows": "epoch size (windows per epoch of a global model)",
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


def journal(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def check_journal(path: Path) -> None:
    """Refuse a journal that a crash or an editor damaged (a cut last record, a line that is no
    record), before any write: Optuna reads past a cut record, then appends to that line, and the
    study is lost for good."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the study ({exc.strerror or exc})") from None
    lines = data.split(b"\n")
    bad = 1 if not data else None
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            bad = number
            break
    if bad is None and lines[-1]:
        bad = len(lines)  # the last record has no end of line: cut short
    if bad is not None:
        what = "is empty" if not data else f"is damaged at line {bad} (a cut or foreign record)"
        raise ConfigError(f"{path}: the study file {what}; {NEW_STUDY}")


def open_study(out: Path, resume: bool, spec: dict, seed: int) -> optuna.Study:
    """The study in `out/study.log`: new (refusing to overwrite one) or resumed (refusing other settings)."""
    path = out / STUDY_FILE
    if path.exists() and not resume:
        raise ConfigError(f"{path}: a study is already there; pass --resume to continue it, or choose another --out")
    if resume and not path.exists():
        raise ConfigError(f"{path}: no study to resume (run without --resume to start one)")
    if resume:
        check_journal(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and not (out / OUTPUT_MARK).exists():  # a stockrnn folder: a later run may replace it
            (out / OUTPUT_MARK).write_text(MARK_TEXT)
        if not resume:
            storage = journal(path)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the study here ({exc.strerror or exc})") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(**PRUNER)
    if resume:  # loading writes nothing: a refused resume leaves the journal as it was
        try:  # the journal is replayed as the storage is made
            storage = journal(path)
            study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=pruner)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the study ({exc.strerror or exc})") from None
        except (KeyError, ValueError, TypeError, AttributeError, AssertionError) as exc:  # no records of a study
            raise ConfigError(
                f"{path}: the study file is damaged ({type(exc).__name__}: {exc!s}); {NEW_STUDY}"
            ) from None
        stored = study.user_attrs.get("spec", {})
        for key, option in SHARED_KEYS.items():
            if key not in stored:
                raise ConfigError(f"{path}: the study keeps no {key} (an earlier stockrnn made it); {NEW_STUDY}")
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
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="minimize", pruner=pruner)
        study.set_user_attr("spec", spec)
    # Seeded from --seed and the trials already made: a rerun proposes the same sequence, and a
    # resumed search does not repeat the random start-up proposals of the first session.
    # constant_liar: trials asked together (--batch) see each other as running and differ.
    study.sampler = optuna.samplers.TPESampler(
        seed=(seed + len(study.get_trials(deepcopy=False))) % 2**32, constant_liar=True
    )
    return study


def tell(study: optuna.Study, trial: optuna.Trial, result: dict) -> None:
    """Record a trial's outcome (`run_trial_in_worker`'s result); one cut short by Ctrl-C is marked
    failed and interrupted (not counted)."""
    for key, value in result.items():
        if key not in ("state", "value", "interrupted"):
            trial.set_user_attr(key, value)
    if result.get("interrupted"):
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
            raise Interrupted(f"interrupted before any trial completed; nothing written (the study is in {out})")
        raise TrainingError(
            f"no trial completed ({summary['pruned']} pruned, {summary['failed']} failed: "
            f"{_first_error(study)}); nothing written"
        )
    best = study.best_trial
    attrs = best.user_attrs
    settings = {**best.params, "epochs": spec["epochs"]}
    # One file: its RMSE and persistence's; a panel: the median skill over `tickers` (tune_panel.py).
    scores = (
        ("rmse", "persistence_rmse", "skill", "days") if not spec["panel"] else ("skill", "tickers", "days", "skipped")
    )
    score = {
        "objective": best.value,
        **{key: attrs[key] for key in scores},
        "val_start": spec["val_start"],
        "val_end": spec["train_end"],
    }
    info = {
        "name": STUDY_NAME,
        "storage": STUDY_FILE,
        "best_trial": best.number,
        **{k: summary[k] for k in ("finished", "complete", "pruned", "failed", "stopped")},
        "data": spec["data"],
        "global": spec["panel"],  # a folder: the settings of the global network (evaluate/fit --data FOLDER)
        "target": spec["target"],
        "train_end": spec["train_end"],
        "test_start": spec["test_start"],
        "seed": spec["seed"],
        "batch": spec["batch"],
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
