"""ADaM analysis dates (``*DT``/``*DTM``) from SDTM ``--DTC`` text, with imputation.

The rules follow the R package *admiral* (``impute_dtc_dt``, ``impute_dtc_dtm``,
``compute_dtf``, ``compute_tmf``, ``derive_vars_dt``, ``derive_vars_dtm``):

* ``--DTC`` is ISO 8601 text; trailing components may be omitted and ``-`` marks a
  missing component anywhere (``"2019---20"``: month missing, day 20;
  ``"--06-01"``: year missing).
* ``highest_imputation`` names the highest component that may be imputed.  If a
  component *above* that level is missing the result is missing (``""``).
* Imputed dates can be restricted by ``min_dates``/``max_dates``: only a bound that
  lies inside the range of dates the partial value could stand for is applied, so
  the known components are never changed.

Imputed values are returned as ISO text (``""`` for missing); the ``derive_vars_*``
helpers turn them into ``datetime64[ns]`` columns.  Every function parses the
*distinct* input values (together with the bounds of that row) once and maps the
results back to the rows.
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "impute_dtc_dt",
    "impute_dtc_dtm",
    "compute_dtf",
    "compute_tmf",
    "derive_vars_dt",
    "derive_vars_dtm",
    "study_day",
]

# --------------------------------------------------------------------------- parsing

_DATE_RE = re.compile(r"^(?P<y>\d{4}|-)(?:-(?P<m>\d{2}|-)?(?:-(?P<d>\d{2}|-)?)?)?$")
_TIME_RE = re.compile(
    r"^(?P<H>\d{2}|-)?(?::(?P<M>\d{2}|-)?(?::(?P<S>\d{2}(?:\.\d+)?|-)?)?)?$"
)

# component -> level number; dt levels: n=0 D=1 M=2 Y=3; dtm: n=0 s=1 m=2 h=3 D=4 M=5 Y=6
_DT_LEVELS = {"n": 0, "D": 1, "M": 2, "Y": 3}
_DTM_LEVELS = {"n": 0, "s": 1, "m": 2, "h": 3, "D": 4, "M": 5, "Y": 6}

_Parts = tuple  # (y, m, d, H, M, S), each int or None


def _num(tok: str | None) -> int | None:
    if tok is None or tok == "-" or tok == "":
        return None
    return int(float(tok)) if "." in tok else int(tok)


def _parse(dtc: Any) -> _Parts | None:
    """Split ISO 8601 (partial) text into components; ``None`` if not valid text.

    An empty/missing value parses to all components missing.
    """
    if dtc is None or (isinstance(dtc, float) and np.isnan(dtc)) or dtc is pd.NA:
        return (None,) * 6
    s = str(dtc).strip()
    if s == "":
        return (None,) * 6
    dpart, sep, tpart = s.partition("T")
    md = _DATE_RE.match(dpart)
    mt = _TIME_RE.match(tpart) if sep else None
    if md is None or (sep and mt is None):
        return None
    y, m, d = (_num(md.group(k)) for k in ("y", "m", "d"))
    if mt is not None:
        H, M, S = (_num(mt.group(k)) for k in ("H", "M", "S"))
    else:
        H = M = S = None
    if (m is not None and not 1 <= m <= 12) or (d is not None and not 1 <= d <= 31):
        return None
    if (H is not None and H > 23) or (M is not None and M > 59) or (S is not None and S > 59):
        return None
    if y is not None and m is not None and d is not None:
        if d > calendar.monthrange(max(y, 1), m)[1]:
            return None
    return (y, m, d, H, M, S)


def _last_day(y: int, m: int) -> int:
    # year 0 (first-imputed year) and 9999 are placeholders; year 0 is a leap year in ISO
    return calendar.monthrange(y if y >= 1 else 2000, m)[1]


# ------------------------------------------------------------------- argument checks

def _check_date_imputation(date_imputation: str, highest: str) -> str:
    di = str(date_imputation).lower() if str(date_imputation).lower() in (
        "first", "mid", "last") else str(date_imputation)
    if di in ("first", "mid", "last"):
        if highest == "Y" and di == "mid":
            raise ValueError('highest_imputation="Y" requires date_imputation "first" or "last"')
        return di
    if re.fullmatch(r"\d{2}-\d{2}", di):
        mm, dd = int(di[:2]), int(di[3:])
        if not (1 <= mm <= 12 and 1 <= dd <= calendar.monthrange(2000, mm)[1]):
            raise ValueError(f"invalid date_imputation {date_imputation!r}")
        if highest == "Y":
            raise ValueError('highest_imputation="Y" requires date_imputation "first" or "last"')
        return di
    if re.fullmatch(r"\d{2}", di):
        if not 1 <= int(di) <= 31:
            raise ValueError(f"invalid date_imputation {date_imputation!r}")
        if highest in ("M", "Y"):
            raise ValueError('date_imputation "<dd>" is only allowed with highest_imputation "D"')
        return di
    raise ValueError(
        f"date_imputation must be 'first', 'mid', 'last', 'MM-DD' or 'DD', got {date_imputation!r}"
    )


def _check_time_imputation(time_imputation: str) -> tuple[int, int, int]:
    ti = str(time_imputation).lower()
    if ti == "first":
        return (0, 0, 0)
    if ti == "last":
        return (23, 59, 59)
    m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", str(time_imputation))
    if m is None:
        raise ValueError(
            f"time_imputation must be 'first', 'last' or 'HH:MM:SS', got {time_imputation!r}"
        )
    h, mi, s = (int(x) for x in m.groups())
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"invalid time_imputation {time_imputation!r}")
    return (h, mi, s)


# ------------------------------------------------------------------------ imputation

def _impute_date(p: _Parts, di: str, preserve: bool) -> tuple[int, int, int]:
    """Impute year/month/day of parsed parts (the level check is done by the caller)."""
    y, m, d = p[0], p[1], p[2]
    last = di == "last"
    if y is None:
        y = 9999 if last else 0
    month_missing = m is None
    if month_missing:
        if di == "first":
            m = 1
        elif di == "mid":
            m = 6
        elif last:
            m = 12
        else:  # MM-DD
            m = int(di[:2])
    if d is None or (month_missing and not preserve):
        if di == "first":
            d = 1
        elif di == "mid":
            d = 30 if month_missing else 15
        elif last:
            d = _last_day(y, m)
        elif len(di) == 5:
            d = int(di[3:])
        else:
            d = int(di)
    if d > _last_day(y, m):
        raise ValueError(
            f"imputation rules produce an invalid date {y:04d}-{m:02d}-{d:02d}; "
            "adjust date_imputation"
        )
    return (y, m, d)


def _date_text(ymd: tuple[int, int, int]) -> str:
    return f"{ymd[0]:04d}-{ymd[1]:02d}-{ymd[2]:02d}"


def _restrict(value: str, lower: str, upper: str, mins: Sequence[str], maxs: Sequence[str]) -> str:
    """admiral's restriction: apply each bound lying within [lower, upper]."""
    for b in mins:
        if b and lower <= b <= upper:
            value = max(value, b)
    for b in maxs:
        if b and lower <= b <= upper:
            value = min(value, b)
    return value


def _placeholder_year(value: str) -> bool:
    return value.startswith("0000") or value.startswith("9999")


def _impute_dt_one(dtc: Any, highest: str, di: str, preserve: bool,
                   mins: Sequence[str], maxs: Sequence[str]) -> str:
    p = _parse(dtc)
    if p is None or all(x is None for x in p):
        # admiral: a completely missing dtc can still be imputed with "Y" + bounds
        if p is None or highest != "Y":
            return ""
    lvl = _DT_LEVELS[highest]
    for comp_level, val in zip((3, 2, 1), p[:3]):
        if val is None and comp_level > lvl:
            return ""
    value = _date_text(_impute_date(p, di, preserve))
    if any(mins) or any(maxs):
        lower = _date_text(_impute_date(p, "first", False))
        upper = _date_text(_impute_date(p, "last", False))
        value = _restrict(value, lower, upper, mins, maxs)
    return "" if _placeholder_year(value) else value


def _impute_dtm_one(dtc: Any, highest: str, di: str, ti: tuple[int, int, int], preserve: bool,
                    mins: Sequence[str], maxs: Sequence[str]) -> str:
    p = _parse(dtc)
    if p is None or all(x is None for x in p):
        if p is None or highest != "Y":
            return ""
    lvl = _DTM_LEVELS[highest]
    for comp_level, val in zip((6, 5, 4, 3, 2, 1), p):
        if val is None and comp_level > lvl:
            return ""

    def build(dimp: str, tim: tuple[int, int, int], pres: bool) -> str:
        ymd = _impute_date(p, dimp, pres)
        hms = tuple(t if v is None else v for v, t in zip(p[3:], tim))
        return f"{_date_text(ymd)}T{hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}"

    value = build(di, ti, preserve)
    if any(mins) or any(maxs):
        lower = build("first", (0, 0, 0), False)
        upper = build("last", (23, 59, 59), False)
        value = _restrict(value, lower, upper, mins, maxs)
    return "" if _placeholder_year(value) else value


# ---------------------------------------------------------------- bounds & mapping

def _as_series(x: Any, index: pd.Index) -> pd.Series:
    if not pd.api.types.is_list_like(x):
        return pd.Series([x] * len(index), index=index, dtype=object)
    if len(x) != len(index):
        raise ValueError("Length of min_dates/max_dates does not match length of dates to be imputed.")
    if isinstance(x, pd.Series):
        if x.index.equals(index):
            return x
        # align by label when the labels match, else by position
        if x.index.is_unique and set(x.index) == set(index):
            return x.reindex(index)
        return pd.Series(x.to_numpy(), index=index)
    return pd.Series(list(x), index=index, dtype=object)


def _bound_text(x: Any, with_time: bool, is_max: bool) -> str:
    """One bound value as ISO text ('' if missing).

    Date-only values (``datetime.date`` or ``'YYYY-MM-DD'`` text) get the time
    00:00:00 (minimum) or 23:59:59 (maximum) when compared with datetimes.
    """
    if x is None or x is pd.NaT or x is pd.NA or (isinstance(x, float) and np.isnan(x)):
        return ""
    date_only = False
    if isinstance(x, str):
        s = x.strip()
        if s == "":
            return ""
        date_only = len(s) == 10
        ts = pd.Timestamp(s)
    elif isinstance(x, date) and not isinstance(x, datetime):
        date_only = True
        ts = pd.Timestamp(x)
    else:
        ts = pd.Timestamp(x)
    if ts is pd.NaT:
        return ""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if not with_time:
        return ts.strftime("%Y-%m-%d")
    if date_only:
        return ts.strftime("%Y-%m-%d") + ("T23:59:59" if is_max else "T00:00:00")
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def _bounds(bounds: Sequence[Any] | None, index: pd.Index, with_time: bool, is_max: bool) -> list[list[str]]:
    if bounds is None:
        return []
    if isinstance(bounds, pd.Series) or not pd.api.types.is_list_like(bounds):
        bounds = [bounds]
    out = []
    for b in bounds:
        s = _as_series(b, index)
        uniq = {v: None for v in s.tolist()}
        conv = {v: _bound_text(v, with_time, is_max) for v in uniq}
        out.append([conv[v] for v in s.tolist()])
    return out


def _map_distinct(dtc: pd.Series, mins: list[list[str]], maxs: list[list[str]],
                  fn: Callable[[Any, tuple[str, ...], tuple[str, ...]], str]) -> pd.Series:
    """Apply ``fn`` once per distinct (dtc, bounds...) combination and map back."""
    nmin = len(mins)
    vals = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v
            for v in dtc.tolist()]
    keys = list(zip(vals, *mins, *maxs)) if (mins or maxs) else [(v,) for v in vals]
    cache: dict[tuple, str] = {}
    for k in keys:
        if k not in cache:
            cache[k] = fn(k[0], k[1:1 + nmin], k[1 + nmin:])
    return pd.Series([cache[k] for k in keys], index=dtc.index, dtype=object)


def _check_highest(highest: str, allowed: dict[str, int]) -> str:
    if highest not in allowed:
        raise ValueError(f"highest_imputation must be one of {list(allowed)}, got {highest!r}")
    return highest


# ---------------------------------------------------------------------- public API

def impute_dtc_dt(
    dtc: pd.Series,
    highest_imputation: str = "n",
    date_imputation: str = "first",
    min_dates: Sequence[Any] | None = None,
    max_dates: Sequence[Any] | None = None,
    preserve: bool = False,
) -> pd.Series:
    """Impute the partial date portion of a ``--DTC`` variable (admiral ``impute_dtc_dt``).

    Args:
        dtc: The ``--DTC`` values to impute (Series of text).  ISO 8601
            ``yyyy-mm-dd`` or ``yyyy-mm-ddThh:mm:ss``; trailing components may be
            omitted and ``-`` is a valid "missing" value for any component
            (``"2019---20"``).  Any time part is ignored.  Invalid text gives ``""``.
        highest_imputation: Highest component that may be imputed: ``"Y"`` (year),
            ``"M"`` (month), ``"D"`` (day) or ``"n"`` (none: only complete dates are
            returned).  All components up to this level are imputed; if a component
            above it is missing the result is ``""`` (e.g. ``"2020"`` with ``"D"``).
            ``"Y"`` requires ``date_imputation`` ``"first"``/``"last"`` and
            ``min_dates``/``max_dates`` respectively (else ``ValueError``); a missing
            year is imputed only from a bound, otherwise the result is ``""``.
        date_imputation: Value for missing day/month: ``"first"``/``"last"``
            (first/last day or month; ``"last"`` gives the last day of the month,
            leap years included), ``"mid"`` (``"06-30"`` if month and day are
            missing, day ``15`` if only the day is missing), ``"MM-DD"`` (e.g.
            ``"06-15"``; not with ``"Y"``) or ``"DD"`` (only with
            ``highest_imputation="D"``).  An imputation giving an impossible date
            (``"2019-02"`` with ``"02-31"``) raises ``ValueError``, as in admiral.
        min_dates: List of minimum dates (each a Series aligned with ``dtc``, an
            array of the same length, or a scalar).  The imputed date is not before
            any of them — but only a bound lying within the range of dates the
            partial value could stand for is considered (so known components never
            change): ``"2021-10"`` with bound 2021-10-13 and ``"first"`` gives
            ``"2021-10-13"``; a bound of 2021-11-02 is ignored.  Missing bounds are
            ignored.
        max_dates: List of maximum dates, same form and range rule as
            ``min_dates``; the imputed date is not after any of them.
        preserve: If True, a known day is kept when the month is missing
            (``"2019---07"`` with ``"mid"`` gives ``"2019-06-07"``); by default
            (admiral's default) the day is discarded and month and day are imputed
            together (``"2019---07"`` with ``"first"`` gives ``"2019-01-01"``).

    Returns:
        Series of ``"YYYY-MM-DD"`` text, ``""`` where no date can be derived.
    """
    highest = _check_highest(highest_imputation, _DT_LEVELS)
    di = _check_date_imputation(date_imputation, highest)
    if highest == "Y" and not ((di == "first" and min_dates) or (di == "last" and max_dates)):
        raise ValueError(
            'highest_imputation="Y" requires date_imputation="first" with min_dates '
            'or date_imputation="last" with max_dates'
        )
    dtc = pd.Series(dtc) if not isinstance(dtc, pd.Series) else dtc
    mins = _bounds(min_dates, dtc.index, False, False)
    maxs = _bounds(max_dates, dtc.index, False, True)
    return _map_distinct(
        dtc, mins, maxs, lambda v, lo, hi: _impute_dt_one(v, highest, di, preserve, lo, hi)
    )


def impute_dtc_dtm(
    dtc: pd.Series,
    highest_imputation: str = "h",
    date_imputation: str = "first",
    time_imputation: str = "first",
    min_dates: Sequence[Any] | None = None,
    max_dates: Sequence[Any] | None = None,
    preserve: bool = False,
) -> pd.Series:
    """Impute the partial date/time portion of a ``--DTC`` variable (admiral ``impute_dtc_dtm``).

    Args:
        dtc: The ``--DTC`` values to impute (Series of text), ISO 8601 with
            optional omitted trailing components and ``-`` for missing components.
            Fractional seconds are truncated.  Invalid text gives ``""``.
        highest_imputation: Highest component that may be imputed: ``"Y"``,
            ``"M"``, ``"D"`` (date components), ``"h"``, ``"m"``, ``"s"`` (hour,
            minute, second) or ``"n"`` (none).  If a component above this level is
            missing the result is ``""``: with the default ``"h"`` a date-only value
            gets its time imputed but ``"2019-07"`` gives ``""``.  ``"Y"`` has the
            same requirements as in :func:`impute_dtc_dt`.
        date_imputation: Value for missing day/month, as in :func:`impute_dtc_dt`
            (``"first"``, ``"mid"``, ``"last"``, ``"MM-DD"``, ``"DD"``).
        time_imputation: Value for missing hour/minute/second: ``"first"``
            (00:00:00), ``"last"`` (23:59:59) or ``"HH:MM:SS"``; each missing
            component takes its value from the target, known components are kept.
        min_dates: List of minimum dates/datetimes (Series, arrays or scalars); the
            imputed datetime is not before any bound lying within the range of
            datetimes the partial value could stand for.  Date-only bounds
            (``datetime.date`` or ``"YYYY-MM-DD"`` text) are taken at 00:00:00;
            ``datetime64`` values are taken as datetimes.
        max_dates: List of maximum dates/datetimes, as ``min_dates``; date-only
            bounds are taken at 23:59:59.
        preserve: Keep a known day when the month is missing (see
            :func:`impute_dtc_dt`).

    Returns:
        Series of ``"YYYY-MM-DDThh:mm:ss"`` text, ``""`` where none can be derived.
    """
    highest = _check_highest(highest_imputation, _DTM_LEVELS)
    di = _check_date_imputation(date_imputation, {"h": "D", "m": "D", "s": "D", "n": "D"}.get(highest, highest))
    ti = _check_time_imputation(time_imputation)
    if highest == "Y" and not ((di == "first" and min_dates) or (di == "last" and max_dates)):
        raise ValueError(
            'highest_imputation="Y" requires date_imputation="first" with min_dates '
            'or date_imputation="last" with max_dates'
        )
    dtc = pd.Series(dtc) if not isinstance(dtc, pd.Series) else dtc
    mins = _bounds(min_dates, dtc.index, True, False)
    maxs = _bounds(max_dates, dtc.index, True, True)
    return _map_distinct(
        dtc, mins, maxs, lambda v, lo, hi: _impute_dtm_one(v, highest, di, ti, preserve, lo, hi)
    )


def _as_text_or_na(values: pd.Series) -> list[Any]:
    """Imputed values (text or datetimes) as a list with ``None`` for missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return [None if pd.isna(v) else v for v in values.tolist()]
    out = []
    for v in values.tolist():
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, str):
            out.append(None if v.strip() == "" else pd.Timestamp(v))
        else:
            out.append(pd.Timestamp(v))
    return out


def compute_dtf(dtc: pd.Series, imputed_dt: pd.Series) -> pd.Series:
    """Date imputation flag ``*DTF`` (admiral ``compute_dtf``).

    Args:
        dtc: The ``--DTC`` text (partial or complete, date or datetime).
        imputed_dt: The derived/imputed date aligned with ``dtc``: ISO text
            (``""`` = missing) or datetime values.

    Returns:
        Series of ``"Y"`` (year imputed), ``"M"`` (month imputed, e.g. ``"2019"``,
        ``"2019---20"``, ``"2022----"``), ``"D"`` (day imputed) or ``""`` when the
        date is complete, the imputed date is missing or ``dtc`` is invalid.  The
        flag is the highest imputed level, read from which components of ``dtc``
        are missing.
    """
    dtc = pd.Series(dtc) if not isinstance(dtc, pd.Series) else dtc
    imp = _as_text_or_na(pd.Series(imputed_dt).reset_index(drop=True))
    cache: dict[Any, str] = {}

    def flag(v: Any) -> str:
        if v not in cache:
            p = _parse(v)
            cache[v] = ("" if p is None else "Y" if p[0] is None else "M" if p[1] is None
                        else "D" if p[2] is None else "")
        return cache[v]

    return pd.Series(
        ["" if i is None else flag(v) for v, i in zip(dtc.tolist(), imp)],
        index=dtc.index, dtype=object,
    )


def compute_tmf(dtc: pd.Series, imputed_dtm: pd.Series, ignore_seconds_flag: bool = True) -> pd.Series:
    """Time imputation flag ``*TMF`` (admiral ``compute_tmf``).

    Args:
        dtc: The ``--DTC`` text (partial or complete).
        imputed_dtm: The derived/imputed datetime aligned with ``dtc``: ISO text
            (``""`` = missing) or datetime values.
        ignore_seconds_flag: admiral's default (True since admiral 1.4.0): the ADaM
            IG does not require ``TMF="S"`` when only hours and minutes are
            collected, so a flag that would be ``"S"`` is returned as ``""``.  Set
            False to flag imputed seconds with ``"S"``.

    Returns:
        Series of ``"H"``, ``"M"``, ``"S"`` or ``""``.  Going from hour to second,
        the flag is the first component that is missing in ``dtc`` or differs from
        the datetime (a value changed by ``min_dates``/``max_dates``), e.g.
        ``"2019-07-18"`` → ``"H"``, ``"2019-07-18T15"`` → ``"M"``,
        ``"2022-05--T23:00"`` with 2022-05-15T23:59 → ``"M"``.  ``""`` if the
        datetime is missing or ``dtc`` invalid.
    """
    dtc = pd.Series(dtc) if not isinstance(dtc, pd.Series) else dtc
    imp = _as_text_or_na(pd.Series(imputed_dtm).reset_index(drop=True))
    out = []
    for v, ts in zip(dtc.tolist(), imp):
        if ts is None:
            out.append("")
            continue
        p = _parse(v)
        if p is None:
            out.append("")
            continue
        f = ""
        for code, val, actual in zip("HMS", p[3:], (ts.hour, ts.minute, ts.second)):
            if val is None or val != actual:
                f = code
                break
        if f == "S" and ignore_seconds_flag:
            f = ""
        out.append(f)
    return pd.Series(out, index=dtc.index, dtype=object)


def _resolve_bounds(df: pd.DataFrame, bounds: Sequence[Any] | None) -> list[Any] | None:
    """Bounds named by a variable are its values. A date variable (``*DT`` by the ADaM naming
    rule, as admiral's R ``Date`` class) is given as ``YYYY-MM-DD`` text, so that a datetime is
    bounded at 23:59:59 of a maximum date (00:00:00 of a minimum), not at the midnight that
    pandas stores: ``max_dates: [DTHDT]`` keeps an AE ending on the day of death at 23:59:59."""
    if bounds is None:
        return None
    if isinstance(bounds, (str, pd.Series)):
        bounds = [bounds]
    out = []
    for b in bounds:
        if isinstance(b, str) and b in df.columns:
            col = df[b]
            if b.endswith("DT") and pd.api.types.is_datetime64_any_dtype(col):
                col = col.dt.strftime("%Y-%m-%d").astype(object).where(col.notna(), None)
            b = col
        out.append(b)
    return out


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    s = text.where(text != "", None)
    return pd.to_datetime(s, format=fmt, errors="coerce").astype("datetime64[ns]")


def derive_vars_dt(
    df: pd.DataFrame,
    new_vars_prefix: str,
    dtc: str,
    highest_imputation: str = "n",
    date_imputation: str = "first",
    flag_imputation: str = "auto",
    min_dates: Sequence[Any] | None = None,
    max_dates: Sequence[Any] | None = None,
    preserve: bool = False,
) -> pd.DataFrame:
    """Add ``<prefix>DT`` (and ``<prefix>DTF``) from a ``--DTC`` column (admiral ``derive_vars_dt``).

    Args:
        df: Input dataset; must contain the ``dtc`` column.  Not modified.
        new_vars_prefix: Prefix of the new variables, e.g. ``"AST"`` gives
            ``ASTDT`` and ``ASTDTF``.
        dtc: Name of the ``--DTC`` column.
        highest_imputation: As in :func:`impute_dtc_dt` (``"Y"``, ``"M"``,
            ``"D"``, ``"n"``).
        date_imputation: As in :func:`impute_dtc_dt`.
        flag_imputation: ``"auto"`` (add ``<prefix>DTF`` unless
            ``highest_imputation="n"``), ``"date"`` (always add it) or ``"none"``.
        min_dates: List of minimum dates: column names of ``df`` or Series/arrays
            aligned with ``df`` (see :func:`impute_dtc_dt`).
        max_dates: List of maximum dates, as ``min_dates``.
        preserve: As in :func:`impute_dtc_dt`.

    Returns:
        A copy of ``df`` with ``<prefix>DT`` (``datetime64[ns]``, NaT if no date)
        and, per ``flag_imputation``, ``<prefix>DTF`` (text, ``""`` = not imputed).
        Existing columns of those names are overwritten.
    """
    if flag_imputation not in ("auto", "date", "none"):
        raise ValueError("flag_imputation must be 'auto', 'date' or 'none'")
    if dtc not in df.columns:
        raise KeyError(f"column {dtc!r} not in dataset")
    out = df.copy()
    imputed = impute_dtc_dt(
        out[dtc], highest_imputation=highest_imputation, date_imputation=date_imputation,
        min_dates=_resolve_bounds(out, min_dates), max_dates=_resolve_bounds(out, max_dates),
        preserve=preserve,
    )
    out[f"{new_vars_prefix}DT"] = _to_datetime(imputed, "%Y-%m-%d")
    if flag_imputation == "date" or (flag_imputation == "auto" and highest_imputation != "n"):
        out[f"{new_vars_prefix}DTF"] = compute_dtf(out[dtc], imputed)
    return out


def derive_vars_dtm(
    df: pd.DataFrame,
    new_vars_prefix: str,
    dtc: str,
    highest_imputation: str = "h",
    date_imputation: str = "first",
    time_imputation: str = "first",
    flag_imputation: str = "auto",
    min_dates: Sequence[Any] | None = None,
    max_dates: Sequence[Any] | None = None,
    preserve: bool = False,
    ignore_seconds_flag: bool = True,
) -> pd.DataFrame:
    """Add ``<prefix>DTM`` (and ``<prefix>DTF``/``<prefix>TMF``) from a ``--DTC`` column.

    Mirrors admiral ``derive_vars_dtm``.

    Args:
        df: Input dataset; must contain the ``dtc`` column.  Not modified.
        new_vars_prefix: Prefix of the new variables, e.g. ``"AST"`` gives
            ``ASTDTM``, ``ASTDTF``, ``ASTTMF``.
        dtc: Name of the ``--DTC`` column.
        highest_imputation: As in :func:`impute_dtc_dtm` (``"Y"``, ``"M"``,
            ``"D"``, ``"h"``, ``"m"``, ``"s"``, ``"n"``).
        date_imputation: As in :func:`impute_dtc_dtm`.
        time_imputation: As in :func:`impute_dtc_dtm`.
        flag_imputation: ``"auto"`` (``DTF`` if ``highest_imputation`` is ``"Y"``,
            ``"M"`` or ``"D"``; ``TMF`` unless it is ``"n"``), ``"both"``,
            ``"date"``, ``"time"`` or ``"none"``.
        min_dates: List of minimum dates/datetimes: column names of ``df`` or
            Series/arrays aligned with ``df`` (see :func:`impute_dtc_dtm`).
        max_dates: List of maximum dates/datetimes, as ``min_dates``.
        preserve: As in :func:`impute_dtc_dt`.
        ignore_seconds_flag: Passed to :func:`compute_tmf` (default True: no
            ``"S"`` flag).

    Returns:
        A copy of ``df`` with ``<prefix>DTM`` (``datetime64[ns]``) and the flags
        requested (text, ``""`` = not imputed).  Existing columns are overwritten.
    """
    if flag_imputation not in ("auto", "both", "date", "time", "none"):
        raise ValueError("flag_imputation must be 'auto', 'both', 'date', 'time' or 'none'")
    if dtc not in df.columns:
        raise KeyError(f"column {dtc!r} not in dataset")
    out = df.copy()
    imputed = impute_dtc_dtm(
        out[dtc], highest_imputation=highest_imputation, date_imputation=date_imputation,
        time_imputation=time_imputation, min_dates=_resolve_bounds(out, min_dates),
        max_dates=_resolve_bounds(out, max_dates), preserve=preserve,
    )
    out[f"{new_vars_prefix}DTM"] = _to_datetime(imputed, "%Y-%m-%dT%H:%M:%S")
    if flag_imputation == "auto":
        want_dtf = highest_imputation in ("Y", "M", "D")
        want_tmf = highest_imputation != "n"
    else:
        want_dtf = flag_imputation in ("both", "date")
        want_tmf = flag_imputation in ("both", "time")
    if want_dtf:
        out[f"{new_vars_prefix}DTF"] = compute_dtf(out[dtc], imputed)
    if want_tmf:
        out[f"{new_vars_prefix}TMF"] = compute_tmf(out[dtc], imputed, ignore_seconds_flag)
    return out


def _to_day(x: pd.Series) -> pd.Series:
    """Dates/datetimes or ISO text as datetime64 floored to the day (NaT if missing)."""
    if not pd.api.types.is_datetime64_any_dtype(x):
        x = pd.to_datetime(x, errors="coerce", format="ISO8601")
    if getattr(x.dt, "tz", None) is not None:
        x = x.dt.tz_localize(None)
    return x.dt.normalize()


def study_day(date: pd.Series, ref_date: pd.Series) -> pd.Series:
    """Analysis relative day (``--DY``/``ADY``): no day 0.

    Args:
        date: The event dates (datetime64 values, or ISO date text; a time part is
            ignored).
        ref_date: The reference dates (e.g. ``TRTSDT``), aligned with ``date`` or
            a scalar.

    Returns:
        ``Int64`` Series: ``date - ref + 1`` if ``date >= ref`` else
        ``date - ref``; ``<NA>`` where either date is missing.
    """
    d = _to_day(date if isinstance(date, pd.Series) else pd.Series(date))
    if pd.api.types.is_list_like(ref_date):
        r = _to_day(ref_date if isinstance(ref_date, pd.Series)
                    else pd.Series(list(ref_date), index=d.index))
    else:
        r = _to_day(pd.Series([ref_date] * len(d), index=d.index))
    diff = (d - r).dt.days.astype("Int64")
    return diff.where(diff < 0, diff + 1).astype("Int64")
