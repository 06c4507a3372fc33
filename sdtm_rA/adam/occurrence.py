"""ADAE (occurrence) derivations, admiral style.

Functions take a DataFrame and return a new one with the derived variables.
Semantics follow admiral's ``derive_var_trtemfl``, ``derive_var_extreme_flag``
(used with ``restrict_derivation`` for the AOCC*FL flags in admiral's ADAE
template) and ``derive_vars_duration``; differences are stated per function.
Flags are ``'Y'`` or missing (``None``), as in admiral.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .subject import _mask, order_columns, sort_warning_on_ties

__all__ = [
    "derive_trtemfl",
    "derive_extreme_flag",
    "derive_aoccfl",
    "derive_aoccpfl",
    "derive_aoccsfl",
    "derive_duration",
]


def _dates(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        raise KeyError(f"column {col!r} not in dataset")
    s = df[col]
    if not pd.api.types.is_datetime64_any_dtype(s):
        s = pd.to_datetime(s.where(s.astype("string").str.strip() != "", None),
                           errors="coerce", format="ISO8601")
    return s


def _flag(mask: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(np.where(mask, "Y", None), index=index, dtype=object)


def derive_trtemfl(
    adae: pd.DataFrame,
    start: str = "ASTDT",
    end: str = "AENDT",
    trt_start: str = "TRTSDT",
    trt_end: str | None = "TRTEDT",
    end_window: int | None = 0,
    ignore_missing_start: bool = False,
    new: str = "TRTEMFL",
) -> pd.DataFrame:
    """Treatment-emergent flag (admiral ``derive_var_trtemfl`` without intensity/worsening).

    Rules, evaluated in this order (first match wins), as admiral's ``case_when``:

    1. ``trt_start`` missing → missing (subject not treated);
    2. ``end`` < ``trt_start`` → missing (event ended before treatment; this
       also applies when ``start`` is missing);
    3. ``start`` missing → ``'Y'`` (admiral) or missing if ``ignore_missing_start``;
    4. ``start`` >= ``trt_start`` and (``trt_end`` missing or
       date(``start``) <= date(``trt_end``) + ``end_window`` days) → ``'Y'``;
    5. otherwise missing.

    A missing ``end`` does not exclude the event.  Impute partial starts
    beforehand (e.g. ``derive_vars_dt(..., highest_imputation="M",
    min_dates=["TRTSDT"])``, so ``"2021-10"`` with TRTSDT 2021-10-13 becomes
    2021-10-13 and counts as emergent).

    Args:
        adae: Dataset with the four date columns (datetime64 or ISO text).
        start: Event start date/datetime column (``ASTDT`` or ``ASTDTM``).
        end: Event end date/datetime column.
        trt_start: Treatment start column; compared with ``start`` as is (use
            dates with dates, datetimes with datetimes).
        trt_end: Treatment end column, or ``None`` for no upper limit.
        end_window: Days after ``trt_end`` an event may start and still be
            emergent (non-negative int; default 0 = up to TRTEDT inclusive).
            ``None`` means no upper limit (admiral's default ``end_window=NULL``).
            Time parts are ignored for this check (admiral's
            ``ignore_time_for_trt_end=TRUE``).
        ignore_missing_start: If True, events with a missing ``start`` are not
            flagged (rule 3 gives missing).
        new: Name of the flag variable.

    Returns:
        Copy of ``adae`` with ``new`` = ``'Y'`` or ``None``.
    """
    if end_window is not None and (int(end_window) != end_window or end_window < 0):
        raise ValueError("end_window must be a non-negative integer or None")
    out = adae.copy()
    st, en, ts = _dates(out, start), _dates(out, end), _dates(out, trt_start)
    if trt_end is not None and end_window is not None:
        te = _dates(out, trt_end)
        end_ok = te.isna() | (st.dt.normalize() <= te.dt.normalize() + pd.Timedelta(days=int(end_window)))
    else:
        end_ok = pd.Series(True, index=out.index)
    no_trt = ts.isna().to_numpy()
    ended_before = (en < ts).fillna(False).to_numpy(dtype=bool)
    miss_start = st.isna().to_numpy()
    new_ae = ((st >= ts) & end_ok).fillna(False).to_numpy(dtype=bool)
    flag = np.select(
        [no_trt, ended_before, miss_start, new_ae],
        [False, False, not ignore_missing_start, True],
        default=False,
    ).astype(bool)
    out[new] = _flag(flag, out.index)
    return out


def derive_extreme_flag(
    df: pd.DataFrame,
    by: Sequence[str],
    order: Sequence[str],
    new: str,
    mode: str = "first",
    filter: Any = None,
) -> pd.DataFrame:
    """Flag the first/last record per group (admiral ``derive_var_extreme_flag`` with
    ``flag_all=FALSE``, wrapped in ``restrict_derivation`` when ``filter`` is given).

    Args:
        df: Input dataset.
        by: Grouping columns.
        order: Sort columns, ascending, or ``{"desc": col}`` descending (admiral ``desc()``);
            missing values last either way, as dplyr ``arrange``.
            Records tied on ``by`` + ``order`` give a ``UserWarning`` (admiral's
            ``check_type="warning"``); the tie is broken by input order.
        new: Name of the flag variable.
        mode: ``"first"`` or ``"last"`` record of each group.
        filter: Only these records are considered (others get missing): a
            boolean Series/array aligned with ``df``, a boolean column name, or
            ``None`` for all records.  Missing counts as False.

    Returns:
        Copy of ``df`` with ``new`` = ``'Y'`` on the selected record of each group,
        ``None`` elsewhere (admiral's ``false_value=NA``).
    """
    if mode not in ("first", "last"):
        raise ValueError(f"mode must be 'first' or 'last', got {mode!r}")
    by = list(by)
    order, ascending = order_columns(order)
    miss = [c for c in by + order if c not in df.columns]
    if miss:
        raise KeyError(f"columns not in dataset: {miss}")
    out = df.copy()
    keep = np.ones(len(out), bool) if filter is None else _mask(out, filter, "filter").to_numpy()
    sub = out.loc[keep, by + order].reset_index(drop=True)
    sub.insert(0, "__pos__", np.flatnonzero(keep))
    sub = sort_warning_on_ties(sub, by + order, [True] * len(by) + ascending)
    flag = np.zeros(len(out), bool)
    flag[sub.loc[~sub.duplicated(by, keep=mode), "__pos__"].to_numpy()] = True
    out[new] = _flag(flag, out.index)
    return out


def _default_filter(adae: pd.DataFrame, filter: Any) -> Any:
    if isinstance(filter, str) and filter in adae.columns and not pd.api.types.is_bool_dtype(adae[filter]):
        return adae[filter].eq("Y").fillna(False)
    return filter


def derive_aoccfl(
    adae: pd.DataFrame,
    by: Sequence[str] = ("USUBJID",),
    order: Sequence[str] = ("ASTDT", "AESEQ"),
    new: str = "AOCCFL",
    filter: Any = "TRTEMFL",
) -> pd.DataFrame:
    """First-occurrence flag (admiral ADAE template: ``restrict_derivation(
    derive_var_extreme_flag, filter = TRTEMFL == "Y")``).

    Args:
        adae: Input dataset.
        by: Grouping: ``("USUBJID",)`` for AOCCFL (first event of the subject).
        order: Sort order; the earliest record is flagged.  Ties on the dates are
            broken by ``AESEQ``; missing dates sort last.
        new: Name of the flag variable.
        filter: Records considered: the name of a ``'Y'``-flag column (default
            ``"TRTEMFL"``: only treatment-emergent records), a boolean column
            name, a boolean Series aligned with ``adae``, or ``None`` for all.

    Returns:
        Copy of ``adae`` with ``new`` = ``'Y'``/``None``.
    """
    return derive_extreme_flag(adae, by, order, new, "first", _default_filter(adae, filter))


def derive_aoccpfl(adae: pd.DataFrame,
                   by: Sequence[str] = ("USUBJID", "AEBODSYS", "AEDECOD"),
                   order: Sequence[str] = ("ASTDT", "AESEQ"),
                   new: str = "AOCCPFL", filter: Any = "TRTEMFL") -> pd.DataFrame:
    """First occurrence per preferred term: :func:`derive_aoccfl` grouped by
    ``USUBJID, AEBODSYS, AEDECOD`` (admiral's template; AEDECOD is nested in
    AEBODSYS, so this equals grouping by ``USUBJID, AEDECOD``).  Arguments as
    :func:`derive_aoccfl`."""
    return derive_aoccfl(adae, by, order, new, filter)


def derive_aoccsfl(adae: pd.DataFrame,
                   by: Sequence[str] = ("USUBJID", "AEBODSYS"),
                   order: Sequence[str] = ("ASTDT", "AESEQ"),
                   new: str = "AOCCSFL", filter: Any = "TRTEMFL") -> pd.DataFrame:
    """First occurrence per system organ class: :func:`derive_aoccfl` grouped by
    ``USUBJID, AEBODSYS``.  Arguments as :func:`derive_aoccfl`."""
    return derive_aoccfl(adae, by, order, new, filter)


_UNIT_DAYS = {"DAYS": 1.0, "WEEKS": 7.0, "YEARS": 365.25}   # admiral compute_duration's factors


def derive_duration(
    adae: pd.DataFrame,
    start: str = "ASTDT",
    end: str = "AENDT",
    new: str = "ADURN",
    unit: str = "DAYS",
    new_unit: str | None = "ADURU",
    add_one: bool = True,
) -> pd.DataFrame:
    """Duration between two dates (admiral ``derive_vars_duration`` with ``in_unit="days"``).

    ``duration = (date(end) - date(start))`` in days (time parts ignored); with
    ``add_one`` (admiral's default) one day is added when the difference is
    >= 0 (a same-day event lasts 1 day; negative durations are not changed);
    the result is then converted to ``unit``.

    Args:
        adae: Dataset with the ``start``/``end`` columns (datetime64 or ISO text).
        start: Start date column.
        end: End date column.
        new: Name of the duration variable.
        unit: Output unit: ``"DAYS"``, ``"WEEKS"`` or ``"YEARS"`` (365.25 days, as admiral) (case-insensitive).
        new_unit: Name of the unit variable (value ``unit`` in upper case), or
            ``None`` to not add it.  Missing where the duration is missing.
        add_one: Add one day to non-negative durations.

    Returns:
        Copy of ``adae`` with ``new`` (``Int64`` for days, float for weeks) and
        ``new_unit``.
    """
    u = str(unit).upper()
    if u not in _UNIT_DAYS:
        raise ValueError(f"unit must be one of {list(_UNIT_DAYS)}, got {unit!r}")
    out = adae.copy()
    d = (_dates(out, end).dt.normalize() - _dates(out, start).dt.normalize()).dt.days.astype("Int64")
    if add_one:
        d = d.where(d < 0, d + 1)
    out[new] = d if u == "DAYS" else d.astype("Float64") / _UNIT_DAYS[u]
    if new_unit is not None:
        out[new_unit] = pd.Series(np.where(d.isna().to_numpy(), None, u), index=out.index, dtype=object)
    return out
