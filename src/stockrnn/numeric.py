"""Numbers as price files write them: '43.83', '1,234.5', '$1,234.50', and in `;` files with decimal
commas '1.234,5'; missing tokens become NaN, anything else is a DataError naming the row and column."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import DataError
from .sources import RawTable, show

US_NUMBER = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
EU_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d*)?$")
DIGIT_GROUPS = re.compile(r"(?<=\d)[ '\u00a0\u202f](?=\d{3}\b)")
CURRENCY = re.compile(r"^([+-]?)\s*[$\u20ac\u00a3\u00a5]\s*")  # '$43.83' (nasdaq.com), '-$1.5', '\u20ac 12'
MISSING_TOKENS = frozenset({"", "null", "nan", "na", "n/a", "-"})


def is_text(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def parse_numbers(column: pd.Series, raw: RawTable, name: str, european: bool) -> np.ndarray:
    """Numbers with `.` decimals and optional `,`/space thousands ('1,234.5'); with `;` files whose
    numbers use a decimal comma, '1.234,5'. Missing tokens become NaN; infinities are errors."""
    if pd.api.types.is_bool_dtype(column) or not (pd.api.types.is_numeric_dtype(column) or is_text(column)):
        raise DataError(f"{raw.label}: column {name}: holds {column.dtype} values, not numbers")
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        text = column.astype(str)
    else:
        text = column.astype(str).str.strip()
        # A real null in a string column (pandas' str dtype keeps it through astype) is missing too.
        is_missing = text.str.lower().isin(MISSING_TOKENS) | column.isna()
        # Plain numbers ('43.83') parse as they are; only the rest go through the cleaning below
        # (most files hold no '$' or thousands separators, and the regular expressions cost
        # 0.3 s a file). A ';' file with decimal commas reads '1.234' as 1234: all of it is cleaned.
        if european:
            parsed = pd.Series(np.nan, index=text.index)
        else:
            parsed = pd.to_numeric(text.where(~is_missing), errors="coerce")
        rest = parsed.isna() & ~is_missing
        if rest.any():
            parsed[rest] = pd.to_numeric(_clean_numbers(text[rest], european), errors="coerce")
        bad = (parsed.isna() & ~is_missing).to_numpy()
        if bad.any():
            pos = int(np.argmax(bad))
            raise DataError(f"{raw.label}: {raw.where(pos)}, column {name}: {show(text.iloc[pos])} is not a number")
        values = parsed.to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        pos = int(np.argmax(infinite))
        raise DataError(f"{raw.label}: {raw.where(pos)}, column {name}: {show(text.iloc[pos])} is not a finite number")
    return values


def _clean_numbers(text: pd.Series, european: bool) -> pd.Series:
    """'$1,234.50' -> '1234.50'; with decimal commas '1.234,5' -> '1234.5'."""
    clean = text.str.replace(CURRENCY, r"\1", regex=True).str.replace(DIGIT_GROUPS, "", regex=True)
    if european:
        eu = clean.str.fullmatch(EU_NUMBER)
        return clean.where(~eu, clean.str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
    us = clean.str.fullmatch(US_NUMBER)
    return clean.where(~us, clean.str.replace(",", "", regex=False))
