"""TS (Trial Summary) from study.yaml, with the parameters a regulator checks first filled in.

SDTMVER, the CT version, and SSTDTC (the earliest informed consent, when not declared) are added
from what the conversion itself knows; values drawn from a codelist get their C-code in TSVALCD.
"""
from __future__ import annotations

import pandas as pd

from ..errors import Issues

# Parameters whose value comes from a CDISC codelist (TSPARMCD → value codelist).
VALUE_CODELISTS = {"TPHASE": "TPHASE", "TTYPE": "TTYPE", "SEXPOP": "SEXPOP", "TBLIND": "TBLIND",
                   "TCNTRL": "TCNTRL", "ADAPT": "NY", "RANDOM": "NY", "HLTSUBJI": "NY",
                   "INTMODEL": "INTMODEL", "INTTYPE": "INTTYPE", "STYPE": "STYPE",
                   "ROUTE": "ROUTE", "DOSFRM": "FRM", "DOSU": "UNIT", "DOSFRQ": "FREQ",
                   "AGEU": "AGEU", "TDIGRP": "NY", "EXTTIND": "NY", "PIPIND": "NY",
                   "RDIND": "NY", "ONGOSIND": "NY", "NCOMPIND": "NY"}


def build_ts(study, ct, dm: pd.DataFrame | None, issues: Issues) -> pd.DataFrame:
    params = [dict(p) for p in study.trial_summary]
    given = {p["parmcd"] for p in params}
    if "SSTDTC" not in given and dm is not None and "RFICDTC" in dm.columns:
        dates = dm["RFICDTC"].fillna("").astype(str)
        dates = dates[dates != ""]
        if len(dates):
            params.insert(0, {"parmcd": "SSTDTC", "value": min(d[:10] for d in dates)})
    if "SDTMVER" not in given:
        params.append({"parmcd": "SDTMVER", "value": "2.0"})
    if "SDTIGVER" not in given:
        params.append({"parmcd": "SDTIGVER", "value": study.sdtmig})
    if "TITLE" not in given:
        params.append({"parmcd": "TITLE", "value": study.title})
    names = ct.codelist("TSPARM")
    codes = ct.codelist("TSPARMCD")
    rows, counts = [], {}
    for p in params:
        parmcd = p["parmcd"]
        if parmcd not in codes.values:
            issues.error(f"trial_summary: '{parmcd}' is not a TSPARMCD term", file="study.yaml",
                         value=parmcd)
            continue
        parm = ct.paired_value("TSPARMCD", parmcd, "TSPARM") or ""
        if "value" not in p and "null_flavor" not in p:
            issues.error(f"trial_summary: {parmcd} needs `value:` or `null_flavor:`", file="study.yaml")
            continue
        if "null_flavor" in p:  # no value to give: say why, in TSVALNF (ISO 21090 null flavor)
            counts[parmcd] = counts.get(parmcd, 0) + 1
            rows.append({"STUDYID": study.study_id, "DOMAIN": "TS", "TSSEQ": float(counts[parmcd]),
                         "TSPARMCD": parmcd, "TSPARM": parm, "TSVAL": "", "TSVALNF": p["null_flavor"],
                         "TSVALCD": "", "TSVCDREF": "", "TSVCDVER": ""})
            continue
        value = str(p["value"])
        valcd, ref, ver = p.get("code", ""), p.get("ref", ""), p.get("version", "")
        cl_name = p.get("codelist") or VALUE_CODELISTS.get(parmcd)
        if cl_name and not valcd:
            cl = ct.codelist(cl_name)
            term = cl.lookup(value)
            if term is None:
                if cl.extensible:
                    issues.warning(f"trial_summary: {parmcd} value '{value}' is not a term of "
                                   f"{cl.short_name}; written without TSVALCD", file="study.yaml")
                else:
                    issues.error(f"trial_summary: {parmcd} value '{value}' is not in codelist "
                                 f"{cl.short_name} ({cl.code})", file="study.yaml", value=value)
                    continue
            else:
                value = term
                valcd = next((t.code for t in cl.terms if t.value == term), "")
                ref, ver = "CDISC CT", ct.version
        counts[parmcd] = counts.get(parmcd, 0) + 1
        rows.append({"STUDYID": study.study_id, "DOMAIN": "TS", "TSSEQ": float(counts[parmcd]),
                     "TSPARMCD": parmcd, "TSPARM": parm, "TSVAL": value, "TSVALNF": "", "TSVALCD": valcd,
                     "TSVCDREF": ref, "TSVCDVER": ver})
    del names
    ts = pd.DataFrame(rows, columns=["STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM", "TSVAL",
                                     "TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"])
    return ts
