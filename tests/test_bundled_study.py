"""The bundled RA study converted end to end: every planted data problem handled as documented.

Expected values are worked out by hand from the raw files (see sdtm_rA/bundled/ramsc01/raw/README.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from sdtm_rA.sdtm.convert import convert
from sdtm_rA.standards.specs import load_sdtmig

from xpt_reader import read as independent_read

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "sdtm_rA" / "bundled" / "ramsc01" / "raw"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ramsc01")
    convert(None, folder, command=["test"])
    return folder


def ds(out, name) -> pd.DataFrame:
    df, _ = pyreadstat.read_xport(str(out / "sdtm" / f"{name}.xpt"))
    return df


def subj(n: str) -> str:
    return f"RAMSC01-{n}"


def test_all_datasets_written(out):
    names = sorted(p.name for p in (out / "sdtm").iterdir())
    for expected in ["dm.xpt", "sv.xpt", "ex.xpt", "ae.xpt", "lb.xpt", "qs.xpt", "mk.xpt", "mh.xpt", "ts.xpt",
                     "suppdm.xpt", "suppae.xpt", "suppex.xpt"]:
        assert expected in names
    assert all(n == n.lower() for n in names)


def test_dm_partial_birth_dates_age_and_recodes(out):
    dm = ds(out, "dm").set_index("USUBJID")
    assert len(dm) == 6
    assert dm.loc[subj("101-002"), "BRTHDTC"] == "1968-06"          # UN-JUN-1968
    assert dm.loc[subj("102-004"), "BRTHDTC"] == "1980"             # UN-UNK-1980
    # 101-005: AGE blank on the CRF; born 05-MAR-1987, consent 28-SEP-2021 -> 34 completed years
    assert dm.loc[subj("101-005"), "AGE"] == 34
    assert dm.loc[subj("101-005"), "AGEU"] == "YEARS"
    assert set(dm["SEX"]) == {"F", "M"} and dm.loc[subj("102-004"), "SEX"] == "M"
    assert set(dm["RACE"]) == {"WHITE"}                              # Persian/Iranian via terms/race.yaml
    assert set(dm["ETHNIC"]) <= {"NOT REPORTED", "NOT HISPANIC OR LATINO"}
    assert dm.loc[subj("101-001"), "RFICDTC"] == "2021-03-24"        # from ic.csv, not dm.csv
    assert dm.loc[subj("101-001"), "RFSTDTC"] == "2021-04-12T10:05"  # first infusion date + time
    assert dm.loc[subj("101-001"), "RFXENDTC"] == "2021-06-07T10:45"
    assert set(dm["ACTARMCD"]) == {"BMCMSC"} and set(dm["DTHFL"]) == {""}


def test_suppdm_keeps_verbatim_race(out):
    supp = ds(out, "suppdm")
    race = supp[supp.QNAM == "RACEOTH"].set_index("USUBJID")["QVAL"].to_dict()
    raw = pd.read_csv(RAW / "dm.csv", dtype=str, encoding="utf-8-sig")
    expected = {subj(f"{r.SITEID}-{r.SUBJID}"): r.RACE for r in raw.itertuples()
                if r.RACE in ("Persian", "Iranian")}
    assert race == expected and len(expected) == 3
    assert set(supp["IDVAR"]) == {""} and set(supp["IDVARVAL"]) == {""}   # DM parent: USUBJID only
    assert list(supp.columns) == ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM",
                                  "QLABEL", "QVAL", "QORIG", "QEVAL"]


def test_ex_times_units_and_route(out):
    ex = ds(out, "ex")
    row = ex[(ex.USUBJID == subj("102-003")) & (ex.EXREFID == "INFUSION 2")].iloc[0]
    assert row.EXSTDTC == "2021-10-11T09:45"                          # raw time '0945'
    row = ex[(ex.USUBJID == subj("101-002")) & (ex.EXREFID == "INFUSION 2")].iloc[0]
    assert row.EXENDTC == "2021-08-10"                                # blank end time: date only
    assert set(ex.EXDOSU) == {"10^6/kg"} and set(ex.EXROUTE) == {"INTRAVENOUS"}
    # VISITNUM is not in the SDTMIG EX table but the SDTM model allows it: it sits among the timing
    # variables, before EPOCH, not at the end
    assert list(ex.columns).index("VISITNUM") < list(ex.columns).index("EPOCH")
    assert set(ex.loc[ex.EXREFID == "INFUSION 3", "VISIT"]) == {"WEEK 8"}
    assert set(ex.EPOCH) == {"TREATMENT"}
    first = ex[ex.EXREFID == "INFUSION 1"]
    assert set(first.EXSTDY) == {1.0}                                 # first infusion is day 1
    assert len(ex) == 18 and ex.groupby("USUBJID").EXSEQ.max().eq(3).all()


def test_ae_partial_dates_transliteration_and_coding(out):
    ae = ds(out, "ae")
    assert ae.AETERM.str.startswith("Fever 38.2 deg C").any()         # '°' transliterated
    assert ae.AETERM.map(str.isascii).all()
    ins = ae[ae.AEDECOD == "Insomnia"].iloc[0]
    assert (ins.AESTDTC, ins.AEENDTC) == ("2021-10", "2021-11")
    assert pd.isna(ins.AESTDY) and pd.isna(ins.AEENDY) and ins.EPOCH == ""
    flare = ae[ae.AEDECOD == "Rheumatoid arthritis"].iloc[0]
    assert flare.AESTDTC == "2022-01" and flare.AEENRTPT == "ONGOING" and flare.AEENDTC == ""
    assert set(ae.AESEV) == {"MILD", "MODERATE"} and set(ae.AESER) == {"N"}
    assert set(ae.AEOUT) <= {"RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED"}
    assert ae.loc[ae.AEDECOD == "Pyrexia", "AEPTCD"].eq(10037660).all()
    supp = ds(out, "suppae")
    assert set(supp.IDVAR) == {"AESEQ"}
    # every SUPPAE record points at an existing parent record
    keys = set(zip(ae.USUBJID, ae.AESEQ.map(lambda x: str(int(x)))))
    assert set(zip(supp.USUBJID, supp.IDVARVAL)) <= keys


def test_lb_units_censored_values_and_duplicates(out):
    lb = ds(out, "lb")
    crp = lb[lb.LBTESTCD == "CRP"]
    assert set(crp.LBSTRESU) == {"mg/L"} and set(crp.LBTEST) == {"C Reactive Protein"}
    # 102-003 screening CRP 1,1 mg/dL (decimal comma) -> 11 mg/L
    scr = crp[(crp.USUBJID == subj("102-003")) & (crp.VISITNUM == 1)].iloc[0]
    assert (scr.LBORRES, scr.LBORRESU, scr.LBSTRESC, scr.LBSTRESN) == ("1.1", "mg/dL", "11", 11.0)
    w24 = crp[(crp.USUBJID == subj("102-003")) & (crp.VISITNUM == 8)].iloc[0]
    assert (w24.LBORRES, w24.LBSTRESC, w24.LBSTRESU) == ("<0.5", "<5", "mg/L") and pd.isna(w24.LBSTRESN)
    ccp = lb[(lb.LBTESTCD == "CCPAB") & (lb.USUBJID == subj("101-001"))]
    assert (ccp.LBORRES == ">500").sum() == 2 and ccp[ccp.LBORRES == ">500"].LBSTRESN.isna().all()
    assert set(lb.loc[lb.LBTESTCD == "ESR", "LBORRESU"]) == {"mm/h"}   # 'mm/hr' recoded
    assert set(lb.loc[lb.LBTESTCD == "ESR", "LBSPEC"]) == {"BLOOD"}     # 'WHOLE BLOOD' is a CT synonym
    assert set(lb.loc[lb.LBTESTCD.isin(["INTLK10", "INTLK17", "TNF"]), "LBORRESU"]) == {"ng/L"}
    w4 = crp[(crp.USUBJID == subj("101-001")) & (crp.VISITNUM == 4)]
    assert len(w4) == 1                                                # exported twice, kept once
    run = json.loads((out / "run.json").read_text())
    assert any("duplicate" in w["message"] and w.get("file") == "raw/lb_101.csv" for w in run["warnings"])


def test_lb_not_done_unscheduled_and_dates(out):
    lb = ds(out, "lb")
    nd = lb[lb.LBSTAT == "NOT DONE"]
    assert len(nd) == 1
    row = nd.iloc[0]
    assert (row.USUBJID, row.LBTESTCD, row.LBREASND, row.LBORRES) == (
        subj("101-002"), "INTLK17", "Sample hemolyzed", "")
    w12 = lb[(lb.USUBJID == subj("101-002")) & (lb.VISITNUM == 6)]
    assert set(w12.LBDTC.str[:10]) == {"2021-10-06"}                   # sampled 2 days after the visit
    uns = lb[lb.VISIT == "UNSCHEDULED 7.1"]               # named after its VISITNUM (VISIT 1:1 VISITNUM)
    assert set(uns.USUBJID) == {subj("101-005")} and set(uns.VISITNUM) == {7.1}
    # 18-MAR-2022 against first dose 20-OCT-2021: 149 days later -> study day 150
    assert set(uns.LBDY) == {150.0} and set(uns.LBTESTCD) == {"CRP", "ESR"}


def test_baseline_flags_one_per_subject_and_test(out):
    for name, by in (("lb", ["LBTESTCD"]), ("qs", ["QSCAT", "QSTESTCD"]),
                     ("mk", ["MKTESTCD", "MKLOC", "MKLAT"])):
        df = ds(out, name)
        flag = f"{name.upper()}LOBXFL"
        counts = df[df[flag] == "Y"].groupby(["USUBJID", *by]).size()
        assert counts.max() == 1, name
        assert (df.loc[df[flag] == "Y", f"{name.upper()}DY"] <= 1).all(), name
    lb = ds(out, "lb")
    flagged = lb[(lb.USUBJID == subj("101-001")) & (lb.LBTESTCD == "CRP") & (lb.LBLOBXFL == "Y")]
    assert flagged.LBDTC.tolist() == ["2021-04-12T08:30"]             # day 1, before the 10:05 infusion


def test_qs_units_and_not_done_page(out):
    qs = ds(out, "qs")
    pain = qs[(qs.USUBJID == subj("102-003")) & (qs.QSTESTCD == "HAQ0146") & (qs.VISITNUM == 5)].iloc[0]
    assert (pain.QSORRES, pain.QSORRESU, pain.QSSTRESC, pain.QSSTRESN, pain.QSSTRESU) == (
        "4.5", "cm", "45", 45.0, "mm")
    allnd = qs[qs.QSTESTCD == "QSALL"]
    assert len(allnd) == 1 and allnd.iloc[0].QSSTAT == "NOT DONE"
    assert allnd.iloc[0].USUBJID == subj("102-006")
    haq = qs[qs.QSCAT == "HAQ-DI WITH VAS"]
    scale = haq[haq.QSORRES.str.contains("difficulty", case=False)]
    mapping = {"Without ANY difficulty": 0, "With SOME difficulty": 1, "With MUCH difficulty": 2,
               "UNABLE to do": 3}
    assert (scale.QSORRES.map(mapping) == scale.QSSTRESN).all()
    glob = qs[qs.QSTESTCD.isin(["PTGADA", "PHGADA"])]
    raw = pd.read_csv(RAW / "ga.csv", dtype=str)
    assert len(glob) == 2 * len(raw) and set(glob.QSCAT) == {"RA GLOBAL ASSESSMENTS"}
    assert glob.QSDTC.str.match(r"^\d{4}-\d{2}-\d{2}$").all()          # dd/mm/yyyy read


def test_mk_non_evaluable_joint(out):
    mk = ds(out, "mk")
    raw = pd.read_csv(RAW / "mk_joints.csv", dtype=str, skiprows=1)
    assert len(mk) == 2 * len(raw)
    ne = mk[mk.MKSTAT == "NOT DONE"]
    assert set(ne.MKLOC) == {"KNEE JOINT"} and set(ne.MKLAT) == {"RIGHT"}
    assert set(ne.MKREASND) == {"JOINT NOT EVALUABLE"} and set(ne.MKORRES) == {""}
    assert set(ne.MKTESTCD) == {"TNDRIND", "SWLLIND"} and set(ne.USUBJID) == {subj("102-004")}
    assert mk.MKLOC.nunique() == 14 and set(mk.MKLAT) == {"LEFT", "RIGHT"}


def test_epoch_on_every_dated_record(out):
    for name in ("lb", "qs", "mk", "ex"):
        df = ds(out, name)
        assert (df.EPOCH != "").all(), name
    lb = ds(out, "lb")
    assert set(lb.loc[lb.VISITNUM == 1, "EPOCH"]) == {"SCREENING"}
    assert set(lb.loc[lb.VISITNUM >= 6, "EPOCH"]) == {"FOLLOW-UP"}


def test_ts_parameters(out):
    ts = ds(out, "ts")
    val = dict(zip(ts.TSPARMCD, ts.TSVAL))
    assert val["SSTDTC"] == "2021-03-24"                               # earliest informed consent
    assert val["SDTIGVER"] == "3.4" and val["TPHASE"] == "PHASE I TRIAL"
    ph = ts[ts.TSPARMCD == "TPHASE"].iloc[0]
    assert (ph.TSVALCD, ph.TSVCDREF, ph.TSVCDVER) == ("C15600", "CDISC CT", "2025-03-28")


def test_xpt_metadata_matches_the_ig(out):
    ig = load_sdtmig("3.4")
    for path in sorted((out / "sdtm").glob("*.xpt")):
        meta = independent_read(path)
        name = path.stem.upper()
        spec = ig.dataset(name)
        assert meta.name == name and meta.label == spec.label
        order = [v.name for v in spec.model_variables()]
        names = [v.name for v in meta.variables]
        assert names == sorted(names, key=order.index)                 # IG order
        assert len(meta.rows) == len(pyreadstat.read_xport(str(path))[0])
        for v in meta.variables:
            assert v.label == spec.model_variable(v.name).label
            if v.type == "Char":
                longest = max([1] + [len(r[v.name] or "") for r in meta.rows])
                assert v.length == longest, (name, v.name)


def test_run_json_provenance(out):
    run = json.loads((out / "run.json").read_text())
    assert run["tool"] == "sdtm_rA" and run["study"] == "RAMSC01"
    for rel, info in run["outputs"].items():
        data = (out / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
    raw_inputs = [k for k in run["inputs"] if k.startswith("study/raw/")]
    assert "study/raw/lb_102.csv" in raw_inputs and "mappings/lb.yaml" in run["inputs"]
    assert hashlib.sha256((RAW / "lb_102.csv").read_bytes()).hexdigest() == run["inputs"]["study/raw/lb_102.csv"]


def test_two_runs_are_byte_identical(out, tmp_path):
    convert(None, tmp_path, command=["test"])
    for path in sorted((out / "sdtm").glob("*.xpt")):
        assert path.read_bytes() == (tmp_path / "sdtm" / path.name).read_bytes(), path.name


def test_cli_progress_summary_and_exit_code(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "convert", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for domain in ("DM", "SV", "AE", "EX", "LB", "MH", "MK", "QS", "TS"):
        assert any(line.strip().startswith(domain) for line in res.stderr.splitlines()), domain
    assert "wrote 12 datasets" in res.stdout


def test_medical_history_partial_dates_and_ongoing(out):
    mh = pyreadstat.read_xport(out / "sdtm" / "mh.xpt")[0]
    ra = mh[mh.MHCAT == "PRIMARY DIAGNOSIS"].set_index("USUBJID")["MHSTDTC"].to_dict()
    # raw mh.csv: UN-SEP-2008 -> 2008-09 and UN-UNK-2010 -> 2010 (right truncation), full dates as they are
    assert ra == {subj("101-001"): "2012-03-10", subj("101-002"): "2008-09", subj("101-005"): "2016-11-03",
                  subj("102-003"): "2015-01-22", subj("102-004"): "2010", subj("102-006"): "2013-06-18"}
    anaemia = mh[mh.MHTERM == "Iron deficiency anaemia"].iloc[0]
    assert anaemia.MHENRTPT == "BEFORE" and anaemia.MHSTDTC == "2018" and anaemia.MHENTPT == "SCREENING"
    assert sorted(mh.loc[mh.USUBJID == subj("101-002"), "MHSEQ"]) == [1, 2]
