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
