"""`stockrnn tune`: the search, its resume, honest spans (the test period never read), pruning,
and the preset file it writes (`best.json`) read back by `apply_preset_file`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from stockrnn import tune as tune_module
from stockrnn.errors import ConfigError, TrainingError
from stockrnn.interrupt import StopToken
from stockrnn.presets import apply_preset_file, load_preset_file
from stockrnn.runners import LocalRunner, RunInterrupted, SequentialRunner, Unit
from stockrnn.training import EpochInfo
from stockrnn.tune import journal, pruning_reporter, run_trial, run_trial_in_worker, trial_spec, tune

from conftest import make_prices

# Tiny networks and a tiny space: each trial trains in a fraction of a second.
SPACE = {
    "window": CategoricalDistribution([3, 5]),
    "units": CategoricalDistribution([4, 8]),
    "layers": IntDistribution(1, 1),
    "dropout": FloatDistribution(0.0, 0.2),
    "lr": FloatDistribution(1e-3, 1e-2, log=True),
    "batch_size": CategoricalDistribution([32, 64]),
}
TEST_ROW = 500  # rows 500.. are the test period
SEARCH = dict(epochs=2, val_days=60, space=SPACE)


@pytest.fixture
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "P.csv"
    make_prices(600).round(4).to_csv(path)
    return path


def first_test_day(path: Path) -> str:
    return make_prices(600).index[TEST_ROW].strftime("%Y-%m-%d")


def search(path: Path, out: Path, trials: int, **kwargs):
    return tune(str(path), "gru", trials, out, test_start=first_test_day(path), **{**SEARCH, **kwargs})


def test_search_writes_the_study_and_a_best_preset(price_file, tmp_path):
    result = search(price_file, tmp_path / "study", 3)
    assert (tmp_path / "study" / "study.log").stat().st_size > 0
    document = json.loads((tmp_path / "study" / "best.json").read_text())
    assert document["format"] == "stockrnn-preset" and document["model"] == "gru"
    assert set(document["settings"]) == set(SPACE) | {"epochs"}
    values = [t["value"] for t in result.trials]
    assert len(values) == 3 and document["score"]["objective"] == pytest.approx(min(values))
    score = document["score"]
    assert score["rmse"] / score["persistence_rmse"] == pytest.approx(score["objective"])
    assert score["days"] == 60 and score["val_end"] < first_test_day(price_file)
    assert document["study"]["complete"] == 3


def test_resume_keeps_the_trials_done_and_runs_up_to_the_total(price_file, tmp_path):
    first = search(price_file, tmp_path / "study", 3)
    resumed = search(price_file, tmp_path / "study", 5, resume=True)
    assert len(resumed.trials) == 5
    assert resumed.trials[:3] == first.trials  # params and values of the first session unchanged
    assert [t["params"] for t in resumed.trials[3:]] != [t["params"] for t in first.trials[:2]]  # no replay
    assert search(price_file, tmp_path / "study", 5, resume=True).trials == resumed.trials  # nothing left to do


def test_the_same_seed_proposes_and_scores_the_same_trials(price_file, tmp_path):
    one, two = search(price_file, tmp_path / "one", 2), search(price_file, tmp_path / "two", 2)
    assert [t["params"] for t in one.trials] == [t["params"] for t in two.trials]
    assert [t["value"] for t in one.trials] == pytest.approx([t["value"] for t in two.trials], rel=1e-9)
    other = search(price_file, tmp_path / "three", 2, seed=1)
    assert [t["params"] for t in other.trials] != [t["params"] for t in one.trials]


def test_an_existing_study_needs_resume_and_the_same_settings(price_file, tmp_path, cli):
    search(price_file, tmp_path / "study", 1)
    code, out, err = cli("tune", "--data", price_file, "--out", tmp_path / "study", "--trials", "2")
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "study.log" in err
    with pytest.raises(ConfigError, match=r"made with another --model \(model 'gru', not 'lstm'\)"):
        tune(
            str(price_file), "lstm", 2, tmp_path / "study", resume=True, test_start=first_test_day(price_file), **SEARCH
        )
    code, out, err = cli("tune", "--data", price_file, "--out", tmp_path / "none", "--resume")
    assert code == 2 and "no study to resume" in err


def test_the_test_period_is_never_read(price_file, tmp_path):
    frame = make_prices(600).round(4)
    wild = frame.copy()
    factor = np.random.default_rng(1).uniform(0.2, 5.0, len(frame) - TEST_ROW)
    wild.iloc[TEST_ROW:, :4] = wild.iloc[TEST_ROW:, :4].mul(factor, axis=0)
    wild.to_csv(tmp_path / "wild.csv")
    inside = frame.copy()
    inside.iloc[TEST_ROW - 10 : TEST_ROW, :4] *= 1.5  # the same change inside the validation period
    inside.to_csv(tmp_path / "inside.csv")

    def score(path: Path) -> dict:
        spec = trial_spec(str(path), "gru", "high", first_test_day(price_file), 60, 2, 0, "cpu", False, SPACE)
        params = dict(window=5, units=4, layers=1, dropout=0.1, lr=3e-3, batch_size=32)
        return run_trial(params, spec)

    plain = score(price_file)
    assert plain["state"] == "complete"
    assert score(tmp_path / "wild.csv") == plain  # the same bits: nothing after the test start was used
    assert score(tmp_path / "inside.csv")["value"] != pytest.approx(plain["value"])


class StubTrial:
    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.reported = prune_at, []

    def report(self, value: float, step: int) -> None:
        self.reported.append((step, value))

    def should_prune(self) -> bool:
        return self.reported[-1][0] >= self.prune_at


def test_the_pruning_reporter_reports_val_loss_and_raises_when_told():
    trial = StubTrial(prune_at=2)
    report = pruning_reporter(trial)
    report(EpochInfo(0, 1, 0.5, 0.4, False))
    report(EpochInfo(0, 1, 0.5, None, False))  # no validation tail: nothing to report
    with pytest.raises(optuna.TrialPruned):
        report(EpochInfo(0, 2, 0.3, 0.35, False))
    assert trial.reported == [(1, 0.4), (2, 0.35)]


def test_a_pruned_trial_stops_training_and_is_recorded_as_pruned(price_file, tmp_path, monkeypatch):
    def prune_trial_one(trial):
        report = pruning_reporter(StubTrial(prune_at=1 if trial.number == 1 else 10**6))
        return lambda info: (trial.report(info.val_loss, info.epoch), report(info))

    monkeypatch.setattr(tune_module, "pruning_reporter", prune_trial_one)
    result = search(price_file, tmp_path / "study", 3, epochs=5)
    assert [t["state"] for t in result.trials] == ["complete", "pruned", "complete"]
    assert result.trials[1]["value"] is None  # no objective: Optuna's value would be a validation loss
    assert result.study["pruned"] == 1 and result.study["finished"] == 3
    study = optuna.load_study(
        study_name="stockrnn",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "study" / "study.log"))
        ),
    )
    assert study.trials[1].user_attrs["epochs"] == 1  # training ended at the pruned epoch


def test_a_trial_in_a_worker_reports_through_the_journal(price_file, tmp_path):
    """The shape a parallel runner needs: ask in the main process, run elsewhere, tell back."""
    search(price_file, tmp_path / "study", 1)
    path = tmp_path / "study" / "study.log"
    study = optuna.load_study(study_name="stockrnn", storage=journal(path))
    trial = study.ask(SPACE)
    spec = trial_spec(str(price_file), "gru", "high", first_test_day(price_file), 60, 3, 0, "auto", False, SPACE)
    result = run_trial_in_worker(trial.params, spec, str(path), trial._trial_id)
    study.tell(trial, result["value"])
    again = optuna.load_study(study_name="stockrnn", storage=journal(path))
    assert result["state"] == "complete" and again.trials[1].value == result["value"]
    assert sorted(again.trials[1].intermediate_values) == list(range(1, result["epochs"] + 1))


def test_diverging_trials_count_as_failed_and_none_completing_is_a_training_error(price_file, tmp_path, monkeypatch):
    class Diverging:
        def __init__(self, *args) -> None:
            pass

        def fit(self, *args, **kwargs):
            raise TrainingError("training gru failed at epoch 1: the loss became nan")

    monkeypatch.setattr(tune_module, "make_forecaster", Diverging)
    with pytest.raises(TrainingError, match=r"no trial completed \(0 pruned, 2 failed: training gru failed at epoch 1"):
        search(price_file, tmp_path / "study", 2)  # ends: failed trials count toward --trials
    assert not (tmp_path / "study" / "best.json").exists()


def test_ctrl_c_ends_the_running_trial_keeps_the_study_and_resume_redoes_it(price_file, tmp_path, monkeypatch):
    calls, stop = [], StopToken()

    def interrupted_second(params, spec, report=None, stop=None):
        calls.append(params)
        if len(calls) == 2:
            stop.request()  # a first Ctrl-C during the second trial
        return run_trial(params, spec, report, stop)

    monkeypatch.setattr(tune_module, "run_trial", interrupted_second)
    stopped = search(price_file, tmp_path / "study", 3, stop=stop)  # one batch of 3: the third never starts
    assert [t["state"] for t in stopped.trials] == ["complete", "fail", "fail"] and len(calls) == 2
    assert stopped.study["interrupted"] and stopped.study["finished"] == 1 and stopped.study["stopped"] == 2
    resumed = search(price_file, tmp_path / "study", 3, resume=True)
    assert [t["state"] for t in resumed.trials] == ["complete", "fail", "fail", "complete", "complete"]
    assert resumed.trials[0] == stopped.trials[0]


def test_a_trial_left_running_by_a_killed_search_is_marked_failed_on_resume(price_file, tmp_path):
    search(price_file, tmp_path / "study", 1)
    path = tmp_path / "study" / "study.log"
    optuna.load_study(study_name="stockrnn", storage=journal(path)).ask(SPACE)  # a second Ctrl-C, exit 130
    resumed = search(price_file, tmp_path / "study", 2, resume=True)
    assert [t["state"] for t in resumed.trials] == ["complete", "fail", "complete"]
    assert optuna.load_study(study_name="stockrnn", storage=journal(path)).trials[1].user_attrs == {"interrupted": True}


def test_the_tuned_preset_file_round_trip(price_file, tmp_path):
    result = search(price_file, tmp_path / "study", 2)
    path = tmp_path / "study" / "best.json"
    assert load_preset_file(path) == result.settings
    config = apply_preset_file(path, "gru", target="close")
    assert {k: getattr(config, k) for k in result.settings} == result.settings
    assert config.target == "close"
    explicit = apply_preset_file(path, "gru", window=7, units=None)  # explicit options win; None is "not given"
    assert explicit.window == 7 and explicit.units == result.settings["units"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"window": 20, "colour": "red"}, "unknown setting 'colour'"),
        ({"window": "20"}, "setting 'window' must be int, not \"20\""),
        ({"units": True}, "setting 'units' must be int, not true"),
        ({"dropout": 1.5}, "bad value for dropout: 1.5"),
        ({"format": "stockrnn-preset", "version": 9, "settings": {}}, "preset version 9"),
        ({"format": "stockrnn-preset", "version": 1}, "no 'settings' object"),
        ([1, 2], "a JSON object, not list"),
        ({"lr": float("inf")}, "setting 'lr' must be a finite number, not Infinity"),
        ({"dropout": float("nan")}, "setting 'dropout' must be a finite number, not NaN"),
        ({"horizon": 3}, "'horizon' is a setting of the run, not of the model: give --horizon instead"),
        ({"target": "low"}, "give --target instead"),
    ],
)
def test_a_bad_preset_file_is_one_line_naming_the_file_and_key(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError) as info:
        load_preset_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_hand_written_preset_takes_ints_for_floats(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"window": 20, "lr": 1, "dropout": 0}')
    config = apply_preset_file(path, "lstm")
    assert (config.window, config.lr, config.dropout) == (20, 1.0, 0.0) and isinstance(config.lr, float)


def test_cli_tune_prints_the_best_settings(price_file, tmp_path, cli):
    out = tmp_path / "study"
    code, stdout, err = cli("tune", "--data", price_file, "--model", "gru", "--trials", 1, "--epochs", 1, "--out", out)
    assert code == 0, err
    assert "best gru" in stdout and "window" in stdout and "skill" in stdout
    assert load_preset_file(out / "best.json")["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "gru", "--val-days", "5000"), "lower --val-days"),
        (("--model", "ridge"), "'ridge' is not one of 'lstm', 'gru'"),
    ],
)
def test_cli_tune_bad_input_is_one_line(price_file, tmp_path, cli, args, message):
    code, stdout, err = cli("tune", "--data", price_file, "--out", tmp_path / "study", *args)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "study").exists()


# -- trials through the runners ------------------------------------------------------------------
def test_parallel_trials_in_worker_processes_equal_the_same_batches_in_this_process(price_file, tmp_path, monkeypatch):
    """Two jobs: trials asked two at a time, run, told, the next batch asked. Local workers give the
    very trials (params and values, to the last digit) that the same batches give in this process."""
    local = search(price_file, tmp_path / "local", 2, jobs=2, engine="local")  # one batch: one pool
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: SequentialRunner(jobs=2))
    here = search(price_file, tmp_path / "here", 2, jobs=2)
    assert [t["state"] for t in local.trials] == ["complete"] * 2 and local.study["finished"] == 2
    assert local.trials == here.trials
    assert local.trials[0]["params"] != local.trials[1]["params"]  # asked together, yet different


def test_the_trials_depend_on_the_batch_and_never_on_the_number_of_jobs(price_file, tmp_path, monkeypatch):
    """12 trials: past TPE's 10 random start-up trials the proposals depend on which trials were told
    when they were asked. Batches of 4 give the same trials with one job and with two (before, a
    batch was --jobs trials); batches of one give others, so the comparison can fail."""
    one_job = search(price_file, tmp_path / "one", 12)
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: SequentialRunner(jobs=2))
    two_jobs = search(price_file, tmp_path / "two", 12, jobs=2)
    monkeypatch.undo()
    one_at_a_time = search(price_file, tmp_path / "single", 12, batch=1)
    assert two_jobs.trials == one_job.trials
    assert one_at_a_time.trials[:10] == one_job.trials[:10]  # the start-up: random, seeded
    assert one_at_a_time.trials[10:] != one_job.trials[10:]
    assert one_job.study["batch"] == 4 and one_at_a_time.study["batch"] == 1


def test_the_next_batch_is_asked_after_the_last_one_is_told(price_file, tmp_path, monkeypatch):
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: SequentialRunner(jobs=2))
    result = search(price_file, tmp_path / "study", 3, jobs=2, batch=2)
    assert len(result.trials) == 3  # batches of 2 and 1: never more than --trials
    trials = optuna.load_study(study_name="stockrnn", storage=journal(tmp_path / "study" / "study.log")).trials
    assert trials[1].datetime_start < trials[0].datetime_complete  # 0 and 1 asked together
    assert trials[2].datetime_start >= max(trials[0].datetime_complete, trials[1].datetime_complete)


def test_a_trial_scores_the_same_in_the_sequential_runner_and_in_a_worker(price_file, tmp_path):
    search(price_file, tmp_path / "study", 1)
    path = str(tmp_path / "study" / "study.log")
    study = optuna.load_study(study_name="stockrnn", storage=journal(Path(path)))
    spec = trial_spec(str(price_file), "gru", "high", first_test_day(price_file), 60, 2, 0, "cpu", False, SPACE)
    params = dict(window=5, units=4, layers=1, dropout=0.1, lr=3e-3, batch_size=32)
    results = []
    for runner in (SequentialRunner(seed=3), LocalRunner(jobs=2, seed=3)):
        trial = study.ask(SPACE)  # a trial of its own for each run: epochs are reported once per trial
        outcome = runner.run([Unit("trial", run_trial_in_worker, (params, spec, path, trial._trial_id))])["trial"]
        assert outcome.ok, outcome.error
        results.append(outcome.value)
    assert results[0]["state"] == "complete" and results[0]["interrupted"] is False
    assert results[1] == results[0]  # the same bits
    reported = optuna.load_study(study_name="stockrnn", storage=journal(Path(path))).trials
    assert reported[1].intermediate_values == reported[2].intermediate_values != {}


class StoppedRunner:
    """A runner whose run ends with a second Ctrl-C after its first unit finished."""

    jobs = 2

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def run(self, units, shared=None, on_progress=None, stop=None):
        first = units[0]
        outcomes = SequentialRunner().run([first])
        raise RunInterrupted(outcomes)


def test_a_second_ctrl_c_tells_the_finished_trials_marks_the_rest_and_resume_goes_on(price_file, tmp_path, monkeypatch):
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: StoppedRunner())
    with pytest.raises(RunInterrupted):
        search(price_file, tmp_path / "study", 4, jobs=2, batch=2)
    path = tmp_path / "study" / "study.log"
    trials = optuna.load_study(study_name="stockrnn", storage=journal(path)).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].user_attrs == {"interrupted": True}
    monkeypatch.undo()
    resumed = search(price_file, tmp_path / "study", 2, resume=True)
    assert [t["state"] for t in resumed.trials] == ["complete", "fail", "complete"]


def test_a_trial_with_bad_input_in_a_batch_ends_the_search_after_telling_the_others(price_file, tmp_path, monkeypatch):
    calls = []

    def bad_first(params, spec, report=None, stop=None):
        calls.append(params)
        if len(calls) == 1:
            raise ConfigError("P.csv: the target does not move over the validation period: nothing to tune on")
        return run_trial(params, spec, report, stop)

    monkeypatch.setattr(tune_module, "run_trial", bad_first)
    with pytest.raises(ConfigError, match="does not move"):
        search(price_file, tmp_path / "study", 4, batch=2)
    trials = optuna.load_study(study_name="stockrnn", storage=journal(tmp_path / "study" / "study.log")).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and len(calls) == 2  # no retry of bad input
    assert trials[0].user_attrs["error"].startswith("ConfigError: P.csv: the target does not move")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--address", "10.0.0.1:6379"), "--address joins a Ray cluster: it needs --engine ray"),
        (("--jobs", "-1"), "-1 is not in the range x>=0"),
        (("--threads", "0"), "0 is not in the range x>=1"),
        (("--engine", "spark"), "'spark' is not one of 'local', 'ray'"),
    ],
)
def test_cli_tune_bad_engine_options_are_one_line(price_file, tmp_path, cli, args, message):
    code, stdout, err = cli("tune", "--data", price_file, "--out", tmp_path / "study", *args)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "study").exists()


def test_cli_tune_passes_the_engine_options_to_the_runner(price_file, tmp_path, cli, monkeypatch):
    asked = []

    def runner(*args):
        asked.append(args)
        return SequentialRunner(jobs=2)

    monkeypatch.setattr(tune_module, "make_runner", runner)
    out = tmp_path / "study"
    args = ("--trials", 2, "--epochs", 1, "--jobs", 2, "--engine", "local", "--threads", 2, "--seed", 5, "-q")
    code, stdout, err = cli("tune", "--data", price_file, "--model", "gru", "--out", out, *args)
    assert code == 0, err
    assert asked == [("local", 2, 2, None, 5)]  # engine, jobs, threads, address, seed
    assert "of the study's 2 (2 complete" in stdout


def test_the_command_line_asks_in_the_batches_of_the_api():
    from stockrnn.tune_command import tune_command

    assert next(p for p in tune_command.params if p.name == "batch").default == tune_module.BATCH


def test_the_study_folder_follows_the_output_rules(price_file, tmp_path):
    """A study is written only into a new, empty or stockrnn folder (it gets the mark), never over a
    user's files nor into the data's own folder; a refused run leaves the folder as it was."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "best.json").write_text('{"my": "own file"}')
    with pytest.raises(ConfigError, match="no .stockrnn mark"):
        search(price_file, user, 1)
    assert sorted(p.name for p in user.iterdir()) == ["best.json"]
    with pytest.raises(ConfigError, match="holds the input"):
        search(price_file, tmp_path, 1)  # the folder the data file is in
    search(price_file, tmp_path / "study", 1)
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == [".stockrnn", "best.json", "study.log"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "bogus"}, "bad value for device: 'bogus'"),
        ({"device": "cuda:7"}, "--device cuda:7"),
        ({"seed": -1}, "--seed must be 0 .. 4294967295, not -1"),
        ({"seed": 2**32}, "--seed must be 0 .. 4294967295"),
    ],
)
def test_bad_settings_stop_before_the_study_is_made(price_file, tmp_path, kwargs, message):
    if kwargs.get("device", "").startswith("cuda") and torch_has_cuda():
        pytest.skip("this machine has CUDA: cuda:7 may exist")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        search(price_file, tmp_path / "study", 1, **kwargs)
    assert not (tmp_path / "study").exists()


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_refused_resume_leaves_the_journal_as_it_was(price_file, tmp_path):
    search(price_file, tmp_path / "study", 1)
    path = tmp_path / "study" / "study.log"
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="another --epochs"):
        search(price_file, tmp_path / "study", 2, resume=True, epochs=3)
    assert path.read_bytes() == before


def test_a_first_ctrl_c_before_any_trial_completed_is_exit_130_not_an_error(price_file, tmp_path, monkeypatch):
    """It was a ConfigError (exit 2, "error:"); like a panel with nothing scored, it is Interrupted."""
    from stockrnn.errors import Interrupted

    stop = StopToken()

    def interrupted_first(params, spec, report=None, stop_=None):
        stop.request()
        return run_trial(params, spec, report, stop_)

    monkeypatch.setattr(tune_module, "run_trial", interrupted_first)
    with pytest.raises(Interrupted, match="interrupted before any trial completed") as caught:
        search(price_file, tmp_path / "study", 2, stop=stop)
    assert caught.value.exit_code == 130


def test_a_target_flat_over_the_validation_days_is_refused_before_the_study_folder(tmp_path):
    """A trial found it after its training, with the study folder made and a failed trial in it."""
    frame = make_prices(600)
    frame.iloc[TEST_ROW - 70 : TEST_ROW, :4] = 150.0
    path = tmp_path / "flat.csv"
    frame.round(4).to_csv(path)
    with pytest.raises(ConfigError, match="the target does not move over the validation period"):
        search(path, tmp_path / "study", 1)
    assert not (tmp_path / "study").exists()


def test_resume_refuses_changed_data_at_the_same_path_and_another_allow_gaps(price_file, tmp_path):
    """The spec kept the path only: new prices under the old name resumed, mixing trials scored on
    two data sets; --allow-gaps was not compared either. A change in the test period is no change."""
    search(price_file, tmp_path / "study", 1)
    path = tmp_path / "study" / "study.log"
    before = path.read_bytes()
    frame = make_prices(600).round(4)
    frame.iloc[TEST_ROW - 30, :4] *= 1.01  # a validation row revised
    frame.to_csv(price_file)
    with pytest.raises(ConfigError, match=r"another version of the data \(its rows before the test start differ\)"):
        search(price_file, tmp_path / "study", 2, resume=True)
    with pytest.raises(ConfigError, match=r"another --allow-gaps \(allow_gaps False, not True\)"):
        make_prices(600).round(4).to_csv(price_file)
        search(price_file, tmp_path / "study", 2, resume=True, allow_gaps=True)
    assert path.read_bytes() == before
    frame = make_prices(600).round(4)
    frame.iloc[TEST_ROW + 5 :, :4] *= 3.0  # the test period: no trial reads it
    frame.to_csv(price_file)
    assert len(search(price_file, tmp_path / "study", 2, resume=True).trials) == 2


@pytest.mark.parametrize("damage", ["cut", "empty", "garbage", "list", "empty record", "unknown op"])
def test_a_damaged_study_file_is_one_line_exit_2_and_never_written(price_file, tmp_path, cli, damage):
    """A cut last record was read past and then appended to (the study lost for good, then a
    JSONDecodeError, exit 1); an empty or foreign file was a KeyError (exit 1)."""
    search(price_file, tmp_path / "study", 1)
    path = tmp_path / "study" / "study.log"
    data = path.read_bytes()
    damaged = {
        "cut": data[:-20], "empty": b"", "garbage": b"garbage\n", "list": b"[1, 2]\n" + data,
        "empty record": data + b"{}\n", "unknown op": data + b'{"op_code": 99, "worker_id": "x"}\n',
    }[damage]  # fmt: skip
    path.write_bytes(damaged)
    code, out, err = cli(
        "tune", "--data", price_file, "--model", "gru", "--out", tmp_path / "study", "--trials", "2", "--resume",
        "--test-start", first_test_day(price_file), "--epochs", "2", "--val-days", "60",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert "study.log: the study file " in err and "start a new study with another --out" in err
    assert path.read_bytes() == damaged


def test_a_study_an_earlier_stockrnn_made_is_refused_for_what_it_lacks(price_file, tmp_path):
    """It kept no fingerprint of its data, and the refusal blamed the data ("another version")."""
    from stockrnn.tune_study import open_study

    spec = trial_spec(str(price_file), "gru", "high", first_test_day(price_file), 60, 2, 0, "cpu", False, SPACE)
    open_study(tmp_path / "study", False, {k: v for k, v in spec.items() if k != "fingerprint"}, 0)
    with pytest.raises(
        ConfigError, match=r"keeps no fingerprint \(an earlier stockrnn made it\); it cannot be resumed"
    ):
        search(price_file, tmp_path / "study", 1, resume=True)
