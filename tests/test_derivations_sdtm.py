"""The derivations of docs/mapping-language.md §5 against the SDTMIG 3.4 rules they implement.

The standard DM of tests/studykit.py gives the reference dates (computed by hand there):
  101: RFICDTC 2021-03-01, RFSTDTC = RFXSTDTC 2021-03-10T09:30
  102: RFICDTC 2021-03-02, RFSTDTC = RFXSTDTC 2021-03-12 (no time), DTHDTC 2021-06-30
  103: RFICDTC 2021-03-05, RFSTDTC = RFXSTDTC 2021-03-15T08:00
The default schedule: SCREENING (1, day -14, SCREENING), DAY 1 (2, day 1, TREATMENT),
WEEK 2 (3, day 15, FOLLOW-UP); unscheduled pattern 'UNSCHEDULED {n}'.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import by, col, records  # noqa: E402

U = "TST01-"


def with_dm(tmp_path, mappings: dict, raw: dict, study=None, name="study"):
    folder = sk.make_study(tmp_path, study, mappings={"dm": sk.dm_mapping(), **mappings},
                           raw={**sk.DM_RAW, **raw}, name=name)
    return sk.build(folder)


# ====================================================================== --DY

def test_study_day_around_the_reference_date(tmp_path):
    raw = ("SUBJID,TRT,STDAT,STTIM\n"
           "101,A,2021-02-28,\n"
           "101,B,2021-03-09,\n"
           "101,C,2021-03-10,08:00\n"
           "101,D,2021-03-10,\n"
           "101,E,2021-03-11,\n"
           "101,F,2021-04-01,\n"
           "101,G,2021-03-UN,\n"
           "102,H,2021-03-12,23:59\n")
    cm = sk.cm_mapping(CMSTDTC='{date: [cm.STDAT, cm.STTIM], format: yyyy-MM-dd, time_format: "HH:mm"}',
                       CMSTDY="{derive: study_day, date: CMSTDTC}")
    out = with_dm(tmp_path, {"cm": cm}, {"raw/cm.csv": raw}).datasets["CM"]
    got = {trt: (dtc, dy) for trt, dtc, dy in records(out, "CMTRT", "CMSTDTC", "CMSTDY")}
    assert got == {
        "A": ("2021-02-28", -10),        # 10 days before 2021-03-10, no day 0
        "B": ("2021-03-09", -1),         # the day before
        "C": ("2021-03-10T08:00", 1),    # same day (the time does not matter), DTC keeps its time
        "D": ("2021-03-10", 1),
        "E": ("2021-03-11", 2),
        "F": ("2021-04-01", 23),         # 21 days left in March + 1 = 22 days later → day 23
        "G": ("2021-03", ""),            # partial date: no study day, DTC unchanged
        "H": ("2021-03-12T23:59", 1),    # 102: reference 2021-03-12
    }


def test_study_day_across_a_leap_day_and_a_year_end(tmp_path):
    raw = {"raw/dm.csv": "SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT\n201,S01,M,1980-05-20,2019-12-01,\n",
           "raw/ex.csv": "SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n201,2020-02-28,,5\n",
           "raw/cm.csv": "SUBJID,TRT,STDAT\n201,A,2019-12-31\n201,B,2020-02-29\n201,C,2020-03-01\n201,D,2021-02-28\n"}
    cm = sk.cm_mapping(CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}", CMSTDY="{derive: study_day, date: CMSTDTC}")
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(), "cm": cm}, raw=raw)
    out = sk.build(folder).datasets["CM"]
    # reference 2020-02-28: 2019-12-31 is 31 + 28 = 59 days before → -59; 2020-02-29 → 2;
    # 2020-03-01 → 3; 2021-02-28 is 366 days later (2020 is a leap year) → 367
    assert by(out, "CMTRT", "CMSTDY") == {"A": -59, "B": 2, "C": 3, "D": 367}


# ====================================================================== --SEQ

SEQ_RAW = ("SUBJID,TRT,STDAT\n"
           "101,Zinc,2021-03-05\n"       # line 2
           "101,Iron,2021-03-01\n"       # line 3
           "101,Aspirin,2021-03-05\n"    # line 4: same date as line 2
           "102,Dopamine,2021-03-02\n"   # line 5
           "101,Magnesium,2021-03-05\n") # line 6: same date as lines 2 and 4


def test_seq_ties_broken_by_raw_line_and_stable(tmp_path):
    cm = sk.cm_mapping(CMSEQ="{derive: seq, order: [CMSTDTC]}",
                       CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}")
    runs = [with_dm(tmp_path, {"cm": cm}, {"raw/cm.csv": SEQ_RAW}, name=f"s{i}").datasets["CM"]
            for i in range(2)]
    expected = [(U + "101", 1, "Iron"), (U + "101", 2, "Zinc"), (U + "101", 3, "Aspirin"),
                (U + "101", 4, "Magnesium"), (U + "102", 1, "Dopamine")]
    for out in runs:
        assert records(out, "USUBJID", "CMSEQ", "CMTRT") == expected
    pd.testing.assert_frame_equal(runs[0], runs[1])


# ====================================================================== VISITNUM / VISIT / VISITDY / EPOCH

LB_TESTS = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: GLUC, testcd: GLUC, unit: mmol/L}
  - {match: CRP, testcd: CRP, unit: mg/L, convert: {mg/dL: 10}}
  - {match: HGB, testcd: HGB, unit: g/dL}
"""


def lb_mapping(**extra):
    rules = {
        "USUBJID": '{template: "{STUDYID}-{lab.SUBJID}"}',
        "LBSPID": "{from: lab.SPID}",
        "LBTESTCD": "{derive: test_code}",
        "LBTEST": "{derive: test_name}",
        "LBORRES": "{from: lab.RESULT}",
        "LBDTC": "{date: lab.DATE, format: yyyy-MM-dd}",
        "LBSEQ": "{derive: seq, order: [LBTESTCD, LBDTC, VISITNUM]}",
    }
    rules.update(extra)
    return sk.mapping("LB", {"lab": "{file: raw/lab.csv}"}, rules, tests=LB_TESTS)


VISIT_RULES = dict(
    VISITNUM="{derive: visitnum, visit: lab.VISIT, date: LBDTC}",
    VISIT="{derive: visit, visit: lab.VISIT}",
    VISITDY="{derive: visitdy, visitnum: VISITNUM}",
    EPOCH="{derive: epoch, date: LBDTC, visitnum: VISITNUM}",
)

VISIT_RAW = ("SPID,SUBJID,TEST,VISIT,DATE,RESULT\n"
             "V1,101,GLUC,SCR,2021-03-01,5.0\n"
             "V2,101,GLUC,SCREENING,2021-03-02,5.1\n"
             "V3,101,GLUC,D1,2021-03-10,5.2\n"
             "V4,101,GLUC,W2,2021-03-24,5.3\n"
             "V5,101,GLUC,UNSCHEDULED 1,2021-03-09,5.4\n"
             "V6,101,GLUC,UNSCHEDULED 2,2021-03-23,5.5\n"
             "V7,101,GLUC,UNSCHEDULED 3,2021-03-24,5.6\n"
             "V8,101,GLUC,WEEK 2,2021-03-25,5.7\n")


def test_visitnum_visit_visitdy_epoch_from_the_schedule(tmp_path):
    out = with_dm(tmp_path, {"lb": lb_mapping(**VISIT_RULES)}, {"raw/lab.csv": VISIT_RAW}).datasets["LB"]
    got = {r[0]: tuple(r[1:]) for r in records(out, "LBSPID", "VISITNUM", "VISIT", "VISITDY", "EPOCH")}
    # study days against RFSTDTC 2021-03-10: 03-09 → -1, 03-23 → 14, 03-24 → 15
    assert got["V1"] == (1, "SCREENING", -14, "SCREENING")      # alias SCR
    assert got["V2"] == (1, "SCREENING", -14, "SCREENING")      # the schedule's own name
    assert got["V3"] == (2, "DAY 1", 1, "TREATMENT")
    assert got["V4"] == (3, "WEEK 2", 15, "FOLLOW-UP")          # scheduled: the visit's epoch
    assert got["V8"] == (3, "WEEK 2", 15, "FOLLOW-UP")
    # unscheduled n: last scheduled visit with planned day <= its study day, + n/10
    assert got["V5"][0] == pytest.approx(1.1)   # day -1: SCREENING (-14)
    assert got["V6"][0] == pytest.approx(2.2)   # day 14: DAY 1 (1)
    assert got["V7"][0] == pytest.approx(3.3)   # day 15: WEEK 2 (15), on the planned day
    # an unscheduled visit has no planned study day (SDTMIG: VISITDY is the planned day)
    assert [got[k][2] for k in ("V5", "V6", "V7")] == ["", "", ""]
    # EPOCH by date: SCREENING from RFICDTC 2021-03-01, TREATMENT from RFXSTDTC 2021-03-10T09:30
    assert [got[k][3] for k in ("V5", "V6", "V7")] == ["SCREENING", "TREATMENT", "TREATMENT"]


def test_epoch_starting_at_a_visit_uses_the_subjects_svstdtc(tmp_path):
    study = {"epochs": [{"epoch": "SCREENING", "start": "RFICDTC"},
                        {"epoch": "TREATMENT", "start": "RFXSTDTC"},
                        {"epoch": "FOLLOW-UP", "start": {"visit": "WEEK 2"}}]}
    sv = sk.mapping("SV", {"sv": "{file: raw/sv.csv}"}, {
        "USUBJID": '{template: "{STUDYID}-{sv.SUBJID}"}',
        "VISITNUM": "{derive: visitnum, visit: sv.VISIT, date: SVSTDTC}",
        "VISIT": "{derive: visit, visit: sv.VISIT}",
        "SVSTDTC": "{date: sv.DATE, format: yyyy-MM-dd}",
    })
    sv_raw = "SUBJID,VISIT,DATE\n101,SCR,2021-03-01\n101,D1,2021-03-10\n101,W2,2021-03-24\n"
    lab = ("SPID,SUBJID,TEST,VISIT,DATE,RESULT\n"
           "E1,101,GLUC,UNSCHEDULED 1,2021-03-23,5.0\n"   # before the WEEK 2 visit (2021-03-24)
           "E2,101,GLUC,UNSCHEDULED 2,2021-03-24,5.1\n"   # on it
           "E3,101,GLUC,UNSCHEDULED 3,2021-03-26,5.2\n")  # after it
    out = with_dm(tmp_path, {"sv": sv, "lb": lb_mapping(**VISIT_RULES)},
                  {"raw/sv.csv": sv_raw, "raw/lab.csv": lab}, study=study).datasets["LB"]
    assert by(out, "LBSPID", "EPOCH") == {"E1": "TREATMENT", "E2": "FOLLOW-UP", "E3": "FOLLOW-UP"}


# ====================================================================== --LOBXFL

LOBXFL_RULES = dict(
    LBSTAT="{from: lab.STAT}",
    VISITNUM="{derive: visitnum, visit: lab.VISIT, date: LBDTC}",
    LBLOBXFL="{derive: last_before_exposure, by: [LBTESTCD], date: LBDTC, result: LBORRES, "
             "status: LBSTAT, ties: [VISITNUM, LBSEQ]}",
    LBDY="{derive: study_day, date: LBDTC}",
)

LOBXFL_RAW = ("SPID,SUBJID,TEST,VISIT,DATE,RESULT,STAT\n"
              "X1,101,GLUC,SCR,2021-03-01,5.0,\n"
              "X2,101,GLUC,D1,2021-03-10,5.2,\n"                # date only, day of first dose: counts
              "X3,101,GLUC,W2,2021-03-24,5.5,\n"                # after first dose: never
              "X4,101,CRP,SCR,2021-03-01,3.0,\n"
              "X5,101,CRP,D1,2021-03-10,,NOT DONE\n"            # not done: skipped
              "X6,102,GLUC,UNSCHEDULED 1,2021-03-05,6.3,\n"     # same date as X7; VISITNUM 1.1
              "X7,102,GLUC,SCR,2021-03-05,6.1,\n"               # VISITNUM 1, later in the file
              "X8,102,GLUC,W2,2021-03-26,6.0,\n"
              "X9,103,GLUC,W2,2021-03-29,5.9,\n")               # 103 has only post-dose data


def test_last_observation_before_exposure_flag(tmp_path):
    out = with_dm(tmp_path, {"lb": lb_mapping(**LOBXFL_RULES)}, {"raw/lab.csv": LOBXFL_RAW}).datasets["LB"]
    flags = by(out, "LBSPID", "LBLOBXFL")
    assert flags == {"X1": "", "X2": "Y", "X3": "", "X4": "Y", "X5": "",
                     # tie on 2021-03-05 broken by VISITNUM (1.1 > 1), whatever the file order
                     "X6": "Y", "X7": "", "X8": "", "X9": ""}
    # exactly one per subject and test, where a candidate exists
    counts = Counter((u, t) for u, t, f in records(out, "USUBJID", "LBTESTCD", "LBLOBXFL") if f == "Y")
    assert counts == {(U + "101", "GLUC"): 1, (U + "101", "CRP"): 1, (U + "102", "GLUC"): 1}
    # study days (102: 2021-03-05 is 7 days before 2021-03-12) and the unscheduled visit number
    # (day -7: last scheduled visit on or before it is SCREENING, day -14 → 1 + 1/10)
    assert by(out, "LBSPID", "LBDY") == {"X1": -9, "X2": 1, "X3": 15, "X4": -9, "X5": 1,
                                         "X6": -7, "X7": -7, "X8": 15, "X9": 15}
    assert by(out, "LBSPID", "VISITNUM")["X6"] == pytest.approx(1.1)
    # LBSEQ by LBTESTCD, LBDTC, VISITNUM: 101 CRP X4 1, X5 2, GLUC X1 3, X2 4, X3 5;
    # 102 X7 (visit 1) 1, X6 (visit 1.1) 2, X8 3; 103 X9 1
    assert by(out, "LBSPID", "LBSEQ") == {"X4": 1, "X5": 2, "X1": 3, "X2": 4, "X3": 5,
                                          "X7": 1, "X6": 2, "X8": 3, "X9": 1}


def test_last_observation_before_exposure_with_times(tmp_path):
    raw = ("SPID,SUBJID,TEST,DATE,TIME,RESULT\n"
           "T1,101,HGB,2021-03-01,,13.0\n"
           "T2,101,HGB,2021-03-10,10:15,13.5\n"   # 45 min after the first dose (09:30): not before
           "T3,103,HGB,2021-03-01,,12.0\n"
           "T4,103,HGB,2021-03-15,07:45,12.2\n")  # 15 min before the first dose (08:00): flagged
    rules = dict(LBDTC='{date: [lab.DATE, lab.TIME], format: yyyy-MM-dd, time_format: "HH:mm"}',
                 LBSEQ="{derive: seq, order: [LBTESTCD, LBDTC]}",
                 LBLOBXFL="{derive: last_before_exposure, by: [LBTESTCD], date: LBDTC, result: LBORRES}")
    out = with_dm(tmp_path, {"lb": lb_mapping(**rules)}, {"raw/lab.csv": raw}).datasets["LB"]
    assert by(out, "LBSPID", "LBLOBXFL") == {"T1": "Y", "T2": "", "T3": "", "T4": "Y"}


def test_last_observation_before_exposure_skips_partial_dates_that_cannot_be_ordered(tmp_path):
    raw = ("SPID,SUBJID,TEST,DATE,RESULT\n"
           "P1,101,HGB,2021-03-01,13.0\n"
           "P2,101,HGB,2021-03-UN,13.2\n")   # 2021-03: before or after 2021-03-10? cannot be ordered
    rules = dict(LBSEQ="{derive: seq, order: [LBTESTCD, LBSPID]}",
                 LBLOBXFL="{derive: last_before_exposure, by: [LBTESTCD], date: LBDTC, result: LBORRES}")
    out = with_dm(tmp_path, {"lb": lb_mapping(**rules)}, {"raw/lab.csv": raw}).datasets["LB"]
    assert by(out, "LBSPID", "LBDTC") == {"P1": "2021-03-01", "P2": "2021-03"}
    assert by(out, "LBSPID", "LBLOBXFL") == {"P1": "Y", "P2": ""}


# ====================================================================== AGE

AGE_RAW = ("SUBJID,BRTHDAT,ICDAT\n"
           "101,1980-05-20,2021-03-01\n"   # birthday not reached yet → 40
           "102,1975-03-02,2021-03-02\n"   # birthday on the reference date → 46
           "103,1975-03-03,2021-03-02\n"   # birthday the next day → 45
           "104,1990-07-UN,2022-02-15\n"   # July 1990: every day gives 31
           "105,1990-07-UN,2022-07-15\n"   # born 1-15 July → 32, 16-31 July → 31: ambiguous (line 6)
           "106,1980-UN-UN,2021-12-31\n"   # any day of 1980 → 41 (31 Dec 1980 turns 41 that day)
           "107,1980-UN-UN,2021-06-30\n")  # 1 Jan 1980 → 41, 31 Dec 1980 → 40: ambiguous (line 8)


def test_age_in_completed_years(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(
        BRTHDTC="{date: dm.BRTHDAT, format: yyyy-MM-dd}",
        RFICDTC="{date: dm.ICDAT, format: yyyy-MM-dd}",
        AGE="{derive: age, birth: BRTHDTC, reference: RFICDTC}",
        AGEU="{constant: YEARS}")}, raw={"raw/dm.csv": AGE_RAW})
    result = sk.build(folder)
    dm = result.datasets["DM"]
    assert col(dm, "BRTHDTC") == ["1980-05-20", "1975-03-02", "1975-03-03", "1990-07", "1990-07",
                                  "1980", "1980"]
    assert col(dm, "AGE") == [40, 46, 45, 31, "", 41, ""]
    warnings = [str(w) for w in result.issues.warnings]
    for subjid, line in (("105", 6), ("107", 8)):
        assert any(U + subjid in w or line in sk.lines_in(w) for w in warnings), (subjid, warnings)
    assert len(warnings) == 2, warnings


# ====================================================================== arms, death flag

NOTTRT_RAW = {"raw/dm.csv": "SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT\n"
                            "101,S01,M,1980-05-20,2021-03-01,\n"
                            "102,S01,F,1975-03-02,2021-03-02,\n"
                            "103,S02,F,1990-07-14,2021-03-05,\n",
              "raw/ex.csv": "SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
                            "101,2021-03-10,09:30,5\n"
                            "102,2021-03-12,08:00,0\n"}   # 102: only a zero dose; 103: no record


ARMNRS = "{derive: arm_null_reason, planned: ARMCD, actual: ACTARMCD}"


def test_actual_arm_code_empty_for_an_untreated_subject(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(ACTARM=None, ARMNRS=ARMNRS)},
                           raw=NOTTRT_RAW)
    dm = sk.build(folder).datasets["DM"]
    assert col(dm, "ARMCD") == ["TRT", "TRT", "TRT"]
    assert col(dm, "ARM") == ["Drug X 5 mg"] * 3
    # 102 has an exposure record (dose 0); 103 has none: SDTMIG 3.4 empties ACTARMCD, ARMNRS says why
    assert col(dm, "ACTARMCD") == ["TRT", "TRT", ""]
    assert col(dm, "ARMNRS") == ["", "", "ASSIGNED, NOT TREATED"]
    assert col(dm, "RFXSTDTC") == ["2021-03-10T09:30", "2021-03-12T08:00", ""]


def test_actual_arm_code_with_exposure_where_as_documented(tmp_path):
    # §5: actual_arm_code takes `planned`, `exposure` and `exposure_where: {...}` (a condition on the exposure rows)
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(
        ACTARMCD='{derive: actual_arm_code, planned: ARMCD, exposure: ex, exposure_where: {EXDOSE: {not: ["0", ""]}}}',
        ACTARM=None, ARMNRS=ARMNRS)}, raw=NOTTRT_RAW)
    dm = sk.build(folder).datasets["DM"]
    assert col(dm, "ACTARMCD") == ["TRT", "", ""]


def test_standard_dm_arms_and_death_flag(tmp_path):
    dm = with_dm(tmp_path, {}, {}).datasets["DM"]
    assert col(dm, "ACTARMCD") == ["TRT", "TRT", "TRT"]
    assert col(dm, "ACTARM") == ["Drug X 5 mg"] * 3
    assert col(dm, "DTHDTC") == ["", "2021-06-30", ""]
    assert col(dm, "DTHFL") == ["", "Y", ""]
    assert col(dm, "AGE") == [40, 46, 30]   # 1990-07-14 → 2021-03-05: 30
    assert col(dm, "RFSTDTC") == ["2021-03-10T09:30", "2021-03-12", "2021-03-15T08:00"]
    assert col(dm, "RFXENDTC") == ["2021-03-24T10:00", "2021-03-12", "2021-03-15T08:00"]


# ====================================================================== reference range indicator

def test_reference_range_indicator_limits_inclusive(tmp_path):
    raw = ("SPID,SUBJID,TEST,DATE,RESULT,UNIT,LO,HI\n"
           "R1,101,GLUC,2021-03-01,3.0,mmol/L,3.0,10\n"    # on the low limit → NORMAL
           "R2,101,GLUC,2021-03-02,10,mmol/L,3.0,10\n"     # on the high limit → NORMAL
           "R3,101,GLUC,2021-03-03,2.9,mmol/L,3.0,10\n"    # LOW
           "R4,101,GLUC,2021-03-04,10.1,mmol/L,3.0,10\n"   # HIGH
           "R5,101,GLUC,2021-03-05,,mmol/L,3.0,10\n"       # no result → none
           "R6,101,CRP,2021-03-01,0.3,mg/dL,0.3,1\n"       # × 10: 3 on the limit 3 → NORMAL
           "R7,101,CRP,2021-03-02,1.2,mg/dL,0.3,1\n"       # × 10: 12 > 10 → HIGH
           "R8,101,GLUC,2021-03-06,7,mmol/L,,\n")          # no range → none
    rules = dict(
        LBORRESU="{from: lab.UNIT}",
        LBORNRLO="{from: lab.LO}", LBORNRHI="{from: lab.HI}",
        LBSTRESC="{derive: standard_result, result: LBORRES, unit: LBORRESU}",
        LBSTRESN="{derive: standard_numeric, of: LBSTRESC}",
        LBSTRESU="{derive: standard_unit, result: LBSTRESC}",
        LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}",
        LBSTNRHI="{derive: standard_range, of: LBORNRHI, unit: LBORRESU}",
        LBNRIND="{derive: reference_range_indicator, result: LBSTRESN, low: LBSTNRLO, high: LBSTNRHI}",
        LBSEQ="{derive: seq, order: [LBTESTCD, LBDTC]}",
    )
    out = with_dm(tmp_path, {"lb": lb_mapping(**rules)}, {"raw/lab.csv": raw}).datasets["LB"]
    assert by(out, "LBSPID", "LBNRIND") == {"R1": "NORMAL", "R2": "NORMAL", "R3": "LOW", "R4": "HIGH",
                                            "R5": "", "R6": "NORMAL", "R7": "HIGH", "R8": ""}
    lo, hi = by(out, "LBSPID", "LBSTNRLO"), by(out, "LBSPID", "LBSTNRHI")
    assert (lo["R1"], hi["R1"]) == (3, 10)
    assert (lo["R6"], hi["R6"]) == (pytest.approx(3), pytest.approx(10))   # 0.3 and 1 mg/dL × 10
    assert (lo["R8"], hi["R8"]) == ("", "")
    stresc = by(out, "LBSPID", "LBSTRESC")
    assert (stresc["R6"], stresc["R7"]) == ("3", "12")                      # no float noise


# ====================================================================== unscheduled numbering step

MANY_UNSCHEDULED = ("SPID,SUBJID,TEST,VISIT,DATE,RESULT\n"
                    "U1,101,GLUC,UNSCHEDULED 9,2021-03-12,5.0\n"    # day 3 after DAY 1 (2): 2 + 0.9
                    "U2,101,GLUC,UNSCHEDULED 10,2021-03-13,5.1\n")  # 2 + 1.0 would be visit 3


def test_more_unscheduled_visits_than_the_step_allows_is_an_error(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(), "lb": lb_mapping(**VISIT_RULES)},
                           raw={**sk.DM_RAW, "raw/lab.csv": MANY_UNSCHEDULED})
    text = sk.error_text(sk.conversion_error(folder))
    assert "UNSCHEDULED 10" in text and "step 0.1" in text and "step: 0.01" in text


def test_unscheduled_step_001(tmp_path):
    study = {"unscheduled": {"pattern": "UNSCHEDULED {n}", "step": 0.01}}
    folder = sk.make_study(tmp_path, study, mappings={"dm": sk.dm_mapping(), "lb": lb_mapping(**VISIT_RULES)},
                           raw={**sk.DM_RAW, "raw/lab.csv": MANY_UNSCHEDULED})
    out = sk.build(folder).datasets["LB"]
    got = dict(zip(out.LBSPID, out.VISITNUM))
    assert got["U1"] == pytest.approx(2.09) and got["U2"] == pytest.approx(2.10)   # DAY 1 is visit 2
