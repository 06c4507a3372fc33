"""Dataset- and variable-level structure rules (SD01xx).

What a reviewer's validator checks before it reads a single value: the datasets a submission must
have, the variables each dataset must (Req), should (Exp) or may hold and in which order and type,
names and labels within the SAS XPORT v5 limits and matching the IG, character lengths fitted to
the data, and text that an XPT file can carry (ASCII only, no leading blanks, no '.' for missing).

Split datasets (LBCH, QSCO, SUPPLBCH ...) are checked against the spec of their parent domain (LB,
QS, SUPPQUAL); dataset-level findings name the part. Text checks look at each column's distinct
values once and map the offending ones back to their rows, so a million-row dataset costs little
more than its number of distinct values.
"""
from __future__ import annotations

import re
import unicodedata
import weakref

import pandas as pd

from .model import _as_text, dataset_finding, flag, rule

MAX_NAME = 8
MAX_LABEL = 40
MAX_CHAR = 200
VAR_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*\Z")
DATASET_NAME_RE = re.compile(r"[A-Z][A-Z0-9]*\Z")
_CONTROL_NAMES = {0: "NUL", 9: "tab", 10: "line feed", 13: "carriage return", 127: "DEL"}


# --------------------------------------------------------------------------- helpers


def _ig_name(study) -> str:
    return study.standard or "the IG"


def _with_spec(study):
    """(dataset, IG spec) for every dataset the IG describes (SUPP-- parts: SUPPQUAL)."""
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        spec = study.spec(ds)
        if spec is not None:
            yield ds, spec


def _lookup(spec, name: str):
    """(variable spec, 'ig' | 'model') for `name`, or (None, None) when neither allows it.

    The SDTM model (DatasetSpec.model_variable, when the specs provide it) lets a domain use a
    variable of its class that its IG table does not list (e.g. AEDTC, CMDY, VISITNUM in CM).
    """
    var = spec.variable(name)
    if var is not None:
        return var, "ig"
    model = getattr(spec, "model_variable", None)
    if model is not None:
        try:
            var = model(name)
        except Exception:  # noqa: BLE001 - a model lookup problem must not stop the rule
            var = None
        if var is not None:
            return var, getattr(var, "source", "model") or "model"
    return None, None


def _text_columns(ds) -> list[str]:
    """Columns holding text (whatever the IG says: a numeric column is never read as text)."""
    dtypes = ds.df.dtypes
    return [c for c in ds.columns if not pd.api.types.is_numeric_dtype(dtypes[c])
            and not pd.api.types.is_bool_dtype(dtypes[c])]


_DISTINCT: dict[int, tuple] = {}   # id(DataFrame) -> (weak reference to it, {column: values})


def _distinct(ds, col: str) -> list[str]:
    """The distinct values of a text column as Python strings, computed once per dataset and
    column for all the text rules (a column of a million rows has a few hundred distinct values).
    The cache entry goes away with the DataFrame."""
    df = ds.df
    key = id(df)
    entry = _DISTINCT.get(key)
    if entry is None or entry[0]() is not df:
        try:
            ref = weakref.ref(df, lambda _, key=key: _DISTINCT.pop(key, None))
        except TypeError:  # not weak-referenceable: no cache
            ref = None
        entry = (ref or (lambda: None), {})
        if ref is not None:
            _DISTINCT[key] = entry
    cache = entry[1]
    if col not in cache:
        cache[col] = ["" if v is None or (isinstance(v, float) and v != v) else str(v)
                      for v in df[col].unique().tolist()]
    return cache[col]


def _nbytes(value: str) -> int:
    """Length in bytes of a text value as XPT stores it (UTF-8 for anything non-ASCII)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def _char_label(ch: str) -> str:
    code = ord(ch)
    if code in _CONTROL_NAMES or code < 0x20 or 0x7F <= code < 0xA0:
        name = _CONTROL_NAMES.get(code, "control character")
        return f"non-printable character U+{code:04X} ({name})"
    name = unicodedata.name(ch, "")
    return f"non-ASCII character '{ch}' (U+{code:04X}{' ' + name if name else ''})"


def _ascii_suggestion(text: str) -> str:
    """An ASCII spelling of `text`: accents dropped, typographic quotes/dashes/spaces mapped."""
    table = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
             "\u00a0": " ", "\u00b5": "u", "\u03bc": "u", "\u00b0": " deg", "\u00df": "ss",
             "\u00e6": "ae", "\u00c6": "AE", "\u00f8": "o", "\u00d8": "O", "\u2264": "<=", "\u2265": ">="}
    out = "".join(table.get(ch, ch) for ch in text)
    out = unicodedata.normalize("NFKD", out).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[\x00-\x1F\x7F]+", " ", out).strip()


# --------------------------------------------------------------------------- datasets


@rule("SD0101", "error", "DM dataset present", core=("CORE-000581", "CG0368"), p21=("SD1020",))
def dm_present(study):
    """Every SDTM submission has a Demographics (DM) dataset: it is the list of subjects every other
    dataset refers to, and reviewers cannot load a study without it. Fires once when no DM (and no
    dataset whose domain is DM) is in the folder."""
    if study.parts("DM"):
        return None
    return dataset_finding("DM", None, "the study has no DM (Demographics) dataset: every SDTM "
                           "submission must include dm.xpt, one record per subject")


@rule("SD0102", "notice", "Dataset has no records", standards=("SDTM", "ADaM"))
def no_records(study):
    """A dataset with zero records is not submitted (the define.xml and the reviewer's guide say
    the domain has no data instead); it is a notice so that an accidental empty export is seen."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if len(ds.df) == 0:
            out.append(dataset_finding(name, None, f"{name} has no records: do not submit an empty "
                                       "dataset (state in the reviewer's guide that there are no data)"))
    return out


@rule("SD0103", "error", "Dataset name longer than 8 characters or not letters and digits",
      core=("CORE-000293", "CG0205"), p21=("SD1457",), standards=("SDTM", "ADaM"))
def dataset_name(study):
    """A dataset name (the XPT member and file name) is at most 8 characters, letters and digits,
    beginning with a letter: the SAS XPORT v5 limit, and what FDA's gateway accepts."""
    out = []
    for name in sorted(study.datasets):
        problems = _name_problems(name, DATASET_NAME_RE,
                                  "must be letters A-Z and digits only, beginning with a letter")
        if problems:
            out.append(dataset_finding(name, None, f"dataset name {name} {problems}", value=name))
    return out


def _name_problems(name: str, pattern, rule_text: str) -> str:
    """What is wrong with a dataset or variable name under the SAS XPORT v5 rules ('' if nothing)."""
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"is {len(name)} characters long (at most {MAX_NAME})")
    if not pattern.match(name):
        problems.append(rule_text)
    return " and ".join(problems) + " (SAS XPORT v5)" if problems else ""


@rule("SD0104", "error", "DOMAIN value does not match the dataset name",
      core=("CORE-000598", "CG0413"), p21=("SD0004",))
def domain_value(study):
    """DOMAIN holds the two-letter code of the domain, and the dataset name begins with it: LB for
    lb.xpt and for a split part lbch.xpt. A different value (a copy-paste from another domain, a
    custom code) sends the records to the wrong place when datasets are merged. Empty DOMAIN values
    are left to the required-value check."""
    out = []
    known = set(study.ig.names) if study.ig is not None else set()
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if ds.is_supp or "DOMAIN" not in ds.df.columns or not len(ds.df):
            continue
        col = ds.df["DOMAIN"]
        if pd.api.types.is_numeric_dtype(col):
            text = col.map(_as_text)
        else:
            text = col.astype(str)
        expected = ds.domain if ds.domain in known else None
        distinct = [v for v in text.unique().tolist() if v.strip()]
        if expected is not None:
            bad = [v for v in distinct if v != expected]
        else:
            bad = [v for v in distinct if not name.startswith(v)]
        if not bad:
            continue

        def message(v, expected=expected, name=name):
            if expected is not None:
                return (f"DOMAIN = '{v}' in dataset {name}: expected '{expected}' (the dataset name "
                        "must begin with the DOMAIN value)")
            return (f"dataset {name} does not begin with its DOMAIN value '{v}': name the dataset "
                    f"after its domain ({v.lower()}.xpt, or {v.lower()}xx.xpt for a split part)")
        mask = text.isin(bad)
        if len(bad) == 1 and mask.all():  # one value on every record: say it once
            out.append(dataset_finding(name, "DOMAIN", f"{message(bad[0])}; on all {len(text)} "
                                       "records", value=bad[0]))
        else:
            out.append(flag(ds, mask, "DOMAIN", message, value=text))
    return out


@rule("SD0105", "error", "Dataset label longer than 40 characters or not ASCII",
      standards=("SDTM", "ADaM"))
def dataset_label_limits(study):
    """The dataset label is at most 40 ASCII characters (SAS XPORT v5 header field); a longer label
    is cut by SAS and by most writers, so the define.xml and the file disagree."""
    out = []
    for name in sorted(study.datasets):
        label = study.datasets[name].label or ""
        problem = _label_problem(label, f"dataset label of {name}")
        if problem:
            out.append(dataset_finding(name, None, problem, value=label))
    return out


def _label_problem(label: str, what: str) -> str:
    """What keeps a dataset or variable label from the SAS XPORT v5 limits ('' if nothing)."""
    if len(label.encode("utf-8", "surrogatepass")) > MAX_LABEL:
        return f"{what} is {len(label)} characters long (at most {MAX_LABEL}): '{label}'"
    if not label.isascii():
        bad = next(ch for ch in label if not ch.isascii())
        return f"{what} contains {_char_label(bad)}: use ASCII only, e.g. '{_ascii_suggestion(label)}'"
    return ""


@rule("SD0106", "warning", "Dataset label differs from the IG")
def dataset_label_ig(study):
    """The dataset label is the IG's (e.g. 'Adverse Events'); a split part may add to it
    ('Laboratory Test Results - Chemistry') and a SUPP-- dataset says which domain it qualifies
    ('Supplemental Qualifiers for LB'). A missing label (CSV, parquet) is not checked."""
    out = []
    for ds, spec in _with_spec(study):
        label = (ds.label or "").strip()
        if not label:
            continue
        if ds.is_supp:
            base = spec.label.split("[")[0].strip()
            accepted = {f"{base} {ds.name[4:]}", f"{base} {ds.domain}"}
            expected = f"{base} {ds.domain}"
            ok = label in accepted
        else:
            expected = spec.label
            split = ds.name != ds.domain
            ok = label == expected or (split and label.startswith(expected))
        if not ok:
            out.append(dataset_finding(ds.name, None, f"dataset label '{label}' differs from the "
                                       f"{_ig_name(study)} label '{expected}'", value=label))
    return out


# --------------------------------------------------------------------------- variables vs the IG


def _missing(study, core: str, severity_word: str):
    out = []
    for ds, spec in _with_spec(study):
        present = set(ds.columns)
        for var in spec.variables:
            if var.core == core and var.name not in present:
                article = "an" if severity_word[0] in "AEIOU" else "a"
                what = (f"{var.name} ({var.label}) is {article} {severity_word} variable of {spec.name} in "
                        f"{_ig_name(study)} but is missing from {ds.name}")
                fix = ("add it (null where there is no value)" if core == "Exp"
                       else "add it and populate it on every record")
                out.append(dataset_finding(ds.name, var.name, f"{what}: {fix}"))
    return out


@rule("SD0111", "error", "Required variable missing", core=("CORE-000355", "CG0014"),
      p21=("SD0002", "SD0056"))
def required_missing(study):
    """Every Required (Core = Req) variable of the IG dataset is in the dataset: without STUDYID,
    USUBJID, --SEQ, --TESTCD ... a record cannot be identified or interpreted. SUPP-- datasets are
    checked against SUPPQUAL."""
    return _missing(study, "Req", "Required")


@rule("SD0112", "warning", "Expected variable missing", core=("CORE-000334", "CG0016"), p21=("SD0057",))
def expected_missing(study):
    """Every Expected (Core = Exp) variable of the IG dataset is in the dataset, even when all its
    values are null (e.g. --ORRESU for unitless tests, --LOBXFL): reviewers' tools look for them."""
    return _missing(study, "Exp", "Expected")


@rule("SD0113", "error", "Variable not allowed in the dataset: belongs in SUPP--",
      core=("CORE-000550", "CG0013", "CG0351"), p21=("SD0058",))
def variable_not_allowed(study):
    """A variable that is neither in the IG dataset nor allowed by the SDTM model for the dataset's
    observation class is non-standard: sponsor-defined data go to SUPP-- (QNAM/QVAL), never as new
    columns. Datasets the IG does not describe (custom domains) are not checked."""
    out = []
    for ds, spec in _with_spec(study):
        for col in ds.columns:
            var, _ = _lookup(spec, col)
            if var is None:
                where = "SUPPQUAL" if ds.is_supp else spec.name
                if ds.is_supp:
                    fix = "only the SUPPQUAL variables are allowed"
                elif spec.class_ in ("Trial Design", "Study Reference", "Relationship"):
                    fix = f"remove it ({spec.class_} datasets have no supplemental qualifiers)"
                else:
                    fix = f"move it to SUPP{ds.domain} (QNAM = '{col[:8]}') or use a standard variable"
                out.append(dataset_finding(ds.name, col, f"{col} is not a variable of {where} in "
                                           f"{_ig_name(study)} nor allowed by the SDTM model for the "
                                           f"{spec.class_} class: {fix}"))
    return out


@rule("SD0114", "notice", "Model-permissible variable added to a standard domain", p21=("SD1076",))
def model_variable_added(study):
    """A variable the IG table of the domain does not list but the SDTM model allows for its class
    (e.g. AEDTC, VISITNUM in CM) may be used; it is noted so that its use is deliberate and
    described in the define.xml."""
    out = []
    for ds, spec in _with_spec(study):
        for col in ds.columns:
            var, source = _lookup(spec, col)
            if var is not None and source != "ig":
                out.append(dataset_finding(ds.name, col, f"{col} is not in the {_ig_name(study)} "
                                           f"{spec.name} table but the SDTM model allows it for the "
                                           f"{spec.class_} class: describe it in the define.xml"))
    return out


def _misplaced(positions: list[int]) -> set[int]:
    """Indexes (into `positions`) outside one longest increasing subsequence: the moved variables."""
    n = len(positions)
    best = [1] * n
    prev = [-1] * n
    for i in range(n):
        for j in range(i):
            if positions[j] < positions[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    if not n:
        return set()
    i = max(range(n), key=lambda k: (best[k], -k))
    keep = set()
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return set(range(n)) - keep


@rule("SD0115", "warning", "Variables not in the IG order", core=("CORE-000852", "CG0330", "CG0664"),
      p21=("SD1079",))
def variable_order(study):
    """The variables of the IG dataset appear in the IG order (identifiers, topic, qualifiers,
    timing), as the define.xml lists them; a variable the SDTM model adds takes its model place
    among them (VISITNUM in CM before EPOCH). Variables allowed by neither are left out of the
    comparison (SD0113 reports them). One finding per dataset names the first misplaced variable
    (the moved ones are those outside a longest run already in order), where it belongs, and the
    expected order."""
    out = []
    for ds, spec in _with_spec(study):
        known = {c: v for c in ds.columns if (v := _lookup(spec, c)[0]) is not None}
        cols = list(known)
        moved = _misplaced([known[c].order for c in cols])
        if not moved:
            continue
        expected = sorted(cols, key=lambda c: known[c].order)
        first = cols[min(moved)]
        k = expected.index(first)
        where = []
        if k > 0:
            where.append(f"after {expected[k - 1]}")
        if k + 1 < len(expected):
            where.append(f"before {expected[k + 1]}")
        others = [cols[i] for i in sorted(moved) if cols[i] != first]
        also = f" (also misplaced: {', '.join(others)})" if others else ""
        out.append(dataset_finding(
            ds.name, first, f"{first} is out of {_ig_name(study)} order: it belongs "
            f"{' and '.join(where)}{also}; expected order: {', '.join(expected)}", value=first))
    return out


def _not_numbers(values: list[str]) -> list[str]:
    """The text values that are neither empty nor a number (a CSV column that cannot be Num)."""
    stripped = pd.Series(values, dtype=object).str.strip()
    bad = (stripped != "") & pd.to_numeric(stripped, errors="coerce").isna()
    return sorted(stripped[bad])


@rule("SD0116", "error", "Variable type differs from the IG", core=("CORE-001082", "CG0012"),
      p21=("SD0055",))
def variable_type(study):
    """A variable has the IG (or SDTM model) type: Num variables (--SEQ, --STRESN, VISITNUM, --DY,
    AGE) must be numeric in the XPT file, Char ones text, or sorting, merging and the define.xml
    break. CSV input carries no types: there a Num variable is flagged only when a value is not a
    number; a column with no value at all is not judged."""
    out = []
    for ds, spec in _with_spec(study):
        df = ds.df
        for col in ds.columns:
            var, _ = _lookup(spec, col)
            if var is None or var.type not in ("Char", "Num"):
                continue
            series = df[col]
            if ds.format == "csv":
                if var.type != "Num" or pd.api.types.is_numeric_dtype(series):
                    continue
                bad = _not_numbers(_distinct(ds, col))
                if bad:
                    example = bad[0]
                    out.append(dataset_finding(ds.name, col, f"{col} must be numeric ({_ig_name(study)}: "
                                               f"Num) but holds text, e.g. '{example}'", value=example))
                continue
            actual = ds.var_types.get(col) or ("Num" if pd.api.types.is_numeric_dtype(series) else "Char")
            if actual == var.type:
                continue
            if ds.format != "xpt" and actual == "Char" and (series.astype(str).str.strip() == "").all():
                continue  # parquet/other: an all-null column has no real type
            out.append(dataset_finding(ds.name, col, f"{col} is {actual} in {ds.name} but {var.type} "
                                       f"in {_ig_name(study)}: store it as a "
                                       f"{'numeric' if var.type == 'Num' else 'character'} variable",
                                       value=actual))
    return out


# --------------------------------------------------------------------------- names, labels, lengths


@rule("SD0117", "error", "Variable name not within XPT v5 limits", core=("CORE-000182", "CG0311"),
      p21=("SD1475",), standards=("SDTM", "ADaM"))
def variable_name(study):
    """A variable name is at most 8 characters of A-Z, 0-9 and _, beginning with a letter (SAS
    XPORT v5); lower-case letters are not SDTM names either."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        for col in ds.columns:
            problems = _name_problems(col, VAR_NAME_RE, "must be upper-case letters, digits and _ "
                                      "only, beginning with a letter")
            if problems:
                out.append(dataset_finding(name, col, f"variable name {col} {problems}", value=col))
    return out


@rule("SD0118", "error", "Variable label longer than 40 characters or not ASCII",
      core=("CORE-000019", "CG0310"), p21=("SD1474",), standards=("SDTM", "ADaM"))
def variable_label_limits(study):
    """A variable label is at most 40 ASCII characters (SAS XPORT v5): longer labels are cut by the
    XPT writer, and the define.xml then disagrees with the file."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        for col in ds.columns:
            label = ds.var_labels.get(col) or ""
            problem = _label_problem(label, f"label of {col}")
            if problem:
                out.append(dataset_finding(name, col, problem, value=label))
    return out


@rule("SD0119", "warning", "Variable label differs from the IG")
def variable_label_ig(study):
    """A variable of the IG dataset carries the IG label (e.g. LBTESTCD 'Lab Test or Examination
    Short Name'), so that every study reads the same. Case and surrounding blanks are ignored;
    variables without a label (CSV, parquet without labels) are not checked."""
    out = []
    for ds, spec in _with_spec(study):
        for col in ds.columns:
            label = (ds.var_labels.get(col) or "").strip()
            var = spec.variable(col)
            if not label or var is None or not var.label:
                continue
            if label.casefold() != var.label.strip().casefold():
                out.append(dataset_finding(ds.name, col, f"label of {col} is '{label}' but "
                                           f"'{var.label}' in {_ig_name(study)}", value=label))
    return out


@rule("SD0121", "warning", "Character variable length larger than its longest value",
      p21=("SD1082",), fda=("FDAB018", "FDAB019"), standards=("SDTM", "ADaM"))
def length_fits_data(study):
    """The declared XPT length of a character variable is the length of its longest value (FDA
    Technical Conformance Guide: oversized lengths bloat the files, which are limited in size).
    Only XPT input has declared lengths; an empty dataset is not judged."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if ds.format != "xpt" or not ds.var_lengths or not len(ds.df):
            continue
        for col in _text_columns(ds):
            if ds.var_types.get(col, "Char") != "Char":
                continue
            declared = ds.var_lengths.get(col)
            if not declared:
                continue
            longest = max((_nbytes(v) for v in _distinct(ds, col)), default=0)
            if declared > max(1, longest):
                out.append(dataset_finding(name, col, f"{col} has length {declared} but its longest "
                                           f"value is {longest} byte{'s' if longest != 1 else ''}: set "
                                           f"the length to {max(1, longest)}", value=declared))
    return out


@rule("SD0122", "error", "Character variable longer than 200 bytes", standards=("SDTM", "ADaM"))
def length_max_200(study):
    """A character variable is at most 200 bytes long in an XPT v5 file (FDA): longer text is
    split into several variables (e.g. --TERM and SUPP-- QNAMs --TERM1, --TERM2) or shortened."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if ds.format != "xpt":
            continue
        for col, declared in sorted(ds.var_lengths.items()):
            is_char = ds.var_types.get(col, "Char") == "Char"
            if col in ds.df.columns and is_char and declared and declared > MAX_CHAR:
                out.append(dataset_finding(name, col, f"{col} has length {declared}: a character "
                                           f"variable may hold at most {MAX_CHAR} bytes in XPT v5; "
                                           "split the text or shorten it", value=declared))
    return out


# --------------------------------------------------------------------------- text values


@rule("SD0131", "error", "Non-ASCII or non-printable character in a value", p21=("SD1029",),
      standards=("SDTM", "ADaM"))
def ascii_only(study):
    """Character values hold printable ASCII only (space to '~'): XPT v5 has no encoding, so an
    accented letter, a typographic quote or a tab arrives differently on the reviewer's side. The
    message names the first offending character, its position and an ASCII spelling."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if not len(ds.df):
            continue
        for col in _text_columns(ds):
            bad = [v for v in _distinct(ds, col) if not (v.isascii() and v.isprintable())]
            if not bad:
                continue

            def message(v, col=col):
                pos = next(i for i, ch in enumerate(v) if not (" " <= ch <= "~"))
                more = sum(1 for ch in v if not (" " <= ch <= "~")) - 1
                extra = f" ({more} more after it)" if more else ""
                return (f"{col} contains {_char_label(v[pos])} at position {pos + 1}{extra}: use "
                        f"printable ASCII only, e.g. '{_ascii_suggestion(v)}'")
            out.append(flag(ds, ds.df[col].isin(set(bad)), col, message))
    return out


@rule("SD0132", "warning", "Text value with leading spaces", core=("CORE-000867",), fda=("FB1501",),
      standards=("SDTM", "ADaM"))
def leading_spaces(study):
    """A text value does not begin with a space: ' HEADACHE' and 'HEADACHE' sort and compare as
    different values, so counts and codelist checks go wrong."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if not len(ds.df):
            continue
        for col in _text_columns(ds):
            bad = [v for v in _distinct(ds, col) if v[:1] == " " and v.strip()]
            if not bad:
                continue

            def message(v, col=col):
                return f"{col} = '{v}' begins with a space: remove leading spaces ('{v.lstrip()}')"
            out.append(flag(ds, ds.df[col].isin(set(bad)), col, message))
    return out


@rule("SD0133", "warning", "Text value '.' used for missing", core=("CORE-000890",), fda=("FB1502",),
      standards=("SDTM", "ADaM"))
def dot_value(study):
    """A missing character value is null, never '.' (the SAS numeric missing value written as text
    by a careless conversion): '.' would be read as a real value."""
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if not len(ds.df):
            continue
        for col in _text_columns(ds):
            bad = [v for v in _distinct(ds, col) if v.strip() == "."]
            if not bad:
                continue
            out.append(flag(ds, ds.df[col].isin(bad), col, lambda v, col=col: (
                f"{col} = '{v}': a missing value must be null (empty), not '.'")))
    return out


@rule("SD0134", "error", "DOMAIN is not a CDISC domain code",
      core=("CORE-000929", "CG0001"))
def domain_is_a_cdisc_term(study):
    """The DOMAIN value must be a published CDISC domain abbreviation (codelist DOMAIN, C66734) or
    a sponsor-defined custom domain, whose code starts with X, Y or Z as the SDTMIG reserves
    (CORE-000929 asks define.xml; without one the CT is the reference). A typo such as 'DN' for DM
    is otherwise caught only when datasets are merged."""
    try:
        terms = study.ct.codelist("C66734").values
    except KeyError:
        return []
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if ds.is_supp or "DOMAIN" not in ds.df.columns or not len(ds.df):
            continue
        text = ds.df["DOMAIN"].map(_as_text) if pd.api.types.is_numeric_dtype(ds.df["DOMAIN"]) \
            else ds.df["DOMAIN"].astype(str)
        distinct = pd.Series(text.unique())
        bad = set(distinct[(distinct.str.strip() != "") & ~distinct.isin(terms)
                           & ~distinct.str.match(r"^[XYZ][A-Z0-9]$")])
        if bad:
            out.append(flag(ds, text.isin(bad), "DOMAIN",
                            lambda v: f"DOMAIN = '{v}' is not a CDISC domain code (codelist DOMAIN, "
                                      "C66734) nor a custom domain code starting with X, Y or Z"))
    return out
