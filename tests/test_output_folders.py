"""Which folders a run may replace (files.check_target, check_apart): only its own earlier outputs,
marked by files.OUTPUT_MARK, never one that is or holds an input; each refusal is one line, exit 2,
before any training, with nothing touched. And two panel commands on awkward tickers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stockrnn.errors import ConfigError
from stockrnn.files import OUTPUT_MARK, check_file_target, check_target
from stockrnn.presets import write_preset_file

from conftest import make_prices

TICKERS = ("AAA", "BBB", "CCC", "DDD")
TEST_START = f"{pd.bdate_range('2020-01-01', periods=300)[200]:%Y-%m-%d}"


def evaluate(cli, data: Path, out: Path, models: str = "ridge"):
    return cli("evaluate", "--data", data, "--test-start", TEST_START, "--models", models, "--window", "5",
               "--out", out, "--quiet", "--no-report")  # fmt: skip


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def refused(code: int, err: str, message: str) -> bool:
    return code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_folder_is_replaced_only_when_it_holds_the_mark_of_an_earlier_output(cli, folder, tmp_path):
    """An output's own file names are no mark: a user's folder may hold a metrics.json or a
    forecast.csv (one `predict --out FILE` wrote there) beside files that are not ours."""
    (folder / "forecast.csv").write_text("date,ticker,forecast\n")
    (folder / "metrics.json").write_text("{}")
    (folder / ".stockrnn.txt").write_text("a name close to the mark is not the mark")
    before = contents(folder)
    code, _, err = evaluate(cli, folder / "AAA.csv", folder)
    assert refused(code, err, f"{folder}: holds files (.stockrnn.txt, AAA.csv, BBB.csv, ...) but no {OUTPUT_MARK} mark")
    assert contents(folder) == before
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder / "AAA.csv", out)
    assert code == 0, err
    assert (out / OUTPUT_MARK).is_file() and "stockrnn" in (out / OUTPUT_MARK).read_text()
    (out / "metrics.json").write_text("older")
    code, _, err = evaluate(cli, folder / "AAA.csv", out)  # an earlier output: replaced whole
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["models"]
    (out / OUTPUT_MARK).unlink()  # without its mark it is a folder like any other
    code, _, err = evaluate(cli, folder / "AAA.csv", out)
    assert refused(code, err, f"{out}: holds files (forecast.png, metrics.json, predictions.csv) but no {OUTPUT_MARK}")
    assert "an older stockrnn's output: delete it" in err


def test_a_link_or_a_file_on_the_way_is_refused_before_any_training(cli, folder, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    code, _, err = evaluate(cli, folder / "AAA.csv", link)
    assert refused(code, err, f"{link}: is a link; give the folder itself or a new one") and link.is_symlink()
    below = folder / "AAA.csv" / "sub"  # the parent is a file: said before the training, not after it
    code, out, err = evaluate(cli, folder / "AAA.csv", below)
    assert refused(code, err, f"{below}: cannot write here ({folder / 'AAA.csv'} is a file, not a folder)")
    assert out == ""  # not even the data table: nothing was loaded or trained
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    code, out, err = evaluate(cli, folder / "AAA.csv", tmp_path / "gone" / "x")
    assert refused(code, err, f"cannot write here ({tmp_path / 'gone'} is a broken link)") and out == ""
    code, _, err = evaluate(cli, folder / "AAA.csv", "")
    assert refused(code, err, "an output path is empty")


def test_a_preset_file_inside_the_output_folder_is_an_input_too(cli, folder, tmp_path):
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder / "AAA.csv", out)
    assert code == 0, err
    preset = write_preset_file(out / "mine.json", "ridge", {"window": 5})
    code, _, err = cli("evaluate", "--data", folder / "AAA.csv", "--models", "ridge", "--test-start", TEST_START,
                       "--preset-file", preset, "--out", out, "--quiet", "--no-report")  # fmt: skip
    assert refused(code, err, f"{out}: holds the input {preset} and would be replaced") and preset.exists()


def test_predict_does_not_write_a_table_into_the_data_folder_it_reads(cli, folder, tmp_path):
    model = tmp_path / "model"
    code, _, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    target = folder / "forecast.csv"
    code, _, err = cli("predict", model, "--data", folder, "--out", target)
    assert refused(code, err, f"{target}: is in the data folder {folder}, whose next load would read it as a ticker")
    assert not target.exists()
    table = tmp_path / "forecast.csv"
    for _ in range(2):  # a forecast it wrote is replaced
        code, _, err = cli("predict", model, "--data", folder, "--out", table)
        assert code == 0, err
    code, _, err = cli("predict", model, "--data", folder, "--out", folder / ".hidden.csv")  # never read as a ticker
    assert code == 0, err
    other = tmp_path / "BBB.csv"  # an existing file it did not write (another ticker's data, say) is kept
    other.write_bytes((folder / "BBB.csv").read_bytes())
    code, _, err = cli("predict", model, "--data", folder / "AAA.csv", "--out", other)
    assert refused(code, err, f"{other}: exists and is not a forecast stockrnn wrote (it begins 'Date,")
    assert other.read_bytes() == (folder / "BBB.csv").read_bytes()
    code, _, err = cli("predict", model, "--data", folder / "AAA.csv", "--out", model / "f.csv")  # not a data folder
    assert code == 0, err


def test_fit_on_a_folder_with_a_ticker_delisted_early_saves_and_shows_the_others(cli, folder, tmp_path):
    make_prices(200, seed=5).to_csv(folder / "OLD.csv")  # ends months before the others
    model = tmp_path / "model"
    code, stdout, err = cli("fit", "--data", folder, "--model", "ridge", "--window", "5", "--save", model, "--quiet")
    assert code == 0, err
    assert "global ridge fitted on 5 tickers" in stdout and "DDD" in stdout and (model / "model.json").exists()


def test_a_ticker_a_global_model_cannot_forecast_is_skipped_with_why_and_the_run_succeeds(cli, folder, tmp_path):
    """Without a close a global model cannot forecast a ticker (its fit skipped it), so the ticker is
    left out for every model, listed, rather than failing the run (exit 4)."""
    make_prices(300, seed=9).drop(columns="Close").to_csv(folder / "NOC.csv")
    out = tmp_path / "out"
    code, _, err = evaluate(cli, folder, out, "ridge,ridge_local")
    assert code == 0, err
    panel = json.loads((out / "panel.json").read_text())
    assert panel["failed"] == [] and panel["models"]["ridge"]["tickers"] == 4
    (entry,) = [s for s in panel["skipped"] if s["ticker"] == "NOC"]
    assert entry["reason"].startswith("the global ridge model cannot forecast it (no close column")
    only = tmp_path / "only"  # when no ticker is left to score, that is an error, not an empty success
    only.mkdir()
    for ticker in TICKERS:
        make_prices(195, seed=1).to_csv(only / f"{ticker}.csv")  # these end before the test start
    (only / "NOC.csv").write_bytes((folder / "NOC.csv").read_bytes())
    code, _, err = evaluate(cli, only, tmp_path / "out2", "ridge,ridge_local")
    assert (
        refused(code, err, "no ticker left to score from ") and "NOC: the global ridge model cannot forecast it" in err
    )
    assert not (tmp_path / "out2").exists()


def test_a_folder_on_the_way_that_cannot_be_searched_is_a_config_error(tmp_path, monkeypatch):
    """pathlib raises PermissionError for a path under a folder the user cannot search (not testable
    with real permissions as root, so the stat call is made to fail)."""

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_symlink", denied)
    for check in (lambda: check_target(tmp_path / "x"), lambda: check_file_target(tmp_path / "x.csv", tmp_path, ())):
        with pytest.raises(ConfigError, match=r"x(\.csv)?: cannot write here \(Permission denied\)"):
            check()


@pytest.mark.parametrize("name", ["../../escaped", "BRK/B", "/abs"])
def test_a_default_output_folder_stays_under_runs_whatever_the_files_name_says(cli, tmp_path, monkeypatch, name):
    """The default folder took the file's Name column as it was: '../../escaped' wrote outside runs/,
    'BRK/B' made a folder BRK. Now the name is one safe folder name, as a panel's ticker folders."""
    monkeypatch.chdir(tmp_path)
    make_prices(300).assign(Name=name).to_csv(tmp_path / "x.csv")
    code, stdout, err = cli("evaluate", "--data", "x.csv", "--test-start", TEST_START, "--models", "persistence",
                            "--quiet", "--no-report")  # fmt: skip
    assert code == 0, err
    made = [p for p in tmp_path.rglob("metrics.json")]
    assert len(made) == 1 and made[0].parent.parent == tmp_path / "runs", made
    assert "/" not in made[0].parent.name


def test_a_bare_builtin_name_that_is_also_a_folder_here_is_asked_not_guessed(cli, tmp_path, monkeypatch):
    """`--data sp500` ran the folder ./sp500 in evaluate and fit, the built-in data in demo and in
    load_prices: now the one line says to write ./sp500 for the folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sp500").mkdir()
    make_prices(300).to_csv(tmp_path / "sp500" / "AAA.csv")
    for args in (("evaluate", "--models", "persistence"), ("fit", "--model", "ridge"), ("backtest",)):
        code, _, err = cli(*args, "--data", "sp500", "--quiet", "--out" if args[0] != "fit" else "--save", "o")
        assert code == 2 and "write ./sp500 for the folder" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
    code, _, err = cli("evaluate", "--data", "./sp500", "--models", "ridge_local", "--window", "5",
                       "--test-start", TEST_START, "--quiet", "--no-report", "--out", "o")  # fmt: skip
    assert code == 0 and (tmp_path / "o" / "AAA" / "metrics.json").exists(), err
