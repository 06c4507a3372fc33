"""Tests for sdtm_rA.adam.ra_scores.  Expected values are computed by hand from the formulas of
ra-reference.md §1 (arithmetic in the comments); the bundled-study test recomputes the README's
per-subject SDAI/CDAI from the raw EDC files."""
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.ra_scores import (
    acr_response, activity_category, cdai, das28_crp, das28_esr, eular_response, haq_di, sdai,
)

RAW = Path(__file__).resolve().parents[1] / "sdtm_rA" / "bundled" / "ramsc01" / "raw"


# ------------------------------------------------------------------------------------ SDAI / CDAI
def test_sdai_converts_units():
    # 5 + 3 + 40/10 + 35/10 + 12/10 = 5 + 3 + 4.0 + 3.5 + 1.2 = 16.7
    assert sdai(5, 3, 40, 35, 12).iloc[0] == pytest.approx(16.7)


def test_cdai_hand_value_and_missing():
    # 5 + 3 + 4.0 + 3.5 = 15.5 ; second row has a missing TJC → NaN
    out = cdai(pd.Series([5, None]), pd.Series([3, 3]), pd.Series([40, 40]), pd.Series([35, 35]))
    assert out.iloc[0] == pytest.approx(15.5)
    assert math.isnan(out.iloc[1])


def test_sdai_missing_and_out_of_range_give_nan():
    out = sdai(pd.Series([5, 5, 29]), pd.Series([3, 3, 3]), pd.Series([40, 40, 40]),
               pd.Series([35, 35, 35]), pd.Series([12, np.nan, 12]))
    assert out.iloc[0] == pytest.approx(16.7)
    assert out.iloc[1:].isna().all()  # missing CRP; TJC 29 > 28


def test_series_index_is_kept():
    idx = pd.Index(["a", "b"])
    out = cdai(pd.Series([1, 2], index=idx), pd.Series([0, 0], index=idx), 0, 0)
    assert list(out.index) == ["a", "b"] and out.tolist() == [1.0, 2.0]


# ------------------------------------------------------------------------------------------ DAS28
def test_das28_esr_4_and_3_variables():
    # TJC 4, SJC 9, ESR 20, GH 50: 0.56·2 + 0.28·3 + 0.70·ln 20 + 0.014·50
    #   = 1.12 + 0.84 + 0.70·2.995732 (= 2.097013) + 0.70 = 4.757013
    assert das28_esr(4, 9, 20, 50).iloc[0] == pytest.approx(4.757013, abs=1e-6)
    # 3 variables: (1.12 + 0.84 + 2.097013) × 1.08 + 0.16 = 4.057013 × 1.08 + 0.16 = 4.541574
    assert das28_esr(4, 9, 20).iloc[0] == pytest.approx(4.541574, abs=1e-6)


def test_das28_crp_4_and_3_variables():
    # TJC 4, SJC 9, CRP 10 mg/L, GH 50: 1.12 + 0.84 + 0.36·ln 11 (= 0.36·2.397895 = 0.863242)
    #   + 0.70 + 0.96 = 4.483242
    assert das28_crp(4, 9, 10, 50).iloc[0] == pytest.approx(4.483242, abs=1e-6)
    # 3 variables: (1.12 + 0.84 + 0.863242) × 1.10 + 1.15 = 3.105566 + 1.15 = 4.255566
    assert das28_crp(4, 9, 10).iloc[0] == pytest.approx(4.255566, abs=1e-6)


def test_das28_zero_tjc_sjc_and_esr_one():
    # 0 + 0 + 0.70·ln 1 (= 0) + 0.014·0 = 0
    assert das28_esr(0, 0, 1, 0).iloc[0] == pytest.approx(0.0)


def test_das28_esr_not_positive_is_nan():
    out = das28_esr(pd.Series([4, 4, 4]), pd.Series([9, 9, 9]), pd.Series([0, -3, np.nan]), pd.Series([50, 50, 50]))
    assert out.isna().all()
    # 4-variable form with GH missing is NaN (no silent fall-back to 3 variables)
    assert das28_esr(pd.Series([4]), pd.Series([9]), pd.Series([20]), pd.Series([np.nan])).isna().all()


# ----------------------------------------------------------------------------- activity categories
def test_sdai_cutoffs_on_the_boundary():
    got = activity_category(pd.Series([0, 3.3, 3.31, 11, 11.01, 26, 26.01, np.nan]), "SDAI").tolist()
    assert got == ["REMISSION", "REMISSION", "LOW", "LOW", "MODERATE", "MODERATE", "HIGH", None]


def test_cdai_cutoffs_on_the_boundary():
    got = activity_category(pd.Series([2.8, 2.81, 10, 10.01, 22, 22.01]), "CDAI").tolist()
    assert got == ["REMISSION", "LOW", "LOW", "MODERATE", "MODERATE", "HIGH"]


def test_das28_cutoffs_on_the_boundary():
    # remission is strict (< 2.6): 2.6 is LOW; 3.2 LOW; 5.1 MODERATE; > 5.1 HIGH
    got = activity_category(pd.Series([2.59, 2.6, 3.2, 3.21, 5.1, 5.11]), "DAS28").tolist()
    assert got == ["REMISSION", "LOW", "LOW", "MODERATE", "MODERATE", "HIGH"]


def test_das28_cutoffs_are_a_parameter():
    # alternative DAS28-CRP set (remission < 2.4, LDA <= 2.9, HDA > 4.6)
    got = activity_category(pd.Series([2.39, 2.4, 2.9, 4.6, 4.61]), "DAS28-CRP", cutoffs=(2.4, 2.9, 4.6)).tolist()
    assert got == ["REMISSION", "LOW", "LOW", "MODERATE", "HIGH"]


def test_computed_sum_exactly_on_cutoff_is_not_pushed_over_by_float_noise():
    # 0 + 0 + 0/10 + 1/10 + 32/10 = 0.1 + 3.2 = 3.3 (floating point gives 3.3000000000000003) → REMISSION
    score = sdai(0, 0, 0, 1, 32)
    assert score.iloc[0] > 3.3 and score.iloc[0] == pytest.approx(3.3)
    assert activity_category(score, "SDAI").iloc[0] == "REMISSION"


def test_unknown_index_raises():
    with pytest.raises(ValueError):
        activity_category(pd.Series([1.0]), "RAPID3")


# ------------------------------------------------------------------------------------------ HAQ-DI
CATS = {  # first item of each category (HAQ01 codes)
    "DRESSING": "HAQ0101", "ARISING": "HAQ0103", "EATING": "HAQ0105", "WALKING": "HAQ0108",
    "HYGIENE": "HAQ0123", "REACH": "HAQ0126", "GRIP": "HAQ0128", "ACTIVITIES": "HAQ0131",
}


def _haq(rows, subject="S1", visit="DAY 1"):
    recs = []
    for code, val in rows:
        if val == "CHECKED":
            recs.append(dict(USUBJID=subject, VISIT=visit, QSTESTCD=code, QSORRES="Checked",
                             QSSTRESC="CHECKED", QSSTRESN=np.nan))
        else:
            recs.append(dict(USUBJID=subject, VISIT=visit, QSTESTCD=code, QSORRES=None,
                             QSSTRESC=None if val is None else str(val), QSSTRESN=val))
    return pd.DataFrame(recs)


EIGHT = [  # category maxima 1, 2, 1, 0, 3, 1, 2, 1
    ("HAQ0101", 1), ("HAQ0102", 0),
    ("HAQ0103", 2), ("HAQ0104", 1),
    ("HAQ0105", 0), ("HAQ0106", 1), ("HAQ0107", 0),
    ("HAQ0108", 0), ("HAQ0109", 0),
    ("HAQ0123", 3), ("HAQ0124", 1), ("HAQ0125", 0),
    ("HAQ0126", 1), ("HAQ0127", 1),
    ("HAQ0128", 2), ("HAQ0129", 0), ("HAQ0130", 1),
    ("HAQ0131", 1), ("HAQ0132", 0), ("HAQ0133", 0),
    ("HAQ0146", 55),  # pain VAS: not part of the index
]


def test_haq_eight_categories():
    # (1 + 2 + 1 + 0 + 3 + 1 + 2 + 1) / 8 = 11 / 8 = 1.375
    out = haq_di(_haq(EIGHT))
    assert out.loc[("S1", "DAY 1")] == pytest.approx(1.375)


def test_haq_seven_categories():
    # hygiene not answered: (1 + 2 + 1 + 0 + 1 + 2 + 1) / 7 = 8 / 7 = 1.142857
    rows = [r for r in EIGHT if r[0] not in ("HAQ0123", "HAQ0124", "HAQ0125")]
    assert haq_di(_haq(rows)).iloc[0] == pytest.approx(8 / 7)


def test_haq_five_categories_is_nan():
    keep = ("HAQ0101", "HAQ0103", "HAQ0105", "HAQ0108", "HAQ0123")
    out = haq_di(_haq([r for r in EIGHT if r[0] in keep]))
    assert len(out) == 1 and math.isnan(out.iloc[0])


def test_haq_six_categories_is_computed():
    # dressing 1, arising 2, eating 0, walking 0, hygiene 3, reach 1 → 7 / 6
    keep = ("HAQ0101", "HAQ0103", "HAQ0105", "HAQ0108", "HAQ0123", "HAQ0126")
    assert haq_di(_haq([r for r in EIGHT if r[0] in keep])).iloc[0] == pytest.approx(7 / 6)


def test_haq_aids_raise_category_to_two():
    # jar opener HAQ0136 → grip stays 2 (already 2); cane HAQ0110 → walking 0 → 2;
    # help for eating HAQ0121 → eating 1 → 2.  Sum 1 + 2 + 2 + 2 + 3 + 1 + 2 + 1 = 14 → 14/8 = 1.75
    rows = EIGHT + [("HAQ0136", "CHECKED"), ("HAQ0110", "CHECKED"), ("HAQ0121", "CHECKED")]
    assert haq_di(_haq(rows)).iloc[0] == pytest.approx(1.75)
    # without aids: 11/8 as before
    assert haq_di(_haq(rows), aids_adjusted=False).iloc[0] == pytest.approx(1.375)


def test_haq_aid_without_checked_result_is_ignored_and_qsorres_fallback():
    rows = _haq(EIGHT + [("HAQ0110", "CHECKED")])
    rows.loc[rows.QSTESTCD == "HAQ0110", ["QSSTRESC", "QSORRES"]] = [None, None]
    assert haq_di(rows).iloc[0] == pytest.approx(1.375)
    # only QSORRES present (raw-like 'Checked'): the cane raises walking 0 → 2 → 13/8
    rows = _haq(EIGHT + [("HAQ0110", "CHECKED")]).drop(columns="QSSTRESC")
    assert haq_di(rows).iloc[0] == pytest.approx(13 / 8)


def test_haq_several_keys_and_not_done_visit():
    a = _haq(EIGHT, "S1", "DAY 1")
    b = _haq([(c, 3) for c, _ in EIGHT if c != "HAQ0146"], "S2", "WEEK 4")  # all 3 → 3.0
    nd = pd.DataFrame([dict(USUBJID="S2", VISIT="WEEK 8", QSTESTCD="QSALL", QSSTRESN=np.nan, QSSTRESC=None)])
    out = haq_di(pd.concat([a, b, nd], ignore_index=True))
    assert out.loc[("S1", "DAY 1")] == pytest.approx(1.375)
    assert out.loc[("S2", "WEEK 4")] == pytest.approx(3.0)
    assert math.isnan(out.loc[("S2", "WEEK 8")])


# --------------------------------------------------------------------------------------------- ACR
def _acr_frames(base, post):
    cols = ["tjc28", "sjc28", "pain", "ptga", "phga", "haqdi", "crp"]
    return (pd.DataFrame([base], columns=cols, index=["S1"]), pd.DataFrame([post], columns=cols, index=["S1"]))


def test_acr20_exactly_twenty_percent_counts():
    # TJC 10 → 8 = 100·2/10 = 20 % ; SJC 8 → 6 = 25 % ; pain 68 → 47 = 30.9 % ;
    # PtGA 65 → 48 = 26.2 % ; PhGA 60 → 45 = 25 % ; HAQ 1.75 → 1.125 = 35.7 % ; CRP 11.2 → 8.1 = 27.7 %
    base, post = _acr_frames([10, 8, 68, 65, 60, 1.75, 11.2], [8, 6, 47, 48, 45, 1.125, 8.1])
    assert acr_response(base, post, 20).tolist() == ["Y"]
    assert acr_response(base, post, 50).tolist() == ["N"]


def test_acr_exact_boundary_with_float_noise():
    # HAQ 1.0 → 0.8 and CRP 4.5 → 3.6 are 20 % (floating point gives 19.999999999999996 %)
    assert 100 * (1.0 - 0.8) / 1.0 < 20 and 100 * (4.5 - 3.6) / 4.5 < 20
    base, post = _acr_frames([10, 10, 50, 50, 100, 1.0, 4.5], [8, 8, 50, 50, 80, 0.8, 3.6])
    # TJC 20 %, SJC 20 %, phga 20 %, haq 20 %, crp 20 % → 3 of 5 → Y (a strict or untolerant test gives N)
    assert acr_response(base, post, 20).tolist() == ["Y"]
    assert acr_response(base, post, 20, rel_tol=0).tolist() == ["N"]


def test_acr_just_below_threshold_is_no():
    # TJC 10 → 9 = 10 % < 20 %
    base, post = _acr_frames([10, 8, 68, 65, 60, 1.75, 11.2], [9, 6, 47, 48, 45, 1.125, 8.1])
    assert acr_response(base, post, 20).tolist() == ["N"]


def test_acr_two_of_five_is_no():
    # TJC/SJC 50 %; only pain and ptga improve (others unchanged) → 2 of 5 → N
    base, post = _acr_frames([10, 10, 50, 50, 50, 1.0, 10], [5, 5, 20, 20, 50, 1.0, 10])
    assert acr_response(base, post, 20).tolist() == ["N"]


def test_acr_baseline_zero_cannot_improve():
    # SJC 0 → 0: available but cannot improve → N
    base, post = _acr_frames([10, 0, 50, 50, 50, 1.0, 10], [2, 0, 10, 10, 10, 0.2, 2])
    assert acr_response(base, post, 20).tolist() == ["N"]
    # CRP baseline 0 (other four improve 80 %) → still 4 of 5 → Y; with haq, pain also at 0 → 2 of 5 → N
    base, post = _acr_frames([10, 10, 50, 50, 50, 1.0, 0], [2, 2, 10, 10, 10, 0.2, 0])
    assert acr_response(base, post, 20).tolist() == ["Y"]
    base, post = _acr_frames([10, 10, 0, 50, 50, 0, 0], [2, 2, 0, 10, 10, 0, 0])
    assert acr_response(base, post, 20).tolist() == ["N"]


def test_acr_missing_rules():
    # TJC missing → ''
    base, post = _acr_frames([10, 10, 50, 50, 50, 1.0, 10], [np.nan, 2, 10, 10, 10, 0.2, 2])
    assert acr_response(base, post, 20).tolist() == [""]
    # only 2 of 5 others available → ''
    base, post = _acr_frames([10, 10, 50, 50, np.nan, np.nan, np.nan], [2, 2, 10, 10, 10, 0.2, 2])
    assert acr_response(base, post, 20).tolist() == [""]
    # exactly 3 available, all improved → Y ; missing value is a parameter
    base, post = _acr_frames([10, 10, 50, 50, 50, np.nan, np.nan], [2, 2, 10, 10, 10, 0.2, 2])
    assert acr_response(base, post, 20).tolist() == ["Y"]
    base, post = _acr_frames([np.nan, 10, 50, 50, 50, 1, 1], [2, 2, 10, 10, 10, 0.2, 2])
    assert acr_response(base, post, 20, missing=None).tolist() == [None]


def test_acr_vectorised_and_level_validated():
    base = pd.DataFrame({"tjc28": [10, 10], "sjc28": [10, 10], "pain": [50, 50], "ptga": [50, 50],
                         "phga": [50, 50], "haqdi": [1.0, 1.0], "crp": [10, 10]}, index=["A", "B"])
    post = base * 0.3  # 70 % improvement everywhere for A ...
    post.loc["B"] = base.loc["B"] * 0.31  # ... and 69 % everywhere for B
    assert acr_response(base, post, 70).tolist() == ["Y", "N"]
    with pytest.raises(ValueError):
        acr_response(base, post, 30)


# ------------------------------------------------------------------------------------------- EULAR
@pytest.mark.parametrize("now, base, expected", [
    (3.0, 4.3, "GOOD"),       # <= 3.2, improvement 1.3 > 1.2
    (3.2, 4.4, "MODERATE"),   # improvement exactly 1.2 (float 1.2000000000000002) is not > 1.2
    (3.2, 4.5, "GOOD"),       # 3.2 is in the <= 3.2 row
    (3.0, 3.6, "NONE"),       # improvement exactly 0.6 (float 0.6000000000000001) → NONE
    (3.0, 3.7, "MODERATE"),   # 0.7
    (4.0, 5.5, "MODERATE"),   # > 3.2, improvement 1.5
    (5.1, 6.0, "MODERATE"),   # 5.1 is in the middle row, improvement 0.9
    (5.2, 6.2, "NONE"),       # > 5.1, improvement 1.0 <= 1.2
    (5.2, 6.5, "MODERATE"),   # > 5.1, improvement 1.3
    (4.0, 3.0, "NONE"),       # worsened
])
def test_eular_table(now, base, expected):
    assert eular_response(pd.Series([now]), pd.Series([base])).iloc[0] == expected


def test_eular_missing():
    assert eular_response(pd.Series([np.nan, 3.0]), pd.Series([5.0, np.nan])).tolist() == [None, None]


# ------------------------------------------------------------------------- bundled study cross-check
def _crp_mg_l() -> pd.DataFrame:
    l1 = pd.read_csv(RAW / "lb_101.csv", dtype=str, encoding="utf-8").drop_duplicates()
    l2 = pd.read_csv(RAW / "lb_102.csv", dtype=str, sep=";", encoding="utf-8").drop_duplicates()
    lb = pd.concat([l1, l2], ignore_index=True)
    lb = lb[lb.LBTEST.str.contains("CRP", na=False)].copy()

    def value(orres: str, unit: str) -> float:
        text = orres.strip().replace(",", ".")
        # "<LLOQ" is taken as LLOQ/2 (README: "<0.5 mg/dL CRP is taken as LLOQ/2 = 0.25 mg/dL")
        num = float(text[1:]) / 2 if text.startswith("<") else float(text)
        return num * 10 if unit.strip().lower() == "mg/dl" else num  # → mg/L

    lb["CRP"] = [value(o, u) for o, u in zip(lb.LBORRES, lb.LBORRESU)]
    return lb[["SITEID", "SUBJID", "VISIT", "CRP"]]


def _joint_counts() -> pd.DataFrame:
    mk = pd.read_csv(RAW / "mk_joints.csv", dtype=str, skiprows=1)  # line 1 = labels, line 2 = names
    joints = {"Shoulder", "Elbow", "Wrist", "Knee"} | {f"{j} {i}" for j in ("MCP", "PIP") for i in range(1, 6)}
    mk = mk[mk.JOINT.isin(joints) & mk.SIDE.isin(["Right", "Left"])]
    assert (mk.groupby(["SUBJID", "VISIT"]).size() == 28).all()
    mk = mk.assign(T=(mk.TENDER.str.strip() == "Y").astype(int), S=(mk.SWOLLEN.str.strip() == "Y").astype(int))
    return mk.groupby(["SITEID", "SUBJID", "VISIT"], as_index=False)[["T", "S"]].sum()


def _readme_sdai_cdai() -> dict:
    """{'101-001': (sdai_d1, sdai_cat_d1, sdai_w24, sdai_cat_w24, cdai_d1, ..., cdai_cat_w24)}."""
    text = (RAW / "README.md").read_text(encoding="utf-8")
    pair = r"([\d.]+) \((\w+)\) → ([\d.]+) \((\w+)\)"
    found = {}
    for line in text.splitlines():
        m = re.match(r"\| (\d{3}-\d{3}) \|", line)
        hits = re.findall(pair, line)
        if m and len(hits) == 2:
            found[m.group(1)] = hits[0] + hits[1]
    return found


def test_bundled_study_sdai_cdai_match_readme():
    expected = _readme_sdai_cdai()
    assert len(expected) == 6
    assert expected["101-001"][0] == "38.84" and expected["101-001"][2] == "14.01"
    assert expected["101-001"][4] == "37.0" and expected["101-001"][6] == "13.5"

    ga = pd.read_csv(RAW / "ga.csv", dtype=str)
    df = (_joint_counts().merge(ga, on=["SITEID", "SUBJID", "VISIT"])
          .merge(_crp_mg_l(), on=["SITEID", "SUBJID", "VISIT"]))
    df = df[df.VISIT.isin(["DAY 1", "WEEK 24"])].set_index(["SITEID", "SUBJID", "VISIT"])
    df["SDAI"] = sdai(df["T"], df["S"], df["PTGA_MM"], df["PHGA_MM"], df["CRP"])
    df["CDAI"] = cdai(df["T"], df["S"], df["PTGA_MM"], df["PHGA_MM"])
    df["SDAICAT"] = activity_category(df["SDAI"], "SDAI")
    df["CDAICAT"] = activity_category(df["CDAI"], "CDAI")
    assert len(df) == 12

    for usubj, (s1, sc1, s24, sc24, c1, cc1, c24, cc24) in expected.items():
        site, subj = usubj.split("-")
        d1, w24 = df.loc[(site, subj, "DAY 1")], df.loc[(site, subj, "WEEK 24")]
        assert round(d1.SDAI, 2) == pytest.approx(float(s1)), usubj
        assert round(w24.SDAI, 2) == pytest.approx(float(s24)), usubj
        assert round(d1.CDAI, 2) == pytest.approx(float(c1)), usubj
        assert round(w24.CDAI, 2) == pytest.approx(float(c24)), usubj
        assert (d1.SDAICAT, w24.SDAICAT, d1.CDAICAT, w24.CDAICAT) == (sc1, sc24, cc1, cc24), usubj


def test_haq_single_key_and_raw_checked_text():
    # A: 7 categories 1,1,1,0,1,1,1; cane ('Checked' in QSORRES) raises walking 0 → 2: 8/7 ; B: 1 category → NaN
    df = pd.DataFrame({
        "USUBJID": ["A"] * 8 + ["B"],
        "QSTESTCD": ["HAQ0101", "HAQ0103", "HAQ0105", "HAQ0108", "HAQ0123", "HAQ0126", "HAQ0128", "HAQ0110", "HAQ0101"],
        "QSSTRESN": [1, 1, 1, 0, 1, 1, 1, None, 2],
        "QSORRES": ["x"] * 7 + ["Checked", "x"],
    })
    out = haq_di(df, by="USUBJID")
    assert out.index.name == "USUBJID"
    assert out["A"] == pytest.approx(8 / 7) and math.isnan(out["B"])
