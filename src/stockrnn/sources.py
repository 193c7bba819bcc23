"""Where prices come from: CSV and Parquet files, folders of them, built-in and online data.

Each reader returns a `RawTable` (the source's own column names, strings or numbers) and leaves
parsing, validation and repair to `data.py`, so every source gets the same rules and messages.
Readers only check what they alone can see: bytes that are not CSV text, cut or shifted lines.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .files import DATA_SUFFIXES

BUILTINS = ("sp500", "nasdaq")
YAHOO_PIN = "yfinance==1.7.0"
# File signatures of things people save under a .csv name by mistake.
SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?), not CSV text: export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook, not CSV text: export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed, not CSV text: decompress it first"),
    (b"{\\rtf", "an RTF document, not CSV text"),
)
SEPARATORS = (",", ";", "\t", "|")


@dataclass
class RawTable:
    """A table as read, before parsing: `where[i]` names row i in messages ('line 7', 'row 6')."""

    frame: pd.DataFrame
    label: str
    name: str
    unit: str = "row"
    lines: np.ndarray | None = None
    sep: str = ","

    def where(self, position: int) -> str:
        numbers = self.lines if self.lines is not None else np.arange(1, len(self.frame) + 1)
        return f"{self.unit} {int(numbers[position])}"


def show(value: object, limit: int = 40) -> str:
    """A value from a file, quoted for a one-line message: line breaks escaped, long values cut."""
    text = one_line(str(value))
    return repr(text if len(text) <= limit else text[:limit] + "...")


def one_line(text: str) -> str:
    """Escape every character that `str.splitlines` would break a line at."""
    return re.sub(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)


def is_folder(source: object) -> bool:
    """Does `source` name a folder (a panel)? A bare built-in name ('sp500') is the built-in data, as
    `read_source` reads it; with a folder of that name here as well, which one is meant is asked."""
    text = str(source)
    if not isinstance(source, (str, Path)) or not Path(text).is_dir():
        return False
    if text.lower() in BUILTINS:
        raise ConfigError(
            f"'{text}' names the built-in {text.lower()} dataset and a folder here: write ./{text} for the folder"
        )
    return True


def read_source(source: str | Path | pd.DataFrame) -> RawTable:
    """Dispatch on the kind of source; a folder is an error here (see `list_folder`)."""
    if isinstance(source, pd.DataFrame):
        return RawTable(_flatten_columns(_dates_as_column(source)), "<DataFrame>", "data")
    text = str(source)
    if text.lower() in BUILTINS:
        return read_builtin(text.lower())
    if text.lower().startswith("yahoo:"):
        return read_yahoo(text[len("yahoo:") :].strip(), label=text)
    path = Path(text)
    if not path.exists():
        if path.is_symlink():
            raise DataError(f"{path}: a broken link (to {os.readlink(path)})")
        raise DataError(f"{path}: no such file (nor a built-in dataset: {', '.join(BUILTINS)})")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give one file (folders run per ticker through load_folder)")
    if path.suffix.lower() in (".parquet", ".pq"):
        return read_parquet(path)
    return read_csv(path)


def list_folder(path: Path) -> list[Path]:
    """The CSV and Parquet files in `path`, sorted by name (hidden files skipped); a broken link is
    kept, so that reading it fails naming it instead of the ticker vanishing without a word."""
    try:
        files = sorted(
            p
            for p in path.iterdir()
            if (p.is_file() or (p.is_symlink() and not p.exists()))
            and not p.name.startswith(".")
            and p.suffix.lower() in DATA_SUFFIXES
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
    if not files:
        raise DataError(f"{path}: no readable file in the folder (expected *.csv or *.parquet, one ticker per file)")
    return files


def ticker_from_filename(path: Path) -> str:
    """'IBM_2006-01-01_to_2018-01-01.csv' -> 'IBM'; 'AAPL.parquet' -> 'AAPL'."""
    match = re.match(r"^(.+?)[_-]\d{4}-?\d{2}-?\d{2}", path.stem)
    return match.group(1) if match else path.stem


def _has_date_index(frame: pd.DataFrame) -> bool:
    name = str(frame.index.name or "").strip().lower()
    return isinstance(frame.index, pd.DatetimeIndex) or name in ("date", "datetime", "timestamp", "time")


def _dates_as_column(frame: pd.DataFrame) -> pd.DataFrame:
    """A date index becomes a column; `set_index('Date', drop=False)` keeps one already, so that
    index is dropped (inserting it again was 'cannot insert Date, already exists', exit 1)."""
    if not _has_date_index(frame):
        return frame
    return frame.reset_index(drop=frame.index.name in frame.columns)


def _flatten_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """yfinance's (Price, Ticker) column levels to plain price names; one ticker per table."""
    if not isinstance(frame.columns, pd.MultiIndex):
        return frame
    names = list(frame.columns.names)
    level = names.index("Price") if "Price" in names else 0
    others = [i for i in range(frame.columns.nlevels) if i != level]
    for i in others:
        values = {v for v in frame.columns.get_level_values(i) if str(v) != ""}
        if len(values) > 1:
            raise DataError(f"table holds several tickers ({', '.join(map(str, sorted(values)))}); give one")
    return frame.set_axis([str(c[level]) if c[level] != "" else str(c[0]) for c in frame.columns], axis=1)


def read_builtin(name: str) -> RawTable:
    try:
        if name == "sp500":
            from arch.data import sp500 as module
        else:
            from arch.data import nasdaq as module
    except ImportError as exc:  # pragma: no cover - arch is a dependency
        raise DataError(f"{name}: the built-in data needs the 'arch' package ({exc})") from None
    frame = module.load()
    frame.index.name = "Date"
    return RawTable(frame.reset_index(), name, name)


def read_yahoo(symbol: str, label: str) -> RawTable:
    """The full daily history from Yahoo Finance, unadjusted, with Adj Close (needs the extra)."""
    if not re.fullmatch(r"[A-Za-z0-9.^=\-]{1,20}", symbol):
        raise DataError(f"{label}: {show(symbol)} is not a ticker symbol (e.g. yahoo:AAPL)")
    try:
        import yfinance as yf
    except ImportError:
        raise DataError(
            f"{label}: Yahoo Finance needs the optional yfinance package: in the stockrnn folder run "
            ".venv/bin/pip install -e '.[yahoo]' (the make set-up), elsewhere pip install 'stockrnn[yahoo]'"
        ) from None
    logger = logging.getLogger("yfinance")
    disabled, logger.disabled = logger.disabled, True  # its own error lines would break our one-line rule
    try:
        frame = yf.Ticker(symbol).history(period="max", interval="1d", auto_adjust=False, actions=False)
    except Exception as exc:  # noqa: BLE001 - any failure of the third-party download is a data problem
        raise DataError(f"{label}: download failed ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    finally:
        logger.disabled = disabled
    if frame is None or len(frame) == 0:
        raise DataError(f"{label}: Yahoo Finance returned no prices (unknown ticker, or no connection?)")
    return RawTable(_flatten_columns(frame.reset_index()), label, symbol.upper())


def read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({reason})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: has no data rows")
    return RawTable(_flatten_columns(_dates_as_column(frame)), str(path), ticker_from_filename(path))


def read_csv(path: Path) -> RawTable:
    """Read CSV text as a table of strings, checking every line has the header's field count."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:4] == b"PAR1":
        return read_parquet(path)
    text = decode(data, str(path))
    table = parse_csv_text(text, str(path))
    table.name = ticker_from_filename(path)
    return table


def decode(data: bytes, label: str) -> str:
    """Bytes to text, or a DataError saying what the bytes are instead."""
    if not data.strip():
        raise DataError(f"{label}: file is empty")
    for magic, what in SIGNATURES:
        if data.startswith(magic):
            raise DataError(f"{label}: {what}")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(f"{label}: damaged UTF-16 text") from None
    if b"\x00" in data[:4096]:
        raise DataError(f"{label}: binary file, not CSV text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{label}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None
    if text.lstrip().startswith("<"):
        raise DataError(f"{label}: looks like HTML or XML, not CSV text (a download error page?)")
    return text


def parse_csv_text(text: str, label: str) -> RawTable:
    """CSV text to a string table; every data line must have as many fields as the header."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise DataError(f"{label}: file is empty")
    header_line = lines[start]
    counts = {s: header_line.count(s) for s in SEPARATORS}
    sep = max(SEPARATORS, key=lambda s: counts[s])
    if counts[sep] == 0:
        raise DataError(f"{label}: line {start + 1}: no separator in the header (expected columns split by , or ;)")
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=sep)
    try:
        header = [h.strip() for h in next(reader)]
        rows, numbers = [], []
        for row in reader:
            line = start + reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                raise DataError(_field_count_message(label, line, len(row), len(header), line == len(lines), text))
            if [f.strip() for f in row] == header:
                raise DataError(f"{label}: line {line} repeats the header (two files joined?)")
            rows.append(row)
            numbers.append(line)
    except csv.Error as exc:
        raise DataError(f"{label}: line {start + reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{label}: has a header but no data rows")
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    return RawTable(frame, label, "data", unit="line", lines=np.asarray(numbers), sep=sep)


def _field_count_message(label: str, line: int, got: int, want: int, last: bool, text: str) -> str:
    if got < want and last and not text.endswith(("\n", "\r")):
        return f"{label}: line {line}: cut off after {got} of {want} fields (the file looks truncated)"
    if got < want:
        return f"{label}: line {line}: malformed CSV: {got} fields, the header has {want} (a missing field?)"
    return (
        f"{label}: line {line}: malformed CSV: {got} fields, the header has {want} "
        "(columns shift here: an extra field, or a separator inside an unquoted value?)"
    )
