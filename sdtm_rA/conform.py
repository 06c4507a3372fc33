"""Shaping a built domain to the SDTMIG: variable order and presence, Req values, keys, ASCII.

The IG is the authority: variables come out in IG order, expected (Exp) variables are present even
when empty, required (Req) ones must have a value in every record, and text must be ASCII (XPT v5).
"""
from __future__ import annotations

import re
import unicodedata

import pandas as pd

from .errors import Issues, shown
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
    _check_required(domain, data, spec, issues, where, row_origin)
    _check_ascii(domain, data, issues, where, row_origin)
    _check_lengths(domain, data, issues, where, row_origin)
    if keys:
        _check_keys(domain, data, keys, issues, where, row_origin)
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


def _name_rows(data, mask, row_origin, limit=5) -> str:
    idx = list(data.index[mask])
    named = []
    for ix in idx[:limit]:
        subj = data.at[ix, "USUBJID"] if "USUBJID" in data.columns else ""
        origin = row_origin.get(ix, "") if row_origin is not None else ""
        named.append(" ".join(x for x in (str(subj), f"({origin})" if origin else "") if x))
    more = f" (+{len(idx) - limit} more)" if len(idx) > limit else ""
    return "; ".join(named) + more


def _check_required(domain, data, spec, issues, where, row_origin):
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
                         f"{_name_rows(data, missing, row_origin)}", domain=domain, variable=v.name,
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


def _check_ascii(domain, data, issues, where, row_origin):
    """Non-ASCII (XPT v5 has no encoding) and control characters (the validator's SD0131)."""
    for col, text, uniq in _text_columns(data):
        for value in sorted(set(uniq[uniq.str.contains(CONTROL, regex=True)])):
            issues.error(f"{control_message(value)}: {_name_rows(data, text == value, row_origin)}",
                         domain=domain, variable=col, value=value, **_at(where, col))
        for value in sorted(set(uniq[~uniq.map(str.isascii)])):
            mask = text == value
            ch = next(c for c in value if not c.isascii())
            issues.error(f"non-ASCII character '{ch}' (U+{ord(ch):04X}) in {shown(value)}: "
                         f"{_name_rows(data, mask, row_origin)}; XPT v5 takes ASCII only - correct "
                         "the raw value or declare `transliterate: true` on the variable",
                         domain=domain, variable=col, value=value, **_at(where, col))


def _check_lengths(domain, data, issues, where, row_origin):
    for col, text, uniq in _text_columns(data):
        long_values = set(uniq[uniq.str.len() > 200])
        if long_values:
            over = text.isin(long_values)
            issues.error(f"value longer than 200 characters ({int(text[over].str.len().max())}) in "
                         f"{_name_rows(data, over, row_origin)}; XPT v5 stops at 200 - send it to "
                         "SUPPQUAL (`supp:`), which splits long text", domain=domain, variable=col,
                         **_at(where, col))


def _key_text(v) -> str:
    if isinstance(v, float):
        return "" if v != v else format_number(v)
    return str(v)


def _check_keys(domain, data, keys, issues, where, row_origin):
    missing = [k for k in keys if k not in data.columns]
    if missing:
        issues.error(f"key variables {missing} are not in the dataset", domain=domain,
                     **_at(where))
        return
    frame = data[keys]
    dup = frame.duplicated(keep=False)
    if dup.any():
        for _, grp in frame[dup].groupby(keys, sort=True, dropna=False):
            key_text = ", ".join(f"{k}={shown(_key_text(v))}" for k, v in zip(keys, grp.iloc[0]))
            issues.error(f"duplicate records for key {key_text}: "
                         f"{_name_rows(data, data.index.isin(grp.index), row_origin)}",
                         domain=domain, value=key_text, **_at(where))
