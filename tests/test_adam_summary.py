"""The HTML efficacy summary (sdtm_rA.adam.summary) on a hand-built ADSL/ADEFF of three subjects.

Expected table cells are counted by hand from the records built below (see the comments there).
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.summary import summary_html, write_summary

ROOT = Path(__file__).resolve().parents[1]
ODD = "RA<2>&B"                                   # a subject id that must be escaped
SUBJECTS = ["RA-001", ODD, "RA-003"]
VISITS = [("BASELINE", 0), ("WEEK 4", 4), ("WEEK 16", 16)]

# per subject, values at BASELINE / WEEK 4 / WEEK 16 ('' = missing response)
SDAI = {"RA-001": [30, 20, 10], ODD: [25, 12, 3], "RA-003": [40, 35, 28]}
SDAI_CAT = {"RA-001": ["HIGH", "MODERATE", "LOW"], ODD: ["MODERATE", "LOW", "REMISSION"],
            "RA-003": ["HIGH", "HIGH", "HIGH"]}
CDAI = {"RA-001": [28, 18, 8], ODD: [23, 10, 1], "RA-003": [38, 33, 26]}   # no AVALCAT1: derived
ACR = {  # WEEK 4, WEEK 16
    "ACR20": {"RA-001": ["Y", "Y"], ODD: ["Y", "Y"], "RA-003": ["", "N"]},  # W4 2/2, W16 2/3
    "ACR50": {"RA-001": ["N", "Y"], ODD: ["Y", "Y"], "RA-003": ["N", "N"]},  # W4 1/3, W16 2/3
    "ACR70": {"RA-001": ["N", "N"], ODD: ["N", "Y"], "RA-003": ["N", "N"]},  # W4 0/3, W16 1/3
}
EULAR = {"RA-001": ["MODERATE", "GOOD"], ODD: ["GOOD", "GOOD"], "RA-003": ["NONE", "NONE"]}
PAIN = {"RA-001": [60, 40, 20], ODD: [40, 30, 10], "RA-003": [80, 70, 60]}   # means 60, 46.67, 30


def make_adsl() -> pd.DataFrame:
    return pd.DataFrame({"USUBJID": SUBJECTS, "TRT01A": ["Drug", "Placebo", "Drug"],
                         "TRTSDT": pd.to_datetime(["2021-03-01", None, "2021-04-12"])})


def make_adeff() -> pd.DataFrame:
    rows = []

    def add(sid, paramcd, param, visit, aval=np.nan, avalc="", cat="", anl="Y"):
        rows.append({"STUDYID": "RAMSC01", "USUBJID": sid, "PARAMCD": paramcd, "PARAM": param,
                     "AVISIT": visit[0], "AVISITN": visit[1], "AVAL": aval, "AVALC": avalc,
                     "AVALCAT1": cat, "ABLFL": "Y" if visit[1] == 0 else "", "ANL01FL": anl})

    for sid in SUBJECTS:
        for i, visit in enumerate(VISITS):
            add(sid, "SDAI", "SDAI Score", visit, SDAI[sid][i], f"{SDAI[sid][i]}", SDAI_CAT[sid][i])
            add(sid, "CDAI", "CDAI Score", visit, CDAI[sid][i], f"{CDAI[sid][i]}")
            add(sid, "PAINVAS", "Pain VAS (mm)", visit, PAIN[sid][i], f"{PAIN[sid][i]}")
        for i, visit in enumerate(VISITS[1:]):
            for paramcd, values in ACR.items():
                label = "ACR20 <response> & more" if paramcd == "ACR20" else f"{paramcd} Response"
                add(sid, paramcd, label, visit, avalc=values[sid][i])
            add(sid, "EULRESP", "EULAR Response", visit, avalc=EULAR[sid][i])
    # a record not to analyse: would make RA-003 an ACR20 responder at WEEK 16 if it were counted
    add("RA-003", "ACR20", "ACR20 <response> & more", VISITS[2], avalc="Y", anl="N")
    return pd.DataFrame(rows)


class _Tables(HTMLParser):
    """Cell texts (entities decoded) of every <table id=...> of a page."""

    def __init__(self):
        super().__init__()
        self.tables, self._rows, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._rows = self.tables.setdefault(dict(attrs).get("id"), [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def by_first_two(rows):
    return {(r[0], r[1]): r[2:] for r in rows[1:]}


@pytest.fixture(scope="module")
def page() -> str:
    return summary_html(make_adsl(), make_adeff(), title="RAMSC01 efficacy")


# ------------------------------------------------------------------------------------------ content
def test_header(page):
    assert "<h1>RAMSC01 efficacy</h1>" in page
    assert "Study: RAMSC01" in page
    assert "Subjects: 3 (Drug: 2, Placebo: 1)" in page


def test_responder_cells_are_hand_counts(page):
    rows = tables(page)["responders"]
    assert rows[0] == ["PARAMCD", "Response", "WEEK 4", "WEEK 16"]
    cells = by_first_two(rows)
    assert cells[("ACR20", "ACR20 <response> & more")] == ["2/2 (100%)", "2/3 (67%)"]  # ANL01FL=N left out
    assert cells[("ACR50", "ACR50 Response")] == ["1/3 (33%)", "2/3 (67%)"]
    assert cells[("ACR70", "ACR70 Response")] == ["0/3 (0%)", "1/3 (33%)"]
    assert cells[("EULRESP", "EULAR Response: GOOD")] == ["1/3 (33%)", "2/3 (67%)"]
    assert cells[("EULRESP", "EULAR Response: MODERATE")] == ["1/3 (33%)", "0/3 (0%)"]
    assert cells[("EULRESP", "EULAR Response: NONE")] == ["1/3 (33%)", "1/3 (33%)"]


def test_activity_categories_at_baseline_and_last_visit(page):
    rows = tables(page)["activity"]
    assert rows[0] == ["Subject", "Treatment", "Start", "SDAI baseline", "SDAI last visit",
                       "CDAI baseline", "CDAI last visit"]
    by_subject = {r[0]: r[1:] for r in rows[1:]}
    assert [r[0] for r in rows[1:]] == sorted(SUBJECTS)
    assert by_subject["RA-001"] == ["Drug", "2021-03-01", "HIGH (30.0)", "LOW (10.0), WEEK 16",
                                    "HIGH (28.0)", "LOW (8.0), WEEK 16"]          # CDAI 8 <= 10: LOW
    assert by_subject[ODD] == ["Placebo", "", "MODERATE (25.0)", "REMISSION (3.0), WEEK 16",
                               "HIGH (23.0)", "REMISSION (1.0), WEEK 16"]        # CDAI 23 > 22: HIGH


def test_other_scores_mean_per_visit(page):
    cells = by_first_two(tables(page)["others"])
    # (60+40+80)/3 = 60 ; (40+30+70)/3 = 46.67 ; (20+10+60)/3 = 30
    assert cells[("PAINVAS", "Pain VAS (mm)")] == ["60.00 (n=3)", "46.67 (n=3)", "30.00 (n=3)"]
    assert "HAQDI: no analysis records in ADEFF." in page


def test_text_from_data_is_escaped(page):
    assert ODD not in page and "RA&lt;2&gt;&amp;B" in page
    assert "<response>" not in page and "ACR20 &lt;response&gt; &amp; more" in page
    page2 = summary_html(make_adsl(), make_adeff(), title="A <b> & C")
    assert "<h1>A &lt;b&gt; &amp; C</h1>" in page2


def _svgs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


def test_one_embedded_image_per_score(page):
    svgs = _svgs(page)
    assert len(svgs) == 2 and page.count("<img ") == 2
    assert all(s.lstrip().startswith(b"<?xml") and b"<dc:date>" not in s for s in svgs)
    only_sdai = make_adeff().query("PARAMCD != 'CDAI'")
    page2 = summary_html(make_adsl(), only_sdai)
    assert len(_svgs(page2)) == 1
    assert page2.count("CDAI: no analysis records in ADEFF.") == 2   # figure and per-subject sections


def test_missing_paramcd_gives_a_one_line_notice():
    adeff = make_adeff().query("PARAMCD != 'ACR70'")
    page = summary_html(make_adsl(), adeff)
    assert '<p class="notice">ACR70: no post-baseline analysis records in ADEFF.</p>' in page
    assert ("ACR20", "ACR20 <response> & more") in by_first_two(tables(page)["responders"])
    nothing = summary_html(make_adsl(), make_adeff().iloc[0:0])
    assert "<img" not in nothing and "<table" not in nothing
    for paramcd in ("SDAI", "CDAI", "ACR20", "ACR50", "ACR70", "EULRESP", "PAINVAS", "HAQDI", "DAS28ESR"):
        assert f"{paramcd}: no " in nothing


def test_optional_columns_may_be_absent():
    adsl = make_adsl().drop(columns=["TRT01A", "TRTSDT"]).assign(ARM=["X", "Y", "X"])
    adeff = make_adeff().drop(columns=["ANL01FL", "STUDYID", "AVALCAT1"])
    page = summary_html(adsl, adeff)
    assert "Subjects: 3 (X: 2, Y: 1)" in page and "Study: (not given)" in page
    cells = by_first_two(tables(page)["responders"])
    assert cells[("ACR20", "ACR20 <response> & more")][1] == "3/3 (100%)"   # the ANL01FL=N record counts now
    assert tables(page)["activity"][1][3] == "HIGH (30.0)"                   # category derived from AVAL


def test_no_reference_to_external_files(page):
    assert 'src="http' not in page and "href" not in page.lower()
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))


# ------------------------------------------------------------------------------------------ reproducibility
def test_two_calls_give_identical_bytes(page):
    again = summary_html(make_adsl(), make_adeff(), title="RAMSC01 efficacy")
    assert again.encode() == page.encode()
    shuffled = make_adeff().sample(frac=1.0, random_state=7)
    assert summary_html(make_adsl(), shuffled, title="RAMSC01 efficacy") == page


def test_same_bytes_in_another_process(page, tmp_path):
    code = ("import sys, test_adam_summary as t\n"
            "sys.stdout.buffer.write(t.summary_html(t.make_adsl(), t.make_adeff(),"
            " title='RAMSC01 efficacy').encode())\n")
    env = dict(os.environ, PYTHONHASHSEED="12345", SOURCE_DATE_EPOCH="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True,
                         cwd=tmp_path)
    assert out.stdout == page.encode()


def test_matplotlib_is_imported_lazily():
    code = "import sys, sdtm_rA.adam.summary; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)


# ------------------------------------------------------------------------------------------ writing
def test_write_summary_writes_the_page(tmp_path, page):
    target = tmp_path / "out" / "summary.html"
    write_summary(target, make_adsl(), make_adeff(), title="RAMSC01 efficacy")
    assert target.read_bytes() == page.encode("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.html"]


def test_failed_build_leaves_the_existing_file_untouched(tmp_path):
    target = tmp_path / "summary.html"
    target.write_bytes(b"previous page")
    with pytest.raises(ValueError, match="AVAL"):
        write_summary(target, make_adsl(), make_adeff().drop(columns=["AVAL"]))
    assert target.read_bytes() == b"previous page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.html"]     # no temporary file left
