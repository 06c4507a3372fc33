"""Laboratory toxicity grades from grading criteria kept as data (admiral's derive_var_atoxgr_dir).

The criteria (specs/adam/ctcae/<name>.yaml) give, per CTCAE term, its direction and one expression per
grade; the grades are tried from the highest down on every record of that term at once.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..expression import Expression
from ..io.yamlio import load_yaml
from ..standards.specs import specs_dir


def criteria_names() -> list[str]:
    return sorted(p.stem for p in (specs_dir() / "adam" / "ctcae").glob("*.yaml"))


@lru_cache(maxsize=8)
def load_criteria(name: str) -> dict:
    """{term: (direction, unit or None, [(grade, Expression), ...] highest first)} of a bundled
    criteria file."""
    path = specs_dir() / "adam" / "ctcae" / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"criteria: no grading criteria {name!r}; bundled: {', '.join(criteria_names())}")
    doc = load_yaml(path, f"specs/adam/ctcae/{name}.yaml")
    out = {}
    for term, spec in doc["terms"].items():
        grades = sorted(((int(g), Expression(text)) for g, text in spec["grades"].items()), reverse=True)
        out[term] = (spec["direction"], spec.get("unit"), grades)
    return out


def derive_var_atoxgr_dir(df: pd.DataFrame, new: str, term_var: str, direction: str, criteria: dict,
                          declared=None, unit: Expression | None = None) -> pd.DataFrame:
    """`df` with `new` ('0'..'4' as text, as admiral writes it): the highest grade whose criterion is
    true for the record's term; '0' where every criterion is false; missing where none is true and
    one cannot be decided (a missing limit), or without a term of this direction. A term the criteria
    do not know, or a record whose unit (`unit`, an expression) is not the one a term's thresholds are
    written in, raises ValueError naming it."""
    terms = df[term_var].astype(object).where(df[term_var].notna(), "").astype(str).str.strip()
    out = pd.Series([None] * len(df), index=df.index, dtype=object)
    other = {"H": "L", "L": "H"}[direction]
    for term in sorted(set(terms) - {""}):
        if term not in criteria:
            from ..sdtm.schema import suggest
            raise ValueError(f"{term_var} {term!r} is not a term of the grading criteria"
                             f"{suggest(term, criteria)}")
        term_dir, term_unit, grades = criteria[term]
        if term_dir == other:
            continue              # graded by the step of the other direction
        rows = (terms == term).to_numpy()
        part = df[rows]
        if term_unit:
            _check_unit(part, term, term_unit, unit, declared)
        grade = np.full(len(part), None, dtype=object)
        pending = np.ones(len(part), dtype=bool)
        all_false = np.ones(len(part), dtype=bool)
        for g, expr in grades:
            holds = expr.evaluate(lambda name: part[name], declared, len(part)).data
            true = holds.fillna(False).to_numpy(dtype=bool)
            grade[true & pending] = str(g)
            pending &= ~true
            all_false &= (holds == False).fillna(False).to_numpy(dtype=bool)   # noqa: E712 (three-valued)
        grade[pending & all_false] = "0"
        out[rows] = grade
    return df.assign(**{new: out})


def _check_unit(part: pd.DataFrame, term: str, term_unit: str, unit: Expression | None, declared) -> None:
    if unit is None:
        raise ValueError(f"the criteria of {term!r} are written in {term_unit}: give `unit:`, an expression "
                         f"for each record's unit (e.g. extract(PARAM, '\\(([^()]+)\\)$'))")
    units = unit.values(lambda name: part[name], declared, len(part))
    wrong = sorted(set(units[units != term_unit]))
    if wrong:
        raise ValueError(f"the criteria of {term!r} are written in {term_unit}, and its records are in "
                         f"{', '.join(repr(u) for u in wrong)}; convert AVAL and the limits first")
