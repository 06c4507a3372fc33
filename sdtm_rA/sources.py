"""Raw EDC exports → DataFrames of text, whatever shape the export came in.

Every value is read as text (a data manager's '007' stays '007'; numbers are parsed later, where a
mapping asks for one, so that a bad number can be reported with its line). Each frame carries two
bookkeeping columns, ``__file__`` and ``__line__``, so that any later problem names the raw line.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .errors import ConversionError, Issue, Issues, rows_text

FILE = "__file__"
LINE = "__line__"
_DECIMAL_COMMA = re.compile(r"^\s*([<>]=?)?\s*-?\d+,\d+\s*$")


def read_table(path: Path, display: str, *, sep: str | None = None, encoding: str | None = None,
               header_row: int = 1, sheet: str | int | None = None, decimal: str = ".") -> pd.DataFrame:
    """One raw file as text columns, with ``__file__``/``__line__``.

    header_row: 1-based line (or sheet row) holding the column names; rows above it (e.g. a row of
    item labels that some EDCs put above the names) are skipped. decimal: ',' turns values that look
    like decimal-comma numbers ('1,25', '<0,5') into decimal-point ones; nothing else is touched.
    """
    suffix = path.suffix.lower()
    if not path.exists():
        raise ConversionError([Issue("error", "raw file not found", file=display)])
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            df = _read_csv(path, display, sep=sep, encoding=encoding, header_row=header_row)
            first_data_line = header_row + 1
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            df = _read_excel(path, sheet, header_row)
            first_data_line = header_row + 1
        elif suffix == ".sas7bdat":
            import pyreadstat
            df, _ = pyreadstat.read_sas7bdat(str(path), encoding=encoding)
            df = _as_text(df)
            first_data_line = 1
        elif suffix == ".xpt":
            import pyreadstat
            df, _ = pyreadstat.read_xport(str(path), encoding=encoding)
            df = _as_text(df)
            first_data_line = 1
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
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise ConversionError([Issue("error", f"duplicate column names {dupes}", file=display,
                                     line=header_row)])
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
    df[LINE] = range(first_data_line, first_data_line + len(df))
    return df.reset_index(drop=True)


def _read_excel(path, sheet, header_row) -> pd.DataFrame:
    """One sheet of a workbook as text. calamine (Rust) reads large sheets ~7x faster than
    openpyxl, which builds a Python object per cell; openpyxl remains the fallback."""
    kwargs = dict(sheet_name=0 if sheet is None else sheet, dtype=str, header=header_row - 1,
                  keep_default_na=False, na_values=[])
    try:
        import python_calamine  # noqa: F401
        return pd.read_excel(path, engine="calamine", **kwargs)
    except ImportError:
        return pd.read_excel(path, engine="openpyxl", **kwargs)


def _read_csv(path, display, *, sep, encoding, header_row):
    raw = path.read_bytes()
    if not raw.strip():
        raise ConversionError([Issue("error", "raw file is empty", file=display)])
    if encoding is None:
        encoding = "utf-8-sig"  # a byte-order mark, if any, is not part of the first column name
        try:
            raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConversionError([Issue(
                "error", f"not UTF-8 (byte 0x{raw[exc.start]:02x}); declare the file's encoding, "
                "e.g. `encoding: latin-1`", file=display, line=line)])
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, whatever the declared encoding
        raw = raw[3:]
    if sep is None:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    import io
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ConversionError([Issue("error", f"cannot decode as {encoding}: {exc}", file=display)])
    if text.startswith("\ufeff"):
        text = text[1:]
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[],
                       skiprows=header_row - 1, skip_blank_lines=False, engine="c")


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
