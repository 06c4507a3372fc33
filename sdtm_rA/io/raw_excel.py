"""Workbook sheets (.xlsx/.xlsm) as text columns. calamine (Rust) reads large sheets ~7x faster than
openpyxl, which builds a Python object per cell; openpyxl remains the fallback. Both give an error
cell (#DIV/0!) or a formula without a saved result as a plain value (calamine: an empty one), so the
sheet's XML is scanned for them, and each is an error naming the sheet, the cell and the line.

Old binary .xls workbooks are refused: their cells are not XML and cannot be scanned so, and error
cells would come out as empty values.
"""
from __future__ import annotations

import html
import re
import zipfile

import numpy as np
import pandas as pd

from ..errors import ConversionError, Issue, rows_text
from .raw_csv import unique_names


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


def read_excel(path, display, sheet, header_row) -> pd.DataFrame:
    """One sheet of a workbook as text, its names checked, its cells checked (`_check_cells`)."""
    if path.suffix.lower() == ".xls":
        raise ConversionError([Issue("error", "save it as .xlsx: an .xls workbook cannot be checked for "
                                     "error cells (#DIV/0!, #N/A) and formulas without a saved result, "
                                     "which would be read as empty values", file=display)])
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
    if len(df.columns) and all(c == f"Unnamed: {i}" for i, c in enumerate(df.columns)):
        raise ConversionError([Issue("error", f"sheet '{name}' row {header_row}, the header row, is blank: "
                                     "the column names must be there (set `header_row:` to the row that "
                                     "holds them)", file=display, line=header_row)])
    unique_names(df.columns, display, "column", header_row)
    _check_cells(path, display, name, header_row, list(df.columns), first_column)
    return df


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
    columns = [_cell_text(h).strip() or f"Unnamed: {i}" for i, h in enumerate(header)]
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
