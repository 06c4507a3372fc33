"""Raw EDC exports → DataFrames of text, whatever shape the export came in.

Every value is read as text (a data manager's '007' stays '007'; numbers are parsed later, where a
mapping asks for one, so that a bad number can be reported with its line). Each frame carries two
bookkeeping columns, ``__file__`` and ``__line__``, so that any later problem names the raw line.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConversionError, Issue, Issues, rows_text, shown
from .raw_csv import read_csv
from .raw_excel import read_excel

FILE = "__file__"
LINE = "__line__"
_DECIMAL_COMMA = re.compile(r"^\s*([<>]=?)?\s*-?[0-9]+,[0-9]+\s*$")
_DECIMAL_POINT = re.compile(r"^\s*([<>]=?)?\s*-?[0-9]+\.[0-9]+\s*$")


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
            df, lines = read_csv(path, display, sep=sep, encoding=encoding, header_row=header_row)
        elif suffix in SLOW_SUFFIXES:
            df = read_excel(path, display, sheet, header_row)
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

    if df.empty:
        raise ConversionError([Issue("error", "raw file has a header but no data rows", file=display)])
    df = df.fillna("").astype(str)
    for col in df.columns:
        df[col] = df[col].str.strip()
    if decimal == ",":
        _decimal_commas(df, np.asarray(lines), display)
    df[FILE] = display
    df[LINE] = lines
    return df.reset_index(drop=True)


def _decimal_commas(df: pd.DataFrame, lines: np.ndarray, display: str) -> None:
    """`decimal: ","`: decimal-comma numbers ('1,25', '<0,5') become decimal-point ones, decided once
    per distinct value. A column that also holds decimal-point numbers ('1.234') is an error: in such
    an export a point may be a thousands separator, and which one it is cannot be known."""
    problems = []
    for col in df.columns:
        codes, uniques = pd.factorize(df[col])
        uniq = pd.Series(uniques, dtype=object).astype(str)
        commas = uniq.str.match(_DECIMAL_COMMA)
        if not commas.any():
            continue
        points = uniq.str.match(_DECIMAL_POINT)
        if points.any():
            at = lines[np.isin(codes, np.flatnonzero(points.to_numpy()))]
            problems.append(Issue(
                "error", f"column {col} holds decimal commas ({shown(uniq[commas].iloc[0])}) and decimal "
                f"points ({shown(uniq[points].iloc[0])} at {rows_text(at)}) in a file read with "
                "`decimal: \",\"`: a point may be a thousands separator there, so the number cannot be "
                "read with certainty; correct the export", file=display, line=int(at[0])))
            continue
        df[col] = uniq.where(~commas, uniq.str.replace(",", ".", regex=False)).to_numpy()[codes]
    if problems:
        raise ConversionError(problems)


def _read_sas(path: Path, display: str, encoding: str | None) -> pd.DataFrame:
    """A SAS file as text; a repeated variable name is an error (pyreadstat would rename it)."""
    import warnings

    import pyreadstat

    from .xpt import pyreadstat_repeated
    reader = pyreadstat.read_sas7bdat if path.suffix.lower() == ".sas7bdat" else pyreadstat.read_xport
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # pyreadstat's warning of a renamed name: an error below
        df, meta = reader(str(path), encoding=encoding)
    problem = pyreadstat_repeated([str(n).strip() for n in meta.column_names or df.columns])
    if problem:
        raise ConversionError([Issue("error", problem, file=display)])
    df.columns = [str(c).strip() for c in df.columns]
    return _as_text(df)


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
    said = set()
    for _, group in df[df.duplicated(subset=data_cols, keep=False)].groupby(data_cols, sort=False):
        lines = group[LINE].tolist()
        rows = tuple(zip(group[FILE], lines))
        if rows in said:    # a melted copy: the same raw rows, another test
            continue
        said.add(rows)
        msg = f"exact duplicate rows at {rows_text(lines)}"
        if mode == "error":
            issues.error(msg + " (declare `dedupe: report` to drop the copies)", file=display,
                         line=lines[0])
        else:
            issues.warning(msg + f": kept line {lines[0]}, dropped the rest", file=display, line=lines[0])
    return df[~dup] if mode == "report" else df


class MeltError(ValueError):
    """A melt that cannot be done with certainty; `key` is the melt's key at fault (for its line)."""

    def __init__(self, message: str, key: str | None = None, column: str | None = None):
        super().__init__(message)
        self.key, self.column = key, column


def melt(df: pd.DataFrame, spec: dict, display: str) -> pd.DataFrame:
    """A wide form to one row per test (row order: raw row, then test order), in the form `spec` has:
    `columns` + `value` (one column per test) or `pattern` / `groups` (several columns per test, each
    record carrying all of its test's attributes as columns). The columns not melted are carried onto
    every record; a melted column name that is already one of them is an error (it would replace it)."""
    if "columns" in spec:
        missing = [c for c in spec["columns"] if c not in df.columns]
        if missing:
            raise MeltError(f"names columns not in {display}: {', '.join(map(shown, missing))}"
                            f"{_hint(missing[0], df)}; its columns: {columns_text(df)}", "columns", missing[0])
        groups = {c: {spec["value"]: c} for c in spec["columns"]}
    elif "pattern" in spec:
        groups = _pattern_groups(df, spec["pattern"], display)
    else:
        groups = spec["groups"]
        _check_groups(df, groups, display)
    name = spec["name"]
    used = {c for g in groups.values() for c in g.values()}
    ids = [c for c in df.columns if c not in used]
    attrs = list(dict.fromkeys(a for g in groups.values() for a in g))
    if name in attrs:
        raise MeltError(f"name {shown(name)} is also an attribute of the groups: the test and the attribute "
                        "would be one column", "name")
    clash = [c for c in [name, *attrs] if c in ids and c not in (FILE, LINE)] + \
        [c for c in [name, *attrs] if c in (FILE, LINE)]
    if clash:
        raise MeltError(f"{shown(clash[0])} would replace the column of that name in {display}, which is "
                        f"not melted; name the melted column otherwise (the columns kept on every record: "
                        f"{columns_text(df[ids])})", "name" if clash[0] == name else None)
    base = df[ids]
    row = np.arange(len(df))
    parts = []
    for k, (test, group) in enumerate(groups.items()):
        part = base.copy()
        part[name] = str(test)
        for a in attrs:
            part[a] = df[group[a]].to_numpy() if a in group else ""
        part["__row__"], part["__order__"] = row, k
        parts.append(part)
    long = pd.concat(parts, ignore_index=True).sort_values(["__row__", "__order__"], kind="stable")
    return long.drop(columns=["__row__", "__order__"]).reset_index(drop=True)


def _pattern_groups(df: pd.DataFrame, pattern: str, display: str) -> dict:
    """{test: {attr: column}} of the columns whose whole name the pattern matches, in column order."""
    regex = re.compile(pattern)
    groups: dict = {}
    for col in df.columns:
        if col in (FILE, LINE):
            continue
        found = regex.fullmatch(str(col))
        if found is None:
            continue
        test, attr = found.group("test"), found.group("attr")
        if not test or not attr:
            empty = "test" if not test else "attr"
            raise MeltError(f"pattern {pattern!r} matches column {shown(col)} of {display} with an empty "
                            f"{empty}: every column it matches must name a test and an attribute", "pattern")
        groups.setdefault(test, {})[attr] = col
    if not groups:
        raise MeltError(f"pattern {pattern!r} matches no column of {display} (it must match whole column "
                        f"names); its columns: {columns_text(df)}", "pattern")
    return groups


def _check_groups(df: pd.DataFrame, groups: dict, display: str) -> None:
    """Every column a group names exists, and belongs to one group only (else which test it is would
    be ambiguous)."""
    owner: dict = {}
    for test, group in groups.items():
        for attr, col in group.items():
            if col not in df.columns or col in (FILE, LINE):
                raise MeltError(f"groups: {test}.{attr}: {shown(col)} is not a column of {display}"
                                f"{_hint(col, df)}; its columns: {columns_text(df)}", "groups", col)
            if owner.get(col, test) != test:
                raise MeltError(f"groups: column {shown(col)} is in group {shown(owner[col])} and in group "
                                f"{shown(test)}: which test its values belong to is ambiguous", "groups")
            owner[col] = test


def columns_text(df) -> str:
    return ", ".join(str(c) for c in df.columns if c not in (FILE, LINE))


def _hint(col, df) -> str:
    from ..sdtm.schema import suggest
    return suggest(col, [c for c in df.columns if c not in (FILE, LINE)])
