"""BDS (Basic Data Structure) derivations: baseline, change, windows, reference ranges.

One function per derivation, in the style of the R package *admiral*
(``derive_var_extreme_flag``, ``derive_var_base``, ``derive_var_chg``,
``derive_var_pchg``, ``derive_var_analysis_ratio``, ``derive_var_anrind``,
``derive_var_shift``, ``derive_param_computed``).  Every function takes a
pandas DataFrame and returns a *copy* with the new column(s) (or, for
:func:`derive_param_computed`, the new records) added; the input is not changed
and its row order and index are kept.  No function loops over rows.

Conventions
-----------
* Missing character values are written as ``""`` (as in SDTM/XPT); on input both
  ``""`` (after stripping blanks) and ``NaN``/``None``/``pd.NA`` count as missing.
* Missing numeric values are ``NaN``.
* Study days (``ADY``) follow :func:`sdtm_rA.adam.dates.study_day` (no day 0).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sdtm_rA.adam.dates import _to_day

__all__ = [
    "derive_ablfl",
    "derive_base",
    "derive_basec",
    "derive_bnrind",
    "derive_chg",
    "derive_pchg",
    "derive_analysis_ratio",
    "derive_analysis_window",
    "derive_anrind",
    "derive_shift",
    "derive_param_computed",
    "signif",
]


# --------------------------------------------------------------------------- helpers

def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _require(df: pd.DataFrame, cols: Sequence[str], func: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{func}: required column(s) missing: {missing}")


def _text_missing(s: pd.Series) -> pd.Series:
    """True where a character value is missing (NaN/None/NA or blank text)."""
    return s.isna() | (s.astype(object).where(s.notna(), "").astype(str).str.strip() == "")


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _group_lookup(df: pd.DataFrame, keys: list[str], src: pd.DataFrame,
                  value: str) -> np.ndarray:
    """Value of ``src[value]`` for each row of ``df`` matched on ``keys`` (src unique)."""
    idx = pd.MultiIndex.from_frame(src[keys].astype(object))
    s = pd.Series(src[value].to_numpy(), index=idx)
    target = pd.MultiIndex.from_frame(df[keys].astype(object))
    return s.reindex(target).to_numpy()


def signif(x: Any, digits: int = 15) -> np.ndarray:
    """Round to ``digits`` significant digits, like R's ``signif()`` (vectorised).

    Args:
        x: Numbers (array-like or scalar); NaN stays NaN, 0 stays 0.
        digits: Number of significant digits (>= 1).

    Returns:
        float64 ndarray of the rounded values.
    """
    a = np.asarray(x, dtype="float64")
    out = a.copy()
    ok = np.isfinite(a) & (a != 0)
    v = a[ok]
    # decimals to keep so that `digits` significant digits remain
    e = (digits - 1 - np.floor(np.log10(np.abs(v)))).astype("int64")
    e1 = e // 2
    e2 = e - e1  # scale in two steps so 10**e never overflows for tiny/huge values
    out[ok] = np.round(v * 10.0 ** e1 * 10.0 ** e2) / 10.0 ** e1 / 10.0 ** e2
    return out


# ------------------------------------------------------------------------ baseline

def derive_ablfl(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("USUBJID", "PARAMCD"),
    date: str = "ADT",
    ref: str = "TRTSDT",
    value: str = "AVAL",
    value_c: str | None = "AVALC",
    order: Sequence[str] = (),
    new: str = "ABLFL",
) -> pd.DataFrame:
    """Baseline record flag: ``'Y'`` on the last qualifying record per group.

    Mirrors admiral's ``derive_var_extreme_flag(mode = "last")`` restricted (via
    ``restrict_derivation``) to pre-treatment records with a value.

    A record qualifies when ``date`` and ``ref`` are both present, ``date <= ref``
    (compared as calendar days, a time part is ignored) and the analysis value is
    present: ``value`` is non-missing, or (if ``value_c`` is given and exists in
    ``df``) ``value_c`` is non-blank.  Among the qualifying records of a ``by``
    group the records are sorted by ``date`` and then by the ``order`` columns
    (ascending, missing last); the **last** one is flagged.  Records still tied
    on ``date`` and all ``order`` columns are resolved by input order: the one
    appearing *later* in ``df`` is flagged (a stable sort, as dplyr's
    ``arrange()``).  Groups without a qualifying record get no flag.

    Args:
        df: Input BDS dataset.
        by: Grouping columns (one baseline per group), default
            ``("USUBJID", "PARAMCD")``.
        date: Analysis date column (datetime64 or ISO text), default ``"ADT"``.
        ref: Reference date column (datetime64 or ISO text), default ``"TRTSDT"``.
        value: Numeric analysis value column, default ``"AVAL"``.
        value_c: Character analysis value column, default ``"AVALC"``; ignored
            when ``None`` or absent from ``df``.
        order: Extra sort columns applied after ``date`` to break ties; the record
            with the largest values is flagged.
        new: Name of the flag column, default ``"ABLFL"``.

    Returns:
        Copy of ``df`` with ``new`` = ``"Y"`` or ``""``.
    """
    keys = _keys(by)
    _require(df, keys + [date, ref, value] + list(order), "derive_ablfl")
    out = df.copy()
    d, r = _to_day(out[date]), _to_day(out[ref])
    has_val = _num(out[value]).notna()
    if value_c is not None and value_c in out.columns:
        has_val |= ~_text_missing(out[value_c])
    ok = (d.notna() & r.notna() & (d <= r) & has_val).to_numpy()

    cand = out.loc[ok, keys + list(order)].copy()
    cand["__d"] = d[ok]
    cand["__pos"] = np.flatnonzero(ok)
    cand = cand.sort_values(["__d", *order, "__pos"], kind="mergesort",
                            na_position="first")
    last = cand.drop_duplicates(subset=keys, keep="last")["__pos"].to_numpy()
    flag = np.full(len(out), "", dtype=object)
    flag[last] = "Y"
    out[new] = flag
    return out


def derive_base(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("USUBJID", "PARAMCD"),
    source: str = "AVAL",
    new: str = "BASE",
    flag: str = "ABLFL",
) -> pd.DataFrame:
    """Baseline value carried to every record of its group (admiral ``derive_var_base``).

    For each ``by`` group the record with ``flag == "Y"`` is the baseline record;
    ``new`` is set to its ``source`` value on *all* records of the group
    (including the baseline record itself).  Groups without a baseline record get
    a missing value (``NaN`` for numeric sources, ``""`` for character ones).

    Args:
        df: Input BDS dataset.
        by: Grouping columns, default ``("USUBJID", "PARAMCD")``.
        source: Column holding the value to carry, e.g. ``"AVAL"``,
            ``"AVALC"``, ``"ANRIND"``.
        new: Name of the new column, e.g. ``"BASE"``, ``"BASEC"``, ``"BNRIND"``.
        flag: Baseline flag column (``"Y"`` marks the baseline record).

    Returns:
        Copy of ``df`` with ``new`` added.

    Raises:
        ValueError: if a group has more than one baseline record (as admiral).
    """
    keys = _keys(by)
    _require(df, keys + [source, flag], "derive_base")
    out = df.copy()
    is_bl = out[flag].astype(object).where(out[flag].notna(), "").astype(str).str.strip() == "Y"
    bl = out.loc[is_bl, keys + [source]]
    dup = bl.duplicated(subset=keys, keep=False)
    if dup.any():
        raise ValueError(
            f"derive_base: more than one baseline record ({flag}='Y') per group "
            f"{keys}:\n{bl.loc[dup, keys].drop_duplicates().to_string(index=False)}")
    vals = _group_lookup(out, keys, bl, source)
    if pd.api.types.is_numeric_dtype(out[source]):
        out[new] = pd.Series(vals, index=out.index, dtype="float64")
    else:
        s = pd.Series(vals, index=out.index, dtype=object)
        out[new] = s.where(~_text_missing(s), "")
    return out


def derive_basec(df: pd.DataFrame, by: str | Sequence[str] = ("USUBJID", "PARAMCD"),
                 flag: str = "ABLFL") -> pd.DataFrame:
    """``BASEC`` = ``AVALC`` of the baseline record (:func:`derive_base` wrapper).

    Args:
        df: Input BDS dataset with ``AVALC`` and ``flag``.
        by: Grouping columns, default ``("USUBJID", "PARAMCD")``.
        flag: Baseline flag column.

    Returns:
        Copy of ``df`` with ``BASEC`` (``""`` where no baseline).
    """
    return derive_base(df, by=by, source="AVALC", new="BASEC", flag=flag)


def derive_bnrind(df: pd.DataFrame, by: str | Sequence[str] = ("USUBJID", "PARAMCD"),
                  flag: str = "ABLFL") -> pd.DataFrame:
    """``BNRIND`` = ``ANRIND`` of the baseline record (:func:`derive_base` wrapper).

    Args:
        df: Input BDS dataset with ``ANRIND`` and ``flag``.
        by: Grouping columns, default ``("USUBJID", "PARAMCD")``.
        flag: Baseline flag column.

    Returns:
        Copy of ``df`` with ``BNRIND`` (``""`` where no baseline).
    """
    return derive_base(df, by=by, source="ANRIND", new="BNRIND", flag=flag)


# -------------------------------------------------------------- change from baseline

def derive_chg(df: pd.DataFrame, value: str = "AVAL", base: str = "BASE",
               new: str = "CHG") -> pd.DataFrame:
    """Change from baseline ``CHG = AVAL - BASE`` (admiral ``derive_var_chg``).

    Computed on **every** record, the baseline record included (where it is 0),
    exactly as admiral does; restrict to post-baseline records afterwards if a
    study needs that.  Missing ``AVAL`` or ``BASE`` gives ``NaN``.

    Args:
        df: Input dataset.
        value: Analysis value column, default ``"AVAL"``.
        base: Baseline value column, default ``"BASE"``.
        new: Name of the new column, default ``"CHG"``.

    Returns:
        Copy of ``df`` with ``new`` (float64).
    """
    _require(df, [value, base], "derive_chg")
    out = df.copy()
    out[new] = _num(out[value]) - _num(out[base])
    return out


def derive_pchg(df: pd.DataFrame, value: str = "AVAL", base: str = "BASE",
                new: str = "PCHG") -> pd.DataFrame:
    """Percent change from baseline (admiral ``derive_var_pchg``).

    ``PCHG = (AVAL - BASE) / |BASE| * 100``; ``NaN`` when ``BASE`` is 0 or either
    value is missing.  Like admiral the denominator is the *absolute* baseline, so
    a rise from a negative baseline is a positive percentage.

    Args:
        df: Input dataset.
        value: Analysis value column, default ``"AVAL"``.
        base: Baseline value column, default ``"BASE"``.
        new: Name of the new column, default ``"PCHG"``.

    Returns:
        Copy of ``df`` with ``new`` (float64).
    """
    _require(df, [value, base], "derive_pchg")
    out = df.copy()
    a, b = _num(out[value]), _num(out[base])
    out[new] = ((a - b) / b.abs() * 100).where(b != 0)
    return out


def derive_analysis_ratio(df: pd.DataFrame, numer: str = "AVAL", denom: str = "BASE",
                          new: str | None = None) -> pd.DataFrame:
    """Ratio variable (admiral ``derive_var_analysis_ratio``), e.g. ``R2BASE``.

    ``new = numer / denom``; ``NaN`` when ``denom`` is 0 or a value is missing.

    Args:
        df: Input dataset.
        numer: Numerator column, default ``"AVAL"``.
        denom: Denominator column, default ``"BASE"`` (also e.g. ``"ANRLO"``).
        new: Name of the new column; default ``"R2" + denom`` (``R2BASE``).

    Returns:
        Copy of ``df`` with the ratio column (float64).
    """
    _require(df, [numer, denom], "derive_analysis_ratio")
    out = df.copy()
    n, d = _num(out[numer]), _num(out[denom])
    out[new or f"R2{denom}"] = (n / d).where(d != 0)
    return out


# -------------------------------------------------------------------- visit windows

def derive_analysis_window(
    df: pd.DataFrame,
    windows: Sequence[Mapping[str, Any]],
    day: str = "ADY",
    by: str | Sequence[str] = ("USUBJID", "PARAMCD"),
    value: str | None = "AVAL",
    avisit: str = "AVISIT",
    avisitn: str = "AVISITN",
    flag: str = "ANL01FL",
) -> pd.DataFrame:
    """Analysis visits from study-day windows, and one analysed record per window.

    Each window is a mapping ``{"avisit": str, "avisitn": number, "target": day,
    "lo": day, "hi": day}``; a record falls in the window when
    ``lo <= day <= hi`` (both inclusive; ``lo``/``hi`` may be ``None`` for an
    open end).  If windows overlap, the first window in ``windows`` wins.
    Records outside every window (or with missing ``day``) get ``avisit = ""``
    and ``avisitn = NaN``.

    Per ``by`` group and window exactly one record is flagged ``flag = "Y"``: the
    one whose ``day`` is closest to the window's ``target`` (``|day - target|``
    on the study-day values as given); ties go to the **later** day, then to the
    record appearing first in ``df``.  When ``value`` is given, only records with a
    non-missing ``value`` can be flagged.

    Args:
        df: Input BDS dataset.
        windows: List of window mappings (keys ``avisit``, ``avisitn``,
            ``target``, ``lo``, ``hi``).
        day: Study-day column, default ``"ADY"``.
        by: Grouping columns, default ``("USUBJID", "PARAMCD")``.
        value: Column that must be non-missing for a record to be flagged
            (default ``"AVAL"``); ``None`` to flag regardless.
        avisit: Name of the analysis visit column, default ``"AVISIT"``.
        avisitn: Name of the numeric analysis visit column, default ``"AVISITN"``.
        flag: Name of the analysis flag column, default ``"ANL01FL"``.

    Returns:
        Copy of ``df`` with ``avisit``, ``avisitn`` and ``flag``.
    """
    keys = _keys(by)
    _require(df, keys + [day] + ([value] if value else []), "derive_analysis_window")
    for w in windows:
        miss = {"avisit", "avisitn", "target", "lo", "hi"} - set(w)
        if miss:
            raise ValueError(f"derive_analysis_window: window {w!r} lacks {sorted(miss)}")
    out = df.copy()
    dy = _num(out[day]).to_numpy()
    n = len(out)
    win = np.full(n, -1, dtype="int64")
    for i, w in enumerate(windows):  # loop over windows, not rows
        lo = -np.inf if w["lo"] is None else float(w["lo"])
        hi = np.inf if w["hi"] is None else float(w["hi"])
        hit = (win < 0) & ~np.isnan(dy) & (dy >= lo) & (dy <= hi)
        win[hit] = i
    has = win >= 0
    names = np.array([w["avisit"] for w in windows] + [""], dtype=object)
    nums = np.array([float(w["avisitn"]) for w in windows] + [np.nan], dtype="float64")
    targets = np.array([float(w["target"]) for w in windows] + [np.nan], dtype="float64")
    out[avisit] = names[win]          # index -1 -> the trailing "" / NaN
    out[avisitn] = nums[win]

    elig = has.copy()
    if value:
        elig &= _num(out[value]).notna().to_numpy()
    cand = out.loc[elig, keys].copy()
    cand["__w"] = win[elig]
    cand["__dist"] = np.abs(dy[elig] - targets[win[elig]])
    cand["__negday"] = -dy[elig]
    cand["__pos"] = np.flatnonzero(elig)
    cand = cand.sort_values(["__dist", "__negday", "__pos"], kind="mergesort")
    best = cand.drop_duplicates(subset=keys + ["__w"], keep="first")["__pos"].to_numpy()
    fl = np.full(n, "", dtype=object)
    fl[best] = "Y"
    out[flag] = fl
    return out


# ------------------------------------------------------------------ reference ranges

def derive_anrind(
    df: pd.DataFrame,
    low: str = "ANRLO",
    high: str = "ANRHI",
    value: str = "AVAL",
    new: str = "ANRIND",
    signif_dig: int = 15,
) -> pd.DataFrame:
    """Reference range indicator LOW / NORMAL / HIGH (admiral ``derive_var_anrind``).

    ``value``, ``low`` and ``high`` are first rounded to ``signif_dig``
    significant digits (admiral's floating-point tolerance), so e.g.
    ``0.1 + 0.2`` equals a limit of ``0.3``.  Then:

    * ``"NORMAL"`` if ``low <= value <= high``; or ``value >= low`` and ``high``
      is missing; or ``value <= high`` and ``low`` is missing;
    * ``"LOW"`` if ``value < low``;
    * ``"HIGH"`` if ``value > high``;
    * ``""`` if ``value`` is missing or both limits are missing.

    A value exactly on a limit is therefore NORMAL.

    Args:
        df: Input dataset.
        low: Lower limit column, default ``"ANRLO"``.
        high: Upper limit column, default ``"ANRHI"``.
        value: Analysis value column, default ``"AVAL"``.
        new: Name of the new column, default ``"ANRIND"``.
        signif_dig: Significant digits for the comparison, default 15.

    Returns:
        Copy of ``df`` with ``new``.
    """
    _require(df, [low, high, value], "derive_anrind")
    out = df.copy()
    v = signif(_num(out[value]), signif_dig)
    lo = signif(_num(out[low]), signif_dig)
    hi = signif(_num(out[high]), signif_dig)
    vm, lm, hm = np.isnan(v), np.isnan(lo), np.isnan(hi)
    with np.errstate(invalid="ignore"):
        ge_lo, le_hi = v >= lo, v <= hi
        normal = ~vm & ((ge_lo & le_hi) | (ge_lo & hm) | (le_hi & lm))
        is_low = ~vm & ~lm & (v < lo)
        is_high = ~vm & ~hm & (v > hi)
    out[new] = np.select([normal, is_low, is_high], ["NORMAL", "LOW", "HIGH"],
                         default="").astype(object)
    return out


def derive_shift(
    df: pd.DataFrame,
    from_var: str = "BNRIND",
    to_var: str = "ANRIND",
    new: str = "SHIFT1",
    missing_value: str = "NULL",
    sep_val: str = " to ",
) -> pd.DataFrame:
    """Character shift ``"<from> to <to>"`` (admiral ``derive_var_shift``).

    Missing (``""``/NaN) values on either side are replaced by ``missing_value``,
    so ``"NORMAL to NULL"``; admiral also writes ``"NULL to NULL"`` when both
    are missing.  Restrict to post-baseline records afterwards if required.

    Args:
        df: Input dataset.
        from_var: Column to shift from, default ``"BNRIND"``.
        to_var: Column to shift to, default ``"ANRIND"``.
        new: Name of the new column, default ``"SHIFT1"``.
        missing_value: Text for a missing value, default ``"NULL"``.
        sep_val: Separator, default ``" to "``.

    Returns:
        Copy of ``df`` with ``new``.
    """
    _require(df, [from_var, to_var], "derive_shift")
    out = df.copy()

    def txt(s: pd.Series) -> pd.Series:
        t = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        return t.where(t != "", missing_value)

    out[new] = (txt(out[from_var]) + sep_val + txt(out[to_var])).astype(object)
    return out


# ---------------------------------------------------------------- computed parameters

def derive_param_computed(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("USUBJID", "AVISIT"),
    parameters: Sequence[str] = (),
    new_paramcd: str = "",
    func: Callable[[dict[str, pd.Series]], Any] | None = None,
    value: str = "AVAL",
    paramcd: str = "PARAMCD",
    set_values: Mapping[str, Any] | None = None,
    paramtyp: str = "DERIVED",
) -> pd.DataFrame:
    """Add a parameter computed from other parameters (admiral ``derive_param_computed``).

    For every ``by`` group in which **all** ``parameters`` have a record with
    non-missing ``value``, one new record is appended with ``paramcd =
    new_paramcd``, the ``by`` values of the group, ``value = func(inputs)``,
    ``PARAMTYP = paramtyp`` and the constants in ``set_values``.  Groups missing
    any input (or with a missing input value) get no record.  Other columns of
    the new records are missing.

    ``func`` is a Python callable supplied by the caller (never text to evaluate).
    It receives a ``dict`` mapping each parameter code to a float64 ``Series``
    (one element per qualifying group, aligned) and must return an array-like of
    the same length (or a scalar), e.g.
    ``lambda v: (v["SYSBP"] + 2 * v["DIABP"]) / 3``.  A result of ``NaN`` is kept
    as a record with missing ``value``.

    Args:
        df: Input BDS dataset.
        by: Grouping columns, default ``("USUBJID", "AVISIT")``.
        parameters: Parameter codes that must all be present.
        new_paramcd: Parameter code of the new records.
        func: Callable computing the new value from the inputs (see above).
        value: Analysis value column, default ``"AVAL"``.
        paramcd: Parameter code column, default ``"PARAMCD"``.
        set_values: Extra constant columns for the new records, e.g.
            ``{"PARAM": "Mean Arterial Pressure (mmHg)"}``.
        paramtyp: Value of ``PARAMTYP`` on the new records, default
            ``"DERIVED"``.

    Returns:
        ``df`` with the new records appended (new index = 0..n-1 when records
        are added; unchanged copy otherwise).

    Raises:
        ValueError: if ``parameters``/``new_paramcd``/``func`` are missing, or
            ``by`` + ``paramcd`` is not unique among the input records.
    """
    keys = _keys(by)
    if not parameters or not new_paramcd or func is None or not callable(func):
        raise ValueError("derive_param_computed: parameters, new_paramcd and a callable func are required")
    _require(df, keys + [paramcd, value], "derive_param_computed")
    params = list(parameters)
    sub = df.loc[df[paramcd].isin(params) & _num(df[value]).notna(), keys + [paramcd, value]]
    dup = sub.duplicated(subset=keys + [paramcd], keep=False)
    if dup.any():
        raise ValueError(
            f"derive_param_computed: {keys + [paramcd]} is not a unique key of the input records")
    out = df.copy()
    if sub.empty:
        return out
    wide = sub.assign(**{value: _num(sub[value])}).pivot(index=keys, columns=paramcd, values=value)
    if not all(p in wide.columns for p in params):
        return out
    wide = wide[params].dropna(how="any")
    if wide.empty:
        return out
    inputs = {p: wide[p].reset_index(drop=True) for p in params}
    res = func(inputs)
    res = np.broadcast_to(np.asarray(res, dtype="float64"), (len(wide),)).copy()
    new = wide.index.to_frame(index=False)
    new[paramcd] = new_paramcd
    new[value] = res
    new["PARAMTYP"] = paramtyp
    for k, v in (set_values or {}).items():
        new[k] = v
    return pd.concat([out, new], ignore_index=True)
