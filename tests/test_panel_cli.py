"""The CLI on a folder of tickers: `evaluate` (a panel run, exit 2 / --skip-bad / exit 4), the
runner options (same numbers whatever the engine and jobs), `fit` of a global model and `predict`."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from stockrnn.errors import TrainingError
from stockrnn.panel import load_panel
from stockrnn.panel_eval import evaluate_panel
from stockrnn.runners import SequentialRunner, make_runner

from conftest import TINY, make_prices

TICKERS = ("AAA", "BBB", "CCC", "DDD")
TEST_START = f"{pd.bdate_range('2020-01-01', periods=300)[200]:%Y-%m-%d}"
TINY_ARGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
MODELS = "ridge,ridge_local,lstm_local,persistence"


def evaluate(cli, folder: Path, out: Path, *extra):
    return cli("evaluate", "--data", folder, "--test-start", TEST_START, "--models", MODELS, "--out", out,
               "--quiet", "--no-report", *TINY_ARGS, *extra)  # fmt: skip


def test_evaluate_on_a_folder_writes_and_prints_the_panel(cli, folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = evaluate(cli, folder, out)
    assert code == 0, err
    assert {*TICKERS, "summary.csv", "panel.json", "rank_ic.csv"} <= {p.name for p in out.iterdir()}
    assert {"metrics.json", "predictions.csv", "forecast.png"} <= {p.name for p in (out / "CCC").iterdir()}
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(set(summary["ticker"])) == list(TICKERS)
    assert list(summary.loc[summary["ticker"] == "AAA", "model"]) == MODELS.split(",")
    panel = json.loads((out / "panel.json").read_text())
    assert set(panel["models"]) == set(MODELS.split(",")) and panel["failed"] == [] and panel["skipped"] == []
    assert panel["settings"]["runner"] == {"engine": "local", "jobs": 1, "threads": 1}
    assert panel["settings"]["models"]["ridge"]["windows"] > 0
    assert "pers." in stdout and "…" not in stdout and "lstm_local" in stdout and "4 tickers evaluated" in stdout


def test_a_bad_file_stops_the_folder_naming_it(cli, folder, tmp_path):
    (folder / "BAD.csv").write_text("Date,Open,High,Low,Close,Volume\n2020-01-01,1,2,x,1,5\n")
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out)
    assert code == 2 and str(folder / "BAD.csv") in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_skip_bad_lists_the_file_in_panel_json_and_the_output(cli, folder, tmp_path):
    (folder / "BAD.csv").write_text("Date,Open,High,Low,Close,Volume\n2020-01-01,1,2,x,1,5\n")
    out = tmp_path / "out"
    code, stdout, err = evaluate(cli, folder, out, "--skip-bad")
    assert code == 0, err
    skipped = json.loads((out / "panel.json").read_text())["skipped"]
    assert [s["ticker"] for s in skipped] == ["BAD"] and "BAD.csv" in skipped[0]["reason"]
    assert "skipped BAD:" in stdout


def test_a_failing_ticker_exits_4_and_keeps_the_others(cli, folder, tmp_path, monkeypatch):
    import stockrnn.panel_eval

    real = stockrnn.panel_eval.evaluate

    def evaluate_or_fail(prices, *args, **kwargs):
        if prices.name == "CCC":
            raise TrainingError("the lstm_local model gave a non-finite loss at epoch 2")
        return real(prices, *args, **kwargs)

    monkeypatch.setattr(stockrnn.panel_eval, "evaluate", evaluate_or_fail)
    out = tmp_path / "out"
    code, stdout, err = evaluate(cli, folder, out)
    assert code == 4, err
    panel = json.loads((out / "panel.json").read_text())
    assert panel["failed"] == [{"unit": "CCC", "error": "the lstm_local model gave a non-finite loss at epoch 2"}]
    assert sorted(set(pd.read_csv(out / "summary.csv")["ticker"])) == ["AAA", "BBB", "DDD"]
    assert (out / "DDD" / "metrics.json").exists() and not (out / "CCC").exists()
    assert "failed CCC" in stdout


def test_two_jobs_give_the_same_summary_as_one(cli, folder, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert evaluate(cli, folder, one)[0] == 0
    code, _, err = evaluate(cli, folder, two, "--jobs", "2")
    assert code == 0, err
    assert (two / "summary.csv").read_text() == (one / "summary.csv").read_text()
    assert (two / "rank_ic.csv").read_text() == (one / "rank_ic.csv").read_text()
    # the ticker folders, written by two processes, hold what one process writes
    written = {p.name for p in one.iterdir() if p.is_dir()}
    assert written and written == {p.name for p in two.iterdir() if p.is_dir()}
    for ticker in written:
        assert (two / ticker / "predictions.csv").read_text() == (one / ticker / "predictions.csv").read_text()
        assert (two / ticker / "forecast.png").stat().st_size > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_global_models_fit_side_by_side_with_two_jobs_give_the_same_numbers(cli, folder, tmp_path):
    """With --jobs 2 the global lstm, gru and ridge are runner units of their own (fitted in
    worker processes side by side): the bits of the one-job run."""
    runs, models = {}, "lstm,gru,ridge,persistence"
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        code, _, err = cli("evaluate", "--data", folder, "--test-start", TEST_START, "--models", models,
                           "--out", out, "--quiet", "--no-report", *TINY_ARGS, "--jobs", jobs)  # fmt: skip
        assert code == 0, err
        runs[jobs] = out
    assert (runs["2"] / "summary.csv").read_text() == (runs["1"] / "summary.csv").read_text()
    assert (runs["2"] / "rank_ic.csv").read_text() == (runs["1"] / "rank_ic.csv").read_text()
    models = json.loads((runs["2"] / "panel.json").read_text())["settings"]["models"]
    assert {"lstm", "gru", "ridge"} <= set(models)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'stockrnn[ray]'")
def test_evaluate_panel_on_ray_is_the_same_as_sequential(folder, monkeypatch):
    """(The local engine: test_two_jobs_give_the_same_summary_as_one.)"""
    # Ray's workers import stockrnn from PYTHONPATH: this checkout's source, as an absolute path.
    paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    panel = load_panel(folder)
    options = dict(models=f"lstm,{MODELS}", test_start=TEST_START, **TINY)  # two global models: fitted as units too
    alone = evaluate_panel(panel, runner=SequentialRunner(), **options)
    with make_runner("ray", jobs=2) as runner:
        spread = evaluate_panel(panel, runner=runner, **options)
    pd.testing.assert_frame_equal(spread.summary, alone.summary, check_exact=True)
    pd.testing.assert_frame_equal(spread.rank_ic, alone.rank_ic, check_exact=True)
    assert {"lstm", "ridge"} <= set(spread.summary["model"])  # both global fits came back from the workers
    import ray

    assert not ray.is_initialized()  # the embedded Ray (loopback only) stopped with the runner


def test_address_needs_the_ray_engine(cli, folder, tmp_path):
    code, _, err = evaluate(cli, folder, tmp_path / "out", "--address", "127.0.0.1:6379")
    assert code == 2 and err.strip() == "stockrnn: error: --address joins a Ray cluster: it needs --engine ray"
    code, _, err = cli("evaluate", "--data", folder / "AAA.csv", "--models", "persistence", "--address", "h:1")
    assert code == 2 and err.strip() == "stockrnn: error: --address joins a Ray cluster: it needs --engine ray"


def test_fit_on_a_folder_then_predict_a_folder_and_a_file(cli, folder, tmp_path):
    model = tmp_path / "model"
    code, stdout, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    assert json.loads((model / "model.json").read_text())["model"] == "global_ridge"
    assert "global ridge fitted on 4 tickers" in stdout and "DDD" in stdout

    table = tmp_path / "forecast.csv"
    code, stdout, err = cli("predict", model, "--data", folder, "--out", table)
    assert code == 0, err
    forecast = pd.read_csv(table)
    assert list(forecast.columns) == ["date", "ticker", "forecast", "lo80", "hi80", "lo95", "hi95"]
    assert list(forecast["ticker"]) == list(TICKERS)
    assert (forecast["lo95"] <= forecast["forecast"]).all() and (forecast["forecast"] <= forecast["hi95"]).all()

    new = tmp_path / "NEW.csv"  # a ticker the model never saw
    make_prices(120, seed=99, start="2020-11-02").to_csv(new)  # reaches past the training end
    code, stdout, err = cli("predict", model, "--data", new)
    assert code == 0, err
    assert "global ridge forecast of high" in stdout and "NEW" in stdout
    make_prices(120, seed=99).to_csv(new)  # ends in June 2020, before the training end: refused, as for one ticker
    code, stdout, err = cli("predict", model, "--data", new)
    assert code == 2 and "NEW.csv: the data ends on 2020-06-16, before the global ridge model's training end" in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = cli("predict", model, "--data", folder, "--out", tmp_path / "dir")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "dir" / "forecast.csv").equals(forecast)
    html = (tmp_path / "dir" / "report.html").read_text()  # the forecast table of every ticker
    assert "stockrnn forecast" in html and all(f">{t}<" in html for t in forecast["ticker"].unique())


def test_predict_skips_a_seen_ticker_whose_file_lost_a_column(cli, folder, tmp_path):
    """Its training statistics were found, its inputs never checked: exit 1 (an internal error) for
    the folder and for the file; now the ticker is skipped and listed, or refused naming its file."""
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    data = tmp_path / "later"
    data.mkdir()
    for ticker in TICKERS:
        frame = make_prices(300, seed=10 + TICKERS.index(ticker))
        (frame.drop(columns="Volume") if ticker == "BBB" else frame).to_csv(data / f"{ticker}.csv")
    code, stdout, err = cli("predict", model, "--data", data, "--out", tmp_path / "forecast.csv")
    assert code == 0, err
    assert sorted(set(pd.read_csv(tmp_path / "forecast.csv")["ticker"])) == ["AAA", "CCC", "DDD"]
    assert f"skipped BBB: {data / 'BBB.csv'}: the data has inputs" in " ".join(stdout.split())  # wrapped at 120
    code, _, err = cli("predict", model, "--data", data / "BBB.csv")
    assert code == 2 and err.startswith(f"stockrnn: error: {data / 'BBB.csv'}: the data has inputs"), err


def test_predict_warns_when_a_seen_tickers_training_rows_were_revised(cli, folder, tmp_path):
    """As a single model does: the global model kept no per-ticker fingerprint, so data revised over
    the training span (prices doubled in a year) was forecast from without a word."""
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    code, _, err = cli("predict", model, "--data", folder)
    assert code == 0 and "warning" not in err, err  # the same rows: no warning
    revised = tmp_path / "revised"
    revised.mkdir()
    for ticker in TICKERS:
        frame = pd.read_csv(folder / f"{ticker}.csv", index_col=0)
        if ticker == "CCC":
            frame.iloc[20:40, :4] *= 2
        frame.to_csv(revised / f"{ticker}.csv")
    code, _, err = cli("predict", model, "--data", revised, "--out", tmp_path / "f.csv")
    assert code == 0 and err.count("stockrnn: warning:") == 1, err
    assert "the training rows of 1 ticker(s) differ" in err and err.strip().endswith("(revised or other data): CCC")
    code, _, err = cli("predict", model, "--data", revised / "CCC.csv")
    assert code == 0 and "differ from those the global ridge model was trained on for CCC" in err, err
    code, _, err = cli("predict", model, "--data", revised / "AAA.csv")
    assert code == 0 and "warning" not in err, err


def test_a_global_model_refuses_a_target_that_is_no_price_before_any_work(cli, folder, tmp_path):
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out, "--target", "volume")
    assert code == 2 and "a global ridge model forecasts a price as its ratio to the close" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_target_no_file_has_is_named_in_the_one_line_error(cli, folder, tmp_path):
    """The headline said 'no ticker has 11 rows before the test start', as if the files were short."""
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out, "--target", "adj_close", "--models", "ridge_local,persistence")
    assert code == 2 and "no ticker can train before the test start" in err, err
    assert "AAA: no column for target 'adj_close'" in err and "rows before" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_fit_with_a_train_end_judges_the_rows_up_to_it(cli, folder, tmp_path):
    """A bad row after --train-end left its ticker out of the fit: who trains hung on a later row."""
    frame = pd.read_csv(folder / "DDD.csv", index_col=0)
    frame.iloc[290, frame.columns.get_loc("Volume")] = -1
    frame.to_csv(folder / "DDD.csv")
    common = ("fit", "--data", folder, "--model", "ridge", "--window", "5", "--quiet")
    code, stdout, err = cli(*common, "--train-end", TEST_START, "--save", tmp_path / "m1")
    assert code == 0 and "fitted on 4 tickers" in stdout and "0 skipped" in stdout, err
    assert "trained on, not forecast DDD" in stdout and "negative volume -1" in stdout  # its file fails later
    table = stdout.split("next-day forecast")[1].split("Saved")[0]
    assert "CCC" in table and "DDD" not in table  # no forecast from the rows before its bad row
    code, stdout, err = cli(*common, "--save", tmp_path / "m2")  # every row: DDD's bad row is a training row
    assert code == 0 and "fitted on 3 tickers" in stdout, err
    assert "skipped DDD" in stdout and "negative volume -1" in stdout
    code, stdout, err = cli("predict", tmp_path / "m1", "--data", folder)  # forecasts need the latest rows
    assert code == 0 and "skipped DDD" in stdout and "DDD" not in stdout.split("skipped DDD")[0], err


def test_a_folder_whose_every_file_has_a_late_bad_row_is_one_line_exit_2(cli, folder, tmp_path):
    """Every ticker held at loading: the default test start took the dates of the kept ones (none)
    and failed with an internal error (exit 1) in evaluate, backtest and tune."""
    for ticker in TICKERS:
        frame = pd.read_csv(folder / f"{ticker}.csv", index_col=0)
        frame.iloc[290, frame.columns.get_loc("Volume")] = -1
        frame.to_csv(folder / f"{ticker}.csv")
    tiny = ["--models", "ridge_local,persistence", "--quiet", "--no-report", *TINY_ARGS]
    for command in (
        ["evaluate", "--data", folder, "--out", tmp_path / "e", *tiny],
        ["tune", "--data", folder, "--trials", "1", "--epochs", "1", "--out", tmp_path / "t"],
    ):
        code, _, err = cli(*command)
        assert code == 2 and err.count("\n") == 1 and "internal error" not in err, (command[0], err)
        assert "negative volume -1" in err or command[0] == "tune", err  # tune: its spans are too short
    assert not {p.name for p in tmp_path.iterdir()} & {"e", "t"}
    code, _, err = cli("backtest", "--data", folder, "--refit-every", "100", "--out", tmp_path / "b", *tiny)
    assert code == 0, err  # scored in the folds before the bad row, left out of the fold that holds it
    panel = json.loads((tmp_path / "b" / "panel.json").read_text())
    assert [f["tickers_evaluated"] for f in panel["folds"]] == [4, 4, 0]
    left = {e["ticker"]: e for e in panel["left_out_of_folds"]}
    assert set(left) == set(TICKERS) and all(e["folds"] == [3] for e in left.values())
    assert "a bad row in the test span" in left["AAA"]["reason"]


def test_a_single_ticker_model_refuses_a_folder(cli, folder, tmp_path):
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", folder / "AAA.csv", "--model", "ridge", "--window", "5", "--save", model)
    assert code == 0, err
    code, _, err = cli("predict", model, "--data", folder)
    assert code == 2 and "single-ticker model" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("fit", "--data", folder, "--model", "persistence", "--save", tmp_path / "p")
    assert code == 2 and "a folder fits a global lstm, gru, ridge" in err


def test_backtest_on_a_folder_refits_at_each_date_and_scores_all_folds(cli, folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = cli("backtest", "--data", folder, "--test-start", TEST_START, "--refit-every", "40", "--models",
                            "ridge,ridge_local", "--out", out, "--quiet", *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    assert (out / "report.html").exists() and "Folds" in (out / "BBB" / "report.html").read_text()
    assert (out / "BBB" / "folds.png").stat().st_size > 0  # as a single-file backtest writes
    panel = json.loads((out / "panel.json").read_text())
    folds = panel["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3] and folds[0]["test_start"] == TEST_START
    assert all(f["train_end"] < f["test_start"] for f in folds) and folds[1]["train_end"] > folds[0]["train_end"]
    metrics = json.loads((out / "BBB" / "metrics.json").read_text())
    assert [f["fold"] for f in metrics["folds"]] == [1, 2, 3]
    assert {"train_start", "train_end", "test_start", "test_end", "train_rows"} <= set(metrics["folds"][0])
    assert metrics["models"]["ridge"]["n"] == 100  # every test day of the three folds, scored together
    assert sum(f["models"]["ridge"]["n"] for f in metrics["folds"]) == 100
    summary = pd.read_csv(out / "summary.csv").set_index(["ticker", "model"])
    assert summary.loc[("BBB", "ridge"), "rmse"] == pytest.approx(metrics["models"]["ridge"]["rmse"], rel=1e-5)
    assert "3 folds" in stdout


def test_panel_configs_global_defaults_preset_file_then_options(tmp_path):
    from stockrnn.config import ModelConfig
    from stockrnn.global_models import GLOBAL_DEFAULTS
    from stockrnn.panel_command import panel_config

    options = {"window": None, "units": 5, "dropout": 0.0, "seed": 0, "horizon": 1, "preset_file": None}
    config = panel_config("lstm", None, "close", dict(options))
    assert (config.window, config.units, config.batch_size) == (GLOBAL_DEFAULTS["window"], 5, 512)
    local = panel_config("ridge_local", None, "close", dict(options))  # the single-ticker defaults
    assert config.target == "close" and (local.window, local.batch_size) == (ModelConfig().window, 64)
    preset = tmp_path / "best.json"
    preset.write_text(json.dumps({"window": 7, "units": 3, "dropout": 0.2}))
    config = panel_config("gru", None, "high", {**options, "preset_file": str(preset)})
    assert (config.window, config.units, config.dropout, config.batch_size) == (7, 5, 0.0, 512)


def test_a_first_ctrl_c_during_the_tickers_keeps_the_finished_ones(cli, folder, tmp_path, monkeypatch):
    import stockrnn.panel_eval

    real = stockrnn.panel_eval.evaluate

    def ctrl_c_during_bbb(prices, *args, stop, **kwargs):
        if prices.name == "BBB":
            stop.request()  # what a first Ctrl-C does to the CLI's token
        return real(prices, *args, stop=stop, **kwargs)

    monkeypatch.setattr(stockrnn.panel_eval, "evaluate", ctrl_c_during_bbb)
    out = tmp_path / "out"
    code, stdout, err = evaluate(cli, folder, out)
    assert code == 0, err
    panel = json.loads((out / "panel.json").read_text())
    assert panel["settings"]["interrupted"] is True and panel["settings"]["tickers_evaluated"] == 2
    assert sorted(set(pd.read_csv(out / "summary.csv")["ticker"])) == ["AAA", "BBB"]
    skipped = {s["ticker"]: s["reason"] for s in panel["skipped"]}
    assert skipped["CCC"] == "not evaluated: the run was interrupted (Ctrl-C)"
    assert "interrupted" in stdout
    # the ticker finished before the press is whole; the one whose training it cut short says so
    assert json.loads((out / "AAA" / "metrics.json").read_text())["interrupted"] is False
    assert json.loads((out / "BBB" / "metrics.json").read_text())["interrupted"] is True


NOTHING_KEPT = "stockrnn: interrupted before any ticker was scored: nothing written"


def ctrl_c_in_global_fit(monkeypatch, call: int) -> None:
    """A first Ctrl-C at the start of the `call`-th global fit (of a run, or of a backtest's folds)."""
    import stockrnn.panel_eval

    real, calls = stockrnn.panel_eval.make_global_model, []

    def stopping(name, config):
        model = real(name, config)
        fit = model.fit_panel

        def fit_panel(panel, start, end, on_epoch=None, stop=None, runner=None):
            calls.append(name)
            if len(calls) == call:
                stop.request()  # what a first Ctrl-C does to the CLI's token
            return fit(panel, start, end, on_epoch, stop, runner)

        model.fit_panel = fit_panel
        return model

    monkeypatch.setattr(stockrnn.panel_eval, "make_global_model", stopping)


def test_a_first_ctrl_c_during_the_global_fit_leaves_nothing_to_keep(cli, folder, tmp_path, monkeypatch):
    """Every ticker is cancelled: an empty summary is no result, so it ends as a second press would."""
    ctrl_c_in_global_fit(monkeypatch, 1)
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out)
    assert code == 130 and err.strip().splitlines() == [NOTHING_KEPT]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_a_first_ctrl_c_in_a_later_folds_global_fit_keeps_the_folds_before(cli, folder, tmp_path, monkeypatch):
    ctrl_c_in_global_fit(monkeypatch, 2)  # the second fold's global ridge
    out = tmp_path / "out"
    code, _, err = cli("backtest", "--data", folder, "--test-start", TEST_START, "--refit-every", "40", "--models",
                       "ridge,ridge_local", "--out", out, "--quiet", "--no-report", *TINY_ARGS)  # fmt: skip
    assert code == 0, err
    panel = json.loads((out / "panel.json").read_text())
    assert [f["fold"] for f in panel["folds"]] == [1] and panel["settings"]["interrupted"] is True
    assert panel["settings"]["tickers_evaluated"] == 4 and panel["folds"][0]["tickers_evaluated"] == 4
    metrics = json.loads((out / "BBB" / "metrics.json").read_text())
    assert [f["fold"] for f in metrics["folds"]] == [1] and metrics["interrupted"] is True


def test_a_first_ctrl_c_in_the_first_folds_global_fit_leaves_nothing_to_keep(cli, folder, tmp_path, monkeypatch):
    ctrl_c_in_global_fit(monkeypatch, 1)
    out = tmp_path / "out"
    code, _, err = cli("backtest", "--data", folder, "--test-start", TEST_START, "--refit-every", "40", "--models",
                       "ridge,ridge_local", "--out", out, "--quiet", "--no-report", *TINY_ARGS)  # fmt: skip
    assert code == 130 and err.strip().splitlines() == [NOTHING_KEPT]
    assert not out.exists()


def test_a_second_ctrl_c_during_the_tickers_writes_nothing(cli, folder, tmp_path, monkeypatch):
    import stockrnn.panel_eval

    def second_ctrl_c(prices, *args, **kwargs):
        raise KeyboardInterrupt  # what the second Ctrl-C raises

    monkeypatch.setattr(stockrnn.panel_eval, "evaluate", second_ctrl_c)
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out)
    assert code == 130 and err.strip().splitlines()[-1] == "stockrnn: interrupted"
    assert not out.exists()


def test_global_epochs_report_their_time():
    """The plain progress line of a global network shows its seconds (it showed 0.0 s)."""
    from stockrnn.global_models import global_config, make_global

    panel = load_panel({t: make_prices(200, seed=i) for i, t in enumerate(TICKERS)})
    infos = []
    make_global("lstm", global_config("lstm", **TINY)).fit_panel(panel, on_epoch=infos.append)
    assert infos[-1].last and infos[-1].seconds > 0 and infos[-1].seconds >= infos[0].seconds


def test_an_output_folder_holding_other_files_is_refused_before_any_work(cli, folder, tmp_path, monkeypatch):
    """--out or --save would replace the folder: never one of the user's files (the data, say)."""
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = evaluate(cli, folder, folder)  # --out is the data folder
    assert code == 2 and "holds files (AAA.csv, BBB.csv, CCC.csv, ...) but no .stockrnn mark" in err
    assert len(err.strip().splitlines()) == 1 and {p.name: p.read_bytes() for p in folder.iterdir()} == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = cli("fit", "--data", folder, "--model", "ridge", "--save", mine, "--quiet")
    assert code == 2 and "mine: holds files (notes.txt) but no .stockrnn mark" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    out = tmp_path / "out"  # an earlier output, and an empty folder, are replaced
    (tmp_path / "empty").mkdir()
    for target in (out, out, tmp_path / "empty"):
        code, _, err = evaluate(cli, folder, target, "--models", "ridge_local")
        assert code == 0, err
    assert (tmp_path / "empty" / "panel.json").exists()
    (tmp_path / "a_file").write_text("x")
    code, _, err = evaluate(cli, folder, tmp_path / "a_file" / "out")
    assert code == 2 and "a_file is a file, not a folder" in err
    monkeypatch.chdir(out)
    for target in (".", ".."):
        code, _, err = evaluate(cli, folder, target)
        assert code == 2 and f"{target}: is the current folder or holds it" in err


def test_an_output_that_is_or_holds_an_input_is_refused_before_it_is_replaced(cli, folder, tmp_path):
    """An earlier output folder may be replaced, but not when the data or the model now lives in it,
    and predict --out must not write over the data file or the model's folder."""
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out, "--models", "ridge_local")
    assert code == 0, err
    data = out / "mydata"  # the user keeps prices inside the earlier output
    data.mkdir()
    for ticker in TICKERS:
        (data / f"{ticker}.csv").write_bytes((folder / f"{ticker}.csv").read_bytes())
    code, _, err = evaluate(cli, data, out, "--models", "ridge_local")
    assert code == 2 and f"{out}: holds the input {data} and would be replaced" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in data.iterdir()) == [f"{t}.csv" for t in TICKERS]
    one = data / "AAA.csv"
    code, _, err = cli("fit", "--data", one, "--model", "ridge", "--window", "5", "--save", out, "--quiet")
    assert code == 2 and "holds the input" in err and one.exists()
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    before = one.read_bytes()
    for target, kind in ((one, "is"), (model, "is"), (out, "holds")):
        code, _, err = cli("predict", model, "--data", one, "--out", target)
        assert code == 2 and f"{target}: {kind} the input" in err, (target, err)
    assert one.read_bytes() == before and (model / "model.json").exists()
    code, _, err = cli("predict", model, "--data", one, "--out", out / "forecast")  # beside the inputs: fine
    assert code == 0, err


def test_global_fits_in_this_process_compute_on_the_runners_threads(folder, monkeypatch):
    """A unit in a worker computes on the runner's threads; a global fit here used the caller's
    (torch's default: every core), so an API run's numbers depended on the engine."""
    import torch
    from threadpoolctl import threadpool_info

    import stockrnn.panel_eval

    real, seen = stockrnn.panel_eval.make_global_model, []

    def recording(name, config):
        model = real(name, config)
        fit = model.fit_panel

        def fit_panel(*args, **kwargs):
            seen.append((torch.get_num_threads(), {i["num_threads"] for i in threadpool_info()}))
            return fit(*args, **kwargs)

        model.fit_panel = fit_panel
        return model

    monkeypatch.setattr(stockrnn.panel_eval, "make_global_model", recording)
    torch.set_num_threads(2)
    evaluate_panel(load_panel(folder), "ridge,persistence", test_start=TEST_START, window=5)
    evaluate_panel(load_panel(folder), "ridge,persistence", test_start=TEST_START, window=5,
                   runner=SequentialRunner(threads=2))  # fmt: skip
    assert seen == [(1, {1}), (2, {2})] and torch.get_num_threads() == 2
