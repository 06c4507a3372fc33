"""Delimited text exports (CSV, TSV) read without guessing: the records are found before pandas
parses them, so that a row with more or fewer fields than the header, a quote never closed or a NUL
byte is an error naming its file line, never a padded or shifted row; each record keeps the file line
it starts on, also after values that span lines.

Quotes are read as Python's csv module and pandas read them: a quote opens a value only at its
start, '""' inside a quoted value is one quote, and any other quote is text ('12" ruler').

Blank lines: a line without any character (two line ends in a row) is not a record; it is skipped
and the lines after it keep their numbers. Any other line is a record whatever it holds: a line of
spaces is one field, so an empty value in a one-column file, and a row with too few fields (an
error) in a wider one.
"""
from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConversionError, Issue, rows_text, shown
from .xpt import repeated_names

#: What to do about a file that is not UTF-8, for a raw file (whose mapping can say how it is encoded).
DECLARE_ENCODING = "declare the file's encoding, e.g. `encoding: latin-1`"


def unique_names(names, display: str, what: str, line: int | None = None) -> None:
    """A header whose names repeat cannot say which column a value belongs to: an error."""
    problem = repeated_names(list(names), what)
    if problem:
        raise ConversionError([Issue("error", problem, file=display, line=line)])


def read_csv(path: Path, display: str, *, sep, encoding, header_row,
             not_utf8: str = DECLARE_ENCODING) -> tuple[pd.DataFrame, np.ndarray]:
    """A delimited text file as text columns, and the file line where each record starts.

    The records are found first, so that a row with more or fewer fields than the header or a quote
    never closed is an error naming its line, never a shifted or padded row; pandas then parses the
    data, which are known to be well formed. `not_utf8`: the advice given with a file that is not
    UTF-8 (and has no declared encoding)."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, whatever the declared encoding
        raw = raw[3:]
    if not raw or raw.isspace():
        raise ConversionError([Issue("error", "the file is empty" if not raw else
                                     "the file holds nothing but blanks and line ends", file=display)])
    data = _utf8(raw, encoding, display, not_utf8)
    del raw
    if sep is None:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    if len(sep) != 1 or sep in '"\r\n':
        raise ConversionError([Issue("error", f"sep {sep!r}: a separator is one character, not a quote "
                                     "or a line end", file=display)])
    plain = _plain_lines(data, sep, header_row)
    if plain is not None:                       # every line from the header on is a record
        header, body, n_lines = plain
        names = _names(header, sep, display, header_row)
        line, keep = np.arange(header_row + 1, header_row + n_lines), None
    else:
        lines = _Lines(data)
        recs = _records(data, sep, lines, display) or _records_by_csv(data, sep, lines, display)
        h = _header_record(recs, header_row, lines, display)
        names = _names(recs.text(data, h), sep, display, header_row)
        _check_widths(recs, h, len(names), data, display)
        body = int(recs.start[h + 1]) if h + 1 < len(recs.start) else len(data)
        line, keep = recs.line[h + 1:], ~recs.blank[h + 1:]
    if len(line) == 0:
        df = pd.DataFrame(columns=names, dtype=str)
    else:
        df = pd.read_csv(io.BytesIO(data[body:]), sep=sep, header=None, names=names,
                         index_col=False, dtype=str, keep_default_na=False, na_values=[],
                         skip_blank_lines=False, encoding="utf-8", engine="c")
        if len(df) != len(line):   # the two readings disagree: never guess the lines
            raise ConversionError([Issue("error", f"cannot tell the records apart: {len(line)} records "
                                         f"found, {len(df)} rows parsed", file=display)])
    if keep is not None and not keep.all():      # a blank line is not a record
        df, line = df[keep], line[keep]
    if b"\x00" in data:
        _no_nul(df, line, display)
    return df, line


def _utf8(raw: bytes, encoding: str | None, display: str, not_utf8: str) -> bytes:
    """The file's text as UTF-8 bytes (what the scan and pandas read), or an error naming the first
    byte that is not text in the file's encoding."""
    utf8 = encoding is None or encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
    if utf8 and raw.isascii():                  # ASCII is UTF-8: no decoding needed to know it
        return raw
    try:
        text = raw.decode("utf-8" if encoding is None else encoding)
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise ConversionError([Issue("error", f"cannot decode as {encoding}: {exc}", file=display)])
        line = int(_Lines(raw).line_of(exc.start))
        raise ConversionError([Issue(
            "error", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} ({exc.reason}); "
            f"{not_utf8}", file=display, line=line)])
    except LookupError as exc:
        raise ConversionError([Issue("error", f"cannot decode as {encoding}: {exc}", file=display)])
    return raw if utf8 else text.removeprefix("\ufeff").encode("utf-8")


def _names(header: str, sep: str, display: str, header_row: int) -> list[str]:
    """The column names of the header record: present, without NUL, each once."""
    if not header.strip(" \t"):
        raise ConversionError([Issue("error", f"line {header_row}, the header row, is blank", file=display,
                                     line=header_row)])
    if "\x00" in header:
        raise ConversionError([Issue("error", "the header row holds NUL characters (byte 0x00): is the file "
                                     "UTF-16? declare its encoding, e.g. `encoding: utf-16`", file=display,
                                     line=header_row)])
    names = next(csv.reader(io.StringIO(header, newline=""), delimiter=sep))
    names = [n.strip() or f"Unnamed: {i}" for i, n in enumerate(names)]
    unique_names(names, display, "column", header_row)
    return names


@functools.lru_cache(maxsize=8)
def _all_but(sep: int) -> bytes:
    """The bytes `bytes.translate` deletes to leave a file's skeleton: separators, quotes, line feeds."""
    return bytes(b for b in range(256) if b not in (sep, 0x0A, 0x22))


def _plain_lines(data: bytes, sep: str, header_row: int) -> tuple[str, int, int] | None:
    """The common case, proved with a few C-speed passes over the bytes: every line from the header
    on is one record with the header's number of fields.

    So it is when, in the file's skeleton (its separators, quotes and line feeds only), every line
    holds the header's separators once the quoted values are taken out, and no line feed was inside
    one. Quotes that come in adjacent pairs in the skeleton can hide nothing, however they are read
    (a pair opens and closes a value or doubles a quote inside one; a quote that is text leaves the
    value unquoted); other quotes must all be text (`_quote_starts_a_value`) or all regular
    (`_regular_quotes`, `_unquoted`). Returns (header text, offset of the first data line, lines from
    the header on), or None for anything else (a lone CR, blank lines, line ends inside quotes,
    irregular quotes, rows of another width, quotes above the header): the general scan decides, and
    names any error."""
    if not sep.isascii():
        return None
    start = 0
    for _ in range(header_row - 1):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return None
    if start >= len(data) or data.find(b'"', 0, start) >= 0:
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None                              # a lone CR ends a line too
    part = data[start:] if start else data
    skeleton = part.translate(None, _all_but(ord(sep)))
    if b'"' in skeleton:
        paired = skeleton.replace(b'""', b"")
        skeleton = paired if b'"' not in paired else _unquoted(part, skeleton, ord(sep))
        if skeleton is None:
            return None
    if not part.endswith(b"\n"):
        skeleton += b"\n"
    unit = skeleton[:skeleton.index(b"\n") + 1]      # the header's separators and its line end
    if skeleton.count(unit) * len(unit) != len(skeleton):
        return None
    if len(unit) == 1 and (part.startswith((b"\n", b"\r\n")) or b"\n\n" in part or b"\n\r\n" in part):
        return None                              # blank lines in a one-column file
    end = part.find(b"\n")
    end = len(part) if end < 0 else end
    header = part[:end].removesuffix(b"\r").decode("utf-8")
    return header, min(start + end + 1, len(data)), len(skeleton) // len(unit)


def _unquoted(part: bytes, skeleton: bytes, sep: int) -> bytes | None:
    """The skeleton without its quoted values: when no value starts with a quote (every quote is
    text), or when the quotes are regular (`_regular_quotes`) and no quoted value holds a line end
    (a record over several lines); else None."""
    a = np.frombuffer(part, np.uint8)
    q = np.flatnonzero(a == 0x22)
    if not _quote_starts_a_value(a, q, sep):
        return skeleton.replace(b'"', b"")
    if len(q) % 2 or not _regular_quotes(a, q, sep):
        return None
    sk = np.frombuffer(skeleton, np.uint8)
    quote = sk == 0x22
    quoted = np.logical_xor.accumulate(quote) | quote     # from an opening quote to its closing one
    if (sk[quoted] == 10).any():
        return None
    return sk[~quoted].tobytes()


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
    """Records of a delimited file: start line, byte span (line end excluded), fields, blank (a line
    without any character, which is not a record)."""

    def __init__(self, a: np.ndarray, line, start, end, fields):
        end = end - ((end > start) & (a[np.maximum(end - 1, 0)] == 13))    # the CR of a CRLF
        self.line, self.start, self.end, self.fields = line, start, end, fields
        self.blank = end == start

    def text(self, data: bytes, i: int) -> str:
        return data[self.start[i]:self.end[i]].decode("utf-8", "replace")


#: Up to this many quotes per line, the separators inside quotes are found per quoted value;
#: beyond (e.g. every value quoted), through the running parity of the quotes, byte by byte.
_SPARSE_QUOTES = 2


def _never_closed(line: int, display: str) -> ConversionError:
    return ConversionError([Issue("error", f"the quoted value that starts on line {line} is never closed "
                                  "(a '\"' is missing)", file=display, line=line)])


def _quote_starts_a_value(a: np.ndarray, q: np.ndarray, s: int) -> bool:
    """Whether a quote (at offsets `q` of the bytes `a`) follows a separator or a line end, or
    starts the file: if none does, every quote is text."""
    edge = np.zeros(256, bool)
    edge[[s, 10, 13]] = True
    return bool(((q == 0) | edge[a[q - 1]]).any())


def _regular_quotes(a: np.ndarray, q: np.ndarray, s: int) -> bool:
    """Whether every quote (at offsets `q` of the bytes `a`) opens a value, closes it or doubles
    another (RFC 4180): taken in pairs, the first of each follows a separator, a line end or a quote
    (or starts the file), the second is followed by one (or ends the file). Then a quote count's
    parity says what is inside a quoted value."""
    n = len(a)
    edge = np.zeros(256, bool)
    edge[[s, 10, 13, 0x22]] = True
    opening, closing = q[0::2], q[1::2]
    return bool(((opening == 0) | edge[a[opening - 1]]).all()
                and ((closing == n - 1) | edge[a[np.minimum(closing + 1, n - 1)]]).all())


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
        if not _regular_quotes(a, q, s):
            if _quote_starts_a_value(a, q, s):
                return None                 # quoted values and quotes inside unquoted ones
        elif len(q) % 2:                    # the last value opened, back over its doubled quotes
            k = len(q) - 1
            while k >= 2 and q[k] == q[k - 1] + 1:
                k -= 2
            raise _never_closed(int(lines.line_of(q[k])), display)
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
    return _Recs(a, line, start, end, fields)


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
    if len(last) > 1:       # the csv module takes the end of the file as the end of a quoted value
        tail = int(line_start[last[-2]])
        opening = _unclosed_quote(data[tail:].decode("utf-8"), sep)
        if opening is not None:
            raise _never_closed(int(lines.line_of(tail + opening)), display)
    return _Recs(lines.a, last[:-1] + 1, line_start[last[:-1]], line_end[last[1:] - 1],
                 np.array(fields, np.int64))


def _unclosed_quote(record: str, sep: str) -> int | None:
    """The byte offset, in the text of a file's last record, of the quote opening a value that the
    file ends inside of; None when every value is closed. The csv module's rules as a pattern: each
    field quoted ('"' ... '"', with '""' for a quote, then any text) or not (no quote at its start)."""
    s = re.escape(sep)
    text = f"[^{s}\\r\\n]*+"
    field = f'(?:"(?:[^"]|"")*+"{text}|[^"{s}\\r\\n]{text})?+'
    m = re.match(f'(?:{field}{s})*+(")(?:[^"]|"")*+\\Z', record)
    return None if m is None else len(record[:m.start(1)].encode("utf-8"))


def _header_record(recs: _Recs, header_row: int, lines: _Lines, display: str) -> int:
    """The record on line `header_row`: it must exist and start there."""
    h = int(np.searchsorted(recs.line, header_row))
    if h < len(recs.line) and recs.line[h] == header_row:
        return h
    if header_row > lines.count:
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
