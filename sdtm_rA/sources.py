"""Raw EDC exports → DataFrames of text, whatever shape the export came in.

Every value is read as text (a data manager's '007' stays '007'; numbers are parsed later, where a
mapping asks for one, so that a bad number can be reported with its line). Each frame carries two
bookkeeping columns, ``__file__`` and ``__line__``, so that any later problem names the raw line.
"""
from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConversionError, Issue, Issues, rows_text, shown

FILE = "__file__"
LINE = "__line__"
_DECIMAL_COMMA = re.compile(r"^\s*([<>]=?)?\s*-?\d+,\d+\s*$")


#: Workbooks: parsing their XML is by far the slowest read (a million-row sheet takes tens of
#: seconds), so a conversion starts reading them in the background (see `Prefetch`).
SLOW_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def _read_key(path: Path, options: dict) -> tuple:
    return (str(Path(path).resolve()), tuple(sorted((k, repr(v)) for k, v in options.items())))


def _read_in_child(conn, path, display, options) -> None:
    Prefetch.active = None
    try:
        conn.send(("ok", read_table(path, display, **options)))
    except ConversionError as exc:
        conn.send(("error", exc.issues))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent with the file
        conn.send(("error", [Issue("error", f"cannot read: {type(exc).__name__}: {exc}", file=display)]))
    finally:
        conn.close()


class Prefetch:
    """Raw files read by forked processes while the conversion reads, checks and builds the rest.

    `start()` begins reading a file with the very options `read_table` will later be called with;
    `read_table` then takes the result (waiting if it is not there yet) instead of reading the file
    again. The data come back pickled through a pipe: for a large workbook that costs a second or
    two against the tens of seconds the parsing takes. Where the platform cannot fork, nothing is
    prefetched and `read_table` reads as usual.
    """

    active: "Prefetch | None" = None

    def __init__(self):
        from .xpt import fork_context
        self._ctx = fork_context()
        self._running: dict = {}

    def start(self, path: Path, display: str, **options) -> bool:
        if self._ctx is None:
            return False
        key = _read_key(path, options)
        if key in self._running:
            return True
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_read_in_child, args=(send, path, display, options), daemon=True)
        proc.start()
        send.close()
        self._running[key] = (proc, recv)
        return True

    def ready(self, path: Path, options: dict) -> bool:
        """True when this read has finished (or was never started): taking it will not wait."""
        item = self._running.get(_read_key(path, options))
        return item is None or item[1].poll()

    def take(self, path: Path, options: dict):
        """The prefetched frame, or None when this read was not prefetched."""
        item = self._running.pop(_read_key(path, options), None)
        if item is None:
            return None
        proc, recv = item
        try:
            status, value = recv.recv()
        except EOFError:
            status, value = "error", [Issue("error", "cannot read: the reading process ended without a result",
                                            file=str(path))]
        finally:
            recv.close()
            proc.join()
        if status == "error":
            raise ConversionError(value)
        return value

    def __enter__(self):
        Prefetch.active = self
        return self

    def __exit__(self, *exc):
        Prefetch.active = None
        for proc, recv in self._running.values():
            proc.terminate()
            proc.join()
            recv.close()
        self._running.clear()


def read_table(path: Path, display: str, *, sep: str | None = None, encoding: str | None = None,
               header_row: int = 1, sheet: str | int | None = None, decimal: str = ".") -> pd.DataFrame:
    """One raw file as text columns, with ``__file__``/``__line__``.

    header_row: 1-based line (or sheet row) holding the column names; rows above it (e.g. a row of
    item labels that some EDCs put above the names) are skipped. decimal: ',' turns values that look
    like decimal-comma numbers ('1,25', '<0,5') into decimal-point ones; nothing else is touched.
    ``__line__`` is the file line where the record starts (a quoted value may span lines), the sheet
    row of a workbook, the observation number of a SAS file.
    """
    suffix = path.suffix.lower()
    if Prefetch.active is not None:
        options = dict(sep=sep, encoding=encoding, header_row=header_row, sheet=sheet, decimal=decimal)
        ready = Prefetch.active.take(path, options)
        if ready is not None:
            return ready
    if not path.exists():
        raise ConversionError([Issue("error", "raw file not found", file=display)])
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            df, lines = _read_csv(path, display, sep=sep, encoding=encoding, header_row=header_row)
        elif suffix in SLOW_SUFFIXES:
            df = _read_excel(path, display, sheet, header_row)
            lines = np.arange(header_row + 1, header_row + 1 + len(df))
        elif suffix in (".sas7bdat", ".xpt"):
            df = _read_sas(path, display, encoding)
            lines = np.arange(1, len(df) + 1)
        else:
            raise ConversionError([Issue("error", f"unsupported raw file type '{suffix}' "
                                         "(use .csv, .txt, .tsv, .xlsx, .sas7bdat or .xpt)", file=display)])
    except ConversionError:
        raise
    except ValueError as exc:  # e.g. unknown worksheet
        raise ConversionError([Issue("error", f"cannot read: {exc}", file=display)])
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing input problem
        raise ConversionError([Issue("error", f"cannot read: {type(exc).__name__}: {exc}", file=display)])

    df.columns = [str(c).strip() for c in df.columns]
    if suffix in (".sas7bdat", ".xpt"):
        _unique_names(df.columns, display, "variable")
    else:
        _unique_names(df.columns, display, "column", header_row)
    if df.empty:
        raise ConversionError([Issue("error", "raw file has a header but no data rows", file=display)])
    df = df.fillna("").astype(str)
    for col in df.columns:
        df[col] = df[col].str.strip()
    if decimal == ",":
        for col in df.columns:
            codes, uniques = pd.factorize(df[col])
            uniq = pd.Series(uniques, dtype=object).astype(str)
            hits = uniq.str.match(_DECIMAL_COMMA)
            if hits.any():  # decided once per distinct value, then mapped back through the codes
                fixed = uniq.where(~hits, uniq.str.replace(",", ".", regex=False)).to_numpy()
                df[col] = fixed[codes]
    df[FILE] = display
    df[LINE] = lines
    return df.reset_index(drop=True)


def _unique_names(names, display: str, what: str, line: int | None = None) -> None:
    counts = Counter(names)
    dupes = sorted(c for c, k in counts.items() if k > 1)
    if dupes:
        raise ConversionError([Issue("error", f"duplicate {what} names {dupes}", file=display, line=line)])


def _read_sas(path: Path, display: str, encoding: str | None) -> pd.DataFrame:
    """A SAS file as text. pyreadstat renames a repeated variable name ('X' → 'X_duplicated1') with
    only a warning; here it is an error."""
    import warnings

    import pyreadstat
    reader = pyreadstat.read_sas7bdat if path.suffix.lower() == ".sas7bdat" else pyreadstat.read_xport
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df, _ = reader(str(path), encoding=encoding)
    renamed = [m.groups() for w in caught for m in [_RENAMED.match(str(w.message))] if m]
    invented = {new for _, new in renamed}
    _unique_names([c for c in df.columns if c not in invented] + [old for old, _ in renamed], display, "variable")
    return _as_text(df)


_RENAMED = re.compile(r"column '(.*)' is duplicated, renamed to '(.*)'")


# ------------------------------------------------------------------------------------------------ CSV

def _read_csv(path: Path, display: str, *, sep, encoding, header_row) -> tuple[pd.DataFrame, np.ndarray]:
    """A delimited text file as text columns, and the file line where each record starts.

    The records are found first (`_records`), so that a row with more or fewer fields than the
    header or a quote never closed is an error naming its line, never a shifted or padded row; pandas
    then parses the data, which are known to be well formed.
    """
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, whatever the declared encoding
        raw = raw[3:]
    if not raw.strip():
        raise ConversionError([Issue("error", "raw file is empty", file=display)])
    utf8 = encoding is None or encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
    try:
        text = raw.decode("utf-8" if encoding is None else encoding)
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise ConversionError([Issue("error", f"cannot decode as {encoding}: {exc}", file=display)])
        line = raw[: exc.start].count(b"\n") + 1
        raise ConversionError([Issue(
            "error", f"not UTF-8 (byte 0x{raw[exc.start]:02x}); declare the file's encoding, "
            "e.g. `encoding: latin-1`", file=display, line=line)])
    except LookupError as exc:
        raise ConversionError([Issue("error", f"cannot decode as {encoding}: {exc}", file=display)])
    data = raw if utf8 else text.removeprefix("\ufeff").encode("utf-8")   # what the scan and pandas read
    del text
    if sep is None:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    if len(sep) != 1 or sep in '"\r\n':
        raise ConversionError([Issue("error", f"sep {sep!r}: a separator is one character, not a quote "
                                     "or a line end", file=display)])
    lines = _Lines(data)
    recs = _records(data, sep, lines, display) or _records_by_csv(data, sep, lines, display)
    h = _header_record(recs, header_row, lines, display)
    header = recs.text(data, h)
    if "\x00" in header:
        raise ConversionError([Issue("error", "the header row holds NUL characters (byte 0x00): is the file "
                                     "UTF-16? declare its encoding, e.g. `encoding: utf-16`", file=display,
                                     line=header_row)])
    names = next(csv.reader(io.StringIO(header, newline=""), delimiter=sep))
    names = [n.strip() or f"Unnamed: {i}" for i, n in enumerate(names)]
    _unique_names(names, display, "column", header_row)
    _check_widths(recs, h, len(names), data, display)
    n_data = len(recs.line) - h - 1
    if n_data == 0:
        df = pd.DataFrame(columns=names, dtype=str)
    else:
        df = pd.read_csv(io.BytesIO(data[recs.start[h + 1]:]), sep=sep, header=None, names=names,
                         index_col=False, dtype=str, keep_default_na=False, na_values=[],
                         skip_blank_lines=False, encoding="utf-8", engine="c")
        if len(df) != n_data:   # the two readings disagree: never guess the lines
            raise ConversionError([Issue("error", f"cannot tell the records apart: {n_data} records "
                                         f"found, {len(df)} rows parsed", file=display)])
    keep = ~recs.blank[h + 1:]
    line = recs.line[h + 1:][keep]
    if not keep.all():                      # a blank line is not a record
        df = df[keep]
    if b"\x00" in data:
        _no_nul(df, line, display)
    return df, line


class _Lines:
    """The file's line ends (LF, CRLF or a lone CR, as pandas splits lines): line numbers, line texts."""

    def __init__(self, data: bytes):
        a = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(a == 10)
        if b"\r" in data:
            cr = np.flatnonzero(a == 13)
            lone = cr[(cr + 1 == len(a)) | (a[np.minimum(cr + 1, len(a) - 1)] != 10)]
            if len(lone):
                ends = np.union1d(ends, lone)
        self.a, self.ends = a, ends
        self.count = len(ends) + (len(a) > 0 and a[-1] not in (10, 13))

    def line_of(self, pos):
        """1-based line of byte offset(s) `pos`."""
        return np.searchsorted(self.ends, pos) + 1


class _Recs:
    """Records of a delimited file: start line, byte span (line end excluded), fields, blank."""

    def __init__(self, a: np.ndarray, data: bytes, line, start, end, fields):
        end = end - ((end > start) & (a[np.maximum(end - 1, 0)] == 13))    # the CR of a CRLF
        self.line, self.start, self.end, self.fields = line, start, end, fields
        # a record of nothing but spaces and tabs is a blank line, not a record of data
        self.blank = (fields == 1) & ((end == start) | np.isin(a[np.minimum(start, len(a) - 1)], (9, 32)))
        for i in np.flatnonzero(self.blank & (end > start)):
            self.blank[i] = not data[start[i]:end[i]].strip(b" \t")

    def text(self, data: bytes, i: int) -> str:
        return data[self.start[i]:self.end[i]].decode("utf-8", "replace")


#: Up to this many quotes per line, the separators inside quotes are found per quoted value;
#: beyond (e.g. every value quoted), through the running parity of the quotes, byte by byte.
_SPARSE_QUOTES = 2


def _records(data: bytes, sep: str, lines: _Lines, display: str) -> _Recs | None:
    """The records, vectorised over the bytes: a line end or separator counts unless an odd number
    of quotes precedes it. That is how pandas splits when every quote opens a value, closes it or
    doubles another (RFC 4180), or when no value starts with a quote (then every quote is text, as
    in '12" ruler'); otherwise None: `_records_by_csv` does it."""
    a, s, n = lines.a, ord(sep), len(lines.a)
    if s > 127:
        return None
    ends, seps, quoted = lines.ends, None, None
    if b'"' in data:
        q = np.flatnonzero(a == 0x22)
        opening, closing = q[0::2], q[1::2]
        edge = np.zeros(256, bool)
        edge[[s, 10, 13, 0x22]] = True
        if not ((opening == 0) | edge[a[opening - 1]]).all() or \
                not ((closing == n - 1) | edge[a[np.minimum(closing + 1, n - 1)]]).all():
            edge[0x22] = False
            if ((q == 0) | edge[a[q - 1]]).any():
                return None                 # quoted values and quotes inside unquoted ones
        elif len(q) % 2:
            line = int(lines.line_of(q[-1]))
            raise ConversionError([Issue("error", f"the quoted value that starts on line {line} is never "
                                         "closed (a '\"' is missing)", file=display, line=line)])
        elif len(q) <= _SPARSE_QUOTES * (len(ends) + 1):
            ends = ends[np.searchsorted(q, ends) % 2 == 0]
            seps = np.flatnonzero(a == s)
            quoted = opening, np.searchsorted(seps, closing) - np.searchsorted(seps, opening)
        else:
            inside = np.logical_xor.accumulate(a == 0x22)
            ends = ends[~inside[ends]]
            seps = np.flatnonzero((a == s) & ~inside)
    if seps is None:
        seps = np.flatnonzero(a == s)
    start = np.concatenate(([0], ends + 1))
    end = np.concatenate((ends, [n]))
    if start[-1] >= n:                      # the last line end closes the last record
        start, end = start[:-1], end[:-1]
    # no separator lies on a line end, so a record's separators are those before its end
    fields = np.diff(np.searchsorted(seps, end), prepend=0) + 1
    if quoted is not None:                  # less the separators inside its quoted values
        fields -= np.bincount(np.searchsorted(end, quoted[0]), quoted[1], len(end)).astype(np.int64)
    line = np.arange(1, len(start) + 1) if len(ends) == len(lines.ends) else lines.line_of(start)
    return _Recs(a, data, line, start, end, fields)


def _records_by_csv(data: bytes, sep: str, lines: _Lines, display: str) -> _Recs:
    """The records through Python's csv module, whose rules pandas' tokenizer follows (a quote inside
    an unquoted value is text): a loop per record, for irregularly quoted files only."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(data) + 1))
    fields, last = [], [0]
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=sep, strict=False)
        for row in reader:
            fields.append(len(row) or 1)
            last.append(reader.line_num)
    except csv.Error as exc:
        raise ConversionError([Issue("error", f"cannot read the record that starts on line {last[-1] + 1}: "
                                     f"{exc}", file=display, line=last[-1] + 1)])
    finally:
        csv.field_size_limit(limit)
    last = np.array(last, np.int64)
    line_start = np.concatenate(([0], lines.ends + 1))
    line_end = np.append(lines.ends, len(data))
    return _Recs(lines.a, data, last[:-1] + 1, line_start[last[:-1]], line_end[last[1:] - 1],
                 np.array(fields, np.int64))


def _header_record(recs: _Recs, header_row: int, lines: _Lines, display: str) -> int:
    """The record on line `header_row`: it must exist, start there and not be blank."""
    h = int(np.searchsorted(recs.line, header_row))
    if h < len(recs.line) and recs.line[h] == header_row and not recs.blank[h]:
        return h
    if h < len(recs.line) and recs.line[h] == header_row:
        why = "is blank"
    elif header_row > lines.count:
        why = f"is past the end of the file ({lines.count} lines)"
    else:
        why = f"is inside the quoted value that starts on line {recs.line[h - 1]}"
    raise ConversionError([Issue("error", f"line {header_row}, the header row, {why}", file=display,
                                 line=header_row)])


def _check_widths(recs: _Recs, h: int, width: int, data: bytes, display: str) -> None:
    """Every data record has as many fields as the header: a cut row is not padded, an extra field
    (an unquoted separator in a value) does not shift the columns."""
    fields = recs.fields[h + 1:]
    bad = (fields != width) & ~recs.blank[h + 1:]
    if not bad.any():
        return
    issues = []
    for wrong, word, hint in ((fields < width, "fewer", "a row cut short?"),
                              (fields > width, "more", "a separator inside a value that is not quoted?")):
        idx = np.flatnonzero(bad & wrong) + h + 1
        if not len(idx):
            continue
        i = idx[0]
        first = f"line {recs.line[i]} has {recs.fields[i]}"
        if len(idx) == 1:
            plural = "" if recs.fields[i] == 1 else "s"
            msg = f"{first} field{plural}, the header (line {recs.line[h]}) has {width}"
        else:
            msg = (f"{len(idx)} rows have {word} fields than the header (line {recs.line[h]}, {width} "
                   f"fields): {rows_text(recs.line[idx])}; {first}")
        issues.append(Issue("error", f"{msg}: {shown(recs.text(data, i), 80)} ({hint})", file=display,
                            line=int(recs.line[i])))
    raise ConversionError(issues)


def _no_nul(df: pd.DataFrame, lines: np.ndarray, display: str) -> None:
    """A NUL character cannot go into an XPT file (it ends a value there) and usually means a damaged
    export, or a UTF-16 file read as UTF-8."""
    issues = []
    for col in df.columns:
        hit = df[col].str.contains("\x00", regex=False, na=False).to_numpy()
        if hit.any():
            at = lines[hit]
            issues.append(Issue("error", f"column {col} holds a NUL character (byte 0x00) at "
                                f"{rows_text(at)}: {shown(df[col].to_numpy()[hit][0], 80)} (a damaged export? "
                                "an XPT file cannot hold it)", file=display, line=int(at[0])))
    if issues:
        raise ConversionError(issues)


# ------------------------------------------------------------------------------------------------ workbooks

def _sheet_name(names: list[str], sheet: str | int | None) -> str:
    if sheet is None:
        sheet = 0
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise ValueError(f"Worksheet index {sheet} is invalid, {len(names)} worksheets found")
        return names[sheet]
    if sheet not in names:
        raise ValueError(f"Worksheet named '{sheet}' not found")
    return sheet


def _read_excel(path, display, sheet, header_row) -> pd.DataFrame:
    """One sheet of a workbook as text. calamine (Rust) reads large sheets ~7x faster than
    openpyxl, which builds a Python object per cell; openpyxl remains the fallback. Both give an
    error cell (#DIV/0!) or a formula without a saved result as a plain value, so the sheet's XML is
    checked for them (`_bad_cells`)."""
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        import openpyxl
        wb = openpyxl.load_workbook(path, read_only=True)
        name = _sheet_name(wb.sheetnames, sheet)
        wb.close()
        raw = pd.read_excel(path, engine="openpyxl", sheet_name=name, dtype=str, header=None,
                            skiprows=header_row - 1, keep_default_na=False, na_values=[])
        first_column = 0
        if raw.empty:
            df = pd.DataFrame()
        else:   # names taken as written: pandas would rename a repeated 'X' to 'X.1'
            df = raw.iloc[1:].reset_index(drop=True)
            df.columns = [str(h).strip() or f"Unnamed: {i}" for i, h in enumerate(raw.iloc[0])]
    else:
        df, name, first_column = _calamine_frame(path, sheet, header_row)
    if path.suffix.lower() != ".xls":   # .xls (BIFF) is not XML: not checked
        _check_cells(path, display, name, header_row, list(df.columns), first_column)
    return df


def _read_calamine(path, sheet, header_row) -> pd.DataFrame:
    """The sheet as calamine gives it, unchecked."""
    return _calamine_frame(path, sheet, header_row)[0]


def _cell_text(v) -> str:
    """A cell as pandas' read_excel(dtype=str) gives it: whole floats without '.0', dates as
    Timestamps print, empty as ''."""
    if v is None:
        return ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else str(v)
    if isinstance(v, bool):
        return str(v)
    import datetime as _dt
    if isinstance(v, _dt.date):
        return str(pd.Timestamp(v))
    if isinstance(v, _dt.timedelta):
        return str(pd.Timedelta(v))
    return str(v)


def _calamine_frame(path, sheet, header_row) -> tuple[pd.DataFrame, str, int]:
    """The sheet's rows streamed from calamine into one text column at a time: a million-row sheet
    never exists as a list of row lists plus a parsed copy (what pandas' read_excel builds, about
    three times the memory of the result)."""
    from python_calamine import CalamineWorkbook
    wb = CalamineWorkbook.from_path(str(path))
    sheet = _sheet_name(wb.sheet_names, sheet)
    data_sheet = wb.get_sheet_by_name(sheet)
    first_column = data_sheet.start[1] if data_sheet.start else 0   # calamine skips empty columns on the left
    rows = data_sheet.iter_rows()
    for _ in range(header_row - 1):
        next(rows, None)
    header = next(rows, None)
    if header is None:
        return pd.DataFrame(), sheet, first_column
    columns = [_cell_text(h) or f"Unnamed: {i}" for i, h in enumerate(header)]
    width = len(columns)
    parts: list[list] = [[] for _ in range(width)]   # text columns, a chunk of rows at a time
    cells: list[list] = [[] for _ in range(width)]
    n = last = 0

    def flush():
        for i in range(width):
            parts[i].append(pd.Series([c if type(c) is str else _cell_text(c) for c in cells[i]], dtype=str))
            cells[i] = []

    for row in rows:
        if len(row) < width:
            row = list(row) + [""] * (width - len(row))
        n += 1
        if any(c != "" and c is not None for c in row[:width]):
            last = n                    # trailing blank rows are not data (as in pandas)
        for i in range(width):
            cells[i].append(row[i])
        if len(cells[0]) >= _EXCEL_CHUNK:
            flush()
    flush()
    data = {i: pd.concat(parts[i], ignore_index=True).iloc[:last] for i in range(width)}
    df = pd.DataFrame(data, index=pd.RangeIndex(last))
    df.columns = columns
    return df, sheet, first_column


_EXCEL_CHUNK = 100_000


# ------------------------------------------------------------------------------------------------ cells

_CELL_LIMIT = 20            # cells reported one by one; the rest as a list of lines
_XML_CHUNK = 1 << 23
_ATTR = re.compile(rb'\s(r|t)\s*=\s*["\']([^"\']*)["\']')
_REF = re.compile(r"([A-Z]+)(\d+)")
_TAG_END = (b" ", b">", b"\t", b"\r", b"\n", b"/")     # what may follow a tag's name


def _check_cells(path, display: str, sheet: str, header_row: int, columns: list, first_column: int) -> None:
    """Error cells and formulas without a saved result, from the header row down, as errors naming
    the workbook, the sheet, the cell, its column and line, and the formula."""
    try:
        bad = _bad_cells(path, sheet, header_row)
    except (KeyError, OSError, ValueError, SyntaxError, zipfile.BadZipFile) as exc:  # XML ParseError: SyntaxError
        raise ConversionError([Issue("error", f"cannot check the cells of sheet '{sheet}' for errors "
                                     f"and formulas: {type(exc).__name__}: {exc}", file=display)])
    if not bad:
        return
    issues = []
    for row, col, ref, error, formula in bad[:_CELL_LIMIT]:
        at = col - first_column
        where = f"sheet '{sheet}' cell {ref}" + (f" (column {columns[at]})" if 0 <= at < len(columns) else "")
        what = f"the formula ={formula}" if formula else "a shared formula"
        if error:
            result = "" if formula is None else f", the result of {what}"
            msg = f"{where} holds the error value {error}{result}: correct it in the workbook"
        else:
            msg = (f"{where} holds {what} without a saved result (the program that wrote the workbook "
                   "did not calculate it): open and save it in a spreadsheet program, or export values")
        issues.append(Issue("error", msg, file=display, line=row))
    rest = bad[_CELL_LIMIT:]
    if rest:
        issues.append(Issue("error", f"sheet '{sheet}': {len(rest)} more cells hold an error value or a "
                            f"formula without a saved result, at {rows_text([r[0] for r in rest])}",
                            file=display, line=rest[0][0]))
    raise ConversionError(issues)


def _sheet_part(zf: "zipfile.ZipFile", sheet: str) -> str:
    """The zip member holding the XML of the named sheet (workbook part → sheet id → relationship)."""
    import posixpath
    import xml.etree.ElementTree as ET

    def local(tag):
        return tag.rsplit("}", 1)[-1]

    def target(rels_part, base, want):
        for rel in ET.fromstring(zf.read(rels_part)):
            if want(rel):
                t = rel.get("Target")
                return t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join(base, t))
        raise KeyError(f"no relationship in {rels_part}")

    book = target("_rels/.rels", "", lambda r: r.get("Type", "").endswith("/officeDocument"))
    folder, name = posixpath.split(book)
    rid = next((v for el in ET.fromstring(zf.read(book)).iter() if local(el.tag) == "sheet"
                and el.get("name") == sheet for k, v in el.attrib.items() if local(k) == "id"), None)
    if rid is None:
        raise KeyError(f"no sheet '{sheet}' in {book}")
    return target(posixpath.join(folder, "_rels", name + ".rels"), folder, lambda r: r.get("Id") == rid)


def _bad_cells(path, sheet: str, header_row: int) -> list[tuple]:
    """(row, column index, reference, error value, formula) of every error cell (t="e") and every
    formula cell without a saved value (no or an empty <v>), row ≥ header_row, in sheet order.

    A streamed byte search of the sheet's XML, not a parse, and only where a cheap test says there
    may be something ('#' for an error value, '<f' for a formula): a million-row sheet without
    either costs little more than its decompression."""
    found: list[tuple] = []
    with zipfile.ZipFile(path) as zf, zf.open(_sheet_part(zf, sheet)) as fh:
        buf, pats, rows_before, numbered = b"", None, 0, True
        while True:
            block = fh.read(_XML_CHUNK)
            buf += block
            if pats is None:
                m = re.search(rb"<(\w+:)?sheetData[\s>/]", buf)
                if m is None:
                    if block:
                        continue
                    return found
                pats = _CellPatterns(m.group(1) or b"")
                buf = buf[m.start():]
                row = re.search(rb"<%srow(?=[\s>/])[^>]*>" % re.escape(m.group(1) or b""), buf)
                numbered = row is None or b"r" in dict(_ATTR.findall(row.group()))
            if block:                   # whole rows now, the rest with the next block
                cut = buf.rfind(pats.row_end)
                if cut < 0:
                    continue
                cut += len(pats.row_end)
            else:
                cut = len(buf)
            found += [c for c in pats.bad_cells(buf, cut, rows_before) if c[0] >= header_row]
            if not numbered:            # rows without 'r' are counted
                rows_before += buf.count(pats.row, 0, cut)
            if not block:
                return sorted(found)
            buf = buf[cut:]


class _CellPatterns:
    """The searches of `_bad_cells`, for the namespace prefix the sheet uses ('' or e.g. 'x:')."""

    def __init__(self, prefix: bytes):
        p = re.escape(prefix)
        self.row, self.row_end = b"<" + prefix + b"row", b"</" + prefix + b"row>"
        self.cell, self.cell_end = b"<" + prefix + b"c", b"</" + prefix + b"c>"
        self.f_word = np.frombuffer((b"<" + prefix + b"f")[-2:], np.uint16)[0]
        # a formula followed by no value, or an empty one, then the end of its cell
        self.bare_formula = re.compile(rb"<%sf(?=[\s>/])[^>]*?(?:/>|>([^<]*)</%sf>)\s*"
                                       rb"(<%sv(?:\s[^>]*?)?/>|<%sv(?:\s[^>]*)?>\s*</%sv>)?\s*</%sc>"
                                       % (p, p, p, p, p, p))
        self.formula = re.compile(rb"<%sf(?=[\s>/])[^>]*?(?:/>|>([^<]*)</%sf>)" % (p, p))
        self.value = re.compile(rb"<%sv(?:\s[^>]*)?>([^<]*)</%sv>" % (p, p))

    def _may_hold_formulas(self, buf: bytes, n: int) -> bool:
        """Whether '<f' (its last two bytes) occurs in buf[:n]: two vectorised comparisons of 16-bit
        words, at even and odd offsets (a substring search is slow in XML, where '<' is everywhere)."""
        return bool((np.frombuffer(buf, np.uint16, count=n // 2) == self.f_word).any()
                    or (np.frombuffer(buf, np.uint16, offset=1, count=(n - 1) // 2) == self.f_word).any())

    def _cell_start(self, part: bytes, pos: int) -> int:
        """Where the <c> element holding offset `pos` starts (-1: none)."""
        while True:
            pos = part.rfind(self.cell, 0, pos)
            if pos < 0 or part[pos + len(self.cell):pos + len(self.cell) + 1] in _TAG_END:
                return pos

    def bad_cells(self, part: bytes, n: int, rows_before: int) -> list[tuple]:
        """The bad cells of part[:n], which ends with a whole row."""
        from openpyxl.utils.cell import get_column_letter
        hits = [(m.start(), m) for m in self.bare_formula.finditer(part, 0, n)] \
            if self._may_hold_formulas(part, n) else []
        errors = part.find(b"#", 0, n) >= 0       # every error value starts with '#'
        for attr in (b't="e"', b"t='e'") if errors else ():
            pos = part.find(attr, 0, n)
            while pos >= 0:
                if part[pos - 1:pos] in (b" ", b"\t", b"\r", b"\n"):
                    hits.append((pos, None))
                pos = part.find(attr, pos + 1, n)
        cells = []
        for pos, m in hits:
            start = self._cell_start(part, pos)
            tag_end = part.find(b">", start)
            if start < 0 or (m is None and tag_end < pos):
                continue
            attrs = dict(_ATTR.findall(part[start:tag_end + 1]))
            if m is not None and attrs.get(b"t") == b"str" and m.group(2) is not None:
                continue        # a formula whose saved result is the empty text
            end = tag_end if part[tag_end - 1:tag_end] == b"/" else part.find(self.cell_end, tag_end, n)
            if m is None:                   # an error cell: its value, and its formula if any
                f = self.formula.search(part, tag_end, end)
                v = self.value.search(part, tag_end, end)
                error = html.unescape((v.group(1) if v else b"").decode("utf-8", "replace")) or "(none)"
            else:
                f, error = m, ""
            formula = None if f is None else html.unescape((f.group(1) or b"").decode("utf-8", "replace"))
            row, col = self._where(part, start, attrs, rows_before)
            cells.append((row, col, get_column_letter(col + 1) + str(row), error, formula))
        return cells

    def _where(self, part: bytes, start: int, attrs: dict, rows_before: int) -> tuple[int, int]:
        """Row and 0-based column of a cell: its 'r' attribute, else its place (cells and rows
        without 'r' follow one another)."""
        from openpyxl.utils.cell import column_index_from_string
        ref = _REF.fullmatch(attrs.get(b"r", b"").decode("ascii", "replace"))
        if ref:
            return int(ref.group(2)), column_index_from_string(ref.group(1)) - 1
        row_start = part.rfind(self.row, 0, start)
        row_attrs = dict(_ATTR.findall(part[row_start:part.find(b">", row_start) + 1]))
        if b"r" in row_attrs:
            row = int(row_attrs[b"r"])
        else:
            row = rows_before + part.count(self.row, 0, row_start) + 1
        return row, sum(part.count(self.cell + ch, row_start, start) for ch in _TAG_END)


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            # Formatted once per distinct number: whole numbers without '.0', others as Python repr.
            table = {v: (str(int(v)) if float(v).is_integer() else repr(float(v)))
                     for v in s.dropna().unique()}
            out[col] = s.map(table).fillna("")
        else:
            out[col] = s.fillna("").astype(str)
    return out


def drop_twin_columns(df: pd.DataFrame, suffix: str, keep: str, display: str) -> pd.DataFrame:
    """EDC exports that write a coded twin ('AESEV - Code') beside each decoded column: keep one."""
    twins = [c for c in df.columns if c.endswith(suffix) and c[: -len(suffix)] in df.columns]
    if keep == "code":
        for twin in twins:
            df[twin[: -len(suffix)]] = df[twin]
    return df.drop(columns=twins)


def report_duplicates(df: pd.DataFrame, mode: str, display: str, issues: Issues) -> pd.DataFrame:
    """Exact duplicate rows: dropped and listed (mode 'report') or refused (mode 'error')."""
    data_cols = [c for c in df.columns if c not in (FILE, LINE)]
    dup = df.duplicated(subset=data_cols, keep="first")
    if not dup.any():
        return df
    first = df.duplicated(subset=data_cols, keep=False) & ~dup
    for _, group in df[df.duplicated(subset=data_cols, keep=False)].groupby(data_cols, sort=False):
        lines = group[LINE].tolist()
        msg = f"exact duplicate rows at {rows_text(lines)}"
        if mode == "error":
            issues.error(msg + " (declare `dedupe: report` to drop the copies)", file=display,
                         line=lines[0])
        else:
            issues.warning(msg + f": kept line {lines[0]}, dropped the rest", file=display, line=lines[0])
    del first
    return df[~dup] if mode == "report" else df


def melt_wide(df: pd.DataFrame, columns: list[str], name: str, value: str) -> pd.DataFrame:
    """Wide form (one column per test) to one row per test; row order: by raw line, then column order."""
    keep = [c for c in df.columns if c not in columns]
    long = df.melt(id_vars=keep, value_vars=columns, var_name=name, value_name=value)
    order = {c: i for i, c in enumerate(columns)}
    long["__order__"] = long[name].map(order)
    long = long.sort_values([LINE, "__order__"], kind="stable").drop(columns="__order__")
    return long.reset_index(drop=True)
