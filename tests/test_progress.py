"""Progress people can read: member k of n and its own epochs, the ticker in folder runs, and
plain lines when stderr is not a terminal (a log file, a pipe, the test's capture)."""

from __future__ import annotations

import re

from stockrnn import progress
from stockrnn.config import ModelConfig
from stockrnn.progress import TrainingProgress
from stockrnn.training import EpochInfo

from conftest import make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--batch-size", "16"]


def test_members_and_their_epochs(capsys):
    tracker = TrainingProgress(quiet=False)
    on_epoch = tracker.callback("lstm", ModelConfig(epochs=100, ensemble=3))
    with tracker:
        on_epoch(EpochInfo(0, 1, 0.5, 0.4, False, 0.1))
        on_epoch(EpochInfo(0, 2, 0.3, 0.2, False, 0.2))
        on_epoch(EpochInfo(0, 3, 0.2, 0.25, False, 0.3))
        on_epoch(EpochInfo(0, 100, 0.1, 0.3, True, 9.0))
        on_epoch(EpochInfo(1, 1, 0.4, 0.35, False, 0.1))
        on_epoch(EpochInfo(1, 7, 0.3, 0.31, True, 2.5))
    task = tracker.bars.tasks[0]
    assert task.description == "lstm 2/3" and task.fields["status"] == "epoch 7/100 (early stopping)"
    assert task.fields["loss"] == "loss 0.3  val 0.31"
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "lstm 1/3: 100/100 epochs, best val loss 0.2, 9.0 s",
        "lstm 2/3: 7/100 epochs (early stopping), best val loss 0.31, 2.5 s",
    ]


def test_a_progress_line_a_minute_at_most(capsys):
    clock = iter([0.0, 30.0, 61.0, 62.0, 130.0, 131.0])
    tracker = TrainingProgress(quiet=False, clock=lambda: next(clock))  # reads the clock: 0
    on_epoch = tracker.callback("gru", ModelConfig(epochs=50, ensemble=1, val_fraction=0.0))
    on_epoch(EpochInfo(0, 1, 0.5, None, False))  # 30 s: nothing
    on_epoch(EpochInfo(0, 2, 0.4, None, False))  # 61 s: a line (and the clock read again)
    on_epoch(EpochInfo(0, 3, 0.3, None, False))  # 130 s: a line
    assert capsys.readouterr().err.splitlines() == ["gru 1/1: epoch 2/50, loss 0.4", "gru 1/1: epoch 3/50, loss 0.3"]


def test_quiet_prints_nothing(capsys):
    tracker = TrainingProgress(quiet=True)
    tracker.callback("lstm", ModelConfig(epochs=2, ensemble=1))(EpochInfo(0, 2, 0.5, 0.4, True, 1.0))
    assert capsys.readouterr().err == ""


def test_fit_into_a_log_prints_a_line_per_member(cli, tmp_path):
    make_prices(120).to_csv(tmp_path / "AAA.csv")
    code, _, err = cli("fit", "--data", tmp_path / "AAA.csv", "--save", tmp_path / "m", "--epochs", "3", *TINY_ARGS)
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 3, err
    for k, line in enumerate(lines, start=1):
        assert re.fullmatch(rf"lstm {k}/3: [1-3]/3 epochs( \(early stopping\))?, best val loss \S+, \d+\.\d s", line)


def test_folder_runs_show_loading_global_epochs_and_tickers(cli, tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    make_prices(150, seed=1).to_csv(folder / "AAA.csv")
    code, _, err = cli(
        "evaluate", "--data", folder, "--out", tmp_path / "out", "--models", "gru", "--preset", "quick",
        "--epochs", "2", "--test-start", "2020-06-01", *TINY_ARGS,
    )  # fmt: skip
    assert code == 0, err
    lines = err.strip().splitlines()
    assert lines[0] == "files loaded: 1/1" and lines[2:] == ["gru (global) fitted", "tickers evaluated: 1/1"], err
    assert re.fullmatch(r"global gru 1/1: [12]/2 epochs.*, best val loss \S+, \d+\.\d s", lines[1])


def test_backtest_folds_into_a_log_are_plain_lines(capsys):
    folds = progress.FoldProgress(quiet=False)
    folds.update(0, 2, None)
    folds.update(1, 2, {"test_start": "2020-01-01", "test_end": "2020-03-31"})
    folds.update(2, 2, {"test_start": "2020-04-01", "test_end": "2020-06-30"})
    folds.stop()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" done")[0] for line in lines] == [
        "fold 1/2 (2020-01-01 .. 2020-03-31)",
        "fold 2/2 (2020-04-01 .. 2020-06-30)",
    ]
