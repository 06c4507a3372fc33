"""Record-level rules (SD02xx): each value of a record against what the IG and the CT say it may hold.

The constraints come from the Cerberus schemas that `schemas.py` generates from the specs (type,
Core = Req, 200 bytes, codelist, ISO 8601 value domain, short-name rules); each rule here applies
its constraint to the distinct values of the columns that carry it and names every offending row.
"""
from __future__ import annotations

import calendar
import difflib
import functools
import re

import numpy as np
import pandas as pd

from ..dates import is_iso8601
from .model import first_per_value, _as_text, flag, rule
from .schemas import (DATETIME, DURATION, DURATION_OR_INTERVAL, DURATION_RE, MAX_BYTES, NAME_LENGTH, NAME_RE,
                      NUMBER_RE, PAIR_TABLES, TEST_LENGTH, check_column, distinct, mask_of, pair_tables,
                      schema_for, texts_of, validator, validator_for)

#: How many expected values a codelist message lists at most.
MAX_LISTED = 10

_RESULT_SUFFIXES = ("ORRES", "STRESC")
# code variables whose name variable (the code without CD) uses the paired codelist
_PAIRED_CODES = ("TESTCD", "OIPARMCD")
# a numeric result, possibly with a comparator ('<0.5', '>= 10'): not a term of a result codelist
_NUMERIC_RESULT = r"\s*(?:[<>]=?|=)?\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"


# ----------------------------------------------------------------------------- helpers


def _datasets(study):
    """(dataset, its schema) in name order; datasets without rows or columns are skipped."""
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if len(ds.df) == 0 or not ds.columns:
            continue
        yield ds, schema_for(study, ds)


def _flag_verdicts(ds, col, codes, verdicts, message, severity=None):
    """Findings for the rows whose distinct value failed; message(verdict) -> text."""
    mask = mask_of(codes, verdicts)
    if not mask.any():
        return None
    by_text = {_as_text(v.value): message(v) for v in verdicts if v is not None}
    return flag(ds, mask, col, lambda t: by_text.get(t, by_text.get(t.rstrip(), "")), severity=severity)


def _is_text_column(ds, col) -> bool:
    return not pd.api.types.is_numeric_dtype(ds.df[col].dtype)


def _std(study) -> str:
    return study.standard or "the IG"


# ----------------------------------------------------------------------------- SD0201 type


@rule("SD0201", "error", "Non-numeric value in a numeric (Num) variable",
      core=("CORE-001082", "CG0012"), p21=("SD0055",))
def value_type(study):
    """A variable the IG defines as Num (--SEQ, --STRESN, VISITNUM, --DY, AGE) must hold numbers.
    A CSV file holds every column as text, and an XPT or parquet file may store a Num variable as
    character: then each distinct value is checked (one Cerberus document per value, 'sdtmtype')
    and every row holding text that is not a number ('abc', '<5', '1,5') is named, so that it can
    be fixed before the column is converted. That the stored type itself differs from the IG
    (AGE stored as Char, SITEID as Num) is a variable-level finding of SD0116, not repeated here."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if rules.get("meta", {}).get("ig_type") != "Num" or not _is_text_column(ds, col):
                continue
            codes, verdicts = check_column(study, ds, col, rules, ("sdtmtype",), _not_a_number, native=True)
            hint = (f"put text results in {col[:-1]}C and leave {col} null"
                    if col.endswith("STRESN") else "expected a number, or null")
            found = _flag_verdicts(ds, col, codes, verdicts, lambda v, c=col, h=hint: (
                f"{c} = '{v.text}' is not a number: {c} is numeric (Num) in {_std(study)}; {h}"))
            if found is not None:
                out.append(found)
    return out


def _not_a_number(uniques: pd.Series) -> np.ndarray:
    text = texts_of(uniques).str.strip()
    return ((text != "") & ~text.str.fullmatch(NUMBER_RE.pattern)).to_numpy()


# ----------------------------------------------------------------------------- SD0202 required


@rule("SD0202", "error", "Required variable null in a record",
      core=("CORE-000356", "CG0014"), p21=("SD0002", "SD0056"))
def required_value(study):
    """A variable with Core = Req in the IG (STUDYID, USUBJID, --SEQ, --TESTCD, --TEST, QNAM, ...)
    must have a value in every record: a null there makes the record unusable (no subject, no
    test). Nulls are found on the whole column at once (NaN, '' or blanks only); the schema's
    'nullable'/'empty' constraints give the verdict. A Req variable missing from the dataset
    altogether is a dataset-level finding, not this rule's."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if rules.get("nullable", True) and rules.get("empty", True):
                continue
            s = ds.df[col]
            if _is_text_column(ds, col):
                null = s.isna() | (s.astype(str).str.strip() == "")
                doc = ""
            else:
                null = s.isna()
                doc = None
            if not null.any():
                continue
            v = validator(col, {k: rules[k] for k in ("nullable", "empty") if k in rules})
            if v.validate({col: doc}, normalize=False):
                continue
            out.append(flag(ds, null, col, f"{col} is null: it is required (Core = Req in {_std(study)}) "
                                           f"and must hold a value in every record"))
    return out


# ----------------------------------------------------------------------------- SD0203 length


@rule("SD0203", "error", "Character value longer than 200 bytes")
def value_length(study):
    """A character value may hold at most 200 bytes (the XPT v5 limit the FDA requires; SDTMIG
    4.5.3.2 says where longer text goes: split into the variable and SUPP-- QNAMs such as
    AETERM1). Counted in UTF-8 bytes, not characters: 'é' takes two. Applies to every character
    column, IG variable or not. Only values of more than 50 characters can exceed 200 bytes, so
    Cerberus ('maxbytes') judges just those."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if "maxbytes" not in rules or not _is_text_column(ds, col):
                continue
            if not (ds.df[col].astype(str).str.len() > MAX_BYTES // 4).any():   # whole-column screen
                continue
            codes, verdicts = check_column(study, ds, col, rules, ("maxbytes",), _long)
            found = _flag_verdicts(ds, col, codes, verdicts, lambda v, c=col: (
                f"{c} is {len(v.text.encode('utf-8'))} bytes long: a character value may hold at most "
                f"{MAX_BYTES} bytes (XPT v5); shorten it or put the excess in SUPP-- "
                f"(SDTMIG 4.5.3.2, e.g. {c[:7]}1)"))
            if found is not None:
                out.append(found)
    return out


def _long(uniques: pd.Series) -> np.ndarray:
    # a UTF-8 character takes at most 4 bytes: 50 characters or fewer cannot exceed 200 bytes
    return (texts_of(uniques).str.len() > MAX_BYTES // 4).to_numpy()


# ----------------------------------------------------------------------------- SD0204 codelists


@rule("SD0204", "error", "Value not in its codelist (extensible codelist: new term)",
      core=("CORE-000087", "CORE-000123", "CORE-000131", "CG0387", "CG0388", "CG0396"),
      p21=("CT2001", "CT2002"))
def codelist_value(study):
    """A variable the IG links to CT codelists (SEX C66731, NY C66742, LBTESTCD C65047, UNIT
    C71620, ...) must hold one of their submission values, exactly (case-sensitive: 'Female' is
    not 'F'). Not in a non-extensible codelist: error (P21 CT2001); not in an extensible one: a
    warning that the value is a new, sponsor-defined term (CT2002) to be described in define.xml.
    The message lists the expected values (at most 10: the closest ones for long codelists) and
    says which term a misspelt or mis-cased value probably means. Null values are not checked;
    nor are numeric results in result variables with a codelist (LBSTRESC '5.1': the codelist
    holds the text results). Codelists that depend on the test (QSTESTCD per instrument, units
    per test) are checked only as far as the IG links them."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if "allowed" not in rules:
                continue
            meta = rules["meta"]
            allowed = rules["allowed"]
            result_var = col.endswith(_RESULT_SUFFIXES)
            codes, verdicts = check_column(study, ds, col, rules, ("allowed",),
                                           lambda u, a=allowed, r=result_var: _not_in(u, a, r))
            codelists = [study.ct.codelist(c) for c in meta["codelists"]]
            severity = "warning" if meta["extensible"] else "error"
            found = _flag_verdicts(ds, col, codes, verdicts,
                                   lambda v, c=col, cls=codelists, a=allowed: _codelist_message(c, v.text, cls, a),
                                   severity=severity)
            if found is not None and severity == "warning":
                found = first_per_value(found)  # a new sponsor term is one decision, not N findings
            if found is not None:
                out.append(found)
    return out


def _not_in(uniques: pd.Series, allowed: frozenset, result_var: bool) -> np.ndarray:
    text = texts_of(uniques)
    cand = np.array([t != "" and t not in allowed for t in text.tolist()], dtype=bool)
    if result_var and cand.any():
        cand &= ~text.str.fullmatch(_NUMERIC_RESULT).to_numpy(dtype=bool)
    return cand


def _codelist_message(col: str, text: str, codelists: list, allowed: frozenset) -> str:
    names = " / ".join(f"{cl.short_name} ({cl.code}{', extensible' if cl.extensible else ''})"
                       for cl in codelists)
    several = "s" if len(codelists) > 1 else ""
    guess = next((g for cl in codelists if (g := cl.lookup(text)) is not None and g != text), None)
    if len(allowed) <= MAX_LISTED:
        expected = "expected one of " + ", ".join(sorted(allowed))
    else:
        close = list(_close_terms(allowed, text))
        if guess and guess not in close:
            close = [guess] + close[:MAX_LISTED - 1]
        expected = (f"expected one of its {len(allowed)} terms, e.g. " + ", ".join(close) if close
                    else f"expected one of its {len(allowed)} terms (none is close to this value)")
    msg = f"{col} = '{text}' is not in codelist{several} {names}: {expected}"
    if guess:
        msg += f"; did you mean '{guess}'?"
    if any(cl.extensible for cl in codelists):
        msg += ("; the codelist is extensible: if no CDISC term fits, keep the value as a "
                "sponsor-defined term and describe it in define.xml")
    return msg


@functools.lru_cache(maxsize=4096)
def _close_terms(allowed: frozenset, text: str) -> tuple:
    """Up to MAX_LISTED terms that look like `text` (difflib), searched among the terms with the
    same first letter (any case): a few ms even for UNIT or LBTESTCD, once per distinct value."""
    pool = _by_initial(allowed).get(text[:1].casefold(), ())
    return tuple(difflib.get_close_matches(text, pool, n=MAX_LISTED, cutoff=0.6))


@functools.lru_cache(maxsize=256)
def _by_initial(allowed: frozenset) -> dict:
    out: dict = {}
    for value in sorted(allowed):
        out.setdefault(value[:1].casefold(), []).append(value)
    return out


# ----------------------------------------------------------------------------- SD0205 paired terms


@rule("SD0205", "error", "--TEST is the CT name of a different --TESTCD", p21=("CT2003",))
def paired_terms(study):
    """--TESTCD/--TEST (and OIPARMCD/OIPARM) codelists are paired in CDISC CT: the code and its
    name share the term's C-code (LBTESTCD 'GLUC' and LBTEST 'Glucose' are both C105585). A
    record whose --TEST is the CT name of another --TESTCD than its own (LBTESTCD 'ALB' with
    LBTEST 'Glucose') says two different things; Pinnacle 21 reports it as CT2003. Checked once
    per distinct (code, name) combination, with a two-field Cerberus document; a name or code
    outside CT is the codelist rule's concern, not this one's. TSPARMCD/TSPARM is checked with
    the other TS rules (SD0434)."""
    out = []
    for ds, schema in _datasets(study):
        for code_var in ds.columns:
            name_var = code_var[:-2]
            if not code_var.endswith(_PAIRED_CODES) or name_var not in ds.columns:
                continue
            if "allowed" not in schema.get(code_var, {}) or "allowed" not in schema.get(name_var, {}):
                continue
            key = pair_tables(study.ct, schema[code_var]["meta"]["codelists"],
                              schema[name_var]["meta"]["codelists"])
            found = _check_pair(study, ds, code_var, name_var, key)
            if found is not None:
                out.append(found)
    return out


def _check_pair(study, ds, code_var, name_var, key):
    pair = PAIR_TABLES[key]
    ccodes, cuniq = distinct(study, ds, code_var)
    ncodes, nuniq = distinct(study, ds, name_var)
    if not len(cuniq) or not len(nuniq):
        return None
    combo = ccodes.astype(np.int64) * len(nuniq) + ncodes
    inverse, combos = pd.factorize(combo)
    ctext = list(texts_of(cuniq))
    ntext = list(texts_of(nuniq))
    v = validator_for({code_var: {"type": "string", "nullable": True},
                       name_var: {"ctpair": _pair_constraint(code_var, key), "nullable": True}})
    bad = np.zeros(len(combos), dtype=bool)
    messages = {}
    for i, c in enumerate(combos):
        cd, nm = ctext[c // len(nuniq)], ntext[c % len(nuniq)]
        mine, theirs = pair["codes"].get(cd), pair["names"].get(nm)
        if not (mine and theirs) or mine & theirs:        # screen: both CT terms, different codes
            continue
        if v.validate({code_var: cd, name_var: nm}, normalize=False):
            continue
        bad[i] = True
        other = sorted(theirs)[0]
        expected = next((pair["name_of"][cc] for cc in sorted(mine) if cc in pair["name_of"]), None)
        messages[(cd, nm)] = (
            f"{name_var} = '{nm}' is the CDISC name of {code_var} '{pair['code_of'].get(other, '?')}' "
            f"({other}), but this record has {code_var} = '{cd}'"
            + (f": expected {name_var} = '{expected}'" if expected else "")
            + " (paired codelists share the term's C-code)")
    if not bad.any():
        return None
    mask = bad[inverse]
    rows = np.flatnonzero(mask)
    found = flag(ds, mask, name_var, "")
    # the message depends on the row's (code, name) combination; flag() keeps the rows' order
    found["message"] = [messages[(ctext[c], ntext[n])] for c, n in zip(ccodes[rows], ncodes[rows])]
    return found


_CONSTRAINTS: dict = {}


def _pair_constraint(code_var: str, key: str) -> dict:
    # one dict per (variable, tables): validator_for() caches validators by the constraint's id
    return _CONSTRAINTS.setdefault((code_var, key), {"field": code_var, "pair": key})


# ----------------------------------------------------------------------------- SD0206 dates


@rule("SD0206", "error", "Date/time not valid ISO 8601", p21=("SD0003",))
def iso8601_datetime(study):
    """Every date/time variable (--DTC, --STDTC, --ENDTC, RF*DTC, BRTHDTC, DTHDTC, ... : the IG
    value domain 'ISO 8601 datetime or interval', or a name ending in DTC outside the IG) must
    hold ISO 8601 text that is also a real calendar date: complete or right-truncated
    ('2021-03-15T09:30', '2021-03'), the SDTMIG hyphen forms for unknown middle parts
    ('2021---15'), or an interval of two such values. '2021-02-30', '15/03/2021', '2021-3-5' and
    '2021-03-15 09:30' are not. Checked on the distinct values of each column with
    `dates.is_iso8601`; Cerberus ('iso8601') judges the ones that fail the screen."""
    return _iso_rule(study, (DATETIME,), _date_message)


@rule("SD0207", "error", "Duration not valid ISO 8601")
def iso8601_duration(study):
    """Duration variables (--DUR, --ELTM, --PDUR, TEDUR, ...: the IG value domain 'ISO 8601
    duration') must hold an ISO 8601 duration: PnYnMnDTnHnMnS with any part omitted (P2D,
    PT1H30M, P1Y6M, the smallest part may carry a fraction) or PnW; SDTMIG allows a leading '-'
    for an elapsed time before the reference ('-PT15M'). '2 days', 'P1DT' and '30 min' are not."""
    return _iso_rule(study, (DURATION, DURATION_OR_INTERVAL), _duration_message)


def _iso_rule(study, kinds, message):
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            kind = rules.get("iso8601")
            if kind not in kinds:
                continue
            codes, verdicts = check_column(study, ds, col, rules, ("iso8601",),
                                           lambda u, k=kind: _not_iso(u, k))
            found = _flag_verdicts(ds, col, codes, verdicts, lambda v, c=col: message(c, v.text))
            if found is not None:
                out.append(found)
    return out


def _not_iso(uniques: pd.Series, kind: str) -> np.ndarray:
    text = texts_of(uniques)
    if kind == DATETIME:   # intervals fail is_iso8601 too: Cerberus judges them
        return (~is_iso8601(text)).to_numpy()
    return ((text != "") & ~text.str.fullmatch(DURATION_RE.pattern)).to_numpy()


_DMY = re.compile(r"(\d{1,2})[/.-]([A-Za-z]{3}|\d{1,2})[/.-](\d{2}|\d{4})(?:[ T].*)?")
_LOOSE = re.compile(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?(?:([ T])(.*))?")
_TIME = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?")


def _date_reason(text: str) -> str:
    """Why a value is not ISO 8601, in a few words (best effort)."""
    if "/" in text and not _DMY.fullmatch(text):
        return "an interval needs two valid ISO 8601 parts (start/end, start/duration or duration/end)"
    if text != text.strip():
        return "leading or trailing blanks"
    if _DMY.fullmatch(text):
        return "day-month-year order; ISO 8601 writes the year first"
    m = _LOOSE.fullmatch(text)
    if m:
        year, month, day, sep, time = m.groups()
        if len(month) == 1 or (day is not None and len(day) == 1):
            return "month and day need two digits"
        if not 1 <= int(month) <= 12:
            return f"there is no month {month}"
        if day is not None:
            days = calendar.monthrange(int(year), int(month))[1]
            if not 1 <= int(day) <= days:
                return f"{calendar.month_name[int(month)]} {year} has {days} days"
        if sep == " ":
            return "date and time are separated by 'T', not a blank"
        if sep == "T":
            t = _TIME.fullmatch(time or "")
            if not t:
                return "the time must be hh:mm[:ss] (24-hour clock)"
            hh, mm, ss = t.groups()
            if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 59):
                return "hour 00-23, minutes and seconds 00-59"
            if day is None:
                return "a time needs a complete date"
        if int(year) == 0:
            return "there is no year 0000"
        if text.endswith("-"):
            return "unknown trailing parts are left out, not hyphenated"
    return "not the ISO 8601 pattern"


def _date_message(col: str, text: str) -> str:
    return (f"{col} = '{text}' is not a valid ISO 8601 date/time ({_date_reason(text)}): expected "
            f"YYYY-MM-DDThh:mm:ss, right-truncated when partly unknown (e.g. 2021-03-15T09:30, 2021-03)")


def _duration_message(col: str, text: str) -> str:
    return (f"{col} = '{text}' is not an ISO 8601 duration: expected PnYnMnDTnHnMnS or PnW with the "
            f"unused parts left out, e.g. P2D, PT1H30M, P1Y6M, P3W")


# ----------------------------------------------------------------------------- SD0208/SD0209 names


@rule("SD0208", "error", "--TESTCD/TSPARMCD not a valid short name",
      core=("CORE-000220", "CG0372"), p21=("SD0018",))
def short_name(study):
    """--TESTCD and --PARMCD (TSPARMCD, OIPARMCD) values become variable names when a dataset is
    transposed, so they follow the SAS V5 name rules: at most 8 characters, a letter first, then
    only letters A-Z, digits and underscores ('1GLUC', 'GLUC-SER' and 'HEMOGLOBIN' are not
    valid). Checked per distinct value with the schema's 'sdtmname' constraint. SUPP-- QNAM
    follows the same rules; its check is SD0425 (SUPP-- family)."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if "sdtmname" not in rules:
                continue
            codes, verdicts = check_column(study, ds, col, rules, ("sdtmname",), _bad_name)
            found = _flag_verdicts(ds, col, codes, verdicts, lambda v, c=col: (
                f"{c} = '{v.text}' is not a valid short name: "
                + "; ".join(str(i) for e in v.errors for i in e.info)
                + f"; use at most {NAME_LENGTH} characters A-Z, 0-9 or _, starting with a letter"))
            if found is not None:
                out.append(found)
    return out


def _bad_name(uniques: pd.Series) -> np.ndarray:
    text = texts_of(uniques)
    ok = (text == "") | ((text.str.len() <= NAME_LENGTH) & text.str.fullmatch(NAME_RE.pattern))
    return (~ok.astype(bool)).to_numpy()


@rule("SD0209", "error", "--TEST/TSPARM longer than 40 characters",
      core=("CORE-000199",), p21=("SD0017",))
def test_name_length(study):
    """--TEST (and TSPARM, OIPARM) values become variable labels when a dataset is transposed,
    and a SAS V5 label holds 40 characters: the IG limits them to 40 (IETEST, the criterion
    text, excepted). Checked per distinct value with the schema's 'maxlength' constraint."""
    out = []
    for ds, schema in _datasets(study):
        for col in ds.columns:
            rules = schema.get(col, {})
            if "maxlength" not in rules:
                continue
            codes, verdicts = check_column(study, ds, col, rules, ("maxlength",),
                                           lambda u: (texts_of(u).str.len() > TEST_LENGTH).to_numpy())
            found = _flag_verdicts(ds, col, codes, verdicts, lambda v, c=col: (
                f"{c} = '{v.text}' is {len(v.text)} characters long: at most {TEST_LENGTH} are allowed; "
                f"use the CDISC CT name if there is one, or a shorter name"))
            if found is not None:
                out.append(found)
    return out
