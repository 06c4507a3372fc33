"""Defect catalogue of the ADaM rules (AD01xx, rules_adam.py) and the ADaM side of the loader/engine.

A clean ADaM folder is built by hand (ADSL with three subjects, ADAE with four events, ADLB with
twelve lab records), written as XPT v5 (or CSV); it gives no finding at all, from any rule that
runs for ADaM.  Each case then breaks one thing in a fresh copy and states every finding the break
must give: rule, dataset, variable, row, USUBJID and value (hand-computed), plus words of the
message.  An SDTM folder's validation is shown unchanged by the engine's standard filter.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import validation_kit as vk
from sdtm_rA.io import xpt
from sdtm_rA.standards.specs import load_adamig
from sdtm_rA.validation import validate_folder
from sdtm_rA.validation.data import ValidationInputError, load_folder
from sdtm_rA.validation.engine import load_rules, run_rules

RULES = load_rules()
AD_RULES = sorted(r for r in RULES if r.startswith("AD"))
NaN = np.nan
S1, S2, S3 = "ST1-01-001", "ST1-01-002", "ST1-02-003"


def day(iso: str) -> float:
    """An ISO date as a SAS date (days since 1960-01-01), as ADaM stores *DT."""
    return float((pd.Timestamp(iso) - pd.Timestamp("1960-01-01")).days)


def clean() -> dict[str, pd.DataFrame]:
    """Three consistent ADaM datasets; every value below is conformant."""
    adsl = pd.DataFrame({
        "STUDYID": ["ST1"] * 3,
        "USUBJID": [S1, S2, S3],
        "SUBJID": ["001", "002", "003"],
        "SITEID": ["01", "01", "02"],
        "AGE": [54.0, 61.0, 47.0],
        "AGEU": ["YEARS"] * 3,
        "SEX": ["F", "M", "F"],
        "RACE": ["WHITE", "ASIAN", "WHITE"],
        "ARM": ["Drug A", "Placebo", "Drug A"],
        "TRT01P": ["Drug A", "Placebo", "Drug A"],
        "TRT01A": ["Drug A", "Placebo", "Drug A"],
        "TRTSDT": [day("2021-03-01"), day("2021-03-03"), day("2021-03-08")],
        "TRTSDTM": [day("2021-03-01") * 86400 + 9 * 3600, day("2021-03-03") * 86400,
                    day("2021-03-08") * 86400 + 8.5 * 3600],
        "TRTSTMF": ["", "H", "M"],
        "SAFFL": ["Y", "Y", "Y"],
        "ITTFL": ["Y", "Y", "N"],
        "EFFFL": ["Y", "N", "N"],
    })
    adae = pd.DataFrame({
        "STUDYID": ["ST1"] * 4,
        "USUBJID": [S1, S1, S2, S3],
        "ASEQ": [1.0, 2.0, 1.0, 1.0],
        "TRTA": ["Drug A", "Drug A", "Placebo", "Drug A"],
        "AEDECOD": ["Headache", "Nausea", "Headache", "Rash"],
        "ASTDT": [day("2021-02-20"), day("2021-03-05"), day("2021-03-10"), day("2021-03-15")],
        "ASTDTF": ["", "D", "", "M"],
        "AENDT": [day("2021-02-22"), day("2021-03-05"), NaN, day("2021-03-20")],
        "AENDTF": ["", "", "", ""],
        "TRTEMFL": ["", "Y", "Y", "Y"],
        "AOCCPFL": ["", "Y", "Y", "Y"],
    })
    # ADLB: CHG = AVAL - BASE and PCHG = 100 * CHG / |BASE| written as a person would (1.2, not
    # 5.2 - 4.0 = 1.2000000000000002): equal at 15 significant digits.
    adlb = pd.DataFrame({
        "STUDYID": ["ST1"] * 12,
        "USUBJID": [S1] * 5 + [S2] * 4 + [S3] * 3,
        "ASEQ": [1.0, 2, 3, 4, 5, 1, 2, 3, 4, 1, 2, 3],
        "PARAMCD": ["CRP", "CRP", "CRP", "TJC28", "TJC28", "CRP", "CRP", "SCORE", "SCORE", "CRP", "CRP", "ACR20"],
        "PARAM": ["C-Reactive Protein (mg/L)"] * 3 + ["Tender Joint Count 28"] * 2
                 + ["C-Reactive Protein (mg/L)"] * 2 + ["Symptom Score"] * 2
                 + ["C-Reactive Protein (mg/L)"] * 2 + ["ACR20 Response"],
        "AVAL": [4.0, 5.2, 3.1, 0.0, 2.0, 10.0, 7.5, -2.0, 1.0, 6.0, 6.0, NaN],
        "AVALC": [""] * 11 + ["Y"],
        "BASE": [4.0, 4.0, 4.0, 0.0, 0.0, 10.0, 10.0, -2.0, -2.0, 6.0, 6.0, NaN],
        "CHG": [0.0, 1.2, -0.9, 0.0, 2.0, 0.0, -2.5, 0.0, 3.0, 0.0, 0.0, NaN],
        "PCHG": [0.0, 30.0, -22.5, NaN, NaN, 0.0, -25.0, 0.0, 150.0, 0.0, 0.0, NaN],
        "ABLFL": ["Y", "", "", "Y", "", "Y", "", "Y", "", "Y", "", ""],
        "ANL01FL": ["Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "", "Y"],
        "ADT": [day("2021-02-27"), day("2021-03-29"), day("2021-05-24"), day("2021-02-27"),
                day("2021-03-29"), day("2021-03-02"), day("2021-03-31"), day("2021-03-02"),
                day("2021-03-31"), day("2021-03-07"), day("2021-03-07"), day("2021-06-07")],
        "ADTF": [""] * 9 + ["", "", "D"],
        "AVISIT": ["BASELINE", "WEEK 4", "WEEK 12", "BASELINE", "WEEK 4", "BASELINE", "WEEK 4",
                   "BASELINE", "WEEK 4", "BASELINE", "BASELINE", "WEEK 12"],
        "AVISITN": [0.0, 4, 12, 0, 4, 0, 4, 0, 4, 0, 0, 12],
    })
    return {"ADSL": adsl, "ADAE": adae, "ADLB": adlb}


LABELS = {"ADSL": "Subject-Level Analysis Dataset", "ADAE": "Adverse Events Analysis Dataset",
          "ADLB": "Laboratory Analysis Dataset"}


def _label(name: str, col: str) -> str:
    structure = "ADSL" if name == "ADSL" else "BDS"
    var = load_adamig().dataset(structure).variable(col)
    return (var.label if var is not None else col)[:40]


def write(folder: Path, frames: dict[str, pd.DataFrame], fmt: str = "xpt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        path = folder / f"{name.lower()}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
            continue
        variables = {c: xpt.XptVariable(c, _label(name, c),
                                        "Num" if pd.api.types.is_numeric_dtype(df[c]) else "Char",
                                        format="DATE9." if c.endswith("DT") else None)
                     for c in df.columns}
        xpt.write_xpt(df, path, name=name, label=LABELS.get(name, name), variables=variables,
                      created=dt.datetime(2024, 1, 1))
    return folder


def broken(tmp_path: Path, change, fmt: str = "xpt") -> pd.DataFrame:
    """Findings of the clean folder after `change(frames)` (edits in place)."""
    frames = clean()
    change(frames)
    return validate_folder(write(tmp_path / "adam", frames, fmt)).findings


def keys(found: pd.DataFrame, rule: str) -> list[tuple]:
    f = found[found["rule"] == rule]
    return [(r.dataset, r.variable, int(r.row), r.usubjid, r.value) for r in f.itertuples()]


def only(found: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The findings of `rule`, after checking that no other rule fired."""
    assert set(found["rule"]) <= {rule}, found[found["rule"] != rule][["rule", "dataset", "row", "message"]]
    return found


def message(found: pd.DataFrame, row: int | None = None) -> str:
    f = found if row is None else found[found["row"] == row]
    assert len(f) == 1, f
    return f["message"].iloc[0]


# ------------------------------------------------------------------------------ loader and engine


def test_clean_folder_gives_no_finding(tmp_path):
    res = validate_folder(write(tmp_path / "adam", clean()))
    assert res.study.standard == "ADaMIG 1.3" and res.study.family == "ADaM"
    assert res.findings.empty, res.findings[["rule", "dataset", "variable", "row", "message"]]
    ran = set(res.timings)
    assert set(AD_RULES) <= ran
    # only ADaM rules run: the generic SD01xx checks marked for ADaM, never an SDTMIG lookup
    assert ran == {rid for rid, r in RULES.items() if "ADaM" in r.standards}
    assert {"SD0103", "SD0105", "SD0117", "SD0118"} <= ran
    assert not {"SD0101", "SD0111", "SD0113", "SD0116", "SD0401"} & ran


def test_clean_folder_as_csv_gives_no_finding(tmp_path):
    res = validate_folder(write(tmp_path / "adam", clean(), "csv"))
    assert res.findings.empty, res.findings[["rule", "dataset", "variable", "row", "message"]]


def test_loader_knows_adam(tmp_path):
    study = load_folder(write(tmp_path / "adam", clean()))
    assert study.standard == "ADaMIG 1.3" and study.ig.standard == "ADaMIG"
    assert {n: d.domain for n, d in study.datasets.items()} == {"ADAE": "ADAE", "ADLB": "ADLB", "ADSL": "ADSL"}
    assert {n: getattr(study.spec(d), "name", None) for n, d in study.datasets.items()} == \
        {"ADAE": None, "ADLB": "BDS", "ADSL": "ADSL"}
    assert study.datasets["ADAE"].seq_var == "ASEQ"
    assert study.ct.codelist("DATEFL").values == {"Y", "M", "D"}


def test_folder_of_ad_datasets_without_adsl_is_adam(tmp_path):
    frames = clean()
    del frames["ADSL"]
    found = validate_folder(write(tmp_path / "adam", frames)).findings
    assert keys(only(found, "AD0101"), "AD0101") == [("ADSL", "", 0, "", "")]
    assert "no ADSL" in message(found) and "ADAE, ADLB" in message(found)


def test_explicit_standard(tmp_path):
    folder = write(tmp_path / "adam", clean())
    assert load_folder(folder, "adamig-1.3").standard == "ADaMIG 1.3"
    assert load_folder(folder, "ADaMIG 1.3").family == "ADaM"
    with pytest.raises(ValidationInputError, match="ADaMIG 9.9"):
        load_folder(folder, "adamig-9.9")
    # an explicit SDTMIG is obeyed: no ADaM rule runs then
    res = validate_folder(folder, "sdtmig-3.4")
    assert res.study.standard == "SDTMIG 3.4" and not set(AD_RULES) & set(res.timings)


def test_sdtm_folder_runs_the_same_rules_as_before(tmp_path):
    """The old filter ran every rule for an SDTMIG folder; the rules registered before the ADaM
    family are exactly the ones whose standards include SDTM, and they all still run, with the
    same findings as running each of them by hand; no ADaM rule runs."""
    folder = vk.clean_folder(tmp_path)
    study = load_folder(folder)
    assert study.family == "SDTM" and {d.family for d in study.datasets.values()} == {"SDTM"}
    res = run_rules(study)
    sdtm_rules = {rid for rid, r in RULES.items() if not rid.startswith("AD")}
    assert all("SDTM" in RULES[rid].standards for rid in sdtm_rules)
    assert set(res.timings) == sdtm_rules
    assert not res.findings["rule"].str.startswith("AD").any()
    by_hand = run_rules(study, only=sorted(sdtm_rules)).findings
    pd.testing.assert_frame_equal(res.findings, by_hand)


def test_ad_rules_do_not_run_for_sdtm_even_when_asked(tmp_path):
    folder = vk.clean_folder(tmp_path)
    res = validate_folder(folder, only=["AD0101", "AD0104"])
    assert res.findings.empty and not res.timings


# ------------------------------------------------------------------------------ one break, its findings


def edit(**datasets):
    """A change setting values at 1-based rows: edit(ADLB={3: {"CHG": -0.8}})."""
    def change(frames):
        for name, rows in datasets.items():
            for row, values in rows.items():
                for col, value in values.items():
                    frames[name].loc[row - 1, col] = value
    return change


def append_copy(name: str, row: int):
    """A change appending a copy of a record (1-based `row`) at the end of dataset `name`."""
    def change(frames):
        frames[name] = pd.concat([frames[name], frames[name].iloc[[row - 1]]], ignore_index=True)
    return change


# (change, rule, expected findings (dataset, variable, row, USUBJID, value), {row: words of its message})
BREAKS = [
    pytest.param(append_copy("ADSL", 2), "AD0102", [("ADSL", "USUBJID", 4, S2, S2)],
                 {4: "already has an ADSL record (ADSL row 2)"}, id="AD0102 ADSL row 4 repeats row 2"),
    pytest.param(edit(ADLB={7: {"USUBJID": "ST1-09-999"}}, ADAE={4: {"USUBJID": ""}}), "AD0104",
                 [("ADAE", "USUBJID", 4, "", ""), ("ADLB", "USUBJID", 7, "ST1-09-999", "ST1-09-999")],
                 {7: "'ST1-09-999' in ADLB has no ADSL record", 4: "USUBJID is empty in ADAE"},
                 id="AD0104 subjects not in ADSL"),
    pytest.param(edit(ADSL={3: {"ITTFL": ""}}), "AD0105", [("ADSL", "ITTFL", 3, S3, "")],
                 {3: "'Y' or 'N' for every subject"}, id="AD0105 population flag null"),
    # ABLFL is 'Y' or null; SAFFL 'Y'/'N'; an OCCDS flag (AOCCPFL, no ADaMIG spec) may be 'N'
    pytest.param(edit(ADSL={1: {"SAFFL": "YES"}}, ADLB={2: {"ABLFL": "N"}}, ADAE={1: {"AOCCPFL": "N"}}),
                 "AD0106", [("ADLB", "ABLFL", 2, S1, "N"), ("ADSL", "SAFFL", 1, S1, "YES")],
                 {2: "ABLFL is 'Y' or null", 1: "only 'Y', 'N' or null"}, id="AD0106 flag values"),
    pytest.param(edit(ADAE={3: {"ASTDTF": "DAY"}}, ADLB={12: {"ADTF": "H"}}), "AD0107",
                 [("ADAE", "ASTDTF", 3, S2, "DAY"), ("ADLB", "ADTF", 12, S3, "H")],
                 {12: "'Y', 'M', 'D' or null (codelist DATEFL)"}, id="AD0107 date imputation flags"),
    pytest.param(edit(ADSL={2: {"TRTSTMF": "D"}}), "AD0108", [("ADSL", "TRTSTMF", 2, S2, "D")],
                 {2: "'H', 'M', 'S' or null (codelist TIMEFL)"}, id="AD0108 time imputation flag"),
    # 10 characters on rows 4 and 5, a digit first on row 12; an underscore first is allowed
    pytest.param(edit(ADLB={4: {"PARAMCD": "TJC28JOINT"}, 5: {"PARAMCD": "TJC28JOINT"},
                            12: {"PARAMCD": "20ACR"}, 8: {"PARAMCD": "_SCORE"}, 9: {"PARAMCD": "_SCORE"}}),
                 "AD0111", [("ADLB", "PARAMCD", 4, S1, "TJC28JOINT"), ("ADLB", "PARAMCD", 5, S1, "TJC28JOINT"),
                            ("ADLB", "PARAMCD", 12, S3, "20ACR")],
                 {4: "is 10 characters long (at most 8)", 12: "must start with a letter or _"},
                 id="AD0111 PARAMCD names"),
    pytest.param(edit(ADLB={10: {"PARAM": "CRP (mg/L)"}}), "AD0112", [("ADLB", "PARAM", 10, S3, "CRP (mg/L)")],
                 {10: "'C-Reactive Protein (mg/L)' (6 records), 'CRP (mg/L)' (1 record)"},
                 id="AD0112 PARAMCD with two PARAMs"),
    pytest.param(edit(ADLB={7: {"PARAMCD": "CRPHS"}}), "AD0113", [("ADLB", "PARAMCD", 7, S2, "CRPHS")],
                 {7: "'CRP' (6 records), 'CRPHS' (1 record)"}, id="AD0113 PARAM with two PARAMCDs"),
    pytest.param(edit(ADLB={12: {"AVALC": ""}}), "AD0115", [("ADLB", "AVAL", 12, S3, "")],
                 {12: "neither AVAL nor AVALC is populated for PARAMCD 'ACR20'"}, id="AD0115 no value"),
    # S1 CRP: rows 1-3 flagged; S2 SCORE: rows 8 and 9
    pytest.param(edit(ADLB={2: {"ABLFL": "Y"}, 3: {"ABLFL": "Y"}, 9: {"ABLFL": "Y"}}), "AD0116",
                 [("ADLB", "ABLFL", r, s, "Y") for r, s in [(1, S1), (2, S1), (3, S1), (8, S2), (9, S2)]],
                 {2: "ADLB rows 1, ..., 3 (3 records) of USUBJID 'ST1-01-001', PARAMCD 'CRP'",
                  9: "ADLB rows 8 and 9 of USUBJID 'ST1-01-002', PARAMCD 'SCORE'"}, id="AD0116 two baselines"),
    # S1 CRP BASE 4, 4, 4.5 (CHG and PCHG of row 3 follow its BASE, so only BASE is wrong)
    pytest.param(edit(ADLB={3: {"BASE": 4.5, "CHG": 3.1 - 4.5, "PCHG": (3.1 - 4.5) / 4.5 * 100}}), "AD0117",
                 [("ADLB", "BASE", 3, S1, "4.5")],
                 {3: "4 (2 records), 4.5 (1 record); BASE must be constant for a subject and parameter"},
                 id="AD0117 BASE not constant"),
    pytest.param(edit(ADLB={3: {"CHG": -0.8}}), "AD0118", [("ADLB", "CHG", 3, S1, "-0.8")],
                 {3: "CHG = -0.8 but AVAL - BASE = 3.1 - 4 = -0.9 (PARAMCD 'CRP')"}, id="AD0118 CHG off by 0.1"),
    # row 9: 100 * 3 / |-2| = 150, not -150; row 5: BASE 0, so PCHG must be null
    pytest.param(edit(ADLB={9: {"PCHG": -150.0}, 5: {"PCHG": 0.0}}), "AD0119",
                 [("ADLB", "PCHG", 5, S1, "0"), ("ADLB", "PCHG", 9, S2, "-150")],
                 {5: "but BASE is 0", 9: "= 100 * (1 - -2) / 2 = 150"}, id="AD0119 PCHG sign and zero baseline"),
    pytest.param(edit(ADLB={11: {"ANL01FL": "Y"}}), "AD0120", [("ADLB", "ANL01FL", 11, S3, "Y")],
                 {11: "duplicates ADLB row 10 among the ANL01FL = 'Y' records"}, id="AD0120 duplicate analysis record"),
    # TRTEMFL 'N' on rows 2 and 3 beside the null of row 1: the null is the less used convention
    pytest.param(edit(ADAE={2: {"TRTEMFL": "N"}, 3: {"TRTEMFL": "N"}}), "AD0121",
                 [("ADAE", "TRTEMFL", 1, S1, "")], {1: "'N' on 2 and null on 1 records"}, id="AD0121 TRTEMFL mixed"),
    pytest.param(edit(ADAE={4: {"ASTDT": day("2021-03-21")}}), "AD0122", [("ADAE", "ASTDT", 4, S3, "2021-03-21")],
                 {4: "ASTDT 2021-03-21 is after AENDT 2021-03-20: an analysis start date is on or before its end "
                     "date; check the dates and their imputation (ASTDTF 'M', AENDTF '')"},
                 id="AD0122 start after end"),
]


@pytest.mark.parametrize("change, rule, expected, words", BREAKS)
def test_one_break(tmp_path, change, rule, expected, words):
    found = only(broken(tmp_path, change), rule)
    assert keys(found, rule) == expected
    for row, text in words.items():
        assert text in message(found, row)


# ------------------------------------------------------------------------------ breaks of whole variables


def test_required_adsl_variables(tmp_path):
    def change(f):
        f["ADSL"] = f["ADSL"].drop(columns=["SITEID", "TRT01P", "TRT01A"])
    found = only(broken(tmp_path, change), "AD0103")
    assert keys(found, "AD0103") == [("ADSL", "SITEID", 0, "", ""), ("ADSL", "TRT01A", 0, "", ""),
                                      ("ADSL", "TRT01P", 0, "", "")]
    assert "Planned Treatment for Period 01" in found.loc[found.variable == "TRT01P", "message"].iloc[0]
    assert "(ADAE.TRTA)" in found.loc[found.variable == "TRT01A", "message"].iloc[0]


def test_trt01a_not_required_without_actual_treatment_analyses(tmp_path):
    def change(f):
        f["ADSL"] = f["ADSL"].drop(columns=["TRT01A"])
        f["ADAE"] = f["ADAE"].drop(columns=["TRTA"])
    assert broken(tmp_path, change).empty


def test_required_bds_variable_and_population_flags(tmp_path):
    def change(f):
        f["ADLB"] = f["ADLB"].drop(columns=["PARAM"])
        f["ADSL"] = f["ADSL"].drop(columns=["SAFFL", "ITTFL", "EFFFL"])
    found = only(broken(tmp_path, change), "AD0103")
    assert keys(found, "AD0103") == [("ADLB", "PARAM", 0, "", ""), ("ADSL", "", 0, "", "")]
    assert "no population flag" in found.loc[found.dataset == "ADSL", "message"].iloc[0]


def test_character_dates(tmp_path):
    def change(f):
        f["ADAE"]["AENDT"] = ["2021-02-22", "2021-03-05", "", "2021-03-20"]
    found = only(broken(tmp_path, change), "AD0109")
    assert keys(found, "AD0109") == [("ADAE", "AENDT", 0, "", "2021-02-22")]


def test_param_longer_than_200(tmp_path):
    long = "Symptom Score " + "x" * 190                     # 204 characters
    found = only(broken(tmp_path, edit(ADLB={8: {"PARAM": long}, 9: {"PARAM": long}}), "csv"), "AD0114")
    assert keys(found, "AD0114") == [("ADLB", "PARAM", 8, S2, long), ("ADLB", "PARAM", 9, S2, long)]
    assert "204 characters" in message(found, 8)                # CSV: the XPT writer refuses > 200


def test_bds_without_aval_and_avalc(tmp_path):
    def change(f):
        f["ADLB"] = f["ADLB"].drop(columns=["AVAL", "AVALC", "CHG", "PCHG"])
    found = only(broken(tmp_path, change), "AD0115")
    assert keys(found, "AD0115") == [("ADLB", "", 0, "", "")]
    assert found["severity"].tolist() == ["error"]


def test_record_without_a_value_is_a_warning(tmp_path):
    found = broken(tmp_path, edit(ADLB={12: {"AVALC": ""}}))
    assert found["severity"].tolist() == ["warning"]


def test_start_after_end_in_csv_with_iso_dates(tmp_path):
    def change(f):
        for col in ("ASTDT", "AENDT"):
            days = f["ADAE"][col]
            f["ADAE"][col] = (pd.Timestamp("1960-01-01") + pd.to_timedelta(days, unit="D")) \
                .dt.strftime("%Y-%m-%d").fillna("")
        f["ADAE"].loc[0, "AENDT"] = "2021-02-19"            # row 1: starts 2021-02-20
    found = only(broken(tmp_path, change, "csv"), "AD0122")
    assert keys(found, "AD0122") == [("ADAE", "ASTDT", 1, S1, "2021-02-20")]


# ------------------------------------------------------------------------------ what is not a finding


def test_two_baseline_records_of_different_basetypes_are_fine(tmp_path):
    def change(f):
        adlb = f["ADLB"]
        extra = adlb.iloc[[0]].assign(ASEQ=6.0)             # S1's CRP baseline again, other BASETYPE
        f["ADLB"] = pd.concat([adlb.assign(BASETYPE="LAST"), extra.assign(BASETYPE="FIRST")],
                              ignore_index=True)
    assert broken(tmp_path, change).empty


def test_observed_and_derived_analysis_records_are_not_duplicates(tmp_path):
    def change(f):
        adlb = f["ADLB"]
        average = adlb.iloc[[1]].assign(ASEQ=6.0, DTYPE="AVERAGE")   # S1 CRP week 4, averaged
        f["ADLB"] = pd.concat([adlb.assign(DTYPE=""), average], ignore_index=True)
    assert broken(tmp_path, change).empty


def test_chg_floating_point_noise_is_not_a_difference(tmp_path):
    def change(f):
        f["ADLB"]["CHG"] = f["ADLB"]["AVAL"] - f["ADLB"]["BASE"]
        f["ADLB"].loc[1, "CHG"] = np.nextafter(np.nextafter(1.2, 2.0), 2.0)   # 1.2000000000000006
    assert broken(tmp_path, change).empty


def test_fifteen_significant_digits():
    """admiral's comparison: equal once rounded to 15 significant digits; one unit in the last
    place that straddles a rounding boundary is noise, a difference in the 15th digit is not."""
    from sdtm_rA.adam.bds import signif
    from sdtm_rA.validation.rules_adam import _differ
    x = next(v for k in range(1000) if signif(v := 1 + (k + 0.5) * 1e-14) != signif(np.nextafter(v, 2)))
    pair = pd.Series([x, 1.2, 100.0, 5.0, NaN]), pd.Series([np.nextafter(x, 2), 1.2 + 1e-13, 100.00000000000003,
                                                            5.1, 5.0])
    assert _differ(*pair).tolist() == [False, True, False, True, False]
