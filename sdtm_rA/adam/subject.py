"""ADSL (subject-level) derivations, admiral style.

Each function takes a DataFrame and returns a *new* DataFrame with the derived
variables added (the input is never modified).  Semantics follow the R package
admiral (``derive_vars_merged``, ``derive_vars_dtm`` + ``derive_vars_dtm_to_dt``,
``derive_var_trtdurd``); differences are stated in the docstrings.  Conditions
are boolean Series or column names - text is never evaluated.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .dates import derive_vars_dtm

__all__ = [
    "merge_first_last",
    "derive_trt_dates",
    "derive_trtdurd",
    "derive_age_groups",
    "derive_flag_by_rule",
]


def order_columns(order) -> tuple[list[str], list[bool]]:
    """A spec's sort order (`[ADT, {desc: AVAL}]`, admiral's `exprs(ADT, desc(AVAL))`) as the
    columns and their directions (True: ascending)."""
    cols, asc = [], []
    for item in order or []:
        if isinstance(item, Mapping):
            cols.append(item["desc"])
            asc.append(False)
        else:
            cols.append(item)
            asc.append(True)
    return cols, asc


def sort_warning_on_ties(df: pd.DataFrame, keys: list, ascending=True) -> pd.DataFrame:
    """Stable sort by `keys` (missing last, descending keys too: dplyr's arrange, which admiral sorts
    with); warn, as admiral's uniqueness check does, when records tie on all of them: the input
    order then decides, which the user should know."""
    df = df.sort_values(keys, ascending=ascending, kind="mergesort", na_position="last")
    ties = df.duplicated(keys, keep=False)
    if ties.any():
        sample = df.loc[ties, keys].drop_duplicates().head(5).to_dict("records")
        warnings.warn(f"records not unique with respect to {keys}: {sample}", UserWarning,
                      stacklevel=3)
    return df


def _mask(df: pd.DataFrame, cond: Any, name: str = "filter") -> pd.Series:
    """A boolean Series aligned with ``df`` from a Series/array or a column name (NA -> False)."""
    if isinstance(cond, str):
        if cond not in df.columns:
            raise KeyError(f"{name}: column {cond!r} not in dataset")
        cond = df[cond]
    if isinstance(cond, pd.Series):
        if not cond.index.equals(df.index):
            if len(cond) != len(df):
                raise ValueError(f"{name} has {len(cond)} values for {len(df)} records")
            cond = pd.Series(cond.to_numpy(), index=df.index)
    else:
        cond = np.asarray(cond)
        if cond.shape != (len(df),):
            raise ValueError(f"{name} has shape {cond.shape} for {len(df)} records")
        cond = pd.Series(cond, index=df.index)
    if cond.dtype == object or pd.api.types.is_string_dtype(cond):
        vals = set(cond.dropna().unique()) - {True, False}
        if vals:
            raise TypeError(f"{name} must be boolean, got values {sorted(map(str, vals))[:5]}")
    return cond.fillna(False).astype(bool)


def merge_first_last(
    df: pd.DataFrame,
    other: pd.DataFrame,
    by: Sequence[str] = ("USUBJID",),
    order: Sequence[str] | None = None,
    mode: str = "first",
    filter: Any = None,
    new_vars: Mapping[str, str] | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Add variables of the first/last record per ``by`` group of ``other`` (admiral ``derive_vars_merged``).

    Args:
        df: Dataset to add the variables to (left side; every record is kept, the
            row order and index are kept).  Must contain the ``by`` columns.
        other: Additional dataset the variables are taken from; must contain the
            ``by``, ``order`` and source columns.
        by: Grouping/merge keys present in both datasets, e.g. ``("USUBJID",)``.
        order: Columns sorting the records of ``other`` within each group
            (ascending, missing values sorted last, as dplyr ``arrange``).  The
            first (``mode="first"``) or last record is selected.  If ``None``,
            ``other`` (after filtering) must have at most one record per group,
            otherwise ``ValueError`` naming the duplicated key values.  Records
            tied on ``by`` + ``order`` give a ``UserWarning`` (admiral's default
            ``check_type="warning"``); the tie is broken by input order.
        mode: ``"first"`` or ``"last"``.
        filter: Optional restriction of ``other`` before selection: a boolean
            Series aligned with ``other`` (or array of its length) or the name of
            a boolean column of ``other``.  Missing values count as False.
        new_vars: Variables to add: a mapping ``{new_name: source_column}`` or a
            sequence of column names (kept as is).  ``None`` adds every column of
            ``other`` other than ``by``.  A new name already in ``df`` raises
            ``ValueError`` (as admiral does).

    Returns:
        Copy of ``df`` with the new variables; groups without a selected record
        get missing values.
    """
    by = list(by)
    if mode not in ("first", "last"):
        raise ValueError(f"mode must be 'first' or 'last', got {mode!r}")
    for c in by:
        if c not in df.columns or c not in other.columns:
            raise KeyError(f"by variable {c!r} missing from one of the datasets")
    if new_vars is None:
        new_vars = {c: c for c in other.columns if c not in by}
    elif not isinstance(new_vars, Mapping):
        new_vars = {c: c for c in new_vars}
    new_vars = dict(new_vars)
    clash = [n for n in new_vars if n in df.columns and n not in by]
    if clash:
        raise ValueError(f"variables already in the dataset: {clash}")
    order = list(order) if order else []
    missing = [c for c in order + list(new_vars.values()) if c not in other.columns]
    if missing:
        raise KeyError(f"columns not in the additional dataset: {missing}")

    add = other if filter is None else other[_mask(other, filter, "filter")]
    if order:
        add = sort_warning_on_ties(add, by + order).drop_duplicates(by, keep=mode)
    else:
        dup = add.duplicated(by, keep=False)
        if dup.any():
            keys = add.loc[dup, by].drop_duplicates().head(5).to_dict("records")
            raise ValueError(
                f"additional dataset has more than one record per {by} and no order "
                f"was given; duplicated key values: {keys}"
            )
    sel = add[by + list(new_vars.values())].copy()
    sel.columns = by + list(new_vars.keys())
    out = df.merge(sel, on=by, how="left", validate="many_to_one")
    out.index = df.index
    return out


def derive_trt_dates(
    adsl: pd.DataFrame,
    ex: pd.DataFrame,
    dose_var: str = "EXDOSE",
    include_placebo: bool = True,
    by: Sequence[str] = ("USUBJID",),
    end_fallback_to_start: bool = False,
) -> pd.DataFrame:
    """Add TRTSDTM/TRTSTMF/TRTSDT and TRTEDTM/TRTETMF/TRTEDT from EX (admiral ADSL template).

    Valid doses are records with ``dose_var > 0`` or, if ``include_placebo``
    (the default, as admiral's template filter
    ``EXDOSE > 0 | (EXDOSE == 0 & str_detect(EXTRT, "PLACEBO"))``), ``dose_var == 0``
    with ``EXTRT`` containing ``"PLACEBO"`` (case-sensitive, as ``str_detect``), so
    placebo subjects get treatment dates.  A zero (or missing) dose of active
    treatment is ignored.

    * Start: ``EXSTDTC`` → datetime via :func:`~sdtm_rA.adam.dates.derive_vars_dtm`
      with admiral's defaults (``highest_imputation="h"``, time imputed
      ``"first"`` = 00:00:00; partial dates give no datetime); ``TRTSDTM`` is the
      earliest among valid doses (order ``EXSTDTM, EXSEQ``), ``TRTSTMF`` its time
      imputation flag.
    * End: ``EXENDTC`` → datetime with time imputed ``"last"`` (23:59:59);
      ``TRTEDTM`` is the latest (order ``EXENDTM, EXSEQ``) among the valid doses
      with an end, ``TRTETMF`` its flag; a subject without any gets none (as
      admiral). Only ``end_fallback_to_start`` reads ``EXSTDTC`` where ``EXENDTC``
      is missing (a study rule, never a default: it makes a one-day treatment of
      a subject whose end is unknown).
    * ``TRTSDT``/``TRTEDT`` are the dates of the datetimes.

    Args:
        adsl: Subject-level dataset with the ``by`` columns.  The six new
            columns must not exist yet.
        ex: EX domain with ``by``, ``EXSTDTC``, ``dose_var``, ``EXTRT`` (only
            needed if ``include_placebo``), optionally ``EXENDTC`` and ``EXSEQ``.
        dose_var: Dose column (numeric or numeric text).
        include_placebo: Count zero doses of ``EXTRT`` containing ``"PLACEBO"``.
        by: Subject keys.
        end_fallback_to_start: Take ``EXSTDTC`` where ``EXENDTC`` is missing.

    Returns:
        Copy of ``adsl`` with ``TRTSDTM``, ``TRTSTMF``, ``TRTEDTM``, ``TRTETMF``
        (``datetime64``/text) and ``TRTSDT``, ``TRTEDT`` (``datetime64`` at midnight).
    """
    by = list(by)
    dose = pd.to_numeric(ex[dose_var], errors="coerce")
    valid = dose > 0
    if include_placebo:
        placebo = ex["EXTRT"].astype("string").str.contains("PLACEBO", regex=False).fillna(False)
        valid = valid | ((dose == 0) & placebo.astype(bool))
    valid = valid.fillna(False).astype(bool)
    e = ex.loc[valid].copy()
    end_dtc = e["EXENDTC"] if "EXENDTC" in e.columns else pd.Series("", index=e.index)
    blank = end_dtc.isna() | (end_dtc.astype("string").str.strip() == "")
    e["_ENDDTC"] = end_dtc.where(~blank, e["EXSTDTC"] if end_fallback_to_start else "")
    e = derive_vars_dtm(e, "_ST", "EXSTDTC", time_imputation="first", flag_imputation="time")
    e = derive_vars_dtm(e, "_EN", "_ENDDTC", time_imputation="last", flag_imputation="time")
    seq = ["EXSEQ"] if "EXSEQ" in e.columns else []
    out = merge_first_last(adsl, e, by=by, order=["_STDTM"] + seq, mode="first",
                           filter=e["_STDTM"].notna(),
                           new_vars={"TRTSDTM": "_STDTM", "TRTSTMF": "_STTMF"})
    out = merge_first_last(out, e, by=by, order=["_ENDTM"] + seq, mode="last",
                           filter=e["_ENDTM"].notna(),
                           new_vars={"TRTEDTM": "_ENDTM", "TRTETMF": "_ENTMF"})
    out["TRTSDT"] = out["TRTSDTM"].dt.normalize()
    out["TRTEDT"] = out["TRTEDTM"].dt.normalize()
    return out


def derive_trtdurd(adsl: pd.DataFrame, start: str = "TRTSDT", end: str = "TRTEDT",
                   new: str = "TRTDURD") -> pd.DataFrame:
    """Total treatment duration in days (admiral ``derive_var_trtdurd``).

    ``TRTDURD = TRTEDT - TRTSDT + 1`` in days (time parts ignored).  As admiral
    (``compute_duration`` with ``add_one=TRUE``), the 1 is added only when the
    difference is >= 0, so an end one day before the start gives -1.

    Args:
        adsl: Dataset with the ``start`` and ``end`` date columns (datetime64 or ISO text).
        start: Treatment start date column.
        end: Treatment end date column.
        new: Name of the new variable.

    Returns:
        Copy of ``adsl`` with ``new`` (``Int64``; ``<NA>`` if a date is missing).
    """
    out = adsl.copy()
    s = pd.to_datetime(out[start], errors="coerce").dt.normalize()
    e = pd.to_datetime(out[end], errors="coerce").dt.normalize()
    d = (e - s).dt.days.astype("Int64")
    out[new] = d.where(d < 0, d + 1)
    return out


def derive_age_groups(
    adsl: pd.DataFrame,
    cuts: Sequence[tuple[float | None, float | None, str]] = ((None, 65, "<65"), (65, None, ">=65")),
    new: str = "AGEGR1",
    age: str = "AGE",
) -> pd.DataFrame:
    """Categorise age into groups.

    Args:
        adsl: Dataset with the ``age`` column (numeric).
        cuts: ``(low, high, label)`` triples; a record gets ``label`` when
            ``low <= age < high`` (``None`` = unbounded).  Overlapping cuts: the
            first matching triple wins.
        new: Name of the new variable.
        age: Age column.

    Returns:
        Copy of ``adsl`` with ``new`` (object; ``None`` when age is missing or
        outside every cut).
    """
    out = adsl.copy()
    a = pd.to_numeric(out[age], errors="coerce").to_numpy(dtype=float)
    conds, labels = [], []
    for lo, hi, label in cuts:
        c = ~np.isnan(a)
        if lo is not None:
            c &= a >= lo
        if hi is not None:
            c &= a < hi
        conds.append(c)
        labels.append(label)
    res = np.select(conds, labels, default="") if conds else np.full(len(a), "")
    hit = np.logical_or.reduce(conds) if conds else np.zeros(len(a), bool)
    out[new] = pd.Series(np.where(hit, res, None), index=out.index, dtype=object)
    return out


def derive_flag_by_rule(adsl: pd.DataFrame, new: str = "SAFFL", condition: Any = None) -> pd.DataFrame:
    """Add a ``'Y'``/``'N'`` flag from a boolean condition (e.g. SAFFL, ITTFL).

    Args:
        adsl: Input dataset.
        new: Name of the flag variable.
        condition: Boolean Series aligned with ``adsl`` (or array of its length)
            or the name of a boolean column.  True → ``'Y'``; False or missing →
            ``'N'``.  Required.

    Returns:
        Copy of ``adsl`` with ``new`` (object, ``'Y'``/``'N'``).
    """
    if condition is None:
        raise ValueError("condition is required")
    out = adsl.copy()
    m = _mask(out, condition, "condition")
    out[new] = pd.Series(np.where(m.to_numpy(), "Y", "N"), index=out.index, dtype=object)
    return out
