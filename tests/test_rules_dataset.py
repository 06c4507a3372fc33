"""Defect catalogue of the dataset- and variable-level structure rules (SD01xx, rules_dataset.py).

Each case starts from the clean folder (our conversion of the bundled study, which gives no SD01xx
finding), breaks one thing, and states every SD01xx finding the break must give: rule, dataset,
variable, row and value, plus words the message must contain. Nothing else of the family may fire,
so each case also shows that a rule fires on the broken place only. Only the SD01xx rules run
(`only=`), which keeps the file fast and independent of the other families.

The CDISC pilot study (session fixture `pilot_sdtm`) then shows the rules on a sponsor's data: each
error there was reviewed and is a real defect of that data (see `test_pilot_study`).
"""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

import validation_kit as vk
from sdtm_rA.io import xpt
from sdtm_rA.validation.data import load_folder
from sdtm_rA.validation.engine import load_rules, run_rules
from sdtm_rA.validation.model import RULES

load_rules()
MINE = sorted(r for r in RULES if r.startswith("SD01"))
KEY = ["rule", "dataset", "variable", "row", "value"]


def findings(folder: Path) -> pd.DataFrame:
    """SD01xx findings of a folder (the loader's own SYS0001 findings left out)."""
    f = vk.run(folder, only=MINE)
    return f[f["rule"] != "SYS0001"].reset_index(drop=True)


def keys(f: pd.DataFrame) -> set[tuple]:
    return {(r.rule, r.dataset, r.variable, int(r.row), r.value) for r in f.itertuples()}


def rewrite(folder: Path, name: str, *, label: str | None = None, var_labels: dict | None = None,
            lengths: dict | None = None) -> None:
    """Rewrite dataset `name` unchanged but for its dataset label, variable labels or declared lengths."""
    path = Path(folder) / f"{name.lower()}.xpt"
    df, meta = pyreadstat.read_xport(str(path))
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].fillna("").astype(str)
    labels = {**meta.column_names_to_labels, **(var_labels or {})}
    variables = {c: xpt.XptVariable(c, labels[c], "Num" if pd.api.types.is_numeric_dtype(df[c]) else "Char",
                                    (lengths or {}).get(c)) for c in df.columns}
    xpt.write_xpt(df, path, name=name.upper(), label=label or meta.file_label, variables=variables,
                  created=dt.datetime(2024, 1, 1))


def set_value(name_col_row_value):
    """An edit function setting values at 1-based rows: [(column, row, value), ...]."""
    def fn(df):
        for col, row, value in name_col_row_value:
            df.loc[row - 1, col] = value
    return fn


def move_to_end(col):
    return lambda df: df[[c for c in df.columns if c != col] + [col]]


def insert_after(after, col, value):
    def fn(df):
        df.insert(list(df.columns).index(after) + 1, col, value)
    return fn


# --------------------------------------------------------------------------- the catalogue
# case id -> (break(folder), expected findings {(rule, dataset, variable, row, value)}, message words)


def _drop_dm(folder):
    (folder / "dm.xpt").unlink()


def _rename(old, new):
    return lambda folder: (folder / f"{old}.xpt").rename(folder / f"{new}.xpt")


def _ae_non_ascii(folder):
    vk.edit(folder, "AE", set_value([("AETERM", 2, "C\u00e9phal\u00e9e"), ("AETERM", 3, "HEAD\tACHE")]),
            check=False)


def _ae_250(folder):
    vk.edit(folder, "AE", set_value([("AETERM", 1, "X" * 250)]), check=False)


def _lbstresn_char(folder):
    def fn(df):
        df["LBSTRESN"] = df["LBSTRESN"].map(lambda v: "" if v != v else f"{v:g}")
    vk.edit(folder, "LB", fn)


def _lowercase_variable(folder):
    vk.edit(folder, "LB", lambda df: df.assign(lbnote="x"), check=False)


def _move_sv_to_end(folder):
    vk.edit(folder, "SV", move_to_end("VISITNUM"))


CASES = {
    "dm_missing": (
        _drop_dm,
        {("SD0101", "DM", "", 0, "")},
        ["no DM (Demographics) dataset"]),
    "empty_dataset": (
        lambda f: vk.edit(f, "SV", lambda df: df.iloc[0:0]),
        {("SD0102", "SV", "", 0, "")},
        ["SV has no records"]),
    "dataset_name_too_long": (
        _rename("mk", "mkmuscle1"),
        {("SD0103", "MKMUSCLE1", "", 0, "MKMUSCLE1")},
        ["9 characters long (at most 8)"]),
    "dataset_not_named_after_domain": (
        _rename("mk", "musc"),
        {("SD0104", "MUSC", "DOMAIN", 0, "MK")},
        ["dataset MUSC does not begin with its DOMAIN value 'MK': name the dataset after its domain "
         "(mk.xpt, or mkxx.xpt for a split part); on all 2352 records"]),
    "dataset_name_bad_character": (
        _rename("sv", "sv-1"),
        {("SD0103", "SV-1", "", 0, "SV-1")},
        ["letters A-Z and digits only"]),
    "domain_value_wrong": (
        lambda f: vk.edit(f, "LB", set_value([("DOMAIN", 5, "LX"), ("DOMAIN", 9, "AE")])),
        {("SD0104", "LB", "DOMAIN", 5, "LX"), ("SD0104", "LB", "DOMAIN", 9, "AE"),
         ("SD0134", "LB", "DOMAIN", 5, "LX")},   # 'LX' is not a CDISC domain code either
        ["DOMAIN = 'LX' in dataset LB: expected 'LB'"]),
    "dataset_label_differs": (
        lambda f: rewrite(f, "AE", label="AE listing"),
        {("SD0106", "AE", "", 0, "AE listing")},
        ["'AE listing' differs from the SDTMIG 3.4 label 'Adverse Events'"]),
    "required_variable_missing": (
        lambda f: vk.edit(f, "LB", lambda df: df.drop(columns="LBTESTCD")),
        {("SD0111", "LB", "LBTESTCD", 0, "")},
        ["LBTESTCD (Lab Test or Examination Short Name) is a Required variable of LB"]),
    "supp_required_variable_missing": (
        lambda f: vk.edit(f, "SUPPAE", lambda df: df.drop(columns="QORIG")),
        {("SD0111", "SUPPAE", "QORIG", 0, "")},
        ["QORIG (Origin) is a Required variable of SUPPQUAL"]),
    "expected_variable_missing": (
        lambda f: vk.edit(f, "LB", lambda df: df.drop(columns="LBORRESU")),
        {("SD0112", "LB", "LBORRESU", 0, "")},
        ["LBORRESU (Original Units) is an Expected variable of LB", "add it (null where there is no value)"]),
    "variable_not_allowed": (
        lambda f: vk.edit(f, "LB", insert_after("LBTEST", "LBFOO", "x")),
        {("SD0113", "LB", "LBFOO", 0, "")},
        ["LBFOO is not a variable of LB", "move it to SUPPLB (QNAM = 'LBFOO')"]),
    "variable_order": (
        lambda f: vk.edit(f, "LB", move_to_end("LBTESTCD")),
        {("SD0115", "LB", "LBTESTCD", 0, "LBTESTCD")},
        ["LBTESTCD is out of SDTMIG 3.4 order: it belongs after LBSEQ and before LBTEST",
         "expected order: STUDYID, DOMAIN, USUBJID, LBSEQ, LBTESTCD, LBTEST,"]),
    "variable_order_sv": (
        _move_sv_to_end,
        {("SD0115", "SV", "VISITNUM", 0, "VISITNUM")},
        ["VISITNUM is out of SDTMIG 3.4 order: it belongs after USUBJID and before VISIT"]),
    "variable_type": (
        _lbstresn_char,
        {("SD0116", "LB", "LBSTRESN", 0, "Char")},
        ["LBSTRESN is Char in LB but Num in SDTMIG 3.4"]),
    "variable_name_lower_case": (
        _lowercase_variable,
        {("SD0117", "LB", "lbnote", 0, "lbnote"), ("SD0113", "LB", "lbnote", 0, "")},
        ["variable name lbnote must be upper-case letters"]),
    "variable_label_differs": (
        lambda f: rewrite(f, "LB", var_labels={"LBTEST": "Lab Test Name"}),
        {("SD0119", "LB", "LBTEST", 0, "Lab Test Name")},
        ["label of LBTEST is 'Lab Test Name' but 'Lab Test or Examination Name' in SDTMIG 3.4"]),
    "length_larger_than_data": (
        lambda f: rewrite(f, "LB", lengths={"LBTESTCD": 20}),
        {("SD0121", "LB", "LBTESTCD", 0, "20")},
        ["LBTESTCD has length 20 but its longest value is 7 bytes: set the length to 7"]),
    "length_over_200": (
        _ae_250,
        {("SD0122", "AE", "AETERM", 0, "250")},
        ["AETERM has length 250", "at most 200 bytes"]),
    "non_ascii": (
        _ae_non_ascii,
        {("SD0131", "AE", "AETERM", 2, "C\u00e9phal\u00e9e"), ("SD0131", "AE", "AETERM", 3, "HEAD\tACHE")},
        ["non-ASCII character '\u00e9' (U+00E9 LATIN SMALL LETTER E WITH ACUTE) at position 2 (1 more after it)",
         "e.g. 'Cephalee'", "non-printable character U+0009 (tab) at position 5", "e.g. 'HEAD ACHE'"]),
    "leading_space": (
        lambda f: vk.edit(f, "AE", set_value([("AETERM", 4, "  vomiting")])),
        {("SD0132", "AE", "AETERM", 4, "  vomiting")},
        ["AETERM = '  vomiting' begins with a space: remove leading spaces ('vomiting')"]),
    "dot_for_missing": (
        lambda f: vk.edit(f, "LB", set_value([("LBORRES", 6, "."), ("LBNAM", 7, ".")])),
        {("SD0133", "LB", "LBORRES", 6, "."), ("SD0133", "LB", "LBNAM", 7, ".")},
        ["LBORRES = '.': a missing value must be null (empty), not '.'"]),
    # Split datasets are parts of their parent domain: LB written as lbch.xpt (DOMAIN = LB, the LB
    # variable names and labels, label 'Laboratory Test Results') is not a problem at all.
    "split_dataset_is_fine": (
        _rename("lb", "lbch"),
        set(),
        []),
}
CASES["model_permissible_variable"] = (
    # AEDTC is not in the IG table of AE but the SDTM model allows --DTC for Events; put where the
    # model places it (after EPOCH, before AESTDTC), it is in order.
    lambda f: vk.edit(f, "AE", insert_after("EPOCH", "AEDTC", "2021-05-01")),
    {("SD0114", "AE", "AEDTC", 0, "")},
    ["AEDTC is not in the SDTMIG 3.4 AE table but the SDTM model allows it for the Events class"])

# The bundled study's EX mapping uses VISITNUM and VISIT, which the SDTMIG EX table omits but the
# SDTM model allows for Interventions (mappings/ex.yaml): Pinnacle 21 notes them (SD1076), so do we.
CLEAN = {("SD0114", "EX", "VISIT", 0, ""), ("SD0114", "EX", "VISITNUM", 0, "")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return vk.clean_folder(tmp_path_factory.mktemp("clean"))


def test_clean_folder_gives_no_structure_finding(clean):
    """Nothing but the two deliberate model-permissible notices; in particular no error or warning."""
    f = findings(clean)
    assert keys(f) == CLEAN, f[KEY + ["message"]].to_string()
    assert set(f["severity"]) == {"notice"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_defect(case, tmp_path):
    """The break adds exactly the expected findings and takes none of the clean ones away."""
    breaker, expected, words = CASES[case]
    folder = vk.clean_folder(tmp_path)
    breaker(folder)
    f = findings(folder)
    got = keys(f)
    assert got - CLEAN == expected and CLEAN <= got, f[KEY + ["message"]].to_string()
    new = f[[k not in CLEAN for k in zip(f.rule, f.dataset, f.variable, f.row, f.value)]]
    messages = " | ".join(new["message"])
    for w in words:
        assert w in messages, (w, messages)
    for r in new.itertuples():
        assert r.severity == RULES[r.rule].severity


# --------------------------------------------------------------------------- limits XPT cannot hold


def test_labels_and_names_beyond_xpt_limits_from_parquet(tmp_path):
    """XPT writers cut labels to 40 bytes and refuse long names, so a dataset delivered as parquet
    shows these: a 41-character label and a 10-character variable name (both also reported as
    not IG conformant), and nothing else (types and missing lengths of parquet input are fine)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = vk.clean_folder(tmp_path)
    df, meta = pyreadstat.read_xport(str(folder / "lb.xpt"))
    df["LBCOMMENTS"] = "none"
    labels = {**meta.column_names_to_labels, "LBCOMMENTS": "Comments",
              "LBTEST": "Lab Test or Examination Name (full texts)"}
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [f.with_metadata({b"label": labels[f.name].encode()}) for f in table.schema]
    pq.write_table(table.cast(pa.schema(fields)), folder / "lb.parquet")
    (folder / "lb.xpt").unlink()
    f = findings(folder)
    assert keys(f) - CLEAN == {
        ("SD0118", "LB", "LBTEST", 0, labels["LBTEST"]),
        ("SD0119", "LB", "LBTEST", 0, labels["LBTEST"]),
        ("SD0117", "LB", "LBCOMMENTS", 0, "LBCOMMENTS"),
        ("SD0113", "LB", "LBCOMMENTS", 0, ""),
    }, f[KEY + ["message"]].to_string()
    msg = " | ".join(f["message"])
    assert "label of LBTEST is 41 characters long (at most 40)" in msg
    assert "variable name LBCOMMENTS is 10 characters long (at most 8)" in msg


def test_dataset_label_beyond_xpt_limits(clean):
    """A dataset label over 40 characters or with non-ASCII text (possible from a reader other
    than XPT v5, which has a 40-byte field) is an error, as is a non-ASCII variable label."""
    study = load_folder(clean)
    study.datasets["AE"].label = "Adverse Events reported during the whole study"
    study.datasets["EX"].label = "Exposition \u00e0 l'\u00e9tude"
    study.datasets["DM"].var_labels["SEX"] = "Sexe f\u00e9minin/masculin"
    f = run_rules(study, only=MINE).findings
    assert keys(f[f["rule"].isin(["SD0105", "SD0118"])]) == {
        ("SD0105", "AE", "", 0, "Adverse Events reported during the whole study"),
        ("SD0105", "EX", "", 0, "Exposition \u00e0 l'\u00e9tude"),
        ("SD0118", "DM", "SEX", 0, "Sexe f\u00e9minin/masculin"),
    }
    msg = " | ".join(f["message"])
    assert "dataset label of AE is 46 characters long (at most 40)" in msg
    assert "use ASCII only, e.g. 'Exposition a l'etude'" in msg


# --------------------------------------------------------------------------- odd input never crashes


def test_odd_input_gives_findings_not_crashes(tmp_path):
    """A numeric DOMAIN, a dataset with neither DOMAIN nor USUBJID, a custom domain and a CSV
    dataset: each rule runs (no 'rule could not run' notice) and reports what is wrong."""
    folder = vk.clean_folder(tmp_path)
    vk.edit(folder, "SV", lambda df: df.assign(DOMAIN=1.0))
    vk.edit(folder, "TS", lambda df: df.drop(columns=["DOMAIN", "STUDYID"]))
    shutil.copy(folder / "ts.xpt", folder / "xx.xpt")
    lb, _ = pyreadstat.read_xport(str(folder / "lb.xpt"))
    lb["LBSTRESN"] = lb["LBSTRESN"].map(lambda v: "" if v != v else f"{v:g}")
    lb.loc[2, "LBSTRESN"] = "n/a"
    (folder / "lb.xpt").unlink()
    lb.to_csv(folder / "lb.csv", index=False, na_rep="")
    f = findings(folder)
    assert not (f["message"].str.startswith("rule could not run")).any(), f.to_string()
    got = keys(f)
    # numeric DOMAIN: the wrong type, and its value is not 'SV'
    assert ("SD0116", "SV", "DOMAIN", 0, "Num") in got
    assert {k for k in got if k[0] == "SD0104"} == {("SD0104", "SV", "DOMAIN", 0, "1")}
    assert {("SD0111", "TS", "DOMAIN", 0, ""), ("SD0111", "TS", "STUDYID", 0, "")} <= got
    # CSV carries no types: numeric columns holding numbers are fine, a text in LBSTRESN is not
    assert {k for k in got if k[0] == "SD0116" and k[1] == "LB"} == {("SD0116", "LB", "LBSTRESN", 0, "n/a")}
    # the custom domain XX has no spec: only the generic checks apply, and they find nothing
    assert not [k for k in got if k[1] == "XX"]


# --------------------------------------------------------------------------- registry


def test_rules_are_documented_and_cross_referenced():
    assert MINE, "no SD01xx rule registered"
    for rid in MINE:
        r = RULES[rid]
        assert len(r.doc) > 80 and r.title, rid
        assert r.func.__module__.endswith("rules_dataset"), rid
    for rid, ref in {"SD0101": "CORE-000581", "SD0111": "CORE-000355", "SD0112": "CORE-000334",
                     "SD0113": "CORE-000550", "SD0114": "SD1076", "SD0115": "CORE-000852",
                     "SD0116": "CORE-001082", "SD0104": "CORE-000598", "SD0103": "CORE-000293",
                     "SD0117": "CORE-000182", "SD0118": "CORE-000019", "SD0121": "SD1082",
                     "SD0131": "SD1029", "SD0132": "CORE-000867", "SD0133": "CORE-000890"}.items():
        assert ref in RULES[rid].references, (rid, ref)


# --------------------------------------------------------------------------- the CDISC pilot study


def test_pilot_study(pilot_sdtm):
    """The CDISC pilot (CDISCPILOT01, SDTMIG 3.1.2 data checked against SDTMIG 3.4): every error
    was reviewed and is a real defect of that data.

    Errors:
    * SD0113 SV.EPOCH: SV is a Special-Purpose dataset; neither the SDTMIG 3.4 SV table nor the
      SDTM v2.0 model for SV has EPOCH (CORE-000550 also raises exactly 1 issue on the pilot).
    * SD0131 TS rows 8 (TDIGRP, 'Patients with Probable Mild to Moderate Alzheimer’s Disease')
      and 28 (TITLE): a typographic apostrophe U+2019 in TSVAL: not ASCII.
    Warnings and notices (counted, not errors):
    * SD0112 (14): Expected variables the 3.1.2-era data lacks: DM ARMNRS, ACTARMUD; LBLOBXFL in
      each of LBCH/LBHE/LBUR; QSLOBXFL in each of the six QS parts; VSLOBXFL; SV SVPRESP, SVOCCUR.
    * SD0106 (5): CM 'Concomitant Medications' (IG: 'Concomitant/Prior Medications'), the three LB
      parts 'Laboratory Tests Results' (a typo), TI 'Trial Inclusion/ Exclusion Criteria'.
    * SD0119 (15): older IG labels (QSSTRESC in the six QS parts, SV/SE timing labels, DSDY,
      IETESTCD, TSVALNF).
    * SD0115 (1): SE puts SEUPDES after ELEMENT; SDTMIG 3.4 places it last.
    * SD0114 (19): variables the model allows but the IG tables omit: AEDTC, AEDY; CMDTC, CMDY,
      VISITNUM, VISIT, VISITDY in CM; VISITNUM, VISIT in DS; VISITNUM, VISIT, VISITDY in EX;
      MHLLT, MHHLT, MHHLGT, MHSEV, VISITNUM, VISIT, VISITDY in MH.
    The pilot XPTs were written by pyreadstat with lengths fitted to the data, so SD0121 is silent.
    """
    result = run_rules(load_folder(pilot_sdtm), only=MINE)
    f = result.findings
    assert not (f["message"].str.startswith("rule could not run")).any()
    errors = f[f["severity"] == "error"]
    expected_errors = {("SD0131", "TS", "TSVAL", 8, "Patients with Probable Mild to Moderate Alzheimer\u2019s Disease"),
                       ("SD0131", "TS", "TSVAL", 28, "Safety and Efficacy of the Xanomeline Transdermal "
                        "Therapeutic System (TTS) in Patients with Mild to Moderate Alzheimer\u2019s Disease.")}
    expected_errors.add(("SD0113", "SV", "EPOCH", 0, ""))
    assert keys(errors) == expected_errors, errors[KEY + ["message"]].to_string()
    counts = f.groupby("rule").size().to_dict()
    expected_counts = {"SD0106": 5, "SD0112": 14, "SD0113": 1, "SD0114": 19, "SD0115": 1,
                       "SD0119": 15, "SD0131": 2}
    assert counts == expected_counts
    assert set(f.loc[f["rule"] == "SD0115", "variable"]) == {"SEUPDES"}
    assert result.seconds < 5
