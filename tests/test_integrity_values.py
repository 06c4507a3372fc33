"""Converted values are never silently wrong (issue 8): each case below used to convert with exit
status 0 and wrong data; now it is an error naming the mapping line and/or the raw file, lines and
value, or (where stated) it converts correctly.

Raw lines are counted by hand: line 1 of every raw file is its header. Mapping lines follow
`studykit.mapping`: 1 `domain:`, 2 `sources:`, one line per source, the top-level blocks, then
`variables:` and one line per variable.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import by  # noqa: E402
from test_mapping_language import LAB_RULES  # noqa: E402  (USUBJID, LBSPID, LBTESTCD ... LBSEQ)

from sdtm_rA import dates  # noqa: E402
from sdtm_rA.sdtm.domain import load_synonyms  # noqa: E402
from sdtm_rA.errors import ConversionError, shown  # noqa: E402
from sdtm_rA.sdtm.findings import TOO_LARGE, TOO_SMALL, format_number, read_numbers  # noqa: E402

U = "TST01-"


def errors_of(folder) -> list[str]:
    return [str(i) for i in sk.conversion_error(folder).issues]


# ============================================================== 1. numbers that are not plain numbers

# Line 8 is the CRP entry (1 domain, 2 sources, 3 lab, 4 tests, 5 from, 6 codelist, 7 entries).
LAB_TESTS = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: CRP, testcd: CRP, unit: mg/L, convert: {mg/dL: 10}}
  - {match: HCG, testcd: HCG, test: Choriogonadotropin Beta}
"""

NOT_A_RESULT = ("is not a number, a censored number ('<0.5') or a text result declared under `results:` "
                "of the test or of `tests:` (the test has a standard unit, so it is numeric)")


def _lab(tmp_path, raw, tests=LAB_TESTS, source="{file: raw/lab.csv, sep: ';'}", **rules):
    text = sk.mapping("LB", {"lab": source}, {**LAB_RULES, **rules}, tests=tests)
    return sk.make_study(tmp_path, mappings={"lb": text}, raw={"raw/lab.csv": raw})


def test_text_result_of_a_numeric_test_is_an_error(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT\n"
           "L1;101;CRP;1,1*;mg/L\n"          # line 2
           "L2;101;HCG;NEGATIVE;\n"           # line 3: qualitative test, text is fine
           "L3;102;CRP;2,5;mg/dL\n"           # line 4: a decimal comma, 25 mg/L
           "L4;102;HCG;1,1*;\n"               # line 5: qualitative: kept as text
           "L5;103;CRP;1,1*;mg/L\n")          # line 6
    folder = _lab(tmp_path, raw, source="{file: raw/lab.csv, sep: ';', decimal: ','}")
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '1,1*' {NOT_A_RESULT} (raw/lab.csv lines 2, 6)"]


def test_number_without_a_unit_is_an_error(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT;LO\n"
           "L1;101;CRP;5;;\n"              # line 2: in mg/L? mg/dL? (x 10)
           "L2;101;CRP;<0.5;;\n"           # line 3: censored, the same
           "L3;102;CRP;;;\n"               # line 4: no result: fine
           "L4;102;HCG;12;;\n"             # line 5: a qualitative test has no unit
           "L5;103;CRP;5;mg/L;0.5\n"       # line 6: fine
           "L6;104;CRP;Not done;;0.5\n")   # line 7: a range limit without a unit
    tests = LAB_TESTS.replace("convert: {mg/dL: 10}}", "convert: {mg/dL: 10}, results: {Not done: ''}}")
    folder = _lab(tmp_path, raw, tests, LBORNRLO="{from: lab.LO}",
                  LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}")
    unitless = ("has no collected unit, so it is not known to be in {}: map the unit (a constant one where "
                "the CRF prints it)")
    # 10 variables:, 11-20 the ten LAB_RULES, 21 LBORNRLO, 22 LBSTNRLO
    assert errors_of(folder) == [
        f"error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '5' {unitless.format('mg/L')} (raw/lab.csv line 2)",
        f"error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '<0.5' {unitless.format('mg/L')} "
        "(raw/lab.csv line 3)",
        f"error: mappings/lb.yaml:22: LB: LBSTNRLO: '0.5' {unitless.format('the standard unit')} "
        "(raw/lab.csv line 7)"]


def test_declared_text_results_and_qualitative_tests_keep_converting(tmp_path):
    tests = LAB_TESTS.replace("convert: {mg/dL: 10}}", "convert: {mg/dL: 10}, results: {Not detected: '0'}}")
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT\n"
           "L1;101;CRP;Not detected;mg/L\n"
           "L2;101;HCG;NEGATIVE;\n"
           "L3;102;CRP;2,5;mg/dL\n"
           "L4;102;HCG;1,1*;\n")
    lb = sk.build(_lab(tmp_path, raw, tests, source="{file: raw/lab.csv, sep: ';', decimal: ','}")).datasets["LB"]
    assert by(lb, "LBSPID", "LBSTRESC") == {"L1": "0", "L2": "NEGATIVE", "L3": "25", "L4": "1,1*"}
    assert by(lb, "LBSPID", "LBSTRESN") == {"L1": 0, "L2": "", "L3": 25, "L4": ""}
    assert by(lb, "LBSPID", "LBSTRESU") == {"L1": "mg/L", "L2": "", "L3": "mg/L", "L4": ""}


def test_numbers_a_float_cannot_hold_are_errors(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT\n"
           "L1;101;CRP;1e999;mg/L\n"          # line 2: would be inf
           "L2;102;CRP;1e-12;mg/L\n"          # line 3: fine
           "L3;103;CRP;<1e999;mg/L\n"         # line 4: censored, would be '<inf'
           "L4;104;CRP;1e-400;mg/L\n"         # line 5: would be 0
           "L5;105;CRP;1e308;mg/dL\n")        # line 6: 1e308 x 10 is beyond the largest float
    assert errors_of(_lab(tmp_path, raw)) == [
        "error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '1e-400' is too small for a number "
        "(below 2.2E-308, it would become 0) (raw/lab.csv line 5)",
        "error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '1e308' is out of the range of numbers once "
        "converted to mg/L (× 10) (raw/lab.csv line 6)",
        "error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '1e999' is too large for a number "
        "(beyond 1.8E+308) (raw/lab.csv line 2)",
        "error: mappings/lb.yaml:8: LB: LBSTRESC: CRP: result '<1e999' is too large for a number "
        "(beyond 1.8E+308) (raw/lab.csv line 4)",
    ]


def test_tiny_numbers_keep_their_digits(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT\n"
           "L1;101;CRP;1e-12;mg/L\n"
           "L2;102;CRP;1.5e-11;mg/dL\n"       # x 10 = 1.5e-10
           "L3;103;CRP;0.03;mg/dL\n")         # x 10 = 0.30000000000000004 in binary: no noise
    lb = sk.build(_lab(tmp_path, raw)).datasets["LB"]
    assert by(lb, "LBSPID", "LBSTRESC") == {"L1": "0.000000000001", "L2": "0.00000000015", "L3": "0.3"}
    assert by(lb, "LBSPID", "LBSTRESN") == {"L1": pytest.approx(1e-12, rel=1e-12),
                                            "L2": pytest.approx(1.5e-10, rel=1e-12),
                                            "L3": pytest.approx(0.3, rel=1e-12)}


def test_decimals_never_round_a_result_to_zero(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: Glucose, testcd: GLUC, unit: mmol/L, convert: {mg/dL: 0.0555}, decimals: 2}
"""
    raw = "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;Glucose;0.01;mg/dL\nL2;101;Glucose;100;mg/dL\n"
    # 0.01 x 0.0555 = 0.000555, which 2 decimals would write as 0
    assert errors_of(_lab(tmp_path, raw, tests)) == [
        "error: mappings/lb.yaml:8: LB: LBSTRESC: GLUC: result '0.01' is 0.000555 mmol/L, which "
        "`decimals: 2` would round to 0 (raw/lab.csv line 2)"]


@pytest.mark.parametrize("x, text", [
    (1e-12, "0.000000000001"),
    (-1e-12, "-0.000000000001"),
    (1.23456789012345e-12, "0.00000000000123456789"),   # 10 significant digits
    (0.1 * 3, "0.3"),                                    # 0.30000000000000004: no float noise
    (1234567.891234, "1234567.891"),                     # 10 significant digits, as before
    (12345678901.0, "12345678901"),                      # an integer part is never cut
    (1.5e20, "150000000000000000000"),                   # never an exponent
    (2.0, "2"),
    (-0.0, "0"),
    (float("nan"), ""),
])
def test_format_number(x, text):
    assert format_number(x) == text


def test_format_number_with_decimals():
    assert format_number(5.2725, 2) == "5.27"
    assert format_number(12.0, 2) == "12"
    assert format_number(0.0, 2) == "0"
    with pytest.raises(ValueError, match=r"^0.004 rounds to 0 at 2 decimals$"):
        format_number(0.004, 2)


def test_numeric_variable_refuses_non_finite_text(tmp_path):
    raw = "SUBJID,TRT,DOSE\n101,A,1e999\n102,B,inf\n103,C,nan\n104,D,NaN\n105,E,Infinity\n106,F,5\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMDOSE="{from: cm.DOSE}")},
                           raw={"raw/cm.csv": raw})
    at = "error: mappings/cm.yaml:8: CM: CMDOSE:"
    assert errors_of(folder) == [
        f"{at} '1e999' is too large for a number (beyond 1.8E+308) (raw/cm.csv line 2)",
        f"{at} 'Infinity' is not a number (raw/cm.csv line 6)",
        f"{at} 'NaN' is not a number (raw/cm.csv line 5)",
        f"{at} 'inf' is not a number (raw/cm.csv line 3)",
        f"{at} 'nan' is not a number (raw/cm.csv line 4)",
    ]


def test_numeric_constant_must_be_finite(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMDOSE="{constant: .inf}")},
                           raw={"raw/cm.csv": "SUBJID,TRT\n101,A\n102,B\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: CMDOSE: 'inf' is not a number (raw/cm.csv lines 2, 3)"]


def test_converted_range_limit_beyond_the_largest_float(tmp_path):
    raw = "SPID;SUBJID;TEST;RESULT;UNIT;LO\nL1;101;CRP;1;mg/dL;1e308\nL2;102;CRP;1;mg/dL;0.5\n"
    folder = _lab(tmp_path, raw, LBORNRLO="{from: lab.LO}",
                  LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}")
    # 10 variables:, 11-20 the ten LAB_RULES, 21 LBORNRLO, 22 LBSTNRLO
    assert errors_of(folder) == [
        "error: mappings/lb.yaml:22: LB: LBSTNRLO: '1e308' is out of the range of numbers once converted to "
        "the standard unit (raw/lab.csv line 2)"]
    lb = sk.build(_lab(tmp_path / "ok", raw.replace("1e308", "2"), LBORNRLO="{from: lab.LO}",
                       LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}")).datasets["LB"]
    assert by(lb, "LBSPID", "LBSTNRLO") == {"L1": 20, "L2": 5}


def test_converted_range_limit_below_the_smallest_float(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: Glucose, testcd: GLUC, unit: mmol/L, convert: {mg/dL: 0.0555}}
"""
    raw = "SPID;SUBJID;TEST;RESULT;UNIT;LO\nL1;101;Glucose;90;mg/dL;1e-307\nL2;102;Glucose;90;mg/dL;70\n"
    folder = _lab(tmp_path, raw, tests, LBORNRLO="{from: lab.LO}",
                  LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}")
    # 1e-307 x 0.0555 = 5.55e-309, below the smallest normal float, as a result would be
    # 9 variables:, 10-19 the ten LAB_RULES, 20 LBORNRLO, 21 LBSTNRLO
    assert errors_of(folder) == [
        "error: mappings/lb.yaml:21: LB: LBSTNRLO: '1e-307' is out of the range of numbers once converted to "
        "the standard unit (raw/lab.csv line 2)"]


def test_standard_numeric_of_a_mapped_result_refuses_overflow(tmp_path):
    rules = {"USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}', "LBTESTCD": "{from: lab.TESTCD}",
             "LBTEST": "{from: lab.TEST}", "LBSTRESC": "{from: lab.RESULT}",
             "LBSTRESN": "{derive: standard_numeric, of: LBSTRESC}", "LBSEQ": "{derive: seq, order: [LBTESTCD]}"}
    text = sk.mapping("LB", {"lab": "{file: raw/lab.csv}"}, rules)
    raw = "SUBJID,TESTCD,TEST,RESULT\n101,CRP,C Reactive Protein,1e999\n102,CRP,C Reactive Protein,3\n"
    folder = sk.make_study(tmp_path, mappings={"lb": text}, raw={"raw/lab.csv": raw})
    # 1 domain, 2 sources, 3 lab, 4 variables, 5-7 USUBJID LBTESTCD LBTEST, 8 LBSTRESC, 9 LBSTRESN
    assert errors_of(folder) == [
        "error: mappings/lb.yaml:9: LB: LBSTRESN: '1e999' is too large for a number (beyond 1.8E+308) "
        "(raw/lab.csv line 2)"]


def test_read_numbers_reads_what_python_reads():
    """Arrow (RE2) matches ASCII text, Python's `re` the rest: both read digits 0-9 only."""
    texts = ["12", " 2.5 ", "\u0663", "1\x1c", "1e999", "-1e999", "1e-400", "0e-400", "0.000", "inf",
             "NaN", "1,5", "", "  ", "<5"]
    values, why = read_numbers(texts)
    nan = float("nan")
    assert values.tolist() == pytest.approx([12.0, 2.5,
                                             nan,              # '\u0663', the Arabic-Indic digit 3: not 0-9
                                             1.0,              # \x1c is whitespace to `re`, not to float()
                                             nan, nan, nan, 0.0, 0.0, nan, nan, nan, nan, nan, nan],
                                            nan_ok=True)
    large, small, no = TOO_LARGE, TOO_SMALL, "is not a number"
    assert why.tolist() == ["", "", no, "", large, large, small, "", "", no, no, no, "", "", no]


def test_results_and_factors_that_yaml_would_turn_into_other_values(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
results: {Positive: yes, Absent: .nan}
entries:
  - {match: CRP, testcd: CRP, unit: mg/L, convert: {mg/dL: .inf, g/L: 0}, results: {Trace: null}}
"""
    # line 7: `results:` of tests; line 9: the CRP entry
    assert errors_of(_lab(tmp_path, "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;CRP;1;mg/L\n", tests)) == [
        "error: mappings/lb.yaml:9: tests: results: 'Trace': None is not a result text or a finite number "
        "(quote yes/no/true/false/null to mean the text)",
        "error: mappings/lb.yaml:9: tests: convert: mg/dL: inf is not a positive finite factor",
        "error: mappings/lb.yaml:9: tests: convert: g/L: 0 is not a positive finite factor",
        "error: mappings/lb.yaml:7: tests: results: 'Positive': True is not a result text or a finite number "
        "(quote yes/no/true/false/null to mean the text)",
        "error: mappings/lb.yaml:7: tests: results: 'Absent': nan is not a result text or a finite number "
        "(quote yes/no/true/false/null to mean the text)",
    ]


def test_misspelt_codelists_of_the_tests_dictionary(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTSTCD
test_codelist: LBTST
entries:
  - {match: CRP, testcd: CRP, unit: mg/L}
  - {match: HCG, testcd: HCG, test: Choriogonadotropin Beta}
"""
    # 4 tests, 5 from, 6 codelist, 7 test_codelist: each reported once, at its own line
    assert errors_of(_lab(tmp_path, "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;CRP;1;mg/L\n", tests)) == [
        "error: mappings/lb.yaml:6: tests: codelist: no codelist 'LBTSTCD' in sdtm CT 2025-03-28; did you "
        "mean LBTESTCD, MBTESTCD, BSTESTCD?",
        "error: mappings/lb.yaml:7: tests: test_codelist: no codelist 'LBTST' in sdtm CT 2025-03-28; did you "
        "mean LBTEST, LBTESTCD, MBTEST?"]


def test_matched_code_without_a_test_name(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
test_codelist: NY
match_codes: true
entries:
  - {match: Glucose, testcd: GLUC, test: Glucose}
"""
    raw = "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;Glucose;5;mmol/L\nL2;101;CRP;1;mg/L\n"
    # CRP is a term of LBTESTCD, but codelist NY (No Yes Response) names no test: never an empty LBTEST
    assert errors_of(_lab(tmp_path, raw, tests)) == [
        "error: mappings/lb.yaml: LB: collected test code 'CRP': CRP has no test name in codelist NY; "
        "give it an entry with `test:` (raw/lab.csv line 3)"]


# ============================================================== 2. a list of date formats

def _cm_dates(tmp_path, raw, formats):
    text = sk.cm_mapping(CMSTDTC="{date: cm.STDAT, format: %s}" % formats)
    return sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": raw})


def test_value_read_as_two_different_dates_is_ambiguous(tmp_path):
    raw = ("SUBJID,TRT,STDAT\n"
           "101,A,12/31/2016\n"     # line 2: only MM/dd/yyyy
           "102,B,05/06/2017\n"     # line 3: 6 May or 5 June
           "103,C,05/05/2017\n"     # line 4: the same date either way: fine
           "104,D,05/06/2017\n")    # line 5
    assert errors_of(_cm_dates(tmp_path, raw, "[MM/dd/yyyy, dd/MM/yyyy]")) == [
        "error: mappings/cm.yaml:8: CM: CMSTDTC: ambiguous date '05/06/2017' in cm.STDAT: MM/dd/yyyy reads "
        "it as 2017-05-06, dd/MM/yyyy as 2017-06-05 (raw/cm.csv lines 3, 5); declare only the format the "
        "export uses"]


def test_column_mixing_day_first_and_month_first_is_an_error(tmp_path):
    raw = ("SUBJID,TRT,STDAT\n"
           "101,A,12/31/2016\n"     # line 2: only month-first
           "102,B,13/01/2017\n"     # line 3: only day-first
           "103,C,01/01/2017\n")    # line 4: the same either way
    assert errors_of(_cm_dates(tmp_path, raw, "[MM/dd/yyyy, dd/MM/yyyy]")) == [
        "error: mappings/cm.yaml:8: CM: CMSTDTC: cm.STDAT mixes date formats that order day and month "
        "differently: only MM/dd/yyyy reads '12/31/2016' (raw/cm.csv line 2) and only dd/MM/yyyy reads "
        "'13/01/2017' (raw/cm.csv line 3); one column must keep one order of day and month"]


def test_first_date_names_its_related_column(tmp_path):
    raw = dict(sk.DM_RAW)
    raw["raw/ex.csv"] = ("SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
                         "101,03/10/2021,09:30,5\n"     # line 2: 10 March or 3 October
                         "101,03/24/2021,10:00,5\n"     # line 3: only month-first
                         "102,03/12/2021,,5\n"
                         "103,03/15/2021,08:00,5\n")
    ex = "source: ex, date: EXSTDAT, format: [MM/dd/yyyy, dd/MM/yyyy]"
    text = sk.dm_mapping(RFSTDTC="{first_date: {%s}}" % ex, RFENDTC=None, RFXSTDTC=None, RFXENDTC=None,
                         ACTARMCD=None, ACTARM=None)
    folder = sk.make_study(tmp_path, mappings={"dm": text}, raw=raw)
    # 1 domain, 2 sources, 3 dm, 4 ex, 5 variables, 6 USUBJID, 7 SUBJID, 8 RFSTDTC
    line = 8
    assert errors_of(folder) == [
        f"error: mappings/dm.yaml:{line}: DM: RFSTDTC: ambiguous date '03/10/2021' in ex.EXSTDAT: MM/dd/yyyy "
        "reads it as 2021-03-10, dd/MM/yyyy as 2021-10-03 (raw/ex.csv line 2); declare only the format the "
        "export uses",
        f"error: mappings/dm.yaml:{line}: DM: RFSTDTC: ambiguous date '03/12/2021' in ex.EXSTDAT: MM/dd/yyyy "
        "reads it as 2021-03-12, dd/MM/yyyy as 2021-12-03 (raw/ex.csv line 4); declare only the format the "
        "export uses"]


def test_formats_that_agree_stay_fine(tmp_path):
    raw = ("SUBJID,TRT,STDAT\n"
           "101,A,05-MAR-2017\n"
           "102,B,5-MAR-2017\n"
           "103,C,05-MAR-2017 10:30\n"
           "104,D,2017-03-06\n"
           "105,E,07/03/2017\n")
    folder = _cm_dates(tmp_path, raw, "[dd-MMM-yyyy, d-MMM-yyyy, dd-MMM-yyyy HH:mm, yyyy-MM-dd, dd/MM/yyyy]")
    cm = sk.build(folder).datasets["CM"]
    assert by(cm, "CMTRT", "CMSTDTC") == {"A": "2017-03-05", "B": "2017-03-05", "C": "2017-03-05T10:30",
                                         "D": "2017-03-06", "E": "2017-03-07"}


@pytest.mark.parametrize("a, b, expected", [
    ("MM/dd/yyyy", "dd/MM/yyyy", True),
    ("M/d/yyyy", "dd.MM.yyyy", True),
    ("yyyy-MM-dd", "yyyy-dd-MM", True),
    ("yyyy-MM-dd", "dd/MM/yyyy", False),     # year-first beside day-first: no value reads both ways
    ("dd-MMM-yyyy", "MMM dd yyyy", False),   # a text month is never a day
    ("dd/MM/yyyy", "d/M/yyyy", False),
    ("dd/MM/yyyy", "dd/MM/yyyy HH:mm", False),
    ("MM/yyyy", "dd/MM/yyyy", False),
])
def test_contradicting_formats(a, b, expected):
    assert dates.contradicts(a, b) is expected
    assert dates.contradicts(b, a) is expected


def test_unreadable_format_is_a_mapping_error(tmp_path):
    folder = _cm_dates(tmp_path, "SUBJID,TRT,STDAT\n101,A,01/02/21\n", "dd/MM/yy")
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CMSTDTC.format: date format 'dd/MM/yy': 2-digit years are ambiguous "
        "(1920 or 2020?); declare `year_window:`, the first of the 100 years they stand for (1930: 30 is "
        "1930, 29 is 2029)"]


# ============================================================== 3. conditions

ALLOWED = "allowed operators: in, not, empty"


@pytest.mark.parametrize("rule, message", [
    ("{from: cm.CAT, where: {cm.CAT: [[PRIMARY DIAGNOSIS]]}}",
     "CMCAT.where: cm.CAT: [['PRIMARY DIAGNOSIS']] is not a condition (a list or mapping inside a list); "
     "give a value, a list of values, or one of the operators in, not, empty"),
    ("{from: cm.CAT, where: {cm.CAT: {emtpy: false}}}",
     f"CMCAT.where: cm.CAT: unknown operator 'emtpy' (did you mean 'empty'?); {ALLOWED}"),
    ("{from: cm.CAT, where: {cm.CAT: {ge: X}}}",
     f"CMCAT.where: cm.CAT: unknown operator 'ge'; {ALLOWED}"),
    ("{from: cm.CAT, where: {cm.CAT: {empty: 'no'}}}",
     "CMCAT.where: cm.CAT: `empty:` takes true or false, not 'no'"),
    ("{from: cm.CAT, where: {cm.CAT: {in: [[A], B]}}}",
     "CMCAT.where: cm.CAT: `in:` takes a value or a list of values, not [['A'], 'B']"),
    ("{from: cm.CAT, where: {cm.CAT: {}}}",
     f"CMCAT.where: cm.CAT: an empty operator mapping; {ALLOWED}"),
    ("{from: cm.CAT, where: {cm.CAT: A}, else: {constant: X, where: {cm.CAT: {not: [[A]]}}}}",
     "CMCAT.else.where: cm.CAT: `not:` takes a value or a list of values, not [['A']]"),
])
def test_condition_schema(tmp_path, rule, message):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMCAT=rule)},
                           raw={"raw/cm.csv": "SUBJID,TRT,CAT\n101,A,PRIMARY DIAGNOSIS\n"})
    assert errors_of(folder) == [f"error: mappings/cm.yaml:8: {message}"]


def test_condition_schema_in_sources_aggregates_and_derivations(tmp_path):
    cm = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping("{file: raw/cm.csv, where: {CAT: {emtpy: false}}}")},
                       raw={"raw/cm.csv": "SUBJID,TRT,CAT\n101,A,X\n"}, name="cm")
    assert errors_of(cm) == [f"error: mappings/cm.yaml:3: sources.cm.where: CAT: unknown operator 'emtpy' "
                             f"(did you mean 'empty'?); {ALLOWED}"]
    text = sk.dm_mapping(
        RFSTDTC="{first_date: {source: ex, date: EXSTDAT, format: yyyy-MM-dd, where: {EXDOSE: [[5]]}}}",
        ACTARMCD="{derive: actual_arm_code, planned: ARMCD, exposure: ex, exposure_where: {EXDOSE: {gt: 0}}}")
    dm = sk.make_study(tmp_path, mappings={"dm": text}, raw=sk.DM_RAW, name="dm")
    # 1 domain, 2 sources, 3 dm, 4 ex, 5 variables, 6 USUBJID, 7 SUBJID, 8 RFSTDTC, ... 22 ACTARMCD
    assert errors_of(dm) == [
        "error: mappings/dm.yaml:8: RFSTDTC.first_date.where: EXDOSE: [[5]] is "
        "not a condition (a list or mapping inside a list); give a value, a list of values, or one of the "
        "operators in, not, empty",
        "error: mappings/dm.yaml:22: ACTARMCD.exposure_where: EXDOSE: unknown "
        f"operator 'gt'; {ALLOWED}"]


# ============================================================== 4. what the validator calls an error

def test_subject_twice_in_dm(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm()},
                           raw={"raw/dm.csv": "SUBJID\n101\n102\n101\n"})
    assert errors_of(folder) == [
        "error: mappings/dm.yaml:5: DM: USUBJID: subject 'TST01-101' has several DM records: DM must have one "
        "record per USUBJID (raw/dm.csv lines 2, 4)"]


def test_subjid_of_two_subjects(tmp_path):
    text = sk.minimal_dm(USUBJID='{template: "{STUDYID}-{dm.SITE}-{dm.SUBJID}"}')
    folder = sk.make_study(tmp_path, mappings={"dm": text},
                           raw={"raw/dm.csv": "SUBJID,SITE\n101,S1\n102,S1\n101,S2\n"})
    assert errors_of(folder) == [
        "error: mappings/dm.yaml:6: DM: SUBJID: SUBJID '101' is the SUBJID of 2 subjects ('TST01-S1-101', "
        "'TST01-S2-101'): SUBJID must be unique within the study (raw/dm.csv lines 2, 4)"]


def test_line_breaks_and_control_characters_in_values(tmp_path):
    raw = ('SUBJID,TRT,IND,NOTE\n'
           '101,ASPIRIN,"Head\nache",ok\n'              # lines 2-3
           '102,IBUPROFEN,"Fever\r\nand\tpain",ok\n'    # lines 4-5
           '103,PARACETAMOL,Pain,"bell\x07"\n')          # line 6
    text = sk.cm_mapping(CMINDC="{from: cm.IND, transliterate: true}",
                         CMNOTE='{from: cm.NOTE, supp: {label: "Note"}}')
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": raw})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:9: CM: CMNOTE: 'bell\\x07' contains the control character U+0007: SDTM text "
        "is one line of printable ASCII; correct the raw value (raw/cm.csv line 6)"]
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMINDC="{from: cm.IND, transliterate: true}")},
                           raw={"raw/cm.csv": raw}, name="no-supp")
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: CMINDC: 'Fever\\r\\nand\\tpain' contains a carriage return (CR): SDTM "
        "text is one line of printable ASCII; correct the raw value: TST01-102 (raw/cm.csv line 4)",
        "error: mappings/cm.yaml:8: CM: CMINDC: 'Head\\nache' contains a line feed (LF): SDTM text is one "
        "line of printable ASCII; correct the raw value: TST01-101 (raw/cm.csv line 2)"]


def test_characters_without_an_ascii_transliteration(tmp_path):
    raw = ("SUBJID,TRT,IND\n"
           "101,A,Cr\u00e8me br\u00fbl\u00e9e\n"     # line 2: accents go
           "102,B,Pain \u00bd dose\n"                  # line 3: '½' is '1⁄2' (a fraction slash)
           "103,C,\u0141\u00f3d\u017a trip\n"        # line 4: 'Ł' has no ASCII form
           "104,D,Pain \u00bd dose\n")                 # line 5
    text = sk.cm_mapping(CMINDC="{from: cm.IND, transliterate: true}")
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": raw})
    # once dropped: 'Pain 12 dose', 'odz trip'
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: CMINDC: 'Pain \u00bd dose': '\u00bd' (U+00BD) has no ASCII "
        "transliteration; correct the raw value (XPT v5 takes ASCII only) (raw/cm.csv lines 3, 5)",
        "error: mappings/cm.yaml:8: CM: CMINDC: '\u0141\u00f3d\u017a trip': '\u0141' (U+0141) has no ASCII "
        "transliteration; correct the raw value (XPT v5 takes ASCII only) (raw/cm.csv line 4)"]
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": raw.split("102,")[0]},
                           name="accents")
    assert sk.col(sk.build(folder).datasets["CM"], "CMINDC") == ["Creme brulee"]


def test_dtc_mapped_without_date_must_be_iso8601(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMSTDTC="{from: cm.ST}")},
                           raw={"raw/cm.csv": "SUBJID,TRT,ST\n101,A,15-MAR-2021\n102,B,2021-03-15\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: CMSTDTC: '15-MAR-2021' is not ISO 8601 date/time text; read raw dates "
        "with `date:` and `format:` (raw/cm.csv line 2)"]


def test_subject_not_in_dm(tmp_path):
    raw = {**sk.DM_RAW, "raw/cm.csv": "SUBJID,TRT\n101,A\n104,B\n105,C\n104,D\n"}
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(), "cm": sk.cm_mapping()}, raw=raw)
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:5: CM: USUBJID: subject 'TST01-104' is not in DM: every record belongs to a "
        "subject of DM (raw/cm.csv lines 3, 5)",
        "error: mappings/cm.yaml:5: CM: USUBJID: subject 'TST01-105' is not in DM: every record belongs to a "
        "subject of DM (raw/cm.csv line 4)"]


def test_mapped_studyid_domain_and_seq(tmp_path):
    text = sk.cm_mapping(CMSEQ="{from: cm.SEQ}", STUDYID="{from: cm.STUDY}", DOMAIN="{constant: XX}")
    raw = "STUDY,SUBJID,TRT,SEQ\nTST01,101,A,1\nTST02,102,B,1\nTST01,101,C,1\nTST01,101,D,2\n"
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": raw})
    # 5 USUBJID, 6 CMSEQ, 7 CMTRT, 8 STUDYID, 9 DOMAIN
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: STUDYID: STUDYID 'TST02' is not 'TST01' (study.yaml "
        "`study: {id: ...}`) (raw/cm.csv line 3)",
        "error: mappings/cm.yaml:9: CM: DOMAIN: DOMAIN 'XX' is not 'CM' (the mapping's `domain:`) "
        "(raw/cm.csv lines 2, 3, 4, 5)",
        "error: mappings/cm.yaml:6: CM: CMSEQ: CMSEQ 1 is repeated for subject 'TST01-101': CMSEQ must be "
        "unique per USUBJID (use `derive: seq`) (raw/cm.csv lines 2, 4)"]


def test_tests_dictionary_names_one_test_per_code(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: CRP, testcd: CRP, test: Glucose}
  - {match: CRP2, testcd: CRP, test: C-Reactive Protein}
  - {match: CRP3, testcd: CRPX, test: C-Reactive Protein}
"""
    folder = _lab(tmp_path, "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;CRP;1;mg/L\n", tests)
    # CT: 'Glucose' is LBTEST of GLUC (C105585); entries at lines 8, 9, 10
    assert errors_of(folder) == [
        "error: mappings/lb.yaml:8: tests: 'Glucose' is the CT name of GLUC (LBTEST), not of CRP: drop "
        "`test:` to take CRP's CT name",
        "error: mappings/lb.yaml:9: tests: CRP has a second test name ('C-Reactive Protein'; the entry at "
        "line 8 gives 'Glucose')",
        "error: mappings/lb.yaml:10: tests: C-Reactive Protein has a second test code ('CRPX'; the entry at "
        "line 9 gives 'CRP')"]


# ============================================================== 5. long values in messages

def test_shown():
    assert shown("ORAL") == "'ORAL'"
    assert shown("Head\nache\r\t\x00") == "'Head\\nache\\r\\t\\x00'"
    assert shown("é") == "'é'"
    assert shown("x" * 100) == "'" + "x" * 100 + "'"
    assert shown("x" * 100_000) == "'" + "x" * 100 + "…' (100,000 characters)"
    assert shown("\n" * 150, limit=2) == "'\\n\\n…' (150 characters)"


def test_a_100000_character_value_is_cut_in_messages(tmp_path):
    big = "X" * 100_000
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMROUTE="{from: cm.ROUTE, codelist: ROUTE}")},
                           raw={"raw/cm.csv": f"SUBJID,TRT,ROUTE\n101,A,{big}\n102,B,ORAL\n"})
    (message,) = errors_of(folder)
    assert message.startswith("error: mappings/cm.yaml:8: CM: CMROUTE: '" + "X" * 100 + "…' (100,000 "
                              "characters) is not in codelist ROUTE (C66729) and no synonym maps it; ")
    assert message.endswith("(raw/cm.csv line 2)")
    assert len(message) < 1000


def test_a_100000_character_number_is_cut_in_messages(tmp_path):
    big = "1" * 99_999 + "*"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMDOSE="{from: cm.DOSE}")},
                           raw={"raw/cm.csv": f"SUBJID,TRT,DOSE\n101,A,{big}\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CM: CMDOSE: '" + "1" * 100 + "…' (100,000 characters) is not a number "
        "(raw/cm.csv line 2)"]


# ============================================================== 6. a synonyms path that is not a file

def _synonyms_study(tmp_path, synonyms):
    text = sk.cm_mapping(CMROUTE="{from: cm.ROUTE, codelist: ROUTE, synonyms: %s}" % synonyms)
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw={"raw/cm.csv": "SUBJID,TRT,ROUTE\n101,A,by mouth\n"})
    terms = folder / "mappings" / "terms"
    terms.mkdir()
    (terms / "list.yaml").write_text("- ORAL\n")
    (terms / "bad.yaml").write_text("synonyms:\n  by mouth: {x: 1}\n  iv: null\n")
    (terms / "outdented.yaml").write_text("synonyms:\n  by mouth: ORAL\niv: INTRAVENOUS\n")
    return folder


def test_synonyms_folder_is_an_error_not_a_traceback(tmp_path):
    (message,) = errors_of(_synonyms_study(tmp_path, "terms"))
    # The path check of the inputs (or load_synonyms) names the mapping line and the path.
    assert message.startswith("error: mappings/cm.yaml:8: ")
    assert "terms" in message and "folder" in message


def _ctx(folder):
    mapping = SimpleNamespace(path=folder / "mappings" / "cm.yaml", file="mappings/cm.yaml")
    return SimpleNamespace(mapping=mapping, where=lambda variable, *path: {
        "file": "mappings/cm.yaml", "line": 8, "domain": "CM", "variable": variable})


@pytest.mark.parametrize("synonyms, message", [
    ("terms", "synonym table mappings/terms is a folder: `synonyms:` names a YAML file relative to the "
              "mapping file"),
    ("terms/missing.yaml", "synonym table mappings/terms/missing.yaml is not found: `synonyms:` names a YAML "
                           "file relative to the mapping file"),
    ("terms/list.yaml", "synonym table mappings/terms/list.yaml must map raw values to terms (a YAML mapping, "
                        "optionally under `synonyms:`)"),
    ("terms/bad.yaml", "synonym table mappings/terms/bad.yaml: entries must map text to text (quote "
                       "yes/no/true/false/null to mean the text): 'by mouth': {'x': 1}, 'iv': None"),
    ({"by mouth": True}, "the synonym table: entries must map text to text (quote yes/no/true/false/null to "
                         "mean the text): 'by mouth': True"),
    # 'iv' beside `synonyms:` instead of under it would be left out
    ("terms/outdented.yaml", "synonym table mappings/terms/outdented.yaml: `synonyms:` must be the only "
                             "top-level key (also found: iv; indent them under it)"),
])
def test_load_synonyms_errors(tmp_path, synonyms, message):
    folder = _synonyms_study(tmp_path, "terms/list.yaml")
    with pytest.raises(ConversionError) as info:
        load_synonyms(_ctx(folder), "CMROUTE", synonyms, ("variables", "CMROUTE"))
    assert [str(i) for i in info.value.issues] == [f"error: mappings/cm.yaml:8: CM: CMROUTE: {message}"]


def test_synonym_file_errors_through_a_conversion(tmp_path):
    assert errors_of(_synonyms_study(tmp_path, "terms/bad.yaml")) == [
        "error: mappings/cm.yaml:8: CM: CMROUTE: synonym table mappings/terms/bad.yaml: entries must map text "
        "to text (quote yes/no/true/false/null to mean the text): 'by mouth': {'x': 1}, 'iv': None"]


def test_digits_other_than_0_to_9_are_not_numbers(tmp_path):
    """float() reads '４０' (full-width) and '٤٦' (Arabic-Indic); an SDTM number is written with 0-9."""
    text = sk.minimal_dm(AGE="{from: dm.AGE}", AGEU="{constant: YEARS}")
    folder = sk.make_study(tmp_path, mappings={"dm": text},
                           raw={"raw/dm.csv": "SUBJID,AGE\n101,\uff14\uff10\n102,\u0664\u0666\n103,40\n"})
    line = sk.line_of(text, "AGE:")
    assert errors_of(folder) == [
        f"error: mappings/dm.yaml:{line}: DM: AGE: '\u0664\u0666' is not a number (raw/dm.csv line 3)",
        f"error: mappings/dm.yaml:{line}: DM: AGE: '\uff14\uff10' is not a number (raw/dm.csv line 2)"]
