"""The expression language in SDTM mappings (issue 9 §2): `compute:`, text `where:` (rule, source,
first_date), expressions inside `template:` parts, `convert:` formulas, and their errors at the
mapping's line before anything runs. Expected values are worked out by hand in the comments."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import by, records  # noqa: E402

U = "TST01-"


def _cm(tmp_path, raw: str, source: str = "{file: raw/cm.csv}", **rules):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(source, **rules)}, raw={"raw/cm.csv": raw})
    return folder


def build_cm(tmp_path, raw, source="{file: raw/cm.csv}", **rules):
    return sk.build(_cm(tmp_path, raw, source, **rules)).datasets["CM"]


def error_of(tmp_path, raw, source="{file: raw/cm.csv}", **rules) -> str:
    return sk.error_text(sk.conversion_error(_cm(tmp_path, raw, source, **rules)))


# ------------------------------------------------------------------ compute and template

def test_compute_splits_a_combined_patient_number(tmp_path):
    raw = "PATNUM,TRT\n701-1015,Aspirin\n702-22,Ibuprofen\n"
    cm = build_cm(tmp_path, raw, USUBJID='{template: "{STUDYID}-{scan(cm.PATNUM, 2, \'-\')}"}',
                  CMSPID="{compute: \"scan(cm.PATNUM, 1, '-')\"}",
                  CMGRPID="{compute: \"extract(cm.PATNUM, '-(\\\\d+)$')\"}")
    assert records(cm, "USUBJID", "CMSPID", "CMGRPID") == [(U + "1015", "701", "1015"), (U + "22", "702", "22")]


def test_compute_joins_check_boxes_skipping_empty_ones(tmp_path):
    raw = ("SUBJID,TRT,IND1,IND2,IND3\n"
           "101,A,Pain,,Fever\n"
           "101,B,, ,\n"
           "101,C,,Swelling,\n")
    cm = build_cm(tmp_path, raw, CMINDC="{compute: \"catx(', ', cm.IND1, cm.IND2, cm.IND3)\"}")
    assert by(cm, "CMTRT", "CMINDC") == {"A": "Pain, Fever", "B": "", "C": "Swelling"}


def test_compute_arithmetic_into_a_numeric_variable(tmp_path):
    raw = "SUBJID,TRT,DOSE_G\n101,A,0.5\n101,B,\n101,C,1.25\n"
    cm = build_cm(tmp_path, raw, CMDOSE='{compute: "cm.DOSE_G * 1000"}', CMDOSU="{constant: mg}")
    doses = by(cm, "CMTRT", "CMDOSE")
    assert doses["A"] == 500 and doses["C"] == 1250      # 0.5 g, 1.25 g in mg
    assert sk.is_missing(doses["B"])                       # missing stays missing


def test_compute_a_date_gives_iso_text_at_its_precision(tmp_path):
    raw = "SUBJID,TRT,START\n101,A,2021-03-04\n101,B,2021-03\n"
    cm = build_cm(tmp_path, raw, CMSTDTC="{date: cm.START, format: [yyyy-MM-dd, yyyy-MM]}",
                  CMENDTC='{compute: "CMSTDTC + 6"}')
    # a full date + 6 days; a partial date has no day to add to: missing
    assert by(cm, "CMTRT", "CMENDTC") == {"A": "2021-03-10", "B": ""}


def test_case_when_gives_a_category(tmp_path):
    raw = "SUBJID,TRT,DOSE\n101,A,5\n101,B,50\n101,C,\n"
    cm = build_cm(tmp_path, raw, CMCAT="{compute: \"case when cm.DOSE is missing then 'UNKNOWN' "
                                       "when cm.DOSE < 10 then 'LOW' else 'HIGH' end\"}")
    assert by(cm, "CMTRT", "CMCAT") == {"A": "LOW", "B": "HIGH", "C": "UNKNOWN"}


# ------------------------------------------------------------------ where

def test_text_where_on_target_dates_with_a_partial_date(tmp_path):
    raw = "SUBJID,TRT,START\n101,A,2021-02-01\n101,B,2021-03\n101,C,2021-03-15\n101,D,2021-02\n"
    cm = build_cm(tmp_path, raw, CMSTDTC="{date: cm.START, format: [yyyy-MM-dd, yyyy-MM]}",
                  CMCAT="{constant: PRIOR, where: \"CMSTDTC < '2021-03-10'\"}")
    # A: 1 Feb is before 10 March; B: March 2021 may be before or after: unknown, not kept;
    # C: after; D: every day of February is before 10 March.
    assert by(cm, "CMTRT", "CMCAT") == {"A": "PRIOR", "B": "", "C": "", "D": "PRIOR"}


def test_text_where_with_or_and_not(tmp_path):
    raw = "SUBJID,TRT,ROUTE,ONGO\n101,A,ORAL,Y\n101,B,IV,N\n101,C,ORAL,N\n101,D,IV,Y\n"
    cm = build_cm(tmp_path, raw, CMENRF="{constant: ONGOING, where: \"cm.ONGO = 'Y' and not "
                                       "(cm.ROUTE = 'IV' or cm.TRT = 'Z')\"}")
    assert by(cm, "CMTRT", "CMENRF") == {"A": "ONGOING", "B": "", "C": "", "D": ""}


def test_source_where_as_an_expression(tmp_path):
    raw = "SUBJID,TRT,STATUS,DOSE\n101,A,,5\n101,B,DELETED,5\n101,C,,0\n101,D,,abc\n"
    # B is deleted, C has no dose; D's 'abc' is not a number: is_number() excludes it before
    # number() would read it (and, unlike SQL, evaluates its right side only where the left holds)
    cm = build_cm(tmp_path, raw, "{file: raw/cm.csv, where: \"STATUS <> 'DELETED' and is_number(DOSE) "
                                 "and number(DOSE) > 0\"}")
    assert sorted(cm["CMTRT"]) == ["A"]


def test_source_where_naming_a_missing_column(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    text = error_of(tmp_path, raw, "{file: raw/cm.csv, where: \"STATUS <> 'X'\"}")
    assert "where: 'STATUS' is not a column of the source" in text


def test_first_date_where_as_an_expression(tmp_path):
    dm = sk.dm_mapping(RFXSTDTC="{first_date: {source: ex, date: EXSTDAT, format: yyyy-MM-dd, "
                                "where: \"number(EXDOSE) > 0\"}}")
    raw = dict(sk.DM_RAW)
    raw["raw/ex.csv"] = ("SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
                         "101,2021-03-08,,0\n"        # a zero dose is not exposure
                         "101,2021-03-10,09:30,5\n"
                         "102,2021-03-12,,5\n"
                         "103,2021-03-15,08:00,5\n")
    folder = sk.make_study(tmp_path, mappings={"dm": dm}, raw=raw)
    got = by(sk.build(folder).datasets["DM"], "SUBJID", "RFXSTDTC")
    assert got == {"101": "2021-03-10", "102": "2021-03-12", "103": "2021-03-15"}


# ------------------------------------------------------------------ errors at the mapping line

def test_unknown_function_is_refused_at_its_line(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    folder = _cm(tmp_path, raw, CMCAT='{compute: "uper(cm.TRT)"}')
    text = sk.error_text(sk.conversion_error(folder))
    line = sk.line_of((folder / "mappings" / "cm.yaml").read_text(), "CMCAT")
    assert f"mappings/cm.yaml:{line}" in text
    assert "unknown function 'uper' (did you mean 'upper'?)" in text


def test_syntax_error_names_the_character(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    text = error_of(tmp_path, raw, CMCAT="{constant: X, where: \"cm.TRT = 'A' and\"}")
    assert "CMCAT.where: expected a value, a name or '(', found the end of the expression" in text
    assert "at character 17" in text


def test_ordering_two_raw_texts_is_refused_before_running(tmp_path):
    raw = "SUBJID,TRT,A,B\n101,X,10,9\n"
    text = error_of(tmp_path, raw, CMCAT="{constant: X, where: \"cm.A > cm.B\"}")
    assert "'>' between two texts would compare them letter by letter ('10' < '9'); write number(cm.A)" in text


def test_a_bare_name_that_is_not_a_variable(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    text = error_of(tmp_path, raw, CMCAT='{compute: "upper(TRT)"}')
    assert "'TRT' is not a variable of this mapping" in text
    assert "a raw column is written alias.COLUMN" in text


def test_text_that_is_not_a_number_names_value_and_raw_line(tmp_path):
    raw = "SUBJID,TRT,DOSE\n101,A,5\n101,B,five\n"
    text = error_of(tmp_path, raw, CMDOSE='{compute: "cm.DOSE * 2"}')
    assert "CMDOSE.compute: cm.DOSE holds text that is not a number: 'five'" in text
    assert "raw/cm.csv line 3" in text


def test_a_where_that_is_not_a_condition(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    text = error_of(tmp_path, raw, CMCAT="{constant: X, where: \"upper(cm.TRT)\"}")
    assert "CMCAT.where: 'upper(cm.TRT)' is not a condition" in text


def test_a_compute_that_is_a_condition(tmp_path):
    raw = "SUBJID,TRT\n101,A\n"
    text = error_of(tmp_path, raw, CMCAT="{compute: \"cm.TRT = 'A'\"}")
    assert "CMCAT.compute: \"cm.TRT = 'A'\" is a condition, not a value" in text


def test_old_condition_maps_keep_working(tmp_path):
    raw = "SUBJID,TRT,ONGO\n101,A,Y\n101,B,N\n"
    cm = build_cm(tmp_path, raw, CMENRF="{constant: ONGOING, where: {cm.ONGO: Y}}")
    assert by(cm, "CMTRT", "CMENRF") == {"A": "ONGOING", "B": ""}


# ------------------------------------------------------------------ unit conversion formulas

VS_RULES = {
    "USUBJID": '{template: "{STUDYID}-{vs.SUBJID}"}',
    "VSSPID": "{from: vs.SPID}",
    "VSTESTCD": "{derive: test_code}",
    "VSTEST": "{derive: test_name}",
    "VSORRES": "{from: vs.RESULT}",
    "VSORRESU": "{from: vs.UNIT}",
    "VSSTRESC": "{derive: standard_result, result: VSORRES, unit: VSORRESU}",
    "VSSTRESN": "{derive: standard_numeric, of: VSSTRESC}",
    "VSSTRESU": "{derive: standard_unit, result: VSSTRESC}",
    "VSSEQ": "{derive: seq, order: [VSTESTCD, VSSPID]}",
}


def _vs(tmp_path, raw, convert):
    tests = ("\nfrom: vs.TEST\ncodelist: VSTESTCD\nentries:\n"
             f"  - {{match: Temperature, testcd: TEMP, unit: C, convert: {convert}, decimals: 1}}\n")
    return sk.make_study(tmp_path, mappings={"vs": sk.mapping("VS", {"vs": "{file: raw/vs.csv}"}, VS_RULES,
                                                               tests=tests)}, raw={"raw/vs.csv": raw})


def test_conversion_formula_with_an_offset(tmp_path):
    raw = "SPID,SUBJID,TEST,RESULT,UNIT\nV1,101,Temperature,98.6,F\nV2,101,Temperature,100.4,F\n" \
          "V3,101,Temperature,36.6,C\nV4,101,Temperature,<95,F\n"
    vs = sk.build(_vs(tmp_path, raw, '{F: "(value - 32) * 5 / 9"}')).datasets["VS"]
    # (98.6 - 32) × 5/9 = 37; (100.4 - 32) × 5/9 = 38; 36.6 C stays; <95 F: (95 - 32) × 5/9 = 35
    assert by(vs, "VSSPID", "VSSTRESC") == {"V1": "37", "V2": "38", "V3": "36.6", "V4": "<35"}
    assert by(vs, "VSSPID", "VSSTRESN")["V1"] == pytest.approx(37)


def test_conversion_formula_reading_another_name_is_refused(tmp_path):
    raw = "SPID,SUBJID,TEST,RESULT,UNIT\nV1,101,Temperature,98.6,F\n"
    text = sk.error_text(sk.conversion_error(_vs(tmp_path, raw, '{F: "(x - 32) * 5 / 9"}')))
    assert "convert: F: a conversion formula reads only `value` (the result in the collected unit), not x" in text


def test_conversion_formula_without_a_value_for_a_result(tmp_path):
    raw = "SPID,SUBJID,TEST,RESULT,UNIT\nV1,101,Temperature,-4,F\n"
    text = sk.error_text(sk.conversion_error(_vs(tmp_path, raw, '{F: "sqrt(value)"}')))
    assert "TEMP: result '-4' has no value in C by its conversion formula (raw/vs.csv line 2)" in text


def test_function_reference_is_generated_from_the_code():
    """docs/expressions.md's function table is written by tools/expressions_doc.py from FUNCTIONS:
    a function added, removed or redocumented without regenerating it fails here."""
    import subprocess
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "tools" / "expressions_doc.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from sdtm_rA.expression import FUNCTIONS
    text = (repo / "docs" / "expressions.md").read_text(encoding="utf-8")
    assert all(f"`{fn.signature(name)}`" in text for name, fn in FUNCTIONS.items())


def test_mapping_reference_is_generated_from_the_schemas():
    """docs/mapping-language.md's reference (every key at every depth, every derivation) is written by
    tools/mapping_doc.py from the schemas; a key added without regenerating it fails here, and a key
    without a meaning stops the import of sdtm_rA.sdtm.schema (documented())."""
    import subprocess
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "tools" / "mapping_doc.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from sdtm_rA.sdtm import schema
    text = (repo / "docs" / "mapping-language.md").read_text(encoding="utf-8")
    reference = text.split("<!-- reference: generated")[1]
    for table in (schema.RULE_KEYS, schema.FILE_OPTIONS, schema.SOURCE["schema"], schema.MELT["schema"],
                  schema.TEST_ENTRY["schema"], schema.AGGREGATE_SCHEMA, schema.MAPPING_SCHEMA):
        for key, rule in table.items():
            assert rule["meta"]["doc"] and f"| `{key}` |" in reference, key


def test_a_schema_key_without_a_meaning_is_refused():
    from sdtm_rA.sdtm.schema import documented
    with pytest.raises(AssertionError, match=r"schema keys without a description: \['b'\]"):
        documented({"a": {"type": "string"}, "b": {"type": "string"}}, {"a": "the a"})


# ------------------------------------------------------------------ two-digit years (sdtm.oak's dd-MMM-yy)

def test_two_digit_years_with_a_declared_window(tmp_path):
    raw = ("SUBJID,TRT,START\n101,A,15-Sep-20\n101,B,01-Jan-45\n101,C,UN-Feb-19\n101,D,03-Mar-00\n"
           "101,E,07-Jul-29\n101,F,07-Jul-30\n")
    cm = build_cm(tmp_path, raw, CMSTDTC="{date: cm.START, format: dd-MMM-yy, year_window: 1930}")
    # the window 1930-2029: 20 → 2020, 45 → 1945, 19 → 2019 (day unknown), 00 → 2000 (a year, not
    # an unknown part), 29 → 2029, 30 → 1930
    assert by(cm, "CMTRT", "CMSTDTC") == {"A": "2020-09-15", "B": "1945-01-01", "C": "2019-02", "D": "2000-03-03",
                                          "E": "2029-07-07", "F": "1930-07-07"}


def test_two_digit_years_in_first_date(tmp_path):
    dm = sk.dm_mapping(RFXSTDTC="{first_date: {source: ex, date: SHORT, format: dd-MMM-yy, year_window: 1950}}")
    raw = dict(sk.DM_RAW)
    raw["raw/ex.csv"] = ("SUBJID,EXSTDAT,EXSTTIM,EXDOSE,SHORT\n101,2021-03-10,09:30,5,10-Mar-21\n"
                         "102,2021-03-12,,5,12-Mar-21\n103,2021-03-15,08:00,5,15-Mar-21\n")
    folder = sk.make_study(tmp_path, mappings={"dm": dm}, raw=raw)
    assert by(sk.build(folder).datasets["DM"], "SUBJID", "RFXSTDTC") == {"101": "2021-03-10", "102": "2021-03-12",
                                                                         "103": "2021-03-15"}


def test_set_for_a_variable_the_mapping_also_maps_is_an_error(tmp_path):
    raw = "SPID,SUBJID,TEST,RESULT,UNIT\nV1,101,Temperature,36.6,C\n"
    folder = _vs(tmp_path, raw, '{F: 0.5}')
    text = (folder / "mappings" / "vs.yaml").read_text().replace("decimals: 1}", "decimals: 1, set: {VSORRESU: C}}")
    (folder / "mappings" / "vs.yaml").write_text(text)
    msg = sk.error_text(sk.conversion_error(folder))
    assert ("error: mappings/vs.yaml:8: tests.entries.0.set: VSORRESU is also mapped by its rule (line 15), which would win over `set:` "
            "without a word; remove one, or read the constant with {derive: test_attribute, name: VSORRESU}") in msg


def test_many_distinct_bad_values_are_summarised(tmp_path):
    """A wrongly mapped column (§5: 414 errors for one column) gives 20 values with their lines and one
    message counting the rest, not one message per value."""
    rows = "".join(f"101,T{i},x{i:02d}\n" for i in range(25)) + "101,T99,x00\n"
    text = error_of(tmp_path, "SUBJID,TRT,ROUTE\n" + rows, CMROUTE="{from: cm.ROUTE, codelist: ROUTE}")
    listed = [ln for ln in text.splitlines() if "is not in codelist ROUTE" in ln]
    assert len(listed) == 20
    assert "'x00'" in listed[0] and "raw/cm.csv lines 2, 27" in listed[0]    # x00 on lines 2 and 27
    assert "5 more distinct values with problems of this kind in 5 records, not listed one by one; " \
           "e.g. 'x20', 'x21', 'x22'" in text


def test_map_on_numbers_compares_them_as_sdtm_writes_them(tmp_path):
    raw = "SUBJID,TRT,SEV\n101,A,1\n101,B,2.0\n101,C,3\n"
    cm = build_cm(tmp_path, raw, CMCAT="{compute: \"number(cm.SEV)\", map: {1: MILD, 2: MODERATE}}")
    # the computed numbers 1, 2 and 3 meet the YAML keys 1 and 2 (they were compared as 1.0 with '1')
    assert by(cm, "CMTRT", "CMCAT") == {"A": "MILD", "B": "MODERATE", "C": "3"}


def test_deeply_nested_or_huge_expressions_are_errors_not_crashes():
    from sdtm_rA.expression import Expression, ExpressionError
    with pytest.raises(ExpressionError, match="the expression is nested too deeply"):
        Expression("(" * 3000 + "1" + ")" * 3000)
    with pytest.raises(ExpressionError, match="the expression is nested too deeply"):
        Expression("1" + " + 1" * 3000).check()
    with pytest.raises(ExpressionError, match="an expression of 20001 characters is longer than 20000"):
        Expression("1" + " " * 20000)


def test_columns_of_every_pandas_kind():
    """Nullable integers, categories, booleans and zone-aware datetimes are read by their kind."""
    import pandas as pd
    from sdtm_rA.expression import Expression
    df = pd.DataFrame({"A": pd.array([1, None, 3], dtype="Int64"), "B": pd.Categorical(["x", "y", None]),
                       "C": [True, False, True],
                       "D": pd.to_datetime(["2021-01-01", None, "2021-03-01"]).tz_localize("UTC")})

    def truth(text):
        v = Expression(text).evaluate(lambda n: df[n], None, 3).data
        return [None if pd.isna(x) else bool(x) for x in v]
    assert truth("A > 1") == [False, None, True]
    assert truth("B = 'x'") == [True, False, False]
    assert truth("C and A > 0") == [True, False, True]
    assert truth("D >= date('2021-02-01')") == [False, None, True]


def test_coalesce_of_dates_keeps_each_dates_day():
    """A date filled in by coalesce() compares and counts as itself (its span was shifted a day)."""
    import pandas as pd
    from sdtm_rA.expression import DATE, Expression
    df = pd.DataFrame({"X": ["", "2021-03-04"], "Y": ["2021-03-04", "2021-01-01"]})
    got = Expression("coalesce(X, Y) - date('2021-03-01')").values(lambda n: df[n], lambda n: DATE, 2)
    assert got.tolist() == [3.0, 3.0]
    eq = Expression("coalesce(X, Y) = '2021-03-04'").mask(lambda n: df[n], lambda n: DATE, 2)
    assert eq.tolist() == [True, True]
