"""Rules and findings.

A rule is a function of the whole study (`StudyData`) that returns findings as DataFrames built with
`flag()`: whole columns are checked at once, and each finding still names its dataset, variable,
1-based row (as in the file), USUBJID, --SEQ and offending value, with a message that says what is
wrong and what would be right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

SEVERITIES = ("error", "warning", "notice")
FINDING_COLUMNS = ["rule", "severity", "dataset", "variable", "row", "usubjid", "seq", "value", "message"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    func: Callable
    core: tuple = ()
    p21: tuple = ()
    fda: tuple = ()
    standards: tuple = ("SDTM",)
    doc: str = ""

    @property
    def references(self) -> str:
        return ", ".join(self.core + self.fda + self.p21)


RULES: dict[str, Rule] = {}


def rule(id: str, severity: str, title: str, *, core=(), p21=(), fda=(), standards=("SDTM",)):
    """Register a rule. `severity` is the default; a finding may carry its own (e.g. warning for an
    extensible codelist, error for a non-extensible one) in a `severity` column."""
    assert severity in SEVERITIES, severity

    def wrap(func):
        if id in RULES:
            raise ValueError(f"rule {id} registered twice")
        RULES[id] = Rule(id, severity, title, func, tuple(core), tuple(p21), tuple(fda),
                         tuple(standards), (func.__doc__ or "").strip())
        return func
    return wrap


def flag(ds, mask, variable: str | None, message, *, value=None, severity: str | None = None) -> pd.DataFrame:
    """Findings for the rows of dataset `ds` where `mask` is True.

    message: a text, or a function of the offending value (called once per distinct value: cheap
    even for a million flagged rows). value: a Series of offending values (default: the variable).
    """
    df = ds.df
    if mask is None:
        return empty()
    mask = pd.Series(mask, index=df.index) if not isinstance(mask, pd.Series) else mask.reindex(df.index, fill_value=False)
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return empty()
    sub = df.loc[mask]
    if value is None:
        vals = sub[variable] if variable and variable in sub.columns else pd.Series("", index=sub.index)
    else:
        vals = value.loc[mask] if isinstance(value, pd.Series) else pd.Series(value, index=sub.index)
    text = _texts(vals)
    if callable(message):
        msgs = {v: message(v) for v in text.unique()}
        msg = text.map(msgs)
    else:
        msg = pd.Series(message, index=sub.index)
    seq_var = ds.seq_var
    seq_text = _texts(sub[seq_var]).to_numpy() if seq_var and seq_var in sub.columns else ""
    out = pd.DataFrame({
        "dataset": ds.name,
        "variable": variable or "",
        "row": sub["__row__"].astype(int).to_numpy() if "__row__" in sub.columns else (sub.index + 1),
        "usubjid": sub["USUBJID"].astype(str).to_numpy() if "USUBJID" in sub.columns else "",
        "seq": seq_text,
        "value": text.to_numpy(),
        "message": msg.to_numpy(),
    })
    if severity:
        out["severity"] = severity
    return out


def dataset_finding(name: str, variable: str | None, message: str, value="", severity=None) -> pd.DataFrame:
    """A finding about a dataset or a variable as a whole (no row)."""
    out = pd.DataFrame([{"dataset": name, "variable": variable or "", "row": 0, "usubjid": "",
                         "seq": "", "value": _as_text(value), "message": message}])
    if severity:
        out["severity"] = severity
    return out


def first_per_value(found: pd.DataFrame) -> pd.DataFrame:
    """One finding per dataset, variable and value (its first row), with the record count.

    For notices and warnings that repeat one decision on many records (a sponsor term used on a
    million lab records), one line per decision is what a reviewer needs; errors stay per row.
    """
    if found is None or found.empty:
        return found
    keys = ["dataset", "variable", "value"]
    counts = found.groupby(keys, sort=False)["row"].transform("size")
    first = ~found.duplicated(keys, keep="first")
    out = found[first].copy()
    n = counts[first]
    many = n > 1
    out.loc[many, "message"] = out.loc[many, "message"] + " (" + n[many].astype(str) + \
        " records; the first is this row)"
    return out.reset_index(drop=True)


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["dataset", "variable", "row", "usubjid", "seq", "value", "message"])


def _texts(values: pd.Series) -> pd.Series:
    """Values as finding text, converted once per distinct value (a million flagged rows stay cheap)."""
    if pd.api.types.is_numeric_dtype(values):
        table = {v: _as_text(float(v)) for v in pd.unique(values.dropna())}
        return values.map(table).astype(object).where(values.notna(), "").astype(str)
    return values.astype(object).where(values.notna(), "").astype(str)


def _as_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return ""
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)
