"""Raw EDC dates to ISO 8601 text, and the date arithmetic SDTM needs on that text.

SDTM keeps every date as ISO 8601 *text* (``--DTC``), because a date in a clinical
database is often only partly known ("June 1968") and a datetime type cannot hold that.
This module therefore never hands back datetime objects for ``--DTC`` values; it:

* converts raw exports to ISO 8601 with a format declared by the data manager
  (:func:`to_iso8601`), turning unknown parts into ISO 8601 partial dates and
  returning every impossible or unreadable value as a :class:`DateIssue` so the
  caller can report file, row and value -- nothing is silently dropped;
* checks ISO 8601 text (:func:`is_iso8601`), tells its precision (:func:`dtc_precision`)
  and extracts its complete calendar date (:func:`dtc_date`);
* derives what SDTM derives from dates: study day (:func:`study_day`), the order of
  two possibly partial dates (:func:`compare_dtc`) and age (:func:`age_in_years`).

Every function works on whole pandas Series.  Raw columns repeat few distinct values
(a million visits on two thousand dates), so each function parses the *distinct*
values once in Python and maps the results back to the rows with numpy indexing.
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .errors import shown

__all__ = [
    "DEFAULT_UNKNOWN",
    "DateIssue",
    "to_iso8601",
    "is_iso8601",
    "dtc_precision",
    "dtc_date",
    "study_day",
    "compare_dtc",
    "age_in_years",
    "format_iso",
    "check_format",
    "contradicts",
]

#: Tokens an EDC writes for an unknown date or time part (matched case-insensitively).
#: All-zero day, month or year (``00``, ``0000``) also mean unknown, see ``zero_is_unknown``.
DEFAULT_UNKNOWN: tuple[str, ...] = ("UN", "UNK", "UNKN", "UNKNOWN", "--", "----")

PRECISIONS = ("year", "month", "day", "hour", "minute", "second")
_DATE_PARTS = ("year", "month", "day")
_TIME_PARTS = ("hour", "minute", "second")
_MONTH_ABBR = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTH_NAME = dict(enumerate(calendar.month_name))


@dataclass(frozen=True)
class DateIssue:
    """A raw value that could not be converted faithfully.

    ``index`` is the row label of the input Series so that the caller can name the
    file row; ``value`` is the raw text as read.  ``severity`` is ``'error'`` when the
    value is wrong (the output is '') and ``'warning'`` when the output is right but
    loses information the raw data had (a time dropped, a wholly unknown date).
    ``field`` says which input held the problem: ``'date'``, ``'time'`` or
    ``'date+time'`` (the combination of both).
    """

    index: Hashable
    value: str
    reason: str
    severity: str = "error"
    field: str = "date"


# --------------------------------------------------------------------------------------
# Raw format declarations
# --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"y+|M+|d+|H+|h+|m+|s+|[-/. :T]|.")
_TOKEN_PART = {
    "yyyy": ("year", r"\d{4}"),
    "yy": ("year", r"\d{2}"),          # only with a declared year window
    "MMM": ("month", r"[A-Za-z]+"),
    "MM": ("month", r"\d{2}"),
    "M": ("month", r"\d{1,2}"),
    "dd": ("day", r"\d{2}"),
    "d": ("day", r"\d{1,2}"),
    "HH": ("hour", r"\d{2}"),
    "H": ("hour", r"\d{1,2}"),
    "mm": ("minute", r"\d{2}"),
    "ss": ("second", r"\d{2}"),
}
_TOLERANT_SEPARATORS = "-/. "


@dataclass(frozen=True)
class _Format:
    text: str
    regex: re.Pattern
    parts: tuple[str, ...]
    year_window: int | None = None    # yy: the first of the 100 years two digits stand for


def _tokenize(fmt: str, year_window: int | None = None) -> list[str]:
    """Split a format declaration into tokens, refusing what we cannot read safely."""
    tokens = _TOKEN.findall(fmt)
    for tok in tokens:
        if tok == "yy" and year_window is None:
            raise ValueError(
                f"date format {fmt!r}: 2-digit years are ambiguous (1920 or 2020?); declare "
                "`year_window:`, the first of the 100 years they stand for (1930: 30 is 1930, 29 is 2029)")
        if tok in _TOKEN_PART or (len(tok) == 1 and tok in "-/. :T"):
            continue
        if tok[0] == "y":
            raise ValueError(
                f"date format {fmt!r}: {tok!r} -- years are yyyy, or yy with `year_window:`")
        if tok[0] == "h":
            raise ValueError(f"date format {fmt!r}: 12-hour clock {tok!r} is not supported; use HH")
        raise ValueError(
            f"format {fmt!r}: unknown token {tok!r} (use dd, d, MM, M, MMM, yyyy, HH, H, mm, ss "
            "and the separators - / . space : T)"
        )
    return tokens


def _check_parts(fmt: str, parts: list[str], kind: str) -> None:
    """Refuse formats whose parts repeat or leave holes that no value could fill."""
    if len(set(parts)) != len(parts):
        raise ValueError(f"format {fmt!r}: a date or time part appears twice")
    has = set(parts)
    if kind == "date" and "year" not in has:
        raise ValueError(f"date format {fmt!r} has no year (yyyy)")
    if kind == "time" and has & set(_DATE_PARTS):
        raise ValueError(f"time format {fmt!r} contains date parts; declare them in date_format")
    if kind == "time" and "hour" not in has:
        raise ValueError(f"time format {fmt!r} has no hour (HH or H)")
    for part, needs in (("day", "month"), ("minute", "hour"), ("second", "minute")):
        if part in has and needs not in has:
            raise ValueError(f"format {fmt!r}: {part} without {needs}")
    times = [i for i, p in enumerate(parts) if p in _TIME_PARTS]
    dates = [i for i, p in enumerate(parts) if p in _DATE_PARTS]
    if times and dates and min(times) < max(dates):
        raise ValueError(f"format {fmt!r}: the time must follow the date")


@lru_cache(maxsize=256)
def _compile_format(fmt: str, unknown: tuple[str, ...], kind: str, year_window: int | None = None) -> _Format:
    """Turn a declared format into an anchored regex with one named group per part.

    Text-month formats (MMM) accept any of ``- / . space`` where the declaration has one
    of them in the date section, because EDC exports mix ``UN JAN 2022`` and
    ``UN-JAN-2022`` in the same column; numeric formats keep their separators strict
    (``01.02.2021`` under ``dd/MM/yyyy`` may be a different convention, not a typo).
    In a date format that includes a time, the time section is optional: many EDC
    datetime fields hold a bare date when no time was collected.
    """
    tokens = _tokenize(fmt, year_window)
    parts = [_TOKEN_PART[t][0] for t in tokens if t in _TOKEN_PART]
    _check_parts(fmt, parts, kind)
    unknown_alt = "|".join(re.escape(u) for u in sorted(unknown, key=len, reverse=True))
    tolerant = "MMM" in tokens
    first_time = next((i for i, t in enumerate(tokens) if t in _TOKEN_PART
                       and _TOKEN_PART[t][0] in _TIME_PARTS), None)
    optional_from = None
    if kind == "date" and first_time is not None:
        optional_from = first_time
        while optional_from > 0 and tokens[optional_from - 1] not in _TOKEN_PART:
            optional_from -= 1
    pieces = []
    for i, tok in enumerate(tokens):
        if i == optional_from:
            pieces.append("(?:")
        if tok in _TOKEN_PART:
            name, pattern = _TOKEN_PART[tok]
            alt = f"{pattern}|{unknown_alt}" if unknown_alt else pattern
            pieces.append(f"(?P<{name}>{alt})")
        elif tolerant and tok in _TOLERANT_SEPARATORS and (first_time is None or i < first_time):
            pieces.append(f"[{re.escape(_TOLERANT_SEPARATORS)}]")
        else:
            pieces.append(re.escape(tok))
    if optional_from is not None:
        pieces.append(")?")
    regex = re.compile("".join(pieces), re.IGNORECASE | re.ASCII)
    return _Format(fmt, regex, tuple(parts), year_window if "yy" in tokens else None)


def check_format(fmt: str, kind: str = "date", unknown: Sequence[str] = DEFAULT_UNKNOWN,
                 year_window: int | None = None) -> None:
    """Raise ValueError (the reason) for a format or unknown tokens that cannot be read safely, so
    that a mapping is refused before anything runs."""
    _compile_format(fmt, _unknown_tokens(unknown), kind, year_window)


def contradicts(a: str, b: str) -> bool:
    """Two date formats with a numeric month that read day and month in swapped places
    (MM/dd/yyyy and dd/MM/yyyy, M/d/yyyy and dd.MM.yyyy, yyyy-MM-dd and yyyy-dd-MM): one column
    written both ways cannot be read with certainty. A text month (MMM) contradicts nothing."""
    swap = {"day": "month", "month": "day"}
    oa, ob = _day_month_order(a), _day_month_order(b)
    return oa is not None and ob is not None and tuple(swap.get(p, p) for p in oa) == ob


def _day_month_order(fmt: str) -> tuple[str, ...] | None:
    tokens = _TOKEN.findall(fmt)
    parts = tuple(_TOKEN_PART[t][0] for t in tokens if t in _TOKEN_PART and _TOKEN_PART[t][0] in _DATE_PARTS)
    numeric_month = any(t in ("MM", "M") for t in tokens)
    return parts if numeric_month and "day" in parts else None


# --------------------------------------------------------------------------------------
# Raw value -> parts
# --------------------------------------------------------------------------------------

class _Raw(NamedTuple):
    """One distinct raw value read with a format: parts (None = unknown) or an error."""

    parts: dict[str, int | None]
    error: str | None = None


def _read_part(name: str, text: str, unknown: frozenset[str], zero_is_unknown: bool) -> int | None:
    """Value of one matched part; None when the EDC wrote an unknown token."""
    if text.upper() in unknown:
        return None
    if text.isdigit():
        value = int(text)
        if value == 0 and zero_is_unknown and name in _DATE_PARTS:
            return None
        return value
    month = _MONTH_ABBR.get(text.upper())
    if month is None:
        raise ValueError(f"{shown(text)} is not a month abbreviation (JAN..DEC)")
    return month


def _check_calendar(p: dict[str, int | None]) -> str | None:
    """Why the known parts cannot form a real date/time, or None when they can."""
    y, mo, d = p.get("year"), p.get("month"), p.get("day")
    if y is not None and y < 1:
        return "year 0000 does not exist in the calendar SDTM uses"
    if mo is not None and not 1 <= mo <= 12:
        return f"month {mo} does not exist"
    if d is not None:
        if d < 1:
            return f"day {d} does not exist"
        if mo is None:
            if d > 31:
                return f"day {d} does not exist in any month"
        elif y is not None and d > calendar.monthrange(y, mo)[1]:
            leap = " (not a leap year)" if mo == 2 and d == 29 else ""
            return f"day {d} does not exist in {_MONTH_NAME[mo]} {y}{leap}"
        elif y is None and d > (29 if mo == 2 else calendar.monthrange(2001, mo)[1]):
            return f"day {d} does not exist in {_MONTH_NAME[mo]}"
    for name, top in (("hour", 23), ("minute", 59), ("second", 59)):
        v = p.get(name)
        if v is not None and v > top:
            return f"{name} {v} is out of range 00-{top}"
    return None


def _read_raw(text: str, fmt: _Format, unknown: frozenset[str], zero_is_unknown: bool) -> _Raw:
    """Match one stripped raw value against its format and check it is a real date."""
    match = fmt.regex.fullmatch(text)
    if match is None:
        return _Raw({}, f"{shown(text)} does not match the format {fmt.text!r}")
    parts: dict[str, int | None] = {}
    for name in fmt.parts:
        raw = match.group(name)
        if raw is None:  # optional time section absent
            continue
        if name == "year" and fmt.year_window is not None and raw.isdigit():
            start = fmt.year_window                 # '20' in a window from 1930 is 2020, '45' 1945
            year = start - start % 100 + int(raw)
            parts[name] = year + 100 if year < start else year
            continue
        try:
            parts[name] = _read_part(name, raw, unknown, zero_is_unknown)
        except ValueError as exc:
            return _Raw({}, str(exc))
    return _Raw(parts, _check_calendar(parts))


_NO_MATCH = re.compile(r"does not match the format '(?P<fmt>.*)'$")


def _separators(text: str) -> str:
    return "".join(dict.fromkeys(ch for ch in text if not ch.isalnum()))


def problem_class(value: str, reason: str) -> tuple[tuple, str]:
    """The kind of a date problem, so that a column of hundreds of values written the same wrong way
    gives one message: (key, what the values do). Values that do not match the format are grouped by
    the separators they use instead of the format's, else by their shape (digits as 9, letters as A);
    impossible dates and times are of one kind per reason (day 30 of February: a kind of its own); any
    other reason is its own kind."""
    match = _NO_MATCH.search(reason)
    if match:
        fmt = match.group("fmt")
        used, wanted = _separators(value), _separators(re.sub(r"[A-Za-z]", "", fmt))
        if used and set(used) != set(wanted):
            return (("separator", fmt, used),
                    f"use {' '.join(repr(c) for c in used)} where the format {fmt!r} has "
                    + (" ".join(repr(c) for c in wanted) or "no separator"))
        shape = re.sub(r"[0-9]", "9", re.sub(r"[A-Za-z]", "A", value))
        return (("shape", fmt, shape), f"are written {shape!r} (9 a digit, A a letter), which does not "
                f"match the format {fmt!r}")
    if "does not exist" in reason or "is out of range" in reason:
        return ("calendar", re.sub(r"[0-9]+", "N", reason)), "are not real dates or times"
    return ("other", reason), reason


# --------------------------------------------------------------------------------------
# Parts -> ISO 8601 text
# --------------------------------------------------------------------------------------

def _hyphen_rule(values: Sequence[int | None], width: Sequence[int], seps: Sequence[str]) -> str:
    """ISO 8601 as SDTMIG 4.4.4 writes missing parts: trailing unknown parts are cut off,
    an unknown part followed by a known one becomes a single hyphen (``2019---20``)."""
    last = max((i for i, v in enumerate(values) if v is not None), default=-1)
    out = []
    for i in range(last + 1):
        v = values[i]
        out.append(seps[i] + ("-" if v is None else f"{v:0{width[i]}d}"))
    return "".join(out)


def _date_text(p: dict[str, int | None]) -> str:
    return _hyphen_rule([p.get(k) for k in _DATE_PARTS], (4, 2, 2), ("", "-", "-"))


def _time_text(p: dict[str, int | None]) -> str:
    return _hyphen_rule([p.get(k) for k in _TIME_PARTS], (2, 2, 2), ("", ":", ":"))


class _Conv(NamedTuple):
    """ISO text and issues (severity, field, reason) for one distinct date/time pair."""

    text: str
    issues: tuple[tuple[str, str, str], ...]


_MISSING = _Raw({})


def _convert_pair(d: _Raw, t: _Raw, d_given: bool, t_given: bool) -> _Conv:
    """Combine a parsed date and a parsed time into one ISO 8601 value.

    The time may come from the date text itself or from a separate time column (never
    both, ``to_iso8601`` refuses that).  Any error empties the result: a half-converted
    value would look trustworthy in the SDTM dataset while the error report says otherwise.
    """
    errors = []
    if d.error:
        errors.append(("error", "date", d.error))
    if t.error:
        errors.append(("error", "time", t.error))
    if errors:
        return _Conv("", tuple(errors))
    parts = {**d.parts, **t.parts}
    date_known = [parts.get(k) is not None for k in _DATE_PARTS]
    time_known = any(parts.get(k) is not None for k in _TIME_PARTS)
    time_field = "time" if t_given else "date"
    if not any(date_known):
        if time_known:
            return _Conv("", (("error", time_field, f"time {_time_text(parts)} given without a date"),))
        if d_given:
            return _Conv("", (("warning", "date", "date entirely unknown; stored as missing"),))
        return _Conv("", ())
    if not date_known[0]:
        return _Conv("", (("error", "date", "year unknown: an ISO 8601 date needs at least the year"),))
    text = _date_text(parts)
    if not time_known:
        return _Conv(text, ())
    if not all(date_known):
        field = "date+time" if t_given else "date"
        return _Conv(text, (("warning", field,
                             f"time {_time_text(parts)} dropped: ISO 8601 allows a time only "
                             f"after a complete date (date is {text})"),))
    return _Conv(f"{text}T{_time_text(parts)}", ())


# --------------------------------------------------------------------------------------
# Distinct-value machinery
# --------------------------------------------------------------------------------------

def _as_series(values: Any, index: pd.Index | None = None) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    return pd.Series(list(values), index=index, dtype=object)


def _raw_text(value: Any, strip: bool = True) -> str:
    """Raw cell as text ('' when missing), stripped of the padding exports add unless
    ``strip`` is False; integral floats lose their '.0' because spreadsheets turn
    20210315 (yyyyMMdd) into 20210315.0."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() if strip else str(value)


def _factorize(values: pd.Series, strip: bool = True) -> tuple[np.ndarray, list[str]]:
    """Codes into the distinct texts; the last text is always '' (missing)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [_raw_text(u, strip) for u in uniques] + [""]
    codes = np.where(codes < 0, len(texts) - 1, codes)
    return codes, texts


def _map_distinct(values: Any, func: Callable[[str], Any]) -> tuple[pd.Series, list, np.ndarray]:
    """Apply ``func`` to each distinct ISO text (not stripped: ISO 8601 has no padding).

    Returns the input as a Series, the results per distinct text and the per-row codes
    into them; callers build small numpy arrays from the results and index them with
    the codes, so no Python object is created per row."""
    series = _as_series(values)
    codes, texts = _factorize(series, strip=False)
    return series, [func(t) for t in texts], codes


def _str_series(distinct: Sequence[str], codes: np.ndarray, like: pd.Series) -> pd.Series:
    """A str Series shaped like ``like`` from distinct texts and per-row codes (taking
    from a small string array is twice as fast as converting a million Python strings)."""
    values = pd.array(list(distinct), dtype="str").take(codes)
    return pd.Series(values, index=like.index, name=like.name)


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------

def _unknown_tokens(unknown: Sequence[str]) -> tuple[str, ...]:
    if isinstance(unknown, str):
        unknown = (unknown,)
    tokens = tuple(str(u).strip() for u in unknown if str(u).strip())
    bad = [u for u in tokens if any(c.isdigit() for c in u)]
    if bad:
        raise ValueError(
            f"unknown tokens {bad} contain digits; all-zero day/month/year are governed by "
            "zero_is_unknown, and a numeric token would also blank real hours or minutes"
        )
    return tokens


def _parse_column(values: pd.Series, fmt: _Format, unknown: frozenset[str],
                  zero_is_unknown: bool) -> tuple[np.ndarray, list[_Raw], list[str]]:
    codes, texts = _factorize(values)
    parsed = [_read_raw(t, fmt, unknown, zero_is_unknown) if t else _MISSING for t in texts]
    return codes, parsed, texts


def to_iso8601(
    dates: pd.Series,
    times: pd.Series | None = None,
    *,
    date_format: str,
    time_format: str | None = None,
    unknown: Sequence[str] = DEFAULT_UNKNOWN,
    zero_is_unknown: bool = True,
    year_window: int | None = None,
) -> tuple[pd.Series, list[DateIssue]]:
    """Convert raw EDC dates (and optional separate times) to ISO 8601 text.

    ``date_format`` declares how the raw column is written, with the tokens ``dd d MM M
    MMM yyyy`` and, for datetime columns, ``HH H mm ss``; e.g. ``dd-MMM-yyyy``,
    ``dd/MM/yyyy``, ``yyyyMMdd``, ``dd-MMM-yyyy HH:mm``.  ``time_format`` declares a
    separate time column (``HH:mm``, ``HHmm``, ``HH:mm:ss``, ``H:mm``).

    Parts written as one of ``unknown`` (case-insensitive), or as all zeros for day,
    month or year when ``zero_is_unknown``, become ISO 8601 partial dates: ``UN-JUN-1968``
    -> ``1968-06``, ``20-UNK-2019`` -> ``2019---20``, ``10:UN`` -> ``T10``.

    Returns the ISO Series (same index and name as ``dates``; '' where missing or in
    error) and the issues, one per affected row, in row order.  Errors are values that
    do not match the format, impossible dates/times, an unknown year with known month or
    day, and a time without a date.  Warnings are a time dropped because the date is
    partial (ISO 8601 has no time after an incomplete date) and a date written entirely
    as unknown (kept as '').
    """
    tokens = _unknown_tokens(unknown)
    unknown_set = frozenset(u.upper() for u in tokens)
    dfmt = _compile_format(date_format, tokens, "date", year_window)
    dates = _as_series(dates)
    if pd.api.types.is_datetime64_any_dtype(dates):
        raise TypeError("dates are already datetimes (e.g. read from Excel); use format_iso "
                        "with the precision the source really has")
    d_codes, d_parsed, d_texts = _parse_column(dates, dfmt, unknown_set, zero_is_unknown)

    if times is None:
        t_codes, t_parsed, t_texts = np.zeros(len(dates), dtype=np.intp), [_MISSING], [""]
    else:
        if time_format is None:
            raise ValueError("times given without time_format")
        if set(dfmt.parts) & set(_TIME_PARTS):
            raise ValueError(f"date format {date_format!r} already holds a time; do not pass times")
        times = _as_series(times)
        if not times.index.equals(dates.index):
            times = times.reindex(dates.index)
        tfmt = _compile_format(time_format, tokens, "time")
        t_codes, t_parsed, t_texts = _parse_column(times, tfmt, unknown_set, zero_is_unknown)

    pair_codes, pairs = pd.factorize(d_codes.astype(np.int64) * len(t_texts) + t_codes)
    di, ti = np.divmod(np.asarray(pairs, dtype=np.int64), len(t_texts))
    # A complete date and a readable time (the usual pair) is its ISO date and time, no issue:
    # joined without a Python call per pair, as a date and a time column have up to a million.
    d_ok, d_iso, d_time = _complete(d_parsed)
    t_ok, _, t_time = _complete(t_parsed, date=False)
    plain = d_ok[di] & t_ok[ti]
    texts = np.full(len(pairs), "", dtype=object)
    texts[plain] = d_iso[di[plain]] + d_time[di[plain]] + t_time[ti[plain]]
    issues_of = {}
    for k in np.flatnonzero(~plain).tolist():
        conv = _convert_pair(d_parsed[di[k]], t_parsed[ti[k]], bool(d_texts[di[k]]), bool(t_texts[ti[k]]))
        texts[k] = conv.text
        if conv.issues:
            issues_of[k] = conv.issues
    result = _str_series(texts.tolist(), pair_codes, dates)
    return result, _collect_issues(issues_of, pair_codes, dates, times)


def _complete(parsed: list[_Raw], date: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct parsed value: readable (with a complete date, for a date), its ISO date text
    and 'T' + its ISO time text ('' without a time)."""
    ok = np.array([not r.error and (not date or all(r.parts.get(k) is not None for k in _DATE_PARTS))
                   for r in parsed], dtype=bool)
    iso = np.array([_date_text(r.parts) if good else "" for r, good in zip(parsed, ok)], dtype=object)
    time = np.array(["T" + _time_text(r.parts) if good and any(r.parts.get(k) is not None for k in _TIME_PARTS)
                     else "" for r, good in zip(parsed, ok)], dtype=object)
    return ok, iso, time


def _collect_issues(issues_of: dict[int, tuple], pair_codes: np.ndarray, dates: pd.Series,
                    times: pd.Series | None) -> list[DateIssue]:
    """Expand per-distinct-pair issues ({pair: issues}) to one DateIssue per affected row."""
    with_issues = list(issues_of)
    if not with_issues:
        return []
    rows = np.flatnonzero(np.isin(pair_codes, with_issues))
    d_raw = dates.iloc[rows].to_numpy(dtype=object)
    t_raw = None if times is None else times.iloc[rows].to_numpy(dtype=object)
    labels = dates.index[rows]
    issues = []
    for i, pos in enumerate(rows):
        date_value = _raw_text(d_raw[i])
        time_value = "" if t_raw is None else _raw_text(t_raw[i])
        for severity, field, reason in issues_of[pair_codes[pos]]:
            value = {"date": date_value, "time": time_value}.get(
                field, f"{date_value} {time_value}".strip())
            issues.append(DateIssue(labels[i], value, reason, severity, field))
    return issues


# --------------------------------------------------------------------------------------
# ISO 8601 text: validity, precision, date part
# --------------------------------------------------------------------------------------

_ISO = re.compile(
    r"(?P<year>\d{4}|-)"
    r"(?:-(?P<month>\d{2}|-)"
    r"(?:-(?P<day>\d{2}|-)"
    r"(?:T(?P<hour>\d{2}|-)"
    r"(?::(?P<minute>\d{2}|-)"
    r"(?::(?P<second>\d{2}|-)(?P<fraction>[.,]\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?",
    re.ASCII,
)


class _Dtc(NamedTuple):
    """A valid ISO 8601 value: parts (None = unknown or absent) and what is known."""

    parts: dict[str, int | None]
    fraction: str          # digits after the decimal sign of the seconds, '' if none
    tz_minutes: int | None  # offset east of UTC, None when no zone designator
    precision: int         # number of leading known parts (0..6)
    gap: bool              # an unknown part is followed by a known one (hyphen rule)


def _parse_dtc(text: str) -> _Dtc | None:
    """Parse one ISO 8601 value as SDTM writes it; None when invalid or ''."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    groups = [m.group(k) for k in PRECISIONS]
    present = [g for g in groups if g is not None]
    if present[-1] == "-":  # trailing unknown parts must be cut off, not hyphenated
        return None
    parts = {k: (None if g in (None, "-") else int(g)) for k, g in zip(PRECISIONS, groups)}
    if m.group("fraction") and parts["second"] is None:
        return None
    if _check_calendar(parts):
        return None
    tz = m.group("tz")
    tz_minutes = None
    if tz:
        if tz == "Z":
            tz_minutes = 0
        else:
            digits = tz[1:].replace(":", "")
            hh, mm = int(digits[:2]), int(digits[2:] or 0)
            if hh > 23 or mm > 59:
                return None
            tz_minutes = (hh * 60 + mm) * (1 if tz[0] == "+" else -1)
    known = [v is not None for v in parts.values()]
    precision = known.index(False) if False in known else len(known)
    gap = any(known[precision:])
    fraction = (m.group("fraction") or "")[1:]
    return _Dtc(parts, fraction, tz_minutes, precision, gap)


def _parse_or_none(text: str) -> _Dtc | None:
    return _parse_dtc(text) if text else None


def is_iso8601(values: Any) -> pd.Series:
    """True where a value is valid SDTM ISO 8601 date/time text, '' (missing) included.

    Checks both syntax and the calendar: complete and right-truncated values
    (``2021``, ``2021-03``, ``2021-03-15T09``, ``2021-03-15T09:45:00.123``), the SDTMIG
    hyphen forms for unknown middle parts (``2003---15``, ``--12-15``,
    ``2003-12-15T-:15``, ``-----T07:15``) and an optional zone designator after a time
    (``Z``, ``+01:00``).  Refused: impossible dates (``2021-02-29``), unpadded parts
    (``2021-1-5``), hour 24, year 0000, a trailing hyphen (``2021-03-``), a time after a
    truncated date (``2021-03T10:00``), a bare time without the hyphenated date, and
    intervals or durations.
    """
    def valid(text: str) -> bool:
        return not text or _parse_dtc(text) is not None

    series, ok, codes = _map_distinct(values, valid)
    return pd.Series(np.array(ok, dtype=bool)[codes], index=series.index, name=series.name)


def dtc_precision(values: Any) -> pd.Series:
    """'year' .. 'second' for the leading complete part of each value; '' when missing,
    invalid or when even the year is unknown.  ``2019---20`` is 'year' and
    ``2019-07--T10:30`` is 'month': a hyphenated gap ends the usable precision."""
    def precision(text: str) -> str:
        dtc = _parse_or_none(text)
        return "" if dtc is None or dtc.precision == 0 else PRECISIONS[dtc.precision - 1]

    series, out, codes = _map_distinct(values, precision)
    return _str_series(out, codes, series)


def _ordinal(text: str) -> float:
    """Proleptic Gregorian day number of the complete date part, NaN when incomplete."""
    dtc = _parse_or_none(text)
    if dtc is None or dtc.precision < 3:
        return np.nan
    p = dtc.parts
    return float(date(p["year"], p["month"], p["day"]).toordinal())


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS_RANGE = (pd.Timestamp.min.ceil("D").date().toordinal(), pd.Timestamp.max.floor("D").date().toordinal())


def dtc_date(values: Any) -> pd.Series:
    """The calendar date of each value as ``datetime64[ns]`` (time dropped), NaT unless
    year, month and day are all known.  For derivations only: SDTM variables stay text.
    Dates outside the datetime64[ns] range (before 1677, after 2262) are NaT too."""
    series, distinct, codes = _map_distinct(values, _ordinal)
    ordinals = np.array(distinct, dtype=float)[codes]
    ordinals[(ordinals < _NS_RANGE[0]) | (ordinals > _NS_RANGE[1])] = np.nan
    out = pd.to_datetime(ordinals - _EPOCH_ORDINAL, unit="D").astype("datetime64[ns]")
    return pd.Series(out, index=series.index, name=series.name)


def _align(other: Any, like: pd.Series) -> pd.Series:
    """``other`` as a Series on ``like``'s index: scalars broadcast, Series align by label."""
    if isinstance(other, str) or np.ndim(other) == 0:
        return pd.Series([other] * len(like), index=like.index, dtype=object)
    if not isinstance(other, pd.Series):
        if len(other) != len(like):
            raise ValueError(f"{len(other)} values to pair with {len(like)}")
        return _as_series(other, like.index)
    return other if other.index.equals(like.index) else other.reindex(like.index)


def _ordinals(values: pd.Series) -> np.ndarray:
    _, distinct, codes = _map_distinct(values, _ordinal)
    return np.array(distinct, dtype=float)[codes]


def study_day(dtc: Any, ref_dtc: Any) -> pd.Series:
    """SDTM study day (--DY) of ``dtc`` relative to ``ref_dtc`` (usually RFSTDTC).

    SDTMIG: ``date - ref + 1`` on or after the reference day, ``date - ref`` before it,
    so there is no day 0.  Only the calendar dates count (times are ignored); <NA> unless
    both dates are complete.  ``ref_dtc`` aligns with ``dtc`` by index, or is a scalar.
    """
    series = _as_series(dtc)
    diff = _ordinals(series) - _ordinals(_align(ref_dtc, series))
    out = np.where(diff >= 0, diff + 1, diff)
    return pd.Series(pd.array(out, dtype="Int64"), index=series.index, name=series.name)


# --------------------------------------------------------------------------------------
# Partial dates as intervals: comparison and age
# --------------------------------------------------------------------------------------

_US_PER_DAY = 86_400_000_000


def _bounds(dtc: _Dtc) -> tuple[int, int]:
    """Earliest instant and the instant just after the latest one (microseconds,
    UTC when a zone is given) that a possibly partial value can stand for.
    Only the leading complete part is used: ``2019---20`` counts as the whole of 2019."""
    p = {k: dtc.parts[k] for k in PRECISIONS[:dtc.precision]}
    y, mo, d = p["year"], p.get("month"), p.get("day")
    first = date(y, mo or 1, d or 1).toordinal()
    if d is not None:
        last = first
    elif mo is not None:
        last = date(y, mo, calendar.monthrange(y, mo)[1]).toordinal()
    else:
        last = date(y, 12, 31).toordinal()
    clock = [p.get("hour"), p.get("minute"), p.get("second")]
    lo = first * _US_PER_DAY + sum((v or 0) * s for v, s in zip(clock, (3_600_000_000, 60_000_000, 1_000_000)))
    if dtc.precision == 6 and dtc.fraction:
        digits = dtc.fraction[:6]
        lo += int(digits.ljust(6, "0"))
        span = 10 ** (6 - len(digits))
    else:
        span = {3: _US_PER_DAY, 4: 3_600_000_000, 5: 60_000_000, 6: 1_000_000}.get(dtc.precision)
    hi = (last + 1) * _US_PER_DAY if span is None else lo + span
    shift = (dtc.tz_minutes or 0) * 60_000_000
    return lo - shift, hi - shift


def dtc_bounds(text: str) -> tuple[int, int, bool, int, int | None] | None:
    """What an ISO 8601 value stands for, as the expression language compares it: the earliest
    instant and the instant just after the latest one (microseconds since 1970, local time as written), whether
    it has no hyphenated gap, its precision (1 year .. 6 second, 7 with a fraction) and its zone
    offset in minutes (None without one). None when invalid; precision 0 when even the year is
    unknown."""
    dtc = _parse_or_none(text)
    if dtc is None:
        return None
    if dtc.precision == 0:
        return 0, 0, False, 0, dtc.tz_minutes
    lo, hi = _bounds(dtc)
    shift = (dtc.tz_minutes or 0) * 60_000_000 - _EPOCH_ORDINAL * _US_PER_DAY
    precision = 7 if dtc.precision == 6 and dtc.fraction else dtc.precision
    return lo + shift, hi + shift, not dtc.gap, precision, dtc.tz_minutes


class _Span(NamedTuple):
    lo: int
    hi: int
    exact: bool          # no hyphenated gap: equal spans mean equal values
    zoned: bool


def _span(text: str) -> _Span | None:
    dtc = _parse_or_none(text)
    if dtc is None or dtc.precision == 0:
        return None
    lo, hi = _bounds(dtc)
    return _Span(lo, hi, not dtc.gap, dtc.tz_minutes is not None)


def _span_arrays(values: pd.Series) -> dict[str, np.ndarray]:
    _, spans, codes = _map_distinct(values, _span)
    fill = _Span(0, 0, False, False)
    filled = [s if s is not None else fill for s in spans]
    return {
        "valid": np.array([s is not None for s in spans], dtype=bool)[codes],
        "lo": np.array([s.lo for s in filled], dtype=np.int64)[codes],
        "hi": np.array([s.hi for s in filled], dtype=np.int64)[codes],
        "exact": np.array([s.exact for s in filled], dtype=bool)[codes],
        "zoned": np.array([s.zoned for s in filled], dtype=bool)[codes],
    }


def compare_dtc(a: Any, b: Any) -> pd.Series:
    """Order two ISO 8601 values: -1 (a before b), 0 (same), 1 (a after b) or <NA>.

    A partial value stands for every instant it could be, so ``2021-10`` is after
    ``2021-09-30`` (1) but cannot be ordered against ``2021-10-15`` (<NA>).  0 needs
    both values at the same precision with the same parts (``2021-10-15`` vs
    ``2021-10-15T08:00`` is <NA>: the time could be any time of that day).  <NA> also
    when either is missing, invalid, has no known year, or only one has a time zone.
    ``b`` aligns with ``a`` by index, or is a scalar.
    """
    series = _as_series(a)
    x, y = _span_arrays(series), _span_arrays(_align(b, series))
    usable = x["valid"] & y["valid"] & (x["zoned"] == y["zoned"])
    before = x["hi"] <= y["lo"]
    after = x["lo"] >= y["hi"]
    same = x["exact"] & y["exact"] & (x["lo"] == y["lo"]) & (x["hi"] == y["hi"])
    out = pd.array(np.select([before, after, same], [-1, 1, 0], 0), dtype="Int64")
    out[~(usable & (before | after | same))] = pd.NA
    return pd.Series(out, index=series.index, name=series.name)


def _date_range(text: str) -> tuple[int, int, int, int] | None:
    """(year, month*100+day) of the earliest and latest calendar date a value allows."""
    dtc = _parse_or_none(text)
    if dtc is None or dtc.precision == 0:
        return None
    y = dtc.parts["year"]
    mo = dtc.parts["month"] if dtc.precision >= 2 else None
    d = dtc.parts["day"] if dtc.precision >= 3 else None
    lo = (mo or 1) * 100 + (d or 1)
    if d is not None:
        hi = lo
    elif mo is not None:
        hi = mo * 100 + calendar.monthrange(y, mo)[1]
    else:
        hi = 1231
    return y, lo, y, hi


def _range_arrays(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    _, ranges, codes = _map_distinct(values, _date_range)
    valid = np.array([r is not None for r in ranges], dtype=bool)
    table = np.array([r if r is not None else (0, 0, 0, 0) for r in ranges], dtype=np.int64)
    return valid[codes], table.reshape(-1, 4)[codes]


def _completed_years(by: np.ndarray, bmd: np.ndarray, ry: np.ndarray, rmd: np.ndarray) -> np.ndarray:
    """Whole years from birth to reference; the birthday counts once its month-day is
    reached, so someone born on 29 February completes a year on 1 March in common years."""
    return ry - by - (rmd < bmd)


def age_in_years(birth_dtc: Any, ref_dtc: Any) -> tuple[pd.Series, pd.Series]:
    """Age in completed years at ``ref_dtc`` (e.g. RFSTDTC), and where it is ambiguous.

    A partial birth (or reference) date stands for all its completions: the youngest
    and the oldest possible ages are computed; when they agree that is the age
    (born ``1968-06``, on ``2021-05-10`` -> 52 whatever the day), otherwise the age is
    <NA> and ``ambiguous`` is True (born ``1968-05`` -> 52 or 53).  Missing or invalid
    dates give <NA> with ``ambiguous`` False.  Times are ignored.  A birth after the
    reference date gives a negative age: flagging it is the validator's job.
    """
    series = _as_series(birth_dtc)
    b_ok, b = _range_arrays(series)
    r_ok, r = _range_arrays(_align(ref_dtc, series))
    ok = b_ok & r_ok
    youngest = _completed_years(b[:, 2], b[:, 3], r[:, 0], r[:, 1])
    oldest = _completed_years(b[:, 0], b[:, 1], r[:, 2], r[:, 3])
    age = pd.array(youngest, dtype="Int64")
    age[~ok | (youngest != oldest)] = pd.NA
    ambiguous = ok & (youngest != oldest)
    return (pd.Series(age, index=series.index, name=series.name),
            pd.Series(ambiguous, index=series.index, name=series.name))


# --------------------------------------------------------------------------------------
# datetime -> ISO text
# --------------------------------------------------------------------------------------

_STRFTIME = {
    "year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d",
    "hour": "%Y-%m-%dT%H", "minute": "%Y-%m-%dT%H:%M", "second": "%Y-%m-%dT%H:%M:%S",
}


def format_iso(ts: Any, precision: str = "day") -> pd.Series:
    """Write datetimes (e.g. an Excel column pandas already parsed) as ISO 8601 text cut
    to ``precision`` ('year' .. 'second'); NaT becomes ''.  Use it only when the source
    really holds that precision: a midnight time from a date-only cell is not a time."""
    if precision not in _STRFTIME:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    series = pd.to_datetime(_as_series(ts))
    out = series.dt.strftime(_STRFTIME[precision])
    return pd.Series(out.fillna("").to_numpy(dtype=object), index=series.index,
                     name=series.name, dtype="str")
