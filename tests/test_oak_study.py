"""sdtm.oak's public example raw data mapped with YAML only (issue 9, proof): tests/oak/ is a study of
sdtm.oak's Rave-style concomitant-medication export (with the export's own CT file) and its wide
vital-signs form. Every expected value below is read by hand from the raw rows (tests/oak/raw/) and
from sdtm.oak's spec sheet (../shared/reference/sdtm.oak-examples/cm_sdtm_oak_spec.csv)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402

OAK = Path(__file__).resolve().parent / "oak"


@pytest.fixture(scope="module")
def result():
    return sk.build(OAK)


def by_group(cm, var):
    """{(PATNUM, MDNUM): value}: the raw form's record key."""
    return {(u.split("-")[1], g): v for u, g, v in zip(cm["USUBJID"], cm["CMGRPID"], cm[var])}


def test_cm_dates_partial_and_two_digit_years(result):
    cm = result.datasets["CM"]
    # MDBDR + MDBTM: 15-Sep-20 → 2020; UN UNK 2019 → 2019; 20 UNK 2019 (day known, month not) → the
    # hyphen rule; an unknown day with a time keeps no time (a warning)
    assert by_group(cm, "CMSTDTC") == {
        ("375", "1"): "", ("375", "2"): "2020-09-15", ("376", "1"): "2021-02-17T08:00",
        ("377", "1"): "2020-10-04T09:00", ("377", "2"): "2020-01-20T10:00", ("377", "3"): "2019",
        ("377", "5"): "2019---20", ("378", "1"): "2020-01-26T09:00", ("378", "2"): "2020-01-28",
        ("378", "3"): "2020-02-12T12:12", ("378", "4"): "2020", ("379", "1"): "2020---10",
        ("379", "2"): "", ("379", "3"): ""}
    assert by_group(cm, "CMENDTC")[("378", "1")] == "2020-01-26T07:00"
    assert any("time 10:00 dropped" in str(i) and "line 8" in str(i) for i in result.issues.warnings)


def test_cm_if_then_else_rows_of_the_spec(result):
    cm = result.datasets["CM"]
    ongoing = {k for k, v in by_group(cm, "CMENRTPT").items() if v}
    prior = {k for k, v in by_group(cm, "CMSTRTPT").items() if v}
    # MDONG = 1 → CMENRTPT ONGOING, CMENTPT 'DATE OF LAST ASSESSMENT'; MDPRIOR = 1 → BEFORE, SCREENING
    assert ongoing == {("375", "1"), ("375", "2"), ("377", "1"), ("378", "2"), ("379", "2")}
    assert prior == {("375", "1"), ("378", "2"), ("378", "3"), ("378", "4")}
    assert set(cm.loc[cm["CMENRTPT"] == "ONGOING", "CMENTPT"]) == {"DATE OF LAST ASSESSMENT"}
    assert set(cm.loc[cm["CMSTRTPT"] == "BEFORE", "CMSTTPT"]) == {"SCREENING"}


def test_cm_controlled_terms_from_the_exports_ct_file(result):
    cm = result.datasets["CM"]
    freq = by_group(cm, "CMDOSFRQ")
    assert freq[("375", "1")] == "QD" and freq[("377", "1")] == "BID" and freq[("377", "3")] == "PRN"
    assert freq[("379", "3")] == "Q2H" and freq[("375", "2")] == ""
    assert by_group(cm, "CMROUTE")[("378", "2")] == "UNKNOWN"            # 'Unknown'
    assert by_group(cm, "CMROUTE")[("378", "4")] == "INTRA-ARTERIAL"     # 'IA (Intra-arterial)'
    assert by_group(cm, "CMDOSFRM")[("375", "2")] == "PILL"
    assert by_group(cm, "CMDOSU")[("378", "2")] == "CAPSULE"              # the unit 'Capsule'
    assert by_group(cm, "CMDOSU")[("375", "1")] == "mg"


def test_cm_doses_and_supplemental_qualifiers(result):
    cm = result.datasets["CM"]
    doses = by_group(cm, "CMDOSE")
    assert doses[("375", "1")] == 10 and doses[("378", "1")] == 100 and sk.is_missing(doses[("376", "1")])
    supp = result.datasets["SUPPCM"]
    proph = supp[supp["QNAM"] == "CMPROPH"]
    # MDPROPH = 1 on 377/2, 377/3, 377/5, 378/1, 378/3
    assert len(proph) == 5 and set(proph["QVAL"]) == {"Y"}
    assert len(cm) == 14


def test_vs_wide_form(result):
    vs = result.datasets["VS"]
    assert len(vs) == 36                                  # 6 rows × 6 tests
    not_done = vs[vs["VSSTAT"] == "NOT DONE"]
    assert len(not_done) == 6 and set(not_done["USUBJID"]) == {"LPSTUDY-376"}
    temp = vs[(vs["VSTESTCD"] == "TEMP") & (vs["VSTPT"] == "Post-dose")]
    assert list(zip(temp["VSDTC"], temp["VSORRES"], temp["VSLOC"])) == [
        ("2015-05-16T10:25", "36.75", "TYMPANIC MEMBRANE"), ("2008-10-23T03:19", "38.08", "TYMPANIC MEMBRANE")]
    oxy = vs[(vs["VSTESTCD"] == "OXYSAT") & (vs["USUBJID"] == "LPSTUDY-375")]
    assert list(oxy["VSLAT"]) == ["LEFT", "RIGHT", "LEFT"]   # screening, pre-dose, post-dose
    assert set(vs.loc[vs["VSTESTCD"] == "SYSBP", "VSSTRESU"]) == {"mmHg", ""}
