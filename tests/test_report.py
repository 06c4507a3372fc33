"""Validation reports: every format readable and consistent with the others, HTML self-contained and
escaped, large reports capped in HTML, atomic writes, console summary; docs/rules.md in step with the
rule registry."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sdtm_rA.validation.data import load_folder
from sdtm_rA.validation.engine import ValidationResult, load_rules
from sdtm_rA.validation.model import FINDING_COLUMNS
from sdtm_rA.validation import report as rep
from validation_kit import clean_folder

REPO = Path(__file__).resolve().parents[1]
KEYS = ["rule", "severity", "dataset", "variable", "row", "usubjid", "seq", "value", "message"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_folder(clean_folder(tmp_path_factory.mktemp("report")))


def finding(rule="ZZ0001", severity="error", dataset="LB", variable="LBORRES", row=1,
            usubjid="RAMSC01-101-001", seq="1", value="x", message="m"):
    return dict(rule=rule, severity=severity, dataset=dataset, variable=variable, row=row,
                usubjid=usubjid, seq=seq, value=value, message=message)


NASTY = [
    finding(value="<script>alert(1)</script>", message="LBORRES = '<script>' & \"quoted\" is not a number"),
    finding(row=2, value="=HYPERLINK(\"http://example.com\")", message="=1+2 looks like a formula"),
    finding(row=3, value="tab\there bell\x07 é ü", message="control characters and non-ASCII: é"),
    finding(rule="ZZ0002", severity="warning", dataset="DM", variable="SEX", row=4, value="Female",
            message="SEX = 'Female' is not in codelist SEX (C66731): expected one of F, INTERSEX, M, U"),
    finding(rule="ZZ0002", severity="notice", dataset="DM", variable="SEX", row=5, value="",
            message="a notice of the same rule"),
    finding(rule="SYS0001", dataset="XX", variable="", row=0, usubjid="", seq="",
            value="", message="xx.xpt cannot be read: ReadstatError: Unable to read from file"),
    finding(rule="ZZ0003", severity="notice", dataset="", variable="", row=0, usubjid="", seq="",
            message="a study-level finding with no dataset"),
]


def make_result(study, rows, seconds=1.25):
    findings = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    return ValidationResult(study, findings, seconds, {"ZZ0001": 0.1, "ZZ0002": 0.2, "ZZ0003": 0.0})


@pytest.fixture
def nasty(study):
    return make_result(study, NASTY)


# ------------------------------------------------------------------------------------------------
# JSON / CSV / XLSX
# ------------------------------------------------------------------------------------------------
def test_json_schema_and_summary(nasty, tmp_path):
    path = rep.write_report(nasty, tmp_path / "r.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"summary", "findings"}
    assert [list(f) for f in data["findings"]] == [KEYS] * len(NASTY)
    assert [f["value"] for f in data["findings"]] == [f["value"] for f in NASTY]   # exact round trip
    assert data["findings"][1]["value"] == '=HYPERLINK("http://example.com")'     # '/' not escaped away
    s = data["summary"]
    assert s["findings"] == len(data["findings"]) == 7
    assert s["by_severity"] == {"error": 4, "warning": 1, "notice": 2}
    assert sum(r["count"] for r in s["by_rule"]) == len(data["findings"])
    by_rule = {r["rule"]: r for r in s["by_rule"]}
    assert by_rule["ZZ0002"]["by_severity"] == {"warning": 1, "notice": 1}
    assert by_rule["ZZ0002"]["datasets"] == ["DM"]
    assert by_rule["SYS0001"]["title"].startswith("Dataset file can be read")
    assert s["standard"] == "SDTMIG 3.4" and s["seconds"] == 1.25
    assert s["rules_run"] == ["ZZ0001", "ZZ0002", "ZZ0003"]
    assert {d["name"] for d in s["datasets"]} >= {"DM", "LB", "TS"}
    assert {d["name"]: d["rows"] for d in s["datasets"]}["LB"] == 224


def test_csv_has_the_same_rows_as_json(nasty, tmp_path):
    data = json.loads(rep.write_report(nasty, tmp_path / "r.json").read_text(encoding="utf-8"))
    csv = pd.read_csv(rep.write_report(nasty, tmp_path / "r.csv"), dtype=str, keep_default_na=False)
    assert list(csv.columns) == KEYS
    expected = pd.DataFrame(data["findings"]).astype(str)
    expected.loc[1, "value"] = "'" + expected.loc[1, "value"]      # formula-like: quoted in CSV only
    expected.loc[1, "message"] = "'" + expected.loc[1, "message"]
    pd.testing.assert_frame_equal(csv, expected)


def test_xlsx_has_summary_and_findings_sheets(nasty, tmp_path):
    from openpyxl import load_workbook
    wb = load_workbook(rep.write_report(nasty, tmp_path / "r.xlsx"))
    assert wb.sheetnames == ["Summary", "Findings"]
    ws = wb["Findings"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == KEYS
    assert len(rows) == 1 + len(NASTY)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:I{len(NASTY) + 1}"
    assert rows[4][KEYS.index("value")] == "Female" and rows[4][KEYS.index("row")] == 4
    formula_like = ws.cell(row=3, column=KEYS.index("value") + 1)
    assert formula_like.data_type == "s" and formula_like.value.startswith("=HYPERLINK")   # text, not a formula
    assert rows[3][KEYS.index("value")] == "tab\there bell\\x07 é ü"
    summary = [r for r in wb["Summary"].iter_rows(values_only=True)]
    rule_rows = {r[0]: r for r in summary if r and r[0] in {"ZZ0001", "ZZ0002", "SYS0001"}}
    assert rule_rows["ZZ0001"][2] == 3 and rule_rows["ZZ0002"][1] == "warning/notice"


def test_chunked_writing_gives_the_same_files(nasty, tmp_path, monkeypatch):
    whole = {ext: rep.write_report(nasty, tmp_path / f"a{ext}").read_bytes() for ext in (".json", ".csv")}
    monkeypatch.setattr(rep, "CHUNK", 3)
    for ext in (".json", ".csv"):
        assert rep.write_report(nasty, tmp_path / f"b{ext}").read_bytes() == whole[ext], ext


def test_empty_report_in_every_format(study, tmp_path):
    empty = make_result(study, [])
    for ext in (".json", ".csv", ".xlsx", ".html"):
        path = rep.write_report(empty, tmp_path / f"r{ext}")
        assert path.stat().st_size > 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["findings"] == [] and data["summary"]["by_severity"] == {"error": 0, "warning": 0, "notice": 0}
    assert pd.read_csv(tmp_path / "r.csv").columns.tolist() == KEYS
    assert "No findings" in (tmp_path / "r.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------
def test_html_is_self_contained_summary_first_and_escaped(nasty, tmp_path):
    text = rep.write_report(nasty, tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    # summary tables before the findings
    assert text.index('id="by-severity"') < text.index('id="by-rule"') < text.index("<details")
    # every value escaped: the injected script never appears as markup
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<script>") == 1
    assert "&quot;quoted&quot;" in text
    # filterable: a text box and one checkbox per severity
    assert 'id="q"' in text and text.count('class="sevbox"') == 3
    # grouped by dataset then rule, with the rule's title and the row
    assert 'id="g-LB-ZZ0001"' in text and 'id="g-DM-ZZ0002"' in text and 'id="g-study-ZZ0003"' in text
    assert "Dataset file can be read" in text
    assert 'data-sev="warning"' in text and 'data-sev="notice"' in text


def test_html_shows_rule_descriptions_and_references(study, tmp_path):
    rules = load_rules()
    with_refs = [r for r in rules.values() if r.core or r.p21 or r.fda]
    if not with_refs:
        pytest.skip("no rule with references registered")
    r = sorted(with_refs, key=lambda r: r.id)[0]
    res = make_result(study, [finding(rule=r.id, severity=r.severity)])
    text = rep.write_report(res, tmp_path / "r.html").read_text(encoding="utf-8")
    import html
    assert html.escape(r.title) in text
    for ref in r.core + r.p21 + r.fda:
        assert ref in text


def test_html_caps_rows_per_group(study, tmp_path):
    n = rep.HTML_ROWS_PER_GROUP + 700
    rows = [finding(row=i + 1, value=str(i)) for i in range(n)] + [finding(rule="ZZ0002", row=1)]
    text = rep.write_report(make_result(study, rows), tmp_path / "r.html").read_text(encoding="utf-8")
    group = text[text.index('id="g-LB-ZZ0001"'):text.index('id="g-LB-ZZ0002"')]
    assert group.count("<tr class=") == rep.HTML_ROWS_PER_GROUP
    assert f"Showing the first {rep.HTML_ROWS_PER_GROUP:,} of {n:,} findings" in group
    assert "JSON and CSV" in group
    assert f"{n:,} findings" in group
    # the JSON has them all
    data = json.loads(rep.write_report(make_result(study, rows), tmp_path / "r.json").read_text())
    assert len(data["findings"]) == n + 1


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def test_unsupported_extension(nasty, tmp_path):
    with pytest.raises(rep.ReportFormatError, match=r"\.txt.*\.html, \.json, \.csv or \.xlsx"):
        rep.write_report(nasty, tmp_path / "r.txt")
    assert not list(tmp_path.iterdir())


def test_writes_are_atomic(nasty, study, tmp_path, monkeypatch):
    path = tmp_path / "sub" / "r.json"
    rep.write_report(make_result(study, []), path)             # creates the folder
    rep.write_report(nasty, path)                              # replaces the file
    assert len(json.loads(path.read_text())["findings"]) == len(NASTY)
    before = path.read_bytes()

    def half_then_fail(f):
        yield ['{"rule": "half a report"}']
        raise OSError("disk full")
    monkeypatch.setattr(rep, "_findings_json_lines", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        rep.write_report(make_result(study, NASTY[:1]), path)
    assert path.read_bytes() == before                         # the previous report is intact
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]   # no temporary file left


def test_uppercase_extension_and_htm(nasty, tmp_path):
    assert json.loads(rep.write_report(nasty, tmp_path / "R.JSON").read_text())["findings"]
    assert "<!DOCTYPE html>" in rep.write_report(nasty, tmp_path / "r.htm").read_text()


# ------------------------------------------------------------------------------------------------
# console
# ------------------------------------------------------------------------------------------------
def test_console_summary(nasty, tmp_path):
    text = rep.console_summary(nasty, [tmp_path / "r.html", tmp_path / "r.json"])
    lines = text.splitlines()
    assert "SDTMIG 3.4" in lines[0] and "3 rules" in lines[0]
    assert re.search(r"ZZ0001\s+error\s+3\b", text)
    assert re.search(r"ZZ0002\s+warning/notice\s+2\b", text)
    assert re.search(r"SYS0001\s+error\s+1\s+Dataset file can be read", text)
    assert "4 errors, 1 warning, 2 notices" in text
    assert lines[-1] == f"report: {tmp_path / 'r.html'} (also {tmp_path / 'r.json'})"
    clean = rep.console_summary(make_result(nasty.study, []))
    assert "no findings" in clean and "0 errors, 0 warnings, 0 notices" in clean


# ------------------------------------------------------------------------------------------------
# docs/rules.md is generated from the registry
# ------------------------------------------------------------------------------------------------
def test_rules_doc_is_up_to_date():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "rules_doc.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_doc_lists_every_rule(tmp_path):
    out = tmp_path / "rules.md"
    subprocess.run([sys.executable, str(REPO / "tools" / "rules_doc.py"), "--out", str(out)], check=True,
                   capture_output=True, cwd=REPO)
    text = out.read_text(encoding="utf-8")
    for rid, r in load_rules().items():
        assert f"### {rid}\n" in text and r.title.split("|")[0].strip() in text
        for ref in r.core + r.p21 + r.fda:
            assert ref in text
    assert "### SYS0001" in text
