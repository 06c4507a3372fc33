"""Reading workbooks in the background and streaming them from calamine: the same frames as
pandas' own reader (the referee), the same errors, the same outputs."""
from __future__ import annotations

import datetime as dt
import io
import os

import pandas as pd
import pytest

import studykit as sk
from sdtm_rA.io import raw_excel, sources


def _workbook(path, rows, title="S"):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    wb.save(path)


ROWS = [["label row", "x", "y"], ["A", "B", "C"], ["007", 2, 3.5], [None, None, None],
        [dt.date(2021, 1, 2), True, dt.datetime(2021, 1, 2, 3, 4, 5)], ["x", None, 7.0], ["é", "", -1.25],
        [None, None, None], [None, None, None]]


@pytest.mark.parametrize("header_row", [1, 2])
@pytest.mark.parametrize("chunk", [2, 100_000])
def test_streamed_sheet_equals_pandas_read_excel(tmp_path, monkeypatch, header_row, chunk):
    monkeypatch.setattr(raw_excel, "_EXCEL_CHUNK", chunk)   # chunk boundaries inside the data
    path = tmp_path / "t.xlsx"
    _workbook(path, ROWS)
    ours = raw_excel._calamine_frame(path, "S", header_row)[0]
    ref = pd.read_excel(path, engine="calamine", sheet_name="S", dtype=str, header=header_row - 1,
                        keep_default_na=False, na_values=[])
    assert list(ours.columns) == list(ref.columns)
    assert ours.astype(object).values.tolist() == ref.astype(object).values.tolist()
    # a blank row inside the data is kept (its line number matters), trailing ones are not
    assert len(ours) == (6 if header_row == 1 else 5)


def test_unknown_sheet_is_reported_with_the_file_from_the_background_read(tmp_path):
    buf = io.BytesIO()
    _workbook(buf, [["SUBJID", "TRT"], ["101", "ASPIRIN"]], title="CM")
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping("{file: raw/cm.xlsx, sheet: CMX}")},
                           raw={"raw/cm.xlsx": buf.getvalue()})
    text = sk.error_text(sk.conversion_error(folder))
    assert "raw/cm.xlsx" in text and "Worksheet named 'CMX' not found" in text


def test_published_folders_follow_the_umask(tmp_path):
    from sdtm_rA.sdtm.convert import convert
    out = tmp_path / "out"
    convert(None, out)
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "sdtm").stat().st_mode & 0o777 == 0o777 & ~umask
    assert not [p for p in out.iterdir() if p.name.startswith(".")]      # no temporary leftovers


def test_without_background_processes_the_outputs_are_the_same(tmp_path):
    """SDTM_RA_WORKERS=1 reads and writes everything in the main process: same bytes as in parallel."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        env = {**os.environ, "SDTM_RA_WORKERS": workers}
        res = subprocess.run([sys.executable, str(repo / "cli.py"), "run", "--out", str(out), "--quiet"],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        outs[workers] = {p.relative_to(out).as_posix(): p.read_bytes()
                         for p in sorted(out.glob("*/*.xpt"))}
    assert set(outs["1"]) >= {"sdtm/qs.xpt", "sdtm/mh.xpt", "adam/adeff.xpt"}
    assert outs["1"] == outs["2"]
