"""Every bad input ends with exit 2, one line naming the file (and line or column), and no output
left behind: malformed CSVs, spreadsheets, damaged Parquet, constant targets, bad folders."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from conftest import FAST, HEADER, assert_clean_failure, make_prices, walk_csv, write


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


GOOD = walk_csv(30)
GOOD_LINES = GOOD.splitlines()


def replace_line(number: int, text: str) -> str:
    lines = list(GOOD_LINES)
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def shifted() -> str:
    """From line 10 on, a field goes missing before High: every later column moves left."""
    lines = list(GOOD_LINES)
    for i in range(9, len(lines)):
        cells = lines[i].split(",")
        lines[i] = ",".join(cells[:2] + cells[3:])
    return "\n".join(lines) + "\n"


# name: (file content, text the error line must hold)
BAD_INPUTS = {
    "binary": (bytes(range(256)) * 4, "binary file, not CSV text"),
    "not_utf8": (GOOD.replace("2020-01-08", "2020-01-08\xe9").encode("latin-1"), "line 7: not UTF-8 text (byte 0xe9)"),
    "cut_last_line": (GOOD[: GOOD.rindex(",") - 3], f"line {len(GOOD_LINES)}: cut off after 5 of 6 fields"),
    "columns_shift": (shifted(), "line 10: malformed CSV: 5 fields, the header has 6"),
    "extra_field": (replace_line(12, GOOD_LINES[11] + ",7"), "line 12: malformed CSV: 7 fields, the header has 6"),
    "xlsx_as_csv": (xlsx_bytes(), "an Excel .xlsx workbook?), not CSV text"),
    "xls_as_csv": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "an Excel .xls workbook"),
    "html_page": ("<!DOCTYPE html><html><body>Too many requests</body></html>", "looks like HTML"),
    "negative_volume": (replace_line(5, "2020-01-06,10,11,9,10,-100"), "line 5, column volume: negative volume -100"),
    "all_equal": (HEADER + "".join(f"2020-01-{d:02d},10,10,10,10,100\n" for d in range(1, 29)), "every price is 10"),
    "after_today": (
        GOOD + "2999-01-02,10,11,9,10,100\n",
        f"line {len(GOOD_LINES) + 1}: date '2999-01-02' is after today",
    ),
    "infinite": (replace_line(8, "2020-01-09,10,inf,9,10,100"), "line 8, column high: 'inf' is not a finite number"),
    "huge": (replace_line(8, "2020-01-09,10,1e999,9,10,100"), "line 8, column high: '1e999' is not a finite number"),
    "header_repeated": (GOOD + GOOD_LINES[0] + "\n", f"line {len(GOOD_LINES) + 1} repeats the header"),
    "ancient_date": (replace_line(2, "1700-01-02,10,11,9,10,100"), "line 2: date '1700-01-02' is before 1800"),
    "text_in_volume": (replace_line(4, "2020-01-03,10,11,9,10,lots"), "line 4, column volume: 'lots' is not a number"),
    "no_separator": ("just some text\nmore text\n", "line 1: no separator in the header"),
    "pickle": (b"\x80\x04\x95" + bytes(50), "binary file"),
    "whitespace_only": ("\n\n   \n", "file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs(cli, tmp_path, case):
    content, expected = BAD_INPUTS[case]
    path = write(tmp_path, content, f"{case}.csv")
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{path}: ", out)
    assert expected in err


def test_constant_target_column(cli, tmp_path):
    frame = make_prices(60)
    frame["Close"] = 42.0
    frame["High"] = frame[["Open", "Close"]].max(axis=1) + 1
    frame["Low"] = frame[["Open", "Close"]].min(axis=1) - 1
    path = write(tmp_path, frame.to_csv())
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--target", "close", "--out", out, *FAST)
    assert_clean_failure(code, err, "column close is 42 on every row: nothing to forecast", out)


def test_damaged_parquet(cli, tmp_path):
    path = tmp_path / "bad.parquet"
    make_prices(30).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", path, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{path}: not a readable Parquet file", out)


@pytest.mark.parametrize("contents", [{}, {"README.md": "prices are elsewhere", "notes.txt": "x"}])
def test_folder_with_no_readable_file(cli, tmp_path, contents):
    folder = tmp_path / "empty"
    folder.mkdir()
    for name, text in contents.items():
        (folder / name).write_text(text)
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", folder, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{folder}: no readable file in the folder", out)


def test_folder_with_one_bad_file_names_it_and_writes_nothing(cli, tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    make_prices(120, seed=1).to_csv(folder / "AAA.csv")
    write(folder, replace_line(9, "2020-01-12,10,11,9,ten,100"), "BBB.csv")
    out = tmp_path / "out"
    code, _, err = cli("evaluate", "--data", folder, "--out", out, *FAST)
    assert_clean_failure(code, err, f"{folder / 'BBB.csv'}: line 9, column close: 'ten' is not a number", out)


def test_folder_run_writes_per_ticker_outputs_and_summary(cli, tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    make_prices(120, seed=1).to_csv(folder / "AAA.csv")
    make_prices(130, seed=2).to_parquet(folder / "BBB.parquet")
    out = tmp_path / "out"
    code, stdout, err = cli("evaluate", "--data", folder, "--test-start", "2020-05-01", "--out", out,
                            "--models", "ridge,ridge_local", "--window", "5", "--quiet")  # fmt: skip
    assert code == 0, err
    assert {"AAA", "BBB", "summary.csv", "panel.json", "rank_ic.csv"} <= {p.name for p in out.iterdir()}
    for ticker in ("AAA", "BBB"):
        files = {p.name for p in (out / ticker).iterdir()}
        assert files >= {"metrics.json", "predictions.csv", "forecast.png"}
        metrics = json.loads((out / ticker / "metrics.json").read_text())
        assert metrics["data"]["name"] == ticker and metrics["settings"]["ticker"] == ticker
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["ticker", "model", "n", "rmse", "mae", "skill", "dm_pvalue",
                                     "direction_accuracy", "coverage_80", "coverage_95"]  # fmt: skip
    assert summary[["ticker", "model"]].values.tolist() == [
        ["AAA", "ridge"], ["AAA", "ridge_local"], ["AAA", "persistence"],
        ["BBB", "ridge"], ["BBB", "ridge_local"], ["BBB", "persistence"],
    ]  # fmt: skip
    ridge = json.loads((out / "BBB" / "metrics.json").read_text())["models"]["ridge_local"]
    assert summary.iloc[4]["rmse"] == pytest.approx(ridge["rmse"], rel=1e-5)
    panel = json.loads((out / "panel.json").read_text())
    assert panel["settings"]["tickers_evaluated"] == 2 and panel["failed"] == [] and panel["skipped"] == []
    assert panel["settings"]["models"]["ridge"]["kind"] == "global"
    assert "ridge_local" in stdout and "summary.csv" in stdout


def test_fit_and_predict_refuse_a_folder(cli, tmp_path):
    make_prices(30).to_csv(tmp_path / "AAA.csv")
    code, _, err = cli("fit", "--data", tmp_path, "--model", "persistence", "--save", tmp_path / "m")
    assert code == 2 and "is a folder; fit and predict take one price file" in err
