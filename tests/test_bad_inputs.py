"""Bad inputs: every one must stop the conversion with a ConversionError (exit code 1 on the command
line) whose message names the file, the line (of the mapping or of the raw file) and the offending
value, as docs/mapping-language.md promises ("Every problem is reported with the file and line it
comes from, all at once").  A failing run must leave a previous output folder exactly as it was.

The command-line runs of all cases are started together (in parallel) by a module fixture, so that
the whole file stays fast.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402

CM_RAW = "SUBJID,TRT,ROUTE,UNIT\n101,ASPIRIN,ORAL,mg\n102,IBUPROFEN,ORAL,mg\n"


def _cm(tmp, mapping_text, raw=None):
    return sk.make_study(tmp, mappings={"cm": mapping_text}, raw=raw or {"raw/cm.csv": CM_RAW})


# Each case: (study folder, expectation).  expectation: `contains` — fragments the messages must
# hold (file:line of the mapping, the offending value, the suggestion); `lines` — {value: raw lines
# that must be listed after that value}; `all_lines` — raw lines the messages must name.

def case_malformed_yaml(tmp):
    text = ("domain: CM\n"
            "sources:\n"
            "  cm: {file: raw/cm.csv}\n"
            "variables:\n"
            '  USUBJID: {template: "{STUDYID}-{cm.SUBJID}"}\n'
            "  CMTRT: {from: cm.TRT}}\n"                 # line 6: one brace too many
            "  CMSEQ: {derive: seq, order: [CMTRT]}\n")
    return _cm(tmp, text), {"contains": ["mappings/cm.yaml:6"]}


def case_unknown_key(tmp):
    text = sk.cm_mapping(CMDOSU="{from: cm.UNIT, codlist: UNIT}")
    line = sk.line_of(text, "CMDOSU:")  # 8
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "codlist", "did you mean 'codelist'"]}


def case_unknown_derivation(tmp):
    text = sk.cm_mapping(CMSTDY="{derive: study_dya, date: CMSTDTC}",
                         CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}")
    line = sk.line_of(text, "CMSTDY:")
    raw = {"raw/cm.csv": "SUBJID,TRT,STDAT\n101,A,2021-03-01\n"}
    return _cm(tmp, text, raw), {"contains": [f"mappings/cm.yaml:{line}", "study_dya",
                                              "did you mean 'study_day'"]}


def case_unknown_derivation_plain(tmp):
    text = sk.cm_mapping(CMSEQ="{derive: seqq, order: [CMTRT]}")
    line = sk.line_of(text, "CMSEQ:")
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "seqq", "did you mean 'seq'"]}


def case_missing_raw_file(tmp):
    text = sk.cm_mapping("{file: raw/cm_export.csv}")
    line = sk.line_of(text, "cm:")  # 3
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "raw/cm_export.csv"]}


def case_missing_raw_column(tmp):
    text = sk.cm_mapping(CMROUTE="{from: cm.ROUTEE}")
    line = sk.line_of(text, "CMROUTE:")
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "ROUTEE", "did you mean 'ROUTE'"]}


def case_variable_not_in_ig(tmp):
    text = sk.cm_mapping(CMROUTX="{from: cm.ROUTE}")
    line = sk.line_of(text, "CMROUTX:")
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "CMROUTX", "CMROUTE", "supp"]}


def case_unknown_codelist(tmp):
    text = sk.cm_mapping(CMROUTE="{from: cm.ROUTE, codelist: ROUTES}")
    line = sk.line_of(text, "CMROUTE:")
    return _cm(tmp, text), {"contains": [f"mappings/cm.yaml:{line}", "ROUTES"]}


def case_unmapped_ct_values(tmp):
    text = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX}")
    line = sk.line_of(text, "SEX:")  # 8
    raw = {"raw/dm.csv": "SUBJID,SEX\n"
                         "101,F\n"
                         "102,Femle\n"    # line 3
                         "103,Mle\n"      # line 4
                         "104,M\n"
                         "105,Femle\n"}   # line 6
    folder = sk.make_study(tmp, mappings={"dm": text}, raw=raw)
    return folder, {"contains": [f"mappings/dm.yaml:{line}", "Femle", "Mle", "raw/dm.csv"],
                    "lines": {"Femle": {3, 6}, "Mle": {4}}}


def case_impossible_dates(tmp):
    text = sk.cm_mapping(CMSTDTC='{date: [cm.STDAT, cm.STTIM], format: dd-MMM-yyyy, time_format: "HH:mm"}',
                         CMENDTC="{date: cm.ENDAT, format: yyyy-MM-dd}")
    raw = {"raw/cm.csv": "SUBJID,TRT,STDAT,STTIM,ENDAT\n"
                         "101,A,01-FEB-2021,24:00,2021-02-03\n"   # line 2: hour 24
                         "101,B,30-FEB-2021,,2021-03-03\n"        # line 3: 30 February
                         "101,C,01-MAR-2021,,2021-13-01\n"        # line 4: month 13
                         "101,D,15-MAR-21,,2021-03-20\n"}         # line 5: two-digit year
    return _cm(tmp, text, raw), {"contains": ["30-FEB-2021", "2021-13-01", "15-MAR-21", "24:00", "raw/cm.csv"],
                                 "lines": {"24:00": {2}, "30-FEB-2021": {3}, "2021-13-01": {4}, "15-MAR-21": {5}}}


def case_data_errors_in_two_domains(tmp):
    dm = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX}")
    cm = sk.cm_mapping(CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}")
    folder = sk.make_study(tmp, mappings={"dm": dm, "cm": cm}, raw={
        "raw/dm.csv": "SUBJID,SEX\n101,F\n102,Femle\n",                    # line 3
        "raw/cm.csv": "SUBJID,TRT,STDAT\n101,A,2021-02-30\n"})              # line 2
    return folder, {"contains": ["mappings/dm.yaml", "Femle", "mappings/cm.yaml", "2021-02-30"],
                    "lines": {"Femle": {3}, "2021-02-30": {2}}}


def case_duplicate_key(tmp):
    lb = sk.mapping("LB", {"lab": "{file: raw/lab.csv}"}, {
        "USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}',
        "LBTESTCD": "{derive: test_code}",
        "LBTEST": "{derive: test_name}",
        "LBORRES": "{from: lab.RESULT}",
        "LBDTC": "{date: lab.DATE, format: yyyy-MM-dd}",
        "VISITNUM": "{derive: visitnum, visit: lab.VISIT, date: LBDTC}",
        "LBSEQ": "{derive: seq, order: [LBTESTCD, VISITNUM]}",
    }, tests="from: lab.TEST\ncodelist: LBTESTCD\nentries:\n  - {match: GLUC, testcd: GLUC, unit: mmol/L}",
        keys="[USUBJID, LBTESTCD, VISITNUM]")
    raw = {"raw/lab.csv": "SUBJID,TEST,VISIT,DATE,RESULT\n"
                          "101,GLUC,D1,2021-03-10,5.0\n"     # line 2
                          "101,GLUC,W2,2021-03-24,5.5\n"
                          "101,GLUC,D1,2021-03-11,5.1\n"}    # line 4: same key as line 2
    folder = sk.make_study(tmp, mappings={"lb": lb}, raw=raw)
    return folder, {"contains": ["GLUC", "raw/lab.csv"], "all_lines": {2, 4}}


def case_non_ascii_without_transliterate(tmp):
    raw = {"raw/cm.csv": "SUBJID,TRT\n101,ASPIRIN\n102,Café crème\n"}
    return _cm(tmp, sk.cm_mapping(), raw), {"contains": ["Café crème", "CMTRT"],
                                             "lines": {"Café crème": {3}}}


def case_age_not_a_number(tmp):
    text = sk.minimal_dm(AGE="{from: dm.AGE}", AGEU="{constant: YEARS}")
    raw = {"raw/dm.csv": "SUBJID,AGE\n101,34\n102,thirty\n"}
    folder = sk.make_study(tmp, mappings={"dm": text}, raw=raw)
    return folder, {"contains": ["thirty", "AGE", "raw/dm.csv"], "lines": {"thirty": {3}}}


def case_empty_raw_file(tmp):
    return _cm(tmp, sk.cm_mapping(), {"raw/cm.csv": ""}), {"contains": ["raw/cm.csv"]}


def case_header_only_raw_file(tmp):
    return _cm(tmp, sk.cm_mapping(), {"raw/cm.csv": "SUBJID,TRT\n"}), {"contains": ["raw/cm.csv"]}


def case_latin1_read_as_utf8(tmp):
    raw = {"raw/cm.csv": "SUBJID,TRT\n101,ASPIRIN\n102,Crème\n".encode("latin-1")}
    # the byte 0xE8 is on line 3
    return _cm(tmp, sk.cm_mapping(), raw), {"contains": ["raw/cm.csv", "encoding"], "all_lines": {3}}


def case_errors_in_two_mapping_files(tmp):
    dm = sk.minimal_dm(SEX="{from: dm.SEX, codlist: SEX}")
    cm = sk.cm_mapping(CMSTDY="{derive: studyday}")
    folder = sk.make_study(tmp, mappings={"dm": dm, "cm": cm},
                           raw={"raw/dm.csv": "SUBJID,SEX\n101,F\n", "raw/cm.csv": CM_RAW})
    return folder, {"contains": [f"mappings/dm.yaml:{sk.line_of(dm, 'SEX:')}", "codlist",
                                 f"mappings/cm.yaml:{sk.line_of(cm, 'CMSTDY:')}", "studyday"]}


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def check(text: str, expect: dict) -> None:
    for fragment in expect.get("contains", []):
        assert fragment in text, f"{fragment!r} missing from:\n{text}"
    for value, lines in expect.get("lines", {}).items():
        assert lines <= sk.lines_after(text, value), f"{value}: lines {sorted(lines)} not listed in:\n{text}"
    if "all_lines" in expect:
        assert expect["all_lines"] <= sk.lines_in(text), f"lines {sorted(expect['all_lines'])} not in:\n{text}"


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every case run through the command line, all processes started at once."""
    procs = {}
    for name, fn in CASES.items():
        base = tmp_path_factory.mktemp(f"cli_{name}")
        folder, expect = fn(base)
        procs[name] = (sk.start_cli(folder, base / "out"), expect)
    results = {}
    for name, (proc, expect) in procs.items():
        out, err = proc.communicate(timeout=180)
        results[name] = (proc.returncode, out, err, expect)
    return results


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_raises_conversion_error(tmp_path, name):
    folder, expect = CASES[name](tmp_path)
    exc = sk.conversion_error(folder)
    assert exc.issues and all(i.severity == "error" for i in exc.issues)
    check(sk.error_text(exc), expect)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_cli_exit_code_1(cli_runs, name):
    rc, out, err, expect = cli_runs[name]
    assert rc == 1, f"exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err, err
    check(err, expect)


def test_all_unmapped_ct_values_in_one_run(tmp_path):
    """Every offending value is listed (not just the first), each with all its raw lines."""
    folder, _ = case_unmapped_ct_values(tmp_path)
    exc = sk.conversion_error(folder)
    text = sk.error_text(exc)
    assert sk.lines_after(text, "Femle") == {3, 6}
    assert sk.lines_after(text, "Mle") == {4}
    # the allowed values are named (SEX C66731: F, INTERSEX, M, U)
    assert all(v in text for v in ("F", "INTERSEX", "M", "U"))


def test_malformed_yaml_issue_carries_file_and_line(tmp_path):
    folder, _ = case_malformed_yaml(tmp_path)
    exc = sk.conversion_error(folder)
    assert any(i.file == "mappings/cm.yaml" and i.line == 6 for i in exc.issues), exc.issues


# ====================================================================== failed runs leave outputs alone

def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _good_then_bad(tmp_path):
    dm_raw = "SUBJID,SEX\n101,F\n102,M\n"
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX}")},
                           raw={"raw/dm.csv": dm_raw})
    return folder


def test_failed_run_leaves_previous_output_untouched(tmp_path):
    from sdtm_rA.sdtm.convert import convert
    folder = _good_then_bad(tmp_path)
    out = tmp_path / "out"
    convert(folder, out, command=["test"])
    before = _snapshot(out)
    assert "run.json" in before and "sdtm/dm.xpt" in before and "sdtm/ts.xpt" in before
    entries_before = sorted(os.listdir(out))
    (folder / "raw" / "dm.csv").write_text("SUBJID,SEX\n101,F\n102,Mal\n", encoding="utf-8")
    sk.conversion_error(folder, out)
    assert _snapshot(out) == before
    assert sorted(os.listdir(out)) == entries_before           # no temporary files or folders left


def test_failed_cli_run_leaves_previous_output_untouched(tmp_path):
    folder = _good_then_bad(tmp_path)
    out = tmp_path / "out"
    ok = sk.run_cli(folder, out, "--allow-invalid")     # a minimal DM: no arm, TS without SSTDTC
    assert ok.returncode == 0, ok.stderr
    before = _snapshot(out)
    entries_before = sorted(os.listdir(out))
    # a mapping error this time (found before anything is read)
    (folder / "mappings" / "dm.yaml").write_text(sk.minimal_dm(SEX="{from: dm.SEX, codlist: SEX}"),
                                                 encoding="utf-8")
    bad = sk.run_cli(folder, out)
    assert bad.returncode == 1
    assert "mappings/dm.yaml" in bad.stderr
    assert _snapshot(out) == before
    assert sorted(os.listdir(out)) == entries_before
