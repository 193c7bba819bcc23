"""evaluate_panel and write_panel on synthetic tickers, with a stand-in global model (a pooled AR(1)
on the target's log returns, fitted in NumPy) implementing the global-model interface."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from stockrnn.config import ModelConfig, model_config
from stockrnn.errors import ConfigError, TrainingError
from stockrnn.evaluate import evaluate
from stockrnn.forecaster import make_forecaster
from stockrnn.panel import load_panel
from stockrnn.panel_eval import DEFAULT_PANEL_MODELS, GlobalMember, evaluate_panel, panel_models
from stockrnn.panel_metrics import SUMMARY_COLUMNS
from stockrnn.panel_outputs import write_panel
from stockrnn.panel_tables import print_panel

from conftest import TINY, make_prices

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")
PANEL_KEYS = {
    "tickers", "beats_persistence", "median_skill", "mean_skill", "beats_ridge_local", "wilcoxon_p_vs_ridge_local",
    "beats_ridge", "wilcoxon_p_vs_ridge", "rank_ic_mean", "rank_ic_t", "rank_ic_positive_days",
}  # fmt: skip


class PooledAR:
    """Stand-in global model: next log return of the target = a + b * last one, pooled over tickers."""

    def __init__(self, name: str, config: ModelConfig | None = None, fail_on: str | None = None) -> None:
        self.name, self.config, self.fail_on = name, config or ModelConfig(), fail_on
        self.fits: list[dict] = []

    def fit_panel(self, panel, train_start=None, train_end=None, on_epoch=None, stop=None, runner=None):
        x, y = [], []
        for prices in panel.values():
            r = np.diff(np.log(prices.frame.loc[train_start:train_end, self.config.target].to_numpy()))
            x.append(r[:-1])
            y.append(r[1:])
        self.b_, self.a_ = np.polyfit(np.concatenate(x), np.concatenate(y), 1)
        last_seen = max(p.frame.loc[train_start:train_end].index[-1] for p in panel.values())
        self.fits.append({"tickers": list(panel), "last_seen": last_seen})
        return self

    def cannot_forecast(self, prices):
        return None  # any ticker with a target column

    def rolling(self, prices, start, end=None):
        if prices.name == self.fail_on:
            raise TrainingError(f"the {self.name} model gave a non-finite forecast on {prices.name}")
        index = prices.index
        first = index.searchsorted(pd.Timestamp(start))
        last = len(index) - 1 if end is None else index.searchsorted(pd.Timestamp(end), "right") - 1
        origins = np.arange(first, last + 1) - 1
        x = prices.frame[self.config.target].to_numpy()
        step = x[origins] * np.exp(self.a_ + self.b_ * np.log(x[origins] / x[origins - 1]))
        return pd.DataFrame({"step_1": step}, index=pd.DatetimeIndex(index[origins], name="origin"))

    def predict(self, prices, horizon=1):
        raise NotImplementedError


def factory(made: dict, fail_on: str | None = None):
    def make(name, config):
        made[name] = PooledAR(name, config, fail_on)
        return made[name]

    return make


@pytest.fixture(autouse=True)
def global_models(monkeypatch) -> dict:
    """The stand-in as `stockrnn.global_models` (make_global, global_config); returns the models it made."""
    made: dict = {}
    module = types.ModuleType("stockrnn.global_models")
    module.make_global = factory(made)
    module.global_config = lambda name, preset=None, **overrides: model_config(name, preset, **overrides)
    monkeypatch.setitem(sys.modules, "stockrnn.global_models", module)
    return made


@pytest.fixture(scope="module")
def panel():
    return load_panel({t: make_prices(300, seed=i) for i, t in enumerate(TICKERS)})


def run(panel, made=None, fail_on=None, **kwargs):
    made = {} if made is None else made
    kwargs.setdefault("models", "lstm,ridge,ridge_local,persistence")
    return evaluate_panel(
        panel, test_start=panel["AAA"].index[250], global_factory=factory(made, fail_on), **TINY, **kwargs
    )


def test_panel_models_default_and_checks():
    assert panel_models(None) == list(DEFAULT_PANEL_MODELS)
    assert panel_models("lstm_local,ridge") == ["lstm_local", "ridge", "persistence"]
    with pytest.raises(ConfigError, match="unknown model 'rnn'"):
        panel_models("lstm,rnn")


def test_global_models_fit_once_before_the_test_start_and_forecast_every_ticker(panel):
    made, progress = {}, []
    result = run(panel, made, on_progress=lambda unit, done, total: progress.append((unit, done, total)))
    start = panel["AAA"].index[250]
    for name in ("lstm", "ridge"):
        assert len(made[name].fits) == 1 and made[name].fits[0]["tickers"] == list(TICKERS)
        assert made[name].fits[0]["last_seen"] < start  # no test day in the global fit
    assert list(result.evaluations) == list(TICKERS) and result.exit_code == 0
    assert result.evaluations["CCC"].models == ["lstm", "ridge", "ridge_local", "persistence"]
    assert progress[-1] == ("tickers", 7, 7) and progress[0] == ("lstm (global)", 1, 7)
    assert result.panel["settings"]["models"]["ridge_local"]["kind"] == "local"
    assert result.panel["settings"]["train_end"] == f"{panel['AAA'].index[249]:%Y-%m-%d}"  # the last training day


def test_ridge_local_is_the_single_ticker_ridge(panel):
    result = run(panel)
    config = replace(ModelConfig(), **TINY)
    single = evaluate(panel["BBB"], [make_forecaster("ridge", config)], test_start=panel["BBB"].index[250])
    rows = result.summary.set_index(["ticker", "model"])
    assert rows.loc[("BBB", "ridge_local"), "rmse"] == pytest.approx(single.metrics["models"]["ridge"]["rmse"])


def test_summary_panel_json_and_rank_ic(panel):
    result = run(panel)
    assert tuple(result.summary.columns) == SUMMARY_COLUMNS
    assert len(result.summary) == len(TICKERS) * 4
    assert set(result.panel) == {"models", "skipped", "failed", "settings", "versions"}
    assert list(result.panel["models"]) == ["lstm", "ridge", "ridge_local", "persistence"]
    for scores in result.panel["models"].values():
        assert set(scores) >= PANEL_KEYS
    lstm = result.panel["models"]["lstm"]
    assert lstm["tickers"] == 5 and lstm["wilcoxon_p_vs_ridge_local"] is not None
    assert lstm["beats_ridge"] == 0.0 and lstm["wilcoxon_p_vs_ridge"] is None  # same stand-in: equal RMSE
    assert len(result.rank_ic) == 50 and list(result.rank_ic.columns) == list(result.panel["models"])
    assert result.panel["settings"]["rank_ic"]["days_left_out"] == 0
    assert lstm["rank_ic_mean"] == pytest.approx(result.rank_ic["lstm"].mean())


def test_write_panel_outputs(panel, tmp_path):
    few = TICKERS[:3]  # fewer figures to draw; the panel figures need no rank IC
    result = run(load_panel({t: panel[t].frame for t in few}))
    out = write_panel(result, tmp_path / "run")
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and len(summary) == 12
    content = json.loads((out / "panel.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert content["models"]["ridge_local"]["wilcoxon_p_vs_ridge_local"] is None
    assert content["settings"]["rank_ic"]["days_left_out"] == 50  # 3 tickers a day: under 5, no rank IC
    assert content["models"]["lstm"]["rank_ic_mean"] is None
    assert content["settings"]["test_start"] == panel["AAA"].index[250].strftime("%Y-%m-%d")
    for ticker in few:
        files = {"metrics.json", "predictions.csv", "forecast.png", "report.html"}
        assert {p.name for p in (out / ticker).iterdir()} >= files
        page = (out / ticker / "report.html").read_text()
        assert "plotly.js" not in page and 'id="lag-chart" class="figure"' in page  # the small static page
        assert (out / ticker / "report.html").stat().st_size < 1_000_000
    assert f'href="{few[0]}/report.html"' in (out / "report.html").read_text()
    for figure in ("skill_distribution.png", "rmse_vs_ridge_local.png"):
        assert (out / figure).stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left beside it


def test_failing_ticker_is_listed_and_the_others_kept(panel):
    result = run(panel, fail_on="CCC")
    assert result.failed == [{"unit": "CCC", "error": "the lstm model gave a non-finite forecast on CCC"}]
    assert list(result.evaluations) == ["AAA", "BBB", "DDD", "EEE"] and result.exit_code == 4
    assert set(result.summary["ticker"]) == {"AAA", "BBB", "DDD", "EEE"}


def test_failed_global_fit_is_listed_and_the_rest_run(panel):
    def make(name, config):
        model = PooledAR(name, config)
        if name == "ridge":
            model.fit_panel = lambda *a, **k: (_ for _ in ()).throw(TrainingError("ridge diverged at epoch 3"))
        return model

    result = evaluate_panel(
        panel, "lstm,ridge,ridge_local", test_start=panel["AAA"].index[250], global_factory=make, **TINY
    )
    assert result.failed == [{"unit": "ridge (global fit)", "error": "ridge diverged at epoch 3"}]
    assert list(result.panel["models"]) == ["lstm", "ridge_local", "persistence"]
    assert result.panel["models"]["lstm"]["beats_ridge"] is None


def test_short_ticker_is_skipped_and_printed(panel):
    frames = {t: panel[t].frame for t in TICKERS}
    start = panel["AAA"].index[250]
    frames["NEW"] = make_prices(60, seed=9, start=pd.bdate_range(end=start, periods=4)[0])  # 3 rows before
    result = run(load_panel(frames), models="lstm,ridge_local")
    skipped = result.panel["skipped"]
    assert skipped[0]["ticker"] == "NEW" and skipped[0]["reason"].startswith("3 rows before the test start")
    assert "NEW" not in result.evaluations
    with pytest.raises(ConfigError, match="test end 'soon' is not a date"):
        run(panel, test_end="soon")
    console = Console(width=200, record=True)
    print_panel(console, result)
    text = console.export_text()
    assert "ridge_local" in text and "skipped NEW: 3 rows before" in text and "rank IC" in text


def test_default_factory_is_global_models_make_global(panel, global_models):
    result = evaluate_panel(panel, "gru,persistence", test_start=panel["AAA"].index[250], **TINY)
    assert list(global_models) == ["gru"] and result.evaluations["AAA"].models == ["gru", "persistence"]
    assert global_models["gru"].config.window == TINY["window"]  # overrides reach global_config
    assert result.panel["settings"]["models"]["gru"]["kind"] == "global"


def test_global_member_refuses_a_ticker_whose_training_ended_before_the_global_fit(panel):
    prices = panel["AAA"]
    member = GlobalMember(PooledAR("lstm"), train_end=prices.index[200])
    assert member.fit(prices, train_end=prices.index[200]) is member
    with pytest.raises(ConfigError, match="trained on rows up to"):
        member.fit(prices, train_end=prices.index[150])


def test_who_trains_the_global_models_depends_on_no_row_after_the_test_start(panel):
    """A ticker delisted before the test start is not scored but still trains the global models, so
    the others' forecasts are those of a panel where it lives on into the test span."""
    start = panel["AAA"].index[250]
    frames = {t: panel[t].frame for t in TICKERS}
    gone, listed = {}, {}
    results = [
        run(load_panel({**frames, "OLD": make_prices(300, seed=8).iloc[:rows]}), made, models="lstm,ridge_local")
        for rows, made in ((250, gone), (260, listed))  # data ends the day before the test start, or 10 days in
    ]
    assert gone["lstm"].fits[0]["tickers"] == [*TICKERS, "OLD"] == listed["lstm"].fits[0]["tickers"]
    reason = {s["ticker"]: s["reason"] for s in results[0].panel["skipped"]}["OLD"]
    assert "OLD" not in results[0].evaluations and reason.startswith("no rows in the test span (data ends")
    assert start > panel["AAA"].index[249] and "OLD" in results[1].evaluations
    for t in TICKERS:
        np.testing.assert_allclose(
            results[0].evaluations[t].predictions["lstm"], results[1].evaluations[t].predictions["lstm"], rtol=1e-12
        )


def test_backtest_scores_no_ticker_with_a_global_model_whose_fit_failed_in_a_fold(panel, monkeypatch):
    """Scored over its other folds only, that model would rest on the tickers those folds hold."""
    from stockrnn.panel_backtest import backtest_panel

    index = panel["AAA"].index

    def make(name, config):
        model = PooledAR(name, config)
        if name == "ridge":
            fit = model.fit_panel

            def failing(p, train_start=None, train_end=None, *args, **kwargs):
                if train_end >= index[259]:
                    raise TrainingError("ridge diverged at epoch 3")
                return fit(p, train_start, train_end, *args, **kwargs)

            model.fit_panel = failing
        return model

    monkeypatch.setattr(sys.modules["stockrnn.global_models"], "make_global", make)
    frames = {**{t: panel[t].frame for t in TICKERS}, "END": make_prices(258, seed=8)}  # ends in fold 2
    result = backtest_panel(load_panel(frames), "lstm,ridge,ridge_local", index[250], refit_every=5, **TINY)
    assert [f["fold"] for f in result.panel["folds"]][:3] == [1, 2, 3]
    for fold in result.panel["folds"]:  # each fold's training end is the trading day before its test start
        assert fold["train_end"] == f"{index[index.searchsorted(pd.Timestamp(fold['test_start'])) - 1]:%Y-%m-%d}"
    units = [f["unit"] for f in result.failed]
    assert "ridge (global fit) (fold 3)" in units and "ridge (global fit) (fold 1)" not in units
    assert {
        "unit": "ridge (global)",
        "error": "not scored: its fit failed in fold 3, 4, 5, 6, 7, 8, 9, 10",
    } in result.failed
    assert "ridge" not in result.panel["models"] and set(result.summary["model"]) == {
        "lstm",
        "ridge_local",
        "persistence",
    }
    assert all("ridge" not in e.models for e in result.evaluations.values()) and "END" in result.evaluations
    assert result.panel["models"]["lstm"]["tickers"] == 6


def test_a_ticker_without_a_close_is_scored_with_its_last_target_price_as_the_ic_base(panel):
    frames = {**{t: panel[t].frame for t in TICKERS}, "NOC": make_prices(300, seed=9).drop(columns="Close")}
    result = run(load_panel(frames), models="ridge_local")
    assert "NOC" in result.evaluations and not result.failed
    assert result.panel["models"]["ridge_local"]["tickers"] == 6 and result.panel["settings"]["rank_ic"]["days"] > 0


def test_a_train_start_after_the_test_start_says_so(panel):
    with pytest.raises(ConfigError, match="train start 2021-01-04 is not before the test start"):
        run(panel, train_start="2021-01-04")


def test_a_global_model_gets_no_warning_about_one_tickers_few_training_windows(panel):
    start = panel["AAA"].index[250]
    frames = {**{t: panel[t].frame for t in TICKERS}, "NEW": make_prices(90, seed=9, start=panel["AAA"].index[210])}
    warnings = run(load_panel(frames)).evaluations["NEW"].metrics["data"]["warnings"]
    assert any(w.startswith("ridge_local trained on only") for w in warnings), warnings
    assert not any(w.startswith(("lstm trained", "ridge trained")) for w in warnings) and start > frames["NEW"].index[0]


def test_backtest_lists_each_ticker_left_out_of_some_folds_with_the_folds_and_why(panel):
    """A ticker scored in some folds only was listed nowhere (only its `n` showed it): each fold now
    lists who it left out, and `left_out_of_folds` each such ticker with its folds and first reason."""
    from stockrnn.panel_backtest import backtest_panel

    index = panel["AAA"].index
    frames = {
        **{t: panel[t].frame for t in TICKERS[:3]},
        "END": make_prices(258, seed=8),  # ends in fold 2
        "NEW": make_prices(53, seed=9, start=f"{index[247]:%Y-%m-%d}"),  # too short before fold 1
    }
    result = backtest_panel(load_panel(frames), "ridge_local", index[250], refit_every=10, **TINY)
    folds = result.panel["folds"]
    left = {e["ticker"]: e for e in result.panel["left_out_of_folds"]}
    assert set(left) == {"END", "NEW"} and {"END", "NEW"} <= set(result.evaluations)
    assert left["END"]["folds"] == [f["fold"] for f in folds if f["fold"] >= 2]
    assert left["END"]["reason"].startswith("no rows in the test span (data ends")
    assert left["NEW"]["folds"] == [1] and left["NEW"]["reason"].startswith("3 rows before the test start")
    assert {e["ticker"] for e in folds[0]["skipped"]} == {"NEW"}
    assert all(e["ticker"] in frames for f in folds for e in f["skipped"])
    assert result.panel["skipped"] == []  # scored in some fold: not among the tickers scored in none


def test_backtest_goes_on_past_a_fold_with_no_ticker_to_score(panel):
    """Such a fold stopped the whole backtest with "no ticker has a row in the test span" (false: the
    late ticker had rows there, too few before them); now it is recorded empty and the next folds run."""
    from stockrnn.errors import NothingToScore
    from stockrnn.panel_backtest import backtest_panel

    index = panel["AAA"].index
    frames = {"END": make_prices(255, seed=8), "NEW": make_prices(40, seed=9, start=f"{index[255]:%Y-%m-%d}")}
    result = backtest_panel(load_panel(frames), "ridge_local", index[250], refit_every=5, **TINY)
    folds = result.panel["folds"]
    empty = [f for f in folds if f["tickers_evaluated"] == 0]
    assert empty and all(f["models"] == {} and f["train_end"] is None for f in empty)
    assert {e["ticker"] for e in empty[0]["skipped"]} == {"END", "NEW"}
    assert set(result.evaluations) == {"END", "NEW"} and folds[-1]["tickers_evaluated"] == 1
    with pytest.raises(NothingToScore, match=r"no ticker to score from .* \(NEW: 5 rows before the test start"):
        evaluate_panel(load_panel(frames), "ridge_local", index[260], **TINY)


def test_a_multi_step_panel_backtest_scores_what_a_single_file_backtest_scores(panel):
    """The step-k forecasts of a fold's last origins aim past its end; a panel backtest dropped them
    (step 3: n 142 against 146 on IBM), so one ticker's folder scored other numbers than its file."""
    from stockrnn.backtest import backtest
    from stockrnn.panel_backtest import backtest_panel

    prices = panel["AAA"]
    start = prices.index[250]
    folder = backtest_panel(load_panel({"AAA": prices.frame}), "ridge_local", start, refit_every=10, horizon=3, **TINY)
    ridge = make_forecaster("ridge", model_config("ridge", horizon=3, **TINY))
    single = backtest(prices, [ridge], start, refit_every=10)
    mine = folder.evaluations["AAA"].metrics["models"]
    for step in range(3):
        for name, other in (("ridge_local", "ridge"), ("persistence", "persistence")):
            got, want = mine[name]["by_step"][step], single.metrics["models"][other]["by_step"][step]
            assert got["n"] == want["n"], (name, step + 1)
            assert got["rmse"] == pytest.approx(want["rmse"], rel=1e-9), (name, step + 1)
    assert mine["persistence"]["by_step"][2]["n"] > len(folder.panel["folds"])  # the test can fail


def two_folders(panel, tmp_path, **extra: pd.DataFrame):
    """The panel's files in a folder `clean` and one `broken` (where a test writes `extra` broken),
    with the `extra` tickers' files as they are in `clean`."""
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    for folder in (clean, broken):
        folder.mkdir()
        for t in TICKERS:
            panel[t].frame.to_csv(folder / f"{t}.csv")
    for t, frame in extra.items():
        frame.to_csv(clean / f"{t}.csv")
    return clean, broken


def test_whole_file_checks_judge_only_the_rows_before_the_test_start(panel, tmp_path):
    """A close that jumps x2.5 on many test days (a spliced history) or a test period of missing
    highs (more than 5% repaired) made load_panel hold the whole file back, and so changed who
    trained the global ridge and every other ticker's forecasts: a look-ahead. Now a panel run judges
    the rows before its test start; load_panel alone still judges the whole file."""
    index = panel["AAA"].index
    start = index[250]
    spliced, gappy = make_prices(300, seed=8), make_prices(300, seed=9)
    clean, broken = two_folders(panel, tmp_path, SPL=spliced, GAP=gappy)
    rows = np.arange(300) >= 252
    spliced.loc[rows & (np.arange(300) % 2 == 0), ["Open", "High", "Low", "Close"]] *= 2.5  # jumps up and down
    gappy.loc[rows & (np.arange(300) % 3 == 0), "High"] = np.nan  # filled forward: repaired
    spliced.to_csv(broken / "SPL.csv")
    gappy.to_csv(broken / "GAP.csv")
    held = {s["ticker"]: s["reason"] for s in load_panel(broken).skipped}
    assert set(held) == {"SPL", "GAP"}, held  # the whole files fail: the check can fail
    assert "spliced or unadjusted" in held["SPL"] and "needed repair, more than 5%" in held["GAP"]
    runs = [evaluate_panel(load_panel(f), "ridge,ridge_local", start, **TINY) for f in (clean, broken)]
    for run in runs:
        assert {"SPL", "GAP"} <= set(run.evaluations), run.panel["skipped"]
        assert (
            run.panel["settings"]["models"]["ridge"]["windows"]
            == runs[0].panel["settings"]["models"]["ridge"]["windows"]
        )
    for t in TICKERS:
        a, b = (r.evaluations[t].predictions for r in runs)
        np.testing.assert_allclose(a["ridge"], b["ridge"], rtol=1e-12)
    late = evaluate_panel(load_panel(broken), "ridge_local", index[299 - 20], **TINY)  # the jumps are before it
    assert "SPL" not in late.evaluations
    assert "spliced" in {s["ticker"]: s["reason"] for s in late.panel["skipped"]}["SPL"]


def test_a_bad_row_after_the_test_start_neither_skips_the_ticker_nor_changes_the_others(panel, tmp_path):
    """A negative volume or a duplicate date on a test day made load_panel skip the whole file, and so
    changed who trained the global ridge and every other ticker's forecasts: a look-ahead. Now the
    file's rows before its first bad row train, it is not scored on a span holding that row, and a
    split after the bad row holds it back with the row's error."""
    index = panel["AAA"].index
    start = index[250]
    vol, dup = make_prices(300, seed=8), make_prices(300, seed=9)
    clean, broken = two_folders(panel, tmp_path, VOL=vol, DUP=dup)
    vol.iloc[[270, 290], vol.columns.get_loc("Volume")] = -1
    pd.concat([dup.iloc[:281], dup.iloc[[280]], dup.iloc[281:]]).to_csv(broken / "DUP.csv")  # day 280 twice
    vol.to_csv(broken / "VOL.csv")
    loaded = load_panel(broken)
    held = {s["ticker"]: s["reason"] for s in loaded.skipped}
    assert set(held) == {"VOL", "DUP"} and not set(held) & set(loaded), held  # whole files fail: the check can fail
    assert "negative volume -1" in held["VOL"] and "line 272," in held["VOL"]  # the first bad row
    assert f"duplicate date {index[280]:%Y-%m-%d}" in held["DUP"]
    assert len(loaded.held["VOL"].frame) == 270 and loaded.held["VOL"].index[-1] == vol.index[269]
    runs = [evaluate_panel(load_panel(f), "ridge,ridge_local", start, **TINY) for f in (clean, broken)]
    assert {"VOL", "DUP"} <= set(runs[0].evaluations)
    windows = [r.panel["settings"]["models"]["ridge"]["windows"] for r in runs]
    assert windows[0] == windows[1], windows  # the broken files' training rows still train
    for t in TICKERS:
        a, b = (r.evaluations[t].predictions for r in runs)
        np.testing.assert_allclose(a["ridge"], b["ridge"], rtol=1e-12)
    reasons = {s["ticker"]: s["reason"] for s in runs[1].panel["skipped"]}
    assert {"VOL", "DUP"}.isdisjoint(runs[1].evaluations)
    assert "negative volume" in reasons["VOL"] and "a bad row in the test span, not scored" in reasons["VOL"]
    early = evaluate_panel(load_panel(broken), "ridge_local", start, index[265], **TINY)  # ends before the bad rows
    assert {"VOL", "DUP"} <= set(early.evaluations)
    late = evaluate_panel(load_panel(broken), "ridge_local", index[285], **TINY)  # both bad rows before it
    late_reasons = {s["ticker"]: s["reason"] for s in late.panel["skipped"]}
    assert {"VOL", "DUP"}.isdisjoint(late.evaluations)
    assert "negative volume" in late_reasons["VOL"] and "duplicate date" in late_reasons["DUP"]
    assert "test span" not in late_reasons["VOL"]  # held back: its bad row is a training row


def test_a_panel_held_back_whole_comes_back_on_the_rows_before_the_test(panel, tmp_path):
    """load_panel raised 'no usable ticker' when every file failed on its whole rows, so tickers that
    fail only in the test period never came back for a run (they did beside one clean file)."""
    index = panel["AAA"].index
    for t in TICKERS[:2]:
        gappy = panel[t].frame.copy()
        gappy.loc[gappy.index >= index[260], "high"] = np.nan  # repaired after the test start only
        gappy.to_csv(tmp_path / f"{t}.csv")
    loaded = load_panel(tmp_path)
    assert not loaded and set(loaded.held) == set(TICKERS[:2])  # nothing kept on the whole files
    run = evaluate_panel(loaded, "ridge_local", index[250], **TINY)
    assert set(run.evaluations) == set(TICKERS[:2])
    with pytest.raises(ConfigError, match="more than 5%"):  # a split in the repaired stretch: held, and why
        evaluate_panel(loaded, "ridge_local", index[295], **TINY)


def test_backtest_folds_keep_the_dates_of_a_ticker_held_for_a_later_bad_row(panel):
    """The fold dates were the union of the kept tickers' dates: a ticker held back at loading for a
    bad row late in the test span took its own dates with it, so every fold after them moved and
    every ticker's forecasts changed months before that row."""
    from stockrnn.panel_backtest import backtest_panel

    index = panel["AAA"].index
    frames = {t: panel[t].frame.drop(index[200:204]) if t != "AAA" else panel[t].frame for t in TICKERS}
    bad = frames["AAA"].copy()
    bad.iloc[290, bad.columns.get_loc("volume")] = -1
    runs = [
        backtest_panel(load_panel({**frames, "AAA": a}), "ridge,ridge_local", index[150], refit_every=40, **TINY)
        for a in (frames["AAA"], bad)
    ]
    folds = [[(f["test_start"], f["test_end"]) for f in r.panel["folds"]] for r in runs]
    assert folds[0][:3] == folds[1][:3] and folds[0][1][0] == f"{index[190]:%Y-%m-%d}", folds  # AAA's dates count
    for t in TICKERS[1:]:
        a, b = (r.evaluations[t].predictions for r in runs)
        early = [p.loc[pd.to_datetime(p["date"]) < index[290], "ridge"] for p in (a, b)]
        assert len(early[0]) > 100 and len(early[0]) == len(early[1])
        np.testing.assert_allclose(early[0], early[1], rtol=1e-12)
    assert "AAA" in {e["ticker"] for e in runs[1].panel["left_out_of_folds"]}
