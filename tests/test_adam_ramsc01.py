"""The bundled RA study end to end: raw files → SDTM → ADaM reproduces the seed paper's summary.

Expected values come from the raw data's README (written by tools/generate_ramsc01.py, which
computes them with its own exact-fraction implementation and asserts them before writing), not from
the code under test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from sdtm_rA.adam.derive import derive
from sdtm_rA.sdtm.convert import convert

REPO = Path(__file__).resolve().parent.parent
ALL = ["101-001", "101-002", "101-005", "102-003", "102-004", "102-006"]


@pytest.fixture(scope="module")
def adam(tmp_path_factory):
    out = tmp_path_factory.mktemp("ramsc01")
    convert(None, out)
    result = derive(out / "sdtm", out, command=["test"])
    return out, result.datasets


def sid(usubjid: pd.Series) -> pd.Series:
    return usubjid.str.replace("RAMSC01-", "", regex=False)


def analysed(adeff: pd.DataFrame, paramcd: str) -> pd.DataFrame:
    d = adeff[(adeff.PARAMCD == paramcd) & (adeff.ANL01FL == "Y")].copy()
    d["SID"] = sid(d.USUBJID)
    return d


def at(adeff, paramcd, avisitn, col="AVAL") -> dict:
    d = analysed(adeff, paramcd)
    return d[d.AVISITN == avisitn].set_index("SID")[col].to_dict()


def test_acr20_in_four_of_six_at_week_16(adam):
    _, ds = adam
    acr = at(ds["ADEFF"], "ACR20", 16, "AVALC")
    assert acr == {"101-001": "Y", "101-002": "Y", "102-003": "Y", "102-004": "Y", "101-005": "N", "102-006": "N"}
    acr50 = at(ds["ADEFF"], "ACR50", 16, "AVALC")
    assert sorted(s for s, v in acr50.items() if v == "Y") == ["101-001"]


def test_sdai_and_cdai_values_and_category_fall_in_three(adam):
    _, ds = adam
    e = ds["ADEFF"]
    base = at(e, "SDAI", 0)
    w24 = at(e, "SDAI", 24)
    expected = {"101-001": (38.84, 14.01), "101-002": (31.62, 18.40), "102-003": (21.90, 14.25),
                "102-004": (35.90, 17.00), "101-005": (32.53, 32.52), "102-006": (28.30, 27.40)}
    for s, (b, w) in expected.items():
        assert base[s] == pytest.approx(b, abs=1e-9) and w24[s] == pytest.approx(w, abs=1e-9), s
    assert at(e, "CDAI", 24)["102-004"] == pytest.approx(16.1)
    order = {"REMISSION": 0, "LOW": 1, "MODERATE": 2, "HIGH": 3}
    fell = {}
    for p in ("SDAI", "CDAI"):
        b, w = at(e, p, 0, "AVALCAT1"), at(e, p, 24, "AVALCAT1")
        fell[p] = sorted(s for s in ALL if order[w[s]] < order[b[s]])
    assert fell["SDAI"] == fell["CDAI"] == ["101-001", "101-002", "102-004"]


def test_pain_vas_improved_in_three_sustained_in_two(adam):
    _, ds = adam
    pain = analysed(ds["ADEFF"], "PAINVAS")
    chg24 = pain[pain.AVISITN == 24].set_index("SID")["CHG"]
    assert sorted(chg24[chg24 <= -20].index) == ["101-001", "101-002", "102-004"]
    post = pain[pain.AVISITN.isin([4, 8, 12, 16, 24])]
    sustained = post.groupby("SID")["CHG"].max()
    counts = post.groupby("SID").size()
    assert sorted(s for s in sustained.index if sustained[s] <= -20 and counts[s] == 5) == ["101-001", "102-004"]


def test_haq_di_edge_cases(adam):
    _, ds = adam
    e = ds["ADEFF"]
    assert at(e, "HAQDI", 12)["101-002"] == pytest.approx(9 / 7)          # hygiene not answered: / 7
    w8 = at(e, "HAQDI", 8)
    assert "101-005" not in w8 and "102-006" not in w8                      # < 6 categories; page missing
    assert at(e, "HAQDI", 0) == pytest.approx({"101-001": 1.875, "101-002": 1.75, "102-003": 1.25,
                                               "102-004": 2.0, "101-005": 1.875, "102-006": 1.25})


def test_crp_units_and_censored_value(adam):
    _, ds = adam
    e = ds["ADEFF"]
    mgdl = at(e, "CRPMGDL", 24)
    # 102-003 Week 24 is '<0.5' mg/dL at site 102 -> LLOQ/2 = 0.25; site 101 reports mg/L
    assert mgdl["102-003"] == pytest.approx(0.25) and mgdl["101-001"] == pytest.approx(0.51)
    assert at(e, "CRP", 24)["101-001"] == pytest.approx(5.1)


def test_out_of_window_and_unscheduled_visits(adam):
    _, ds = adam
    e = ds["ADEFF"]
    # 101-005 Week 16 was on day 121 (window 113 +- 7 violated): the analysis window 99-140 keeps it
    tjc = analysed(e, "TJC28")
    row = tjc[(tjc.SID == "101-005") & (tjc.AVISITN == 16)]
    assert row["ADY"].tolist() == [121] and row["AVAL"].tolist() == [12]
    # its unscheduled CRP on day 150 is in the Week 24 window but not the analysed record
    crp = e[(e.PARAMCD == "CRP") & (sid(e.USUBJID) == "101-005") & (e.AVISITN == 24)]
    assert sorted(crp["ANL01FL"]) == ["", "Y"]
    assert crp.loc[crp.ANL01FL == "", "AVAL"].tolist() == [30.5]


def test_adsl_population_and_treatment_dates(adam):
    out, ds = adam
    adsl = ds["ADSL"]
    assert len(adsl) == 6 and set(adsl.SAFFL) == {"Y"} and set(adsl.EFFFL) == {"Y"}
    ex = pyreadstat.read_xport(out / "sdtm" / "ex.xpt")[0]
    first = ex[ex.EXDOSE > 0].groupby("USUBJID")["EXSTDTC"].min().str[:10]
    assert adsl.set_index("USUBJID")["TRTSDT"].dt.strftime("%Y-%m-%d").to_dict() == first.to_dict()


def test_adae_treatment_emergent_and_first_occurrence(adam):
    _, ds = adam
    adae = ds["ADAE"]
    assert set(adae.TRTEMFL) == {"Y"}       # every AE of the study starts after the first infusion
    # one AOCCFL per subject with an AE; 101-001 has two AEs, the first (Pyrexia, day 1) is flagged
    assert adae.groupby("USUBJID")["AOCCFL"].apply(lambda s: (s == "Y").sum()).eq(1).all()
    one = adae[adae.USUBJID == "RAMSC01-101-001"].sort_values("AESEQ")
    assert one["AOCCFL"].tolist() == ["Y", ""]
    # 102-004 insomnia started '2021-10': imputed to the first infusion day, flagged 'D'
    ins = adae[adae.USUBJID == "RAMSC01-102-004"].iloc[0]
    assert ins["ASTDT"] == pd.Timestamp("2021-10-13") and ins["ASTDTF"] == "D"


def test_run_json_and_xpt_files(adam):
    out, ds = adam
    run = json.loads((out / "run.json").read_text())
    assert run["study"] == "RAMSC01"                                       # convert's record is kept
    assert set(run["adam"]["outputs"]) == {"adam/adsl.xpt", "adam/adae.xpt", "adam/adlb.xpt", "adam/adeff.xpt"}
    for name, df in ds.items():
        back, meta = pyreadstat.read_xport(out / "adam" / f"{name.lower()}.xpt")
        assert len(back) == len(df) and meta.table_name == name
        assert all(len(n) <= 8 for n in meta.column_names)
        assert all(len(lbl or "") <= 40 for lbl in meta.column_labels)


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths")
def test_cli_run_writes_everything_and_derive_fails_cleanly(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "run", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    for name in ("adam/adsl.xpt", "adam/adeff.xpt", "summary.html", "adam-validation.html", "validation.html"):
        assert (out / name).is_file(), name
    adam_report = json.loads((out / "adam-validation.json").read_text())["summary"]
    assert adam_report["standard"] == "ADaMIG 1.3" and "AD0102" in adam_report["rules_run"]
    assert adam_report["by_severity"] == {"error": 0, "warning": 0, "notice": 0}
    before = (out / "adam" / "adsl.xpt").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adsl.yaml").write_text("dataset: ADSL\nlabel: x\nclass: ADSL\nkeys: [USUBJID]\n"
                                   "steps:\n  - {derive: records, dataset: DM, keep: [USUBJID, NOPE]}\n"
                                   "variables: {USUBJID: }\n", encoding="utf-8")
    fail = subprocess.run([sys.executable, str(REPO / "cli.py"), "derive", str(out / "sdtm"), "--spec", str(bad),
                           "--out", str(out)], capture_output=True, text=True, env=env)
    assert fail.returncode == 1
    assert "bad/adsl.yaml:6" in fail.stderr and "NOPE is not a variable of DM" in fail.stderr
    assert (out / "adam" / "adsl.xpt").read_bytes() == before


def test_adsl_baseline_scores_come_from_adeff_after_it_is_derived(adam):
    _, ds = adam
    adsl = ds["ADSL"].assign(SID=lambda d: sid(d.USUBJID)).set_index("SID")
    assert adsl["SDAIBL"].to_dict() == pytest.approx({"101-001": 38.84, "101-002": 31.62, "102-003": 21.90,
                                                      "102-004": 35.90, "101-005": 32.53, "102-006": 28.30})
    assert adsl.loc["102-003", "SDAIBLC"] == "MODERATE" and adsl.loc["101-001", "CDAIBLC"] == "HIGH"
    assert adsl.loc["102-004", "HAQDIBL"] == 2.0


def test_same_adam_from_csv_sdtm(adam, tmp_path):
    """SDTM as CSV (text only, '' for missing numbers) gives the same ADaM as the XPT files."""
    out, ds = adam
    csv = tmp_path / "sdtm"
    csv.mkdir()
    for path in (out / "sdtm").glob("*.xpt"):
        pyreadstat.read_xport(path)[0].to_csv(csv / f"{path.stem}.csv", index=False)
    again = derive(csv, tmp_path / "o", command=["test"]).datasets
    for name in ("ADSL", "ADEFF", "ADLB", "ADAE"):
        a, b = ds[name], again[name]
        assert len(a) == len(b), name
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                      obj=name)


def test_censored_result_is_a_result_for_windows_and_baseline(adam):
    _, ds = adam
    lb = ds["ADLB"]
    ccp = lb[(lb.PARAMCD == "CCPAB") & (lb.USUBJID == "RAMSC01-101-001") & (lb.ABLFL == "Y")]
    # Day 1 anti-CCP was '>500' (no AVAL): still the analysed baseline record, not screening's value
    assert ccp["ADY"].tolist() == [1] and ccp["AVALC"].tolist() == [">500"]


def test_reading_only_the_needed_sdtm_columns_changes_nothing(adam):
    from sdtm_rA.adam.derive import bundled_adam_specs, derive_datasets, needed_sdtm_columns, read_sdtm_folder
    from sdtm_rA.adam.spec import load_spec_folder
    out, ds = adam                                        # derive() read only the needed columns
    specs = load_spec_folder(bundled_adam_specs())
    full = derive_datasets(read_sdtm_folder(out / "sdtm"), specs).datasets
    for name in ds:
        pd.testing.assert_frame_equal(ds[name], full[name], obj=name)
    need = needed_sdtm_columns(specs, {"DM", "EX", "LB", "QS", "MK", "SV", "AE", "SUPPDM", "TS"})
    assert need["AE"] is None                               # ADAE starts from every AE variable
    assert "LBORRES" not in need["LB"] and {"LBSTRESN", "LBSTRESC", "LBDTC", "LBSEQ"} <= need["LB"]
    assert "TS" not in need                                 # not read at all


def test_disease_duration_from_the_ra_diagnosis(adam):
    _, ds = adam
    adsl = ds["ADSL"].assign(SID=lambda d: sid(d.USUBJID)).set_index("SID")
    # 101-001: 2012-03-10 -> 2021-04-12 = 9 x 365 + 2 leap days (2016, 2020) + 33 = 3320 days / 365.25
    assert adsl.loc["101-001", "DISDUR"] == pytest.approx(3320 / 365.25)
    # 101-002: '2008-09' imputed mid-month to 2008-09-15 (flag D) -> 2021-07-12: 12 x 365 + 3 + 300 days
    assert adsl.loc["101-002", "DIAGDTF"] == "D" and adsl.loc["101-002", "DISDUR"] == pytest.approx(4683 / 365.25)
    # 102-004: '2010' imputed to 2010-06-30 (flag M)
    assert adsl.loc["102-004", "DIAGDT"] == pd.Timestamp("2010-06-30") and adsl.loc["102-004", "DIAGDTF"] == "M"
