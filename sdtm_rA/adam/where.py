"""Record conditions of the ADaM specs (`where:`): data, never code.

The SDTM mapping conditions (equals, one of, `not`, `empty`; text comparison) plus what analysis
rules need: numeric and date comparisons against a number or another variable, and `any:` for OR.

    where: {EXDOSE: {gt: 0}}                       number (or date) comparison
    where: {ADT: {le: {var: TRTSDT}}}              against another variable of the same record
    where: {PARAMCD: [SDAI, CDAI], ABLFL: {not: Y}}
    where: {any: [{AESER: Y}, {AESEV: SEVERE}]}    one of several conditions
    where: "ADT >= TRTSDT and ADT <= TRTEDT + 30"  an expression (sdtm_rA.expression)
Several keys must all hold. A comparison with a missing value is False (as in R).
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from ..expression import DATE, INSTANT, Expression, ExpressionError
from ..expression.maps import expression_of
from ..sdtm.schema import suggest

COMPARISONS = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}
OPERATORS = ("not", "empty", "in") + tuple(COMPARISONS)
_ALLOWED = ", ".join(OPERATORS)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, _dt.date))


def _values(v) -> bool:
    return _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v))


def condition_problems(cond, where: str = "") -> list[str]:
    """Why `cond` is not a condition this module evaluates with certainty: an unknown operator (a
    typo such as `emtpy` or `ge` written for a text test would otherwise be ignored and the
    condition hold for every record), a nested list (compared as the text "['A']", matching
    nothing), `empty:` that is not true/false, a comparison with something that is not a number,
    a date or {var: NAME}. `where` prefixes each message (`any[2].`)."""
    if not isinstance(cond, dict):
        return [f"{where or 'a condition'}: a condition is a mapping of VARIABLE: test, not {cond!r}"]
    out = []
    for key, test in cond.items():
        at = f"{where}{key}"
        if not isinstance(key, str):
            out.append(f"{at}: a condition's keys are variable names (or any:), not {key!r}")
        elif key == "any":
            if not isinstance(test, list) or not test:
                out.append(f"{at}: takes a list of conditions (one must hold), not {test!r}")
            else:
                for i, sub in enumerate(test):
                    out += condition_problems(sub, f"{at}[{i + 1}].")
        elif key in OPERATORS:
            out.append(f"{at}: an operator needs a variable: {{VARIABLE: {{{key}: ...}}}}")
        elif isinstance(test, dict):
            if not test:
                out.append(f"{at}: an empty operator mapping; allowed operators: {_ALLOWED}")
            for op, value in test.items():
                out += _operator_problems(at, op, value)
        elif not _values(test):
            out.append(f"{at}: {test!r} is not a condition (a list or mapping inside a list); give a value, "
                       f"a list of values, or a mapping of operators: {_ALLOWED}")
    return out


def _operator_problems(at: str, op, value) -> list[str]:
    if op not in OPERATORS:
        return [f"{at}: unknown operator {op!r}{suggest(op, OPERATORS)}; allowed operators: {_ALLOWED}"]
    if op == "empty":
        return [] if isinstance(value, bool) else [f"{at}: `empty:` takes true or false, not {value!r}"]
    if op in COMPARISONS:
        if isinstance(value, dict):
            ok = set(value) == {"var"} and isinstance(value["var"], str)
        else:
            ok = isinstance(value, (int, float, str, _dt.date)) and not isinstance(value, bool)
        return [] if ok else [f"{at}: `{op}:` takes a number, a date or {{var: NAME}}, not {value!r}"]
    return [] if _values(value) else [f"{at}: `{op}:` takes a value or a list of values, not {value!r}"]


def declared(name: str):
    """ADaM columns have their dtype's type; --DTC text holds ISO 8601 dates, and a --DTM is a point
    in time even at midnight (a --DT is a whole day)."""
    if name.endswith("DTC"):
        return DATE
    return INSTANT if name.endswith("DTM") else None


def check_condition(field, value, error) -> None:
    """Cerberus `check_with` of every ADaM condition: the problems at the condition's line. An
    expression is parsed and checked (functions, arguments, literals) before anything runs; the
    types of its variables are known when the data is."""
    if isinstance(value, str):
        try:
            Expression(value).check(declared)
        except ExpressionError as exc:
            error(field, exc.located())
        return
    for problem in condition_problems(value):
        error(field, problem)


def check_expression(field, value, error) -> None:
    """Cerberus `check_with` of an expression argument (a `compute` value)."""
    if isinstance(value, str):
        check_condition(field, value, error)


def columns_of(cond) -> list[str]:
    """Every variable a condition reads (keys and `{var: X}` references), for the checks before a run."""
    out: list[str] = []
    if isinstance(cond, str):
        try:
            return Expression(cond).names
        except ExpressionError:
            return out       # the schema check reports it
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




def as_condition_text(s: pd.Series) -> pd.Series:
    """Values as conditions compare them: numbers as SDTM writes them (2.0 -> '2'), dates as ISO
    8601 ('2021-04-12', with the time when there is one), missing (NaN, NaT, None) as ''."""
    if pd.api.types.is_datetime64_any_dtype(s):
        has_time = bool((s.dropna() != s.dropna().dt.normalize()).any())
        text = s.dt.strftime("%Y-%m-%dT%H:%M:%S" if has_time else "%Y-%m-%d")
        return text.astype(object).where(s.notna(), "")
    if pd.api.types.is_numeric_dtype(s):
        from ..sdtm.findings import format_number
        codes, uniques = pd.factorize(s)
        texts = np.array([format_number(float(v)) for v in uniques] + [""], dtype=object)
        return pd.Series(texts[codes], index=s.index, dtype=object)
    return s.astype(object).where(s.notna(), "").astype(str)


def evaluate(cond, df: pd.DataFrame) -> pd.Series:
    """Boolean mask of the records of `df` meeting `cond` (None: every record); a map is read as the
    expression it stands for (`expression.maps`), so both forms have one meaning."""
    if not cond:
        return pd.Series(True, index=df.index)
    text = cond if isinstance(cond, str) else expression_of(cond)
    return pd.Series(Expression(text).mask(lambda name: df[name], declared, len(df)), index=df.index)
