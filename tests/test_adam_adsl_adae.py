"""ADSL / ADAE derivations (sdtm_rA.adam.subject, sdtm_rA.adam.occurrence).

Expectations are computed by hand (arithmetic in comments) from admiral's
documented rules for derive_vars_merged, derive_var_trtdurd, derive_var_trtemfl,
derive_var_extreme_flag and derive_vars_duration.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.dates import derive_vars_dt
from sdtm_rA.adam.occurrence import (
    derive_aoccfl,
    derive_aoccpfl,
    derive_aoccsfl,
    derive_duration,
    derive_trtemfl,
)
from sdtm_rA.adam.subject import (
    derive_age_groups,
    derive_flag_by_rule,
    derive_trt_dates,
    derive_trtdurd,
    merge_first_last,
)

T = pd.Timestamp


def d(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def flags(series):
    return [None if pd.isna(v) else v for v in series.tolist()]


# ------------------------------------------------------------- merge_first_last

ADD = pd.DataFrame({
    "USUBJID": ["01", "01", "01", "02"],
    "SEQ": [2, 1, 3, 1],
    "VAL": ["b", "a", "c", "z"],
    "OK": [True, True, False, True],
})
SUBJ = pd.DataFrame({"USUBJID": ["02", "01", "03"]}, index=[10, 11, 12])


def test_merge_first_last_modes_and_filter():
    first = merge_first_last(SUBJ, ADD, order=["SEQ"], mode="first", new_vars={"FIRST": "VAL"})
    # 01: SEQ 1 < 2 < 3 -> "a"; 02: only record "z"; 03: no record -> missing
    assert flags(first["FIRST"]) == ["z", "a", None]
    assert first.index.tolist() == [10, 11, 12]
    last = merge_first_last(SUBJ, ADD, order=["SEQ"], mode="last", new_vars={"LAST": "VAL"})
    assert flags(last["LAST"]) == ["z", "c", None]
    # filter (column name): SEQ 3 dropped -> last of 01 is SEQ 2 "b"
    filt = merge_first_last(SUBJ, ADD, order=["SEQ"], mode="last", filter="OK", new_vars={"LAST": "VAL"})
    assert flags(filt["LAST"]) == ["z", "b", None]
    # filter (boolean Series aligned with ADD): only SEQ 2 of 01 kept, 02 dropped
    filt2 = merge_first_last(SUBJ, ADD, order=["SEQ"], filter=ADD["SEQ"] == 2, new_vars={"X": "VAL"})
    assert flags(filt2["X"]) == [None, "b", None]


def test_merge_duplicates_without_order_raise_with_key_values():
    with pytest.raises(ValueError, match="01"):
        merge_first_last(SUBJ, ADD, new_vars={"X": "VAL"})
    # after filtering to one record per subject it is fine
    ok = merge_first_last(SUBJ, ADD, filter=ADD["SEQ"] == 1, new_vars={"X": "VAL"})
    assert flags(ok["X"]) == ["z", "a", None]


def test_merge_ties_warn_and_existing_var_errors():
    tied = ADD.assign(SEQ=[1, 1, 3, 1])
    with pytest.warns(UserWarning, match="not unique"):
        merge_first_last(SUBJ, tied, order=["SEQ"], new_vars={"X": "VAL"})
    with pytest.raises(ValueError, match="already"):
        merge_first_last(SUBJ.assign(X=1), ADD, order=["SEQ"], new_vars={"X": "VAL"})
    with pytest.raises(TypeError):
        merge_first_last(SUBJ, ADD, order=["SEQ"], filter=ADD["VAL"], new_vars={"X": "VAL"})


# ------------------------------------------------------------- treatment dates

EX = pd.DataFrame({
    "USUBJID": ["01", "01", "01", "02", "04"],
    "EXSEQ": [1, 2, 3, 1, 1],
    "EXTRT": ["DRUG A", "DRUG A", "DRUG A", "PLACEBO", "DRUG A"],
    "EXDOSE": [0, 50, 50, 0, 0],
    "EXSTDTC": ["2021-10-10", "2021-10-13T08:30", "2021-10-21", "2021-11-01", "2021-12-01"],
    "EXENDTC": ["2021-10-10", "2021-10-20", "", "2021-11-05", "2021-12-02"],
})
ADSL = pd.DataFrame({"USUBJID": ["01", "02", "03", "04"], "AGE": [64, 65, np.nan, 80]})


def test_trt_dates_ignore_zero_dose_and_impute_time():
    out = derive_trt_dates(ADSL, EX)
    # 01: the 2021-10-10 record has dose 0 of active drug -> ignored;
    #     first valid start 2021-10-13T08:30 (seconds imputed 00, "S" flag not reported)
    #     last end: EXSEQ 3 has no EXENDTC -> not a candidate (admiral's template keeps doses with
    #     an EXENDTM only), so EXSEQ 2's 2021-10-20 + time "last" 23:59:59
    # 02: placebo with dose 0 counts (admiral template filter); time imputed first/last
    # 03: no EX; 04: only a zero dose of active drug -> no treatment dates
    assert out["TRTSDTM"].tolist()[:2] == [T("2021-10-13 08:30:00"), T("2021-11-01 00:00:00")]
    assert out["TRTSDTM"].isna().tolist() == [False, False, True, True]
    assert out["TRTSTMF"].tolist()[:2] == ["", "H"]
    assert out["TRTEDTM"].tolist()[:2] == [T("2021-10-20 23:59:59"), T("2021-11-05 23:59:59")]
    assert out["TRTETMF"].tolist()[:2] == ["H", "H"]
    assert out["TRTSDT"].tolist()[:2] == [T("2021-10-13"), T("2021-11-01")]
    assert out["TRTEDT"].tolist()[:2] == [T("2021-10-20"), T("2021-11-05")]
    assert out["TRTEDT"].isna().tolist() == [False, False, True, True]
    # a study that reads the start of a dose without an end says so: EXSEQ 3's 2021-10-21 23:59:59
    fallback = derive_trt_dates(ADSL, EX, end_fallback_to_start=True)
    assert fallback["TRTEDTM"].tolist()[:2] == [T("2021-10-21 23:59:59"), T("2021-11-05 23:59:59")]

    no_pbo = derive_trt_dates(ADSL, EX, include_placebo=False)
    assert no_pbo["TRTSDT"].isna().tolist() == [False, True, True, True]


def test_trtdurd():
    out = derive_trtdurd(derive_trt_dates(ADSL, EX))
    # 01: 2021-10-20 - 2021-10-13 = 7 days, + 1 = 8;  02: 11-05 - 11-01 = 4, + 1 = 5
    assert out["TRTDURD"].tolist()[:2] == [8, 5]
    assert out["TRTDURD"].isna().tolist() == [False, False, True, True]
    x = pd.DataFrame({"TRTSDT": d("2021-01-01", "2021-01-05"), "TRTEDT": d("2021-01-01", "2021-01-04")})
    # same day: 0 + 1 = 1; end before start: -1 (admiral adds one only to durations >= 0)
    assert derive_trtdurd(x)["TRTDURD"].tolist() == [1, -1]


def test_age_groups_boundary_and_missing():
    out = derive_age_groups(ADSL)
    # 64 < 65 -> "<65"; 65 is in [65, inf) -> ">=65"; NaN -> missing; 80 -> ">=65"
    assert flags(out["AGEGR1"]) == ["<65", ">=65", None, ">=65"]
    three = derive_age_groups(ADSL, cuts=[(None, 18, "<18"), (18, 65, "18-64"), (65, 80, "65-79")],
                              new="AGEGR2")
    # 80 is outside [65, 80) -> missing
    assert flags(three["AGEGR2"]) == ["18-64", "65-79", None, None]


def test_flag_by_rule():
    out = derive_trt_dates(ADSL, EX)
    saf = derive_flag_by_rule(out, "SAFFL", out["TRTSDT"].notna())
    assert saf["SAFFL"].tolist() == ["Y", "Y", "N", "N"]
    # missing in the condition -> "N"
    cond = pd.Series([True, pd.NA, False, True], dtype="boolean")
    assert derive_flag_by_rule(ADSL, "ITTFL", cond)["ITTFL"].tolist() == ["Y", "N", "N", "Y"]


# ------------------------------------------------------------------- TRTEMFL

def _adae_dates():
    ae = pd.DataFrame({
        "USUBJID": ["01"] * 3,
        "AESTDTC": ["2021-10", "2021-09", "2021-10-12"],
        "TRTSDT": d("2021-10-13", "2021-10-13", "2021-10-13"),
        "TRTEDT": d("2021-12-31", "2021-12-31", "2021-12-31"),
    })
    return derive_vars_dt(ae, "AST", "AESTDTC", highest_imputation="M", min_dates=["TRTSDT"])


def test_partial_start_at_treatment_start_is_emergent():
    ae = _adae_dates()
    # "2021-10" could be any day of 2021-10-01..31; TRTSDT 2021-10-13 is inside -> min date
    # wins: 2021-10-13.  "2021-09" range 09-01..09-30 excludes TRTSDT -> first: 2021-09-01.
    assert ae["ASTDT"].tolist() == [T("2021-10-13"), T("2021-09-01"), T("2021-10-12")]
    ae["AENDT"] = pd.Series(pd.NaT, index=ae.index, dtype="datetime64[ns]")
    out = derive_trtemfl(ae)
    # 10-13 >= 10-13 and <= 12-31 -> Y;  09-01 < 10-13 -> no;  10-12 < 10-13 -> no
    assert flags(out["TRTEMFL"]) == ["Y", None, None]


def test_missing_start_end_window_and_missing_trt():
    ae = pd.DataFrame({
        "ASTDT": d(None, None, None, "2021-12-31", "2022-01-01", "2022-01-02", "2021-11-01", "2021-11-01"),
        "AENDT": d(None, "2021-10-01", "2021-11-01", None, None, None, None, "2021-11-02"),
        "TRTSDT": d(*(["2021-10-13"] * 7 + [None])),
        "TRTEDT": d(*(["2021-12-31"] * 7 + [None])),
    })
    out = derive_trtemfl(ae)
    # row0: start & end missing -> Y (admiral);  row1: end 10-01 < TRTSDT 10-13 -> not emergent
    # row2: start missing, end 11-01 >= 10-13 -> Y
    # row3: 12-31 <= 12-31 + 0 -> Y;  row4: 2022-01-01 > 12-31 + 0 -> no;  row5: no
    # row6: inside treatment -> Y;  row7: TRTSDT missing -> not emergent
    assert flags(out["TRTEMFL"]) == ["Y", None, "Y", "Y", None, None, "Y", None]
    # window of 1 day: 12-31 + 1 = 2022-01-01 -> row4 Y, 2022-01-02 still out
    w1 = derive_trtemfl(ae, end_window=1)
    assert flags(w1["TRTEMFL"]) == ["Y", None, "Y", "Y", "Y", None, "Y", None]
    # no end window (admiral's default NULL): everything starting on/after TRTSDT
    assert flags(derive_trtemfl(ae, end_window=None)["TRTEMFL"])[3:6] == ["Y", "Y", "Y"]
    ign = derive_trtemfl(ae, ignore_missing_start=True)
    assert flags(ign["TRTEMFL"]) == [None, None, None, "Y", None, None, "Y", None]
    with pytest.raises(ValueError):
        derive_trtemfl(ae, end_window=-1)


# ------------------------------------------------------------ occurrence flags

def _ae_occ():
    # rows deliberately not sorted: AESEQ 3 comes before AESEQ 2 (same start date)
    return pd.DataFrame({
        "USUBJID": ["01", "01", "01", "01", "01", "02"],
        "AESEQ": [1, 3, 2, 4, 5, 1],
        "AEBODSYS": ["NERV", "NERV", "GAST", "NERV", "GAST", "NERV"],
        "AEDECOD": ["HEADACHE", "HEADACHE", "NAUSEA", "HEADACHE", "NAUSEA", "HEADACHE"],
        "ASTDT": d("2021-10-20", "2021-10-15", "2021-10-15", "2021-10-01", None, "2021-11-01"),
        "TRTEMFL": ["Y", "Y", "Y", None, "Y", "Y"],
    })


def test_aoccfl_ties_broken_by_aeseq_and_only_teae():
    out = derive_aoccfl(_ae_occ())
    # subject 01 TEAEs: seq1 10-20, seq3 10-15, seq2 10-15, seq5 missing (sorted last);
    # seq4 (10-01) is not TEAE.  Earliest date 10-15 tie -> AESEQ 2 < 3 -> seq2 (row 2).
    # subject 02: its only record.
    assert flags(out["AOCCFL"]) == [None, None, "Y", None, None, "Y"]


def test_aoccpfl_aoccsfl():
    ae = _ae_occ()
    pt = derive_aoccpfl(ae)
    # 01/NERV/HEADACHE TEAEs: seq1 10-20, seq3 10-15 -> seq3 (row 1)
    # 01/GAST/NAUSEA TEAEs: seq2 10-15, seq5 missing -> seq2 (row 2); 02 -> row 5
    assert flags(pt["AOCCPFL"]) == [None, "Y", "Y", None, None, "Y"]
    soc = derive_aoccsfl(ae)
    assert flags(soc["AOCCSFL"]) == [None, "Y", "Y", None, None, "Y"]
    # all records (no filter): seq4 10-01 is first for 01
    allrec = derive_aoccfl(ae, filter=None)
    assert flags(allrec["AOCCFL"]) == [None, None, None, "Y", None, "Y"]


def test_aoccfl_warns_on_full_ties():
    ae = _ae_occ().assign(AESEQ=[1, 2, 2, 4, 5, 1])
    with pytest.warns(UserWarning, match="not unique"):
        derive_aoccfl(ae)


# ------------------------------------------------------------------- duration

def test_duration_days_add_one():
    ae = pd.DataFrame({
        "ASTDT": d("2021-10-15", "2021-10-15", "2021-10-15", "2021-10-15"),
        "AENDT": d("2021-10-15", "2021-10-20", None, "2021-10-14"),
    })
    out = derive_duration(ae)
    # same day: 0 + 1 = 1;  10-20 - 10-15 = 5, + 1 = 6;  missing end -> NA;
    # end before start: -1 (one is added only to durations >= 0)
    assert out["ADURN"].tolist()[:2] == [1, 6]
    assert pd.isna(out["ADURN"].iloc[2]) and out["ADURN"].iloc[3] == -1
    assert flags(out["ADURU"]) == ["DAYS", "DAYS", None, "DAYS"]
    wk = derive_duration(ae, unit="weeks")
    # 6 days / 7 = 0.857...
    assert wk["ADURN"].iloc[1] == pytest.approx(6 / 7)
    assert wk["ADURU"].iloc[1] == "WEEKS"
