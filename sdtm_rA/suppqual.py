"""SUPP-- datasets: non-standard variables, one record per parent record and qualifier.

IDVAR/IDVARVAL point at the parent by --SEQ (empty for DM, whose key is USUBJID); text over 200
characters is split into QNAM, QNAM1, QNAM2, … as the SDTMIG prescribes.
"""
from __future__ import annotations

import pandas as pd

from .findings import format_number

SUPP_COLUMNS = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL",
                "QORIG", "QEVAL"]


def split_text(text: str, size: int = 200) -> list[str]:
    """Split at the last space before `size` where there is one, so words stay whole."""
    parts = []
    while len(text) > size:
        cut = text.rfind(" ", 0, size + 1)
        cut = cut if cut > 0 else size
        parts.append(text[:cut])
        text = text[cut:].lstrip(" ") if cut < size or text[cut:cut + 1] == " " else text[cut:]
    parts.append(text)
    return parts


def continuation_qnam(qnam: str, n: int) -> str:
    """QNAM, then QNAM1, QNAM2 …; the base is shortened so the name stays within 8 characters."""
    if n == 0:
        return qnam
    suffix = str(n)
    return qnam[: 8 - len(suffix)] + suffix


def build_supp(domain: str, data: pd.DataFrame, qualifiers: dict[str, dict]) -> pd.DataFrame:
    """`qualifiers`: QNAM → {'values': Series aligned with data, 'label', 'orig', 'eval'}."""
    seq_var = f"{domain}SEQ"
    rows = []
    for qnam, q in qualifiers.items():
        values = q["values"]
        if pd.api.types.is_numeric_dtype(values):
            values = values.map(lambda v: "" if pd.isna(v) else format_number(float(v)))
        values = values.fillna("").astype(str)
        present = values != ""
        if not present.any():
            continue
        sub = data.loc[present.to_numpy()]
        vals = values[present]
        idvar = "" if domain == "DM" else seq_var
        idval = [""] * len(sub) if domain == "DM" else [format_number(float(x)) for x in sub[seq_var]]
        for (study, subj), iv, val in zip(sub[["STUDYID", "USUBJID"]].itertuples(index=False),
                                          idval, vals):
            for n, piece in enumerate(split_text(val)):
                rows.append([study, domain, subj, idvar, iv, continuation_qnam(qnam, n), q["label"],
                             piece, q.get("orig", "CRF"), q.get("eval", "")])
    supp = pd.DataFrame(rows, columns=SUPP_COLUMNS)
    if supp.empty:
        return supp
    # IDVARVAL is text but sorts numerically within IDVAR so that SEQ 10 follows SEQ 9.
    supp["__num__"] = pd.to_numeric(supp["IDVARVAL"], errors="coerce")
    supp = supp.sort_values(["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "__num__", "IDVARVAL", "QNAM"],
                            kind="stable").drop(columns="__num__")
    return supp.reset_index(drop=True)
