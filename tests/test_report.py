"""report.html without a browser: one self-contained file, verdict first, every score key, the
run's command, data repairs, folds, trading, panels; under 6 MB."""

from __future__ import annotations

import re
from html import escape

import pytest

from stockrnn.report import MAX_BYTES, render_report, write_report
from stockrnn.report_tables import HIDDEN

from report_data import COMMAND, made_up_panel, small_backtest, small_evaluation

# Every reference to another resource: a script, a style sheet, an image, a frame, an object.
LOADS = re.compile(
    r"<(script|link|img|iframe|source|object|embed)\b[^>]*\b(src|href|data)\s*=\s*['\"]?([^'\" >]+)", re.I
)


@pytest.fixture(scope="module")
def evaluation():
    return small_evaluation()


@pytest.fixture(scope="module")
def page(evaluation, tmp_path_factory):
    path = write_report(tmp_path_factory.mktemp("run") / "report.html", evaluation, command=COMMAND)
    return path, path.read_text(encoding="utf-8")


def outside_scripts(html: str) -> str:
    """The page without the bodies of its inline scripts (plotly.js names URLs it never loads here)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)


def test_one_self_contained_file(page):
    path, html = page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left
    assert path.stat().st_size < MAX_BYTES
    assert html.count("Plotly.newPlot(") == 2 and html.count("* plotly.js v") == 1  # one copy of plotly.js
    markup = outside_scripts(html)
    assert [m for m in LOADS.findall(markup) if not m[2].startswith(("data:", "#"))] == []
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", markup)  # no style pulls a remote file


def test_verdict_first_then_every_score_key(page, evaluation):
    _, html = page
    verdict, scores = html.index('id="verdict"'), html.index('id="score-table"')
    assert verdict < scores
    words = html[verdict:scores]
    assert re.search(r"(\d of 2 models beat|No model beats) persistence", words)
    assert "lstm</b> beats ridge" in words or "lstm</b> does not beat ridge" in words
    for name in ("lstm", "ridge"):
        assert f"<b>{name}</b>: {escape(evaluation.verdict(name))}" in words
    table = html[scores : html.index("</table>", scores)]
    keys = {k for m in evaluation.metrics["models"].values() for k in m if k not in HIDDEN}
    assert {"rmse", "mae", "skill", "dm_pvalue", "best_lag", "coverage_80"} <= keys
    for key in keys:
        assert f"<th>{key}</th>" in table
    for name in evaluation.models:
        assert f"<td>{name}</td>" in table


def test_command_repairs_lag_and_trading(page, evaluation):
    _, html = page
    assert COMMAND in html
    assert "filled (close)" in html and "2020-12-09" in html  # the repaired day, by name
    assert "actual shifted by one day" in html and "RMSE vs yesterday" in html
    assert 'id="trading"' in html and "buy-and-hold" in html
    assert evaluation.metrics["versions"]["torch"] in html


def test_backtest_folds_and_error_by_step(tmp_path):
    result = small_backtest()
    html = write_report(tmp_path / "report.html", result).read_text()
    assert 'id="fold-table"' in html and 'id="fold-chart"' in html and 'id="step-chart"' in html
    assert html.count("<tr><td>") >= len(result.folds)
    assert "not recorded" in html  # no command given
    assert 'id="trading"' not in html  # a high target has no trading diagnostic


def test_panel_report_is_small_sorted_escaped(tmp_path):
    summary, info, rank_ic = made_up_panel(250)
    path = write_report(tmp_path / "report.html", panel=summary, panel_metrics=info, rank_ic=rank_ic, command="x")
    html = path.read_text()
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{size / 2**20:.2f} MiB"
    assert html.count('href="T001/report.html"') == 5  # one link per model row of the ticker
    assert "&lt;b&gt;&amp;BAD" in html and "<b>&BAD" not in html
    assert 'id="ticker-table" class="sortable"' in html and 'id="rank-ic-chart"' in html
    assert "EMPTY" in html and "no rows" in html  # skipped tickers are listed
    lstm = summary[summary["model"] == "lstm"]
    assert f"<b>lstm</b>: beats persistence on {(lstm['skill'] > 0).sum()} of 250 tickers" in html
    assert html.index('id="verdict"') < html.index('id="ticker-table"')


def test_report_needs_something(tmp_path):
    with pytest.raises(ValueError):
        render_report()


def test_predict_report(tmp_path):
    import pandas as pd

    table = pd.DataFrame(
        {"forecast": [1.0, 2.0], "lo80": [0.5, 1.5], "hi80": [1.5, 2.5], "lo95": [0.2, 1.2], "hi95": [1.8, 2.8]},
        index=pd.bdate_range("2021-01-04", periods=2),
    )
    history = pd.Series([1.0, 1.1, 0.9], index=pd.bdate_range("2020-12-29", periods=3), name="close")
    html = write_report(tmp_path / "r.html", forecast=table, history=history, command="stockrnn predict m").read_text()
    assert "2021-01-05" in html and 'id="forecast-chart"' in html and "stockrnn predict m" in html


def test_long_test_period_leaves_bands_out_not_the_size_limit(evaluation, monkeypatch, tmp_path):
    """Over the size limit (here: lowered to just under the full page), the baselines' bands go first."""
    import stockrnn.report as report

    full = render_report(evaluation)
    assert "left out to keep" not in full
    monkeypatch.setattr(report, "MAX_BYTES", len(full.encode()) - 1)
    smaller = write_report(tmp_path / "report.html", evaluation).read_text()
    assert len(smaller.encode()) < len(full.encode())
    assert "The baselines' interval bands are left out" in smaller
    assert smaller.count('95% intervals"') < full.count('95% intervals"')
    assert '"name":"lstm 80% and 95% intervals"' in smaller
    assert '"name":"ridge 80% and 95% intervals"' not in smaller
    monkeypatch.setattr(report, "MAX_BYTES", 1000)  # nothing fits: the smallest page, every band left out
    smallest = write_report(tmp_path / "report.html", evaluation).read_text()
    assert "The interval bands are left out" in smallest and '95% intervals"' not in smallest


def test_two_test_days_still_make_a_report(tmp_path):
    """Too few days for a lag or a test: the report says '-' where a number cannot be computed."""
    from stockrnn import evaluate

    from conftest import make_prices

    prices = make_prices(120)
    result = evaluate(prices, ["ridge"], test_start=prices.index[-2])
    html = write_report(tmp_path / "report.html", result).read_text()
    assert 'id="forecast-chart"' in html and "<td>-</td>" in html


@pytest.fixture(scope="module")
def static_page(evaluation, tmp_path_factory):
    path = write_report(tmp_path_factory.mktemp("ticker") / "report.html", evaluation, command=COMMAND, static=True)
    return path, path.read_text(encoding="utf-8")


def test_static_page_is_small_self_contained_and_has_every_section(static_page, evaluation):
    """A panel's ticker page: the same sections, PNG figures inside the file, no plotly.js, under 1 MB."""
    path, html = static_page
    assert path.stat().st_size < 1_000_000, f"{path.stat().st_size / 1e6:.2f} MB"
    assert "plotly" not in html.lower().replace("plotly_white", "") and "Plotly.newPlot" not in html
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert [m for m in LOADS.findall(html) if not m[2].startswith(("data:", "#"))] == []
    assert [h for h in re.findall(r'href="([^"]*)"', html) if not h.startswith("#")] == []
    assert html.index('id="verdict"') < html.index('id="score-table"') < html.index('id="forecast-chart"')
    lag = html[html.index('<section id="lag">') : html.index("</section>", html.index('<section id="lag">'))]
    assert "actual shifted by one day" in lag and "RMSE vs yesterday" in lag
    png = r'<img id="lag-chart" class="figure" alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{5000,}"'
    assert re.search(png, lag)
    for anchor in ("forecast", "trading", "data", "settings", "run"):
        assert f'<section id="{anchor}">' in html
    assert COMMAND in html and "filled (close)" in html and "matplotlib" in html


def test_static_page_draws_error_by_step_and_folds(tmp_path):
    html = write_report(tmp_path / "report.html", small_backtest(), static=True).read_text()
    for chart in ("forecast-chart", "lag-chart", "step-chart", "fold-chart"):
        assert re.search(f'<img id="{chart}" class="figure" alt="[^"]*" src="data:image/png;base64,', html)
    assert "* plotly.js v" not in html and "Plotly.newPlot" not in html


def test_a_2000_ticker_panel_page_stays_under_the_limit(tmp_path):
    """Past about 900 tickers x 5 models plotly.js and the table do not fit in 6 MB: the page drops
    the figures' points, then plotly.js (PNG figures), keeping every row of the table."""
    summary, info, rank_ic = made_up_panel(2000)
    path = write_report(tmp_path / "report.html", panel=summary, panel_metrics=info, rank_ic=rank_ic)
    html = path.read_text()
    assert path.stat().st_size < MAX_BYTES, f"{path.stat().st_size / 1e6:.2f} MB"
    assert "* plotly.js v" not in html and "Plotly.newPlot" not in html and "no plotly.js in this file" in html
    assert html.count('href="T1999/report.html"') == 5 and html.count("<tr><td class=t><a href=") == len(summary)
    assert re.search(r'<img id="skill-chart" class="figure" alt="[^"]*" src="data:image/png;base64,', html)
    assert re.search(r'<img id="rank-ic-chart" class="figure" alt="[^"]*" src="data:image/png;base64,', html)


def test_panel_page_keeps_the_first_tickers_when_nothing_else_fits(monkeypatch, tmp_path):
    import stockrnn.report as report

    summary, info, rank_ic = made_up_panel(300)
    monkeypatch.setattr(report, "MAX_BYTES", 1)  # nothing fits: the smallest choice
    html = write_report(tmp_path / "report.html", panel=summary, panel_metrics=info, rank_ic=rank_ic).read_text()
    assert "the table shows the first 200 of 300 tickers (summary.csv has them all)" in html
    assert 'href="T199/report.html"' in html and 'href="T200/report.html"' not in html
    assert "beats persistence on" in html and "of 300 tickers" in html  # the verdict counts them all


def test_panel_page_first_drops_the_figures_points(monkeypatch, tmp_path):
    """Just over the limit, the page stays interactive without the skill points and the daily rank IC."""
    import stockrnn.report as report

    summary, info, rank_ic = made_up_panel(40)
    full = render_report(panel=summary, panel_metrics=info, rank_ic=rank_ic)
    assert '"boxpoints":"all"' in full and '"name":"lstm daily"' in full and "To keep this file" not in full
    monkeypatch.setattr(report, "MAX_BYTES", len(full.encode()) - 1)
    html = write_report(tmp_path / "report.html", panel=summary, panel_metrics=info, rank_ic=rank_ic).read_text()
    assert html.count("* plotly.js v") == 1 and '"boxpoints":"outliers"' in html and '"name":"lstm daily"' not in html
    assert escape("the skill distribution's points and the daily rank IC are left out") in html


def renamed(evaluation, name: str):
    """The same run under another ticker name (the name only reaches titles and labels)."""
    import copy
    import dataclasses

    metrics = copy.deepcopy(evaluation.metrics)
    metrics["data"]["name"] = name
    return dataclasses.replace(evaluation, metrics=metrics)


def test_the_lag_table_scores_the_days_the_score_table_scores(evaluation):
    """Its RMSE against the actual is the score table's: repaired days left out, the first test day
    in (yesterday's actual is the last training day's). It left out the one and kept the other."""
    from stockrnn.report_tables import lag_rows

    assert evaluation.metrics["data"]["excluded_repaired"] == 1  # the filled test day
    rows = lag_rows(evaluation)
    for name in evaluation.models:
        rmse = evaluation.metrics["models"][name]["rmse"]
        assert rows.loc[name, "RMSE vs actual"] == pytest.approx(rmse, rel=1e-9, abs=1e-12), name
    assert rows.loc["persistence", "RMSE vs yesterday's actual"] == 0.0


def test_the_lag_chart_draws_the_curve_best_lag_is_read_from(evaluation):
    """The bars are the predicted change's correlations on the scored days, so their largest |bar|
    is the table's best lag and the lag-0 bar is metrics.json's change_corr. They were the forecast
    line's day-to-day change, which holds yesterday's move and peaked at lag 1 for every model."""
    from stockrnn.report_figures import lag_correlations

    checked = 0
    for name in evaluation.models:
        m = evaluation.metrics["models"][name]
        corr = lag_correlations(evaluation, name)
        if m["best_lag"] is None:
            continue
        known = [(abs(c), -k, k) for k, c in enumerate(corr) if c is not None]
        assert max(known)[2] == m["best_lag"], name
        assert corr[0] == pytest.approx(m["change_corr"], rel=1e-9, abs=1e-12), name
        checked += 1
    assert checked >= 1


def test_the_data_section_lists_untraded_days_dropped_and_kept():
    """A leading untraded stretch (dropped) and untraded days inside (kept, not scored) are repairs
    with their dates, not "No repairs"."""
    from stockrnn import load_prices
    from stockrnn.report_tables import data_summary

    from conftest import make_prices

    frame = make_prices(200)
    for rows in (slice(0, 3), slice(150, 152)):
        frame.iloc[rows, :4] = frame["Close"].iloc[max(rows.start - 1, 0)]
        frame.iloc[rows, 4] = 0
    prices = load_prices(frame)
    html = data_summary({"source": "x", "target": "high", "repairs": prices.repairs.to_dict()})
    assert "No repairs" not in html
    assert "dropped leading untraded</td><td>3</td>" in html and f"{frame.index[0]:%Y-%m-%d}" in html
    assert "untraded (kept, not scored)</td><td>2</td>" in html and f"{frame.index[151]:%Y-%m-%d}" in html


def test_a_ticker_named_with_markup_is_shown_as_it_is(evaluation):
    """Plotly reads tags in a title and in hover text: the name is escaped there (it drew bold K&O
    for `<b>K&O<i>`, a link for `<a href=...>`)."""
    from stockrnn import report_figures

    figure = report_figures.forecast(renamed(evaluation, "<b>K&O<i>"))
    assert figure.layout.title.text.startswith("&lt;b&gt;K&amp;O&lt;i&gt;: ")
    summary, _, _ = made_up_panel(3)
    texts = [t for trace in report_figures.skill_distribution(summary).data for t in trace.text]
    assert "&lt;b&gt;&amp;BAD" in texts and "<b>&BAD" not in texts


def test_a_ticker_named_with_dollars_draws(evaluation):
    """matplotlib reads text between two `$` as mathematics: `K$\\x$O` failed to draw (after the
    run, losing its outputs); now the title shows the name as it is."""
    import io

    from stockrnn import plots

    evaluation = renamed(evaluation, "K$\\x$O")
    for draw in (plots.forecast_figure, plots.error_by_step_figure):
        assert draw(evaluation, io.BytesIO()).getbuffer().nbytes > 1000
    assert plots.literal("K$\\x$O") == "K\\$\\x\\$O"


def test_an_interrupted_panel_says_so_on_its_page(tmp_path):
    summary, info, rank_ic = made_up_panel(5, markup_ticker=False)
    whole = render_report(panel=summary, panel_metrics=info, rank_ic=rank_ic)
    info = {**info, "settings": {**info["settings"], "interrupted": True}}
    cut = render_report(panel=summary, panel_metrics=info, rank_ic=rank_ic)
    assert "Interrupted (Ctrl-C)" in cut and "Interrupted (Ctrl-C)" not in whole
    assert cut.index("Interrupted (Ctrl-C)") < cut.index('id="ticker-table"')


def test_a_run_with_no_day_scored_still_draws(evaluation):
    """Every test target repaired: no coverage to show (None), which the figure's legend formatted."""
    import copy
    import io

    from stockrnn import plots

    broken = renamed(evaluation, "REP")
    for m in broken.metrics["models"].values():
        m["by_step"] = copy.deepcopy(m["by_step"])
        m["by_step"][0].update(coverage_80=None, coverage_95=None)
    assert plots.forecast_figure(broken, io.BytesIO()).getbuffer().nbytes > 1000
