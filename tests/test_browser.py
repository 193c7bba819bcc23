"""report.html in a real browser: Debian's headless Chromium driven by Playwright. No console
error, no request beyond the file itself, one trace per model, a legend click hides a trace, the
panel table sorts and filters; each test saves a screenshot (to docs/ with STOCKRNN_SCREENSHOTS=docs,
which `make screenshots` sets). Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from stockrnn.report import write_report

from report_data import COMMAND, made_up_panel, small_backtest, small_evaluation

CHROMIUM = Path(os.environ.get("STOCKRNN_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip
LOCAL = ("file:", "data:", "blob:", "about:")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (make test installs Debian's chromium with apt-get when run as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed ({exc}); it is in the test extra: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A persistent context in a fresh user-data folder (Chromium's own --user-data-dir)."""
    reason = missing()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 1500}, offline=True,
        )  # fmt: skip
        yield context
        context.close()


@pytest.fixture
def open_page(browser):
    """Open a file in a new tab; record every request, console error and page error."""
    pages = []

    def run(path: Path):
        page = browser.new_page()
        log = {"requests": [], "errors": []}
        page.on("request", lambda request: log["requests"].append(request.url))
        page.on("console", lambda msg: msg.type == "error" and log["errors"].append(msg.text))
        page.on("pageerror", lambda exc: log["errors"].append(str(exc)))
        page.goto(path.as_uri(), wait_until="load")
        pages.append(page)
        return page, log

    yield run
    for page in pages:
        page.close()


def screenshot(page, tmp_path: Path, name: str, selector: str | None = None) -> Path:
    """The page (or the element `selector`) as a PNG: to docs/ for the README, else to tmp."""
    folder = Path(os.environ["STOCKRNN_SCREENSHOTS"]) if os.environ.get("STOCKRNN_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (page.locator(selector) if selector else page).screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a picture, not a blank page
    return path


def assert_offline_and_clean(log: dict) -> None:
    assert [url for url in log["requests"] if not url.startswith(LOCAL)] == []
    assert log["errors"] == []


def traces(page, div: str) -> list[dict]:
    return page.evaluate(
        f"""Array.from(document.getElementById("{div}").data, t => ({{
            name: t.name, meta: t.meta || null, visible: t.visible === undefined ? true : t.visible}}))"""
    )


def test_evaluation_report(open_page, tmp_path):
    evaluation = small_evaluation()
    path = write_report(tmp_path / "run" / "report.html", evaluation, command=COMMAND)
    page, log = open_page(path)
    page.wait_for_selector("#forecast-chart .main-svg")
    page.wait_for_selector("#lag-chart .main-svg")
    assert page.locator("#verdict").bounding_box()["y"] < page.locator("#score-table").bounding_box()["y"]
    screenshot(page, tmp_path, "report.png")
    screenshot(page, tmp_path, "report-lag.png", "#lag")  # the README's lag figure

    data = traces(page, "forecast-chart")
    lines = [t for t in data if t["meta"]]  # the actual and one line per model; the rest are bands
    assert [t["meta"] for t in lines] == ["actual", *evaluation.models]
    assert all(t["name"].startswith(f"{t['meta']} (RMSE ") for t in lines[1:])
    assert all(t["visible"] is True for t in lines)
    legend = page.locator("#forecast-chart g.traces")
    assert legend.count() == len(lines) + len(evaluation.models)  # one entry per line and per model's bands
    ridge = next(i for i, t in enumerate(data) if t["meta"] == "ridge")
    entry = legend.filter(has_text="ridge (RMSE").locator("rect.legendtoggle")
    entry.click()  # plotly acts once its double-click delay has passed: wait for the change, not for a time
    page.wait_for_function(f'document.getElementById("forecast-chart").data[{ridge}].visible === "legendonly"')
    assert [t["visible"] for t in traces(page, "forecast-chart") if t["meta"] and t["meta"] != "ridge"] == [True] * 3
    entry.click()
    page.wait_for_function(f'document.getElementById("forecast-chart").data[{ridge}].visible === true')

    plot = page.locator("#forecast-chart .nsewdrag").first.bounding_box()
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2)  # hover: the day's values
    page.wait_for_selector("#forecast-chart .hoverlayer .legend")
    hover = page.locator("#forecast-chart .hoverlayer").text_content()
    day = re.search(r"\d{4}-\d{2}-\d{2}", hover)
    assert day and day.group() in {f"{d:%Y-%m-%d}" for d in evaluation.wide(1).index}
    assert "actual" in hover and "lstm (RMSE" in hover and "(80%:" in hover
    assert_offline_and_clean(log)


def column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#ticker-table tbody tr:not([hidden]) td:nth-child({index + 1})", "cells => cells.map(c => c.textContent)"
    )


def test_panel_report_sorts_filters_and_opens_a_ticker(open_page, tmp_path):
    summary, info, rank_ic = made_up_panel(40, markup_ticker=False)
    path = write_report(tmp_path / "panel" / "report.html", panel=summary, panel_metrics=info, rank_ic=rank_ic)
    write_report(tmp_path / "panel" / "T007" / "report.html", small_evaluation(), command=COMMAND, static=True)
    page, log = open_page(path)
    page.wait_for_selector("#skill-chart .main-svg")
    page.wait_for_selector("#rank-ic-chart .main-svg")
    heads = page.eval_on_selector_all("#ticker-table thead th", "ths => ths.map(t => t.textContent)")
    skill = heads.index("skill")
    before = column(page, skill)
    numbers = lambda cells: [float(c) for c in cells if c != "-"]  # noqa: E731

    page.locator("#ticker-table thead th", has_text="skill").first.click()
    ascending = column(page, skill)
    assert ascending != before and sorted(ascending) == sorted(before)
    assert numbers(ascending) == sorted(numbers(ascending)) and ascending[-1] == "-"  # missing last
    page.locator("#ticker-table thead th", has_text="skill").first.click()
    descending = numbers(column(page, skill))
    assert descending == sorted(descending, reverse=True)

    page.fill("input[data-filter]", "T007 lstm")
    assert set(column(page, heads.index("ticker"))) == {"T007"}
    assert set(column(page, heads.index("model"))) == {"lstm"}
    page.fill("input[data-filter]", "")
    assert len(column(page, 0)) == len(summary)
    screenshot(page, tmp_path, "report-panel.png")

    page.locator('#ticker-table a[href="T007/report.html"]').first.click()  # the ticker's static page, from file:
    page.wait_for_url("**/panel/T007/report.html")
    page.wait_for_load_state("load")
    assert page.locator("#verdict").bounding_box()["y"] < page.locator("#score-table").bounding_box()["y"]
    drawn = page.eval_on_selector_all("img.figure", "imgs => imgs.map(i => [i.id, i.complete && i.naturalWidth])")
    assert [name for name, _ in drawn] == ["forecast-chart", "lag-chart"] and all(width > 500 for _, width in drawn)
    assert page.evaluate("typeof window.Plotly") == "undefined"
    screenshot(page, tmp_path, "report-ticker.png")
    assert_offline_and_clean(log)


def test_backtest_report_draws_every_chart(open_page, tmp_path):
    """Forecast with refit lines, lag check, error by step, folds: each one drawn, without an error."""
    path = write_report(tmp_path / "backtest" / "report.html", small_backtest(), command="stockrnn backtest")
    page, log = open_page(path)
    ids = page.eval_on_selector_all(".plotly-graph-div", "divs => divs.map(d => d.id)")
    assert ids == ["forecast-chart", "lag-chart", "step-chart", "fold-chart"]
    page.wait_for_function(
        'Array.from(document.querySelectorAll(".plotly-graph-div"))'
        '.every(d => d._fullLayout && d.querySelector(".main-svg"))'
    )
    assert page.evaluate('document.getElementById("fold-chart").data.length') == 3  # gru, ridge, persistence
    assert_offline_and_clean(log)


def test_a_network_request_is_caught(open_page, tmp_path):
    """The recorder sees a page that asks for a remote image (the browser is offline: nothing leaves)."""
    path = tmp_path / "remote.html"
    path.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png"></body></html>')
    _, log = open_page(path)
    assert [url for url in log["requests"] if not url.startswith(LOCAL)] == ["http://192.0.2.1/x.png"]


def test_skip_reason_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    assert "/nonexistent/chromium not found" in missing()


def test_chromium_is_found_where_make_test_installs_it():
    """On CI (root, apt-get) `make test` installs Chromium; say so plainly where it did not."""
    if os.environ.get("CI") and shutil.which("apt-get") and os.geteuid() == 0:
        assert missing() is None
