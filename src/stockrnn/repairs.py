"""`Repairs`: what loading changed, dropped or found, so that nothing passes silently.

Kept apart from `data.py`, which decides the repairs; this module only records and reports them
(the run summary line and the `repairs` entry of metrics.json), and counts them against the 5%
limit, over a whole file or its rows before a date (a panel run's test start).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

GAP_DAYS = 10  # calendar days between two rows that count as a gap worth reporting
MAX_REPAIRED_SHARE = 0.05  # more repaired rows than this is an error unless gaps are allowed


def _days(values) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in values]


def _span(dates: list[pd.Timestamp]) -> str:
    return f"{dates[0]:%Y-%m-%d}" if len(dates) == 1 else f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}"


@dataclass
class Repairs:
    """What loading changed or removed, and what looks wrong.

    `filled` and `widened` map a column to the dates whose value was forward filled or widened
    (high raised / low lowered to contain open and close); scoring skips those dates. An untraded
    day is a quote with volume 0 and high == low (the vendor repeats the last price): a leading
    stretch of them is dropped (`dropped_untraded`); later ones are kept, so that the calendar
    stays whole, but listed in `untraded` and skipped in scoring like a repaired value. `gaps`
    (from, to) and `jumps` (date, close ratio) are findings only: nothing is changed for them.
    """

    filled: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    widened: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    dropped_nonpositive: list[pd.Timestamp] = field(default_factory=list)
    dropped_leading_missing: list[pd.Timestamp] = field(default_factory=list)
    dropped_untraded: list[pd.Timestamp] = field(default_factory=list)
    untraded: list[pd.Timestamp] = field(default_factory=list)
    reordered: bool = False
    gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    jumps: list[tuple[pd.Timestamp, float]] = field(default_factory=list)
    source_rows: int = 0

    def changed_dates(self, column: str) -> pd.DatetimeIndex:
        """Dates not to score a forecast of `column` on: its value is not the one in the source,
        or the day is an untraded quote (a stale price, in every column)."""
        dates = list(self.filled.get(column, [])) + list(self.widened.get(column, [])) + list(self.untraded)
        return pd.DatetimeIndex(sorted(set(dates)))

    def total(self) -> int:
        return (
            sum(len(v) for v in self.filled.values())
            + sum(len(v) for v in self.widened.values())
            + len(self.dropped_nonpositive)
            + len(self.dropped_leading_missing)
            + len(self.dropped_untraded)
            + len(self.untraded)
        )

    def rows_repaired(self) -> int:
        """Rows changed, dropped or left out of scoring as untraded (a row counts once); the leading
        untraded stretch is not counted: it lies before the history, and dropping it leaves a
        history as good as a file that starts after it."""
        changed = {d for dates in (*self.filled.values(), *self.widened.values()) for d in dates} | set(self.untraded)
        return len(changed) + len(self.dropped_nonpositive) + len(self.dropped_leading_missing)

    def rows_checked(self) -> int:
        """Source rows the 5% repair limit is measured on: all but the dropped leading untraded stretch."""
        return self.source_rows - len(self.dropped_untraded)

    def counted(self, until: pd.Timestamp | None = None, rows: int = 0) -> tuple[int, int]:
        """(rows repaired, rows checked) of the 5% limit: over the whole file (`until` None), or
        over its rows before `until`, of which `rows` are in the history (a panel run judges no row
        on or after its test start)."""
        if until is None:
            return self.rows_repaired(), self.rows_checked()
        changed = {d for dates in (*self.filled.values(), *self.widened.values()) for d in dates if d < until}
        changed |= {d for d in self.untraded if d < until}
        dropped = sum(d < until for d in (*self.dropped_nonpositive, *self.dropped_leading_missing))
        return len(changed) + dropped, rows + dropped

    def excess(self, label: str, until: pd.Timestamp | None = None, rows: int = 0) -> str | None:
        """Why more than 5% of the rows (see `counted`) needed repair, naming `label`, or None."""
        repaired, checked = self.counted(until, rows)
        share = repaired / max(checked, 1)
        if share <= MAX_REPAIRED_SHARE:
            return None
        where = "" if until is None else f" before {until:%Y-%m-%d}"
        return (
            f"{label}: {repaired} of {checked} rows{where} ({share:.0%}) needed repair, "
            f"more than {MAX_REPAIRED_SHARE:.0%} ({self.summary()}); check the file, or pass --allow-gaps"
        )

    def to_dict(self) -> dict:
        return {
            "filled": {c: _days(v) for c, v in self.filled.items()},
            "widened": {c: _days(v) for c, v in self.widened.items()},
            "dropped_nonpositive": _days(self.dropped_nonpositive),
            "dropped_leading_missing": _days(self.dropped_leading_missing),
            "dropped_untraded": _days(self.dropped_untraded),
            "untraded": _days(self.untraded),
            "reordered_ascending": self.reordered,
            "gaps": [
                {"from": a.strftime("%Y-%m-%d"), "to": b.strftime("%Y-%m-%d"), "days": (b - a).days}
                for a, b in self.gaps
            ],
            "possible_splits": [{"date": d.strftime("%Y-%m-%d"), "close_ratio": round(r, 4)} for d, r in self.jumps],
            "counts": {
                "filled": sum(len(v) for v in self.filled.values()),
                "widened": sum(len(v) for v in self.widened.values()),
                "dropped_nonpositive": len(self.dropped_nonpositive),
                "dropped_leading_missing": len(self.dropped_leading_missing),
                "dropped_untraded": len(self.dropped_untraded),
                "untraded": len(self.untraded),
                "rows_repaired": self.rows_repaired(),
                "source_rows": self.source_rows,
            },
        }

    def summary(self) -> str:
        """One line for the run summary: repairs first, then findings."""
        parts = []
        if self.dropped_untraded:
            parts.append(
                f"{len(self.dropped_untraded)} leading untraded row(s) dropped ({_span(self.dropped_untraded)}: "
                "volume 0, high = low)"
            )
        if self.filled:
            counts = ", ".join(f"{column} {len(dates)}" for column, dates in self.filled.items())
            parts.append(f"missing values filled forward ({counts})")
        for column, dates in self.widened.items():
            parts.append(f"{len(dates)} {column} widened to contain open/close")
        if self.dropped_nonpositive:
            shown = ", ".join(_days(self.dropped_nonpositive[:5]))
            parts.append(f"{len(self.dropped_nonpositive)} rows with a non-positive price dropped ({shown})")
        if self.dropped_leading_missing:
            parts.append(f"{len(self.dropped_leading_missing)} leading rows with missing values dropped")
        if self.untraded:
            parts.append(
                f"{len(self.untraded)} untraded day(s) (volume 0, high = low) not scored ({_span(self.untraded)})"
            )
        if self.reordered:
            parts.append("rows sorted oldest first")
        if self.gaps:
            a, b = self.gaps[0]
            more = f", +{len(self.gaps) - 1} more" if len(self.gaps) > 1 else ""
            parts.append(f"{len(self.gaps)} gap(s) over {GAP_DAYS} days ({a:%Y-%m-%d} .. {b:%Y-%m-%d}{more})")
        if self.jumps:
            shown = ", ".join(f"{d:%Y-%m-%d} x{r:.2f}" for d, r in self.jumps[:3])
            parts.append(f"possible unadjusted split: close jumps {shown}")
        return "; ".join(parts) if parts else "no repairs"
