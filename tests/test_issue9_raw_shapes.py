"""Issue 9 §3: shapes of raw data that real exports have.

Wide forms with several columns per test (melt by a name pattern or by declared groups), the order
of operations within a source, constants per file, synonym tables read from the export's own
codelist file, and unscheduled visit labels that carry their number. Every expected value is
worked out by hand from the raw rows written here or from the sdtm.oak example files copied into
tests/data/sdtm_oak/ (Apache License 2.0, see LICENSE-sdtm.oak.md there).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import col, records  # noqa: E402

U = "TST01-"
OAK = Path(__file__).resolve().parent / "data" / "sdtm_oak"


def errors_of(folder) -> list[str]:
    return [str(i) for i in sk.conversion_error(folder).issues]


# ====================================================================== 1. melt with several columns per test

LAB_WIDE = ("SUBJID,VISIT,GLUC_RES,GLUC_UNIT,GLUC_LO,GLUC_HI,CREAT_RES,CREAT_UNIT,CREAT_ND\n"
            "101,DAY 1,5.1,mmol/L,3.9,5.8,80,umol/L,\n"            # line 2
            "102,DAY 1,6.4,mmol/L,3.9,5.8,,,NOT COLLECTED\n")      # line 3

LAB_TESTS = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: GLUC, testcd: GLUC}
  - {match: CREAT, testcd: CREAT}
"""

LAB_RULES = {
    "USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}',
    "LBTESTCD": "{derive: test_code}",
    "LBTEST": "{derive: test_name}",
    "LBORRES": "{from: lab.RES}",
    "LBORRESU": "{from: lab.UNIT}",
    "LBORNRLO": "{from: lab.LO}",
    "LBORNRHI": "{from: lab.HI}",
    "LBREASND": "{from: lab.ND}",
    "LBSEQ": "{derive: seq, order: []}",
}


def lab_study(tmp_path, source: str, raw: str = LAB_WIDE, **rules):
    merged = {k: v for k, v in {**LAB_RULES, **rules}.items() if v is not None}
    lb = sk.mapping("LB", {"lab": source}, merged, tests=LAB_TESTS)
    return sk.make_study(tmp_path, mappings={"lb": lb}, raw={"raw/lab.csv": raw}), lb


PATTERN = r'"(?P<test>[A-Z]+)_(?P<attr>RES|UNIT|LO|HI|ND)"'


def test_melt_by_pattern_gives_one_record_per_test_with_all_its_attributes(tmp_path):
    folder, _ = lab_study(tmp_path, "{file: raw/lab.csv, melt: {pattern: %s, name: TEST}}" % PATTERN)
    out = sk.build(folder).datasets["LB"]
    # line 2: GLUC (RES, UNIT, LO, HI; no ND column) then CREAT (RES, UNIT, ND; no LO/HI columns)
    assert records(out, "USUBJID", "LBSEQ", "LBTESTCD", "LBORRES", "LBORRESU", "LBORNRLO", "LBORNRHI",
                   "LBREASND") == [
        (U + "101", 1, "GLUC", "5.1", "mmol/L", "3.9", "5.8", ""),
        (U + "101", 2, "CREAT", "80", "umol/L", "", "", ""),
        (U + "102", 1, "GLUC", "6.4", "mmol/L", "3.9", "5.8", ""),
        (U + "102", 2, "CREAT", "", "", "", "", "NOT COLLECTED"),
    ]


def test_melt_by_declared_groups(tmp_path):
    raw = "SUBJID,GLUCOSE,GLUCOSE UNIT,CREATININE\n101,5.1,mmol/L,80\n"
    groups = "{GLUC: {RES: GLUCOSE, UNIT: GLUCOSE UNIT}, CREAT: {RES: CREATININE}}"
    folder, _ = lab_study(tmp_path, "{file: raw/lab.csv, melt: {groups: %s, name: TEST}}" % groups, raw,
                          LBORNRLO=None, LBORNRHI=None, LBREASND=None)
    out = sk.build(folder).datasets["LB"]
    assert records(out, "LBTESTCD", "LBORRES", "LBORRESU") == [("GLUC", "5.1", "mmol/L"), ("CREAT", "80", "")]


VS_GROUPS = ("{SYSBP: {ORRES: SYS_BP}, DIABP: {ORRES: DIA_BP}, PULSE: {ORRES: PULSE}, RESP: {ORRES: RESPRT},"
             " TEMP: {ORRES: TEMP, LOC: TEMPLOC}, OXYSAT: {ORRES: OXY_SAT, LOC: LOC, LAT: LAT}}")
VS_TESTS = """
from: vs.TEST
codelist: VSTESTCD
entries:
  - {match: [SYSBP, DIABP, PULSE, RESP, TEMP, OXYSAT], testcd: SYSBP}
"""


def oak_vs_study(tmp_path, source: str, **rules):
    """sdtm.oak's wide vital-signs form: 6 rows of PATNUM 375/376, one column per test, TEMP with its
    location (TEMPLOC), OXY_SAT with location and laterality (LOC, LAT)."""
    tests = "\n".join(["from: vs.TEST", "codelist: VSTESTCD", "entries:"]
                      + [f"  - {{match: {t}, testcd: {t}}}" for t in ("SYSBP", "DIABP", "PULSE", "RESP",
                                                                      "TEMP", "OXYSAT")])
    base = {"USUBJID": '{template: "{STUDYID}-{vs.PATNUM}"}',
            "VSTESTCD": "{derive: test_code}",
            "VSTEST": "{derive: test_name}",
            "VSORRES": "{from: vs.ORRES}",
            "VSLOC": "{from: vs.LOC, codelist: LOC}",
            "VSLAT": "{from: vs.LAT, codelist: LAT}",
            "VSTPT": "{from: vs.TMPTC}",
            "VSSEQ": "{derive: seq, order: []}"}
    vs = sk.mapping("VS", {"vs": source}, {**base, **rules}, tests=tests)
    folder = sk.make_study(tmp_path, mappings={"vs": vs})
    shutil.copy(OAK / "vitals_raw_data.csv", folder / "raw" / "vitals.csv")
    return folder, vs


def test_oak_wide_vital_signs_form_melted_by_groups(tmp_path):
    folder, _ = oak_vs_study(tmp_path, "{file: raw/vitals.csv, melt: {groups: %s, name: TEST}}" % VS_GROUPS)
    out = sk.build(folder).datasets["VS"]
    # 6 raw rows x 6 tests; row 4 (376 Screening, ASMNTDN=1: not done) gives 6 empty results
    assert len(out) == 36
    first = records(out, "USUBJID", "VSSEQ", "VSTESTCD", "VSORRES", "VSLOC", "VSLAT", "VSTPT")[:6]
    assert first == [   # raw line 2: 375 VISIT1 Pre-dose
        (U + "375", 1, "SYSBP", "158", "", "", "Pre-dose"),
        (U + "375", 2, "DIABP", "92", "", "", "Pre-dose"),
        (U + "375", 3, "PULSE", "63", "", "", "Pre-dose"),
        (U + "375", 4, "RESP", "17", "", "", "Pre-dose"),
        (U + "375", 5, "TEMP", "40.48", "SKIN", "", "Pre-dose"),
        (U + "375", 6, "OXYSAT", "98", "FINGER", "RIGHT", "Pre-dose"),
    ]
    temps = [r for r in records(out, "USUBJID", "VSTESTCD", "VSORRES", "VSLOC") if r[1] == "TEMP"]
    assert temps == [(U + "375", "TEMP", "40.48", "SKIN"), (U + "375", "TEMP", "36.75", "TYMPANIC MEMBRANE"),
                     (U + "375", "TEMP", "29.45", "ORAL CAVITY"), (U + "376", "TEMP", "", ""),
                     (U + "376", "TEMP", "38.25", "AXILLA"), (U + "376", "TEMP", "38.08", "TYMPANIC MEMBRANE")]


def test_melt_pattern_checked_at_load(tmp_path):
    folder, lb = lab_study(tmp_path, '{file: raw/lab.csv, melt: {pattern: "(?P<test>[A-Z]+)_(?P<kind>RES)",'
                           ' name: TEST}}')
    line = sk.line_of(lb, "melt:")
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{line}: source 'lab' melt: pattern '(?P<test>[A-Z]+)_(?P<kind>RES)' needs "
        "the named group (?P<attr>...) and unknown named group kind; allowed named groups: test (the test a "
        "column belongs to), attr (which of its attributes it holds)"]


def test_melt_pattern_that_is_not_a_regex(tmp_path):
    folder, lb = lab_study(tmp_path, '{file: raw/lab.csv, melt: {pattern: "(?P<test>[A-Z]+", name: TEST}}')
    (msg,) = errors_of(folder)
    assert msg.startswith(f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: pattern "
                          "'(?P<test>[A-Z]+' is not a regular expression: missing ), unterminated subpattern")


@pytest.mark.parametrize("melt, expected", [
    ("{name: TEST}", "give exactly one of columns (one column per test, with `value:`), pattern (several "
     "columns per test, by name) or groups (several columns per test, listed); given: none"),
    ("{columns: [A], groups: {G: {R: A}}, name: TEST, value: V}",
     "give exactly one of columns (one column per test, with `value:`), pattern (several columns per test, "
     "by name) or groups (several columns per test, listed); given: several (columns, groups)"),
    ("{columns: [GLUC_RES], name: TEST}", "`columns:` needs `value:` (the column that receives each melted value)"),
    ("{groups: {G: {R: GLUC_RES}}, name: TEST, value: V}",
     "`value:` goes with `columns:` only; with `groups:` each attribute is its own column"),
])
def test_melt_forms_refused_at_load(tmp_path, melt, expected):
    folder, lb = lab_study(tmp_path, "{file: raw/lab.csv, melt: %s}" % melt)
    assert errors_of(folder) == [f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: {expected}"]


def test_melt_unknown_key_names_the_allowed_keys(tmp_path):
    folder, lb = lab_study(tmp_path, "{file: raw/lab.csv, melt: {pattern: %s, name: TEST, attrs: [RES]}}" % PATTERN)
    assert errors_of(folder) == [f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: sources.lab.melt.attrs: "
                                 "unknown key 'attrs' (did you mean 'pattern'?); allowed keys: columns, pattern, "
                                 "groups, name, value"]


def test_melt_pattern_matching_no_column_lists_the_columns(tmp_path):
    folder, lb = lab_study(tmp_path, '{file: raw/lab.csv, melt: {pattern: "(?P<test>[a-z]+)_(?P<attr>res)", '
                           'name: TEST}}')
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: pattern "
        "'(?P<test>[a-z]+)_(?P<attr>res)' matches no column of raw/lab.csv (it must match whole column "
        "names); its columns: SUBJID, VISIT, GLUC_RES, GLUC_UNIT, GLUC_LO, GLUC_HI, CREAT_RES, CREAT_UNIT, "
        "CREAT_ND"]


def test_melt_group_naming_a_missing_column(tmp_path):
    raw = "SUBJID,GLUCOSE,CREATININE\n101,5.1,80\n"
    folder, lb = lab_study(tmp_path, "{file: raw/lab.csv, melt: {groups: {GLUC: {RES: GLUCOS}, CREAT: "
                           "{RES: CREATININE}}, name: TEST}}", raw)
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: groups: GLUC.RES: 'GLUCOS' is "
        "not a column of raw/lab.csv (did you mean 'GLUCOSE'?); its columns: SUBJID, GLUCOSE, CREATININE"]


def test_melt_column_in_two_groups_is_ambiguous(tmp_path):
    raw = "SUBJID,GLUCOSE,UNIT,CREATININE\n101,5.1,mmol/L,80\n"
    folder, lb = lab_study(tmp_path, "{file: raw/lab.csv, melt: {groups: {GLUC: {RES: GLUCOSE, UNIT: UNIT}, "
                           "CREAT: {RES: CREATININE, UNIT: UNIT}}, name: TEST}}", raw)
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: groups: column 'UNIT' is in "
        "group 'GLUC' and in group 'CREAT': which test its values belong to is ambiguous"]


def test_melt_attribute_named_like_a_kept_column(tmp_path):
    raw = "SUBJID,VISIT,GLUC_RES,GLUC_VISIT\n101,DAY 1,5.1,X\n"
    folder, lb = lab_study(tmp_path, '{file: raw/lab.csv, melt: {pattern: "(?P<test>GLUC)_(?P<attr>RES|VISIT)",'
                           ' name: TEST}}', raw)
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: 'VISIT' would replace the column "
        "of that name in raw/lab.csv, which is not melted; name the melted column otherwise (the columns kept "
        "on every record: SUBJID, VISIT)"]


# ====================================================================== 2. order of operations within a source

def test_where_on_a_melted_column_drops_empty_cells(tmp_path):
    source = ("{file: raw/vitals.csv, melt: {groups: %s, name: TEST}, where: {ORRES: {empty: false}}}"
              % VS_GROUPS)
    folder, _ = oak_vs_study(tmp_path, source)
    out = sk.build(folder).datasets["VS"]
    # 36 melted records less the 6 of raw row 5 (376 Screening, not done: every result empty)
    assert len(out) == 30
    assert [r for r in records(out, "USUBJID", "VSSEQ") if r[0] == U + "376"][-1] == (U + "376", 12)
    assert "" not in col(out, "VSORRES")


def test_where_on_a_column_that_was_melted_says_so(tmp_path):
    folder, lb = lab_study(tmp_path, "{file: raw/lab.csv, melt: {pattern: %s, name: TEST}, "
                           "where: {GLUC_RES: {empty: false}}}" % PATTERN)
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'where:')}: source 'lab' where: 'GLUC_RES' is not a column of "
        "the source (it is melted by `melt:`, which comes first, into TEST and the attribute columns of the "
        "pattern); the filter reads the columns after rename, constants and melt: SUBJID, VISIT, TEST, RES, "
        "UNIT, LO, HI, ND"]


def test_rename_comes_before_melt(tmp_path):
    raw = "SUBJID,GLUCOSE,CREATININE\n101,5.1,80\n"
    source = ("{file: raw/lab.csv, rename: {GLUCOSE: GLUC_RES, CREATININE: CREAT_RES}, "
              "melt: {pattern: %s, name: TEST}}" % PATTERN)
    folder, _ = lab_study(tmp_path, source, raw, LBORRESU=None, LBORNRLO=None, LBORNRHI=None, LBREASND=None)
    out = sk.build(folder).datasets["LB"]
    assert records(out, "LBTESTCD", "LBORRES") == [("GLUC", "5.1"), ("CREAT", "80")]


def test_melt_naming_a_renamed_column_says_rename_comes_first(tmp_path):
    raw = "SUBJID,GLUCOSE,CREATININE\n101,5.1,80\n"
    source = ("{file: raw/lab.csv, rename: {GLUCOSE: GLUC}, melt: {groups: {GLUC: {RES: GLUCOSE}, "
              "CREAT: {RES: CREATININE}}, name: TEST}}")
    folder, lb = lab_study(tmp_path, source, raw, LBORRESU=None, LBORNRLO=None, LBORNRHI=None, LBREASND=None)
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:{sk.line_of(lb, 'melt:')}: source 'lab' melt: groups: GLUC.RES: 'GLUCOSE' is "
        "not a column of raw/lab.csv (did you mean 'GLUC'?); its columns: SUBJID, GLUC, CREATININE ('GLUCOSE' is renamed to 'GLUC' by "
        "`rename:`, which comes first)"]


def test_dedupe_comes_after_melt_and_reports_each_raw_copy_once(tmp_path):
    from sdtm_rA.sdtm.convert import convert
    raw = ("SUBJID,VISIT,GLUC_RES,CREAT_RES\n"
           "101,DAY 1,5.1,80\n"       # line 2
           "101,DAY 1,5.1,80\n"       # line 3: copy of line 2
           "102,DAY 1,6.0,\n")        # line 4: CREAT empty, dropped by the where
    source = ("{file: raw/lab.csv, melt: {pattern: %s, name: TEST}, where: {RES: {empty: false}}, "
              "dedupe: report}" % PATTERN)
    folder, _ = lab_study(tmp_path, source, raw, LBORRESU=None, LBORNRLO=None, LBORNRHI=None, LBREASND=None)
    result = convert(folder, tmp_path / "out", command=["test"])
    dups = [str(w) for w in result.issues.warnings if "duplicate" in str(w)]
    assert dups == ["warning: raw/lab.csv:2: exact duplicate rows at lines 2, 3: kept line 2, dropped the rest"]
    out = sk.build(folder).datasets["LB"]
    assert records(out, "USUBJID", "LBTESTCD", "LBORRES") == [
        (U + "101", "GLUC", "5.1"), (U + "101", "CREAT", "80"), (U + "102", "GLUC", "6.0")]


# ====================================================================== 3. constants per file

TWO_FORMS = {"raw/cm_a.csv": "SUBJID,TRT\n101,ASPIRIN\n102,IBUPROFEN\n",
             "raw/cm_b.csv": "SUBJID,TRT\n101,PARACETAMOL\n"}


def cm_two_forms(tmp_path, files: str, **rules):
    cm = sk.cm_mapping("{files: %s}" % files, **rules)
    return sk.make_study(tmp_path, mappings={"cm": cm}, raw=TWO_FORMS), cm


def test_constants_of_each_file_are_columns_of_its_rows(tmp_path):
    folder, _ = cm_two_forms(tmp_path, "[{file: raw/cm_a.csv, constants: {FORM: PRIOR MEDICATIONS}}, "
                             "{file: raw/cm_b.csv, constants: {FORM: CONCOMITANT MEDICATIONS}}]",
                             CMCAT="{from: cm.FORM}")
    out = sk.build(folder).datasets["CM"]
    assert records(out, "USUBJID", "CMTRT", "CMCAT") == [
        (U + "101", "ASPIRIN", "PRIOR MEDICATIONS"), (U + "101", "PARACETAMOL", "CONCOMITANT MEDICATIONS"),
        (U + "102", "IBUPROFEN", "PRIOR MEDICATIONS")]


def test_constants_of_a_single_file_source(tmp_path):
    out = sk.build(sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        "{file: raw/cm_a.csv, constants: {FORM: PRIOR MEDICATIONS}}", CMCAT="{from: cm.FORM}")},
        raw=TWO_FORMS)).datasets["CM"]
    assert col(out, "CMCAT") == ["PRIOR MEDICATIONS", "PRIOR MEDICATIONS"]


def test_a_constant_named_like_a_column_is_an_error(tmp_path):
    folder, cm = cm_two_forms(tmp_path, "[{file: raw/cm_a.csv, constants: {TRT: X}}, {file: raw/cm_b.csv, "
                              "constants: {TRT: Y}}]")
    line = sk.line_of(cm, "cm_a.csv")
    assert errors_of(folder) == [
        f"error: mappings/cm.yaml:{line}: source 'cm': constants: 'TRT' is a column of raw/cm_a.csv: a constant "
        "may not replace raw data; give the constant another name",
        f"error: mappings/cm.yaml:{line}: source 'cm': constants: 'TRT' is a column of raw/cm_b.csv: a constant "
        "may not replace raw data; give the constant another name"]


def test_a_constant_must_be_text(tmp_path):
    folder, cm = cm_two_forms(tmp_path, "[{file: raw/cm_a.csv, constants: {VISITNUM: 1}}, {file: raw/cm_b.csv}]")
    assert errors_of(folder) == [f"error: mappings/cm.yaml:{sk.line_of(cm, 'cm_a.csv')}: "
                                 "sources.cm.files.0.constants.VISITNUM: must be of string type"]


def test_files_with_different_constants_under_align_strict(tmp_path):
    folder, cm = cm_two_forms(tmp_path, "[{file: raw/cm_a.csv, constants: {FORM: A}}, {file: raw/cm_b.csv}]")
    assert errors_of(folder) == [f"error: mappings/cm.yaml:{sk.line_of(cm, 'cm_a.csv')}: the files of source "
                                 "'cm' have different columns: raw/cm_b.csv: ['FORM']"]


# ====================================================================== 4. synonym tables from the export's codelist file

OAK_TABLE = "{file: raw/ct-01-cm.csv, item: %s, item_column: raw_codelist, code: collected_value, decode: term_value}"


def oak_cm_study(tmp_path, route_table: str = OAK_TABLE % "ROUTE_CV1", **rules):
    """sdtm.oak's Rave-style CM export (MD1) and the study's own codelist file ct-01-cm.csv, whose
    rows map a collected value ('PO (Oral)') of a raw codelist (ROUTE_CV1) to a CT term (ORAL)."""
    cm = sk.cm_mapping(**{"USUBJID": '{template: "{STUDYID}-{cm.PATNUM}"}', "CMTRT": "{from: cm.MDRAW}",
                          "CMROUTE": "{from: cm.MDRTE, codelist: ROUTE, synonyms: %s}" % route_table,
                          "CMDOSFRQ": "{from: cm.MDFRQ, codelist: FREQ, synonyms: %s}" % (OAK_TABLE % "FREQ_CV1"),
                          **rules})
    folder = sk.make_study(tmp_path, mappings={"cm": cm})
    for name in ("cm_raw_data.csv", "ct-01-cm.csv"):
        shutil.copy(OAK / name, folder / "raw" / ("cm.csv" if name.startswith("cm_") else name))
    return folder, cm


def test_synonyms_from_the_exports_codelist_file(tmp_path):
    folder, _ = oak_cm_study(tmp_path)
    out = sk.build(folder).datasets["CM"]
    # by hand from cm_raw_data.csv (MDRTE, MDFRQ) and ct-01-cm.csv (collected_value -> term_value)
    assert records(out, "USUBJID", "CMTRT", "CMROUTE", "CMDOSFRQ") == [
        (U + "375", "BABY ASPIRIN", "ORAL", "QD"),
        (U + "375", "CORTISPORIN", "ORAL", ""),
        (U + "376", "ASPIRIN", "", ""),
        (U + "377", "DIPHENHYDRAMINE HCL", "ORAL", "BID"),
        (U + "377", "PARCETEMOL", "ORAL", "BID"),
        (U + "377", "VOMIKIND", "ORAL", "PRN"),
        (U + "377", "ZENFLOX OZ", "INTRAMUSCULAR", "PRN"),
        (U + "378", "AMITRYPTYLINE", "INTRA-ARTERIAL", "QD"),
        (U + "378", "BENADRYL", "ORAL", "BID"),
        (U + "378", "DIPHENHYDRAMINE HYDROCHLORIDE", "UNKNOWN", "QD"),
        (U + "378", "TETRACYCLINE", "TRANSDERMAL", "BID"),
        (U + "379", "BENADRYL", "INTRA-ARTICULAR", ""),
        (U + "379", "SOMINEX", "EPIDURAL", "PRN"),
        (U + "379", "ZQUILL", "OPHTHALMIC", "Q2H"),
    ]


def test_codelist_file_is_hashed_into_run_json(tmp_path):
    import json

    from sdtm_rA.sdtm.convert import convert
    folder, _ = oak_cm_study(tmp_path)
    convert(folder, tmp_path / "out", command=["test"])
    inputs = json.loads((tmp_path / "out" / "run.json").read_text())["inputs"]
    assert "study/raw/ct-01-cm.csv" in inputs and "study/raw/cm.csv" in inputs


def test_codelist_file_item_that_is_not_there(tmp_path):
    folder, cm = oak_cm_study(tmp_path, OAK_TABLE % "ROUTE_CV2")
    assert errors_of(folder) == [
        f"error: mappings/cm.yaml:{sk.line_of(cm, 'CMROUTE:')}: CM: CMROUTE: codelist file raw/ct-01-cm.csv has no row "
        "with raw_codelist 'ROUTE_CV2' (did you mean 'ROUTE_CV1'?); its items: 'FREQ_CV1', 'FRM_CV1', 'NA', "
        "'NY_CV1', 'ROUTE_CV1', 'UNIT_CV1', 'UNIT_CV5'"]


def test_codelist_file_column_that_is_not_there(tmp_path):
    folder, cm = oak_cm_study(tmp_path, "{file: raw/ct-01-cm.csv, item: ROUTE_CV1, code: collected_value, "
                                        "decode: term_valu}")
    line = sk.line_of(cm, "CMROUTE:")
    cols = ("codelist_code, term_code, CodedData, term_value, collected_value, term_preferred_term, "
            "term_synonyms, raw_codelist")
    assert errors_of(folder) == [
        f"error: mappings/cm.yaml:{line}: CM: CMROUTE: codelist file raw/ct-01-cm.csv has no column 'ITEM' "
        f"(`item_column:`, the default); its columns: {cols}",
        f"error: mappings/cm.yaml:{line}: CM: CMROUTE: codelist file raw/ct-01-cm.csv has no column 'term_valu' "
        f"(`decode:`) (did you mean 'term_value'?); its columns: {cols}"]


def test_codelist_file_code_with_two_decodes(tmp_path):
    table = "ITEM,CODE,DECODE\nSEX,1,M\nSEX,2,F\nSEX,1,F\nRACE,1,ASIAN\nSEX,3,\n"
    dm = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX, synonyms: {file: raw/codelists.csv, item: SEX}}")
    folder = sk.make_study(tmp_path, mappings={"dm": dm}, raw={"raw/dm.csv": "SUBJID,SEX\n101,1\n",
                                                               "raw/codelists.csv": table})
    where = f" (`synonyms:` of mappings/dm.yaml:{sk.line_of(dm, 'SEX:')})"
    assert errors_of(folder) == [
        "error: raw/codelists.csv:6: item 'SEX': a row with an empty decode (CODE '3', DECODE '')" + where,
        "error: raw/codelists.csv:2: item 'SEX': code '1' has several decodes ('1' → 'M', '1' → 'F', lines 2, 4): "
        "which term it means is ambiguous" + where]


def test_codelist_file_for_map(tmp_path):
    table = "ITEM,CODE,DECODE\nREL,1,RELATED\nREL,2,NOT RELATED\n"
    cm = sk.cm_mapping(CMINDC="{from: cm.REL, map: {file: raw/codelists.csv, item: REL}}")
    folder = sk.make_study(tmp_path, mappings={"cm": cm}, raw={"raw/cm.csv": "SUBJID,TRT,REL\n101,A,2\n102,B,1\n",
                                                               "raw/codelists.csv": table})
    assert col(sk.build(folder).datasets["CM"], "CMINDC") == ["NOT RELATED", "RELATED"]


def test_codelist_file_outside_the_study_needs_external_inputs(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "codelists.csv").write_text("ITEM,CODE,DECODE\nSEX,1,M\n")
    dm = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX, synonyms: {file: ../shared/codelists.csv, item: SEX}}")
    folder = sk.make_study(tmp_path, mappings={"dm": dm}, raw={"raw/dm.csv": "SUBJID,SEX\n101,1\n"})
    assert errors_of(folder) == [
        f"error: mappings/dm.yaml:{sk.line_of(dm, 'SEX:')}: '../shared/codelists.csv' is outside the study folder "
        f"({shared / 'codelists.csv'}); list its folder under `external_inputs:` in study.yaml to read it from there"]
    folder = sk.make_study(tmp_path, dict(external_inputs=["../shared"]), mappings={"dm": dm},
                           raw={"raw/dm.csv": "SUBJID,SEX\n101,1\n"})
    assert col(sk.build(folder).datasets["DM"], "SEX") == ["M"]


def test_codelist_file_unknown_key(tmp_path):
    dm = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX, synonyms: {file: raw/codelists.csv, item: SEX, "
                           "decoded: DECODE}}")
    folder = sk.make_study(tmp_path, mappings={"dm": dm}, raw={"raw/dm.csv": "SUBJID,SEX\n101,1\n",
                                                               "raw/codelists.csv": "ITEM,CODE,DECODE\nSEX,1,M\n"})
    assert errors_of(folder) == [
        f"error: mappings/dm.yaml:{sk.line_of(dm, 'SEX:')}: SEX.synonyms.decoded: unknown key 'decoded' (did you "
        "mean 'decode'?); allowed keys: file, item, item_column, code, decode, sep, encoding, sheet"]


# ====================================================================== 5. unscheduled labels that carry their number

def visit_study(tmp_path, visits: str, unscheduled: dict, date_rule: str | None = None):
    raw = "SUBJID,VISIT,DATE,GLUC\n" + visits
    rules = {"USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}', "LBTESTCD": "{constant: GLUC}",
             "LBTEST": "{constant: Glucose}", "LBORRES": "{from: lab.GLUC}",
             "VISITNUM": "{derive: visitnum, visit: lab.VISIT%s}" % (", date: LBDTC" if date_rule else ""),
             "VISIT": "{derive: visit, visit: lab.VISIT, visitnum: VISITNUM}",
             "LBSEQ": "{derive: seq, order: [VISITNUM]}"}
    if date_rule:
        rules["LBDTC"] = date_rule
    lb = sk.mapping("LB", {"lab": "{file: raw/lab.csv}"}, rules)
    folder = sk.make_study(tmp_path, {"unscheduled": unscheduled}, mappings={"dm": sk.dm_mapping(), "lb": lb},
                           raw={**sk.DM_RAW, "raw/lab.csv": raw})
    return folder, lb


def test_unscheduled_labels_carrying_their_visitnum(tmp_path):
    folder, _ = visit_study(tmp_path, "101,DAY 1,,5.1\n"            # line 2
                                      "101,Unscheduled 2.1,,5.3\n"  # line 3
                                      "101,UNS  3.2,,5.0\n"         # line 4: blanks collapsed
                                      "102,uns 1.5,,6.1\n",         # line 5: any case
                            {"numbered": ["UNSCHEDULED {visitnum}", "UNS {visitnum}"]})
    out = sk.build(folder).datasets["LB"]
    # the schedule (studykit): SCREENING 1, DAY 1 2, WEEK 2 3; no date needed for a label with its number
    assert records(out, "USUBJID", "VISITNUM", "VISIT") == [
        (U + "101", 2, "DAY 1"), (U + "101", 2.1, "UNSCHEDULED 2.1"), (U + "101", 3.2, "UNSCHEDULED 3.2"),
        (U + "102", 1.5, "UNSCHEDULED 1.5")]


def test_numbered_and_ordinal_unscheduled_labels_together(tmp_path):
    # 101's first dose is 2021-03-10 (day 1); 'UNPLANNED 1' on 2021-03-12 is day 3: after DAY 1 (2) -> 2.1
    folder, _ = visit_study(tmp_path, "101,UNPLANNED 1,2021-03-12,5.1\n101,UNS 3.5,2021-03-30,5.3\n",
                            {"pattern": "UNPLANNED {n}", "numbered": "UNS {visitnum}"},
                            date_rule="{date: lab.DATE, format: yyyy-MM-dd}")
    out = sk.build(folder).datasets["LB"]
    assert records(out, "VISITNUM", "VISIT") == [(2.1, "UNPLANNED 2.1"), (3.5, "UNPLANNED 3.5")]


def test_a_numbered_label_with_a_scheduled_visits_number_is_an_error(tmp_path):
    folder, lb = visit_study(tmp_path, "101,DAY 1,,5.1\n101,UNS 2,,5.3\n102,UNS 2.0,,5.0\n",
                             {"numbered": "UNS {visitnum}"})
    line = sk.line_of(lb, "VISITNUM:")
    msg = ("unscheduled visit '{}' carries VISITNUM 2, the number of the scheduled visit DAY 1: an unscheduled "
           "visit needs a number of its own (correct the label, or list it as an alias of the scheduled visit "
           "in study.yaml) (raw/lab.csv line {})")
    errors = errors_of(folder)
    assert f"error: mappings/lb.yaml:{line}: LB: VISITNUM: " + msg.format("UNS 2", 3) in errors
    assert f"error: mappings/lb.yaml:{line}: LB: VISITNUM: " + msg.format("UNS 2.0", 4) in errors


def test_numbered_pattern_shaped_like_the_ordinal_one_is_refused(tmp_path):
    folder, _ = visit_study(tmp_path, "101,DAY 1,,5.1\n",
                            {"pattern": "UNSCHEDULED {n}", "numbered": "Unscheduled {visitnum}"})
    (msg,) = errors_of(folder)
    assert msg.startswith("error: study.yaml:")
    assert msg.endswith(": unscheduled.numbered: 'Unscheduled {visitnum}' has the shape of `pattern: "
                        "UNSCHEDULED {n}`: a label such as 'UNSCHEDULED 3' would be both the 3rd unscheduled "
                        "visit and VISITNUM 3; keep one of them")


def test_numbered_pattern_without_its_placeholder_is_refused(tmp_path):
    folder, _ = visit_study(tmp_path, "101,DAY 1,,5.1\n", {"numbered": "UNS {n}"})
    (msg,) = errors_of(folder)
    assert msg.startswith("error: study.yaml:")
    assert msg.endswith(": unscheduled.numbered: 'UNS {n}' needs the placeholder {visitnum} once (where the label "
                        "carries the VISITNUM, e.g. 'UNSCHEDULED {visitnum}' for 'Unscheduled 3.1') and no other")


def test_label_matching_no_pattern_names_them_all(tmp_path):
    folder, lb = visit_study(tmp_path, "101,EXTRA 4,,5.1\n", {"pattern": "UNPLANNED {n}",
                                                              "numbered": ["UNS {visitnum}"]})
    text = ("visit 'EXTRA 4' is not in the schedule of study.yaml (SCREENING, DAY 1, WEEK 2) and does not match "
            "the unscheduled patterns 'UNPLANNED {n}' nor 'UNS {visitnum}' (raw/lab.csv line 2)")
    assert errors_of(folder) == [f"error: mappings/lb.yaml:{sk.line_of(lb, 'VISITNUM:')}: LB: VISITNUM: {text}",
                                 f"error: mappings/lb.yaml:{sk.line_of(lb, 'VISIT:')}: LB: VISIT: {text}"]
