"""Declarative row conditions (`where:`) — the only 'logic' a mapping may contain, and it is data.

    where: {LBSTAT: NOT DONE}                 equals
    where: {VISIT: [DAY 1, WEEK 4]}           one of
    where: {EXDOSE: {not: ["0", ""]}}          none of
    where: {AEONGO: {empty: false}}            (not) empty
    where: "ae.AESTDTC >= RFXSTDTC and AEONGO = 'Y'"   an expression (sdtm_rA.expression)
Several keys must all hold. Values compare as trimmed text, case-sensitively. Nothing else is a
condition: `schema.condition_problems` refuses other operators and nested lists before anything runs.
"""
from __future__ import annotations

import pandas as pd

from .expression import DATE, Expression

OPERATORS = ("in", "not", "empty")


def _target_types(name: str):
    return DATE if "." not in name and name.endswith("DTC") else None


def evaluate(cond: dict | str, resolve, index, targets: bool = False) -> pd.Series:
    """`resolve(name)` returns the text Series a key refers to; the result is a boolean mask. A text
    condition is an expression; with `targets`, its names without a source alias are target
    variables, and the --DTC ones hold dates."""
    if isinstance(cond, str):
        declared = _target_types if targets else None
        return pd.Series(Expression(cond).mask(resolve, declared, len(index)), index=index)
    mask = pd.Series(True, index=index)
    for name, test in cond.items():
        values = _as_text(resolve(name))
        if isinstance(test, dict):
            if "in" in test:
                mask &= values.isin([_text(v) for v in _as_list(test["in"])])
            if "not" in test:
                mask &= ~values.isin([_text(v) for v in _as_list(test["not"])])
            if "empty" in test:
                mask &= (values == "") if test["empty"] else (values != "")
        else:
            mask &= values.isin([_text(v) for v in _as_list(test)])
    return mask


def _as_text(s: pd.Series) -> pd.Series:
    """Numbers compare as they are written in SDTM text (2.0 → '2'), missing as ''."""
    if pd.api.types.is_numeric_dtype(s):
        from .findings import number_texts
        return number_texts(s)
    return s.fillna("").astype(str)


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "Y" if v else "N"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
