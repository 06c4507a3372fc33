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
    idvar = "" if domain == "DM" else seq_var
    if idvar:  # IDVARVAL is text: each distinct --SEQ formatted once
        seqs = data[seq_var]
        idval_all = seqs.map({v: format_number(float(v)) for v in seqs.dropna().unique()}).fillna("")
    else:
        idval_all = pd.Series("", index=data.index)
    parts = []
    for qnam, q in qualifiers.items():
        values = q["values"]
        if pd.api.types.is_numeric_dtype(values):
            values = values.map({v: format_number(float(v)) for v in values.dropna().unique()})
        values = values.fillna("").astype(str)
        present = (values != "").to_numpy()
        if not present.any():
            continue
        part = pd.DataFrame({"STUDYID": data["STUDYID"].to_numpy()[present],
                             "RDOMAIN": domain,
                             "USUBJID": data["USUBJID"].to_numpy()[present],
                             "IDVAR": idvar,
                             "IDVARVAL": idval_all.to_numpy()[present],
                             "QVAL": values.to_numpy()[present]})
        # Text over 200 characters becomes QNAM, QNAM1, QNAM2 … (only those rows are split).
        pieces = part["QVAL"].map(lambda v: split_text(v) if len(v) > 200 else [v])
        part = part.assign(QVAL=pieces).explode("QVAL")
        n = part.groupby(level=0).cumcount()
        part["QNAM"] = [continuation_qnam(qnam, k) for k in n] if (n > 0).any() else qnam
        part["QLABEL"] = q["label"]
        part["QORIG"] = q.get("orig", "CRF")
        part["QEVAL"] = q.get("eval", "")
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=SUPP_COLUMNS)
    supp = pd.concat(parts, ignore_index=True)[SUPP_COLUMNS]
    # IDVARVAL is text but sorts numerically within IDVAR so that SEQ 10 follows SEQ 9.
    supp["__num__"] = pd.to_numeric(supp["IDVARVAL"], errors="coerce")
    supp = supp.sort_values(["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "__num__", "IDVARVAL", "QNAM"],
                            kind="stable").drop(columns="__num__")
    return supp.reset_index(drop=True)
