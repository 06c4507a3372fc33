"""Raw exports that come as SAS transport files: read through pyreadstat, every value as text."""
from __future__ import annotations

import pandas as pd
import pyreadstat

import studykit as sk


def test_xpt_raw_source_numbers_become_text(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        "{file: raw/cm.xpt}", CMDOSE="{from: cm.DOSE}", CMDOSTXT="{from: cm.DOSE, supp: {label: Dose text}}")})
    raw = pd.DataFrame({"SUBJID": ["101", "101", "102"], "TRT": ["ASPIRIN", "IBUPROFEN", "ASPIRIN"],
                        "DOSE": [100.0, 2.5, float("nan")]})
    (folder / "raw").mkdir(exist_ok=True)
    pyreadstat.write_xport(raw, str(folder / "raw" / "cm.xpt"), file_format_version=5, table_name="CM")
    result = sk.build(folder)
    cm = result.datasets["CM"]
    # 100.0 is written '100' (whole numbers without '.0'), 2.5 stays, missing is empty
    got = sorted((u, t, None if pd.isna(d) else d) for u, t, d in
                 zip(cm.USUBJID, cm.CMTRT, cm.CMDOSE))
    assert got == [("TST01-101", "ASPIRIN", 100.0), ("TST01-101", "IBUPROFEN", 2.5),
                   ("TST01-102", "ASPIRIN", None)]
    supp = result.datasets["SUPPCM"]
    assert sorted(supp.QVAL) == ["100", "2.5"]
    # the raw line of an XPT record is its 1-based observation number
    assert sorted(cm.loc[cm.CMTRT == "ASPIRIN", "USUBJID"]) == ["TST01-101", "TST01-102"]


def test_sas7bdat_raw_source(tmp_path):
    """tests/data/cm.sas7bdat was written by the ReadStat 1.1.8 command-line tool (Debian package
    `readstat`) from a Stata file made with pyreadstat, see tests/data/README.md: pyreadstat itself
    cannot write SAS7BDAT. It holds SUBJID 007/008/009, TRT ASPIRIN/IBUPROFEN/Crème (UTF-8), DOSE
    100/2.5/missing and CMSTDAT 12-APR-2021/UN-JUN-2021/blank."""
    import shutil
    from pathlib import Path
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        "{file: raw/cm.sas7bdat}", CMTRT="{from: cm.TRT, transliterate: true}", CMDOSE="{from: cm.DOSE}",
        CMSTDTC="{date: cm.CMSTDAT, format: dd-MMM-yyyy}")})
    (folder / "raw").mkdir(exist_ok=True)
    shutil.copy(Path(__file__).parent / "data" / "cm.sas7bdat", folder / "raw" / "cm.sas7bdat")
    cm = sk.build(folder).datasets["CM"]
    got = sorted((u, t, None if pd.isna(d) else d, s) for u, t, d, s in
                 zip(cm.USUBJID, cm.CMTRT, cm.CMDOSE, cm.CMSTDTC))
    assert got == [("TST01-007", "ASPIRIN", 100.0, "2021-04-12"), ("TST01-008", "IBUPROFEN", 2.5, "2021-06"),
                   ("TST01-009", "Creme", None, "")]
