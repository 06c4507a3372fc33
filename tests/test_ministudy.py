"""End to end: tests/ministudy converted with `convert`, the XPT files read back with pyreadstat and
compared with values computed by hand from the raw files (arithmetic in the comments).

Raw facts used below:
  patients.csv  P01 Male, DOB 1970-03-12, consent 2022-01-10, 'white', no comment
                P02 female, DOB 1985-11-30, consent 2022-02-01, 'Asian', comment 'a short remark'
                P03 F, DOB 1990-07-UN, consent 2022-02-15, 'Persian' (study synonym → WHITE; RACEOTH)
  doses.csv     P01 11/01/2022 08:30 and 08/02/2022 09:00; P02 02/02/2022 (no time); P03 16/02/2022 10:15
  labs_wide.csv HGB and ALT_RESULT melted; P02 'UNS 1' on 20/02/2022; P03 ALT 0.5 ukat/L
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
from pathlib import Path

import pyreadstat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studykit import col, records  # noqa: E402

from sdtm_rA.sdtm.convert import convert  # noqa: E402

MINI = Path(__file__).resolve().parent / "ministudy"


@pytest.fixture(scope="module")
def outs(tmp_path_factory):
    """Two conversions of the same inputs into two folders."""
    a = tmp_path_factory.mktemp("mini_a") / "out"
    b = tmp_path_factory.mktemp("mini_b") / "out"
    convert(MINI, a, command=["sdtm-ra", "convert", str(MINI), "--out", str(a)])
    convert(MINI, b, command=["sdtm-ra", "convert", str(MINI), "--out", str(b)])
    return a, b


@pytest.fixture(scope="module")
def xpt(outs):
    out = outs[0]
    data = {}
    for path in sorted((out / "sdtm").glob("*.xpt")):
        df, meta = pyreadstat.read_xport(str(path))
        data[path.stem.upper()] = (df, meta)
    return data


def test_output_files(outs):
    names = sorted(p.name for p in (outs[0] / "sdtm").iterdir())
    assert names == ["dm.xpt", "lb.xpt", "suppdm.xpt", "ts.xpt"]


# ====================================================================== DM

def test_dm_values(xpt):
    dm, meta = xpt["DM"]
    assert meta.table_name == "DM"
    assert col(dm, "STUDYID") == ["MINI01"] * 3
    assert col(dm, "DOMAIN") == ["DM"] * 3
    assert col(dm, "USUBJID") == ["MINI01-P01", "MINI01-P02", "MINI01-P03"]
    assert col(dm, "SUBJID") == ["P01", "P02", "P03"]
    # first dose date + time; last dose date only (RFENDTC/RFXENDTC are mapped without the time)
    assert col(dm, "RFSTDTC") == ["2022-01-11T08:30", "2022-02-02", "2022-02-16T10:15"]
    assert col(dm, "RFXSTDTC") == ["2022-01-11T08:30", "2022-02-02", "2022-02-16T10:15"]
    assert col(dm, "RFENDTC") == ["2022-02-08", "2022-02-02", "2022-02-16"]
    assert col(dm, "RFXENDTC") == ["2022-02-08", "2022-02-02", "2022-02-16"]
    assert col(dm, "RFICDTC") == ["2022-01-10", "2022-02-01", "2022-02-15"]
    assert col(dm, "SITEID") == ["C1", "C1", "C2"]
    assert col(dm, "BRTHDTC") == ["1970-03-12", "1985-11-30", "1990-07"]
    # P01 1970-03-12 → 2022-01-10: 52 − 1 (birthday in March not reached) = 51
    # P02 1985-11-30 → 2022-02-01: 37 − 1 (birthday in November not reached) = 36
    # P03 July 1990 → 2022-02-15: 31 whatever the day in July
    assert col(dm, "AGE") == [51, 36, 31]
    assert col(dm, "AGEU") == ["YEARS"] * 3
    assert col(dm, "SEX") == ["M", "F", "F"]                 # Male / female (CT synonym Female) / F
    assert col(dm, "RACE") == ["WHITE", "ASIAN", "WHITE"]    # white / Asian / Persian (study synonym)
    assert col(dm, "ETHNIC") == ["NOT HISPANIC OR LATINO", "NOT REPORTED", "NOT HISPANIC OR LATINO"]
    assert col(dm, "ARMCD") == ["DRUGA"] * 3
    assert col(dm, "ARM") == ["Drug A 10 mg"] * 3
    assert col(dm, "ACTARMCD") == ["DRUGA"] * 3
    assert col(dm, "ACTARM") == ["Drug A 10 mg"] * 3
    assert col(dm, "COUNTRY") == ["FRA"] * 3


def test_dm_columns_and_labels(xpt):
    dm, meta = xpt["DM"]
    assert list(dm.columns) == [
        "STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC",
        "RFPENDTC", "DTHDTC", "DTHFL", "SITEID", "BRTHDTC", "AGE", "AGEU", "SEX", "RACE", "ETHNIC", "ARMCD",
        "ARM", "ACTARMCD", "ACTARM", "ARMNRS", "ACTARMUD", "COUNTRY"]
    assert meta.file_label == "Demographics"
    labels = meta.column_names_to_labels
    assert labels["USUBJID"] == "Unique Subject Identifier"
    assert labels["RFSTDTC"] == "Subject Reference Start Date/Time"
    assert col(dm, "DTHFL") == ["", "", ""]


def test_suppdm(xpt):
    supp, _ = xpt["SUPPDM"]
    assert records(supp, "STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL",
                   "QORIG") == [
        ("MINI01", "DM", "MINI01-P02", "", "", "DMCOMM", "Comment", "a short remark", "CRF"),
        ("MINI01", "DM", "MINI01-P03", "", "", "RACEOTH", "Race, Other", "Persian", "CRF"),
    ]


# ====================================================================== LB

LB_EXPECTED = [
    # USUBJID, LBSEQ, LBTESTCD, VISIT raw, LBORRES, LBSTRESC, LBSTRESN, LBSTRESU, LBDTC, VISITNUM, LBDY, LBLOBXFL
    ("MINI01-P01", 1, "ALT", "22", "22", 22, "U/L", "2022-01-11", 10, 1, "Y"),
    ("MINI01-P01", 2, "ALT", "<5", "<5", "", "U/L", "2022-02-08", 20, 29, ""),    # 20 + 8 days → day 29
    ("MINI01-P01", 3, "HGB", "13.5", "13.5", 13.5, "g/dL", "2022-01-11", 10, 1, "Y"),
    ("MINI01-P01", 4, "HGB", "13.1", "13.1", 13.1, "g/dL", "2022-02-08", 20, 29, ""),
    ("MINI01-P02", 1, "ALT", "40", "40", 40, "U/L", "2022-02-02", 10, 1, "Y"),
    ("MINI01-P02", 2, "ALT", "", "", "", "", "2022-02-20", 10.1, 19, ""),          # 18 days later → 19
    ("MINI01-P02", 3, "HGB", "11.0", None, 11.0, "g/dL", "2022-02-02", 10, 1, "Y"),
    ("MINI01-P02", 4, "HGB", "10.2", "10.2", 10.2, "g/dL", "2022-02-20", 10.1, 19, ""),
    ("MINI01-P03", 1, "ALT", "0.5", "30", 30, "U/L", "2022-02-16", 10, 1, "Y"),   # 0.5 ukat/L × 60
    ("MINI01-P03", 2, "HGB", "12.4", "12.4", 12.4, "g/dL", "2022-02-16", 10, 1, "Y"),
]


def test_lb_values(xpt):
    lb, _ = xpt["LB"]
    got = records(lb, "USUBJID", "LBSEQ", "LBTESTCD", "LBORRES", "LBSTRESC", "LBSTRESN", "LBSTRESU",
                  "LBDTC", "VISITNUM", "LBDY", "LBLOBXFL")
    assert len(got) == len(LB_EXPECTED)
    for row, exp in zip(got, LB_EXPECTED):
        for name, g, e in zip(("USUBJID", "LBSEQ", "LBTESTCD", "LBORRES", "LBSTRESC", "LBSTRESN", "LBSTRESU",
                               "LBDTC", "VISITNUM", "LBDY", "LBLOBXFL"), row, exp):
            if e is None:          # '11.0' written as '11' or '11.0': the document does not say which
                continue
            if isinstance(e, (int, float)):
                assert g != "" and math.isclose(g, e), (exp, name, g)
            else:
                assert g == e, (exp, name, g)


def test_lb_other_variables(xpt):
    lb, _ = xpt["LB"]
    assert col(lb, "STUDYID") == ["MINI01"] * 10
    assert col(lb, "DOMAIN") == ["LB"] * 10
    tests = {"ALT": "Alanine Aminotransferase", "HGB": "Hemoglobin"}
    assert col(lb, "LBTEST") == [tests[t] for t in col(lb, "LBTESTCD")]
    cats = {"ALT": "CHEMISTRY", "HGB": "HEMATOLOGY"}
    assert col(lb, "LBCAT") == [cats[t] for t in col(lb, "LBTESTCD")]
    units = col(lb, "LBORRESU")
    assert [units[i] for i in (0, 1, 4, 8)] == ["U/L", "U/L", "U/L", "ukat/L"]
    assert [units[i] for i in (2, 3, 6, 7, 9)] == ["g/dL"] * 5
    # BASELINE (aliases BL) and MONTH 1 (M1) from the schedule
    visits = col(lb, "VISIT")
    assert [visits[i] for i in (0, 2, 4, 6, 8, 9)] == ["BASELINE"] * 6
    assert [visits[i] for i in (1, 3)] == ["MONTH 1"] * 2
    # all visits are TREATMENT: BL / M1 by the schedule; UNS 1 (2022-02-20) after RFXSTDTC 2022-02-02
    assert col(lb, "EPOCH") == ["TREATMENT"] * 10


def test_lb_columns_in_ig_order(xpt):
    lb, _ = xpt["LB"]
    assert list(lb.columns) == [
        "STUDYID", "DOMAIN", "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBCAT", "LBORRES", "LBORRESU",
        "LBORNRLO", "LBORNRHI", "LBSTRESC", "LBSTRESN", "LBSTRESU", "LBSTNRLO", "LBSTNRHI", "LBNRIND",
        "LBLOBXFL", "VISITNUM", "VISIT", "EPOCH", "LBDTC", "LBDY"]


def test_lobxfl_one_per_subject_and_test(xpt):
    lb, _ = xpt["LB"]
    flagged = [(u, t) for u, t, f in records(lb, "USUBJID", "LBTESTCD", "LBLOBXFL") if f == "Y"]
    assert sorted(flagged) == [("MINI01-P01", "ALT"), ("MINI01-P01", "HGB"), ("MINI01-P02", "ALT"),
                               ("MINI01-P02", "HGB"), ("MINI01-P03", "ALT"), ("MINI01-P03", "HGB")]


# ====================================================================== TS

def test_ts(xpt):
    ts, _ = xpt["TS"]
    rows = {p: (v, cd) for p, v, cd in records(ts, "TSPARMCD", "TSVAL", "TSVALCD")}
    assert rows["SSTDTC"][0] == "2022-01-10"             # earliest of the three consent dates
    assert rows["TPHASE"] == ("PHASE II TRIAL", "C15601")
    assert rows["SDTIGVER"][0] == "3.4"
    assert rows["TITLE"][0] == "Mini study for engine tests"
    assert rows["SPONSOR"][0] == "Example Sponsor"


# ====================================================================== reproducibility and run.json

def test_two_conversions_give_byte_identical_xpt(outs):
    a, b = outs
    files = sorted(p.name for p in (a / "sdtm").glob("*.xpt"))
    assert files == sorted(p.name for p in (b / "sdtm").glob("*.xpt"))
    for name in files:
        assert (a / "sdtm" / name).read_bytes() == (b / "sdtm" / name).read_bytes(), name


def test_xpt_header_date_from_study_yaml(outs, xpt):
    # study.yaml xpt_timestamp 2024-05-01T00:00:00 → ddMMMyy:hh:mm:ss in the headers
    for path in (outs[0] / "sdtm").glob("*.xpt"):
        assert b"01MAY24:00:00:00" in path.read_bytes()[:800], path.name
    _, meta = xpt["DM"]
    assert meta.creation_time == dt.datetime(2024, 5, 1, 0, 0, 0)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_json_output_hashes(outs, xpt):
    out = outs[0]
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    written = {f"sdtm/{p.name}": p for p in (out / "sdtm").glob("*.xpt")}
    assert set(run["outputs"]) == set(written)
    for key, path in written.items():
        assert run["outputs"][key]["sha256"] == _sha(path), key
        assert run["outputs"][key]["rows"] == len(xpt[path.stem.upper()][0]), key


def test_run_json_input_hashes(outs):
    run = json.loads((outs[0] / "run.json").read_text(encoding="utf-8"))
    inputs = run["inputs"]
    files = [MINI / "study.yaml", *sorted((MINI / "mappings").glob("*.yaml")), *sorted((MINI / "raw").glob("*"))]
    assert len(files) == 6
    for path in files:
        rel = path.relative_to(MINI).as_posix()
        keys = [k for k in inputs if k == rel or k.endswith("/" + rel)]
        assert len(keys) == 1, (rel, list(inputs))
        assert inputs[keys[0]] == _sha(path), rel
    assert run["study"] == "MINI01"
    assert run["command"][:2] == ["sdtm-ra", "convert"]
