"""Record-level Cerberus schemas generated from the specs, and a fast way to apply them.

Why: what a single value of an SDTM variable may hold is written in the IG and the CT (its type,
whether it is required, its codelist, its ISO 8601 value domain, the 8-character rule for short
names).  `column_schema()` turns one `VariableSpec` into a Cerberus rule set, `dataset_schema()`
does it for every variable of an IG dataset; nothing here is written per domain, so a new IG
version or a new CT package changes the checks without a code change.

Speed: Cerberus validating LB records one by one manages a few thousand rows/s at best (the
issue measured ~7,500; with these schemas and their large codelists it is under 1,000: see
bench/bench_validate_records.py).  A column holds few distinct values (a million results on fifty
test codes), so `check_column()` validates one small document per *distinct* value instead and
maps the verdicts back to the rows with numpy.  Before Cerberus sees a value, a vectorised screen
(given by each rule in rules_record.py) discards the distinct values that cannot fail the
constraint (a value already in the codelist, a text of 50 characters or fewer for the 200-byte
limit, a valid date); the screens are necessary conditions only, so the verdict and the error
details stay Cerberus'.  `RecordValidator` adds the constraints the IG needs and Cerberus lacks:
`sdtmtype` (Num: a number, or a text that reads as one, as in CSV input; Char: a text),
`maxbytes` (UTF-8 bytes, not characters), `iso8601` (datetime/interval or duration syntax and
calendar), `sdtmname` (--TESTCD name rules) and `ctpair` (a --TEST that is the CT name of
another --TESTCD, judged on a two-field document per distinct combination).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cerberus
import numpy as np
import pandas as pd

from ..dates import _parse_dtc

#: A character value may hold at most this many bytes (XPT v5, SDTMIG 4.5.3.2).
MAX_BYTES = 200
#: --TESTCD and --PARMCD (and QNAM): at most 8 characters, a letter first, then A-Z, 0-9 or _.
NAME_LENGTH = 8
NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
#: --TEST and --PARM (TSPARM, OIPARM): at most 40 characters (SDTMIG; CORE-000220).
TEST_LENGTH = 40
#: IETEST (IE, TI) holds the criterion text: up to 200 characters by the IG, not 40.
LONG_TEST_NAMES = {"IETEST"}

# ISO 8601 duration as SDTM writes it: PnYnMnDTnHnMnS (any part may be omitted, the smallest
# given one may carry a decimal fraction) or PnW; SDTMIG --ELTM uses a leading '-' for "before".
_NUM = r"\d+(?:[.,]\d+)?"
DURATION_RE = re.compile(
    rf"-?P(?:{_NUM}W|(?=\d|T\d)(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?)")

#: A number as a text may write it (what SAS and R read back as the same number).
NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

DATETIME = "datetime"            # value domain 'ISO 8601 datetime or interval'
DURATION = "duration"            # value domain 'ISO 8601 duration'
DURATION_OR_INTERVAL = "duration or interval"


# ----------------------------------------------------------------------------- value checks


def is_duration(text: str) -> bool:
    return bool(DURATION_RE.fullmatch(text))


def is_datetime_text(text: str) -> bool:
    """One ISO 8601 date/time (partial dates and the SDTMIG hyphen forms included): the parser
    behind `dates.is_iso8601`, called directly for one value (the vectorised function costs
    ~140 us per call; the screens use it on whole columns of distinct values)."""
    return bool(text) and _parse_dtc(text) is not None


def is_interval(text: str) -> bool:
    """start/end, start/duration or duration/end, each side valid (ISO 8601 4.4)."""
    parts = text.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return False
    durations = [is_duration(p) for p in parts]
    if all(durations):
        return False
    return all(d or is_datetime_text(p) for d, p in zip(durations, parts))


def iso8601_ok(text: str, kind: str) -> bool:
    """Whether `text` (non-empty) fits the ISO 8601 value domain `kind`."""
    if kind == DATETIME:
        return is_interval(text) if "/" in text else is_datetime_text(text)
    if kind == DURATION:
        return is_duration(text)
    if kind == DURATION_OR_INTERVAL:
        return is_interval(text) if "/" in text else is_duration(text)
    return True


def as_number(value) -> float | None:
    """The number a value holds (a float, or a text that reads as a finite number), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not NUMBER_RE.fullmatch(text):
            return None
        number = float(text)
        return number if math.isfinite(number) else None
    return None


def name_problems(text: str, limit: int = NAME_LENGTH) -> list[str]:
    """What breaks the short-name rule (empty list when `text` is a valid short name)."""
    problems = []
    if len(text) > limit:
        problems.append(f"{len(text)} characters (at most {limit})")
    first = text[:1]
    if first and not (first.isascii() and first.isupper()):
        problems.append(f"starts with '{first}' (must start with a letter A-Z)")
    bad = sorted({c for c in text if not (c.isascii() and (c.isupper() or c.isdigit() or c == "_"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        problems.append(f"contains {shown} (only A-Z, 0-9 and _ are allowed)")
    return problems


# ----------------------------------------------------------------------------- the validator


# Error definitions of the custom rules, so that each error names its rule (as Cerberus' own do).
MAXBYTES = cerberus.errors.ErrorDefinition(0x49, "maxbytes")
ISO8601 = cerberus.errors.ErrorDefinition(0x4A, "iso8601")
SDTMNAME = cerberus.errors.ErrorDefinition(0x4B, "sdtmname")
CTPAIR = cerberus.errors.ErrorDefinition(0x4C, "ctpair")
SDTMTYPE = cerberus.errors.ErrorDefinition(0x4D, "sdtmtype")


class RecordErrorHandler(cerberus.errors.BasicErrorHandler):
    messages = {**cerberus.errors.BasicErrorHandler.messages,
                **{d.code: "{0}" for d in (MAXBYTES, ISO8601, SDTMNAME, CTPAIR, SDTMTYPE)}}


class RecordValidator(cerberus.Validator):
    """Cerberus with the SDTM constraints the standard rules lack."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("error_handler", RecordErrorHandler)
        super().__init__(*args, **kwargs)

    def _validate_sdtmtype(self, constraint, field, value):
        """{'type': 'string', 'allowed': ['Char', 'Num']}"""
        # Num: a number, or a text that reads as one (CSV input); Char: a text. Null passes.
        if value is None or (isinstance(value, str) and not value.strip()):
            return
        if constraint == "Num" and as_number(value) is None:
            self._error(field, SDTMTYPE, "not a number")
        elif constraint == "Char" and not isinstance(value, str):
            self._error(field, SDTMTYPE, "not a character value")

    def _validate_maxbytes(self, constraint, field, value):
        """{'type': 'integer'}"""
        if isinstance(value, str) and len(value.encode("utf-8")) > constraint:
            self._error(field, MAXBYTES, f"{len(value.encode('utf-8'))} bytes, more than {constraint}")

    def _validate_iso8601(self, constraint, field, value):
        """{'type': 'string', 'allowed': ['datetime', 'duration', 'duration or interval']}"""
        if isinstance(value, str) and value and not iso8601_ok(value, constraint):
            self._error(field, ISO8601, f"not an ISO 8601 {constraint}")

    def _validate_sdtmname(self, constraint, field, value):
        """{'type': 'integer'}"""
        if isinstance(value, str) and value:
            problems = name_problems(value, constraint)
            if problems:
                self._error(field, SDTMNAME, "; ".join(problems))

    def _validate_ctpair(self, constraint, field, value):
        """{'type': 'dict', 'schema': {'field': {'type': 'string'}, 'pair': {'type': 'string'}}}"""
        # constraint: the paired code variable and the key of its CT tables in PAIR_TABLES
        # ({submission value: C-codes} of both codelists). A name that is the CT term of *other*
        # codes than the row's code is wrong.
        tables = PAIR_TABLES.get(constraint["pair"])
        if tables is None:
            return
        mine = tables["codes"].get(self.document.get(constraint["field"]))
        theirs = tables["names"].get(value)
        if mine and theirs and not (mine & theirs):
            self._error(field, CTPAIR, f"CT name of a different {constraint['field']}")


#: Paired CT tables for the 'ctpair' rule, by key (kept out of the schema: Cerberus hashes the
#: schema on every validation, and these tables hold thousands of terms).
PAIR_TABLES: dict = {}


def pair_tables(ct, code_lists: tuple, name_lists: tuple) -> str:
    """Register the {value: C-codes} tables of paired codelists (e.g. C65047 LBTESTCD and
    C67154 LBTEST) and return their key for a 'ctpair' constraint."""
    key = f"{ct.package}/{ct.version}/{'+'.join(code_lists)}/{'+'.join(name_lists)}"
    if key not in PAIR_TABLES:
        def index(lists):
            out: dict = {}
            for c in lists:
                for t in ct.codelist(c).terms:
                    out.setdefault(t.value, set()).add(t.code)
            return {k: frozenset(v) for k, v in out.items()}
        codes, names = index(code_lists), index(name_lists)
        code_of: dict = {}
        name_of: dict = {}
        for table, into in ((codes, code_of), (names, name_of)):
            for value in sorted(table):
                for cc in table[value]:
                    into.setdefault(cc, value)
        PAIR_TABLES[key] = {"codes": codes, "names": names, "code_of": code_of, "name_of": name_of}
    return key


# ----------------------------------------------------------------------------- schema generation


def value_kind(name: str, value_domain: str = "") -> str | None:
    """The ISO 8601 kind of a variable: from the IG value domain, else from the name (custom
    variables and domains: *DTC holds a date/time, *DUR a duration)."""
    vd = value_domain.lower()
    if vd.startswith("iso 8601 datetime"):
        return DATETIME
    if vd == "iso 8601 duration":
        return DURATION
    if vd.startswith("iso 8601 duration or interval"):
        return DURATION_OR_INTERVAL
    if not value_domain and len(name) >= 5:
        if name.endswith("DTC"):
            return DATETIME
        if name.endswith("DUR"):
            return DURATION
    return None


def is_short_name(name: str) -> bool:
    """--TESTCD and --PARMCD (TSPARMCD, OIPARMCD) follow the 8-character name rule. (QNAM does
    too, but rules_cross.SD0425 checks it with the other SUPP-- rules.)"""
    return name.endswith(("TESTCD", "PARMCD"))


def is_test_name(name: str) -> bool:
    """--TEST and --PARM (TSPARM, OIPARM): at most 40 characters, IETEST excepted."""
    return (name.endswith("TEST") and len(name) == 6 or name in ("TSPARM", "OIPARM")) \
        and name not in LONG_TEST_NAMES


def codelist_values(ct, codes) -> tuple[frozenset, tuple]:
    """Submission values of the codelists `codes` together, and the codelists found in `ct`."""
    found = []
    for code in codes:
        try:
            found.append(ct.codelist(code))
        except KeyError:
            continue
    return frozenset(v for cl in found for v in cl.values), tuple(found)


def column_schema(name: str, var=None, ct=None, stored: str | None = None) -> dict:
    """The Cerberus rules for one value of variable `name`.

    var: its IG `VariableSpec` (None for a variable the IG does not define: then only what the
    name and the stored type say).  stored: 'Char' or 'Num' as stored in the file.
    The 'meta' entry (ignored by Cerberus) keeps what the rules and messages need: the IG type
    (None outside the IG), the core, the codelists' C-codes and whether one is extensible.
    """
    ig_type = var.type if var is not None else (stored or "Char")
    rules: dict = {"nullable": True, "sdtmtype": ig_type}
    meta: dict = {"ig_type": ig_type if var is not None else None, "core": var.core if var is not None else None,
                  "codelists": (), "extensible": False}
    if var is not None and var.core == "Req":
        rules["nullable"] = False
        rules["empty"] = False
    if ig_type == "Char":
        rules["maxbytes"] = MAX_BYTES
        kind = value_kind(name, var.value_domain if var is not None else "")
        if kind:
            rules["iso8601"] = kind
        if var is not None and var.codelists and ct is not None:
            values, found = codelist_values(ct, var.codelists)
            if found:
                rules["allowed"] = values
                meta["codelists"] = tuple(cl.code for cl in found)
                meta["extensible"] = any(cl.extensible for cl in found)
        if var is not None and is_short_name(name):
            rules["sdtmname"] = NAME_LENGTH
        if var is not None and is_test_name(name):
            rules["maxlength"] = TEST_LENGTH
    rules["meta"] = meta
    return rules


_SCHEMAS: dict = {}


def dataset_schema(spec, ct) -> dict[str, dict]:
    """{variable: column_schema} for every variable of an IG dataset spec (cached per IG/CT)."""
    key = (spec.name, id(spec), ct.package if ct is not None else "", ct.version if ct is not None else "")
    if key not in _SCHEMAS:
        _SCHEMAS[key] = {v.name: column_schema(v.name, v, ct) for v in spec.variables}
    return _SCHEMAS[key]


def schema_for(study, ds) -> dict[str, dict]:
    """The schema of one dataset of a study: IG variables from the spec of its domain (LBCH → LB,
    SUPPLBCH → SUPPQUAL), other columns from their name and stored type."""
    spec = study.spec(ds)
    base = dataset_schema(spec, study.ct) if spec is not None else {}
    out = {}
    for col in ds.columns:
        if col in base:
            out[col] = base[col]
        else:
            out[col] = column_schema(col, None, None, stored_type(ds, col))
    return out


def stored_type(ds, col: str) -> str:
    """'Num' or 'Char' as the file stores the column (a CSV stores everything as text)."""
    declared = ds.var_types.get(col)
    if declared in ("Num", "Char"):
        return declared
    return "Num" if pd.api.types.is_numeric_dtype(ds.df[col]) else "Char"


# ----------------------------------------------------------------------------- applying schemas


def distinct(study, ds, col: str) -> tuple[np.ndarray, pd.Series]:
    """Per-row codes into the distinct values of a column (a null is a distinct value too),
    computed once per study and column and shared by the rules."""
    cache = study.__dict__.setdefault("_distinct_values", {})
    key = (ds.name, col, id(ds.df))
    if key not in cache:
        codes, uniques = pd.factorize(ds.df[col], use_na_sentinel=False)
        cache[key] = (codes.astype(np.int32, copy=False), pd.Series(uniques).reset_index(drop=True))
    return cache[key]


def as_text(value) -> str:
    """A value as the text a rule compares: '' for null, '1' for 1.0, trailing blanks removed
    (XPT pads character values; leading blanks are significant and kept)."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        if value != value:
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).rstrip()


@dataclass
class Verdict:
    """A distinct value that failed: its text and the Cerberus errors of the checked rules."""
    value: object
    text: str
    errors: list          # cerberus ValidationError objects (rule, constraint, info)


_VALIDATORS: dict = {}


def validator(field: str, rules: dict) -> RecordValidator:
    """A RecordValidator for a one-field document (built once per field and rule set)."""
    return validator_for({field: rules})


def validator_for(schema: dict) -> RecordValidator:
    """A RecordValidator for `schema` ({field: rules}), built once per schema and cached."""
    key = tuple((f, tuple(sorted((k, id(v)) for k, v in r.items()))) for f, r in schema.items())
    hit = _VALIDATORS.get(key)
    if hit is None:
        if len(_VALIDATORS) > 5000:   # many studies in one process: keep the cache bounded
            _VALIDATORS.clear()
        # the entry keeps `schema` alive, so the ids in the key cannot be reused meanwhile
        hit = _VALIDATORS[key] = (RecordValidator(schema), schema)
    return hit[0]


def check_column(study, ds, col: str, rules: dict, constraints: tuple[str, ...], screen,
                 *, native: bool = False) -> tuple[np.ndarray, list]:
    """Apply the `constraints` of a column's Cerberus `rules` to its distinct values.

    screen(uniques: pd.Series) -> bool array: which distinct values may fail (a vectorised
    necessary condition: whatever it lets through, Cerberus decides).  Each candidate becomes a
    one-field document: its text (`as_text`), or the value itself when `native` (type checks),
    validated without Cerberus' normalization step (the schemas normalize nothing; it would
    cost four times the validation itself).
    Returns the per-row codes and a list aligned with the distinct values holding None or the
    `Verdict` of a failing value; `mask_of()` turns them into a row mask.
    """
    codes, uniques = distinct(study, ds, col)
    subset = {k: rules[k] for k in constraints if k in rules}
    if not subset or len(uniques) == 0:
        return codes, []
    candidates = np.asarray(screen(uniques), dtype=bool)
    verdicts: list = [None] * len(uniques)
    if not candidates.any():
        return codes, verdicts
    subset.setdefault("nullable", True)
    v = validator(col, subset)
    for i in np.flatnonzero(candidates):
        raw = uniques.iloc[i]
        text = as_text(raw)
        if not v.validate({col: _native(raw) if native else text}, normalize=False):
            errs = _flatten(v.document_error_tree[col].errors) if col in v.document_error_tree else []
            if errs:
                verdicts[i] = Verdict(raw, text, errs)
    return codes, verdicts


def texts_of(uniques: pd.Series) -> pd.Series:
    """Distinct values as text, vectorised: trailing blanks removed, null as ''."""
    if pd.api.types.is_numeric_dtype(uniques.dtype) or uniques.dtype == object:
        return uniques.map(as_text).astype(object)
    return uniques.fillna("").astype(str).str.rstrip()


def mask_of(codes: np.ndarray, verdicts: list, keep=None) -> np.ndarray:
    """Row mask: the rows whose distinct value has a verdict (and keep(verdict) is true)."""
    if not verdicts:
        return np.zeros(len(codes), dtype=bool)
    bad = np.array([v is not None and (keep is None or keep(v)) for v in verdicts], dtype=bool)
    return bad[codes]


def _native(value):
    if isinstance(value, (float, np.floating)):
        return None if value != value else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value.rstrip() if isinstance(value, str) else value


def _flatten(errors) -> list:
    out = []
    for e in errors:
        if e.is_group_error:
            out.extend(_flatten(e.child_errors or []))
        else:
            out.append(e)
    return out
