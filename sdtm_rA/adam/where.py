"""Record conditions of the ADaM specs (`where:`): data, never code.

The SDTM mapping conditions (equals, one of, `not`, `empty`; text comparison) plus what analysis
rules need: numeric and date comparisons against a number or another variable, and `any:` for OR.

    where: {EXDOSE: {gt: 0}}                       number (or date) comparison
    where: {ADT: {le: {var: TRTSDT}}}              against another variable of the same record
    where: {PARAMCD: [SDAI, CDAI], ABLFL: {not: Y}}
    where: {any: [{AESER: Y}, {AESEV: SEVERE}]}    one of several conditions
Several keys must all hold. A comparison with a missing value is False (as in SAS and R).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..conditions import evaluate as _text_evaluate

COMPARISONS = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}
OPERATORS = ("not", "empty", "in") + tuple(COMPARISONS)


def columns_of(cond) -> list[str]:
    """Every variable a condition reads (keys and `{var: X}` references), for the checks before a run."""
    out: list[str] = []
    if not isinstance(cond, dict):
        return out
    for key, test in cond.items():
        if key == "any":
            for sub in test or []:
                out += columns_of(sub)
            continue
        out.append(key)
        if isinstance(test, dict):
            for op in COMPARISONS:
                ref = test.get(op)
                if isinstance(ref, dict) and "var" in ref:
                    out.append(ref["var"])
    return out


def _as_comparable(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s
    return pd.to_numeric(s, errors="coerce")


def _operand(df: pd.DataFrame, ref, like: pd.Series):
    if isinstance(ref, dict):
        return _as_comparable(df[ref["var"]])
    if pd.api.types.is_datetime64_any_dtype(like):
        return pd.Timestamp(str(ref))
    return float(ref)


def evaluate(cond, df: pd.DataFrame) -> pd.Series:
    """Boolean mask of the records of `df` meeting `cond` (None: every record)."""
    if not cond:
        return pd.Series(True, index=df.index)
    mask = pd.Series(True, index=df.index)
    text_part = {}
    for key, test in cond.items():
        if key == "any":
            hit = pd.Series(False, index=df.index)
            for sub in test:
                hit |= evaluate(sub, df)
            mask &= hit
            continue
        if isinstance(test, dict) and any(op in test for op in COMPARISONS):
            values = _as_comparable(df[key])
            for op, fn in COMPARISONS.items():
                if op in test:
                    other = _operand(df, test[op], values)
                    with np.errstate(invalid="ignore"):
                        res = pd.Series(fn(values, other), index=df.index)
                    mask &= res.fillna(False).astype(bool) & values.notna()
            rest = {k: v for k, v in test.items() if k not in COMPARISONS}
            if rest:
                text_part[key] = rest
        else:
            text_part[key] = test
    if text_part:
        mask &= _text_evaluate(text_part, lambda name: df[name], df.index)
    return mask
