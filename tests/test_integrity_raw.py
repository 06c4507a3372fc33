"""Raw files are never read silently wrong (issue 8): a cut or over-long CSV row, a quote never
closed, a NUL byte, an Excel error cell or a formula without a saved result, a repeated column name
are errors naming the file, the line (or cell) and the value; ``__line__`` is the file line where a
record starts, also after a quoted value over several lines, blank lines or CRLF line ends.

Every expected line number and message is counted and written by hand from the raw text.
"""
from __future__ import annotations

import csv
import io
import random
import re
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from sdtm_rA.io import raw_csv, sources  # noqa: E402
from sdtm_rA.errors import ConversionError  # noqa: E402

SOURCE = " (source 'cm' of mappings/cm.yaml:3)"    # what the conversion adds to a read error


def read(tmp_path, content: str | bytes, name: str = "x.csv", **options) -> pd.DataFrame:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return sources.read_table(path, f"raw/{name}", **options)


def read_errors(tmp_path, content: str | bytes, name: str = "x.csv", **options) -> list[str]:
    with pytest.raises(ConversionError) as info:
        read(tmp_path, content, name, **options)
    return [str(i) for i in info.value.issues]


def values(df: pd.DataFrame) -> list[list]:
    return df.drop(columns="__file__").values.tolist()


def conversion_errors(tmp_path, raw: dict, mapping: str | None = None) -> list[str]:
    folder = sk.make_study(tmp_path, mappings={"cm": mapping or sk.cm_mapping()}, raw=raw)
    return [str(i) for i in sk.conversion_error(folder).issues]


# ====================================================================== 1. rows of the wrong width

def test_a_row_cut_short_is_an_error_not_padded(tmp_path):
    raw = ("SUBJID,CAT,TRT,NOTE\n"
           "101,CONCOMITANT,ASPIRIN,none\n"
           "102,PRIMARY DIAGNOSIS,Rheum")                  # line 3: the export stopped mid-row
    assert conversion_errors(tmp_path, {"raw/cm.csv": raw}) == [
        "error: raw/cm.csv:3: line 3 has 3 fields, the header (line 1) has 4: "
        "'102,PRIMARY DIAGNOSIS,Rheum' (a row cut short?)" + SOURCE]


def test_all_short_and_long_rows_of_a_file_together(tmp_path):
    raw = "A,B,C\n" + "1,2\n" * 12 + "1,2,3\n" + "1,2,3,4\n" + "1,2,3\n" + "5,6,7,8\n"
    # lines 2..13 have 2 fields, line 15 and 17 have 4
    assert read_errors(tmp_path, raw) == [
        "error: raw/x.csv:2: 12 rows have fewer fields than the header (line 1, 3 fields): "
        "lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 (+2 more); line 2 has 2: '1,2' (a row cut short?)",
        "error: raw/x.csv:15: 2 rows have more fields than the header (line 1, 3 fields): lines 15, 17; "
        "line 15 has 4: '1,2,3,4' (a separator inside a value that is not quoted?)"]


@pytest.mark.parametrize("raw, message", [
    # on every row: pandas alone would take SUBJID as the index and shift every column to the left
    ("SUBJID,TRT\n101,ASPIRIN,\n102,IBUPROFEN,\n",
     "error: raw/cm.csv:2: 2 rows have more fields than the header (line 1, 2 fields): lines 2, 3; "
     "line 2 has 3: '101,ASPIRIN,'"),
    # on one row: pandas alone would stop with its own message, without the file
    ("SUBJID,TRT\n101,ASPIRIN\n102,IBUPROFEN,400 mg\n",
     "error: raw/cm.csv:3: line 3 has 3 fields, the header (line 1) has 2: '102,IBUPROFEN,400 mg'")],
    ids=["every row", "one row"])
def test_an_extra_field_is_an_error_not_a_shift(tmp_path, raw, message):
    assert conversion_errors(tmp_path, {"raw/cm.csv": raw}) == [
        message + " (a separator inside a value that is not quoted?)" + SOURCE]


def test_a_long_row_is_quoted_cut_to_80_characters(tmp_path):
    row = "101," + "x" * 100
    text = read_errors(tmp_path, "A,B,C\n" + row + "\n")[0]
    assert text == ("error: raw/x.csv:2: line 2 has 2 fields, the header (line 1) has 3: "
                    f"'{row[:80]}…' (104 characters) (a row cut short?)")


@pytest.mark.parametrize("quotes_per_line", [0, 1000])     # parity byte by byte / per quoted value
def test_separators_and_line_ends_inside_quotes_do_not_count(tmp_path, monkeypatch, quotes_per_line):
    monkeypatch.setattr(raw_csv, "_SPARSE_QUOTES", quotes_per_line)
    raw = 'A,B,C\n1,"x, y",3\n2,"two\nlines, here",4\n"3","a ""quoted"" word",""\n5,6,7\n'
    assert values(read(tmp_path, raw)) == [["1", "x, y", "3", 2], ["2", "two\nlines, here", "4", 3],
                                           ["3", 'a "quoted" word', "", 5], ["5", "6", "7", 6]]
    assert read_errors(tmp_path, raw + '8,"9,10"\n11,",",12,13\n') == [
        "error: raw/x.csv:7: line 7 has 2 fields, the header (line 1) has 3: '8,\"9,10\"' (a row cut short?)",
        "error: raw/x.csv:8: line 8 has 4 fields, the header (line 1) has 3: '11,\",\",12,13' "
        "(a separator inside a value that is not quoted?)"]


def test_a_quote_never_closed(tmp_path):
    raw = 'SUBJID,TRT\n101,ASPIRIN\n102,"IBUPROFEN\n103,PARACETAMOL\n'
    assert conversion_errors(tmp_path, {"raw/cm.csv": raw}) == [
        "error: raw/cm.csv:3: the quoted value that starts on line 3 is never closed (a '\"' is missing)"
        + SOURCE]


NEVER_CLOSED = "the quoted value that starts on line {} is never closed (a '\"' is missing)"


def test_a_quote_never_closed_at_the_end_of_the_file(tmp_path):
    # a quote inside an unquoted value (line 2) sends the file through the csv module, which takes
    # the end of the file as the end of the value; pandas then stopped with its own message
    raw = 'ID,ITEM,NOTE\n101,12" ruler,none\n102,HEADACHE,"patient said it started\n'
    assert read_errors(tmp_path, raw, "ae.csv") == ["error: raw/ae.csv:3: " + NEVER_CLOSED.format(3)]
    # the open value starts on line 4 (lines 3-4 hold a closed value over two lines), and holds
    # doubled quotes and line ends
    raw = 'ID,ITEM,NOTE\n101,12" ruler,none\n102,"HEAD\nACHE","said ""it""\nstarted\n'
    assert read_errors(tmp_path, raw, "ae.csv") == ["error: raw/ae.csv:4: " + NEVER_CLOSED.format(4)]


@pytest.mark.parametrize("quotes_per_line", [0, 1000])     # parity byte by byte / per quoted value
def test_a_quote_never_closed_holding_doubled_quotes(tmp_path, monkeypatch, quotes_per_line):
    # regular quoting: the value opened on line 3 is named, not the doubled quotes of line 4
    monkeypatch.setattr(raw_csv, "_SPARSE_QUOTES", quotes_per_line)
    assert read_errors(tmp_path, 'A,B\n1,2\n3,"a\n""b""\nc\n') == ["error: raw/x.csv:3: " + NEVER_CLOSED.format(3)]


def test_quotes_inside_unquoted_values_are_text(tmp_path):
    # no value starts with a quote: every quote is text (as pandas and spreadsheets read it)
    assert values(read(tmp_path, 'A,B\n1,12" ruler\n2,3\n')) == [["1", '12" ruler', 2], ["2", "3", 3]]
    # a quoted value and a stray quote in the same file: read record by record by the csv module
    raw = 'A,B\n1,"x, y"\n2,"two\nlines"\n3,12" ruler\n4,"ab"c\n5,6\n'
    assert values(read(tmp_path, raw)) == [["1", "x, y", 2], ["2", "two\nlines", 3],
                                           ["3", '12" ruler', 5], ["4", "abc", 6], ["5", "6", 7]]
    assert read_errors(tmp_path, 'A,B\n1,"x, y"\n2,12" ruler\n3\n') == [
        "error: raw/x.csv:4: line 4 has 1 field, the header (line 1) has 2: '3' (a row cut short?)"]


def test_a_separator_is_one_character(tmp_path):
    assert read_errors(tmp_path, "A;;B\n1;;2\n", sep=";;") == [
        "error: raw/x.csv: sep ';;': a separator is one character, not a quote or a line end"]


def _no_scan(monkeypatch):
    """The record scan made unusable: what still reads was read by the fast proof alone."""
    def fail(*_):
        raise AssertionError("the records were scanned")
    monkeypatch.setattr(raw_csv, "_Lines", fail)


def test_plain_lines_are_read_without_a_scan(tmp_path, monkeypatch):
    _no_scan(monkeypatch)
    # quotes around whole values, doubled quotes, an empty quoted value, a quote inside a value
    # (read as text, as the csv module does: nothing there can hide a separator), CRLF ends
    raw = 'A,B,C\r\n"1","a ""q""",x\r\n2,"",12"" ruler\r\n3,4,"5"'
    assert values(read(tmp_path, raw)) == [["1", 'a "q"', "x", 2], ["2", "", '12"" ruler', 3],
                                           ["3", "4", "5", 4]]
    assert values(read(tmp_path, "Label\nA,B\n1,2\n", header_row=2)) == [["1", "2", 3]]
    assert values(read(tmp_path, "ID\n1\n  \n2")) == [["1", 2], ["", 3], ["2", 4]]
    # regular quotes around separators; quotes that are all text
    assert values(read(tmp_path, 'A,B\n"1,2","3"\n"","a ""b"", c"\n')) == [["1,2", "3", 2], ["", 'a "b", c', 3]]
    assert values(read(tmp_path, 'A,B\n1,12" ruler\n2,3"\n')) == [["1", '12" ruler', 2], ["2", '3"', 3]]
    # the same errors as the scan gives
    assert read_errors(tmp_path, "A,B\n1,a\x00b\n") == [
        "error: raw/x.csv:2: column B holds a NUL character (byte 0x00) at line 2: 'a\\x00b' "
        "(a damaged export? an XPT file cannot hold it)"]
    assert read_errors(tmp_path, "A,B\n") == ["error: raw/x.csv: raw file has a header but no data rows"]


@pytest.mark.parametrize("raw, header_row", [
    ("A,B\n1,2\n\n3,4\n", 1),           # a blank line
    ("A\n1\n\n3\n", 1),                 # a blank line in a one-column file
    ("A,B\r1,2\r", 1),                   # lone CR line ends
    ('A,B\n1,"2\n3"\n', 1),              # a quoted line end
    ('A,B\n"1",12" ruler\n', 1),         # quoted values and a quote inside a value
    ('A,B\n1,"x\n', 1),                  # a quote never closed
    ('"Lab\nel"\nA,B\n1,2\n', 3),        # quotes above the header
    ("A,B\n1,2,3\n", 1),                 # rows of another width
    ("A,B\n1\n", 1)])
def test_what_the_fast_proof_leaves_to_the_scan(raw, header_row):
    assert raw_csv._plain_lines(raw.encode(), ",", header_row) is None


# ====================================================================== 2. line numbers

def test_line_numbers_after_a_value_over_several_lines(tmp_path):
    raw = ("SUBJID,TRT,STDAT\n"
           '101,"ASPIRIN\n100 mg",2021-03-01\n'          # lines 2-3
           '102,"IBU\n\nPROFEN",2021-03-02\n'            # lines 4-6
           "103,PARACETAMOL,2021-02-30\n")               # line 7: 30 February
    mapping = sk.cm_mapping(CMTRT="{from: cm.TRT, transliterate: true}",
                            CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}")
    text = "\n".join(conversion_errors(tmp_path, {"raw/cm.csv": raw}, mapping))
    assert "2021-02-30" in text and sk.lines_after(text, "2021-02-30") == {7}
    assert read(tmp_path, raw)["__line__"].tolist() == [2, 4, 7]


def test_line_numbers_of_crlf_and_cr_files(tmp_path):
    crlf = 'A,B\r\n1,"x\r\ny"\r\n\r\n2,3\r\n'
    assert values(read(tmp_path, crlf)) == [["1", "x\r\ny", 2], ["2", "3", 5]]
    assert values(read(tmp_path, "A,B\r1,2\r\r3,4\r")) == [["1", "2", 2], ["3", "4", 4]]


def test_blank_lines_are_not_records_and_keep_the_line_numbers(tmp_path):
    raw = "SUBJID,TRT\n101,ASPIRIN\n\n102,IBUPROFEN\r\n\r\n103,Crème\n\n\n"
    assert values(read(tmp_path, raw)) == [["101", "ASPIRIN", 2], ["102", "IBUPROFEN", 4],
                                           ["103", "Crème", 6]]
    text = "\n".join(conversion_errors(tmp_path, {"raw/cm.csv": raw}))
    assert "Crème" in text and sk.lines_after(text, "Crème") == {6}
    # a row of empty fields is a record (its separators say so); a blank file is not
    assert values(read(tmp_path, "A,B\n,\n1,2\n")) == [["", "", 2], ["1", "2", 3]]
    assert read_errors(tmp_path, "A,B\n\n\n") == ["error: raw/x.csv: raw file has a header but no data rows"]


def test_a_line_of_blanks_is_a_record(tmp_path):
    # one column: a line of spaces is an empty value (stripped as every value is); an empty line is
    # not a record, in a one-column file as in any other
    assert values(read(tmp_path, "ID\n101\n   \n\n102\n")) == [["101", 2], ["", 3], ["102", 5]]
    # wider files: a line of blanks has one field, not two
    assert read_errors(tmp_path, "A,B\n1,2\n \t\n3,4\n") == [
        "error: raw/x.csv:3: line 3 has 1 field, the header (line 1) has 2: ' \\t' (a row cut short?)"]
    assert read_errors(tmp_path, "A,B\n1,2\n  \n", header_row=3) == [
        "error: raw/x.csv:3: line 3, the header row, is blank"]


def test_header_row_lines(tmp_path):
    raw = 'Subject,"Drug\nname"\nSUBJID,TRT\n101,ASPIRIN\n'        # the label row spans lines 1-2
    assert values(read(tmp_path, raw, header_row=3)) == [["101", "ASPIRIN", 4]]
    assert read_errors(tmp_path, raw, header_row=2) == [
        "error: raw/x.csv:2: line 2, the header row, is inside the quoted value that starts on line 1"]
    assert read_errors(tmp_path, "label\n\nA,B\n1,2\n", header_row=2) == [
        "error: raw/x.csv:2: line 2, the header row, is blank"]
    assert read_errors(tmp_path, "A,B\n1,2\n", header_row=5) == [
        "error: raw/x.csv:5: line 5, the header row, is past the end of the file (2 lines)"]


# ====================================================================== 3. NUL characters

def test_a_nul_character_names_file_line_and_column(tmp_path):
    raw = 'SUBJID,TRT,NOTE\n101,"ASPI\nRIN",ok\n102,IBU\x00PROFEN,ok\n103,PARACETAMOL,a\x00b\n'
    assert conversion_errors(tmp_path, {"raw/cm.csv": raw}) == [
        "error: raw/cm.csv:4: column TRT holds a NUL character (byte 0x00) at line 4: 'IBU\\x00PROFEN' "
        "(a damaged export? an XPT file cannot hold it)" + SOURCE,
        # NOTE is mapped to nothing, but a NUL is a damaged file wherever it is
        "error: raw/cm.csv:5: column NOTE holds a NUL character (byte 0x00) at line 5: 'a\\x00b' "
        "(a damaged export? an XPT file cannot hold it)" + SOURCE]


def test_utf16_read_as_utf8_is_named(tmp_path):
    raw = "SUBJID,TRT\n101,ASPIRIN\n".encode("utf-16-le")
    assert read_errors(tmp_path, raw) == [
        "error: raw/x.csv:1: the header row holds NUL characters (byte 0x00): is the file UTF-16? "
        "declare its encoding, e.g. `encoding: utf-16`"]
    assert values(read(tmp_path, raw, encoding="utf-16-le")) == [["101", "ASPIRIN", 2]]


def test_not_utf8_and_empty_files(tmp_path):
    # 0xE8 (è in Latin-1) followed by 'm' cannot be UTF-8
    assert read_errors(tmp_path, "A,B\n1,2\n3,Crème\n".encode("latin-1")) == [
        "error: raw/x.csv:3: not UTF-8 text: byte 0xe8 on line 3 (invalid continuation byte); declare the "
        "file's encoding, e.g. `encoding: latin-1`"]
    assert read_errors(tmp_path, b"\xef\xbb\xbf") == ["error: raw/x.csv: the file is empty"]
    assert read_errors(tmp_path, " \r\n\n") == ["error: raw/x.csv: the file holds nothing but blanks and line ends"]


# ====================================================================== random files

_CHARS = {"plain": "ab1 ", "quoted": 'ab1 ,"\n', "wild": 'ab1 ,"\n\r'}


def _random_csv(rnd: random.Random) -> str:
    """A small CSV: clean, RFC-quoted or wild (quotes, separators and line ends anywhere), with
    some rows of the wrong width, blank lines, CRLF or CR ends, and sometimes cut anywhere."""
    width, style = rnd.randint(1, 4), rnd.choice(list(_CHARS))
    end = rnd.choice(["\n", "\r\n"] + (["\r"] if style == "wild" else []))
    rows = []
    for _ in range(rnd.randint(0, 6)):
        fields = []
        for _ in range(width if rnd.random() < 0.85 else rnd.randint(0, width + 1)):
            v = "".join(rnd.choice(_CHARS[style]) for _ in range(rnd.randint(0, 4)))
            if style == "plain" or (style == "quoted" and rnd.random() < 0.5):
                v = v.replace(",", "").replace('"', "").replace("\n", "")
            if style != "plain" and rnd.random() < 0.5:
                v = '"' + v.replace('"', '""') + '"'
            fields.append(v)
        rows.append(",".join(fields))
    header = ",".join(f"C{i}" for i in range(width))
    text = end.join([header] + rows) + rnd.choice([end, ""])
    if rnd.random() < 0.15 and len(text) > len(header) + 1:
        text = text[:rnd.randint(len(header) + 1, len(text))]
    return text


def _csv_module(text: str) -> tuple[str, object]:
    """What Python's csv module makes of a file: ('open', line where the quoted value that the file
    ends inside of starts) or ('rows', (header width, [(start line, fields)] without blank lines))."""
    def rows(t):
        return list(csv.reader(io.StringIO(t, newline="")))
    if rows(text + "\nZ")[-1] != ["Z"]:        # what follows the file is swallowed: a value is open
        # the open value is the last field, its quotes doubled in the file, after its opening quote
        at = len(text) - len(rows(text)[-1][-1].replace('"', '""')) - 1
        assert text[at] == '"'
        return "open", len(re.findall(r"\r\n|\r|\n", text[:at])) + 1
    reader = csv.reader(io.StringIO(text, newline=""))
    width, start, records = len(next(reader)), reader.line_num + 1, []
    for row in reader:
        if row:
            records.append((start, row))
        start = reader.line_num + 1
    return "rows", (width, records)


_WIDTH_ERROR = (r"error: raw/f\.csv:(\d+): (line \1 has \d+ fields?, the header \(line 1\) has {w}|\d+ rows "
                r"have (fewer|more) fields than the header \(line 1, {w} fields\): lines [\d, ]+( \(\+\d+ "
                r"more\))?; line \1 has \d+): '.*' \((a row cut short\?|a separator inside a value that is "
                r"not quoted\?)\)")


def test_random_files_read_as_the_csv_module_reads_them_or_fail_with_our_message(tmp_path):
    """Every file reads to exactly the csv module's records and lines, or fails with our message
    naming the first short and the first long row, or the line of the quote never closed: never a
    pandas message, never other data."""
    rnd, path, seen = random.Random(8), tmp_path / "f.csv", set()
    for _ in range(400):
        text = _random_csv(rnd)
        path.write_bytes(text.encode())
        kind, want = _csv_module(text)
        try:
            df, lines = raw_csv.read_csv(path, "raw/f.csv", sep=None, encoding=None, header_row=1)
            got = ("rows", lines.tolist(), df.values.tolist())
        except ConversionError as exc:
            got = ("error", [i.line for i in exc.issues], [str(i) for i in exc.issues])
        if kind == "open":
            assert got == ("error", [want], ["error: raw/f.csv:{0}: ".format(want) + NEVER_CLOSED.format(want)]), text
            seen.add("open")
            continue
        width, records = want
        short = [line for line, r in records if len(r) < width][:1]
        long = [line for line, r in records if len(r) > width][:1]
        if short or long:
            assert got[:2] == ("error", short + long), text
            assert all(re.fullmatch(_WIDTH_ERROR.format(w=width), m, re.S) for m in got[2]), (text, got)
            seen.add("width")
        else:
            assert got == ("rows", [line for line, _ in records], [r for _, r in records]), text
            seen.add("rows")
    assert seen == {"open", "width", "rows"}


# ====================================================================== 4. workbooks

def _workbook(path: Path, rows: list[list], errors: dict | None = None) -> None:
    """rows from sheet row 1; errors: {'C5': '#DIV/0!'} written as error cells (t="e")."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "CM"
    for r in rows:
        ws.append(r)
    for ref, err in (errors or {}).items():
        ws[ref] = err
        ws[ref].data_type = "e"
    wb.save(path)


ERROR_VALUES = ["#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"]


@pytest.fixture(params=["calamine", "openpyxl"])
def engine(request, monkeypatch):
    if request.param == "openpyxl":      # the fallback when python-calamine is not installed
        monkeypatch.setitem(sys.modules, "python_calamine", None)
    return request.param


def test_excel_error_cells_and_formulas_without_a_saved_result(tmp_path, engine):
    path = tmp_path / "cm.xlsx"
    rows = [["Labels", "=1/0"],                   # row 1, above the header: not data, not checked
            ["SUBJID", "TRT", "DOSE"],            # row 2: the header
            ["101", "ASPIRIN", 5],
            ["102", "IBUPROFEN", "=C3*2"]]        # C4: openpyxl saves no result for a formula
    rows += [[str(103 + i), "X", None] for i in range(len(ERROR_VALUES))]      # rows 5-11
    _workbook(path, rows, {f"C{5 + i}": e for i, e in enumerate(ERROR_VALUES)})
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/cm.xlsx", header_row=2)
    assert [str(i) for i in info.value.issues] == [
        "error: raw/cm.xlsx:4: sheet 'CM' cell C4 (column DOSE) holds the formula =C3*2 without a saved "
        "result (the program that wrote the workbook did not calculate it): open and save it in a "
        "spreadsheet program, or export values"] + [
        f"error: raw/cm.xlsx:{5 + i}: sheet 'CM' cell C{5 + i} (column DOSE) holds the error value {e}: "
        "correct it in the workbook" for i, e in enumerate(ERROR_VALUES)]


def test_excel_errors_through_the_conversion(tmp_path):
    buf = io.BytesIO()
    _workbook(buf, [["SUBJID", "TRT"], ["101", "ASPIRIN"], ["102", None]], {"B3": "#N/A"})
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping("{file: raw/cm.xlsx, sheet: CM}")},
                           raw={"raw/cm.xlsx": buf.getvalue()})
    assert [str(i) for i in sk.conversion_error(folder).issues] == [
        "error: raw/cm.xlsx:3: sheet 'CM' cell B3 (column TRT) holds the error value #N/A: correct it in "
        "the workbook" + SOURCE]


def test_many_bad_cells_are_listed_by_line_after_the_first_twenty(tmp_path):
    path = tmp_path / "cm.xlsx"
    _workbook(path, [["SUBJID", "DOSE"]] + [[str(i), None] for i in range(25)],
              {f"B{r}": "#N/A" for r in range(2, 27)})
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/cm.xlsx")
    text = [str(i) for i in info.value.issues]
    assert len(text) == 21
    assert text[19] == ("error: raw/cm.xlsx:21: sheet 'CM' cell B21 (column DOSE) holds the error value "
                        "#N/A: correct it in the workbook")
    assert text[20] == ("error: raw/cm.xlsx:22: sheet 'CM': 5 more cells hold an error value or a formula "
                        "without a saved result, at lines 22, 23, 24, 25, 26")


def test_xls_workbooks_are_refused(tmp_path):
    """calamine reads an error cell of any workbook as an empty value, and the binary .xls format
    cannot be scanned for error cells and unsaved formulas as the .xlsx XML is: refused, whatever
    the file holds."""
    assert read_errors(tmp_path, b"\xd0\xcf\x11\xe0 not read", "cm.xls", sheet="CM") == [
        "error: raw/cm.xls: save it as .xlsx: an .xls workbook cannot be checked for error cells (#DIV/0!, "
        "#N/A) and formulas without a saved result, which would be read as empty values"]


def test_calamine_reads_an_error_cell_as_an_empty_value(tmp_path):
    """Why .xls is refused: what calamine gives for #DIV/0! cannot be told from an empty cell."""
    pytest.importorskip("python_calamine")
    from sdtm_rA.io import raw_excel
    path = tmp_path / "cm.xlsx"
    _workbook(path, [["SUBJID", "DOSE"], ["101", None], ["102", "x"]], {"B3": "#DIV/0!"})
    assert raw_excel._calamine_frame(path, "CM", 1)[0].values.tolist() == [["101", ""], ["102", ""]]


_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/'
       'xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
       'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
       'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
         'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
         'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_BOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
         'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships"><sheets><sheet name="CM" sheetId="1" r:id="rId1"/></sheets></workbook>')
_BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
              'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
              'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
              'Target="worksheets/sheet1.xml"/></Relationships>')


def _xlsx_from_xml(path: Path, rows_xml: str, prefix: str = "") -> None:
    """A workbook whose sheet XML is written by hand (as Excel or other programs write it)."""
    ns = f'xmlns{":" + prefix if prefix else ""}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    p = prefix + ":" if prefix else ""
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}><{p}sheetData>{rows_xml}'
             f"</{p}sheetData></{p}worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("[Content_Types].xml", _CT), ("_rels/.rels", _RELS), ("xl/workbook.xml", _BOOK),
                           ("xl/_rels/workbook.xml.rels", _BOOK_RELS), ("xl/worksheets/sheet1.xml", sheet)):
            z.writestr(name, text)


def _text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


HAND_ROWS = [
    '<row r="1">' + _text("A1", "SUBJID") + _text("B1", "DOSE") + "</row>",
    '<row r="2">' + _text("A2", "101") + '<c r="B2"><f>1+1</f><v>2</v></c></row>',             # saved: fine
    '<row r="3">' + _text("A3", "102") + '<c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>',
    '<row r="4">' + _text("A4", "103") + '<c r="B4" t="str"><f>IF(1,"","x")</f><v></v></c></row>',  # ''
    '<row r="5">' + _text("A5", "104") + '<c r="B5"><f t="shared" ref="B5:B6" si="0">B2*2</f><v></v></c></row>',
    '<row r="6">' + _text("A6", "105") + '<c r="B6"><f t="shared" si="0"/></c></row>',
    '<row r="7">' + _text("A7", "106") + '<c r="B7" t="e"><v>#REF!</v></c></row>']

HAND_ERRORS = [
    "error: raw/cm.xlsx:3: sheet 'CM' cell B3 (column DOSE) holds the error value #DIV/0!, the result of "
    "the formula =1/0: correct it in the workbook",
    "error: raw/cm.xlsx:5: sheet 'CM' cell B5 (column DOSE) holds the formula =B2*2 without a saved result "
    "(the program that wrote the workbook did not calculate it): open and save it in a spreadsheet "
    "program, or export values",
    "error: raw/cm.xlsx:6: sheet 'CM' cell B6 (column DOSE) holds a shared formula without a saved result "
    "(the program that wrote the workbook did not calculate it): open and save it in a spreadsheet "
    "program, or export values",
    "error: raw/cm.xlsx:7: sheet 'CM' cell B7 (column DOSE) holds the error value #REF!: correct it in the "
    "workbook"]


@pytest.mark.parametrize("variant", ["plain", "prefixed", "no cell references"])
def test_excel_cells_as_other_programs_write_them(tmp_path, engine, variant):
    import re
    rows = "".join(HAND_ROWS)
    prefix = ""
    if variant == "prefixed":          # e.g. the Open XML SDK: <x:c>, <x:f>, ...
        prefix = "x"
        rows = re.sub(r"<(/?)(row|c|f|v|is|t)([ >/])", r"<\1x:\2\3", rows)
    elif variant == "no cell references":
        rows = re.sub(r' r="[A-Z]*\d+"', "", rows)
    path = tmp_path / "cm.xlsx"
    _xlsx_from_xml(path, rows, prefix)
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/cm.xlsx")
    assert [str(i) for i in info.value.issues] == HAND_ERRORS


def test_excel_formulas_with_saved_results_are_read(tmp_path, engine):
    path = tmp_path / "cm.xlsx"
    _xlsx_from_xml(path, "".join(HAND_ROWS[:2] + [HAND_ROWS[3]]))     # sheet row 3 is empty
    assert values(sources.read_table(path, "raw/cm.xlsx")) == [["101", "2", 2], ["", "", 3], ["103", "", 4]]


# ====================================================================== 5. repeated names

def test_repeated_names_in_a_header_row_below_labels(tmp_path):
    # pandas renames the second 'Position' to 'Position.1' before any check could see it
    raw = "Label,Label 2,Label 3\nPosition,Position,X\n1,2,3\n"
    assert read_errors(tmp_path, raw, header_row=2) == [
        "error: raw/x.csv:2: the column name Position (columns 1 and 2) is used more than once; each column "
        "needs its own name"]
    path = tmp_path / "cm.xlsx"
    _workbook(path, [["Label", "Label 2"], ["Position", " Position "], ["1", "2"]])   # the same once stripped
    for calamine in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not calamine:
                mp.setitem(sys.modules, "python_calamine", None)
            with pytest.raises(ConversionError) as info:
                sources.read_table(path, "raw/cm.xlsx", header_row=2)
        assert [str(i) for i in info.value.issues] == [
            "error: raw/cm.xlsx:2: the column name Position (columns 1 and 2) is used more than once; each "
            "column needs its own name"]


@pytest.mark.parametrize("others", [["AETERX"], ["AETERX", "AETERY"]])
def test_repeated_variable_name_in_an_xpt_file(tmp_path, others):
    # pyreadstat renames a second AETERM to AETERM_duplicated1, and drops a third one altogether
    pyreadstat = pytest.importorskip("pyreadstat")
    path = tmp_path / "ae.xpt"
    pyreadstat.write_xport(pd.DataFrame({name: ["a"] for name in ["AETERM"] + others}), str(path),
                           file_format_version=5, table_name="AE")
    data = path.read_bytes()
    for name in others:                  # the other variables now have the same name
        assert data.count(name.encode()) == 1
        data = data.replace(name.encode(), b"AETERM")
    path.write_bytes(data)
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/ae.xpt")
    where = "variables 1 and 2" if len(others) == 1 else "variables 1, 2 and 3"
    assert [str(i) for i in info.value.issues] == [
        f"error: raw/ae.xpt: the variable name AETERM ({where}) is used more than once; each variable "
        "needs its own name"]


def test_repeated_variable_name_in_a_sas7bdat_file(tmp_path):
    data = (Path(__file__).parent / "data" / "cm.sas7bdat").read_bytes()
    # the column-name text of tests/data/cm.sas7bdat holds 'SUBJID\0\0TRT\0DOSECMSTDAT'; DOSE (4 bytes)
    # becomes 'TRT\0', the same name as the second variable
    assert data.count(b"TRT\x00DOSE") == 1
    path = tmp_path / "cm.sas7bdat"
    path.write_bytes(data.replace(b"TRT\x00DOSE", b"TRT\x00TRT\x00"))
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/cm.sas7bdat")
    assert [str(i) for i in info.value.issues] == [
        "error: raw/cm.sas7bdat: the variable name TRT (variables 2 and 3) is used more than once; each "
        "variable needs its own name"]


def test_a_workbook_whose_header_row_is_blank(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "CM"
    ws.append([])
    ws.append([])
    ws.append(["SUBJID", "TRT"])
    ws.append(["101", "ASPIRIN"])
    path = tmp_path / "cm.xlsx"
    wb.save(path)
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/cm.xlsx")
    assert [str(i) for i in info.value.issues] == [
        "error: raw/cm.xlsx:1: sheet 'CM' row 1, the header row, is blank: the column names must be there "
        "(set `header_row:` to the row that holds them)"]
    assert list(sources.read_table(path, "raw/cm.xlsx", header_row=3)["TRT"]) == ["ASPIRIN"]


def test_decimal_commas_and_points_in_one_column_are_refused(tmp_path):
    raw = "SUBJID;TEST;RESULT\n101;CRP;<0,5\n101;ESR;32\n102;ESR;1.234\n102;CRP;1,25\n"
    path = tmp_path / "lb.csv"
    path.write_text(raw, encoding="utf-8")
    with pytest.raises(ConversionError) as info:
        sources.read_table(path, "raw/lb.csv", sep=";", decimal=",")
    assert [str(i) for i in info.value.issues] == [
        "error: raw/lb.csv:4: column RESULT holds decimal commas ('<0,5') and decimal points ('1.234' at "
        "line 4) in a file read with `decimal: \",\"`: a point may be a thousands separator there, so the "
        "number cannot be read with certainty; correct the export"]
    path.write_text(raw.replace("1.234", "1234"), encoding="utf-8")
    assert list(sources.read_table(path, "raw/lb.csv", sep=";", decimal=",")["RESULT"]) == [
        "<0.5", "32", "1234", "1.25"]
    path.write_text("SUBJID;RESULT\n101;\u0664\u0666,5\n", encoding="utf-8")      # Arabic-Indic digits
    assert list(sources.read_table(path, "raw/lb.csv", sep=";", decimal=",")["RESULT"]) == ["\u0664\u0666,5"]
