"""Price sources and `load_prices`: parse, normalise, validate and repair, reporting every repair.

Every source (a CSV file, a built-in dataset, a DataFrame) goes through the same steps, so a
repair rule or a validation message is written once. Problems in the input raise `DataError`
with one line that names the file and, where there is one, the line and column.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
# Columns that hold prices (must be > 0); other numeric columns (volume, turnover) may be 0.
PRICE_LIKE = (*PRICE_COLUMNS, "adj_close", "last")
MISSING_TOKENS = frozenset({"", "null", "nan", "na", "n/a", "-"})
DATE_NAMES = ("date", "datetime", "timestamp")
TEXT_COLUMNS = ("name", "ticker", "symbol", "series")
# Layout-specific names mapped onto the conventions (the NSE layout's quantity is the volume).
RENAMES = {"total_trade_quantity": "volume"}
BUILTINS = ("sp500", "nasdaq")


def snake_case(name: str) -> str:
    """'Adj Close' -> 'adj_close', 'Turnover (Lacs)' -> 'turnover_lacs'."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


@dataclass
class Repairs:
    """What loading changed or removed, so that nothing is dropped silently.

    `filled` and `widened` map a column to the dates whose value was forward filled or widened
    (high raised / low lowered to contain open and close); scoring skips those dates.
    """

    filled: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    widened: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    dropped_nonpositive: list[pd.Timestamp] = field(default_factory=list)
    dropped_leading_missing: list[pd.Timestamp] = field(default_factory=list)
    reordered: bool = False

    def changed_dates(self, column: str) -> pd.DatetimeIndex:
        """Dates whose value in `column` is not the one in the source."""
        dates = list(self.filled.get(column, [])) + list(self.widened.get(column, []))
        return pd.DatetimeIndex(sorted(set(dates)))

    def total(self) -> int:
        return (
            sum(len(v) for v in self.filled.values())
            + sum(len(v) for v in self.widened.values())
            + len(self.dropped_nonpositive)
            + len(self.dropped_leading_missing)
        )

    def to_dict(self) -> dict:
        def days(values: list[pd.Timestamp]) -> list[str]:
            return [d.strftime("%Y-%m-%d") for d in values]

        return {
            "filled": {c: days(v) for c, v in self.filled.items()},
            "widened": {c: days(v) for c, v in self.widened.items()},
            "dropped_nonpositive": days(self.dropped_nonpositive),
            "dropped_leading_missing": days(self.dropped_leading_missing),
            "reordered_ascending": self.reordered,
            "counts": {
                "filled": sum(len(v) for v in self.filled.values()),
                "widened": sum(len(v) for v in self.widened.values()),
                "dropped_nonpositive": len(self.dropped_nonpositive),
                "dropped_leading_missing": len(self.dropped_leading_missing),
            },
        }

    def summary(self) -> str:
        """One line for the run summary."""
        parts = []
        for column, dates in self.filled.items():
            parts.append(f"{len(dates)} missing {column} filled forward")
        for column, dates in self.widened.items():
            parts.append(f"{len(dates)} {column} widened to contain open/close")
        if self.dropped_nonpositive:
            shown = ", ".join(d.strftime("%Y-%m-%d") for d in self.dropped_nonpositive[:5])
            parts.append(f"{len(self.dropped_nonpositive)} rows with a non-positive price dropped ({shown})")
        if self.dropped_leading_missing:
            parts.append(f"{len(self.dropped_leading_missing)} leading rows with missing values dropped")
        if self.reordered:
            parts.append("rows sorted oldest first")
        return "; ".join(parts) if parts else "no repairs"


@dataclass
class Prices:
    """Validated daily prices: a DataFrame on an ascending, unique date index, plus its repairs."""

    frame: pd.DataFrame
    repairs: Repairs
    source: str
    name: str

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.frame.index

    def column(self, name: str) -> pd.Series:
        """A numeric column, or a ConfigError naming the source and the columns it has."""
        if name not in self.frame.columns:
            have = ", ".join(self.frame.columns)
            raise ConfigError(f"{self.source}: no column for target '{name}' (columns: {have})")
        return self.frame[name]

    def slice(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> Prices:
        """Rows with start <= date <= end (either bound may be None), same repairs and source."""
        frame = self.frame.loc[start:end] if (start is not None or end is not None) else self.frame
        return Prices(frame, self.repairs, self.source, self.name)


def as_prices(prices: Prices | pd.DataFrame) -> Prices:
    """Accept a `Prices` or a raw DataFrame (validated on the way in) wherever prices are taken."""
    if isinstance(prices, Prices):
        return prices
    if isinstance(prices, pd.DataFrame):
        return load_prices(prices)
    raise TypeError(f"expected Prices or a DataFrame, got {type(prices).__name__}")


def load_prices(source: str | Path | pd.DataFrame) -> Prices:
    """Load prices from a CSV file, a built-in dataset (`sp500`, `nasdaq`) or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index() if _has_date_index(source) else source
        return _build(frame, label="<DataFrame>", name="data")
    text = str(source)
    if text.lower() in BUILTINS:
        return _load_builtin(text.lower())
    if text.lower().startswith("yahoo:"):
        raise DataError(f"{text}: online Yahoo Finance sources are not supported in this version")
    path = Path(text)
    if not path.exists():
        raise DataError(f"{path}: no such file (nor a built-in dataset: {', '.join(BUILTINS)})")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give one CSV file")
    raw = _read_csv_text(path)
    return _build(raw, label=str(path), name=path.stem)


def _has_date_index(frame: pd.DataFrame) -> bool:
    return isinstance(frame.index, pd.DatetimeIndex) or snake_case(frame.index.name or "") in DATE_NAMES


def _load_builtin(name: str) -> Prices:
    try:
        if name == "sp500":
            from arch.data import sp500 as module
        else:
            from arch.data import nasdaq as module
    except ImportError as exc:  # pragma: no cover - arch is a dependency
        raise DataError(f"{name}: the built-in data needs the 'arch' package ({exc})") from None
    frame = module.load()
    frame.index.name = "Date"
    prices = _build(frame.reset_index(), label=name, name=name)
    prices.source = name
    return prices


def _read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV as a table of strings; parsing to numbers happens in one place for all sources."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    if b"\x00" in data[:4096]:
        raise DataError(f"{path}: binary file, not CSV text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    header = text.splitlines()[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    try:
        raw = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path}: malformed CSV ({message})") from None
    if raw.empty:
        raise DataError(f"{path}: has a header but no data rows")
    return raw


def _line(position: int) -> int:
    """File line of the data row at `position` (line 1 is the header)."""
    return position + 2


def _build(raw: pd.DataFrame, label: str, name: str) -> Prices:
    frame, name = _parse(raw, label, name)
    frame, repairs = _repair(frame, label)
    if len(frame) == 0:
        raise DataError(f"{label}: no rows left after removing rows with missing or non-positive prices")
    return Prices(frame, repairs, label, name)


def _parse(raw: pd.DataFrame, label: str, name: str) -> tuple[pd.DataFrame, str]:
    """Strings (or numbers) to a numeric frame on a date index, with line numbers kept for errors."""
    if raw.empty:
        raise DataError(f"{label}: has a header but no data rows")
    columns = [RENAMES.get(snake_case(c), snake_case(c)) for c in raw.columns]
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"{label}: duplicate column names after normalising: {', '.join(dupes)}")
    raw = raw.set_axis(columns, axis=1).reset_index(drop=True)
    date_col = next((c for c in DATE_NAMES if c in raw.columns), None)
    if date_col is None:
        raise DataError(f"{label}: no date column (expected one named Date; columns: {', '.join(raw.columns)})")
    missing = [c for c in PRICE_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{label}: no column for {', '.join(missing)} (columns: {', '.join(raw.columns)})")

    dates = _parse_dates(raw[date_col], label)
    texts = [c for c in raw.columns if c in TEXT_COLUMNS]
    if texts:
        values = raw[texts[0]].astype(str).str.strip().unique()
        if len(values) == 1 and values[0]:
            name = values[0]
    numeric = {}
    for column in raw.columns:
        if column == date_col or column in TEXT_COLUMNS:
            continue
        numeric[column] = _parse_numbers(raw[column], label, column)
    frame = pd.DataFrame(numeric, index=pd.DatetimeIndex(dates, name="date"))
    frame.attrs["line"] = np.arange(len(frame))  # original positions, for messages after sorting
    return frame, name


def _parse_dates(column: pd.Series, label: str) -> pd.DatetimeIndex:
    text = column.astype(str).str.strip() if column.dtype == object or column.dtype == "string" else column
    if pd.api.types.is_datetime64_any_dtype(text):
        parsed = pd.to_datetime(text)
    else:
        empty = text.eq("")
        if empty.any():
            raise DataError(f"{label}: line {_line(int(np.argmax(empty.to_numpy())))}: empty date")
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=False)
        if parsed.isna().any():
            parsed = pd.to_datetime(text, format="mixed", errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            pos = int(np.argmax(bad))
            raise DataError(f"{label}: line {_line(pos)}: date '{text.iloc[pos]}' does not parse")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return pd.DatetimeIndex(parsed).normalize().as_unit("ns")


def _parse_numbers(column: pd.Series, label: str, name: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=float)
    text = column.astype(str).str.strip()
    is_missing = text.str.lower().isin(MISSING_TOKENS)
    parsed = pd.to_numeric(text.where(~is_missing), errors="coerce")
    bad = (parsed.isna() & ~is_missing).to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(f"{label}: line {_line(pos)}, column {name}: '{text.iloc[pos]}' is not a number")
    return parsed.to_numpy(dtype=float)


def _repair(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, Repairs]:
    """Sort, reject duplicates, drop non-positive prices, fill gaps forward, widen high/low."""
    repairs = Repairs()
    lines = frame.attrs.pop("line")
    if not frame.index.is_monotonic_increasing:
        order = np.argsort(frame.index.to_numpy(), kind="stable")
        frame, lines = frame.iloc[order], lines[order]
        repairs.reordered = True
    dup = frame.index.duplicated(keep="first")
    if dup.any():
        pos = int(np.argmax(dup))
        first = int(np.argmax(frame.index == frame.index[pos]))
        day = frame.index[pos].strftime("%Y-%m-%d")
        raise DataError(f"{label}: duplicate date {day} (lines {_line(lines[first])} and {_line(lines[pos])})")
    volume = frame.get("volume")
    if volume is not None and (volume < 0).any():
        pos = int(np.argmax((volume < 0).to_numpy()))
        raise DataError(f"{label}: line {_line(lines[pos])}, column volume: negative volume {volume.iloc[pos]:g}")

    prices = [c for c in frame.columns if c in PRICE_LIKE]
    nonpositive = (frame[prices] <= 0).any(axis=1)
    if nonpositive.any():
        repairs.dropped_nonpositive = list(frame.index[nonpositive])
        frame = frame.loc[~nonpositive]

    missing = frame.isna()
    complete = ~missing.any(axis=1)
    if not complete.any():
        raise DataError(f"{label}: every row has a missing value")
    first_complete = int(np.argmax(complete.to_numpy()))
    if first_complete > 0:
        repairs.dropped_leading_missing = list(frame.index[:first_complete])
        frame, missing = frame.iloc[first_complete:], missing.iloc[first_complete:]
    for column in frame.columns:
        if missing[column].any():
            repairs.filled[column] = list(frame.index[missing[column]])
    frame = frame.ffill()

    top = frame[["open", "close"]].max(axis=1)
    bottom = frame[["open", "close"]].min(axis=1)
    high_low = frame["high"] < top, frame["low"] > bottom
    for column, mask, bound in (("high", high_low[0], top), ("low", high_low[1], bottom)):
        if mask.any():
            repairs.widened[column] = list(frame.index[mask])
            frame.loc[mask, column] = bound[mask]
    return frame.astype(float), repairs
