"""The condition maps of the first mappings and specs, as expressions: one evaluator for both forms.

    {LBSTAT: NOT DONE}                   text(LBSTAT) in ('NOT DONE')
    {VISIT: [DAY 1, WEEK 4]}             text(VISIT) in ('DAY 1', 'WEEK 4')
    {EXDOSE: {not: ["0", ""]}}           not (text(EXDOSE) in ('0', ''))
    {AEONGO: {empty: false}}             AEONGO is not missing
    {EXDOSE: {gt: 0}}                    EXDOSE > 0                      (ADaM specs)
    {ADT: {le: {var: TRTSDT}}}           ADT <= TRTSDT
    {any: [{AESER: Y}, {AESEV: SEVERE}]} (text(AESER) in ('Y')) or (text(AESEV) in ('SEVERE'))

A map compares values as the text SDTM writes (2.0 is '2', a date its ISO 8601 text), which is
what `text()` gives; the shapes a map may take are checked by the schemas before this runs.
"""
from __future__ import annotations

import datetime as _dt
import re

from ..sdtm.findings import format_number
from .grammar import KEYWORDS

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPARISONS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def name(text: str) -> str:
    """A column name as the expression writes it (`alias.COLUMN`, quoted where not plain)."""
    parts = text.split(".", 1) if "." in text and all(_PLAIN.fullmatch(p) for p in text.split(".", 1)) \
        else [text]
    return ".".join(p if _PLAIN.fullmatch(p) and p.lower() not in KEYWORDS else f"`{p}`" for p in parts)


def quoted(value) -> str:
    """A map value as the text it stands for, quoted (true → 'Y', 2.0 → '2', null → '')."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "Y" if value else "N"
    elif isinstance(value, (int, float)):
        text = format_number(float(value))
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _operand(value) -> str:
    """The right side of a comparison: another variable, a date, a number (or number text)."""
    if isinstance(value, dict):
        return name(value["var"])
    if isinstance(value, _dt.date):
        return f"date('{value.isoformat()[:10] if not isinstance(value, _dt.datetime) else value.isoformat()}')"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return value.strip()
    return quoted(value)


def _one_of(column: str, values) -> str:
    values = values if isinstance(values, list) else [values]
    if not values:
        return "false"
    return f"text({column}) in ({', '.join(quoted(v) for v in values)})"


def expression_of(cond: dict) -> str:
    """The expression text of a condition map (every key must hold)."""
    parts = []
    for key, test in cond.items():
        if key == "any":
            parts.append("(" + " or ".join(f"({expression_of(sub)})" for sub in test) + ")")
            continue
        col = name(key)
        if not isinstance(test, dict):
            parts.append(_one_of(col, test))
            continue
        for op, value in test.items():
            if op == "in":
                parts.append(_one_of(col, value))
            elif op == "not":
                parts.append(f"not ({_one_of(col, value)})")
            elif op == "empty":
                parts.append(f"{col} is {'' if value else 'not '}missing")
            elif op in _COMPARISONS:
                parts.append(f"{col} {_COMPARISONS[op]} {_operand(value)}")
    return " and ".join(f"({p})" for p in parts) if parts else "true"

