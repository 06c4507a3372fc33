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
    """{term: (direction, [(grade, Expression), ...] highest first)} of a bundled criteria file."""
    path = specs_dir() / "adam" / "ctcae" / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"criteria: no grading criteria {name!r}; bundled: {', '.join(criteria_names())}")
    doc = load_yaml(path, f"specs/adam/ctcae/{name}.yaml")
    out = {}
    for term, spec in doc["terms"].items():
        grades = sorted(((int(g), Expression(text)) for g, text in spec["grades"].items()), reverse=True)
        out[term] = (spec["direction"], grades)
    return out


def derive_var_atoxgr_dir(df: pd.DataFrame, new: str, term_var: str, direction: str, criteria: dict,
                          declared=None) -> pd.DataFrame:
    """`df` with `new` ('0'..'4' as text, as admiral writes it): the highest grade whose criterion holds
    for the record's term; '0' when none holds; missing without a term of this direction, or where
    a variable the term's criteria read is missing. A term the criteria do not know, or that grades
    the other direction, raises ValueError naming it."""
    terms = df[term_var].astype(object).where(df[term_var].notna(), "").astype(str).str.strip()
    out = pd.Series([None] * len(df), index=df.index, dtype=object)
    other = {"H": "L", "L": "H"}[direction]
    for term in sorted(set(terms) - {""}):
        if term not in criteria:
            from ..sdtm.schema import suggest
            raise ValueError(f"{term_var} {term!r} is not a term of the grading criteria"
                             f"{suggest(term, criteria)}")
        term_dir, grades = criteria[term]
        if term_dir == other:
            continue              # graded by the step of the other direction
        rows = (terms == term).to_numpy()
        part = df[rows]
        reads = sorted({n for _, e in grades for n in e.names})
        known = np.logical_and.reduce([part[n].notna().to_numpy() for n in reads]) if reads else \
            np.ones(len(part), dtype=bool)
        grade = np.where(known, "0", None).astype(object)
        pending = known.copy()
        for g, expr in grades:
            hit = expr.mask(lambda name: part[name], declared, len(part)) & pending
            grade[hit] = str(g)
            pending &= ~hit
        out[rows] = grade
    return df.assign(**{new: out})
