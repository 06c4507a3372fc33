"""The bundled example study's raw export is generated, deterministic, and carries its planted mess.

tools/generate_ramsc01.py writes sdtm_rA/bundled/ramsc01/raw/ (and asserts the paper-level summary
before writing). These tests re-run it into temporary folders.
"""
import io
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tools" / "generate_ramsc01.py"
COMMITTED = REPO / "sdtm_rA" / "bundled" / "ramsc01" / "raw"


def _generate(out: Path) -> Path:
    res = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "__init__.py"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("raw_a"))


def _xlsx_cells(data: bytes) -> dict:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def test_generation_is_byte_identical(raw, tmp_path):
    first, second = _files(raw), _files(_generate(tmp_path / "b"))
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs"


def test_committed_raw_files_equal_a_fresh_generation(raw):
    fresh, committed = _files(raw), _files(COMMITTED)
    assert sorted(committed) == sorted(fresh), "raw/ holds files the generator does not write (or misses some)"
    for name, data in fresh.items():
        if committed[name] == data:
            continue
        # An .xlsx is a zip whose bytes may change with the openpyxl version: compare the cells then.
        if name.endswith(".xlsx"):
            assert _xlsx_cells(committed[name]) == _xlsx_cells(data), f"{name} was edited by hand"
        else:
            pytest.fail(f"raw/{name} differs from a fresh generation: edit tools/generate_ramsc01.py and re-run it")


def test_dm_has_a_bom(raw):
    data = (raw / "dm.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    dm = pd.read_csv(raw / "dm.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(dm.columns)[:3] == ["STUDYID", "SITEID", "SUBJID"]
    assert dm["SUBJID"].tolist() == ["001", "002", "003", "004", "005", "006"]
    assert (dm["DTHDAT"] == "").all()
    assert dm.loc[dm.SUBJID == "002", "BRTHDAT"].item() == "UN-JUN-1968"
    assert dm.loc[dm.SUBJID == "005", "AGE"].item() == ""
    ic = pd.read_csv(raw / "ic.csv", dtype=str)
    assert {"ICDAT"} <= set(ic.columns) and "RFICDAT" not in dm.columns


def test_ae_is_latin1_not_utf8(raw):
    data = (raw / "ae.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("latin-1")
    assert "Fever 38.2 \u00b0C" in text
    ae = pd.read_csv(raw / "ae.csv", encoding="latin-1", dtype=str, keep_default_na=False)
    for col in ("AESEV", "AESER", "AEREL", "AEACN", "AEOUT"):
        i = list(ae.columns).index(col)
        assert ae.columns[i + 1] == f"{col} - Code"
    assert ae.loc[ae.AESEV == "Moderate", "AESEV - Code"].unique().tolist() == ["2"]
    assert set(ae["AESEV"]) == {"Mild", "mild", "MILD", "moderate", "Moderate"}
    assert set(ae["AESER"]) == {"N", "No"}
    flare = ae[ae.AETERM.str.startswith("RA flare")]
    assert flare[["SUBJID", "AESTDAT", "AEENDAT", "AEONGO"]].values.tolist() == [["005", "UN-JAN-2022", "", "Y"]]
    assert ae.loc[ae.AETERM == "insomnia", "AESTDAT"].item() == "UN-OCT-2021"
    assert ae.loc[ae.AEDECOD == "Pyrexia", "AEPTCD"].unique().tolist() == ["10037660"]


def test_lb_102_semicolons_and_decimal_commas(raw):
    first = (raw / "lb_102.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first.count(";") == 15 and "," not in first
    lb = pd.read_csv(raw / "lb_102.csv", sep=";", dtype=str, keep_default_na=False)
    crp = lb[lb.LBTEST == "C-reactive protein (CRP)"]
    assert set(crp.LBORRESU) == {"mg/dL"} and set(crp.LBORNRHI) == {"0,5"}
    assert crp.LBORRES.str.contains(",").all()
    assert crp.loc[(crp.SUBJID == "003") & (crp.VISIT == "WEEK 24"), "LBORRES"].item() == "<0,5"
    assert "TNF-\u03b1" in set(lb.LBTEST) and set(lb.loc[lb.LBTEST == "ESR", "LBORRESU"]) == {"mm/hr"}
    num = pd.read_csv(raw / "lb_102.csv", sep=";", decimal=",")
    assert num.LBORNRHI.dtype.kind == "f" and 0.5 in set(num.LBORNRHI)


def test_lb_101_planted_rows(raw):
    lb = pd.read_csv(raw / "lb_101.csv", dtype=str, keep_default_na=False)
    assert lb.duplicated().sum() == 1
    dup = lb[lb.duplicated()]
    assert dup[["SUBJID", "VISIT", "LBTEST"]].values.tolist() == [["001", "WEEK 4", "CRP"]]
    assert lb.loc[(lb.SUBJID == "001") & (lb.LBTEST == "Anti-CCP") & (lb.LBORRES == ">500"), "VISIT"].tolist() \
        == ["DAY 1", "WEEK 12"]
    nd = lb[lb.LBSTAT == "NOT DONE"]
    assert nd[["SUBJID", "VISIT", "LBTEST", "LBORRES", "LBREASND"]].values.tolist() == \
        [["002", "WEEK 12", "IL-17A", "", "Sample hemolyzed"]]
    unsch = lb[lb.VISIT == "UNSCHEDULED 1"]
    assert set(unsch.LBTEST) == {"CRP", "ESR"} and (unsch.LBTIM == "").all() and set(unsch.SUBJID) == {"005"}
    sv = pd.read_csv(raw / "sv.csv", dtype=str)
    w12 = sv.loc[(sv.SUBJID == "002") & (sv.VISIT == "WEEK 12"), "SVSTDAT"].item()
    lbd = set(lb.loc[(lb.SUBJID == "002") & (lb.VISIT == "WEEK 12"), "LBDAT"])
    assert len(lbd) == 1 and (pd.to_datetime(lbd.pop(), format="%d-%b-%Y")
                              - pd.to_datetime(w12, format="%d-%b-%Y")).days == 2


def test_qs_haq_workbook(raw):
    wb = openpyxl.load_workbook(raw / "qs_haq.xlsx", read_only=True)
    assert wb.sheetnames == ["HAQ", "Notes"]
    qs = pd.read_excel(raw / "qs_haq.xlsx", sheet_name="HAQ", dtype=object, engine="openpyxl")
    assert list(qs.columns) == ["STUDYID", "SITEID", "SUBJID", "VISIT", "QSDAT", "QSCAT", "ITEMCODE", "QSTEST",
                                "QSORRES", "QSORRESU", "QSSTAT", "QSREASND"]
    nd = qs[qs.ITEMCODE == "HAQALL"]
    assert nd[["SUBJID", "VISIT", "QSSTAT"]].values.tolist() == [["006", "WEEK 8", "NOT DONE"]]
    cm = qs[(qs.ITEMCODE == "HAQ0146") & (qs.QSORRESU == "cm")]
    assert cm[["SUBJID", "VISIT"]].values.tolist() == [["003", "WEEK 8"]] and float(cm.QSORRES.item()) == 4.5
    hyg = qs[(qs.SUBJID == "002") & (qs.VISIT == "WEEK 12") & qs.ITEMCODE.isin(["HAQ0123", "HAQ0124", "HAQ0125"])]
    assert hyg.empty
    assert set(qs.loc[(qs.SUBJID == "005") & (qs.VISIT == "WEEK 8"), "ITEMCODE"]) <= \
        {f"HAQ01{i:02d}" for i in range(1, 23)}
    assert qs.QSTEST.notna().all()


def test_mk_joints_has_a_label_line(raw):
    lines = (raw / "mk_joints.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Study Identifier,")
    assert lines[1] == "STUDYID,SITEID,SUBJID,VISIT,MKDAT,JOINT,SIDE,TENDER,SWOLLEN"
    mk = pd.read_csv(raw / "mk_joints.csv", skiprows=1, dtype=str)
    assert (mk.groupby(["SUBJID", "VISIT"]).size() == 28).all()
    ne = mk[(mk.TENDER == "NE") | (mk.SWOLLEN == "NE")]
    assert ne[["SUBJID", "VISIT", "JOINT", "SIDE"]].values.tolist() == [["004", "WEEK 12", "Knee", "Right"]]


def test_ga_is_wide_with_slash_dates(raw):
    ga = pd.read_csv(raw / "ga.csv", dtype=str)
    assert list(ga.columns) == ["STUDYID", "SITEID", "SUBJID", "VISIT", "GADAT", "PTGA_MM", "PHGA_MM"]
    assert ga.GADAT.str.fullmatch(r"\d\d/\d\d/\d{4}").all()
    assert len(ga) == 36


def test_ex_planted_values(raw):
    ex = pd.read_csv(raw / "ex.csv", dtype=str, keep_default_na=False)
    assert len(ex) == 18
    assert set(ex.EXDOSU) == {"x10^6 cells/kg", "10^6/kg"}
    assert ex.loc[ex.TOTAL_CELLS_X10E6.str.contains("E"), "SUBJID"].tolist() == ["004"]
    assert ex.loc[ex.EXSTTIM == "0945", "SUBJID"].tolist() == ["003"]
    assert ex.loc[ex.EXENTIM == "", "SUBJID"].tolist() == ["002"]
    assert ex.loc[ex.EXVAMT == "100 ml", "SUBJID"].tolist() == ["005"]
