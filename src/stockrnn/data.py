"""`load_prices` and `load_folder`: parse, normalise, validate and repair, reporting every repair.

Every source (a CSV or Parquet file, a built-in or online dataset, a DataFrame; see `sources.py`)
goes through the same steps, so a repair rule or a validation message is written once. Problems
in the input raise `DataError` with one line that names the file and, where there is one, the
line (row) and column.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, RowError
from .numeric import MISSING_TOKENS, is_text, parse_numbers
from .repairs import GAP_DAYS, Repairs
from .sources import BUILTINS, RawTable, list_folder, one_line, read_source, show

__all__ = ["BUILTINS", "Prices", "Repairs", "as_prices", "load_folder", "load_prices", "snake_case"]

PRICE_COLUMNS = ("open", "high", "low", "close")  # any of them may be absent: a Date,Close file is fine
# Columns that hold prices (must be > 0); other numeric columns (volume, turnover) may be 0.
PRICE_LIKE = (*PRICE_COLUMNS, "adj_close", "last")
DATE_NAMES = ("date", "datetime", "timestamp", "time", "trade_date", "day")
TEXT_COLUMNS = ("name", "ticker", "symbol", "series", "currency", "exchange")
# Layout-specific names mapped onto the conventions (the NSE layout's quantity is the volume).
# nasdaq.com's historical-quotes export calls its close "Close/Last".
RENAMES = {
    "total_trade_quantity": "volume",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
    "close_last": "close",
}
EARLIEST = pd.Timestamp("1800-01-01")
SPLIT_FACTOR = 1.8  # a close-to-close move beyond this factor looks like an unadjusted split
# A trailing time-zone designator after a time: '2020-01-02 00:00:00-05:00', '...T00:00Z', '... UTC'.
TZ_SUFFIX = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$")
# d/m/yyyy or m/d/yyyy (also with '-'): which part is the month must be read from the file.
SLASH_DATE = re.compile(r"^(\d{1,2})([/-])(\d{1,2})\2\d{2,4}\b")


def snake_case(name: str) -> str:
    """'Adj Close' -> 'adj_close', 'Turnover (Lacs)' -> 'turnover_lacs'."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


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
        values = self.frame[name]
        if len(values) > 1 and values.nunique() == 1:
            raise DataError(
                f"{self.source}: column {name} is {values.iloc[0]:g} on every row: nothing to forecast "
                "(a scaler would divide by zero)"
            )
        return values

    @property
    def missing_ohlc(self) -> tuple[str, ...]:
        """Which of open, high, low the source lacks (a Date,Close file lacks all three): the inputs
        built from them are left out, and the run says so."""
        return tuple(c for c in ("open", "high", "low") if c not in self.frame.columns)

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


def load_prices(
    source: str | Path | pd.DataFrame, allow_gaps: bool | None = None, *, before: pd.Timestamp | None = None
) -> Prices:
    """Load prices from a CSV or Parquet file, `sp500`/`nasdaq`, `yahoo:TICKER` or a DataFrame.

    More than 5% of rows repaired (filled, widened, dropped, or untraded days inside the history) is
    a DataError unless `allow_gaps`; by default (None) that limit holds for files and online data,
    not for a DataFrame built in code (still repaired, reported). A leading stretch of untraded rows
    is dropped and reported but not counted, on either side of the share: a listing whose vendor
    back-filled stale quotes before the first trade is as good as the file that starts at that trade.
    `before`: only the rows dated before it (a panel keeps a file's rows before its first bad row).
    """
    if allow_gaps is None:
        allow_gaps = isinstance(source, pd.DataFrame)
    try:
        return _build(read_source(source), allow_gaps, before)
    except RowError as exc:  # whatever a file holds, the message stays on one line
        raise RowError(one_line(str(exc)), exc.day) from None
    except DataError as exc:
        raise DataError(one_line(str(exc))) from None


def load_folder(folder: str | Path, allow_gaps: bool = False) -> dict[str, Prices]:
    """Every CSV/Parquet file in `folder`, one ticker each, as {ticker: Prices} in file-name order.

    The ticker is the file's single `Name`/`ticker` value, else its file name ('IBM_2006-...' ->
    'IBM'). Kept separate per ticker so that windows never cross tickers."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    panel: dict[str, Prices] = {}
    for path in list_folder(folder):
        prices = load_prices(path, allow_gaps=allow_gaps)
        if prices.name in panel:
            first = Path(panel[prices.name].source).name
            raise DataError(f"{folder}: ticker {prices.name} is in both {first} and {path.name}")
        panel[prices.name] = prices
    return panel


def _build(raw: RawTable, allow_gaps: bool, before: pd.Timestamp | None = None) -> Prices:
    label = raw.label
    frame, name, lines = _parse(raw)
    if before is not None:
        keep = np.asarray(frame.index < before)
        frame, lines = frame.loc[keep], lines[keep]
    frame, repairs = _repair(frame, lines, raw)
    repairs.source_rows = len(lines)
    if len(frame) == 0:
        raise DataError(f"{label}: no rows left after removing rows with missing or non-positive prices")
    flat = frame[[c for c in frame.columns if c in PRICE_LIKE]].to_numpy()
    if len(flat) > 1 and np.all(flat == flat[0, 0]):
        raise DataError(f"{label}: every price is {flat[0, 0]:g}: nothing to forecast (a scaler would divide by zero)")
    steps = np.diff(frame.index.to_numpy()).astype("timedelta64[D]").astype(int)
    repairs.gaps = [(frame.index[i], frame.index[i + 1]) for i in np.flatnonzero(steps > GAP_DAYS)]
    if "close" in frame.columns:
        ratio = frame["close"].to_numpy()[1:] / frame["close"].to_numpy()[:-1]
        jumps = np.flatnonzero((ratio > SPLIT_FACTOR) | (ratio < 1 / SPLIT_FACTOR))
        repairs.jumps = [(frame.index[i + 1], float(ratio[i])) for i in jumps]
    excess = None if allow_gaps else repairs.excess(label)
    if excess is not None:
        raise DataError(excess)
    return Prices(frame, repairs, label, name)


def _parse(raw: RawTable) -> tuple[pd.DataFrame, str, np.ndarray]:
    """Strings (or numbers) to a numeric frame on a date index, with each row's line for messages."""
    label, table, name = raw.label, raw.frame, raw.name
    if table.empty:
        raise DataError(f"{label}: has a header but no data rows")
    columns = [RENAMES.get(snake_case(c), snake_case(c)) or f"column_{i + 1}" for i, c in enumerate(table.columns)]
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"{label}: duplicate column names after normalising: {', '.join(dupes)}")
    table = table.set_axis(columns, axis=1).reset_index(drop=True)
    date_col = next((c for c in DATE_NAMES if c in table.columns), None)
    if date_col is None and re.fullmatch(r"column_1|unnamed_0|index", columns[0]):
        date_col = columns[0]  # an unnamed first column, as pandas writes an index without a name
    if date_col is None:
        raise DataError(f"{label}: no date column (expected one named Date; columns: {', '.join(table.columns)})")
    if not any(c in PRICE_LIKE for c in table.columns):
        hint = ": a forecast stockrnn predict wrote? keep it out of the data folder" if "forecast" in columns else ""
        raise DataError(
            f"{label}: no price column (expected Close, or Open, High, Low, Adj Close; "
            f"columns: {', '.join(table.columns)}){hint}"
        )

    dates = _parse_dates(table[date_col], raw)
    lines = raw.lines if raw.lines is not None else np.arange(1, len(table) + 1)
    texts = [c for c in table.columns if c in TEXT_COLUMNS]
    if texts:
        values = table[texts[0]].astype(str).str.strip().unique()
        if len(values) == 1 and values[0] and values[0].lower() not in MISSING_TOKENS:
            name = values[0]
    numeric_cols = [c for c in table.columns if c not in (*DATE_NAMES, *TEXT_COLUMNS, date_col)]
    european = raw.sep == ";" and any(
        table[c].astype(str).str.contains(r"\d,\d", regex=True).any() for c in numeric_cols if is_text(table[c])
    )
    numeric = {c: parse_numbers(table[c], raw, c, european) for c in numeric_cols}
    frame = pd.DataFrame(numeric, index=pd.DatetimeIndex(dates, name="date"))
    return frame, name, np.asarray(lines)


def _parse_dates(column: pd.Series, raw: RawTable) -> pd.DatetimeIndex:
    """Dates, times or time-zone-aware stamps to dates (the local calendar day of each row)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.Series(pd.to_datetime(column))
        if parsed.isna().any():
            raise DataError(f"{raw.label}: {raw.where(int(np.argmax(parsed.isna().to_numpy())))}: empty date")
    else:
        text = column.astype(str).str.strip()
        empty = text.str.lower().isin(MISSING_TOKENS).to_numpy()
        if empty.any():
            raise DataError(f"{raw.label}: {raw.where(int(np.argmax(empty)))}: empty date")
        local = text.str.replace(TZ_SUFFIX, r"\1", regex=True)  # keep the local wall time, drop its offset
        _check_one_date_style(local, raw)
        _check_day_month_order(local, raw)
        parsed = _to_datetime(local)
        bad = parsed.isna().to_numpy()
        if bad.any():
            pos = int(np.argmax(bad))
            raise DataError(f"{raw.label}: {raw.where(pos)}: date {show(text.iloc[pos])} does not parse")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    dates = pd.DatetimeIndex(parsed).normalize()
    latest = pd.Timestamp.now(tz="Pacific/Kiritimati").tz_localize(None).normalize()  # today, anywhere on Earth
    for wrong, what in ((dates > latest, "is after today"), (dates < EARLIEST, "is before 1800")):
        if wrong.any():
            pos = int(np.argmax(wrong))
            raise DataError(f"{raw.label}: {raw.where(pos)}: date {show(str(column.iloc[pos]).strip())} {what}")
    return dates.as_unit("ns")


def _check_one_date_style(text: pd.Series, raw: RawTable) -> None:
    """A column mixing year-first dates with day/month-first ones is refused: one '16/06/2020' would
    make pandas read every '2020-01-02' of the column as the 1st of February, silently."""
    year_first = text.str.match(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)").to_numpy()
    if year_first.all() or not year_first.any():
        return
    other = ~year_first if year_first[0] else year_first
    pos = int(np.argmax(other))
    style = "YYYY-MM-DD" if year_first[0] else "day/month first"
    raise DataError(
        f"{raw.label}: {raw.where(pos)}: date {show(text.iloc[pos])} is written another way than the first "
        f"row's {show(text.iloc[0])} ({style}); write every date as YYYY-MM-DD"
    )


def _check_day_month_order(text: pd.Series, raw: RawTable) -> None:
    """Slash (or dash) dates need one row with a part above 12 to tell day from month: '12/31/2020'
    is month first (nasdaq.com, US exports), '31/12/2020' day first. When every row has both parts
    at most 12, guessing would silently swap days and months on some rows: that is an error."""
    parts = text.str.extract(SLASH_DATE)
    if len(text) == 0 or parts[0].isna().any():
        return
    first, second = pd.to_numeric(parts[0]), pd.to_numeric(parts[2])
    if (first <= 12).all() and (second <= 12).all():
        raise DataError(
            f"{raw.label}: {raw.where(0)}: date {show(text.iloc[0])}: the order of day and month cannot be told "
            "(no date in the file has a part above 12); write the dates as YYYY-MM-DD"
        )


def _to_datetime(text: pd.Series) -> pd.Series:
    """ISO first; then day-first for '31.12.2020' and for slashes whose first part exceeds 12,
    month-first for other slash dates ('12/31/2020'); epoch seconds or milliseconds for 10 or 13
    digit numbers. Unparseable values become NaT."""
    if text.str.fullmatch(r"\d{10}|\d{13}").all():
        unit = "s" if len(text.iloc[0]) == 10 else "ms"
        return pd.Series(pd.to_datetime(text.astype("int64"), unit=unit, errors="coerce"), index=text.index)
    attempts = [dict(format="ISO8601")]
    first = pd.to_numeric(text.str.extract(SLASH_DATE)[0], errors="coerce")
    dayfirst = bool(text.str.match(r"^\d{1,2}\.\d{1,2}\.\d{2,4}\b").all() or (first > 12).any())
    attempts.append(dict(format="mixed", dayfirst=dayfirst))
    with warnings.catch_warnings():  # pandas' format guesses warn on stderr; our errors say it all
        warnings.simplefilter("ignore")
        for kwargs in attempts:
            try:
                parsed = pd.Series(pd.to_datetime(text, errors="coerce", **kwargs), index=text.index)
            except (ValueError, TypeError, OverflowError):
                continue
            if not parsed.isna().any():
                return parsed
        # Values one at a time, only on the error path: finds the first that fails.
        return pd.Series(pd.to_datetime(text.map(lambda v: _one_date(v, dayfirst))), index=text.index)


def _one_date(value: str, dayfirst: bool) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(pd.to_datetime(value, dayfirst=dayfirst))
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if stamp is pd.NaT:
        return stamp
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _repair(frame: pd.DataFrame, lines: np.ndarray, raw: RawTable) -> tuple[pd.DataFrame, Repairs]:
    """Sort, reject duplicates, drop non-positive prices, drop the leading rows that are incomplete
    or untraded, list later untraded days, fill gaps forward, widen high/low."""
    label, unit = raw.label, raw.unit
    repairs = Repairs()
    if not frame.index.is_monotonic_increasing:
        order = np.argsort(frame.index.to_numpy(), kind="stable")
        frame, lines = frame.iloc[order], lines[order]
        repairs.reordered = True
    dup = frame.index.duplicated(keep="first")
    if dup.any():
        pos = int(np.argmax(dup))
        first = int(np.argmax(frame.index == frame.index[pos]))
        day = frame.index[pos].strftime("%Y-%m-%d")
        raise RowError(
            f"{label}: duplicate date {day} ({unit}s {lines[first]} and {lines[pos]}; one row per day is expected)",
            frame.index[pos],
        )
    volume = frame.get("volume")
    if volume is not None and (volume < 0).any():
        pos = int(np.argmax((volume < 0).to_numpy()))
        message = f"{label}: {unit} {lines[pos]}, column volume: negative volume {volume.iloc[pos]:g}"
        raise RowError(message, frame.index[pos])

    prices = [c for c in frame.columns if c in PRICE_LIKE]
    nonpositive = (frame[prices] <= 0).any(axis=1)
    if nonpositive.any():
        repairs.dropped_nonpositive = list(frame.index[nonpositive])
        frame = frame.loc[~nonpositive]

    untraded = _untraded(frame)
    missing = frame.isna()
    complete = ~missing.any(axis=1)
    good = complete & ~untraded
    if not good.any():
        if not complete.any():
            raise DataError(f"{label}: every row has a missing value")
        raise DataError(f"{label}: no traded row: every complete row is an untraded quote (volume 0, high = low)")
    first_good = int(np.argmax(good.to_numpy()))
    if first_good > 0:  # before the first complete, traded row: nothing to fill from, nothing to learn
        lead = frame.index[:first_good]
        repairs.dropped_untraded = list(lead[untraded.iloc[:first_good]])
        repairs.dropped_leading_missing = list(lead[~untraded.iloc[:first_good]])
        frame, missing, untraded = frame.iloc[first_good:], missing.iloc[first_good:], untraded.iloc[first_good:]
    repairs.untraded = list(frame.index[untraded])
    for column in frame.columns:
        if missing[column].any():
            repairs.filled[column] = list(frame.index[missing[column]])
    frame = frame.ffill()

    body = frame[[c for c in ("open", "close") if c in frame.columns]]
    bounds = {"high": body.max(axis=1), "low": body.min(axis=1)}  # NaN (nothing to contain) without both
    for column, bound in bounds.items():
        if column not in frame.columns:
            continue
        mask = frame[column] < bound if column == "high" else frame[column] > bound
        if mask.any():
            repairs.widened[column] = list(frame.index[mask])
            frame.loc[mask, column] = bound[mask]
    return frame.astype(float), repairs


def _untraded(frame: pd.DataFrame) -> pd.Series:
    """Rows quoted without a trade: volume 0 and a zero day range (open = high = low = close on the
    vendor's stale quote). Needs volume, high and low; without them no row is called untraded."""
    if not {"volume", "high", "low"} <= set(frame.columns):
        return pd.Series(False, index=frame.index)
    return (frame["volume"] == 0) & (frame["high"] == frame["low"])
