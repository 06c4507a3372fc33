"""Defect catalogue of the cross-dataset rules (SD04xx, rules_cross.py).

Each case starts from the clean folder (our conversion of the bundled study), breaks one thing with
`edit` (or writes a dataset the bundled study lacks: TA, a split LB with its SUPPLBCH), and states
every SD04xx finding the break must give beyond the clean folder's: rule, dataset, variable, row and
value, plus words the message must contain.  Nothing else of the family may change, so each case
also shows that a rule fires on the broken place only.  Where one break is necessarily two
inconsistencies (an EX date outside RFXSTDTC-RFXENDTC also moves the first/last exposure), the case
lists both.  Only the SD04xx rules run (`only=`), which keeps the file fast and independent of the
other families.

The CDISC pilot study (session fixture `pilot_sdtm`) then shows the rules on a sponsor's data, with
its split LB/QS datasets and SUPPLBCH/SUPPLBHE/SUPPLBUR: each finding there was reviewed, and each
error is a real defect of that data (see `test_pilot_study`).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import validation_kit as vk
from sdtm_rA.io import xpt
from sdtm_rA.validation.data import load_folder
from sdtm_rA.validation.engine import load_rules, run_rules
from sdtm_rA.validation.model import RULES

load_rules()
MINE = sorted(r for r in RULES if r.startswith("SD04"))

# The clean folder's own SD04xx findings: none. (TS carries PCLAS with TSVALNF = NA, since the MSC
# product has no MED-RT established pharmacologic class; without it SD0431 would fire.)
CLEAN_KNOWN: set = set()


def findings(folder: Path) -> pd.DataFrame:
    f = vk.run(folder, only=MINE)
    return f[f["rule"] != "SYS0001"].reset_index(drop=True)


def keys(f: pd.DataFrame) -> set[tuple]:
    return {(r.rule, r.dataset, r.variable, int(r.row), r.value) for r in f.itertuples()}


def write(folder: Path, name: str, df: pd.DataFrame, label: str | None = None) -> None:
    """Write a new dataset into the folder as XPT v5 (labels = names)."""
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].fillna("").astype(str)
    variables = {c: xpt.XptVariable(c, c, "Num" if pd.api.types.is_numeric_dtype(df[c]) else "Char")
                 for c in df.columns}
    xpt.write_xpt(df.reset_index(drop=True), Path(folder) / f"{name.lower()}.xpt", name=name.upper(),
                  label=label or name, variables=variables, created=dt.datetime(2024, 1, 1))


def set_values(*changes):
    """An edit function setting values at 1-based rows: (column, row, value), ..."""
    def fn(df):
        for col, row, value in changes:
            df.loc[row - 1, col] = value
    return fn


def append_copy(row, **values):
    """An edit function appending a copy of 1-based `row` with some values changed."""
    def fn(df):
        new = df.iloc[[row - 1]].copy()
        for col, value in values.items():
            new[col] = value
        return pd.concat([df, new], ignore_index=True)
    return fn


def ts_row(folder: Path, parmcd: str) -> int:
    df, _ = vk.read(folder, "TS")
    return int(df.index[df["TSPARMCD"] == parmcd][0]) + 1


def ts_set(parmcd: str, **values):
    def fn(df):
        i = df.index[df["TSPARMCD"] == parmcd][0]
        for col, value in values.items():
            df.loc[i, col] = value
    return fn


def ts_drop(parmcd: str):
    return lambda df: df[df["TSPARMCD"] != parmcd].reset_index(drop=True)


TA_COLUMNS = ["STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH", "TATRANS", "EPOCH"]
ARM = "BM-cMSC 1x10^6 cells/kg IV, 3 infusions"


def add_ta(folder: Path) -> None:
    rows = [("RAMSC01", "TA", "BMCMSC", ARM, 1.0, "SCRN", "Screening", "", "", "SCREENING"),
            ("RAMSC01", "TA", "BMCMSC", ARM, 2.0, "BMCMSC", "BM-cMSC", "", "", "TREATMENT"),
            ("RAMSC01", "TA", "BMCMSC", ARM, 3.0, "FU", "Follow-up", "", "", "FOLLOW-UP")]
    write(folder, "TA", pd.DataFrame(rows, columns=TA_COLUMNS), "Trial Arms")


def split_lb(folder: Path, supp_rows) -> None:
    """Replace LB by LBCH (chemistry) + LBHE (the rest) and add SUPPLBCH with `supp_rows`
    [(USUBJID, LBSEQ)]: the split of the CDISC pilot."""
    lb, _ = vk.read(folder, "LB")
    for col in lb.columns:
        if not pd.api.types.is_numeric_dtype(lb[col]):
            lb[col] = lb[col].fillna("").astype(str)
    (Path(folder) / "lb.xpt").unlink()
    chem = lb["LBCAT"] == "CHEMISTRY"
    write(folder, "LBCH", lb[chem].copy(), "Laboratory Test Results - Chemistry")
    write(folder, "LBHE", lb[~chem].copy(), "Laboratory Test Results - Other")
    supp = pd.DataFrame([{"STUDYID": "RAMSC01", "RDOMAIN": "LB", "USUBJID": u, "IDVAR": "LBSEQ",
                          "IDVARVAL": str(seq), "QNAM": "LBTMSHI", "QLABEL": "Result / upper limit of normal",
                          "QVAL": "0.8", "QORIG": "DERIVED", "QEVAL": ""} for u, seq in supp_rows])
    write(folder, "SUPPLBCH", supp, "Supplemental Qualifiers for LB")


def lb_seq(folder: Path, cat: str, which: int = 0) -> tuple[str, int]:
    lb, _ = vk.read(folder, "LB")
    r = lb[lb["LBCAT"] == cat].iloc[which]
    return r["USUBJID"], int(r["LBSEQ"])


# --------------------------------------------------------------------------- the catalogue
# case id -> (break(folder), expected new findings {(rule, dataset, variable, row, value)}, message words)

def c_usubjid_not_in_dm(f):
    vk.edit(f, "SUPPDM", set_values(("USUBJID", 2, "RAMSC01-101-099")))
    return {("SD0401", "SUPPDM", "USUBJID", 2, "RAMSC01-101-099")}, ["no DM record"]


def c_usubjid_not_in_dm_split_part(f):
    u, seq = lb_seq(f, "CHEMISTRY")
    split_lb(f, [(u, seq)])
    vk.edit(f, "LBHE", append_copy(1, USUBJID="RAMSC01-999-999", LBSEQ=999.0))
    n = len(vk.read(f, "LBHE")[0])
    # the new subject has no SV visits either: SD0411 names the same part and row
    return ({("SD0401", "LBHE", "USUBJID", n, "RAMSC01-999-999"),
             ("SD0411", "LBHE", "VISITNUM", n, "1")}, ["LBHE"])


def c_studyid(f):
    vk.edit(f, "LB", set_values(("STUDYID", 3, "RAMSC02")))
    return {("SD0402", "LB", "STUDYID", 3, "RAMSC02")}, ["'RAMSC01'"]


def c_dm_duplicate(f):
    vk.edit(f, "DM", append_copy(2))
    return {("SD0403", "DM", "USUBJID", 7, "RAMSC01-101-002")}, ["DM row 2", "one record per subject"]


def c_subjid_not_unique(f):
    vk.edit(f, "DM", set_values(("SUBJID", 3, "001")))
    return {("SD0404", "DM", "SUBJID", 3, "001")}, ["RAMSC01-101-001"]


def c_rfxstdtc(f):
    # row 2 one day early; row 3 date-only of the right day agrees at the common precision
    vk.edit(f, "DM", set_values(("RFXSTDTC", 2, "2021-07-11"), ("RFXSTDTC", 3, "2021-10-20")))
    return {("SD0405", "DM", "RFXSTDTC", 2, "2021-07-11")}, ["2021-07-12T10:15", "EX row 4", "EXDOSE > 0"]


def c_rfxendtc(f):
    vk.edit(f, "DM", set_values(("RFXENDTC", 1, "2021-06-08")))
    return {("SD0406", "DM", "RFXENDTC", 1, "2021-06-08")}, ["2021-06-07T10:45", "EX row 3"]


def c_rfxendtc_zero_dose(f):
    # the last infusion given with dose 0 is no exposure: the last one is then EX row 2
    vk.edit(f, "EX", set_values(("EXDOSE", 3, 0.0)))
    return {("SD0406", "DM", "RFXENDTC", 1, "2021-06-07T10:45")}, ["2021-05-10T10:35", "EXDOSE > 0"]


def c_rfxstdtc_empty(f):
    vk.edit(f, "DM", set_values(("RFXSTDTC", 5, "")))
    return {("SD0405", "DM", "RFXSTDTC", 5, "")}, ["is empty", "2021-10-13T10:00"]


def c_rfstdtc(f):
    vk.edit(f, "DM", set_values(("RFSTDTC", 4, "2021-09-14")))
    return {("SD0407", "DM", "RFSTDTC", 4, "2021-09-14")}, ["2021-09-13T10:20", "first dose"]


def c_age(f):
    # row 1 wrong; row 5 (born '1980') is 40 or 41 at both reference dates: 45 is wrong but
    # ambiguous ages are not checked, so only row 1 fires
    vk.edit(f, "DM", set_values(("AGE", 1, 50.0), ("AGE", 5, 40.0)))
    return {("SD0408", "DM", "AGE", 1, "50")}, ["46 at RFSTDTC", "46 at RFICDTC", "1975-02-14"]


def c_ex_outside(f):
    # the third infusion's end moved after RFXENDTC: also the last exposure moves (SD0406)
    vk.edit(f, "EX", set_values(("EXENDTC", 3, "2021-06-09T10:00")))
    return ({("SD0409", "EX", "EXENDTC", 3, "2021-06-09T10:00"),
             ("SD0406", "DM", "RFXENDTC", 1, "2021-06-07T10:45")}, ["after DM.RFXENDTC"])


def c_ex_before(f):
    vk.edit(f, "EX", set_values(("EXSTDTC", 4, "2021-07-11T10:15"), ("EXENDTC", 4, "2021-07-11T10:50")))
    # the first exposure moves too: RFXSTDTC (SD0405) and, RFSTDTC being the first dose in this
    # study, RFSTDTC (SD0407) no longer match it
    return ({("SD0409", "EX", "EXSTDTC", 4, "2021-07-11T10:15"),
             ("SD0405", "DM", "RFXSTDTC", 2, "2021-07-12T10:15"),
             ("SD0407", "DM", "RFSTDTC", 2, "2021-07-12T10:15")}, ["before DM.RFXSTDTC"])


def c_after_rfpendtc(f):
    vk.edit(f, "LB", set_values(("LBDTC", 10, "2023-01-01")))
    return {("SD0410", "LB", "LBDTC", 10, "2023-01-01")}, ["RFPENDTC '2021-09-28'"]


def c_visitnum_not_in_sv(f):
    # row 10 at a visit SV does not have; row 1 too, but NOT DONE records are exempt
    def fn(df):
        df.loc[9, "VISITNUM"] = 9.0
        df.loc[0, ["VISITNUM", "LBSTAT", "LBORRES", "LBSTRESC", "LBSTRESN"]] = [9.0, "NOT DONE", "", "", None]
    vk.edit(f, "LB", fn)
    return {("SD0411", "LB", "VISITNUM", 10, "9")}, ["not a visit of the subject in SV"]


def c_visit_name(f):
    vk.edit(f, "LB", set_values(("VISIT", 10, "WEEK 99")))
    return {("SD0412", "LB", "VISIT", 10, "WEEK 99")}, ["'WEEK 16'"]


def c_arms(f):
    add_ta(f)
    vk.edit(f, "DM", set_values(("ARMCD", 2, "XYZ"), ("ACTARM", 3, "Other arm"),
                                ("ARMCD", 6, "SCRNFAIL"), ("ARM", 6, "Screen Failure")))
    return ({("SD0413", "DM", "ARMCD", 2, "XYZ"), ("SD0413", "DM", "ACTARM", 3, "Other arm")},
            ["not an arm of TA", "BMCMSC"])


def c_death(f):
    vk.edit(f, "AE", set_values(("AEOUT", 1, "FATAL")))
    return {("SD0414", "DM", "DTHFL", 1, "")}, ["AE row 1", "AEOUT = 'FATAL'"]


def c_supp_parent(f):
    vk.edit(f, "SUPPAE", set_values(("IDVARVAL", 2, "99")))
    return {("SD0420", "SUPPAE", "IDVARVAL", 2, "99")}, ["AESEQ = 99"]


def c_supp_split_parent(f):
    # SUPPLBCH qualifies LBCH records (and one LBHE record: the parent is looked up in the whole LB
    # domain); only the record whose LBSEQ exists nowhere fires, and the split itself never does
    u1, s1 = lb_seq(f, "CHEMISTRY", 0)
    u2, s2 = lb_seq(f, "CHEMISTRY", 5)
    u3, s3 = lb_seq(f, "HEMATOLOGY", 0)
    split_lb(f, [(u1, s1), (u2, s2), (u3, s3), (u1, 999)])
    return {("SD0420", "SUPPLBCH", "IDVARVAL", 4, "999")}, ["LBCH, LBHE", "LBSEQ = 999"]


def c_supp_idvar(f):
    vk.edit(f, "SUPPAE", set_values(("IDVAR", 3, "AEXSEQ")))
    return {("SD0421", "SUPPAE", "IDVAR", 3, "AEXSEQ")}, ["usually AESEQ"]


def c_supp_idvar_presence(f):
    vk.edit(f, "SUPPDM", set_values(("IDVAR", 1, "DMSEQ"), ("IDVARVAL", 1, "1")))
    vk.edit(f, "SUPPAE", set_values(("IDVAR", 4, ""), ("IDVARVAL", 4, "")))
    return ({("SD0422", "SUPPDM", "IDVAR", 1, "DMSEQ"), ("SD0422", "SUPPAE", "IDVAR", 4, "")},
            ["IDVAR"])


def c_supp_duplicate(f):
    vk.edit(f, "SUPPAE", append_copy(1, QVAL="POSSIBLY"))
    return {("SD0423", "SUPPAE", "QNAM", 10, "AERELCOL")}, ["SUPPAE row 1"]


def c_supp_qnam_parent_variable(f):
    vk.edit(f, "SUPPAE", set_values(("QNAM", 1, "AESEV")))
    return {("SD0424", "SUPPAE", "QNAM", 1, "AESEV")}, ["AE.AESEV"]


def c_supp_qnam_invalid(f):
    vk.edit(f, "SUPPEX", set_values(("QNAM", 1, "EXTOTCELLS"), ("QNAM", 3, "1EXVOL")))
    return ({("SD0425", "SUPPEX", "QNAM", 1, "EXTOTCELLS"), ("SD0425", "SUPPEX", "QNAM", 3, "1EXVOL")},
            ["valid XPT variable name"])


def c_supp_qlabel(f):
    label = "Total Number of Mesenchymal Cells Infused (10^6)"
    vk.edit(f, "SUPPEX", set_values(("QLABEL", 2, label)))
    return {("SD0426", "SUPPEX", "QLABEL", 2, label)}, ["48 characters", "at most 40"]


def c_supp_population_flag(f):
    vk.edit(f, "SUPPDM", append_copy(1, QNAM="SAFFL", QLABEL="Safety Population Flag", QVAL="Y"))
    return {("SD0427", "SUPPDM", "QNAM", 10, "SAFFL")}, ["ADSL"]


def c_supp_rdomain(f):
    vk.edit(f, "SUPPAE", set_values(("RDOMAIN", 1, "EX"), ("IDVAR", 1, "EXSEQ")))
    return {("SD0428", "SUPPAE", "RDOMAIN", 1, "EX")}, ["must be 'AE'"]


def c_ts_no_sstdtc(f):
    vk.edit(f, "TS", ts_drop("SSTDTC"))
    return {("SD0430", "TS", "TSPARMCD", 0, "SSTDTC")}, ["rejects"]


def c_no_ts(f):
    (Path(f) / "ts.xpt").unlink()
    return {("SD0430", "TS", "", 0, "")}, ["no TS dataset"]


def c_ts_required(f):
    vk.edit(f, "TS", ts_drop("TITLE"))
    return {("SD0431", "TS", "TSPARMCD", 0, "TITLE")}, ["Trial Title"]


def c_ts_val_or_nf(f):
    r1, r2 = ts_row(f, "PLANSUB"), ts_row(f, "ACTSUB")

    def fn(df):
        df.loc[r1 - 1, "TSVAL"] = ""
        if "TSVALNF" not in df.columns:
            df.insert(list(df.columns).index("TSVAL") + 1, "TSVALNF", "")
        df.loc[r2 - 1, "TSVALNF"] = "NA"
    vk.edit(f, "TS", fn)
    return ({("SD0432", "TS", "TSVAL", r1, ""), ("SD0432", "TS", "TSVALNF", r2, "NA")},
            ["PLANSUB", "ACTSUB"])


def c_ts_parm_one_to_one(f):
    def fn(df):
        extra = df.iloc[[0, 0]].copy()
        extra["TSPARMCD"] = "XPARM"
        extra["TSPARM"] = ["Sponsor Parameter", "Sponsor Parameter Renamed"]
        extra["TSSEQ"] = [1.0, 2.0]
        return pd.concat([df, extra], ignore_index=True)
    vk.edit(f, "TS", fn)
    n = len(vk.read(f, "TS")[0])
    return {("SD0433", "TS", "TSPARM", n, "Sponsor Parameter Renamed")}, ["'Sponsor Parameter'"]


def c_ts_parm_ct(f):
    r = ts_row(f, "TPHASE")
    vk.edit(f, "TS", ts_set("TPHASE", TSPARM="Trial Phase"))
    return {("SD0434", "TS", "TSPARM", r, "Trial Phase")}, ["'Trial Phase Classification'"]


def c_ts_tsseq(f):
    def fn(df):
        extra = df[df["TSPARMCD"] == "TTYPE"].copy()
        extra["TSVAL"], extra["TSVALCD"] = "EFFICACY", "C49666"
        return pd.concat([df, extra], ignore_index=True)
    vk.edit(f, "TS", fn)
    n = len(vk.read(f, "TS")[0])
    return {("SD0435", "TS", "TSSEQ", n, "1")}, ["TTYPE"]


def c_ts_sstdtc_iso(f):
    r = ts_row(f, "SSTDTC")
    vk.edit(f, "TS", ts_set("SSTDTC", TSVAL="2021-03"))
    return {("SD0436", "TS", "TSVAL", r, "2021-03")}, ["YYYY-MM-DD"]


def c_ts_vcdref(f):
    r = ts_row(f, "INDIC")
    vk.edit(f, "TS", ts_set("INDIC", TSVCDREF=""))
    return {("SD0437", "TS", "TSVCDREF", r, "")}, ["69896004"]


def c_ts_valcd(f):
    r = ts_row(f, "TPHASE")
    vk.edit(f, "TS", ts_set("TPHASE", TSVALCD="C15601"))
    return {("SD0438", "TS", "TSVALCD", r, "C15601")}, ["expected C15600", "'PHASE II TRIAL'"]


def c_ts_vcdver(f):
    r1, r2 = ts_row(f, "TPHASE"), ts_row(f, "TTYPE")
    vk.edit(f, "TS", ts_set("TPHASE", TSVCDVER=""))
    vk.edit(f, "TS", ts_set("TTYPE", TSVCDVER="March 2025"))
    return ({("SD0439", "TS", "TSVCDVER", r1, ""), ("SD0439", "TS", "TSVCDVER", r2, "March 2025")},
            ["CT release date"])


def c_ts_val_valcd(f):
    def fn(df):
        extra = df[df["TSPARMCD"] == "INDIC"].copy()
        extra["TSPARMCD"], extra["TSPARM"], extra["TSVALCD"] = "TDIGRP", "Diagnosis Group", "12345"
        return pd.concat([df, extra], ignore_index=True)
    vk.edit(f, "TS", fn)
    n = len(vk.read(f, "TS")[0])
    return {("SD0440", "TS", "TSVALCD", n, "12345")}, ["'69896004'"]


CASES = {name[2:]: fn for name, fn in globals().items() if name.startswith("c_")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = vk.clean_folder(tmp_path_factory.mktemp("xclean"))
    return folder, findings(folder)


def test_clean_folder(clean):
    """Our conversion gives no SD04xx finding but the known conversion gaps (CLEAN_KNOWN)."""
    _, f = clean
    assert keys(f) == CLEAN_KNOWN, f[["rule", "dataset", "variable", "row", "value", "message"]].to_string()


@pytest.mark.parametrize("case", sorted(CASES))
def test_defect(case, clean, tmp_path):
    _, base = clean
    folder = vk.clean_folder(tmp_path)
    expected, words = CASES[case](folder)
    f = findings(folder)
    assert not (f["message"].str.contains("could not run")).any(), f.to_string()
    new = keys(f) - keys(base)
    assert new == expected, f[["rule", "dataset", "variable", "row", "value", "message"]].to_string()
    gone = keys(base) - keys(f)
    assert not gone or case == "no_ts", gone  # nothing of the clean folder disappears (but TS itself)
    msgs = " | ".join(f[f.apply(lambda r: (r.rule, r.dataset, r.variable, int(r.row), r.value) in expected,
                                axis=1)]["message"])
    for w in words:
        assert w in msgs, (w, msgs)


def test_messages_say_what_is_right(clean, tmp_path):
    """A few messages in full: what is wrong and what would be right."""
    folder = vk.clean_folder(tmp_path)
    vk.edit(folder, "DM", set_values(("RFXSTDTC", 2, "2021-07-11"), ("AGE", 1, 50.0)))
    f = findings(folder).set_index("rule")
    assert f.loc["SD0405", "message"] == (
        "RFXSTDTC = '2021-07-11' but the first EXSTDTC of the subject's EX records with EXDOSE > 0 (placebo "
        "records and records without EXDOSE included) is '2021-07-12T10:15' (EX row 4): RFXSTDTC must equal it "
        "(compared at the precision both have)")
    assert f.loc["SD0408", "message"] == (
        "AGE = 50 but BRTHDTC '1975-02-14' gives 46 at RFSTDTC 2021-04-12T10:05 and 46 at RFICDTC 2021-03-24: "
        "AGE must be the completed years at the reference date")
    assert f.loc["SD0405", "usubjid"] == "RAMSC01-101-002" and f.loc["SD0405", "row"] == 2


def test_odd_inputs_never_crash(tmp_path):
    """Missing columns, numbers where text is expected, an empty DM: findings or nothing, never a
    'rule could not run'."""
    folder = vk.clean_folder(tmp_path)
    vk.edit(folder, "SUPPAE", lambda df: df.assign(IDVARVAL=pd.to_numeric(df["IDVARVAL"])))  # numeric IDVARVAL
    vk.edit(folder, "SUPPEX", lambda df: df.drop(columns=["IDVAR", "QLABEL"]))
    vk.edit(folder, "EX", lambda df: df.drop(columns=["EXDOSE", "EXENDTC"]))
    vk.edit(folder, "TS", lambda df: df.drop(columns=["TSVAL", "TSPARM"]))
    vk.edit(folder, "SV", lambda df: df.assign(VISITNUM=df["VISITNUM"].map(str)))  # text VISITNUM
    f = findings(folder)
    assert not f["message"].str.contains("could not run").any(), f.to_string()
    # numeric IDVARVAL still finds its AE parents; SV's text VISITNUM still matches the numeric ones
    assert not f["rule"].isin(["SD0420", "SD0411", "SD0412"]).any(), f.to_string()

    vk.edit(folder, "DM", lambda df: df.iloc[0:0])
    f = findings(folder)
    assert not f["message"].str.contains("could not run").any(), f.to_string()
    # every subject record now lacks its DM record
    assert set(f.loc[f["rule"] == "SD0401", "dataset"]) >= {"AE", "EX", "LB", "MK", "QS", "SV", "SUPPAE"}


# --------------------------------------------------------------------------- the CDISC pilot

# Findings per rule on the CDISC pilot SDTM (CDISCPILOT01), each reviewed:
PILOT_EXPECTED = {
    # Errors, all real defects of the pilot data:
    # 4 subjects (01-704-1233, 01-705-1031, 01-705-1303, 01-705-1377) have a last EX record whose
    # EXSTDTC is the day after RFXENDTC and whose EXENDTC is empty: EX says a dosing period started
    # after the last dose DM records.  2 subjects (01-705-1018, 01-705-1382) have RFXSTDTC and an EX
    # record but an empty RFXENDTC (P21 SD1209 too).
    "SD0406": 6,
    # the same 4 EX records, seen from EX: EXSTDTC after DM.RFXENDTC (P21 SD1206).
    "SD0409": 4,
    # REGID: TSVALCD 'NCT00987090' without TSVCDREF; the dictionary name sits in TSVCDVER.
    "SD0437": 1,
    # TCNTRL, ADAPT, STYPE, HLTSUBJI, INTMODEL, INTTYPE are coded with TSVCDREF 'CDISC' but TSVCDVER is
    # empty: the CT version of the codes is not given (P21 SD1260).
    "SD0439": 6,
    # Warnings:
    # SUPPDM holds the ADSL population flags COMPLT8/16/24, EFFICACY, ITT, SAFETY (1197 records):
    # no longer SDTM since SDTMIG 3.3 (P21 SD1365).
    "SD0427": 1197,
    # TS has no SDTIGVER record.
    "SD0431": 1,
    # INDIC 'Trial Indication' and TINDTP 'Trial Indication Type': CT now names them 'Trial
    # Disease/Condition Indication' and 'Trial Intent Type'.
    "SD0434": 2,
}
# Nothing else: every USUBJID is in DM, the SUPPLBCH/SUPPLBHE/SUPPLBUR parents are all found in
# their split LB parts (CORE reports ~105,000 false issues there), 'Scrnfail' arms are the
# conventional screen-failure code, deaths in AE/DS have DTHFL = 'Y', every visit is in SV.


def test_pilot_study(pilot_sdtm):
    result = run_rules(load_folder(pilot_sdtm), only=MINE)
    f = result.findings
    f = f[f["rule"] != "SYS0001"]
    assert not f["message"].str.contains("could not run").any()
    counts = f.groupby("rule").size().to_dict()
    assert counts == PILOT_EXPECTED, counts
    sev = f.groupby("rule")["severity"].first().to_dict()
    assert {r for r, s in sev.items() if s == "error"} == {"SD0406", "SD0409", "SD0437", "SD0439"}
    s406 = f[f["rule"] == "SD0406"]
    assert set(s406["usubjid"]) == {"01-704-1233", "01-705-1031", "01-705-1303", "01-705-1377",
                                    "01-705-1018", "01-705-1382"}
    assert set(f.loc[f["rule"] == "SD0409", "usubjid"]) == {"01-704-1233", "01-705-1031", "01-705-1303",
                                                           "01-705-1377"}
    assert set(f.loc[f["rule"] == "SD0439", "message"].str.extract(r"code of (\w+)")[0]) == {
        "TCNTRL", "ADAPT", "STYPE", "HLTSUBJI", "INTMODEL", "INTTYPE"}
    assert set(f.loc[f["rule"] == "SD0427", "value"]) == {"COMPLT8", "COMPLT16", "COMPLT24", "EFFICACY",
                                                        "ITT", "SAFETY"}
    assert result.seconds < 30
