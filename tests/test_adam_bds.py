"""BDS derivations (sdtm_rA.adam.bds) against hand-computed expectations.

Semantics follow admiral's reference pages (derive_var_extreme_flag, derive_var_base,
derive_var_chg, derive_var_pchg, derive_var_analysis_ratio, derive_var_anrind,
derive_var_shift, derive_param_computed); every expected value below is worked
out by hand in the comments.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.bds import (
    derive_ablfl,
    derive_analysis_ratio,
    derive_analysis_window,
    derive_anrind,
    derive_base,
    derive_basec,
    derive_bnrind,
    derive_chg,
    derive_param_computed,
    derive_pchg,
    derive_shift,
    signif,
)

NaN = np.nan


def dt(*v):
    return pd.to_datetime(pd.Series(list(v)), format="ISO8601")


# ------------------------------------------------------------------------ ABLFL

def _vs():
    # S1: TRTSDT 2024-01-10; two records ON the reference date (tie), SEQ 1 and 2,
    #     plus a third on that date without a value, and a post-dose record.
    # S2: every record after TRTSDT -> no baseline.
    return pd.DataFrame({
        "USUBJID": ["S1", "S1", "S1", "S1", "S1", "S2", "S2"],
        "PARAMCD": ["SYSBP"] * 7,
        "SEQ":     [1, 3, 2, 4, 5, 1, 2],
        "ADT": dt("2024-01-05", "2024-01-10", "2024-01-10", "2024-01-10", "2024-01-24",
                  "2024-02-01", "2024-02-15"),
        "TRTSDT": dt(*["2024-01-10"] * 5, *["2024-01-20"] * 2),
        "AVAL": [120.0, 130.0, 128.0, NaN, 140.0, 110.0, 115.0],
    })


def test_ablfl_tie_broken_by_order():
    out = derive_ablfl(_vs(), order=("SEQ",))
    # qualifying S1 rows (ADT <= 2024-01-10 and AVAL present): rows 0,1,2 (row 3 has no AVAL,
    # row 4 is after TRTSDT). Last by (ADT, SEQ): rows 1 (SEQ 3) and 2 (SEQ 2) tie on ADT;
    # SEQ 3 > SEQ 2 -> row 1 is baseline.
    assert out["ABLFL"].tolist() == ["", "Y", "", "", "", "", ""]


def test_ablfl_tie_broken_by_input_order_and_avalc():
    out = derive_ablfl(_vs())
    # no order: rows 1 and 2 tie on ADT -> the later one in input order (row 2) is flagged
    assert out["ABLFL"].tolist() == ["", "", "Y", "", "", "", ""]
    df = _vs().assign(AVALC=["", "", "", "TRACE", "", "", ""])
    out = derive_ablfl(df)
    # row 3 now has a value via AVALC and is the last of the tie -> it is baseline
    assert out["ABLFL"].tolist() == ["", "", "", "Y", "", "", ""]


def test_ablfl_no_pretreatment_value_and_text_dates():
    df = _vs()
    df["ADT"] = df["ADT"].dt.strftime("%Y-%m-%d")  # ISO text works too
    out = derive_ablfl(df, order=("SEQ",))
    assert (out.loc[out.USUBJID == "S2", "ABLFL"] == "").all()  # nothing on/before 2024-01-20
    assert "ABLFL" not in df.columns  # input untouched


# ----------------------------------------------------------- BASE / CHG / PCHG

def _bds():
    return pd.DataFrame({
        "USUBJID": ["S1", "S1", "S1", "S3", "S3", "S4", "S5", "S5", "S6"],
        "PARAMCD": ["X"] * 9,
        "ABLFL":   ["Y", "", "", "Y", "", "Y", "Y", "", ""],
        "AVAL":    [128.0, 140.0, 120.0, 0.0, 5.0, 7.0, -4.0, -2.0, 3.0],
        "AVALC":   ["128", "140", "120", "0", "5", "7", "-4", "-2", "3"],
    })


def test_base_chg_pchg():
    out = derive_pchg(derive_chg(derive_basec(derive_base(_bds()))))
    # BASE carried to the whole group; S6 has no baseline record -> NaN / ""
    assert out["BASE"].tolist()[:8] == [128, 128, 128, 0, 0, 7, -4, -4]
    assert np.isnan(out["BASE"].iloc[8])
    assert out["BASEC"].tolist() == ["128"] * 3 + ["0"] * 2 + ["7", "-4", "-4", ""]
    # CHG = AVAL - BASE on every record, baseline included (0), as admiral:
    # S1: 0, 140-128=12, 120-128=-8; S3: 0, 5-0=5; S4 (no post-baseline visit): 0;
    # S5: 0, -2-(-4)=2; S6: NaN
    np.testing.assert_allclose(out["CHG"], [0, 12, -8, 0, 5, 0, 0, 2, NaN])
    # PCHG = CHG/|BASE|*100: S1 0, 12/128*100=9.375, -8/128*100=-6.25;
    # S3 BASE=0 -> NaN on both records; S4 0; S5 0, 2/4*100=50; S6 NaN
    np.testing.assert_allclose(out["PCHG"], [0, 9.375, -6.25, NaN, NaN, 0, 0, 50, NaN])
    # R2BASE = AVAL/BASE: 140/128 = 1.09375; BASE 0 -> NaN
    r = derive_analysis_ratio(out)["R2BASE"]
    assert r.iloc[1] == pytest.approx(1.09375) and np.isnan(r.iloc[3])


def test_base_duplicate_baseline_raises():
    df = _bds()
    df.loc[1, "ABLFL"] = "Y"
    with pytest.raises(ValueError, match="more than one baseline"):
        derive_base(df)


# ----------------------------------------------------------------- windows

WINDOWS = [
    {"avisit": "BASELINE", "avisitn": 0, "target": 1, "lo": -7, "hi": 1},
    {"avisit": "WEEK 2", "avisitn": 2, "target": 15, "lo": 8, "hi": 21},
    {"avisit": "WEEK 4", "avisitn": 4, "target": 29, "lo": 22, "hi": 35},
]


def test_analysis_window():
    df = pd.DataFrame({
        "USUBJID": ["S1"] * 8 + ["S4"],
        "PARAMCD": ["X"] * 9,
        "ADY":  [1, 13, 17, 15, 29, 29, 40, -3, 1],
        "AVAL": [1.0, 2.0, 3.0, NaN, 4.0, 5.0, 6.0, 7.0, 8.0],
    })
    out = derive_analysis_window(df, WINDOWS)
    assert out["AVISIT"].tolist() == ["BASELINE", "WEEK 2", "WEEK 2", "WEEK 2", "WEEK 4",
                                      "WEEK 4", "", "BASELINE", "BASELINE"]
    np.testing.assert_allclose(out["AVISITN"], [0, 2, 2, 2, 4, 4, NaN, 0, 0])
    # BASELINE S1: day 1 |1-1|=0 beats day -3 |-3-1|=4 -> row 0
    # WEEK 2: day 15 (dist 0) has no AVAL -> not eligible; day 13 |13-15|=2 and
    #         day 17 |17-15|=2 tie -> later day 17 (row 2)
    # WEEK 4: two records on day 29 (dist 0) -> first in input order (row 4)
    # day 40 outside all windows; S4 has only a baseline record -> only BASELINE flagged
    assert out["ANL01FL"].tolist() == ["Y", "", "Y", "", "Y", "", "", "", "Y"]
    # without the value requirement the day-15 record (dist 0) wins WEEK 2
    out2 = derive_analysis_window(df, WINDOWS, value=None)
    assert out2["ANL01FL"].tolist() == ["Y", "", "", "Y", "Y", "", "", "", "Y"]


# ---------------------------------------------------------- ANRIND / BNRIND / SHIFT

def test_signif():
    assert 0.1 + 0.2 != 0.3
    assert signif([0.1 + 0.2], 15)[0] == 0.3
    np.testing.assert_array_equal(signif([0.0, NaN, 123456.0, 1e-300], 2),
                                  [0.0, NaN, 120000.0, 1e-300])


def test_anrind_limits_and_float_tolerance():
    df = pd.DataFrame({
        "AVAL":  [0.1 + 0.2, 0.3, 3.0, 5.0, 2.9, 5.1, NaN, 6.0, 1.0, 2.0, 1.0],
        "ANRLO": [0.1, 0.1 + 0.2, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, NaN, 3.0, NaN],
        "ANRHI": [0.3, 0.5, 5.0, 5.0, 5.0, 5.0, 5.0, NaN, 5.0, NaN, NaN],
    })
    out = derive_anrind(df)
    # 0.30000000000000004 vs ANRHI 0.3: raw '>' would say HIGH; at 15 signif digits both
    # are 0.3 -> NORMAL. Likewise 0.3 vs ANRLO 0.1+0.2 -> NORMAL (raw: LOW).
    # 3 == ANRLO and 5 == ANRHI -> NORMAL; 2.9 < 3 LOW; 5.1 > 5 HIGH; missing AVAL -> "";
    # 6 >= 3 with ANRHI missing NORMAL; 1 <= 5 with ANRLO missing NORMAL;
    # 2 < 3 with ANRHI missing LOW; both limits missing -> ""
    assert out["ANRIND"].tolist() == ["NORMAL", "NORMAL", "NORMAL", "NORMAL", "LOW", "HIGH",
                                      "", "NORMAL", "NORMAL", "LOW", ""]


def test_bnrind_and_shift():
    df = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S2", "S2"],
        "PARAMCD": ["X"] * 4,
        "ABLFL":   ["Y", "", "", ""],
        "ANRIND":  ["NORMAL", "HIGH", "HIGH", ""],
    })
    out = derive_shift(derive_bnrind(df), "BNRIND", "ANRIND", new="SHIFT1")
    assert out["BNRIND"].tolist() == ["NORMAL", "NORMAL", "", ""]
    # admiral: missing side -> "NULL"; both missing -> "NULL to NULL"
    assert out["SHIFT1"].tolist() == ["NORMAL to NORMAL", "NORMAL to HIGH",
                                      "NULL to HIGH", "NULL to NULL"]


# ------------------------------------------------------------ computed parameter

def test_param_computed_map():
    df = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S1", "S2", "S2", "S2", "S2"],
        "AVISIT": ["BASELINE", "BASELINE", "WEEK 2", "BASELINE", "BASELINE", "WEEK 2", "WEEK 2"],
        "PARAMCD": ["SYSBP", "DIABP", "SYSBP", "SYSBP", "DIABP", "SYSBP", "DIABP"],
        "AVAL": [120.0, 80.0, 130.0, 110.0, NaN, 150.0, 75.0],
    })
    out = derive_param_computed(
        df, by=("USUBJID", "AVISIT"), parameters=["SYSBP", "DIABP"], new_paramcd="MAP",
        func=lambda v: (v["SYSBP"] + 2 * v["DIABP"]) / 3,
        set_values={"PARAM": "Mean Arterial Pressure (mmHg)"})
    new = out[out.PARAMCD == "MAP"].reset_index(drop=True)
    # S1 BASELINE: (120 + 2*80)/3 = 280/3 = 93.333...; S2 WEEK 2: (150 + 2*75)/3 = 100
    # S1 WEEK 2 lacks DIABP and S2 BASELINE has DIABP missing -> no record
    assert len(out) == len(df) + 2
    assert new[["USUBJID", "AVISIT"]].values.tolist() == [["S1", "BASELINE"], ["S2", "WEEK 2"]]
    np.testing.assert_allclose(new["AVAL"], [280 / 3, 100.0])
    assert new["PARAMTYP"].tolist() == ["DERIVED", "DERIVED"]
    assert new["PARAM"].tolist() == ["Mean Arterial Pressure (mmHg)"] * 2


def test_param_computed_missing_input_adds_nothing():
    df = pd.DataFrame({"USUBJID": ["S1"], "AVISIT": ["BASELINE"], "PARAMCD": ["SYSBP"],
                       "AVAL": [120.0]})
    out = derive_param_computed(df, parameters=["SYSBP", "DIABP"], new_paramcd="MAP",
                                func=lambda v: v["SYSBP"] + v["DIABP"])
    assert len(out) == 1 and "MAP" not in out["PARAMCD"].tolist()
    with pytest.raises(ValueError):
        derive_param_computed(pd.concat([df, df]), parameters=["SYSBP"], new_paramcd="M",
                              func=lambda v: v["SYSBP"])
