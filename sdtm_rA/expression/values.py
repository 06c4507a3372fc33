"""Typed columns of the expression language: number, text, date and condition (three-valued).

Numbers are float arrays (NaN missing); text is a pandas string array ('' missing, as in SAS;
Arrow-backed, so that upper(), strip(), =, in and || run in Arrow, not per value in Python);
conditions are pandas' nullable booleans (Kleene logic: a comparison with a missing value is
unknown, and a `where:` keeps only the records where it is true). A date is the span of instants it
may stand for, so a partial ISO date ('2021-03') compares by the rule of `dates.compare_dtc`: true
or false when every completion agrees, unknown otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import dates as _dates
from ..errors import shown
from ..sdtm.findings import format_number, read_numbers
from .grammar import ExpressionError

NUMBER, TEXT, DATE, BOOL, ANY = "number", "text", "date", "condition", "any"
INSTANT = "instant"   # a declaration only: a date-time column whose values are points in time (--DTM)
DAY_US = 86_400_000_000
_UNITS = {1: "Y", 2: "M", 3: "D", 4: "h", 5: "m", 6: "s", 7: "us"}
_SPAN_US = {3: DAY_US, 4: 3_600_000_000, 5: 60_000_000, 6: 1_000_000, 7: 1}


@dataclass
class Dates:
    """Possibly partial dates: [lo, hi) in microseconds of local time, precision (0 missing, 1 year
    .. 6 second, 7 fraction), no hyphenated gap, zone offset in minutes (NaN: none), and the ISO text
    each came from while unchanged (None after arithmetic)."""
    lo: np.ndarray
    hi: np.ndarray
    prec: np.ndarray
    exact: np.ndarray
    tz: np.ndarray
    text: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.prec)


class Value:
    """A typed column: np.ndarray (number), a pandas string array (text), Dates, a pandas
    BooleanArray (condition); None for ANY (a type known only with the data)."""

    def __init__(self, type_: str, data):
        self.type, self.data = type_, data

    def __len__(self) -> int:
        return len(self.data)


class Scalar(Value):
    """A value written in the expression (n records of it): operations that can use the single value
    do, and `data` builds the column only for those that cannot."""

    def __init__(self, type_: str, value, n: int):
        self.type, self.scalar, self.n, self._data = type_, value, n, None

    @property
    def data(self):
        if self._data is None:
            self._data = full(self.scalar, self.n, self.type).data
        return self._data

    def __len__(self) -> int:
        return self.n


def broadcast_dates(d: "Dates", n: int) -> "Dates":
    """One date as n records."""
    return Dates(np.full(n, d.lo[0]), np.full(n, d.hi[0]), np.full(n, d.prec[0], dtype=np.int8),
                 np.full(n, d.exact[0]), np.full(n, d.tz[0]))


def text_array(values) -> pd.api.extensions.ExtensionArray:
    """Text values (a Series, an array, a list) as a pandas string array with '' for missing."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype(object).where(s.notna(), "").astype("str")
    return s.fillna("").array


def strings(values) -> pd.Series:
    """Text values as a Series, for pandas' string methods (no copy)."""
    return pd.Series(values, copy=False).reset_index(drop=True) if isinstance(values, pd.Series) \
        else pd.Series(values, copy=False)


def condition(values: np.ndarray, known: np.ndarray | None = None) -> Value:
    """A three-valued condition from booleans and where they are known."""
    values = np.asarray(values, dtype=bool)
    mask = np.zeros(len(values), dtype=bool) if known is None else ~np.asarray(known, dtype=bool)
    return Value(BOOL, pd.arrays.BooleanArray(values & ~mask, mask))


def of_series(s: pd.Series) -> Value:
    """A column as its dtype says: dates (datetime64), numbers, conditions (bool), else text."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return Value(DATE, datetime_dates(s))
    if pd.api.types.is_bool_dtype(s):
        return Value(BOOL, pd.array(s, dtype="boolean"))
    if pd.api.types.is_numeric_dtype(s):
        return Value(NUMBER, s.to_numpy(dtype=float, na_value=np.nan))
    return Value(TEXT, text_array(s))


def datetime_dates(s: pd.Series, instant: bool = False) -> Dates:
    """datetime64 values (ADaM --DT, --DTM): whole days when every value is at midnight, else
    instants to the second (or microsecond); `instant`: instants always (a --DTM at midnight is
    00:00:00, not the whole day). A zone-aware column is read in its own local time."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    arr = s.to_numpy(dtype="datetime64[us]")
    missing = np.isnat(arr)
    lo = arr.astype(np.int64)
    lo[missing] = 0
    given = lo[~missing]
    if (given % DAY_US == 0).all() and not instant:
        prec = 3
    elif (given % 1_000_000 == 0).all():
        prec = 6
    else:
        prec = 7
    precs = np.where(missing, 0, prec).astype(np.int8)
    return Dates(lo, lo + _SPAN_US[prec], precs, ~missing, np.full(len(arr), np.nan))


def text_dates(text: np.ndarray, label: str, pos: int | None) -> Dates:
    """ISO 8601 text (partial allowed, '' missing) as dates; any other text is an error naming the
    values, never a silently missing date."""
    codes, uniques = pd.factorize(text)
    parsed = [_dates.dtc_bounds(str(u).strip()) if str(u).strip() else (0, 0, False, 0, None)
              for u in uniques]
    bad = [u for u, p in zip(uniques, parsed) if p is None]
    if bad:
        rows = np.isin(codes, [i for i, p in enumerate(parsed) if p is None])
        raise ExpressionError(f"{label} holds text that is not an ISO 8601 date: {_examples(bad)}"
                              if label[:1] != "'" else f"{label} is not an ISO 8601 date", pos,
                              rows=rows)
    table = np.array([p[:4] for p in parsed], dtype=np.int64).reshape(-1, 4)
    tz = np.array([np.nan if p[4] is None else p[4] for p in parsed], dtype=float)
    if len(codes) and (codes < 0).any():
        codes = np.where(codes < 0, 0, codes)
    pick = table[codes] if len(table) else np.zeros((len(codes), 4), dtype=np.int64)
    return Dates(pick[:, 0], pick[:, 1], pick[:, 3].astype(np.int8), pick[:, 2].astype(bool),
                 tz[codes] if len(tz) else np.full(len(codes), np.nan), text=text_array(text))


def numbers(text: np.ndarray, label: str, pos: int | None) -> np.ndarray:
    """Number text as floats ('' missing); text that is not a plain number is an error naming it."""
    codes, uniques = pd.factorize(text)
    values, why = read_numbers(np.asarray(uniques, dtype=object))
    bad = np.flatnonzero(why != "")
    if len(bad):
        rows = np.isin(codes, bad)
        raise ExpressionError(f"{label} is not a number" if label[:1] == "'" else
                              f"{label} holds text that is not a number: "
                              f"{_examples([uniques[i] for i in bad])}", pos, rows=rows)
    out = values[codes] if len(values) else np.full(len(codes), np.nan)
    return np.where(codes < 0, np.nan, out) if len(codes) else out


def _examples(values: list, limit: int = 3) -> str:
    shown_ = ", ".join(shown(v) for v in values[:limit])
    return shown_ + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def number_text(x: np.ndarray) -> np.ndarray:
    """Numbers as SDTM writes them (2.0 → '2', no float noise), '' where missing; once per value."""
    codes, uniques = pd.factorize(x)
    table = np.array([format_number(float(v)) for v in uniques] + [""], dtype=object)
    return text_array(table[codes])


def date_text(d: Dates) -> np.ndarray:
    """ISO 8601 text at each value's precision ('' missing); unchanged dates keep their own text."""
    if d.text is not None:
        return text_array(pd.Series(d.text, copy=False).where(d.prec > 0, ""))
    out = np.full(len(d), "", dtype=object)
    for prec, unit in _UNITS.items():
        at = d.prec == prec
        if at.any():
            out[at] = np.datetime_as_string(d.lo[at].astype("datetime64[us]"), unit=unit)
    zoned = ~np.isnan(d.tz) & (d.prec > 3)
    if zoned.any():
        mins = d.tz[zoned].astype(int)
        sign = np.where(mins < 0, "-", "+")
        out[zoned] = [f"{t}{s}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
                      for t, s, m in zip(out[zoned], sign, mins)]
    return text_array(out)


def as_text(v: Value) -> np.ndarray:
    if v.type == TEXT:
        return v.data
    if v.type == NUMBER:
        return number_text(v.data)
    if v.type == DATE:
        return date_text(v.data)
    raise TypeError(v.type)


def is_missing(v: Value) -> np.ndarray:
    if v.type == NUMBER:
        return np.isnan(v.data)
    if v.type == TEXT:
        return strings(v.data).str.strip().eq("").to_numpy(dtype=bool)
    if v.type == DATE:
        return v.data.prec == 0
    return np.asarray(v.data.isna(), dtype=bool)


def full(value, n: int, type_: str) -> Value:
    """A literal as a column of `n` values."""
    if type_ == NUMBER:
        return Value(NUMBER, np.full(n, float(value)))
    if type_ == TEXT:
        return Value(TEXT, pd.Series([value], dtype="str").repeat(n).array)
    return condition(np.full(n, bool(value)))


def take_dates(d: Dates, rows: np.ndarray) -> Dates:
    return Dates(d.lo[rows], d.hi[rows], d.prec[rows], d.exact[rows], d.tz[rows],
                 None if d.text is None else d.text[rows])


def where_dates(cond: np.ndarray, a: Dates, b: Dates) -> Dates:
    text = None if a.text is None or b.text is None else \
        text_array(strings(a.text).where(cond, strings(b.text)))
    return Dates(np.where(cond, a.lo, b.lo), np.where(cond, a.hi, b.hi), np.where(cond, a.prec, b.prec),
                 np.where(cond, a.exact, b.exact), np.where(cond, a.tz, b.tz), text)
