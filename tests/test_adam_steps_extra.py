"""The steps added for the CDISC pilot specs (coalesce, analysis_ratio, extreme_records), each on a few
hand-made records with the expected values worked out by hand, and once inside a spec (checks before
running, then the derivation)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.derive import derive_datasets
from sdtm_rA.adam.spec import load_spec_folder
from sdtm_rA.adam.steps import STEPS, run_step
from sdtm_rA.errors import ConversionError


def run(name: str, df: pd.DataFrame, **args) -> pd.DataFrame:
    return run_step(STEPS[name], df, args, ctx=None)


# ----------------------------------------------------------------------------- coalesce

def test_coalesce_takes_the_first_value_present():
    df = pd.DataFrame({"A": ["2021-01-31", "", None, " ", ""],
                       "B": ["2021-02-01", "2021-02-02", "", "2021-02-04", ""],
                       "C": ["x", "y", "2021-03-03", "z", ""]})
    out = run("coalesce", df, new="D", sources=["A", "B", "C"])
    # row 1: A; row 2: A blank -> B; row 3: A None, B blank -> C; row 4: A only blanks -> B; row 5: none
    assert out.D.tolist() == ["2021-01-31", "2021-02-02", "2021-03-03", "2021-02-04", None]
    assert list(df.columns) == ["A", "B", "C"]          # the input is not changed


def test_coalesce_of_numbers_and_on_a_subset():
    df = pd.DataFrame({"X": [1.0, np.nan, np.nan], "Y": [9.0, 2.0, np.nan], "K": ["a", "a", "b"]})
    out = run("coalesce", df, new="Z", sources=["X", "Y"])
    assert out.Z.tolist()[:2] == [1.0, 2.0] and out.Z.isna().tolist() == [False, False, True]
    sub = run("coalesce", df, new="Z", sources=["X", "Y"], where={"X": {"empty": True}})
    # only rows 2 and 3 are derived: row 1 (X present) gets missing
    assert pd.isna(sub.Z[0]) and sub.Z[1] == 2.0 and pd.isna(sub.Z[2])


# ----------------------------------------------------------------------------- analysis_ratio

def test_analysis_ratio_by_hand():
    df = pd.DataFrame({"AVAL": [3.0, 7.0, np.nan, 5.0, 1.0],
                       "BASE": [2.0, 2.0, 2.0, np.nan, 4.0],
                       "A1HI": [2.0, 4.0, 4.0, 0.0, 8.0]})
    out = run("analysis_ratio", df, new="R2A1HI", reference="A1HI")
    # 3/2, 7/4, missing value, division by 0 -> missing, 1/8
    assert out.R2A1HI.tolist()[:2] == [1.5, 1.75] and out.R2A1HI.tolist()[4] == 0.125
    assert out.R2A1HI.isna().tolist() == [False, False, True, True, False]
    out = run("analysis_ratio", out, new="BR2A1HI", value="BASE", reference="A1HI")
    assert out.BR2A1HI.tolist()[:3] == [1.0, 0.5, 0.5] and out.BR2A1HI.isna().tolist()[3]
    # the pilot's threshold indicator: H above 1.5 x A1HI (3/2 = 1.5 exactly is not above)
    flagged = run("flag", out, new="ANRIND", where={"R2A1HI": {"gt": 1.5}}, then="H", **{"else": "N"})
    assert flagged.ANRIND.tolist() == ["N", "H", "N", "N", "N"]


# ----------------------------------------------------------------------------- extreme_records

def _lab() -> pd.DataFrame:
    return pd.DataFrame({
        "USUBJID": ["S1"] * 5 + ["S2"] * 3,
        "PARAMCD": ["ALT"] * 4 + ["AST"] + ["ALT"] * 3,
        "ADT": pd.to_datetime(["2021-01-01", "2021-01-15", "2021-02-01", "2021-07-01", "2021-01-15",
                               "2021-01-01", "2021-01-20", "2021-01-20"]),
        "SEQ": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 3.0, 2.0],
        "AVISIT": ["Baseline", "Week 2", "Week 4", "Week 26", "Week 2", "Baseline", "Week 2", "Week 2"],
        "AVISITN": [0.0, 2.0, 4.0, 26.0, 2.0, 0.0, 2.0, 2.0],
        "AVAL": [10.0, 11.0, np.nan, 13.0, 20.0, 30.0, 31.0, 32.0],
    })


def test_extreme_records_adds_the_last_on_treatment_record_per_group():
    df = _lab()
    out = run("extreme_records", df, by=["USUBJID", "PARAMCD"], order=["ADT", "SEQ"],
              where={"AVISITN": {"ge": 2, "le": 24}}, set={"AVISIT": "End of Treatment", "AVISITN": 99})
    assert len(out) == 8 + 3
    assert out.iloc[:8].equals(df)                       # the input records first, unchanged
    new = out.iloc[8:].sort_values(["USUBJID", "PARAMCD"])
    # S1/ALT: week 2 and week 4 qualify (week 26 does not) -> week 4, even with its missing value;
    # S1/AST: its only record; S2/ALT: two records on the same day -> the higher SEQ (3)
    assert new.SEQ.tolist() == [3.0, 5.0, 3.0]
    assert new.AVAL.isna().tolist() == [True, False, False] and new.AVAL.tolist()[1:] == [20.0, 31.0]
    assert set(new.AVISIT) == {"End of Treatment"} and set(new.AVISITN) == {99.0}
    assert new.ADT.tolist() == list(pd.to_datetime(["2021-02-01", "2021-01-15", "2021-01-20"]))


def test_extreme_records_first_mode_and_new_variables():
    df = _lab()
    out = run("extreme_records", df, by=["USUBJID"], order=["ADT", "SEQ"], mode="first",
              where={"AVAL": {"gt": 10}}, set={"DTYPE": "FIRST"})
    new = out.iloc[8:]
    # S1: the first record with AVAL > 10 is SEQ 2 (2021-01-15, before SEQ 5 on the same day);
    # S2: SEQ 1 (2021-01-01, AVAL 30)
    assert new.USUBJID.tolist() == ["S1", "S2"] and new.SEQ.tolist() == [2.0, 1.0]
    assert new.DTYPE.tolist() == ["FIRST", "FIRST"] and out.DTYPE.iloc[:8].isna().all()
    none = run("extreme_records", df, by=["USUBJID"], order=["ADT"], where={"AVAL": {"gt": 100}},
               set={"DTYPE": "X"})
    assert len(none) == 8


# ----------------------------------------------------------------------------- inside a spec

DM = pd.DataFrame({"STUDYID": ["S"] * 2, "USUBJID": ["S-1", "S-2"], "RFENDTC": ["2021-03-01", "2021-04-01"]})
EX = pd.DataFrame({"STUDYID": ["S"] * 3, "USUBJID": ["S-1", "S-2", "S-2"], "EXSEQ": [1.0, 1.0, 2.0],
                   "EXSTDTC": ["2021-01-01", "2021-01-02", "2021-02-01"],
                   "EXENDTC": ["2021-01-31", "2021-01-31", ""]})
LB = pd.DataFrame({"STUDYID": ["S"] * 4, "USUBJID": ["S-1"] * 4, "LBSEQ": [1.0, 2.0, 3.0, 4.0],
                   "LBTESTCD": ["ALT"] * 4, "LBSTRESN": [40.0, 50.0, 70.0, 90.0], "LBSTNRHI": [40.0] * 4,
                   "VISITNUM": [1.0, 2.0, 3.0, 4.0], "LBDTC": ["2020-12-30", "2021-01-10", "2021-01-20", "2021-03-20"]})

ADSL = """\
dataset: ADSL
label: Subject-Level Analysis Dataset
class: ADSL
keys: [USUBJID]
steps:
  - {derive: records, dataset: DM}
  - {derive: merge, dataset: EX, order: [EXSTDTC, EXSEQ], mode: last, keep: {LEXENDTC: EXENDTC}}
  - {derive: coalesce, new: TRTEDTC, sources: [LEXENDTC, RFENDTC]}
  - {derive: date, new: TRTEDT, dtc: TRTEDTC, flag: false}
variables:
  USUBJID:
  TRTEDT:
"""

ADLB = """\
dataset: ADLB
label: Laboratory Analysis Dataset
class: BDS
keys: [USUBJID, PARAMCD, AVISITN, LBSEQ]
steps:
  - {derive: parameter, paramcd: ALT, param: ALT (U/L), dataset: LB, where: {LBTESTCD: ALT}, aval: LBSTRESN,
     keep: {LBSEQ: LBSEQ, AVISITN: VISITNUM, A1HI: LBSTNRHI}}
  - {derive: analysis_ratio, new: R2A1HI, reference: A1HI}
  - {derive: flag, new: ANRIND, where: {R2A1HI: {gt: 1.5}}, then: H, else: N}
  - {derive: extreme_records, by: [USUBJID, PARAMCD], order: [AVISITN], where: {AVISITN: {ge: 2, le: 3}},
     set: {AVISITN: 99, DTYPE: LOV}}
variables:
  USUBJID:
  PARAMCD:
  AVISITN:
  LBSEQ: {label: Sequence Number}
  AVAL:
  R2A1HI: {label: Ratio to Analysis Range 1 Upper Limit}
  ANRIND:
  DTYPE:
"""


def _derive(tmp_path: Path, adsl: str = ADSL, adlb: str = ADLB):
    folder = tmp_path / "spec"
    folder.mkdir(exist_ok=True)
    (folder / "adsl.yaml").write_text(textwrap.dedent(adsl), encoding="utf-8")
    (folder / "adlb.yaml").write_text(textwrap.dedent(adlb), encoding="utf-8")
    return derive_datasets({"DM": DM, "EX": EX, "LB": LB}, load_spec_folder(folder))


def test_the_new_steps_in_a_spec(tmp_path):
    res = _derive(tmp_path)
    adsl = res.datasets["ADSL"]
    # S-1: its last EX record has an end; S-2: the last one has none -> RFENDTC
    assert adsl.TRTEDT.tolist() == [pd.Timestamp("2021-01-31"), pd.Timestamp("2021-04-01")]
    adlb = res.datasets["ADLB"]
    assert adlb.AVISITN.tolist() == [1.0, 2.0, 3.0, 4.0, 99.0]
    assert adlb.R2A1HI.tolist() == [1.0, 1.25, 1.75, 2.25, 1.75]
    assert adlb.ANRIND.tolist() == ["N", "N", "H", "H", "H"]
    assert adlb.LBSEQ.tolist() == [1.0, 2.0, 3.0, 4.0, 3.0]
    assert adlb.DTYPE.tolist() == ["", "", "", "", "LOV"]


def test_the_new_steps_are_checked_before_running(tmp_path):
    bad_adsl = ADSL.replace("sources: [LEXENDTC, RFENDTC]", "sources: [LEXENDTC, RFENDDTC]")
    bad_adlb = (ADLB.replace("reference: A1HI}", "reference: A1HIGH}")
                .replace("order: [AVISITN]", "order: [AVISIT]"))
    with pytest.raises(ConversionError) as exc:
        _derive(tmp_path, bad_adsl, bad_adlb)
    text = "\n".join(str(i) for i in exc.value.issues)
    assert "sources: RFENDDTC is not a variable of ADSL" in text and "RFENDTC" in text
    assert "reference: A1HIGH is not a variable of ADLB" in text
    assert "order: AVISIT is not a variable of ADLB" in text
