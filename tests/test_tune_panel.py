"""`stockrnn tune` on a folder: the trials tune the global network of the panel, scored on the
panel's validation tail; the test period is never read; resume; best.json sets the global models
of `fit/evaluate --data FOLDER`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from stockrnn.errors import ConfigError
from stockrnn.global_models import GLOBAL_DEFAULTS
from stockrnn.panel_command import panel_config
from stockrnn.tune import tune

from conftest import make_prices

SPACE = {
    "window": CategoricalDistribution([3, 5]),
    "units": CategoricalDistribution([4, 8]),
    "layers": IntDistribution(1, 1),
    "dropout": FloatDistribution(0.0, 0.2),
    "lr": FloatDistribution(1e-3, 1e-2, log=True),
    "batch_size": CategoricalDistribution([32, 64]),
}
ROWS, TEST_ROW, VAL_DAYS = 400, 300, 40
TICKERS = ("AAA", "BBB", "CCC")
TEST_START = make_prices(ROWS).index[TEST_ROW]
SEARCH = dict(epochs=2, val_days=VAL_DAYS, space=SPACE, epoch_windows=256, test_start=f"{TEST_START:%Y-%m-%d}")


def write_panel(folder: Path, perturb_from: pd.Timestamp | None = None) -> Path:
    """Three tickers; from `perturb_from` on, every price of a row scaled by its own factor."""
    folder.mkdir()
    for i, ticker in enumerate(TICKERS):
        frame = make_prices(ROWS, seed=i)
        if perturb_from is not None:
            rows = frame.index >= perturb_from
            factor = np.random.default_rng(9 + i).uniform(0.9, 1.1, rows.sum())
            frame.loc[rows, ["Open", "High", "Low", "Close"]] *= factor[:, None]
        frame.round(4).to_csv(folder / f"{ticker}.csv")
    return folder


@pytest.fixture
def panel_folder(tmp_path: Path) -> Path:
    return write_panel(tmp_path / "panel")


def test_tune_on_a_folder_writes_a_preset_for_the_global_network(panel_folder, tmp_path):
    result = tune(str(panel_folder), "gru", 3, tmp_path / "study", **SEARCH)
    document = json.loads((tmp_path / "study" / "best.json").read_text())
    assert document["model"] == "gru" and document["study"]["global"] is True
    assert set(document["settings"]) == set(SPACE) | {"epochs"}
    score = document["score"]
    assert score["objective"] == pytest.approx(min(t["value"] for t in result.trials))
    assert score["skill"] == pytest.approx(1 - score["objective"])
    assert (score["tickers"], score["days"]) == (3, 3 * VAL_DAYS)  # every ticker's validation tail
    assert score["val_end"] < f"{TEST_START:%Y-%m-%d}" == document["study"]["test_start"]


def test_resume_on_a_folder_keeps_the_trials_done(panel_folder, tmp_path):
    first = tune(str(panel_folder), "gru", 2, tmp_path / "study", **SEARCH)
    resumed = tune(str(panel_folder), "gru", 3, tmp_path / "study", resume=True, **SEARCH)
    assert len(resumed.trials) == 3 and resumed.trials[:2] == first.trials


def test_the_test_period_is_never_read_and_the_validation_tail_is(tmp_path):
    values = {}
    for name, start in (("plain", None), ("test", TEST_START), ("validation", TEST_START - pd.offsets.BDay(20))):
        folder = write_panel(tmp_path / name, perturb_from=start)
        values[name] = [t["value"] for t in tune(str(folder), "lstm", 2, tmp_path / f"study-{name}", **SEARCH).trials]
    assert values["test"] == pytest.approx(values["plain"], rel=1e-12)
    assert values["validation"] != pytest.approx(values["plain"], rel=1e-6)  # the check can fail


def test_the_best_preset_sets_the_global_models_of_fit_on_a_folder(cli, panel_folder, tmp_path):
    result = tune(str(panel_folder), "gru", 2, tmp_path / "study", **SEARCH)
    best = tmp_path / "study" / "best.json"
    config = panel_config("gru", None, "high", {"preset_file": str(best), "units": None, "seed": 0})
    tuned = {key: getattr(config, key) for key in result.settings}
    assert tuned == result.settings and config.window != GLOBAL_DEFAULTS["window"]
    assert config.patience == GLOBAL_DEFAULTS["patience"]  # the global defaults under the file's settings
    code, _, err = cli("fit", "--data", panel_folder, "--model", "gru", "--preset-file", best, "--epochs", "1",
                       "--train-end", result.study["train_end"], "--save", tmp_path / "model", "--quiet")  # fmt: skip
    assert code == 0, err
    saved = json.loads((tmp_path / "model" / "model.json").read_text())["config"]
    assert {k: saved[k] for k in SPACE} == {k: result.settings[k] for k in SPACE} and saved["epochs"] == 1


def tune_cli(cli, folder: Path, out: Path, monkeypatch, trials: int, epochs: int):
    """`stockrnn tune` of the global lstm on `folder` with the small space and short epochs."""
    import stockrnn.tune as tune_module
    import stockrnn.tune_panel

    monkeypatch.setattr(tune_module, "GLOBAL_SPACE", SPACE)
    monkeypatch.setattr(stockrnn.tune_panel, "EPOCH_WINDOWS", 256)
    return cli("tune", "--data", folder, "--model", "lstm", "--trials", str(trials), "--epochs", str(epochs),
               "--val-days", str(VAL_DAYS), "--test-start", SEARCH["test_start"], "--out", out, "--quiet")  # fmt: skip


def test_cli_tune_on_a_folder_prints_the_panel_score(cli, panel_folder, tmp_path, monkeypatch):
    code, stdout, err = tune_cli(cli, panel_folder, tmp_path / "study", monkeypatch, trials=2, epochs=2)
    assert code == 0, err
    assert "(3 tickers, 120 ticker-days): median skill" in stdout and "best.json" in stdout
    assert json.loads((tmp_path / "study" / "best.json").read_text())["study"]["global"] is True


class PruneAt:
    """A stand-in for an Optuna trial whose pruner says stop from epoch `epoch` on."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.reported = epoch, []

    def report(self, value: float, step: int) -> None:
        self.reported.append(step)

    def should_prune(self) -> bool:
        return self.reported[-1] >= self.epoch


def test_a_pruned_panel_trial_stops_training_and_counts_as_pruned(panel_folder, tmp_path, monkeypatch):
    import stockrnn.tune as tune_module

    def prune_trial_one(trial):
        return tune_module_reporter(PruneAt(1 if trial.number == 1 else 10**6))

    tune_module_reporter = tune_module.pruning_reporter
    monkeypatch.setattr(tune_module, "pruning_reporter", prune_trial_one)
    result = tune(str(panel_folder), "gru", 3, tmp_path / "study", **{**SEARCH, "epochs": 4})
    assert [t["state"] for t in result.trials] == ["complete", "pruned", "complete"]
    assert result.study["pruned"] == 1 and result.study["finished"] == 3


def test_parallel_panel_trials_in_worker_processes_equal_the_same_batches_here(panel_folder, tmp_path, monkeypatch):
    import stockrnn.tune as tune_module
    from stockrnn.runners import SequentialRunner

    local = tune(str(panel_folder), "gru", 2, tmp_path / "local", jobs=2, engine="local", **SEARCH)
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: SequentialRunner(jobs=2))
    here = tune(str(panel_folder), "gru", 2, tmp_path / "here", jobs=2, **SEARCH)
    assert [t["state"] for t in local.trials] == ["complete"] * 2
    assert local.trials == here.trials and local.trials[0]["params"] != local.trials[1]["params"]


def test_cli_tune_on_a_folder_too_short_for_its_validation_is_one_line(cli, panel_folder, tmp_path):
    code, _, err = cli("tune", "--data", panel_folder, "--val-days", "290", "--test-start", SEARCH["test_start"],
                       "--out", tmp_path / "study")  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "300 dates before the test start, 290 of them for validation, leave 10 to fit on" in err
    assert not (tmp_path / "study").exists()


def test_a_test_start_after_the_panel_is_refused_as_on_a_file(panel_folder, tmp_path):
    from stockrnn.errors import ConfigError

    with pytest.raises(ConfigError, match="test start 2030-01-01 is outside the data"):
        tune(str(panel_folder), "gru", 1, tmp_path / "study", **{**SEARCH, "test_start": "2030-01-01"})
    assert not (tmp_path / "study").exists()


def test_a_target_no_global_model_forecasts_is_refused_before_the_study_folder(cli, panel_folder, tmp_path):
    """It was refused inside the first trial, after the study folder was made (a rerun then asked
    for --resume)."""
    code, _, err = cli("tune", "--data", panel_folder, "--target", "volume", "--trials", "1",
                       "--test-start", SEARCH["test_start"], "--out", tmp_path / "study")  # fmt: skip
    assert code == 2 and "a global lstm model forecasts a price as its ratio to the close" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "study").exists()


def test_the_folders_tickers_not_scored_are_listed_in_best_json_and_printed(cli, tmp_path, monkeypatch):
    """A ticker that ends before the validation tail (and one that cannot be read as prices) was
    dropped without a word: "3 tickers" and nothing else."""
    folder = write_panel(tmp_path / "panel")
    make_prices(TEST_ROW - VAL_DAYS - 10, seed=7).round(4).to_csv(folder / "OLD.csv")  # ends before validation
    make_prices(ROWS, seed=8).assign(Close=100.0, Open=100.0, High=100.0, Low=100.0).to_csv(folder / "FLAT.csv")
    code, stdout, err = tune_cli(cli, folder, tmp_path / "study", monkeypatch, trials=1, epochs=1)
    assert code == 0, err
    skipped = {
        e["ticker"]: e["reason"] for e in json.loads((tmp_path / "study" / "best.json").read_text())["score"]["skipped"]
    }
    assert set(skipped) == {"OLD", "FLAT"}, skipped
    assert skipped["OLD"] == "no validation day to score (ended or repaired)"
    assert "(3 tickers, 120 ticker-days)" in stdout and "skipped OLD: no validation day" in stdout
    assert "skipped FLAT:" in stdout


def test_a_panel_flat_over_its_validation_days_is_refused_before_the_study_folder(cli, tmp_path):
    """A trial found it after its training: exit 2 saying no ticker had validation days, with a
    half-made study folder (.stockrnn, study.log) left behind."""
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, ticker in enumerate(TICKERS):
        frame = make_prices(ROWS, seed=i)
        frame.iloc[TEST_ROW - VAL_DAYS - 5 : TEST_ROW, :4] = 50.0 + i
        frame.to_csv(folder / f"{ticker}.csv")
    out = tmp_path / "study"
    code, _, err = cli(
        "tune", "--data", folder, "--model", "gru", "--out", out, "--trials", "1", "--epochs", "1",
        "--val-days", str(VAL_DAYS), "--test-start", f"{TEST_START:%Y-%m-%d}",
    )  # fmt: skip
    assert code == 2 and "no ticker's high moves over the validation days" in err and err.count("\n") == 1, err
    assert not out.exists()
    make_prices(ROWS, seed=7).to_csv(folder / "MOVES.csv")  # one ticker that moves: a study to run
    assert tune(str(folder), "gru", 1, out, **SEARCH).score["tickers"] == 1


def test_resume_on_a_folder_refuses_a_revised_training_row(panel_folder, tmp_path):
    tune(str(panel_folder), "gru", 1, tmp_path / "study", **SEARCH)
    frame = pd.read_csv(panel_folder / "BBB.csv", index_col=0)
    frame.iloc[TEST_ROW - 100, :4] *= 1.02
    frame.to_csv(panel_folder / "BBB.csv")
    with pytest.raises(ConfigError, match="another version of the data"):
        tune(str(panel_folder), "gru", 2, tmp_path / "study", resume=True, **SEARCH)
