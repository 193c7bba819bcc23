"""A panel of many tickers: `load_panel` and `Panel` (ticker -> `Prices`, plus who was left out and why).

Every source goes through `load_prices`, so each ticker is parsed, repaired and reported exactly as a
single file would be. The panel adds one rule of its own: a ticker is never dropped silently. A file
that cannot be read stops the load (naming the file) unless `skip_bad`; a file that reads but fails
validation (too many repairs, a constant price, a spliced history) and a ticker with too little
history for the split are moved to `Panel.skipped` with the reason, and the other tickers go on.
Loading judges whole files; a panel run judges the repair limit, the spliced-history check and a
bad row (a duplicate date, a negative volume: the file's rows before it are kept) again on the rows
before its test start (`Panel.judged`), so that who trains depends on no later row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import reduce
from pathlib import Path

import pandas as pd

from . import data
from .data import Prices, load_prices
from .errors import DataError, NothingToScore, RowError
from .sources import list_folder, read_source, ticker_from_filename

__all__ = ["MAX_JUMP_SHARE", "Panel", "load_panel", "ticker_folder"]

TICKER_COLUMNS = ("ticker", "symbol", "name")
# A history whose close jumps by more than data.SPLIT_FACTOR on more than this share of days is not one
# company's prices (TT in the shared S&P 500 set joins a penny stock to the 2020 listing): skipped.
MAX_JUMP_SHARE = 0.01
# The files of a panel's output folder beside the tickers' folders (panel_outputs.write_panel).
PANEL_FILES = (
    "summary.csv", "panel.json", "rank_ic.csv", "report.html", "skill_distribution.png", "rmse_vs_ridge_local.png",
)  # fmt: skip


class Panel(Mapping[str, Prices]):
    """Tickers in load order -> `Prices`; `skipped` lists {"ticker", "reason"} for each one left out.
    `held`: the tickers that read but failed validation; `strict`: for every ticker that read, in load
    order, whether the 5% repair limit holds for it (a file without --allow-gaps); `broken`: ticker ->
    (day, error) of a file with a bad row, whose prices are the rows before it. With them `judged`
    can judge validation again on fewer rows."""

    def __init__(
        self, prices: Mapping[str, Prices], skipped: Sequence[dict] = (), source: str = "<panel>",
        held: Mapping[str, Prices] | None = None, strict: Mapping[str, bool] | None = None,
        broken: Mapping[str, tuple[pd.Timestamp, str]] | None = None,
    ) -> None:  # fmt: skip
        self.prices = dict(prices)
        self.skipped = [dict(s) for s in skipped]
        self.source = source
        self.held = dict(held or {})
        self.strict = dict(strict or {})
        self.broken = dict(broken or {})

    @property
    def loaded(self) -> dict[str, Prices]:
        """Every ticker that read, kept or held, in load order (a backtest's folds judge each again)."""
        order = [*self.strict, *(t for t in self.prices if t not in self.strict)]
        return {t: self.prices.get(t, self.held.get(t)) for t in order if t in self.prices or t in self.held}

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The union of the dates of every ticker that read (kept or held), with each bad row's day:
        a panel's spans and fold dates, which then hang on no verdict that later rows may change, and
        reach a bad row (a fold holding it lists the ticker)."""
        indexes = [p.index for p in self.loaded.values()]
        indexes += [pd.DatetimeIndex([day], name="date") for day, _ in self.broken.values()]
        return reduce(pd.Index.union, indexes) if indexes else pd.DatetimeIndex([], name="date")

    def _derived(self, prices: Mapping[str, Prices], skipped: Sequence[dict]) -> Panel:
        return Panel(prices, skipped, self.source, self.held, self.strict, self.broken)

    def __getitem__(self, ticker: str) -> Prices:
        return self.prices[ticker]

    def __iter__(self) -> Iterator[str]:
        return iter(self.prices)

    def __len__(self) -> int:
        return len(self.prices)

    def __repr__(self) -> str:
        return f"Panel({self.source!r}: {len(self)} tickers, {len(self.skipped)} skipped)"

    def judged(self, until: str | pd.Timestamp) -> Panel:
        """This panel with validation (the 5% repair limit, a spliced history, a bad row) judged on
        each ticker's rows before `until` only, where `load_panel` judged whole files: so which tickers
        a panel run keeps depends on no row on or after its test start. A ticker held back for rows
        after `until` comes back (one with a bad row then trains, and `require_test_rows` does not
        score it on a span holding that row); one that fails before it is held back with that reason."""
        until = pd.Timestamp(until)
        kept, held, skipped = {}, {}, [s for s in self.skipped if s["ticker"] not in self.held]
        for ticker, prices in self.loaded.items():
            day, error = self.broken.get(ticker, (None, None))
            reason = (
                error if day is not None and day < until else _verdict(prices, self.strict.get(ticker, False), until)
            )
            if reason is None:
                kept[ticker] = prices
            else:
                held[ticker] = prices
                skipped.append({"ticker": ticker, "reason": reason})
        return Panel(kept, skipped, self.source, held, self.strict, self.broken)

    def require_history(
        self,
        test_start: str | pd.Timestamp,
        need_rows: int,
        *,
        train_start: str | pd.Timestamp | None = None,
        target: str | None = None,
    ) -> Panel:
        """A new panel without the tickers that cannot train on this split, each moved to `skipped`:
        fewer than `need_rows` rows from `train_start` to before `test_start`, or (with `target`) a
        target column that is missing or constant in those rows. Only rows before `test_start` are
        read, so which tickers train does not depend on what comes after (whether a ticker is still
        listed in the test span is `require_test_rows`' question, asked of scoring only)."""
        start = pd.Timestamp(test_start)
        kept, skipped = {}, list(self.skipped)
        for ticker, prices in self.prices.items():
            frame = prices.frame
            train = frame.loc[train_start : start - pd.Timedelta(days=1)]
            reason = None
            if len(train) < need_rows:
                since = f"data from {frame.index[0]:%Y-%m-%d}" if len(frame) else "no rows at all"
                reason = (
                    f"{len(train)} rows before the test start {start:%Y-%m-%d} ({since}), the models need {need_rows}"
                )
            elif target is not None:
                if target not in frame.columns:
                    reason = f"no column for target '{target}' (columns: {', '.join(frame.columns)})"
                elif train[target].nunique() <= 1:
                    reason = f"{target} is constant over the training rows: nothing to learn"
            if reason is None:
                kept[ticker] = prices
            else:
                skipped.append({"ticker": ticker, "reason": reason})
        return self._derived(kept, skipped)

    def nothing_left(self, what: str, since: Panel, count: int = 3) -> NothingToScore:
        """The error of an empty panel: `what`, then why the first few tickers it lost since `since`
        (the panel it came from) are out; every skipped ticker rides along for a backtest's fold."""
        new = [s for s in self.skipped if s not in since.skipped] or self.skipped
        more = f"; and {len(new) - count} more" if len(new) > count else ""
        why = "; ".join(f"{s['ticker']}: {s['reason']}" for s in new[:count]) + more
        return NothingToScore(f"{self.source}: {what} ({why})", self.skipped)

    def without(self, reasons: Mapping[str, str]) -> Panel:
        """A new panel without the tickers of `reasons` (ticker -> why), each moved to `skipped`."""
        kept = {t: p for t, p in self.prices.items() if t not in reasons}
        return self._derived(kept, [*self.skipped, *({"ticker": t, "reason": r} for t, r in reasons.items())])

    def require_test_rows(self, test_start: str | pd.Timestamp, test_end: str | pd.Timestamp | None = None) -> Panel:
        """A new panel without the tickers that have no row from `test_start` to `test_end`, or a bad
        row in that span (`broken`), each moved to `skipped`: nothing to score (in a panel run their
        training rows still train the global models, as a ticker delisted later was there to learn from)."""
        start = pd.Timestamp(test_start)
        end = None if test_end is None else pd.Timestamp(test_end)
        reasons = {}
        for ticker, prices in self.prices.items():
            frame = prices.frame
            day, error = self.broken.get(ticker, (None, None))
            if day is not None and day >= start and (end is None or day <= end):
                reasons[ticker] = f"{error}: a bad row in the test span, not scored (the rows before it still train)"
                continue
            if len(frame.loc[start:end]):
                continue
            if not len(frame):
                why = "no rows at all"
            elif frame.index[-1] < start:
                why = f"data ends {frame.index[-1]:%Y-%m-%d}"
            elif end is not None and frame.index[0] > end:
                why = f"data starts {frame.index[0]:%Y-%m-%d}"
            else:
                why = "a gap over the whole span"
            reasons[ticker] = f"no rows in the test span ({why}): not scored"
        return self.without(reasons)


def load_panel(
    source: str | Path | Sequence[str | Path] | Mapping[str, pd.DataFrame] | pd.DataFrame,
    skip_bad: bool = False,
    allow_gaps: bool | None = None,
    on_load: Callable[[int, int], None] | None = None,
) -> Panel:
    """Load a panel from a folder of CSV/Parquet files, a list of paths, a dict ticker -> DataFrame, or
    one long DataFrame with a `ticker` (or `symbol`/`name`) column.

    A file that cannot be read raises `DataError` naming it, unless `skip_bad` (then it is skipped
    with the reason). Validation failures are always skipped with their reason. `allow_gaps` as in
    `load_prices` (None: its per-source default, strict for files, lenient for DataFrames).
    `on_load(done, total)` is called after each source (progress of a large folder)."""
    if isinstance(source, pd.DataFrame):
        items, label = _split_long(source), "<DataFrame>"
    elif isinstance(source, Mapping):
        items, label = list(source.items()), "<dict>"
    elif isinstance(source, str | Path):
        folder = Path(source)
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder (a panel is a folder, a list of files or DataFrames)")
        items, label = [(None, path) for path in list_folder(folder)], str(folder)
    else:
        items, label = [(None, Path(p)) for p in source], "<files>"
        if not items:
            raise DataError("load_panel: the list of files is empty")
    parsed: dict[str, Prices] = {}
    strict: dict[str, bool] = {}  # does the 5% repair limit hold (a file without allow_gaps)
    broken: dict[str, tuple[pd.Timestamp, str]] = {}  # a bad row's day and error; prices: the rows before it
    folders: dict[str, str] = {}  # output folder, casefolded (one folder on macOS and Windows) -> ticker
    skipped: list[dict] = []
    for done, (ticker, item) in enumerate(items, start=1):
        if on_load is not None:
            on_load(done - 1, len(items))
        try:
            prices, bad = _load_one(ticker, item)  # repaired and reported; the limit is judged below
        except DataError as exc:
            if not skip_bad and not _parses(item):
                raise
            name = ticker if ticker is not None else ticker_from_filename(Path(item))
            skipped.append({"ticker": str(name), "reason": str(exc)})
            continue
        folder = ticker_folder(prices.name).casefold()
        if folder in folders:
            other = parsed[folders[folder]]
            if other.name == prices.name:
                raise DataError(f"{label}: ticker {prices.name} is in both {other.source} and {prices.source}")
            raise DataError(
                f"{label}: tickers {other.name} ({other.source}) and {prices.name} ({prices.source}) would share "
                f"the output folder {ticker_folder(prices.name)}: rename one"
            )
        parsed[prices.name], folders[folder] = prices, prices.name
        if bad is not None:
            broken[prices.name] = (bad.day, str(bad))
        strict[prices.name] = not (allow_gaps if allow_gaps is not None else isinstance(item, pd.DataFrame))
    if on_load is not None:
        on_load(len(items), len(items))
    kept, held = {}, {}
    for name, prices in parsed.items():  # whole files here; a panel run judges the rows before its test
        reason = broken[name][1] if name in broken else _verdict(prices, strict[name], None)
        if reason is None:
            kept[name] = prices
        else:
            held[name] = prices
            skipped.append({"ticker": name, "reason": reason})
    if not parsed:  # one held back may pass on the rows before a test start (Panel.judged)
        reasons = "; ".join(f"{s['ticker']}: {s['reason']}" for s in skipped[:3])
        raise DataError(f"{label}: no usable ticker ({reasons})")
    return Panel(kept, skipped, label, held, strict, broken)


def ticker_folder(ticker: str) -> str:
    """A ticker as a folder name of a panel's outputs ('BRK/B' -> 'BRK_B'); one that would be a file
    of the panel folder ('summary.csv') gets a trailing '_'."""
    name = re.sub(r"[^\w.\-^=]", "_", ticker).lstrip(".") or "ticker"
    return f"{name}_" if name.casefold() in PANEL_FILES else name


def _load_one(ticker: str | None, item: Path | pd.DataFrame) -> tuple[Prices, RowError | None]:
    """One ticker through `load_prices` (the repair limit not applied: judged later); a DataFrame gets
    its ticker as name and in its source label. A file with a bad row gives its rows before the first
    one, with that row's error (a load that fails then raises that error)."""
    bad, before = None, None
    while True:
        try:
            prices = load_prices(item, allow_gaps=True, before=before)
            break
        except RowError as exc:
            bad, before = _labelled(exc, ticker, item), exc.day
        except DataError as exc:
            raise bad or _labelled(exc, ticker, item) from None
    if isinstance(item, pd.DataFrame):
        prices = Prices(prices.frame, prices.repairs, f"<DataFrame {ticker}>", str(ticker))
    return prices, bad


def _labelled(exc: DataError, ticker: str | None, item: Path | pd.DataFrame) -> DataError:
    """The error with a DataFrame's ticker in its source label."""
    if not isinstance(item, pd.DataFrame):
        return exc
    message = str(exc).replace("<DataFrame>", f"<DataFrame {ticker}>", 1)
    return RowError(message, exc.day) if isinstance(exc, RowError) else DataError(message)


def _parses(item: Path | pd.DataFrame) -> bool:
    """Whether the source reads as a price table (the load failed on validation, not on reading).

    Only called on the error path, so the second read costs nothing in the usual case."""
    try:
        data._parse(read_source(item))
    except DataError:
        return False
    return True


def _verdict(prices: Prices, strict: bool, until: pd.Timestamp | None) -> str | None:
    """Why a ticker that read fails validation on its rows before `until` (all: None), or None:
    more than 5% of them repaired (where the limit holds), or a spliced history, which `load_prices`
    only reports: its close moves beyond data.SPLIT_FACTOR on too many days."""
    rows = len(prices.frame) if until is None else int(prices.index.searchsorted(until))
    excess = prices.repairs.excess(prices.source, until, rows) if strict else None
    if excess is not None:
        return excess
    jumps = [j for j in prices.repairs.jumps if until is None or j[0] < until]
    if len(jumps) > max(MAX_JUMP_SHARE * rows, 3):
        return (
            f"{prices.source}: close moves beyond x{data.SPLIT_FACTOR:g} on {len(jumps)} of {rows} days "
            f"(first {jumps[0][0]:%Y-%m-%d}): a spliced or unadjusted history"
        )
    return None


def _split_long(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One long table to (ticker, its rows), in order of first appearance."""
    columns = {str(c).strip().lower(): c for c in frame.columns}
    column = next((columns[c] for c in TICKER_COLUMNS if c in columns), None)
    if column is None:
        raise DataError(
            f"<DataFrame>: no ticker column (expected one of {', '.join(TICKER_COLUMNS)}; "
            f"columns: {', '.join(map(str, frame.columns))})"
        )
    tickers = frame[column].astype(str).str.strip()
    if (tickers == "").any() or frame[column].isna().any():
        raise DataError(f"<DataFrame>: column {column} has an empty ticker")
    return [(ticker, rows.drop(columns=column)) for ticker, rows in frame.groupby(tickers.to_numpy(), sort=False)]
