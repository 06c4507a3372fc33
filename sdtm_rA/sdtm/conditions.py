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

from ..expression import DATE, Expression
from ..expression.maps import expression_of

OPERATORS = ("in", "not", "empty")


def _target_types(name: str):
    return DATE if "." not in name and name.endswith("DTC") else None


def evaluate(cond: dict | str, resolve, index, targets: bool = False) -> pd.Series:
    """`resolve(name)` returns the Series a name refers to; the result is a boolean mask. A text
    condition is an expression, a map is read as one (`expression.maps`); with `targets`, names
    without a source alias are target variables, and the --DTC ones hold dates."""
    text = cond if isinstance(cond, str) else expression_of(cond)
    declared = _target_types if targets else None
    return pd.Series(Expression(text).mask(resolve, declared, len(index)), index=index)
