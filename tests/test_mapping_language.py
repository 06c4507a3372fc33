"""The mapping language, feature by feature, as docs/mapping-language.md describes it.

Every expected value is written by hand from the document, the SDTMIG 3.4 tables in specs/ and the
CDISC CT 2025-03-28 package in specs/ct (codes and synonyms quoted in comments).  A small CM mapping
(CM has only Req and Perm variables, so nothing else appears) or a minimal DM is the vehicle for
the features that are not domain specific.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import by, col, records  # noqa: E402

U = "TST01-"  # USUBJID prefix of the default study


def build_cm(tmp_path, raw_cm: str | bytes, source: str = "{file: raw/cm.csv}", *,
             raw_name: str = "raw/cm.csv", extra_raw: dict | None = None, **rules):
    mappings = {"cm": sk.cm_mapping(source, **rules)}
    raw = {raw_name: raw_cm, **(extra_raw or {})}
    folder = sk.make_study(tmp_path, mappings=mappings, raw=raw)
    return sk.build(folder).datasets["CM"]


# ====================================================================== §2 sources: reading options

def test_encoding_latin1(tmp_path):
    raw = "SUBJID,TRT\n101,Crème\n102,Aspirin\n".encode("latin-1")  # è is the single byte 0xE8
    cm = build_cm(tmp_path, raw, "{file: raw/cm.csv, encoding: latin-1}",
                  CMTRT='{from: cm.TRT, map: {"Crème": CREME}}')
    # the map only matches if 0xE8 was decoded as è
    assert records(cm, "USUBJID", "CMTRT") == [(U + "101", "CREME"), (U + "102", "Aspirin")]


@pytest.mark.parametrize("source", ["{file: raw/cm.csv}", "{file: raw/cm.csv, encoding: latin-1}"])
def test_utf8_bom_is_always_removed(tmp_path, source):
    raw = b"\xef\xbb\xbfSUBJID,TRT\n101,ASPIRIN\n102,IBUPROFEN\n"
    cm = build_cm(tmp_path, raw, source)
    # the first column is found as SUBJID (not '\ufeffSUBJID' / 'ï»¿SUBJID')
    assert col(cm, "USUBJID") == [U + "101", U + "102"]
    assert col(cm, "CMTRT") == ["ASPIRIN", "IBUPROFEN"]


def test_values_are_read_as_text(tmp_path):
    raw = "SUBJID,TRT,DOSE\n007,1E3,1.50\n010,0012,2\n"
    cm = build_cm(tmp_path, raw, CMDOSTXT="{from: cm.DOSE}")
    # no number inference on reading: leading zeros, exponent-like text and trailing zeros survive
    assert records(cm, "USUBJID", "CMTRT", "CMDOSTXT") == [(U + "007", "1E3", "1.50"), (U + "010", "0012", "2")]


def test_sep_semicolon(tmp_path):
    raw = "SUBJID;TRT;DOSE\n101;ASPIRIN;100\n102;IBUPROFEN;200\n"
    cm = build_cm(tmp_path, raw, '{file: raw/cm.csv, sep: ";"}', CMDOSE="{from: cm.DOSE}")
    assert records(cm, "USUBJID", "CMTRT", "CMDOSE") == [
        (U + "101", "ASPIRIN", 100), (U + "102", "IBUPROFEN", 200)]


def test_tsv_defaults_to_tab(tmp_path):
    raw = "SUBJID\tTRT\tDOSE\n101\tASPIRIN, 100 MG\t100\n"
    cm = build_cm(tmp_path, raw, "{file: raw/cm.tsv}", raw_name="raw/cm.tsv", CMDOSE="{from: cm.DOSE}")
    # the comma inside the value is not a separator in a .tsv
    assert records(cm, "CMTRT", "CMDOSE") == [("ASPIRIN, 100 MG", 100)]


def test_decimal_comma(tmp_path):
    raw = "SUBJID;TRT;DOSE\n101;A;1,25\n102;B;<0,5\n"
    cm = build_cm(tmp_path, raw, '{file: raw/cm.csv, sep: ";", decimal: ","}',
                  CMDOSTXT="{from: cm.DOSE}",
                  CMDOSE='{from: cm.DOSE, where: {cm.SUBJID: "101"}}')
    assert col(cm, "CMDOSTXT") == ["1.25", "<0.5"]
    assert col(cm, "CMDOSE") == [pytest.approx(1.25), ""]


def test_header_row(tmp_path):
    raw = "Subject Identifier,Medication\nSUBJID,TRT\n101,ASPIRIN\n102,PARACETAMOL\n"
    cm = build_cm(tmp_path, raw, "{file: raw/cm.csv, header_row: 2}")
    # the label row is not data: two records, not three
    assert records(cm, "USUBJID", "CMTRT") == [(U + "101", "ASPIRIN"), (U + "102", "PARACETAMOL")]


def test_header_row_raw_lines_count_from_the_top_of_the_file(tmp_path):
    raw = "Subject Identifier,Medication,Dose\nSUBJID,TRT,DOSE\n101,ASPIRIN,100\n102,PARACETAMOL,lots\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        "{file: raw/cm.csv, header_row: 2}", CMDOSE="{from: cm.DOSE}")}, raw={"raw/cm.csv": raw})
    text = sk.error_text(sk.conversion_error(folder))
    # 'lots' is on the 4th line of the file (label row, header row, 101, 102)
    assert "lots" in text
    assert 4 in sk.lines_after(text, "lots")


def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_excel_sheet(tmp_path):
    data = _xlsx({
        "Cover": [["Export of the CM form"], ["generated 2024-01-01"]],
        "CM": [["SUBJID", "TRT", "DOSE"], ["007", "ASPIRIN", 100], ["008", "IBUPROFEN", 2.5]],
    })
    cm = build_cm(tmp_path, data, "{file: raw/cm.xlsx, sheet: CM}", raw_name="raw/cm.xlsx",
                  CMDOSTXT="{from: cm.DOSE}", CMDOSE="{from: cm.DOSE}")
    # '007' is a text cell and stays '007'; numeric cells are read as their text
    assert records(cm, "USUBJID", "CMTRT", "CMDOSTXT", "CMDOSE") == [
        (U + "007", "ASPIRIN", "100", 100), (U + "008", "IBUPROFEN", "2.5", pytest.approx(2.5))]


def test_excel_default_is_first_sheet(tmp_path):
    data = _xlsx({
        "CM": [["SUBJID", "TRT"], ["101", "ASPIRIN"]],
        "Other": [["SUBJID", "TRT"], ["999", "WRONG SHEET"]],
    })
    cm = build_cm(tmp_path, data, "{file: raw/cm.xlsx}", raw_name="raw/cm.xlsx")
    assert records(cm, "USUBJID", "CMTRT") == [(U + "101", "ASPIRIN")]


def test_files_stacked_each_with_its_options(tmp_path):
    source = '{files: [{file: raw/cm_a.csv}, {file: raw/cm_b.csv, sep: ";", decimal: ","}]}'
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(source, CMDOSE="{from: cm.DOSE}")},
                           raw={"raw/cm_a.csv": "SUBJID,TRT,DOSE\n101,A,1.5\n",
                                "raw/cm_b.csv": "SUBJID;TRT;DOSE\n102;B;2,5\n103;C;10\n"})
    cm = sk.build(folder).datasets["CM"]
    assert records(cm, "USUBJID", "CMTRT", "CMDOSE") == [
        (U + "101", "A", pytest.approx(1.5)), (U + "102", "B", pytest.approx(2.5)), (U + "103", "C", 10)]


@pytest.mark.parametrize("keep, expected", [("decoded", ["Aspirin", "Ibuprofen"]),
                                            ("code", ["ASA01", "IBU02"])])
def test_twin_columns(tmp_path, keep, expected):
    raw = "SUBJID,TRT,TRT - Code\n101,Aspirin,ASA01\n102,Ibuprofen,IBU02\n"
    cm = build_cm(tmp_path, raw, '{file: raw/cm.csv, twin_columns: {suffix: " - Code", keep: %s}}' % keep)
    assert col(cm, "CMTRT") == expected


def test_column_names_with_spaces(tmp_path):
    raw = "SUBJID,TRT,TRT - Code\n101,Aspirin,ASA01\n"
    cm = build_cm(tmp_path, raw, CMDECOD='{from: "cm.TRT - Code"}')
    assert records(cm, "CMTRT", "CMDECOD") == [("Aspirin", "ASA01")]


WHERE_RAW = ("SUBJID,TRT,STAT,ROUTE\n"
             "101,A,,ORAL\n"
             "102,B,CANCELLED,ORAL\n"
             "103,C,DELETED,IV\n"
             "104,D,,\n")


@pytest.mark.parametrize("condition, kept", [
    ("{STAT: CANCELLED}", ["102"]),                              # equals
    ("{STAT: [CANCELLED, DELETED]}", ["102", "103"]),            # one of
    ("{STAT: {not: [CANCELLED]}}", ["101", "103", "104"]),       # none of
    ('{STAT: {not: [CANCELLED, ""]}}', ["103"]),                 # none of, with the empty value
    ("{ROUTE: {empty: false}}", ["101", "102", "103"]),          # not empty
    ("{STAT: {empty: true}}", ["101", "104"]),                   # empty
    ("{STAT: {empty: true}, ROUTE: ORAL}", ["101"]),             # all keys must hold
])
def test_source_where(tmp_path, condition, kept):
    cm = build_cm(tmp_path, WHERE_RAW, "{file: raw/cm.csv, where: %s}" % condition)
    assert col(cm, "USUBJID") == [U + s for s in kept]


DUP_RAW = ("SUBJID,TRT\n"
           "101,A\n"      # line 2
           "101,B\n"      # line 3
           "101,A\n"      # line 4: copy of line 2
           "102,C\n"      # line 5
           "101,B\n")     # line 6: copy of line 3


def test_dedupe_report_drops_copies_and_lists_them_in_run_json(tmp_path):
    from sdtm_rA.sdtm.convert import convert
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping("{file: raw/cm.csv, dedupe: report}")},
                           raw={"raw/cm.csv": DUP_RAW})
    out = tmp_path / "out"
    result = convert(folder, out, command=["test"])
    cm = result.datasets["CM"]
    assert records(cm, "USUBJID", "CMSEQ", "CMTRT") == [
        (U + "101", 1, "A"), (U + "101", 2, "B"), (U + "102", 1, "C")]
    run = json.loads((out / "run.json").read_text())
    text = "\n".join(f"{w.get('file', '')}:{w.get('line', '')} {w['message']}" for w in run["warnings"])
    assert "raw/cm.csv" in text
    assert {4, 6} <= sk.lines_in(text) | {w.get("line") for w in run["warnings"]}


def test_dedupe_error_refuses_duplicates(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping("{file: raw/cm.csv, dedupe: error}")},
                           raw={"raw/cm.csv": DUP_RAW})
    text = sk.error_text(sk.conversion_error(folder))
    assert "raw/cm.csv" in text
    assert {4, 6} <= sk.lines_in(text)


LB_SMALL_TESTS = """
from: lab.ITEM
codelist: LBTESTCD
entries:
  - {match: GLUC, testcd: GLUC, unit: mmol/L}
  - {match: CREAT, testcd: CREAT, unit: umol/L}
"""


def test_melt_wide_to_long_in_row_order(tmp_path):
    raw = ("SUBJID,DATE,GLUC,CREAT\n"
           "101,2021-03-10,5.1,80\n"
           "102,2021-03-12,6.0,95\n")
    lb = sk.mapping(
        "LB", {"lab": "{file: raw/lab.csv, melt: {columns: [GLUC, CREAT], name: ITEM, value: RESULT}}"},
        {"USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}',
         "LBTESTCD": "{derive: test_code}",
         "LBTEST": "{derive: test_name}",
         "LBORRES": "{from: lab.RESULT}",
         "LBDTC": "{date: lab.DATE, format: yyyy-MM-dd}",
         # every record of a subject has the same date: the order is the melted row order
         # (raw line, then the order of `columns:`)
         "LBSEQ": "{derive: seq, order: [LBDTC]}"},
        tests=LB_SMALL_TESTS)
    folder = sk.make_study(tmp_path, mappings={"lb": lb}, raw={"raw/lab.csv": raw})
    out = sk.build(folder).datasets["LB"]
    assert records(out, "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBORRES", "LBDTC") == [
        (U + "101", 1, "GLUC", "Glucose", "5.1", "2021-03-10"),
        (U + "101", 2, "CREAT", "Creatinine", "80", "2021-03-10"),
        (U + "102", 1, "GLUC", "Glucose", "6.0", "2021-03-12"),
        (U + "102", 2, "CREAT", "Creatinine", "95", "2021-03-12"),
    ]


def test_domain_source_joined_on_target_variables(tmp_path):
    cm = sk.cm_mapping(sources={"dmx": "{domain: DM, key: [USUBJID]}"},
                       CMCAT="{from: dmx.SITEID}", CMSTDTC="{from: dmx.RFXSTDTC}")
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(), "cm": cm},
                           raw={**sk.DM_RAW, "raw/cm.csv": "SUBJID,TRT\n103,B\n101,A\n"})
    out = sk.build(folder).datasets["CM"]
    # DM: 101 site S01, first dose 2021-03-10 09:30; 103 site S02, first dose 2021-03-15 08:00
    assert records(out, "USUBJID", "CMCAT", "CMSTDTC") == [
        (U + "101", "S01", "2021-03-10T09:30"), (U + "103", "S02", "2021-03-15T08:00")]


def test_subject_value_from_a_built_domain(tmp_path):
    cm = sk.cm_mapping(CMCAT="{derive: subject_value, domain: DM, variable: SITEID}")
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(), "cm": cm},
                           raw={**sk.DM_RAW, "raw/cm.csv": "SUBJID,TRT\n103,B\n101,A\n"})
    out = sk.build(folder).datasets["CM"]
    assert records(out, "USUBJID", "CMCAT") == [(U + "101", "S01"), (U + "103", "S02")]


# ====================================================================== §2 joined and related sources

def _join_study(tmp_path, ic_csv):
    dm = sk.mapping("DM", {"dm": "{file: raw/dm.csv}", "ic": "{file: raw/ic.csv, key: [SUBJID]}"},
                    {"USUBJID": '{template: "{STUDYID}-{dm.SUBJID}"}', "SUBJID": "{from: dm.SUBJID}",
                     "RFICDTC": "{date: ic.ICDAT, format: yyyy-MM-dd}",
                     "SITEID": "{from: dm.SITE}", "SEX": "{constant: U}", "COUNTRY": "{constant: USA}"})
    return sk.make_study(tmp_path, mappings={"dm": dm}, raw={
        "raw/dm.csv": "SUBJID,SITE\n101,S01\n102,S02\n103,S01\n104,S02\n", "raw/ic.csv": ic_csv})


def test_join_with_key(tmp_path):
    # the joined file lists the subjects in another order; 104 has no consent row
    folder = _join_study(tmp_path, "SUBJID,ICDAT\n103,2021-03-07\n101,2021-03-01\n102,2021-03-04\n")
    dm = sk.build(folder).datasets["DM"]
    assert by(dm, "SUBJID", "RFICDTC") == {"101": "2021-03-01", "102": "2021-03-04",
                                           "103": "2021-03-07", "104": ""}


def test_join_key_with_several_rows_is_an_error(tmp_path):
    folder = _join_study(tmp_path, "SUBJID,ICDAT\n101,2021-03-01\n102,2021-03-04\n101,2021-03-02\n")
    text = sk.error_text(sk.conversion_error(folder))
    assert "raw/ic.csv" in text
    assert {2, 4} <= sk.lines_in(text)
    assert "101" in text  # the offending key value


def test_first_date_last_date_with_where(tmp_path):
    ex_csv = ("SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
              "101,05-MAR-2021,08:00,0\n"     # dose 0: not an exposure
              "101,10-MAR-2021,09:30,5\n"
              "101,24-MAR-2021,,5\n"
              "101,31-MAR-2021,10:00,\n"      # dose missing: not an exposure
              "102,12-MAR-2021,0945,5\n")
    base = "source: ex, date: EXSTDAT, time: EXSTTIM, format: dd-MMM-yyyy, time_format: [HH:mm, HHmm]"
    where = ', where: {EXDOSE: {not: ["0", ""]}}'
    dm = sk.mapping("DM", {"dm": "{file: raw/dm.csv}", "ex": "{file: raw/ex.csv, key: [SUBJID]}"},
                    {"USUBJID": '{template: "{STUDYID}-{dm.SUBJID}"}', "SUBJID": "{from: dm.SUBJID}",
                     "RFSTDTC": "{first_date: {%s}}" % base,
                     "RFENDTC": "{last_date: {%s}}" % base,
                     "RFXSTDTC": "{first_date: {%s%s}}" % (base, where),
                     "RFXENDTC": "{last_date: {%s%s}}" % (base, where),
                     "SITEID": '{constant: "01"}', "SEX": "{constant: U}", "COUNTRY": "{constant: USA}"})
    folder = sk.make_study(tmp_path, mappings={"dm": dm},
                           raw={"raw/dm.csv": "SUBJID\n101\n102\n", "raw/ex.csv": ex_csv})
    out = sk.build(folder).datasets["DM"]
    assert records(out, "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC") == [
        ("101", "2021-03-05T08:00", "2021-03-31T10:00", "2021-03-10T09:30", "2021-03-24"),
        ("102", "2021-03-12T09:45", "2021-03-12T09:45", "2021-03-12T09:45", "2021-03-12T09:45"),
    ]


# ====================================================================== §3 algorithms

def test_from_list_first_non_missing_wins(tmp_path):
    raw = ("SUBJID,TRT,IND,IND_OTH\n"
           "101,A,Headache,Migraine\n"
           "101,B,,Back pain\n"
           "101,C,,\n"
           "101,D,Fever,\n")
    cm = build_cm(tmp_path, raw, CMINDC="{from: [cm.IND, cm.IND_OTH]}")
    assert records(cm, "CMSEQ", "CMTRT", "CMINDC") == [
        (1, "A", "Headache"), (2, "B", "Back pain"), (3, "C", ""), (4, "D", "Fever")]


def test_constant(tmp_path):
    cm = build_cm(tmp_path, "SUBJID,TRT\n101,A\n102,B\n", CMCAT="{constant: PRIOR MEDICATION}")
    assert col(cm, "CMCAT") == ["PRIOR MEDICATION", "PRIOR MEDICATION"]


def test_template_from_target_and_raw(tmp_path):
    raw = "SUBJID,SITE,TRT,ID\n101,S01,A,x1\n102,S02,B,x2\n"
    cm = build_cm(tmp_path, raw, USUBJID='{template: "{STUDYID}-{cm.SITE}-{cm.SUBJID}"}',
                  CMSPID='{template: "{CMTRT}/{cm.ID}"}')
    assert records(cm, "USUBJID", "CMSPID") == [("TST01-S01-101", "A/x1"), ("TST01-S02-102", "B/x2")]


def test_template_with_an_empty_part_is_an_error(tmp_path):
    raw = "SUBJID,SITE,TRT\n101,S01,A\n102,,B\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        USUBJID='{template: "{STUDYID}-{cm.SITE}-{cm.SUBJID}"}')}, raw={"raw/cm.csv": raw})
    text = sk.error_text(sk.conversion_error(folder))
    assert "USUBJID" in text
    assert 3 in sk.lines_in(text)  # SITE is empty on line 3


def test_date_with_a_list_of_formats(tmp_path):
    raw = ("SUBJID,TRT,STDAT\n"
           "101,A,15-MAR-2021\n"
           "101,B,2021-04-02\n"
           "101,C,03/05/2021\n")
    cm = build_cm(tmp_path, raw, CMSTDTC="{date: cm.STDAT, format: [dd-MMM-yyyy, yyyy-MM-dd, dd/MM/yyyy]}")
    assert col(cm, "CMSTDTC") == ["2021-03-15", "2021-04-02", "2021-05-03"]


DATE_CASES = [  # (raw date, raw time, ISO 8601) -- the table of §4 and its rules
    ("15-MAR-2021", "0945", "2021-03-15T09:45"),
    ("15-mar-2021", "09:45", "2021-03-15T09:45"),
    ("15-MAR-2021", "09:45:30", "2021-03-15T09:45:30"),
    ("UN-JUN-1968", "", "1968-06"),
    ("UN-UNK-1980", "", "1980"),
    ("20-UNK-2019", "", "2019---20"),
    ("UN JAN 2022", "", "2022-01"),
    ("00-JUN-1968", "", "1968-06"),             # all-zero day is unknown
    ("UN-MAR-2021", "10:00", "2021-03"),        # + warning: a time needs a full date
]


def test_date_and_time_to_iso8601(tmp_path):
    lines = ["SUBJID,TRT,ID,STDAT,STTIM"]
    lines += [f"101,T{i},{i},{d},{t}" for i, (d, t, _) in enumerate(DATE_CASES)]
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMSPID="{from: cm.ID}",
        CMSTDTC="{date: [cm.STDAT, cm.STTIM], format: dd-MMM-yyyy, time_format: [HH:mm, HHmm, HH:mm:ss]}")},
        raw={"raw/cm.csv": "\n".join(lines) + "\n"})
    result = sk.build(folder)
    got = by(result.datasets["CM"], "CMSPID", "CMSTDTC")
    assert got == {str(i): iso for i, (_, _, iso) in enumerate(DATE_CASES)}
    # the UN-MAR-2021 + 10:00 row is raw line 10 (header + 9 rows): one warning about it
    warnings = [str(w) for w in result.issues.warnings]
    assert len(warnings) == 1, warnings
    assert 10 in sk.lines_in(warnings[0]) or "10:00" in warnings[0]


# ====================================================================== §3 modifiers

def test_where_modifier_on_raw_column_and_target_variable(tmp_path):
    raw = "SUBJID,TRT,CAT,IND\n101,A,PRN,Pain\n101,B,DAILY,Hypertension\n101,C,PRN,Fever\n"
    cm = build_cm(tmp_path, raw, CMINDC="{from: cm.IND, where: {cm.CAT: PRN}}",
                  CMDOSFRQ="{constant: QD, where: {CMTRT: B}}")
    assert records(cm, "CMTRT", "CMINDC", "CMDOSFRQ") == [
        ("A", "Pain", ""), ("B", "", "QD"), ("C", "Fever", "")]


def test_map_is_applied_before_case(tmp_path):
    raw = "SUBJID,TRT\n101,aspirin\n102,Paracetamol\n103,ibuprofen\n104,ASPIRIN\n"
    cm = build_cm(tmp_path, raw, CMTRT="{from: cm.TRT, map: {aspirin: ASA, Paracetamol: ACETAMINOPHEN}, case: upper}")
    # map sees the raw text: 'aspirin' → ASA; 'ASPIRIN' is not a key and passes through
    assert by(cm, "USUBJID", "CMTRT") == {U + "101": "ASA", U + "102": "ACETAMINOPHEN",
                                          U + "103": "IBUPROFEN", U + "104": "ASPIRIN"}


@pytest.mark.parametrize("case, expected", [("upper", "BACK PAIN"), ("lower", "back pain"),
                                            ("title", "Back Pain")])
def test_case(tmp_path, case, expected):
    cm = build_cm(tmp_path, "SUBJID,TRT,IND\n101,A,back PAIN\n", CMINDC="{from: cm.IND, case: %s}" % case)
    assert col(cm, "CMINDC") == [expected]


def _dm_with(tmp_path, raw_dm: str, extra_raw: dict | None = None, **rules):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(**rules)},
                           raw={"raw/dm.csv": raw_dm, **(extra_raw or {})})
    return sk.build(folder)


def test_codelist_submission_values_terms_and_ct_synonyms(tmp_path):
    raw = ("SUBJID,SEX,ETH\n"
           "101,F,Not Hispanic or Latino\n"
           "102,female,not reported\n"      # SEX C66731: F has the synonym 'Female'
           "103,MALE,HISPANIC OR LATINO\n"  # M has the synonym 'Male'
           "104,Unknown,Not reported\n"     # U: synonyms 'U; UNK; Unknown'; NOT REPORTED: 'Not reported'
           "105,unk,not hispanic or latino\n")
    dm = _dm_with(tmp_path, raw, SEX="{from: dm.SEX, codelist: SEX}",
                  ETHNIC="{from: dm.ETH, codelist: C66790}").datasets["DM"]
    assert col(dm, "SEX") == ["F", "F", "M", "U", "U"]
    assert col(dm, "ETHNIC") == ["NOT HISPANIC OR LATINO", "NOT REPORTED", "HISPANIC OR LATINO",
                                 "NOT REPORTED", "NOT HISPANIC OR LATINO"]


RACE_RAW = ("SUBJID,RACE\n"
            "101,Caucasian\n"
            "102,white\n"
            "103,Asian - Chinese\n"
            "104,Black or African American\n")
RACE_EXPECTED = ["WHITE", "WHITE", "ASIAN", "BLACK OR AFRICAN AMERICAN"]


def test_study_synonyms_inline(tmp_path):
    dm = _dm_with(tmp_path, RACE_RAW,
                  RACE='{from: dm.RACE, codelist: RACE, synonyms: {Caucasian: WHITE, "Asian - Chinese": ASIAN}}')
    assert col(dm.datasets["DM"], "RACE") == RACE_EXPECTED


@pytest.mark.parametrize("content", [
    "synonyms:\n  Caucasian: WHITE\n  Asian - Chinese: ASIAN\n",
    "# decided at the data review of 2024-01-10\nCaucasian: WHITE\nAsian - Chinese: ASIAN\n",
])
def test_study_synonyms_file_formats(tmp_path, content):
    # the file is written both under the study folder and under mappings/, so that this test is about
    # the two file layouts only (where the path is resolved is the next test)
    files = {"study/race-map.yaml": content, "mappings/study/race-map.yaml": content}
    dm = _dm_with(tmp_path, RACE_RAW, extra_raw=files,
                  RACE="{from: dm.RACE, codelist: RACE, synonyms: study/race-map.yaml}")
    assert col(dm.datasets["DM"], "RACE") == RACE_EXPECTED


def test_study_synonyms_file_path_is_relative_to_the_mapping_file(tmp_path):
    # §3: a synonyms file is relative to the mapping file (the doc's example is `terms/race.yaml`)
    dm = _dm_with(tmp_path, RACE_RAW, extra_raw={"mappings/terms/race.yaml": "Caucasian: WHITE\nAsian - Chinese: ASIAN\n"},
                  RACE="{from: dm.RACE, codelist: RACE, synonyms: terms/race.yaml}")
    assert col(dm.datasets["DM"], "RACE") == RACE_EXPECTED


def test_study_synonyms_and_ct_synonyms_route(tmp_path):
    raw = "SUBJID,TRT,ROUTE\n101,A,iv\n101,B,PO\n101,C,oral\n"
    # ROUTE C66729: ORAL has the synonym 'PO'; 'iv' is a study synonym
    cm = build_cm(tmp_path, raw, CMROUTE="{from: cm.ROUTE, codelist: ROUTE, synonyms: {iv: INTRAVENOUS}}")
    assert col(cm, "CMROUTE") == ["INTRAVENOUS", "ORAL", "ORAL"]


UNIT_RAW = ("SUBJID,TRT,UNIT\n"
            "101,A,mg\n"
            "101,B,tab\n"      # UNIT C71620: TABLET has the synonym 'tab'
            "101,C,scoop\n")   # line 4: in no term or synonym of UNIT


def test_extensible_codelist_accepts_new_value_with_a_warning(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMDOSU="{from: cm.UNIT, codelist: UNIT, extensible: true}")}, raw={"raw/cm.csv": UNIT_RAW})
    result = sk.build(folder)
    assert col(result.datasets["CM"], "CMDOSU") == ["mg", "TABLET", "scoop"]
    assert [str(w) for w in result.issues.warnings] == [
        "warning: mappings/cm.yaml:8: CM: CMDOSU: 'scoop' is a new term in extensible codelist UNIT "
        "(C71620) (raw/cm.csv line 4)"]


def test_new_term_of_an_else_rule_is_reported_where_the_else_rule_is_used(tmp_path):
    raw = ("SUBJID,TRT,UNIT,UNIT2\n"
           "101,A,mg,scoop\n"      # line 2: UNIT given, UNIT2 unused
           "101,B,,scoop\n"        # line 3: UNIT2 used
           "101,C,,spoon\n")       # line 4: UNIT2 used
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMDOSU="{from: cm.UNIT, else: {from: cm.UNIT2, codelist: UNIT, extensible: true}}")},
        raw={"raw/cm.csv": raw})
    result = sk.build(folder)
    assert col(result.datasets["CM"], "CMDOSU") == ["mg", "scoop", "spoon"]
    assert [str(w) for w in result.issues.warnings] == [
        "warning: mappings/cm.yaml:8: CM: CMDOSU: 'scoop' is a new term in extensible codelist UNIT "
        "(C71620) (raw/cm.csv line 3)",
        "warning: mappings/cm.yaml:8: CM: CMDOSU: 'spoon' is a new term in extensible codelist UNIT "
        "(C71620) (raw/cm.csv line 4)"]


def test_value_outside_codelist_without_extensible_is_an_error(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMDOSU="{from: cm.UNIT, codelist: UNIT}")}, raw={"raw/cm.csv": UNIT_RAW})
    text = sk.error_text(sk.conversion_error(folder))
    assert "scoop" in text and "CMDOSU" in text
    assert 4 in sk.lines_after(text, "scoop")


def test_extensible_true_does_not_open_a_non_extensible_codelist(tmp_path):
    # SEX (C66731) is not extensible: `extensible: true` cannot let 'Femme' through
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(
        SEX="{from: dm.SEX, codelist: SEX, extensible: true}")},
        raw={"raw/dm.csv": "SUBJID,SEX\n101,F\n102,Femme\n"})
    text = sk.error_text(sk.conversion_error(folder))
    assert "SEX" in text


def test_numeric(tmp_path):
    raw = "SUBJID,TRT,DOSE,TOT\n101,A,007,2.50\n101,B,,10\n"
    cm = build_cm(tmp_path, raw, CMDOSE="{from: cm.DOSE}", CMDOSTOT="{from: cm.TOT, numeric: true}")
    # numeric IG variables are parsed: '007' → 7, '2.50' → 2.5, '' → missing
    assert records(cm, "CMTRT", "CMDOSE", "CMDOSTOT") == [("A", 7, pytest.approx(2.5)), ("B", "", 10)]


def test_numeric_true_rejects_text_naming_the_line(tmp_path):
    raw = "SUBJID,TRT,DOSE\n101,A,100\n101,B,about 5\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMDOSTXT="{from: cm.DOSE, numeric: true}")}, raw={"raw/cm.csv": raw})
    text = sk.error_text(sk.conversion_error(folder))
    assert "about 5" in text
    assert 3 in sk.lines_after(text, "about 5")


def test_transliterate(tmp_path):
    cm = build_cm(tmp_path, "SUBJID,TRT,IND\n101,A,Fever 38.2 °C\n",
                  CMINDC="{from: cm.IND, transliterate: true}")
    assert col(cm, "CMINDC") == ["Fever 38.2 deg C"]


def test_else_rule_where_the_value_is_missing(tmp_path):
    raw = dict(sk.DM_RAW)
    raw["raw/dm.csv"] = ("SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT,AGE\n"
                         "101,S01,M,1980-05-20,2021-03-01,,39\n"   # AGE collected: kept as is
                         "102,S01,F,1975-03-02,2021-03-02,,\n"     # missing: 1975-03-02 → 2021-03-02 = 46
                         "103,S02,F,1990-07-14,2021-03-05,,\n")    # 1990-07-14 → 2021-03-05 = 30
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(
        AGE="{from: dm.AGE, else: {derive: age, birth: BRTHDTC, reference: RFICDTC}}")}, raw=raw)
    assert col(sk.build(folder).datasets["DM"], "AGE") == [39, 46, 30]


def test_whole_variable_modifiers_under_else_are_refused(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMINDC="{from: cm.IND, else: {constant: none, transliterate: true, supp: {label: Indication}}}")},
        raw={"raw/cm.csv": "SUBJID,TRT,IND\n101,A,\u00e9t\u00e9\n"})
    # they used to be ignored there: '\u00e9t\u00e9' reached the non-ASCII check, CMINDC stayed in CM
    message = ("`{}:` applies to the whole variable: give it beside the first rule, not under `else:`")
    assert [str(i) for i in sk.conversion_error(folder).issues] == [
        f"error: mappings/cm.yaml:8: CMINDC: {message.format('transliterate')}",
        f"error: mappings/cm.yaml:8: CMINDC: {message.format('supp')}"]


def test_supp_modifier_sends_the_variable_to_supp(tmp_path):
    raw = "SUBJID,TRT,NOTE\n101,A,taken with food\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMNOTE='{from: cm.NOTE, supp: {label: "Medication Note"}}')}, raw={"raw/cm.csv": raw})
    ds = sk.build(folder).datasets
    assert "CMNOTE" not in ds["CM"].columns
    assert records(ds["SUPPCM"], "RDOMAIN", "USUBJID", "QNAM", "QLABEL", "QVAL", "QORIG") == [
        ("CM", U + "101", "CMNOTE", "Medication Note", "taken with food", "CRF")]


# ====================================================================== §3 dependency order

def test_rules_in_reverse_order_give_the_same_result(tmp_path):
    forward = sk.dm_variables()
    backward = dict(reversed(list(forward.items())))
    a = sk.build(sk.make_study(tmp_path, mappings={"dm": sk.mapping(
        "DM", {"dm": "{file: raw/dm.csv}", "ex": "{file: raw/ex.csv, key: [SUBJID]}"}, forward)},
        raw=sk.DM_RAW, name="a")).datasets["DM"]
    b = sk.build(sk.make_study(tmp_path, mappings={"dm": sk.mapping(
        "DM", {"dm": "{file: raw/dm.csv}", "ex": "{file: raw/ex.csv, key: [SUBJID]}"}, backward)},
        raw=sk.DM_RAW, name="b")).datasets["DM"]
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    # and the dependent values are there (AGE needs BRTHDTC and RFICDTC; ARM needs ARMCD)
    assert col(b, "AGE") == [40, 46, 30]
    assert col(b, "ARM") == ["Drug X 5 mg"] * 3
    assert col(b, "USUBJID") == [U + "101", U + "102", U + "103"]


def test_seq_listed_before_usubjid_gives_the_same_result(tmp_path):
    """--SEQ numbers per USUBJID: it must wait for USUBJID wherever USUBJID is listed."""
    raw = {"raw/cm.csv": "SUBJID,TRT\n102,B\n101,C\n101,A\n"}
    forward = {"USUBJID": '{template: "{STUDYID}-{cm.SUBJID}"}', "CMTRT": "{from: cm.TRT}",
               "CMSEQ": "{derive: seq, order: [CMTRT]}"}
    backward = dict(reversed(list(forward.items())))
    frames = [sk.build(sk.make_study(tmp_path, mappings={"cm": sk.mapping("CM", {"cm": "{file: raw/cm.csv}"},
                                                                          rules)}, raw=raw, name=n)).datasets["CM"]
              for n, rules in (("fwd", forward), ("bwd", backward))]
    for out in frames:
        assert records(out, "USUBJID", "CMSEQ", "CMTRT") == [(U + "101", 1, "A"), (U + "101", 2, "C"),
                                                             (U + "102", 1, "B")]


def test_a_circle_is_an_error(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMTRT='{template: "{CMDECOD}"}', CMDECOD='{template: "{CMTRT}"}')},
        raw={"raw/cm.csv": "SUBJID,TRT\n101,A\n"})
    text = sk.error_text(sk.conversion_error(folder))
    assert "CMTRT" in text and "CMDECOD" in text


# ====================================================================== §7 the tests dictionary

LAB_RAW = ("SPID,SUBJID,TEST,RESULT,UNIT\n"
           "L1,101,CRP,0.73,mg/dL\n"
           "L2,101,C-reactive protein (CRP),<0.5,mg/dL\n"
           "L3,102,crp,12,mg/L\n"
           "L4,101,ESR,15,mm/hr\n"
           "L5,102,ESR,20,mm/h\n"
           "L6,101,Glucose,100,mg/dL\n"
           "L7,102,Glucose,95,mg/dL\n"
           "L8,101,Treg %,None seen,%\n"
           "L9,102,Treg %,4.5,%\n"
           "L10,102,CRP,>10,mg/dL\n")

LAB_TESTS = """
from: lab.TEST
codelist: LBTESTCD
results: {None seen: "0"}
entries:
  - {match: [CRP, C-reactive protein (CRP)], testcd: CRP, unit: mg/L, convert: {mg/dL: 10}, set: {LBSPEC: SERUM}}
  - {match: ESR, testcd: ESR, unit: mm/h, units: {mm/hr: mm/h}}
  - {match: Glucose, testcd: GLUC, unit: mmol/L, convert: {mg/dL: 0.0555}, decimals: 2}
  - {match: "Treg %", testcd: TREGCD4, test: "Treg % of CD4+", unit: "%", set: {LBCAT: FLOW CYTOMETRY}}
"""

LAB_RULES = {
    "USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}',
    "LBSPID": "{from: lab.SPID}",
    "LBTESTCD": "{derive: test_code}",
    "LBTEST": "{derive: test_name}",
    "LBORRES": "{from: lab.RESULT}",
    "LBORRESU": "{from: lab.UNIT}",
    "LBSTRESC": "{derive: standard_result, result: LBORRES, unit: LBORRESU}",
    "LBSTRESN": "{derive: standard_numeric, of: LBSTRESC}",
    "LBSTRESU": "{derive: standard_unit, result: LBSTRESC}",
    "LBSEQ": "{derive: seq, order: [LBTESTCD, LBSPID]}",
}


def _lab(tmp_path, raw=LAB_RAW, tests=LAB_TESTS, **rules):
    rules = {**LAB_RULES, **rules}
    folder = sk.make_study(tmp_path, mappings={"lb": sk.mapping("LB", {"lab": "{file: raw/lab.csv}"}, rules,
                                                               tests=tests)},
                           raw={"raw/lab.csv": raw})
    return folder


def test_tests_dictionary(tmp_path):
    lb = sk.build(_lab(tmp_path)).datasets["LB"]
    got = {spid: rest for spid, *rest in records(lb, "LBSPID", "LBTESTCD", "LBTEST", "LBSTRESC",
                                                  "LBSTRESN", "LBSTRESU")}
    assert got == {
        # --TEST from the paired LBTEST codelist (C64548 / C74611 / C105585)
        "L1": ["CRP", "C Reactive Protein", "7.3", pytest.approx(7.3), "mg/L"],   # 0.73 mg/dL × 10
        "L2": ["CRP", "C Reactive Protein", "<5", "", "mg/L"],                   # <0.5 mg/dL × 10, censored
        "L3": ["CRP", "C Reactive Protein", "12", 12, "mg/L"],                   # 'crp': case-insensitive
        "L4": ["ESR", "Erythrocyte Sedimentation Rate", "15", 15, "mm/h"],       # mm/hr is mm/h
        "L5": ["ESR", "Erythrocyte Sedimentation Rate", "20", 20, "mm/h"],
        "L6": ["GLUC", "Glucose", "5.55", pytest.approx(5.55), "mmol/L"],        # 100 × 0.0555
        "L7": ["GLUC", "Glucose", "5.27", pytest.approx(5.27), "mmol/L"],        # 95 × 0.0555 = 5.2725 → 5.27
        "L8": ["TREGCD4", "Treg % of CD4+", "0", 0, "%"],                        # results: None seen → 0
        "L9": ["TREGCD4", "Treg % of CD4+", "4.5", pytest.approx(4.5), "%"],
        "L10": ["CRP", "C Reactive Protein", ">100", "", "mg/L"],                # >10 mg/dL × 10, censored
    }
    # set: per-test constants of variables the mapping does not map
    assert by(lb, "LBSPID", "LBCAT") == {"L1": "", "L2": "", "L3": "", "L4": "", "L5": "", "L6": "",
                                         "L7": "", "L8": "FLOW CYTOMETRY", "L9": "FLOW CYTOMETRY", "L10": ""}
    assert by(lb, "LBSPID", "LBSPEC") == {"L1": "SERUM", "L2": "SERUM", "L3": "SERUM", "L4": "", "L5": "",
                                          "L6": "", "L7": "", "L8": "", "L9": "", "L10": "SERUM"}
    # the collected values are untouched
    assert by(lb, "LBSPID", "LBORRES")["L2"] == "<0.5"
    assert by(lb, "LBSPID", "LBORRESU")["L4"] == "mm/hr"


def test_test_attribute_derivation(tmp_path):
    lb = sk.build(_lab(tmp_path, LBCAT="{derive: test_attribute, name: LBCAT}")).datasets["LB"]
    assert by(lb, "LBSPID", "LBCAT") == {"L1": "", "L2": "", "L3": "", "L4": "", "L5": "", "L6": "",
                                         "L7": "", "L8": "FLOW CYTOMETRY", "L9": "FLOW CYTOMETRY", "L10": ""}


def test_unmatched_test_names_are_reported_together(tmp_path):
    raw = ("SPID,SUBJID,TEST,RESULT,UNIT\n"
           "L1,101,CRP,1,mg/L\n"
           "L2,101,Bilirubin,5,umol/L\n"     # line 3
           "L3,101,Foo,1,mg/L\n"             # line 4
           "L4,102,CRP,2,mg/L\n"
           "L5,102,Foo,2,mg/L\n")            # line 6
    text = sk.error_text(sk.conversion_error(_lab(tmp_path, raw)))
    assert 3 in sk.lines_after(text, "Bilirubin")
    assert {4, 6} <= sk.lines_after(text, "Foo")


def test_sponsor_defined_code_needs_test(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: "Treg %", testcd: TREGCD4, unit: "%"}
"""
    text = sk.error_text(sk.conversion_error(_lab(tmp_path, "SPID,SUBJID,TEST,RESULT,UNIT\nL1,101,Treg %,4,%\n",
                                                  tests)))
    assert "TREGCD4" in text
    assert "mappings/lb.yaml" in text


def test_collected_unit_without_a_factor_is_an_error(tmp_path):
    raw = "SPID,SUBJID,TEST,RESULT,UNIT\nL1,101,CRP,1,mg/L\nL2,101,CRP,0.01,g/L\n"
    text = sk.error_text(sk.conversion_error(_lab(tmp_path, raw)))
    assert "CRP" in text and "g/L" in text
    assert 3 in sk.lines_after(text, "g/L")


# ====================================================================== §8 SUPPQUAL

SUPP_RAW = ("SUBJID,TRT,NOTE,REAS\n"
            "102,ZINC,note z,\n"
            "101,BETA,,headache\n"
            "101,ALPHA,note a,fever\n")


def test_suppqual_records(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMNOTE='{from: cm.NOTE, supp: {label: "Medication Note"}}',
        CMREAS="{from: cm.REAS, supp: {qnam: CMRSN, label: Reason, orig: ASSIGNED, eval: INVESTIGATOR}}")},
        raw={"raw/cm.csv": SUPP_RAW})
    ds = sk.build(folder).datasets
    # CMSEQ by CMTRT: 101 ALPHA 1, BETA 2; 102 ZINC 1.  Empty values give no record.
    assert list(ds["SUPPCM"].columns) == ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL",
                                          "QNAM", "QLABEL", "QVAL", "QORIG", "QEVAL"]
    assert records(ds["SUPPCM"], "STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL",
                   "QVAL", "QORIG", "QEVAL") == [
        ("TST01", "CM", U + "101", "CMSEQ", "1", "CMNOTE", "Medication Note", "note a", "CRF", ""),
        ("TST01", "CM", U + "101", "CMSEQ", "1", "CMRSN", "Reason", "fever", "ASSIGNED", "INVESTIGATOR"),
        ("TST01", "CM", U + "101", "CMSEQ", "2", "CMRSN", "Reason", "headache", "ASSIGNED", "INVESTIGATOR"),
        ("TST01", "CM", U + "102", "CMSEQ", "1", "CMNOTE", "Medication Note", "note z", "CRF", ""),
    ]
    assert "CMNOTE" not in ds["CM"].columns and "CMREAS" not in ds["CM"].columns


def test_suppdm_has_empty_idvar_and_idvarval(tmp_path):
    raw = "SUBJID,RACEOTH\n101,\n102,Persian\n"
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(
        RACEOTH='{from: dm.RACEOTH, supp: {label: "Race, Other", orig: CRF}}')}, raw={"raw/dm.csv": raw})
    supp = sk.build(folder).datasets["SUPPDM"]
    assert records(supp, "STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL",
                   "QORIG") == [("TST01", "DM", U + "102", "", "", "RACEOTH", "Race, Other", "Persian", "CRF")]


def _long_text() -> str:
    text = " ".join(f"word{i:03d}" for i in range(55)) + " abcdefghij"  # 55 × 8 − 1 + 11 = 450
    assert len(text) == 450
    return text


def test_suppqual_text_over_200_characters_is_split_at_word_boundaries(tmp_path):
    text = _long_text()
    raw = f"SUBJID,TRT,NOTE\n101,A,{text}\n101,B,short\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMNOTE='{from: cm.NOTE, supp: {label: "Medication Note"}}')}, raw={"raw/cm.csv": raw})
    supp = sk.build(folder).datasets["SUPPCM"]
    rows = records(supp, "IDVARVAL", "QNAM", "QVAL")
    first = [r for r in rows if r[0] == "1"]
    assert [r[1] for r in first] == ["CMNOTE", "CMNOTE1", "CMNOTE2"]     # 450 chars need 3 pieces
    pieces = [r[2] for r in first]
    assert all(0 < len(p) <= 200 for p in pieces)
    assert "".join(pieces) == text or " ".join(pieces) == text
    # no word is cut: the words of the pieces are the words of the text
    assert [w for p in pieces for w in p.split()] == text.split()
    assert [r for r in rows if r[0] == "2"] == [("2", "CMNOTE", "short")]


def test_suppqual_split_name_stays_within_8_characters(tmp_path):
    text = _long_text()
    raw = f"SUBJID,TRT,NOTE\n101,A,{text}\n"
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMNOTE='{from: cm.NOTE, supp: {qnam: CMCOMENT, label: "Medication Comment"}}')},
        raw={"raw/cm.csv": raw})
    pieces = dict(records(sk.build(folder).datasets["SUPPCM"], "QNAM", "QVAL"))
    # the first piece keeps QNAM; the next ones shorten it to 7 characters + 1, 2 (sorted by QNAM:
    # CMCOMEN1 < CMCOMEN2 < CMCOMENT)
    assert sorted(pieces) == ["CMCOMEN1", "CMCOMEN2", "CMCOMENT"]
    ordered = [pieces["CMCOMENT"], pieces["CMCOMEN1"], pieces["CMCOMEN2"]]
    assert "".join(ordered) == text or " ".join(ordered) == text


# ====================================================================== §9 TS

def test_trial_summary(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping()}, raw=sk.DM_RAW)
    ts = sk.build(folder).datasets["TS"]
    rows = {r[0]: r[1:] for r in records(ts, "TSPARMCD", "TSPARM", "TSVAL", "TSVALCD", "TSVCDREF",
                                         "TSVCDVER", "TSSEQ")}
    # earliest informed consent of 2021-03-01, 2021-03-02, 2021-03-05
    assert rows["SSTDTC"][1] == "2021-03-01"
    # TPHASE 'Phase I Trial' matches the term PHASE I TRIAL (C15600) of C66737 case-insensitively
    assert rows["TPHASE"] == ("Trial Phase Classification", "PHASE I TRIAL", "C15600", "CDISC CT",
                              "2025-03-28", 1)
    assert rows["SDTIGVER"][1] == "3.4"
    assert rows["TITLE"][1] == "Engine test study"
    assert rows["SPONSOR"][1] == "Test Sponsor"
    assert "SDTMVER" in rows
    assert col(ts, "STUDYID") == ["TST01"] * len(ts)
    assert col(ts, "DOMAIN") == ["TS"] * len(ts)


def test_trial_summary_sstdtc_given_wins(tmp_path):
    study = {"trial_summary": [{"parmcd": "TPHASE", "value": "Phase I Trial"},
                               {"parmcd": "SSTDTC", "value": "2021-01-15"}]}
    folder = sk.make_study(tmp_path, study, mappings={"dm": sk.dm_mapping()}, raw=sk.DM_RAW)
    ts = sk.build(folder).datasets["TS"]
    assert [v for p, v in records(ts, "TSPARMCD", "TSVAL") if p == "SSTDTC"] == ["2021-01-15"]


# ====================================================================== §1 output shape

def test_output_columns_in_ig_order_whatever_the_rule_order(tmp_path):
    cm = sk.mapping("CM", {"cm": "{file: raw/cm.csv}"}, {
        "USUBJID": '{template: "{STUDYID}-{cm.SUBJID}"}',
        "CMSTDTC": "{date: cm.STDAT, format: yyyy-MM-dd}",
        "CMDOSE": "{from: cm.DOSE}",
        "CMSEQ": "{derive: seq, order: [CMTRT]}",
        "CMTRT": "{from: cm.TRT}",
    })
    folder = sk.make_study(tmp_path, mappings={"cm": cm},
                           raw={"raw/cm.csv": "SUBJID,TRT,DOSE,STDAT\n101,A,5,2021-03-01\n"})
    out = sk.build(folder).datasets["CM"]
    # SDTMIG 3.4 CM order: STUDYID 1, DOMAIN 2, USUBJID 3, CMSEQ 4, CMTRT 7, CMDOSE 19, CMSTDTC 31
    assert list(out.columns) == ["STUDYID", "DOMAIN", "USUBJID", "CMSEQ", "CMTRT", "CMDOSE", "CMSTDTC"]
    assert records(out, "STUDYID", "DOMAIN") == [("TST01", "CM")]


def test_unmapped_expected_variables_are_written_empty_and_noted(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm()},
                           raw={"raw/dm.csv": "SUBJID\n101\n102\n"})
    result = sk.build(folder)
    dm = result.datasets["DM"]
    # SDTMIG 3.4 DM: the Req variables + every Exp variable, in IG order (Perm ones left out)
    expected_exp = ["RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC", "RFPENDTC", "DTHDTC", "DTHFL",
                    "AGE", "AGEU", "RACE", "ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS", "ACTARMUD"]
    assert list(dm.columns) == [
        "STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC",
        "RFPENDTC", "DTHDTC", "DTHFL", "SITEID", "AGE", "AGEU", "SEX", "RACE", "ARMCD", "ARM", "ACTARMCD",
        "ACTARM", "ARMNRS", "ACTARMUD", "COUNTRY"]
    for var in expected_exp:
        assert col(dm, var) == ["", ""], var
    notes = "\n".join(str(i) for i in result.issues.items if i.severity == "note")
    for var in expected_exp:
        assert var in notes, var
    assert records(dm, "STUDYID", "DOMAIN", "USUBJID") == [("TST01", "DM", U + "101"), ("TST01", "DM", U + "102")]


def test_required_variable_empty_is_an_error_naming_the_record(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping()},
                           raw={"raw/cm.csv": "SUBJID,TRT\n101,A\n102,\n"})
    text = sk.error_text(sk.conversion_error(folder))
    assert "CMTRT" in text
    assert 3 in sk.lines_in(text) or U + "102" in text


def test_sort_option_sets_the_row_order(tmp_path):
    raw = "SUBJID,TRT,STDAT\n101,A,2021-03-05\n101,B,2021-03-01\n101,C,2021-03-03\n"
    cm = sk.mapping("CM", {"cm": "{file: raw/cm.csv}"}, {
        "USUBJID": '{template: "{STUDYID}-{cm.SUBJID}"}',
        "CMSEQ": "{derive: seq, order: [CMTRT]}",
        "CMTRT": "{from: cm.TRT}",
        "CMSTDTC": "{date: cm.STDAT, format: yyyy-MM-dd}",
    }, sort="[STUDYID, USUBJID, CMSTDTC]")
    folder = sk.make_study(tmp_path, mappings={"cm": cm}, raw={"raw/cm.csv": raw})
    out = sk.build(folder).datasets["CM"]
    assert records(out, "CMSTDTC", "CMTRT", "CMSEQ") == [
        ("2021-03-01", "B", 2), ("2021-03-03", "C", 3), ("2021-03-05", "A", 1)]
