"""sdtm_rA.io.xpt.read_xpt_fast (numpy XPT v5 reader) judged against pyreadstat.read_xport.

Frames are compared exactly (numbers bit for bit), metadata attribute by attribute, on files
written by write_xpt with awkward values, on hand-made files with byte patterns write_xpt never
produces (random IBM bit patterns, short numerics, NULs, blank rows, non-UTF-8 text), on every
dataset of the CDISC pilot study, and on broken files (truncated, not XPT, bad NAMESTR) and
XPT v8 (read through pyreadstat).
"""

from __future__ import annotations

import datetime as dt
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import xpt_reader  # noqa: E402

from sdtm_rA.io import xpt  # noqa: E402
from sdtm_rA.io.xpt import XptError, XptVariable, read_xpt_fast, write_xpt  # noqa: E402

CREATED = dt.datetime(2024, 5, 6, 7, 8, 9)
META_ATTRS = ("table_name", "file_label", "column_names", "column_labels", "number_columns",
              "column_names_to_labels", "variable_storage_width", "readstat_variable_types",
              "number_rows")


# ------------------------------------------------------------------ helpers


def _pyreadstat(path):
    df, meta = pyreadstat.read_xport(str(path))
    for col, kind in meta.readstat_variable_types.items():
        if kind == "string":
            df[col] = df[col].fillna("")
    return df, meta


def _assert_same_numbers(a: pd.Series, b: pd.Series):
    x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
    assert np.array_equal(np.isnan(x), np.isnan(y)), a.name
    keep = ~np.isnan(y)
    # bit for bit: also the sign of zero and the last bit of the fraction
    assert np.array_equal(x[keep].view(np.uint64), y[keep].view(np.uint64)), a.name


def assert_same_as_pyreadstat(path, **kwargs):
    """read_xpt_fast(path) gives pyreadstat's frame and metadata; returns them."""
    got, meta = read_xpt_fast(path, **kwargs)
    want, wmeta = _pyreadstat(path)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for col, kind in wmeta.readstat_variable_types.items():
        if kind == "double":
            _assert_same_numbers(got[col], want[col])
    for attr in META_ATTRS:
        assert getattr(meta, attr) == getattr(wmeta, attr), attr
    assert meta.reader == "numpy" and meta.format_version == 5
    return got, meta


def _write(tmp_path, df, name="DS", label="Test data", variables=None, fname=None):
    path = tmp_path / (fname or f"{name.lower()}.xpt")
    write_xpt(df, path, name=name, label=label, variables=variables, created=CREATED)
    return path


# a hand-made XPT v5 file (SAS TS-140), for byte patterns write_xpt does not produce

_STAMP = b"01JAN00:00:00:00"


def _rec(b: bytes) -> bytes:
    assert len(b) <= 80
    return b.ljust(80, b" ")


def make_xpt(variables, observations: bytes, *, name=b"DS", label=b"", namestr_size=140,
             member_only=False, positions=None) -> bytes:
    """variables: [(name, ntype 1/2, length, label)]; observations: the packed rows."""
    head = [] if member_only else [
        b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000  ",
        _rec(b"SAS     SAS     SASLIB  9.4     X64_10PR" + b" " * 24 + _STAMP),
        _rec(_STAMP),
    ]
    head += [
        b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!00000000000000000160000000"
        + f"{namestr_size:04d}".encode() + b"  ",
        b"HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!000000000000000000000000000000  ",
        _rec(b"SAS     " + name.ljust(8) + b"SASDATA 9.4     X64_10PR" + b" " * 24 + _STAMP),
        _rec(_STAMP + b" " * 16 + label.ljust(40) + b"DATA    "),
        _rec(b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000"
             + f"{len(variables):04d}".encode() + b"00000000000000000000  "),
    ]
    namestrs = b""
    pos = 0
    for i, (vname, ntype, length, vlabel) in enumerate(variables):
        npos = pos if positions is None else positions[i]
        rec = struct.pack(">hhhh8s40s8shhh2s8shhi52s", ntype, 0, length, i + 1,
                          vname.ljust(8), vlabel.ljust(40), b" " * 8, 0, 0, 0, b"  ",
                          b" " * 8, 0, 0, npos, b"\0" * 52)
        namestrs += rec[:namestr_size]
        pos += length
    namestrs += b" " * (-len(namestrs) % 80)
    obs_header = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!000000000000000000000000000000  "
    body = observations + b" " * (-len(observations) % 80)
    return b"".join(head) + namestrs + obs_header + body


def _ibm(x) -> bytes:
    return xpt_reader.float_to_ibm(x)


# ------------------------------------------------------------------ (a) files from write_xpt


AWKWARD_NUMBERS = [0.0, -0.0, -1.0, -1.5, 1e-10, -1e-10, 123456789.0, 2.0 ** 53, -(2.0 ** 53),
                   np.nan, 2.0 ** -260, -(2.0 ** -260), 1e-78, 5.4e-79, 9.0e74, -7.25e70,
                   2.0 ** 249 - 2.0 ** 196, 0.1, 1 / 3, np.pi, 1e15 + 0.5, 17.0, 255.0, 4096.0,
                   0.5, 0.0625, 1e-5, 3.4028234663852886e38, 1.7976931348623157e-38, 42.0]


def test_awkward_values(tmp_path):
    n = len(AWKWARD_NUMBERS)
    texts = ["", "A", "  leading", "trailing   ", "in  side", "x" * 200, "", "Z" * 199 + " ",
             "tab\there", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"]
    df = pd.DataFrame({
        "NUM": AWKWARD_NUMBERS,
        "NEG": [-v for v in AWKWARD_NUMBERS],
        "INT": np.arange(n, dtype="int64") - 5,
        "TEXT": (texts * n)[:n],
        "EMPTY": [""] * n,
        "NONE": [None] * n,
        "ONE": ["Y" if i % 3 else "" for i in range(n)],
        "LONG": ["v" * 200 if i == 3 else "v" * (i * 7 % 201) for i in range(n)],
        "LAST": ["end"] * n,
    })
    variables = {c: XptVariable(c, f"Label of {c}" if c != "INT" else "", "Num" if c in
                                ("NUM", "NEG", "INT") else "Char") for c in df.columns}
    variables["EMPTY"].length = 20  # declared longer than the data
    path = _write(tmp_path, df, name="AWK", label="Awkward values", variables=variables)
    got, meta = assert_same_as_pyreadstat(path)
    assert got["TEXT"].tolist()[:4] == ["", "A", "  leading", "trailing"]
    assert got["EMPTY"].tolist() == [""] * n and meta.variable_storage_width["EMPTY"] == 20
    assert got["NONE"].tolist() == [""] * n
    assert got["LONG"].str.len().max() == 200
    assert np.isnan(got["NUM"][9]) and got["NUM"][1] == 0.0
    assert got["NUM"][6] == 123456789.0 and got["NUM"][7] == 2.0 ** 53
    assert meta.column_names_to_labels["INT"] is None
    assert meta.file_label == "Awkward values" and meta.table_name == "AWK"
    assert meta.creation_time == meta.modification_time == CREATED
    assert meta.member_count == 1 and meta.notes == []


def test_string_and_number_dtypes(tmp_path):
    df = pd.DataFrame({"A": ["x", "yy", ""], "B": [1.0, np.nan, 3.0]})
    got, _ = assert_same_as_pyreadstat(_write(tmp_path, df))
    assert got["B"].dtype == np.float64
    assert got["A"].dtype == pd.Series(["a"]).dtype  # what pandas gives text: str / object
    assert got["A"].tolist() == ["x", "yy", ""]


def test_zero_rows(tmp_path):
    df = pd.DataFrame({"A": pd.Series([], dtype=object), "B": pd.Series([], dtype=float)})
    variables = {"A": XptVariable("A", "Text", "Char", 12), "B": XptVariable("B", "Num", "Num")}
    got, meta = assert_same_as_pyreadstat(_write(tmp_path, df, variables=variables))
    assert got.shape == (0, 2) and meta.number_rows == 0
    assert got["A"].dtype == object  # as pyreadstat: no values, no string dtype
    assert meta.variable_storage_width == {"A": 12, "B": 8}


def test_all_empty_columns_and_blank_rows_in_the_middle(tmp_path):
    df = pd.DataFrame({"A": ["x", "", "", "", "y"], "B": ["", "", "", "", ""]})
    got, _ = assert_same_as_pyreadstat(_write(tmp_path, df))
    assert got["A"].tolist() == ["x", "", "", "", "y"]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_large_file_threads(tmp_path, threads):
    """Big enough for the threaded path; every variable length 1..12 and a few longer ones."""
    rng = np.random.default_rng(7)
    n = 40_000
    alphabet = np.array(list("ABCDEFGHIJ klmnop0123456789-"))
    data = {}
    for w in list(range(1, 13)) + [16, 37, 200]:
        lens = rng.integers(0, w + 1, n)
        chars = alphabet[rng.integers(0, len(alphabet), (n, w))]
        data[f"C{w}"] = ["".join(row[:k]) for row, k in zip(chars, lens)]
    data["C200"][-1] = "not blank"
    data["N1"] = rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n)
    data["N2"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(-10 ** 6, 10 ** 6, n))
    path = _write(tmp_path, pd.DataFrame(data), name="BIG")
    assert path.stat().st_size > 8 << 20  # read_xpt_fast uses threads from 8 MB
    assert_same_as_pyreadstat(path, threads=threads)


@pytest.mark.parametrize("dtype", [object, pd.StringDtype("python", na_value=np.nan)],
                         ids=["object", "python-str"])
def test_text_without_pyarrow_storage(tmp_path, monkeypatch, dtype):
    """pandas 2 (object) or pandas 3 without pyarrow (python-backed str): same values."""
    monkeypatch.setattr(xpt, "_STR_DTYPE", dtype)
    df = pd.DataFrame({"A": ["x", "  in side  ", "", "y" * 200], "B": ["", "", "", "z"],
                       "C": ["abc", "de", "", "f"], "X": [1.0, np.nan, -0.5, 2.0 ** 40]})
    path = _write(tmp_path, df)
    got, _ = read_xpt_fast(path)
    want, _ = _pyreadstat(path)
    for col in "ABC":
        if dtype != object:  # (pandas 3 itself turns an object column of str into str)
            assert got[col].dtype == dtype
        assert got[col].tolist() == want[col].tolist()
    _assert_same_numbers(got["X"], want["X"])


# ------------------------------------------------------------------ hand-made files


def test_hand_made_file_matches_independent_reader(tmp_path):
    variables = [(b"NAME", 2, 10, b"A name"), (b"X", 1, 8, b"A number")]
    obs = b"alpha     " + _ibm(1.5) + b"          " + _ibm(-2.0) + b"gamma     " + b"." + bytes(7)
    path = tmp_path / "h.xpt"
    path.write_bytes(make_xpt(variables, obs, name=b"HAND", label=b"Hand made"))
    ref = xpt_reader.read(path)
    got, meta = assert_same_as_pyreadstat(path)
    assert got["NAME"].tolist() == [row["NAME"] for row in ref.rows] == ["alpha", "", "gamma"]
    assert got["X"].tolist()[:2] == [row["X"] for row in ref.rows][:2] == [1.5, -2.0]
    assert np.isnan(got["X"][2]) and ref.rows[2]["X"] is None
    assert meta.table_name == "HAND" and meta.file_label == "Hand made"


def test_random_ibm_bit_patterns(tmp_path):
    """readstat's IBM -> IEEE conversion, bit for bit: truncation of the 56-bit fraction,
    unnormalised fractions, missing values .A-.Z ._, IBM '-0' (NaN), the all-ones pattern
    (+-inf), zero exponent, every exponent."""
    rng = np.random.default_rng(1)
    n = 5000
    words = rng.integers(0, 2 ** 63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n, dtype=np.uint64)
    special = [bytes(8), b"." + bytes(7), b"A" + bytes(7), b"Z" + bytes(7), b"_" + bytes(7),
               b"\x80" + bytes(7), b"\x40" + bytes(7), b"\x7f" + b"\xff" * 7, b"\xff" * 8,
               b"\x41\x00\x00\x00\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00\x00\x01",
               b"\x41\x0f\xff\xff\xff\xff\xff\xff", b"\x41\x1f\xff\xff\xff\xff\xff\xff",
               b"\x41\xff\xff\xff\xff\xff\xff\xff", b"\xc1\x80\x00\x00\x00\x00\x00\x07",
               b"[" + bytes(7), b"a" + bytes(7), b"\x2e\x00\x00\x00\x00\x00\x00\x02"]
    cells = [w.to_bytes(8, "big") for w in words.tolist()] + special
    obs = b"".join(b"r" + c for c in cells)
    path = tmp_path / "ibm.xpt"
    path.write_bytes(make_xpt([(b"T", 2, 1, b""), (b"X", 1, 8, b"")], obs))
    got, _ = assert_same_as_pyreadstat(path)
    x = got["X"].to_numpy()
    tail = x[n:]
    assert tail[0] == 0.0 and np.isnan(tail[1:7]).all()
    assert tail[7] == np.inf and tail[8] == -np.inf
    # normalised values: the 56-bit fraction truncated (not rounded) to 53 bits
    assert tail[12] == float.fromhex("0x1.fffffffffffffp+0")
    assert tail[13] == float.fromhex("0x1.fffffffffffffp+3")


@pytest.mark.parametrize("length", [3, 4, 5, 6, 7])
def test_short_numerics(tmp_path, length):
    values = [1.0, -2.5, 100.0, 0.1, 1e10, 3.0, 1 / 3, 123456.789]
    cells = [_ibm(v)[:length] for v in values] + [b"." + bytes(length - 1),
                                                   b"B" + bytes(length - 1)]
    obs = b"".join(c + b"ab" for c in cells)
    path = tmp_path / "short.xpt"
    path.write_bytes(make_xpt([(b"X", 1, length, b"short"), (b"S", 2, 2, b"")], obs))
    got, meta = assert_same_as_pyreadstat(path)
    assert meta.variable_storage_width["X"] == length
    assert got["X"][0] == 1.0 and np.isnan(got["X"].iloc[-1])


@pytest.mark.parametrize("length", [1, 2])
def test_numerics_too_short_are_nan_as_in_pyreadstat(tmp_path, length):
    obs = b"".join(_ibm(1.0)[:length] + b"z" for _ in range(3))
    path = tmp_path / "tiny.xpt"
    path.write_bytes(make_xpt([(b"X", 1, length, b""), (b"S", 2, 1, b"")], obs))
    got, _ = assert_same_as_pyreadstat(path)
    assert got["X"].isna().all()


def test_nul_bytes_and_trailing_blank_rows(tmp_path):
    """readstat strips trailing blanks and NULs and ends a value at its first NUL; rows at
    the end that are blank in every byte are dropped (also more than 80 bytes of them)."""
    w = 12
    values = [b"abc\0def     ", b"\0           ", b"x          \0", b"  inner  \0\0 ",
              b"plain       ", b"            ", b"last        "]
    obs = b"".join(v + _ibm(float(i)) for i, v in enumerate(values))
    obs += (b" " * (w + 8)) * 9  # 180 blank bytes after the last row
    path = tmp_path / "nul.xpt"
    path.write_bytes(make_xpt([(b"S", 2, w, b""), (b"X", 1, 8, b"")], obs))
    got, meta = assert_same_as_pyreadstat(path)
    assert got["S"].tolist() == ["abc", "", "x", "  inner", "plain", "", "last"]
    assert meta.number_rows == 7


def test_all_char_dataset_blank_rows_dropped_only_at_the_end(tmp_path):
    rows = [b"a ", b"  ", b"  ", b"b ", b"  ", b"  ", b"  "]
    path = tmp_path / "blank.xpt"
    path.write_bytes(make_xpt([(b"S", 2, 2, b"")], b"".join(rows)))
    got, meta = assert_same_as_pyreadstat(path)
    assert got["S"].tolist() == ["a", "", "", "b"]


def test_utf8_text(tmp_path):
    vals = ["Größe".encode(), "naïve".encode(), b"plain", "µg/L".encode()]
    w = max(len(v) for v in vals)
    path = tmp_path / "utf8.xpt"
    path.write_bytes(make_xpt([(b"S", 2, w, b"")], b"".join(v.ljust(w) for v in vals)))
    got, meta = assert_same_as_pyreadstat(path)
    assert got["S"].tolist() == ["Größe", "naïve", "plain", "µg/L"] and meta.notes == []


def test_non_utf8_text_falls_back_to_latin1(tmp_path):
    vals = ["Größe".encode("latin-1"), b"plain"]
    path = tmp_path / "latin1.xpt"
    path.write_bytes(make_xpt([(b"S", 2, 8, b""), (b"T", 2, 3, b"")],
                              b"".join(v.ljust(8) + b"ok " for v in vals)))
    with pytest.raises(UnicodeDecodeError):
        pyreadstat.read_xport(str(path))
    got, meta = read_xpt_fast(path)
    assert got["S"].tolist() == ["Größe", "plain"] and got["T"].tolist() == ["ok", "ok"]
    assert any("latin-1" in n and n.startswith("S:") for n in meta.notes)
    got, meta = read_xpt_fast(path, encoding="latin-1")
    assert got["S"].tolist() == ["Größe", "plain"] and meta.notes == []


def test_namestr_136(tmp_path):
    variables = [(b"A", 2, 3, b"first"), (b"B", 1, 8, b"second")]
    obs = b"xyz" + _ibm(7.0) + b"uvw" + _ibm(-7.0)
    path = tmp_path / "vax.xpt"
    path.write_bytes(make_xpt(variables, obs, namestr_size=136))
    got, meta = read_xpt_fast(path)
    assert got.to_dict("list") == {"A": ["xyz", "uvw"], "B": [7.0, -7.0]}
    assert meta.column_names_to_labels == {"A": "first", "B": "second"}


def test_two_members_reads_the_first(tmp_path):
    first = make_xpt([(b"A", 2, 4, b""), (b"X", 1, 8, b"")],
                     b"one " + _ibm(1.0) + b"two " + _ibm(2.0), name=b"FIRST")
    second = make_xpt([(b"B", 2, 2, b"")], b"zz" * 10, name=b"SECOND", member_only=True)
    path = tmp_path / "two.xpt"
    path.write_bytes(first + second)
    got, meta = read_xpt_fast(path)
    assert got.to_dict("list") == {"A": ["one", "two"], "X": [1.0, 2.0]}
    assert meta.table_name == "FIRST" and meta.member_count == 2 and meta.number_rows == 2
    assert "2 members" in meta.notes[0]
    # pyreadstat reads the second member's header records as rows of the first
    assert len(pyreadstat.read_xport(str(path))[0]) > 2


# ------------------------------------------------------------------ (b) the CDISC pilot study


def test_cdisc_pilot_study(pilot_sdtm):
    files = sorted(pilot_sdtm.glob("*.xpt"))
    assert len(files) > 20
    for path in files:
        assert_same_as_pyreadstat(path)


# ------------------------------------------------------------------ (c) errors and XPT v8


def _good_file(tmp_path):
    n = 50
    df = pd.DataFrame({"A": [f"row{i}" for i in range(n)], "X": np.arange(n) * 1.5,
                       "B": ["text"] * n})
    return _write(tmp_path, df, name="GOOD")


def test_truncated_inside_an_observation(tmp_path):
    path = _good_file(tmp_path)
    data = path.read_bytes()
    header = data.index(b"HEADER RECORD*******OBS ") + 80
    rowlen = 5 + 8 + 4
    for cut in (header + 3, header + rowlen * 10 + 7, len(data) - 85):
        bad = tmp_path / f"cut{cut}.xpt"
        bad.write_bytes(data[:cut])
        with pytest.raises(XptError, match=r"cut\d+\.xpt: truncated XPT file: the last "
                                           r"observation is cut"):
            read_xpt_fast(bad)


def test_truncated_inside_the_header(tmp_path):
    data = _good_file(tmp_path).read_bytes()
    for cut, where in ((40, "library header"), (300, "member header"), (600, "NAMESTR header"),
                       (700, "NAMESTR records"), (1150, "OBS header")):
        bad = tmp_path / f"h{cut}.xpt"
        bad.write_bytes(data[:cut])
        with pytest.raises(XptError, match=rf"h{cut}\.xpt: truncated XPT file: it ends inside "
                                           rf"the {where}"):
            read_xpt_fast(bad)


def test_not_an_xpt_file(tmp_path):
    for name, content in (("empty.xpt", b""), ("csv.xpt", b"STUDYID,USUBJID\nX,Y\n" * 10),
                          ("sas7bdat.xpt", bytes(32) + b"\xc2\xea\x81\x60" + bytes(200))):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(XptError, match=rf"{name}: .*not a SAS XPORT"):
            read_xpt_fast(path)
    with pytest.raises(FileNotFoundError):
        read_xpt_fast(tmp_path / "missing.xpt")


def test_bad_namestr(tmp_path):
    path = tmp_path / "t.xpt"
    path.write_bytes(make_xpt([(b"A", 3, 4, b"")], b"abcd"))
    with pytest.raises(XptError, match=r"t\.xpt: bad NAMESTR record 1 of 1 \(A\): variable "
                                       r"type 3"):
        read_xpt_fast(path)
    path.write_bytes(make_xpt([(b"A", 1, 9, b"")], b"abcdefghi"))
    with pytest.raises(XptError, match=r"numeric length 9"):
        read_xpt_fast(path)
    path.write_bytes(make_xpt([(b"A", 2, 0, b"")], b""))
    with pytest.raises(XptError, match=r"length 0"):
        read_xpt_fast(path)
    path.write_bytes(make_xpt([(b"A", 2, 4, b""), (b"B", 2, 4, b"")], b"abcdefgh",
                              positions=[0, 2]))
    with pytest.raises(XptError, match=r"variable B is at position 2"):
        read_xpt_fast(path)
    data = make_xpt([(b"A", 2, 4, b"")], b"abcd")
    path.write_bytes(data.replace(b"NAMESTR HEADER RECORD!!!!!!!0000000001",
                                  b"NAMESTR HEADER RECORD!!!!!!!00000000x1"))
    with pytest.raises(XptError, match=r"bad NAMESTR header"):
        read_xpt_fast(path)
    path.write_bytes(make_xpt([(b"A", 2, 4, b"")] * 3, b"abcd" * 3)
                     .replace(b"NAMESTR HEADER RECORD!!!!!!!0000000003",
                              b"NAMESTR HEADER RECORD!!!!!!!0000000002"))
    with pytest.raises(XptError, match=r"no OBS header after the 2 NAMESTR records"):
        read_xpt_fast(path)


def test_xpt_v8_falls_back_to_pyreadstat(tmp_path):
    df = pd.DataFrame({"LONGVARIABLENAME": ["a", "", "c"], "X": [1.0, np.nan, 3.0]})
    path = tmp_path / "v8.xpt"
    pyreadstat.write_xport(df, str(path), table_name="V8DATA", file_label="Version 8",
                           column_labels=["A long name", "Number"])  # default: version 8
    assert path.read_bytes().startswith(b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!")
    got, meta = read_xpt_fast(path)
    want, wmeta = _pyreadstat(path)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for attr in META_ATTRS:
        assert getattr(meta, attr) == getattr(wmeta, attr), attr
    assert meta.reader == "pyreadstat" and meta.format_version == 8
    assert got["LONGVARIABLENAME"].tolist() == ["a", "", "c"]
    # a broken v8 file: the pyreadstat error, with the file name
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(XptError, match=r"v8\.xpt: XPT version 8 file \(LIBV8 header\), read "
                                       r"with pyreadstat, which failed"):
        read_xpt_fast(path)


def test_read_one_compatible_metadata(tmp_path):
    """The attributes sdtm_rA.validation.data.read_one takes from pyreadstat's metadata."""
    path = _good_file(tmp_path)
    _, meta = read_xpt_fast(path)
    _, wmeta = pyreadstat.read_xport(str(path))
    for attr in ("file_label", "column_names_to_labels", "variable_storage_width",
                 "readstat_variable_types", "table_name"):
        assert getattr(meta, attr) == getattr(wmeta, attr)
