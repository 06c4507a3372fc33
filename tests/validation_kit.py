"""A clean SDTM folder to break on purpose: the defect catalogue's raw material.

`clean_folder(tmp_path)` copies the converted bundled study (converted once per test session) into
`tmp_path/sdtm`; `edit(folder, 'LB', fn)` rewrites one dataset after `fn(df)` changed it (labels kept);
`run(folder)` validates and returns the findings DataFrame.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyreadstat

from sdtm_rA.io import xpt

_CACHE: dict = {}


def _converted() -> Path:
    if "sdtm" not in _CACHE:
        import tempfile
        from sdtm_rA.sdtm.convert import convert
        out = Path(tempfile.mkdtemp(prefix="sdtm-ra-clean-"))
        convert(None, out, command=["tests"])
        _CACHE["sdtm"] = out / "sdtm"
    return _CACHE["sdtm"]


def clean_folder(tmp_path: Path) -> Path:
    dest = Path(tmp_path) / "sdtm"
    shutil.copytree(_converted(), dest)
    return dest


def read(folder: Path, name: str) -> tuple[pd.DataFrame, object]:
    df, meta = pyreadstat.read_xport(str(Path(folder) / f"{name.lower()}.xpt"))
    return df, meta


def edit(folder: Path, name: str, fn, *, check: bool = True) -> None:
    """Apply fn(df) -> df (or in place) to dataset `name` and write it back as XPT v5.

    Labels of variables that survive are kept; new variables get their name as label.
    """
    df, meta = read(folder, name)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].fillna("").astype(str)
    out = fn(df)
    df = df if out is None else out
    labels = meta.column_names_to_labels
    variables = {c: xpt.XptVariable(c, labels.get(c, c)[:40] or c,
                                    "Num" if pd.api.types.is_numeric_dtype(df[c]) else "Char")
                 for c in df.columns}
    path = Path(folder) / f"{name.lower()}.xpt"
    import datetime as dt
    if check:
        xpt.write_xpt(df, path, name=name.upper(), label=meta.file_label or name, variables=variables,
                      created=dt.datetime(2024, 1, 1))
    else:  # deliberately out of XPT limits: bypass the writer's guards
        pyreadstat.write_xport(df, str(path), file_format_version=5, table_name=name.upper(),
                               file_label=meta.file_label or name,
                               column_labels=[variables[c].label for c in df.columns])


def run(folder: Path, **kw) -> pd.DataFrame:
    from sdtm_rA.validation import validate_folder
    return validate_folder(folder, **kw).findings


def of_rule(findings: pd.DataFrame, rule: str) -> pd.DataFrame:
    return findings[findings["rule"] == rule]
