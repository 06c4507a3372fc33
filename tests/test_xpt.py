"""Tests of sdtm_rA.io.xpt: round trips judged by pyreadstat *and* by the independent reader in
tests/xpt_reader.py, reproducible bytes, every guard (the value checks run on each column's
distinct values: rows named and counted), prepare_for_xpt + write_xpt(prepared=...), atomic
writes and SOURCE_DATE_EPOCH.  Timings are in bench/bench_xpt_write.py, not here."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import xpt_reader  # noqa: E402

from sdtm_rA.io import xpt  # noqa: E402
from sdtm_rA.io.xpt import (  # noqa: E402
    XptError,
    XptVariable,
    check_for_xpt,
    read_xpt,
    reproducible_timestamp,
    write_xpt,
)

CREATED = dt.datetime(2024, 5, 6, 7, 8, 9)
CREATED_TEXT = "06MAY24:07:08:09"
# the 16-byte ddMMMyy:hh:mm:ss fields: records 2 and 3 (library), 6 and 7 (member)
STAMP_OFFSETS = (80 + 64, 160, 400 + 64, 480)

AETERMS = ["HEADACHE", "", None, "NAUSEA AND VOMITING", "x", "", "", "", "", "A"]
AETERMS_READ = [v or "" for v in AETERMS]
NUMBERS = [0.0, -1.5, 1e-10, 123456789.0, None, 2.0 ** 53, -7.25e70, 2.0 ** -260, 0.1, -1e-78]


def _frame():
    return pd.DataFrame(
        {
            "STUDYID": ["RAMSC01"] * len(NUMBERS),
            "USUBJID": [f"RAMSC01-{i:03d}" for i in range(len(NUMBERS))],
            "AETERM": AETERMS,
            "AVAL": NUMBERS,
            "AESEQ": np.arange(1, len(NUMBERS) + 1, dtype="int64"),
            "AEOUT": pd.Series([None] * len(NUMBERS), dtype="str"),
        }
    )


VARS = {
    "STUDYID": XptVariable("STUDYID", "Study Identifier", "Char"),
    "USUBJID": XptVariable("USUBJID", "Unique Subject Identifier", "Char"),
    "AETERM": XptVariable("AETERM", "Reported Term for the Adverse Event", "Char"),
    "AVAL": XptVariable("AVAL", "Analysis Value", "Num"),
    "AESEQ": XptVariable("AESEQ", "Sequence Number", "Num"),
    "AEOUT": XptVariable("AEOUT", "Outcome of Adverse Event", "Char"),
}


def _write(tmp_path, df=None, name="AE", label="Adverse Events", variables=VARS,
           created=CREATED, fname="ae.xpt"):
    df = _frame() if df is None else df
    return write_xpt(df, tmp_path / fname, name=name, label=label, variables=variables,
                     created=created)


def _same_number(a, b):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and a == b


# ------------------------------------------------------------------ round trips


def test_round_trip_independent_reader(tmp_path):
    res = _write(tmp_path)
    assert res["rows"] == len(NUMBERS)
    assert res["lengths"] == {"STUDYID": 7, "USUBJID": 11, "AETERM": 19, "AVAL": 8,
                              "AESEQ": 8, "AEOUT": 1}
    ds = xpt_reader.read(tmp_path / "ae.xpt")
    assert (ds.name, ds.label) == ("AE", "Adverse Events")
    assert ds.created == ds.modified == ds.library_created == ds.library_modified == CREATED_TEXT
    got = [(v.name, v.label, v.type, v.length, v.position) for v in ds.variables]
    assert got == [
        ("STUDYID", "Study Identifier", "Char", 7, 0),
        ("USUBJID", "Unique Subject Identifier", "Char", 11, 7),
        ("AETERM", "Reported Term for the Adverse Event", "Char", 19, 18),
        ("AVAL", "Analysis Value", "Num", 8, 37),
        ("AESEQ", "Sequence Number", "Num", 8, 45),
        ("AEOUT", "Outcome of Adverse Event", "Char", 1, 53),
    ]
    df = _frame()
    assert len(ds.rows) == len(df)
    for i, row in enumerate(ds.rows):
        assert row["STUDYID"] == "RAMSC01"
        assert row["USUBJID"] == df.USUBJID[i]
        assert row["AETERM"] == AETERMS_READ[i]
        assert _same_number(NUMBERS[i], row["AVAL"]), (i, NUMBERS[i], row["AVAL"])
        assert row["AESEQ"] == i + 1
        assert row["AEOUT"] == ""
    # the IBM bytes themselves, against an exact IEEE -> IBM conversion
    rowlen = 54
    for i, x in enumerate(NUMBERS):
        cell = ds.observation_bytes[i * rowlen + 37: i * rowlen + 45]
        assert cell == xpt_reader.float_to_ibm(float("nan") if x is None else x)
    assert ds.observation_bytes[37:45] == bytes(8)  # 0 is all zero bytes
    assert ds.observation_bytes[4 * rowlen + 37: 4 * rowlen + 45] == b"." + bytes(7)


def test_round_trip_pyreadstat(tmp_path):
    res = _write(tmp_path)
    df, meta = read_xpt(tmp_path / "ae.xpt")
    assert meta.table_name == "AE"
    assert meta.file_label == "Adverse Events"
    assert list(df.columns) == list(VARS)
    assert meta.column_names_to_labels == {k: v.label for k, v in VARS.items()}
    assert meta.readstat_variable_types == {
        "STUDYID": "string", "USUBJID": "string", "AETERM": "string",
        "AVAL": "double", "AESEQ": "double", "AEOUT": "string"}
    assert meta.variable_storage_width == res["lengths"]
    src = _frame()
    assert df.AETERM.tolist() == AETERMS_READ
    assert df.AEOUT.tolist() == [""] * len(src)
    for a, b in zip(NUMBERS, df.AVAL.tolist()):
        assert _same_number(a, b), (a, b)
    assert df.AESEQ.tolist() == list(range(1, len(src) + 1))


def test_ibm_conversion_of_reader_against_ts140_constants():
    assert xpt_reader.ibm_to_float(bytes.fromhex("4110000000000000")) == 1.0
    assert xpt_reader.ibm_to_float(bytes.fromhex("C110000000000000")) == -1.0
    assert xpt_reader.ibm_to_float(bytes.fromhex("4120000000000000")) == 2.0
    assert xpt_reader.ibm_to_float(bytes.fromhex("C118000000000000")) == -1.5
    assert xpt_reader.ibm_to_float(bytes.fromhex("0000000000000000")) == 0.0
    assert xpt_reader.ibm_to_float(bytes.fromhex("2E00000000000000")) is None
    assert xpt_reader.ibm_to_float(bytes.fromhex("401999999999999A")) == 0.1
    assert xpt_reader.float_to_ibm(100.0) == bytes.fromhex("4264000000000000")


def test_random_numbers_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(7)
    n = 3000
    vals = np.ldexp(rng.uniform(1, 2, n), rng.integers(-260, 249, n))
    vals *= np.where(rng.random(n) < 0.5, -1.0, 1.0)
    vals = np.concatenate([vals, [np.nextafter(xpt.NUM_MAX, 0), -np.nextafter(xpt.NUM_MAX, 0),
                                  xpt.NUM_MIN, 2.0 ** 53 - 1, -123456789.0]])
    df = pd.DataFrame({"X": vals})
    write_xpt(df, tmp_path / "n.xpt", name="N", label="", created=CREATED)
    ds = xpt_reader.read(tmp_path / "n.xpt")
    assert [r["X"] for r in ds.rows] == vals.tolist()
    got, _ = read_xpt(tmp_path / "n.xpt")
    assert got.X.tolist() == vals.tolist()


def test_negative_zero_written_as_zero(tmp_path):
    write_xpt(pd.DataFrame({"X": [-0.0, 1.0]}), tmp_path / "z.xpt", name="Z", label="",
              created=CREATED)
    ds = xpt_reader.read(tmp_path / "z.xpt")
    assert ds.observation_bytes[:8] == bytes(8)


# ------------------------------------------------------------------ lengths


def test_char_lengths_declared_and_computed(tmp_path):
    df = pd.DataFrame({"A": ["abc", "a"], "B": ["", None], "C": ["abcdef", "x"],
                       "D": [None, None], "E": ["x" * 200, "y"]})
    variables = {
        "A": XptVariable("A", "declared larger", "Char", 20),
        "B": XptVariable("B", "all empty", "Char"),
        "C": XptVariable("C", "declared smaller than data", "Char", 2),
        "D": XptVariable("D", "all missing, declared", "Char", 5),
        "E": XptVariable("E", "200 bytes", "Char"),
    }
    res = write_xpt(df, tmp_path / "l.xpt", name="L", label="lengths", variables=variables,
                    created=CREATED)
    expected = {"A": 20, "B": 1, "C": 6, "D": 5, "E": 200}
    assert res["lengths"] == expected
    ds = xpt_reader.read(tmp_path / "l.xpt")
    assert {v.name: v.length for v in ds.variables} == expected
    assert ds.rows == [{"A": "abc", "B": "", "C": "abcdef", "D": "", "E": "x" * 200},
                       {"A": "a", "B": "", "C": "x", "D": "", "E": "y"}]
    got, meta = read_xpt(tmp_path / "l.xpt")
    assert meta.variable_storage_width == expected
    assert got.A.tolist() == ["abc", "a"]  # the padding blanks are not part of the value


def test_zero_rows_keep_declared_lengths(tmp_path):
    df = pd.DataFrame({"A": pd.Series([], dtype="str"), "N": pd.Series([], dtype="float64"),
                       "B": pd.Series([], dtype="str")})
    variables = {"A": XptVariable("A", "a", "Char", 12), "N": XptVariable("N", "n", "Num"),
                 "B": XptVariable("B", "b", "Char")}
    res = write_xpt(df, tmp_path / "e.xpt", name="E", label="", variables=variables,
                    created=CREATED)
    assert res["rows"] == 0 and res["lengths"] == {"A": 12, "N": 8, "B": 1}
    ds = xpt_reader.read(tmp_path / "e.xpt")
    assert [(v.name, v.length, v.position) for v in ds.variables] == [
        ("A", 12, 0), ("N", 8, 12), ("B", 1, 20)]
    assert ds.rows == []
    got, meta = read_xpt(tmp_path / "e.xpt")
    assert len(got) == 0 and meta.variable_storage_width == {"A": 12, "N": 8, "B": 1}


def test_trailing_blanks_do_not_count(tmp_path):
    res = write_xpt(pd.DataFrame({"A": ["ab   ", "  c"]}), tmp_path / "t.xpt", name="T",
                    label="", created=CREATED)
    assert res["lengths"] == {"A": 3}
    assert [r["A"] for r in xpt_reader.read(tmp_path / "t.xpt").rows] == ["ab", "  c"]


# ------------------------------------------------------------------ reproducibility


def test_same_created_gives_identical_bytes(tmp_path):
    a = _write(tmp_path, fname="a.xpt")
    b = _write(tmp_path, fname="b.xpt")
    bytes_a = (tmp_path / "a.xpt").read_bytes()
    assert bytes_a == (tmp_path / "b.xpt").read_bytes()
    assert a["sha256"] == b["sha256"] == hashlib.sha256(bytes_a).hexdigest()
    assert xpt_reader.parse(bytes_a).created == CREATED_TEXT


def test_different_created_changes_only_the_header_datetimes(tmp_path):
    _write(tmp_path, fname="a.xpt")
    _write(tmp_path, fname="b.xpt", created=dt.datetime(1999, 12, 31, 23, 59, 58))
    a = (tmp_path / "a.xpt").read_bytes()
    b = (tmp_path / "b.xpt").read_bytes()
    assert a != b and len(a) == len(b)
    diff = {i for i in range(len(a)) if a[i] != b[i]}
    stamp_bytes = {o + k for o in STAMP_OFFSETS for k in range(16)}
    assert diff and diff <= stamp_bytes
    for off in STAMP_OFFSETS:
        assert b[off:off + 16] == b"31DEC99:23:59:58"
        assert a[off:off + 16] == CREATED_TEXT.encode()
    da, db = xpt_reader.parse(a), xpt_reader.parse(b)
    assert da.rows == db.rows and da.observation_bytes == db.observation_bytes


def test_timezone_aware_created_is_written_in_utc(tmp_path):
    tz = dt.timezone(dt.timedelta(hours=2))
    _write(tmp_path, created=dt.datetime(2024, 5, 6, 9, 8, 9, tzinfo=tz))
    assert xpt_reader.read(tmp_path / "ae.xpt").created == CREATED_TEXT


def test_created_must_be_a_datetime(tmp_path):
    with pytest.raises(XptError, match="created must be a datetime"):
        _write(tmp_path, created="2024-05-06")
    assert not (tmp_path / "ae.xpt").exists()


def test_file_is_xpt_version_5(tmp_path):
    _write(tmp_path)
    head = (tmp_path / "ae.xpt").read_bytes()[:80]
    assert head == xpt_reader.LIBRARY_HEADER


# ------------------------------------------------------------------ reproducible_timestamp


def test_reproducible_timestamp_sources(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert reproducible_timestamp() == dt.datetime(2000, 1, 1)
    assert reproducible_timestamp(None) == dt.datetime(2000, 1, 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert reproducible_timestamp() == dt.datetime(2023, 11, 14, 22, 13, 20)
    # the study configuration wins over the environment
    assert reproducible_timestamp("2024-05-06T07:08:09") == CREATED
    assert reproducible_timestamp("2024-05-06T09:08:09+02:00") == CREATED
    assert reproducible_timestamp("2024-05-06") == dt.datetime(2024, 5, 6)
    assert reproducible_timestamp(dt.date(2024, 5, 6)) == dt.datetime(2024, 5, 6)
    assert reproducible_timestamp(dt.datetime(2024, 5, 6, 7, 8, 9, 999)) == CREATED
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
    assert reproducible_timestamp() == dt.datetime(2000, 1, 1)


def test_reproducible_timestamp_rejects_malformed(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        reproducible_timestamp()
    with pytest.raises(ValueError, match="not an ISO 8601"):
        reproducible_timestamp("06/05/2024")


def test_source_date_epoch_reaches_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    _write(tmp_path, created=reproducible_timestamp())
    ds = xpt_reader.read(tmp_path / "ae.xpt")
    assert ds.created == ds.modified == ds.library_created == "14NOV23:22:13:20"


# ------------------------------------------------------------------ guards


def _problems(df, name="AE", label="Adverse Events", variables=None):
    problems = check_for_xpt(df, name, label, variables)
    with pytest.raises(XptError) as info:
        write_xpt(df, "/nonexistent-dir/never.xpt", name=name, label=label, variables=variables,
                  created=CREATED)
    assert info.value.problems == problems
    for p in problems:
        assert p in str(info.value)
    return problems


def test_clean_frame_has_no_problems():
    assert check_for_xpt(_frame(), "AE", "Adverse Events", VARS) == []


def test_variable_label_of_41_bytes():
    variables = dict(VARS, AVAL=XptVariable("AVAL", "L" * 41, "Num"))
    (p,) = _problems(_frame(), variables=variables)
    assert "AE.AVAL" in p and "41 bytes" in p and "40" in p and "L" * 41 in p


def test_variable_label_with_non_ascii():
    variables = dict(VARS, AVAL=XptVariable("AVAL", "Valeur analysée", "Num"))
    (p,) = _problems(_frame(), variables=variables)
    assert "AE.AVAL" in p and "not ASCII" in p and "'é'" in p and "Valeur analysée" in p


def test_dataset_label_too_long_and_non_ascii():
    problems = _problems(_frame(), label="Événements indésirables et autres choses!", variables=VARS)
    assert len(problems) == 2
    assert all(p.startswith("AE: dataset label") for p in problems)
    assert any("not ASCII" in p for p in problems) and any("bytes long" in p for p in problems)


def test_value_of_201_bytes_names_row_and_value():
    df = _frame()
    df.loc[3, "AETERM"] = "X" * 201
    (p,) = _problems(df, variables=VARS)
    assert p.startswith("AE.AETERM row 4:")
    assert "201 bytes" in p and "XXXXXXXXXX" in p and "200" in p


def test_non_ascii_value_names_row_one_based():
    df = _frame()
    df.index = [100 + i for i in range(len(df))]  # rows are positions, not index labels
    df.iloc[2, df.columns.get_loc("AETERM")] = "CÉPHALÉE"
    df.iloc[5, df.columns.get_loc("AETERM")] = "naïve"
    (p,) = _problems(df, variables=VARS)
    assert p.startswith("AE.AETERM row 3:")
    assert "'CÉPHALÉE'" in p and "not ASCII" in p and "U+00C9" in p and "1 more row" in p


def test_nul_in_value():
    df = _frame()
    df.loc[0, "AETERM"] = "HEAD\x00ACHE"
    (p,) = _problems(df, variables=VARS)
    assert p.startswith("AE.AETERM row 1:") and "NUL" in p


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
def test_datetime_column_refused(unit):
    df = _frame()
    df["AESTDT"] = pd.Series(pd.to_datetime(["2021-03-04"] * len(df))).astype(f"datetime64[{unit}]")
    (p,) = _problems(df)
    assert p.startswith("AE.AESTDT:") and "datetime64" in p and "ISO 8601" in p


def test_timezone_datetime_timedelta_and_object_dates_refused():
    df = pd.DataFrame({
        "A": pd.to_datetime(["2021-03-04"]).tz_localize("UTC"),
        "B": pd.to_timedelta([1], unit="h"),
        "C": pd.Series([dt.date(2021, 3, 4)], dtype=object),
        "D": pd.Series([pd.Timestamp("2021-03-04")], dtype=object),
    })
    problems = _problems(df)
    assert [p.split(":")[0].split(" ")[0] for p in problems] == ["AE.A", "AE.B", "AE.C", "AE.D"]
    assert "ISO 8601" in problems[1] and "0 days 01:00:00" in problems[1]
    assert problems[2].startswith("AE.C row 1: value datetime.date(2021, 3, 4)")


@pytest.mark.parametrize("name, why", [
    ("ae", "not upper case"), ("ADVERSEEV", "9 characters"), ("1AE", "start with a letter"),
    ("A-E", "other than A-Z"), ("", "empty"),
])
def test_bad_dataset_name(name, why):
    problems = _problems(_frame(), name=name, variables=VARS)
    assert len(problems) == 1 and "dataset name" in problems[0] and why in problems[0]
    assert repr(name) in problems[0] or name == ""


@pytest.mark.parametrize("col, why", [
    ("aval", "not upper case"), ("AVALUE123", "9 characters"), ("_AVAL", "start with a letter"),
    ("AV AL", "other than A-Z"),
])
def test_bad_variable_name(col, why):
    df = _frame().rename(columns={"AVAL": col})
    problems = _problems(df)
    assert len(problems) == 1
    assert "variable name" in problems[0] and repr(col) in problems[0] and why in problems[0]


def test_mixed_object_column_refused():
    df = _frame()
    df["AESEV"] = pd.Series([1, "MILD"] + [None] * (len(df) - 2), dtype=object)
    (p,) = _problems(df)
    assert p.startswith("AE.AESEV mixes numbers and strings") and "row 1: 1" in p
    assert "row 2: 'MILD'" in p


def test_numbers_outside_the_exact_ibm_range_refused():
    df = pd.DataFrame({"A": [1.0, np.inf, 1e300, 1e-300, -np.inf],
                       "B": pd.Series([2 ** 60, 1, 2, 3, 4], dtype="int64")})
    problems = _problems(df)
    assert problems[0].startswith("AE.A row 2: value inf is not finite (1 more row)")
    assert problems[1].startswith("AE.A row 3: value 1e+300 is too large")
    assert problems[2].startswith("AE.A row 4: value 1e-300 is too small")
    assert problems[3].startswith("AE.B row 1: integer 1152921504606846976 is beyond 2**53")


def test_boolean_column_refused():
    (p,) = _problems(pd.DataFrame({"FL": [True, False]}))
    assert p.startswith("AE.FL: boolean column")


def test_trailing_all_blank_row_refused():
    (p,) = _problems(pd.DataFrame({"A": ["x", ""], "B": ["y", None]}))
    assert p.startswith("AE row 2: the last row is blank in every variable")
    # a numeric variable makes the row non-blank (missing numerics are '.')
    assert check_for_xpt(pd.DataFrame({"A": ["x", ""], "N": [1.0, None]}), "AE", "") == []


def test_declarations_checked():
    variables = dict(VARS)
    del variables["AESEQ"]
    variables["AVAL"] = XptVariable("AVAL", "Analysis Value", "Char")
    variables["STUDYID"] = XptVariable("STUDYID", "Study Identifier", "Char", 201)
    variables["AETERM"] = XptVariable("AETERM", "Reported Term", "Num")
    problems = _problems(_frame(), variables=variables)
    text = "\n".join(problems)
    assert "AE.AESEQ: no XptVariable declared" in text
    assert "AE.AVAL: declared Char but the column holds numbers" in text
    assert "AE.STUDYID: declared length 201" in text
    assert "AE.AETERM: declared Num but the column holds text" in text
    assert len(problems) == 4


def test_all_problems_reported_at_once():
    df = pd.DataFrame({"aval": [1.0], "T": ["é"], "D": pd.to_datetime(["2021-01-01"])})
    problems = _problems(df, name="toolongname", label="x" * 41)
    assert len(problems) == 5


# ------------------------------------------------------------------ atomic writes


def _dir_listing(path):
    return sorted(p.name for p in path.iterdir())


def test_check_failure_leaves_existing_file_untouched(tmp_path):
    _write(tmp_path)
    before = (tmp_path / "ae.xpt").read_bytes()
    bad = _frame()
    bad.loc[0, "AETERM"] = "é"
    with pytest.raises(XptError):
        _write(tmp_path, df=bad)
    assert (tmp_path / "ae.xpt").read_bytes() == before
    assert _dir_listing(tmp_path) == ["ae.xpt"]


def test_pyreadstat_failure_leaves_existing_file_and_no_temp_file(tmp_path, monkeypatch):
    _write(tmp_path)
    before = (tmp_path / "ae.xpt").read_bytes()

    def broken(df, dst_path, **kwargs):
        with open(dst_path, "wb") as fh:
            fh.write(b"HEADER RECORD")  # a partial file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xpt.pyreadstat, "write_xport", broken)
    with pytest.raises(XptError, match="No space left on device"):
        _write(tmp_path, created=dt.datetime(2030, 1, 1))
    assert (tmp_path / "ae.xpt").read_bytes() == before
    assert _dir_listing(tmp_path) == ["ae.xpt"]
    # and with no previous file, nothing is left at all
    with pytest.raises(XptError):
        _write(tmp_path, fname="new.xpt")
    assert _dir_listing(tmp_path) == ["ae.xpt"]


def test_unexpected_pyreadstat_output_is_refused(tmp_path, monkeypatch):
    real = pyreadstat.write_xport

    def version8(df, dst_path, **kwargs):
        kwargs["file_format_version"] = 8
        return real(df, dst_path, **kwargs)

    monkeypatch.setattr(xpt.pyreadstat, "write_xport", version8)
    with pytest.raises(XptError, match="unexpected XPT"):
        _write(tmp_path)
    assert _dir_listing(tmp_path) == []


def test_rename_failure_leaves_existing_file_and_no_temp_file(tmp_path, monkeypatch):
    _write(tmp_path)
    before = (tmp_path / "ae.xpt").read_bytes()

    def broken_replace(src, dst):
        raise PermissionError("simulated rename failure")

    monkeypatch.setattr(xpt.os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        _write(tmp_path, created=dt.datetime(2030, 1, 1))
    assert (tmp_path / "ae.xpt").read_bytes() == before
    assert _dir_listing(tmp_path) == ["ae.xpt"]


def test_overwrite_replaces_file(tmp_path):
    _write(tmp_path)
    res = _write(tmp_path, created=dt.datetime(2030, 1, 1))
    data = (tmp_path / "ae.xpt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == res["sha256"]
    assert xpt_reader.parse(data).created == "01JAN30:00:00:00"
    assert _dir_listing(tmp_path) == ["ae.xpt"]


# ------------------------------------------------------------------ read_xpt


def test_read_xpt_char_missing_is_empty_string(tmp_path):
    df = pd.DataFrame({"A": ["x", None, ""], "N": [1.0, None, 3.0]})
    write_xpt(df, tmp_path / "r.xpt", name="R", label="", created=CREATED)
    got, meta = read_xpt(tmp_path / "r.xpt")
    assert got.A.tolist() == ["x", "", ""]
    assert got.N.isna().tolist() == [False, True, False]


# ------------------------------------------------------------------ why the guards exist


def test_pyreadstat_behaviours_the_guards_exist_for(tmp_path):
    """Documents pyreadstat 1.3.7 behaviour; if this fails after an upgrade, revisit the
    module docstring of sdtm_rA.io.xpt (a guard may have become unnecessary, not wrong)."""
    df = pd.DataFrame({"A": ["x"], "N": [1.0]})
    pyreadstat.write_xport(df, str(tmp_path / "v.xpt"))
    assert (tmp_path / "v.xpt").read_bytes().startswith(xpt_reader.LIBV8_PREFIX)  # v8 default
    pyreadstat.write_xport(df, str(tmp_path / "l.xpt"), file_format_version=5,
                           column_labels={"A": "L" * 41})
    _, meta = pyreadstat.read_xport(str(tmp_path / "l.xpt"))
    assert meta.column_names_to_labels["A"] == "L" * 40  # silently truncated
    with pytest.raises(Exception):
        pyreadstat.write_xport(pd.DataFrame({"ABCDEFGHI": [1.0]}), str(tmp_path / "f.xpt"),
                               file_format_version=5)
    assert (tmp_path / "f.xpt").stat().st_size == 0  # failed write leaves a 0-byte file
    dts = pd.DataFrame({"D": pd.Series(pd.to_datetime(["2021-03-04"])).astype("datetime64[s]")})
    pyreadstat.write_xport(dts, str(tmp_path / "d.xpt"), file_format_version=5)
    assert xpt_reader.read(tmp_path / "d.xpt").rows[0]["D"] == 315619200.0  # 1970-01-01
    pyreadstat.write_xport(pd.DataFrame({"A": ["y" * 201]}), str(tmp_path / "c.xpt"),
                           file_format_version=5)
    assert xpt_reader.read(tmp_path / "c.xpt").variables[0].length == 201


# ------------------------------------------------------------------ checks on distinct values


@pytest.mark.parametrize("dtype", ["object", "str", "string"])
def test_value_problems_name_first_row_and_count_rows(dtype):
    # the checks run on the distinct values; the counts are of rows, the rows 1-based
    block = ["ok", None, "é  ", "ok", "é", "é", "X" * 201, None, "X" * 201 + "  ", "a\x00b"]
    df = pd.DataFrame({"A": pd.Series(block * 3, dtype=dtype)})
    problems = _problems(df)
    assert problems == [
        "AE.A row 3: value 'é' (2 bytes) is not ASCII (character 'é' U+00E9 at position 1) "
        "(8 more rows)",
        f"AE.A row 7: value {'X' * 60!r}... (201 bytes) is longer than the 200 bytes XPT v5 "
        f"allows (5 more rows)",
        "AE.A row 10: value 'a\\x00b' contains a NUL character, which would cut the value short "
        "(2 more rows)",
    ]


def test_one_problem_row_has_no_count():
    df = pd.DataFrame({"A": ["ok"] * 5 + ["é"] + ["ok"] * 5})
    (p,) = _problems(df)
    assert p.startswith("AE.A row 6: value 'é'") and "more row" not in p


def test_missing_text_of_every_kind_is_empty_and_blanks_are_stripped(tmp_path):
    df = pd.DataFrame({
        "O": pd.Series(["A  ", None, np.nan, pd.NA, pd.NaT, "A", " B"], dtype=object),
        "S": pd.Series(["x", None, "x ", "", "yy   ", None, "z"], dtype="str"),
        "T": pd.Series(["x", pd.NA, "x ", "", "yy", pd.NA, "z"], dtype="string"),
        "C": pd.Series(["c ", "d", None, "c", "d", "c", "c"], dtype="category"),
        "E": pd.Series([None] * 7, dtype=object),
        "N": [1.0] * 7,
    })
    res = write_xpt(df, tmp_path / "m.xpt", name="M", label="", created=CREATED)
    assert res["lengths"] == {"O": 2, "S": 2, "T": 2, "C": 1, "E": 1, "N": 8}
    rows = xpt_reader.read(tmp_path / "m.xpt").rows
    assert [r["O"] for r in rows] == ["A", "", "", "", "", "A", " B"]
    assert [r["S"] for r in rows] == ["x", "", "x", "", "yy", "", "z"]
    assert [r["T"] for r in rows] == ["x", "", "x", "", "yy", "", "z"]
    assert [r["C"] for r in rows] == ["c", "d", "", "c", "d", "c", "c"]
    assert [r["E"] for r in rows] == [""] * 7


def test_trailing_blank_row_with_missing_values_of_several_dtypes_refused():
    df = pd.DataFrame({"A": pd.Series(["x", np.nan], dtype=object),
                       "B": pd.Series(["y", None], dtype="str"),
                       "C": pd.Series(["z", "   "], dtype="string")})
    (p,) = _problems(df)
    assert p.startswith("AE row 2: the last row is blank in every variable")


@pytest.mark.parametrize("distinct", [127, 128, 32767, 32768])
def test_many_distinct_values_round_trip(tmp_path, distinct):
    # the row -> distinct value codes are stored in the smallest integer type
    values = [f"V{i:05d}" for i in range(distinct)]
    column = values + [None, values[-1] + "   ", values[0]]
    df = pd.DataFrame({"A": pd.Series(column, dtype=object),
                       "N": np.arange(len(column), dtype=float)})
    write_xpt(df, tmp_path / "d.xpt", name="D", label="", created=CREATED)
    got, _ = read_xpt(tmp_path / "d.xpt")
    assert got.A.tolist() == values + ["", values[-1], values[0]]


def test_object_numbers(tmp_path):
    df = pd.DataFrame({"N": pd.Series([1, 2.5, None, np.nan, -0.0, np.int64(7), np.float32(0.5),
                                       2 ** 53, -(2 ** 53)], dtype=object)})
    write_xpt(df, tmp_path / "n.xpt", name="N", label="", created=CREATED)
    ds = xpt_reader.read(tmp_path / "n.xpt")
    assert [r["N"] for r in ds.rows] == [1.0, 2.5, None, None, 0.0, 7.0, 0.5, 2.0 ** 53, -2.0 ** 53]
    assert ds.observation_bytes[32:40] == bytes(8)  # -0.0 written as 0.0


def test_object_integers_beyond_2_53_refused_row_by_row():
    df = pd.DataFrame({"N": pd.Series([2 ** 53 + 1, 1, None, 10 ** 400, np.int64(-2 ** 60),
                                       2.0 ** 60], dtype=object)})
    problems = _problems(df)
    assert [p.split(":")[0] for p in problems] == ["AE.N row 1", "AE.N row 4", "AE.N row 5"]
    assert problems[0].startswith("AE.N row 1: integer 9007199254740993 is beyond 2**53")
    assert f"integer {10 ** 400!r} is beyond" in problems[1]
    # a float is a float: 2.0**60 is exact, and allowed


def test_object_numbers_out_of_range_refused():
    df = pd.DataFrame({"N": pd.Series([1, float("inf"), 1e300, None], dtype=object)})
    problems = _problems(df)
    assert problems[0].startswith("AE.N row 2: value inf is not finite")
    assert problems[1].startswith("AE.N row 3: value 1e+300 is too large")


# ------------------------------------------------------------------ prepare once, write


def test_prepared_write_does_not_check_again_and_gives_the_same_bytes(tmp_path, monkeypatch):
    df = _frame()
    prepared = xpt.prepare_for_xpt(df, "AE", "Adverse Events", VARS)
    assert prepared.problems == [] == check_for_xpt(df, "AE", "Adverse Events", VARS)
    assert prepared.nrows == len(df)
    calls = []
    real = xpt._analyse
    monkeypatch.setattr(xpt, "_analyse", lambda *a: calls.append(a) or real(*a))
    got = write_xpt(df, tmp_path / "p.xpt", name="AE", label="Adverse Events", variables=VARS,
                    created=CREATED, prepared=prepared)
    assert calls == []
    want = _write(tmp_path, fname="ae.xpt")
    assert len(calls) == 1  # without prepared=, write_xpt checks
    assert (tmp_path / "p.xpt").read_bytes() == (tmp_path / "ae.xpt").read_bytes()
    assert {k: v for k, v in got.items() if k != "path"} == \
        {k: v for k, v in want.items() if k != "path"}
    # a prepared dataset can be written more than once
    write_xpt(df, tmp_path / "q.xpt", name="AE", label="Adverse Events", variables=VARS,
              created=CREATED, prepared=prepared)
    assert (tmp_path / "q.xpt").read_bytes() == (tmp_path / "ae.xpt").read_bytes()


def test_prepared_problems_are_raised(tmp_path):
    df = _frame()
    df.loc[2, "AETERM"] = "é"
    prepared = xpt.prepare_for_xpt(df, "AE", "Adverse Events", VARS)
    assert prepared.problems == check_for_xpt(df, "AE", "Adverse Events", VARS)
    assert len(prepared.problems) == 1
    with pytest.raises(XptError) as info:
        write_xpt(df, tmp_path / "p.xpt", name="AE", label="Adverse Events", variables=VARS,
                  created=CREATED, prepared=prepared)
    assert info.value.problems == prepared.problems
    assert _dir_listing(tmp_path) == []


def test_prepared_must_match_the_frame_and_arguments(tmp_path):
    df = _frame()
    prepared = xpt.prepare_for_xpt(df, "AE", "Adverse Events", VARS)

    def write(frame=df, name="AE", label="Adverse Events", variables=VARS, prep=prepared):
        return write_xpt(frame, tmp_path / "p.xpt", name=name, label=label, variables=variables,
                         created=CREATED, prepared=prep)

    with pytest.raises(XptError, match="another data frame"):
        write(frame=df.copy())
    with pytest.raises(XptError, match="dataset 'AE'"):
        write(name="AX")
    with pytest.raises(XptError, match="label"):
        write(label="Other")
    with pytest.raises(XptError, match="variable declarations"):
        write(variables=dict(VARS, AVAL=XptVariable("AVAL", "Other label", "Num")))
    with pytest.raises(XptError, match="prepare_for_xpt"):
        write(prep=check_for_xpt(df, "AE", "Adverse Events", VARS))
    variables = {k: XptVariable(v.name, v.label, v.type, v.length) for k, v in VARS.items()}
    prepared2 = xpt.prepare_for_xpt(df, "AE", "Adverse Events", variables)
    variables["AETERM"].length = 50  # changed in place after preparing
    with pytest.raises(XptError, match="variable declarations"):
        write(variables=variables, prep=prepared2)
    df["NEW"] = "x"  # the same frame, with a column more
    with pytest.raises(XptError, match="columns"):
        write()
    assert _dir_listing(tmp_path) == []


def test_pyreadstat_gets_object_text_columns(tmp_path, monkeypatch):
    # pyreadstat writes pandas 3 'str' columns about 3 times slower than object columns
    seen = {}
    real = pyreadstat.write_xport

    def spy(df, dst_path, **kwargs):
        seen.update({c: str(t) for c, t in df.dtypes.items()})
        return real(df, dst_path, **kwargs)

    monkeypatch.setattr(xpt.pyreadstat, "write_xport", spy)
    df = pd.DataFrame({"S": pd.Series(["a", None], dtype="str"),
                       "T": pd.Series(["a", pd.NA], dtype="string"),
                       "O": pd.Series(["a", None], dtype=object),
                       "C": pd.Series(["a", "b"], dtype="category"),
                       "I": pd.Series([1, 2], dtype="int64"),
                       "F": [1.0, np.nan]})
    write_xpt(df, tmp_path / "o.xpt", name="O", label="", created=CREATED)
    assert seen == {"S": "object", "T": "object", "O": "object", "C": "object",
                    "I": "float64", "F": "float64"}


def test_write_many_in_workers_gives_the_same_bytes_and_raises_failures(tmp_path):
    created = dt.datetime(2024, 1, 2, 3, 4, 5)
    frames = {f"D{i}": pd.DataFrame({"USUBJID": [f"S-{j}" for j in range(50 * i + 1)],
                                     "AVAL": np.arange(50 * i + 1, dtype=float) / 7}) for i in range(3)}

    def jobs(folder):
        folder.mkdir()
        return [dict(df=df, path=folder / f"{n.lower()}.xpt", name=n, label=f"Dataset {n}", created=created)
                for n, df in frames.items()]
    parallel = xpt.write_many(jobs(tmp_path / "p"), workers=2)
    serial = xpt.write_many(jobs(tmp_path / "s"), workers=1)
    assert [r["sha256"] for r in parallel] == [r["sha256"] for r in serial]
    assert [r["rows"] for r in parallel] == [1, 51, 101]                 # in job order, not finishing order
    for n in frames:
        assert (tmp_path / "p" / f"{n.lower()}.xpt").read_bytes() == (tmp_path / "s" / f"{n.lower()}.xpt").read_bytes()
    bad = jobs(tmp_path / "b")
    bad[1]["label"] = "x" * 41                                            # over the XPT v5 limit
    with pytest.raises(XptError, match="label"):
        xpt.write_many(bad, workers=2)
