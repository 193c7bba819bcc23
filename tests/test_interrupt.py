"""Nothing half written: runs killed at any point leave the previous complete output or none;
Ctrl-C once finishes the run marked interrupted, twice exits 130 at once; a non-finite loss or
forecast stops with exit 3 and never reaches an output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stockrnn import TrainingError, load_prices, make_forecaster, model_config
from stockrnn.files import MARK_TEXT, OUTPUT_MARK, atomic_dir, atomic_file, clean_stale
from stockrnn.interrupt import StopToken, two_stage_ctrl_c
from stockrnn.models import RecurrentNet
from stockrnn.training import train
from stockrnn.windows import WindowDataset

from conftest import EVALUATE_FILES, TINY, make_prices

TINY_ARGS = ["--window", "5", "--layers", "1", "--units", "4", "--dropout", "0", "--quiet"]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# -- atomic writes in-process -------------------------------------------------------------------
def test_atomic_dir_keeps_the_previous_output_when_writing_fails(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "metrics.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "metrics.json").write_text("new, half")
        raise RuntimeError("crash mid-write")
    assert tree(target) == {"metrics.json": b"old", OUTPUT_MARK: MARK_TEXT.encode()} and hidden(tmp_path) == []


def test_atomic_file_keeps_the_previous_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as tmp:
        tmp.write_text("new, ha")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n" and hidden(tmp_path) == []
    with atomic_file(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and hidden(tmp_path) == []


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_dead_process_are_cleaned_and_a_moved_output_restored(tmp_path):
    pid = dead_pid()
    target = tmp_path / "out"
    (tmp_path / f".out.tmp-{pid}-abc").mkdir()
    (tmp_path / f".out.tmp-{pid}-abc" / "half.json").write_text("{")
    (tmp_path / f".out.old-{pid}-abc").mkdir()
    (tmp_path / f".out.old-{pid}-abc" / "metrics.json").write_text("{}")
    (tmp_path / f".out.tmp-{os.getpid()}-live").mkdir()  # a live process's work is left alone
    clean_stale(target)
    assert tree(target) == {"metrics.json": b"{}"}
    assert hidden(tmp_path) == [f".out.tmp-{os.getpid()}-live"]


# -- killed subprocesses ------------------------------------------------------------------------
def run_python(script: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture
def data_with_previous_output(tmp_path, cli) -> tuple[Path, Path, dict[str, bytes]]:
    data = tmp_path / "AAA.csv"
    make_prices(200, seed=2).to_csv(data)
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", data, "--test-start", "2020-09-01", "--models", "persistence",
                       "--out", out, "--quiet")  # fmt: skip
    assert code == 0, err
    return data, out, tree(out)


def evaluate_script(data: Path, out: Path, patch: str = "", epochs: int = 2) -> str:
    args = ["evaluate", "--data", str(data), "--test-start", "2020-09-01", "--models", "lstm,ridge",
            "--epochs", str(epochs), "--out", str(out), *TINY_ARGS]  # fmt: skip
    return f"{patch}\nfrom stockrnn.cli import main\nraise SystemExit(main({args!r}))\n"


def test_killed_during_training_leaves_the_previous_output(data_with_previous_output, tmp_path):
    data, out, before = data_with_previous_output
    process = run_python(evaluate_script(data, out, epochs=100_000), tmp_path)
    assert "rows" in process.stdout.readline()  # the data summary: training starts next
    time.sleep(1.0)
    process.kill()
    process.wait(timeout=30)
    assert tree(out) == before and hidden(tmp_path) == []


def test_killed_mid_write_leaves_the_previous_output(data_with_previous_output, tmp_path, cli):
    data, out, before = data_with_previous_output
    patch = """
        import os, signal
        import stockrnn.outputs as outputs
        def die(*args, **kwargs):  # metrics.json and predictions.csv are written by now
            os.kill(os.getpid(), signal.SIGKILL)
        outputs.forecast_figure = die
    """
    process = run_python(evaluate_script(data, out, textwrap.dedent(patch)), tmp_path)
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL
    assert tree(out) == before
    (leftover,) = hidden(tmp_path)  # the dead run's temporary folder, half full
    assert leftover.startswith(".out.tmp-") and (tmp_path / leftover / "metrics.json").exists()
    code, _, err = cli("evaluate", "--data", data, "--test-start", "2020-09-01", "--models", "ridge",
                       "--window", "5", "--out", out, "--quiet")  # fmt: skip
    assert code == 0, err
    assert hidden(tmp_path) == [] and json.loads((out / "metrics.json").read_text())["models"].keys() == {
        "ridge",
        "persistence",
    }


def test_killed_between_the_two_renames_loses_nothing(data_with_previous_output, tmp_path):
    data, out, before = data_with_previous_output
    patch = """
        import os, signal, pathlib
        rename = pathlib.Path.rename
        calls = []
        def rename_then_die(self, target):
            calls.append(target)
            if len(calls) == 2:  # the old output is moved aside; the new one is not in place yet
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(self, target)
        pathlib.Path.rename = rename_then_die
    """
    process = run_python(evaluate_script(data, out, textwrap.dedent(patch)), tmp_path)
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # none at the target: never a mix of old and new
    clean_stale(out)  # what the next write to `out` does first
    assert tree(out) == before and hidden(tmp_path) == []


def test_predict_killed_mid_write_keeps_the_previous_forecast_file(tmp_path):
    data = tmp_path / "AAA.csv"
    make_prices(100).to_csv(data)
    model = make_forecaster("ridge", model_config("ridge", window=5)).fit(load_prices(data))
    model.save(tmp_path / "model")
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("date,forecast\n2020-05-20,1.0\n")
    patch = """
        import os, signal
        import pandas as pd
        def half_then_die(self, path, *args, **kwargs):
            open(path, "w").write("date,fore")
            os.kill(os.getpid(), signal.SIGKILL)
        pd.DataFrame.to_csv = half_then_die
    """
    args = ["predict", str(tmp_path / "model"), "--data", str(data), "--out", str(forecast)]
    script = f"{textwrap.dedent(patch)}\nfrom stockrnn.cli import main\nraise SystemExit(main({args!r}))\n"
    process = run_python(script, tmp_path)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert forecast.read_text() == "date,forecast\n2020-05-20,1.0\n"


# -- Ctrl-C -------------------------------------------------------------------------------------
def test_first_ctrl_c_stops_training_and_finishes_the_run_marked_interrupted(tmp_path):
    data = tmp_path / "AAA.csv"
    make_prices(200, seed=2).to_csv(data)
    out = tmp_path / "out"
    process = run_python(evaluate_script(data, out, epochs=100_000), tmp_path)
    assert "rows" in process.stdout.readline()
    time.sleep(1.0)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 60
    assert "stopping training after the current batch" in stderr and "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    assert np.isfinite(metrics["models"]["lstm"]["rmse"])
    assert {p.name for p in out.iterdir()} == EVALUATE_FILES


def test_second_ctrl_c_exits_130_at_once_leaving_nothing(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    for i in range(8):  # after the first Ctrl-C the run still has tickers to finish
        make_prices(200, seed=i).to_csv(folder / f"T{i}.csv")
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(folder), "--test-start", "2020-09-01", "--models", "lstm_local,ridge",
            "--epochs", "100000", "--lr", "1e-4", "--out", str(out), *TINY_ARGS[:-1]]  # fmt: skip
    process = run_python(f"from stockrnn.cli import main\nraise SystemExit(main({args!r}))\n", tmp_path)

    def wait_for(words: str) -> None:  # stderr (not a terminal) gets plain progress lines
        for _ in range(200):
            line = process.stderr.readline()
            if words in line:
                return
            assert line, f"stderr ended before {words!r}"
        raise AssertionError(f"no {words!r} on stderr")

    wait_for("files loaded")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    wait_for("stopping training")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "stockrnn: interrupted" and "Traceback" not in stderr
    assert not out.exists() and hidden(tmp_path) == []


def test_two_stage_ctrl_c_yields_its_own_token_and_restores_the_handler():
    """No process-wide flag: each block has its token; the first Ctrl-C sets it, the second raises."""
    notes, before = [], signal.getsignal(signal.SIGINT)
    with two_stage_ctrl_c(lambda: notes.append(1)) as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGINT)
        assert stop.requested and notes == [1]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    with two_stage_ctrl_c(lambda: None) as again:
        assert not again.requested and again is not stop


def test_a_second_ctrl_c_that_python_drops_still_ends_the_run_leaving_nothing(tmp_path, capsys, monkeypatch):
    """Python drops an exception raised inside `__del__` or a weakref callback (a signal handler can
    run there: the import system's module locks have such callbacks): the aborted token raises at
    its next read, no output is renamed into place, the CLI exits 130, and nothing is printed."""
    from stockrnn import cli

    class Dropper:  # CPython calls __del__ at once when the last reference goes
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)

    dropped = []
    with two_stage_ctrl_c(lambda: None) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested and not stop.aborted
        hook = sys.unraisablehook
        sys.unraisablehook = lambda u: dropped.append(u.exc_type)  # to see that Python did drop it
        try:
            Dropper()
        finally:
            sys.unraisablehook = hook
        assert dropped == [KeyboardInterrupt] and stop.aborted  # the handler's raise went nowhere
        with pytest.raises(KeyboardInterrupt):
            stop.requested  # noqa: B018 - the read is the point
        with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("new")
        with pytest.raises(KeyboardInterrupt), atomic_file(tmp_path / "forecast.csv") as tmp:
            tmp.write_text("new")
        Dropper()  # with the block's own hook: dropped without a word
    assert list(tmp_path.iterdir()) == [] and "Traceback" not in capsys.readouterr().err
    with atomic_dir(tmp_path / "out") as tmp:  # outside the block nothing is aborted
        (tmp / "a.txt").write_text("new")
    assert (tmp_path / "out" / "a.txt").read_text() == "new"

    def command_that_drops_the_second_press(*args, **kwargs) -> int:
        signal.raise_signal(signal.SIGINT)
        Dropper()
        return 0

    monkeypatch.setattr(cli.cli, "main", command_that_drops_the_second_press)
    assert cli.main(["evaluate"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "stockrnn: interrupted" and "Traceback" not in err


def test_a_token_sent_to_another_process_is_a_fresh_one():
    """A worker gets no driver token: the driver cancels units instead of reaching into them."""
    import pickle

    stop = StopToken()
    stop.request()
    copy = pickle.loads(pickle.dumps(stop))
    assert isinstance(copy, StopToken) and not copy.requested and stop.requested


def test_an_interrupt_request_stops_training_after_the_current_batch():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(40, 1)).astype(np.float32)
    origins = np.arange(4, 39)
    data = WindowDataset(inputs, inputs[origins + 1], origins, 5)
    config = model_config("lstm", **{**TINY, "epochs": 50, "val_fraction": 0.0})
    net = RecurrentNet("lstm", 1, 4, 1, 0.0)
    batches = []
    net.register_forward_hook(lambda *args: batches.append(1))

    stop, infos = StopToken(), []

    def on_epoch(info) -> None:
        infos.append(info)
        if info.epoch == 2:
            stop.request()

    losses = train(net, data, config, torch.device("cpu"), on_epoch=on_epoch, stop=stop)
    assert len(losses) == 2 and len(batches) == 2 * 3  # 35 windows in batches of 16
    assert not any(info.interrupted for info in infos)  # asked after the second epoch's report
    batches.clear()
    losses = train(net, data, config, torch.device("cpu"), infos.append, stop=stop)  # still requested
    assert len(losses) == 1 and len(batches) == 1  # one batch, then stop
    assert infos[-1].last and infos[-1].interrupted  # the progress display says why it ended
    assert len(train(net, data, config, torch.device("cpu"))) == 50  # no token given: one that is never set


# -- training health ------------------------------------------------------------------------------
def test_a_nan_forecast_is_never_returned():
    prices = load_prices(make_prices(120))
    model = make_forecaster("gru", model_config("gru", **TINY)).fit(prices)
    with torch.no_grad():
        model.network_.members[0].head.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match="non-finite forecast from 2020-06-16.*check the data.*--lr"):
        model.predict(prices)
    with pytest.raises(TrainingError, match="gru model gave a non-finite forecast"):
        model.rolling(prices, "2020-06-01")


def test_a_network_gone_bad_exits_3_and_writes_nothing(cli, tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    make_prices(200).to_csv(path)
    forward = RecurrentNet.forward

    def nan_when_evaluating(self, x):  # trains normally, then forecasts NaN
        y = forward(self, x)
        return y if self.training else y * float("nan")

    monkeypatch.setattr(RecurrentNet, "forward", nan_when_evaluating)
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--test-start", "2020-09-01", "--models", "lstm",
                       "--epochs", "2", "--out", out, *TINY_ARGS)  # fmt: skip
    assert code == 3, err
    assert len(err.strip().splitlines()) == 1 and "lstm model gave a non-finite forecast" in err
    assert "check the data" in err and "lower --lr" in err
    assert not out.exists() and hidden(tmp_path) == []


def test_nan_loss_names_epoch_and_cause(cli, tmp_path):
    path = tmp_path / "p.csv"
    make_prices(200).to_csv(path)
    out = tmp_path / "out"
    code, _, err = cli("fit", "--data", path, "--model", "gru", "--optimizer", "sgd", "--lr", "1e30",
                       "--epochs", "3", "--save", out, *TINY_ARGS)  # fmt: skip
    assert code == 3 and "training gru failed at epoch 1" in err and "lower --lr" in err and "data" in err
    assert not out.exists() and hidden(tmp_path) == []
    frame = pd.read_csv(path)
    assert len(frame) == 200
