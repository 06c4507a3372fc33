"""Shaping a built domain to the SDTMIG: variable order and presence, Req values, keys, ASCII.

The IG is the authority: variables come out in IG order, expected (Exp) variables are present even
when empty, required (Req) ones must have a value in every record, and text must be ASCII (XPT v5).
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from ..errors import Issues, shown
from .findings import format_number

# A few characters that NFKD does not reduce to ASCII but that clinical text uses.
_SPECIAL = {"°": " deg ", "µ": "u", "μ": "u", "α": "alpha", "β": "beta", "γ": "gamma", "±": "+/-",
            "×": "x", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "≤": "<=",
            "≥": ">=", "ß": "ss", "æ": "ae", "ø": "o", "Æ": "AE", "Ø": "O", "\u00a0": " "}


def transliterate(text: str) -> str:
    """ASCII for text a mapping declared transliterable (e.g. '38.2 °C' → '38.2 deg C', 'é' → 'e').
    A character with no ASCII form stays, for the caller to report: dropping it would change the
    text ('Łódź' → 'odz', '½' → '12'). A line break stays too, to be reported, never hidden."""
    if text.isascii():
        return text
    out = "".join(_SPECIAL.get(ch, ch) for ch in text)
    out = "".join(ch for ch in unicodedata.normalize("NFKD", out) if not unicodedata.combining(ch))
    return re.sub(" {2,}", " ", out).strip(" ")


def untransliterable(text: str) -> str:
    """The first character of `text` that transliterate() cannot make ASCII."""
    return next(ch for ch in text if not transliterate(ch).isascii())


def conform(domain: str, data: pd.DataFrame, spec, issues: Issues, *, where: dict,
            row_origin: pd.Series, keys: list[str] | None, sort: list[str] | None) -> pd.DataFrame:
    """`row_origin`: per row, 'raw/x.csv line N' — how a record is named in messages."""
    data = data.copy()
    # Expected variables are present even when nothing was mapped to them.
    for v in spec.variables:
        if v.name not in data.columns and v.core == "Exp":
            data[v.name] = float("nan") if v.type == "Num" else ""
            issues.note(f"expected variable {v.name} not mapped: written empty", domain=domain,
                        variable=v.name, file=where.get("file", ""))
    # IG order, with variables the SDTM model allows for the class slotted where the model puts them.
    order = {v.name: v.order for v in spec.model_variables()}
    data = data[sorted(data.columns, key=lambda c: (order.get(c, 10_000), c))]
    name = _Namer(data, row_origin)
    _check_required(domain, data, spec, issues, where, name)
    check_ascii(domain, data, issues, where, name)
    _check_lengths(domain, data, issues, where, name)
    if keys:
        _check_keys(domain, data, keys, issues, where, name)
    sort_cols = sort or _default_sort(domain, data)
    data = data.sort_values(sort_cols, kind="stable").reset_index(drop=True)
    return data


def _at(where: dict, variable: str | None = None) -> dict:
    """file and line of the rule that produced `variable` (or of `keys:`), for messages."""
    line = where.get("lines", {}).get(variable) if variable else where.get("keys_line")
    return {"file": where.get("file", ""), "line": line}


def _default_sort(domain, data):
    cols = [c for c in ("STUDYID", "USUBJID", f"{domain}SEQ") if c in data.columns]
    return cols or list(data.columns[:1])


class _Namer:
    """Names records in messages ('TST01-101 (raw/cm.csv line 2)'), reading the columns once: a check
    may name the rows of 100,000s of values."""

    def __init__(self, data: pd.DataFrame, row_origin: pd.Series | None):
        self.data, self.row_origin, self.subjects, self.origins = data, row_origin, None, None

    def __call__(self, positions: np.ndarray, limit: int = 5) -> str:
        if self.subjects is None:   # on the first message only: a clean dataset needs none
            data = self.data
            self.subjects = data["USUBJID"].to_numpy(dtype=object) if "USUBJID" in data.columns else \
                np.full(len(data), "", dtype=object)
            self.origins = np.full(len(data), "", dtype=object) if self.row_origin is None else \
                self.row_origin.reindex(data.index).fillna("").to_numpy(dtype=object)
        named = []
        for p in positions[:limit]:
            subj, origin = str(self.subjects[p]), self.origins[p]
            named.append(" ".join(x for x in (subj, f"({origin})" if origin else "") if x))
        more = f" (+{len(positions) - limit} more)" if len(positions) > limit else ""
        return "; ".join(named) + more


def _rows_of(text: pd.Series, values: list) -> dict[str, np.ndarray]:
    """Row positions (ascending) of each of `values` in `text`, from one factorize and one sort (a
    check may name the rows of 100,000s of values)."""
    codes, uniques = pd.factorize(text)
    wanted = np.flatnonzero(pd.Index(uniques).isin(values))
    sel = np.flatnonzero(np.isin(codes, wanted))
    order = sel[np.argsort(codes[sel], kind="stable")]
    c = codes[order]
    starts = np.flatnonzero(np.r_[len(c) > 0, c[1:] != c[:-1]])
    return {uniques[c[a]]: order[a:b] for a, b in zip(starts.tolist(), np.r_[starts[1:], len(c)].tolist())}


def _check_required(domain, data, spec, issues, where, name):
    for v in spec.variables:
        if v.core != "Req":
            continue
        if v.name not in data.columns:
            issues.error(f"required variable {v.name} is not mapped", domain=domain, variable=v.name,
                         file=where.get("file", ""), line=1 if where.get("file") else None)
            continue
        col = data[v.name]
        missing = col.isna() if pd.api.types.is_numeric_dtype(col) else (col.fillna("").astype(str) == "")
        if missing.any():
            issues.error(f"required variable {v.name} is empty in {int(missing.sum())} record(s): "
                         f"{name(np.flatnonzero(missing.to_numpy()))}", domain=domain, variable=v.name,
                         **_at(where, v.name))


def _text_columns(data):
    """(name, text, distinct values) of each character column: checks look at distinct values."""
    for col in data.columns:
        if pd.api.types.is_numeric_dtype(data[col]):
            continue
        text = data[col].fillna("").astype(str)
        yield col, text, pd.Series(text.unique())


CONTROL = r"[\x00-\x1f\x7f]"
_CONTROL_NAMES = {"\n": "a line feed (LF)", "\r": "a carriage return (CR)", "\t": "a tab"}


def control_message(value: str) -> str:
    """Why a value with a control character (a line break from a multi-line EDC field) is refused."""
    ch = next(c for c in value if ord(c) < 32 or ord(c) == 127)
    what = _CONTROL_NAMES.get(ch, f"the control character U+{ord(ch):04X}")
    return f"{shown(value)} contains {what}: SDTM text is one line of printable ASCII; correct the raw value"


def check_ascii(domain, data, issues, where, name: _Namer | None = None):
    """Non-ASCII (XPT v5 has no encoding) and control characters (the validator's SD0131)."""
    name = name or _Namer(data, None)
    for col, text, uniq in _text_columns(data):
        control = sorted(uniq[uniq.str.contains(CONTROL, regex=True)])
        other = sorted(uniq[~uniq.map(str.isascii)])
        if not (control or other):
            continue
        rows = _rows_of(text, control + other)
        for value in control:
            issues.error(f"{control_message(value)}: {name(rows[value])}",
                         domain=domain, variable=col, value=value, **_at(where, col))
        for value in other:
            ch = next(c for c in value if not c.isascii())
            issues.error(f"non-ASCII character '{ch}' (U+{ord(ch):04X}) in {shown(value)}: "
                         f"{name(rows[value])}; XPT v5 takes ASCII only - correct "
                         "the raw value or declare `transliterate: true` on the variable",
                         domain=domain, variable=col, value=value, **_at(where, col))


def _check_lengths(domain, data, issues, where, name):
    for col, text, uniq in _text_columns(data):
        long_values = set(uniq[uniq.str.len() > 200])
        if long_values:
            over = text.isin(long_values).to_numpy(dtype=bool)
            issues.error(f"value longer than 200 characters ({int(text[over].str.len().max())}) in "
                         f"{name(np.flatnonzero(over))}; XPT v5 stops at 200 - send "
                         "it to SUPPQUAL (`supp:`), which splits long text", domain=domain, variable=col,
                         **_at(where, col))


def _key_text(v) -> str:
    if isinstance(v, float):
        return "" if v != v else format_number(v)
    return str(v)


def _check_keys(domain, data, keys, issues, where, name):
    missing = [k for k in keys if k not in data.columns]
    if missing:
        issues.error(f"key variables {missing} are not in the dataset", domain=domain,
                     **_at(where))
        return
    frame = data[keys]
    dup = frame.duplicated(keep=False).to_numpy()
    if dup.any():
        groups = frame[dup].groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
        positions = np.flatnonzero(dup)[np.argsort(groups, kind="stable")]   # by key, then row
        values = frame.iloc[positions].to_numpy(dtype=object)
        starts = np.flatnonzero(np.r_[True, np.diff(np.sort(groups)) != 0])
        for a, b in zip(starts.tolist(), np.r_[starts[1:], len(positions)].tolist()):
            key_text = ", ".join(f"{k}={shown(_key_text(v))}" for k, v in zip(keys, values[a]))
            issues.error(f"duplicate records for key {key_text}: {name(positions[a:b])}",
                         domain=domain, value=key_text, **_at(where))
