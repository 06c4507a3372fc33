"""Consistency within a domain: rules SD03xx.

Each rule compares values inside one domain (keys, paired variables, results, dates, flags) and,
where the rule is domain-wide, across all parts of a split domain together (LBCH/LBHE/LBUR are one
LB; QSxx one QS): `StudyData.domain(code)` gives the parts stacked with `__dataset__`, and every
finding still names the part and the row of that part's file.

The rules work on whole columns; where a message must name a group (the other records that share
a --SEQ, the values a --TESTCD takes) the loop is over groups, never over rows.  A rule that misses
a column it needs returns nothing.
"""
from __future__ import annotations

import re
import weakref

import numpy as np
import pandas as pd

from ..dates import compare_dtc, dtc_precision, study_day
from .model import _as_text, dataset_finding, flag, rule

FINDINGS = ("Findings", "Findings About")
_COMPLETE = ("day", "hour", "minute", "second")
GENERAL = FINDINGS + ("Events", "Interventions")

# A plain number, as --STRESC holds a numeric result ("8.55", "-3", "1E-3").
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
# A continuous result as Pinnacle 21 reads it for reference ranges: the number may carry a
# leading comparison and sign ("<0.2", "<= -1.2", ">250").
_CONTINUOUS = r"(?:>=|<=|>|<|=)?\s?-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


# --------------------------------------------------------------------------------- helpers


def _domains(study) -> list[str]:
    return sorted({d.domain for d in study.datasets.values() if not d.is_supp})


def _class(study, code: str, frame: pd.DataFrame) -> str:
    """The observation class of a domain: from the IG, else guessed from its topic variable."""
    try:
        return study.ig.dataset(code).class_
    except Exception:  # noqa: BLE001 - a custom domain the IG does not know
        pass
    if f"{code}TESTCD" in frame.columns:
        return "Findings"
    if f"{code}TERM" in frame.columns:
        return "Events"
    if f"{code}TRT" in frame.columns:
        return "Interventions"
    return ""


def _frames(study, classes=None, subject_level=True):
    """(code, class, frame) for each domain, optionally only some classes / subject-level ones."""
    for code in _domains(study):
        frame = study.domain(code)
        if frame is None or frame.empty:
            continue
        cls = _class(study, code, frame)
        if classes is not None and cls not in classes:
            continue
        if subject_level and "USUBJID" not in frame.columns:
            continue
        yield code, cls, frame


def _txt(s: pd.Series) -> pd.Series:
    """Values as trimmed text, '' when missing; numbers as the framework writes them (3, 8.55)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
        labels = np.array([_as_text(float(v)) for v in uniq] + [""], dtype=object)
        return pd.Series(labels[codes], index=s.index, dtype=object)
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").str.strip()
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as text, or a column of '' when the dataset does not have it."""
    if name in frame.columns:
        return _txt(frame[name])
    return pd.Series("", index=frame.index, dtype=object)


def _filled(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(False, index=frame.index)
    s = frame[name]
    if pd.api.types.is_numeric_dtype(s):
        return s.notna()
    return _txt(s) != ""


def _parse(t: pd.Series, pattern: str = _NUMBER) -> tuple[pd.Series, pd.Series]:
    """(is a number, its value) for text values, parsed once per distinct value."""
    codes, uniq = pd.factorize(t, use_na_sentinel=True)
    u = pd.Series(np.asarray(uniq, dtype=object)).astype(str)
    ok = u.str.fullmatch(pattern).fillna(False).astype(bool)
    val = pd.to_numeric(u.where(ok), errors="coerce").astype(float)
    ok_arr = np.append(ok.to_numpy(), False)[codes]
    val_arr = np.append(val.to_numpy(), np.nan)[codes]
    return pd.Series(ok_arr, index=t.index), pd.Series(val_arr, index=t.index)


def _num(s: pd.Series, pattern: str = _NUMBER) -> pd.Series:
    """Numbers of a column: numeric columns as they are, text columns where the text is a number."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    return _parse(_txt(s), pattern)[1]


def _where(frame: pd.DataFrame) -> pd.Series:
    """'LBCH row 12' for each row of a (possibly stacked) domain frame."""
    part = frame["__dataset__"].astype(str) if "__dataset__" in frame.columns else pd.Series("", index=frame.index)
    return part + " row " + frame["__row__"].astype(int).astype(str)


def _flag(study, frame: pd.DataFrame, mask, variable, message, *, value=None, severity=None) -> list:
    """flag() for a domain frame that may stack several parts: one call per part, rows of that part.

    message may also be a Series aligned with frame (one message per row), for messages that
    name a group (the other records of a duplicate key ...)."""
    mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool).to_numpy()
    if not mask.any():
        return []
    parts = frame["__dataset__"].to_numpy() if "__dataset__" in frame.columns else None
    out = []
    names = sorted(set(parts[mask])) if parts is not None else []
    for name in names:
        ds = study.datasets[name]
        sel = parts == name
        if sel.sum() != len(ds.df):  # should not happen: the frame is the parts stacked
            continue
        m = pd.Series(mask[sel], index=ds.df.index)
        val = None
        if value is not None:
            val = pd.Series(np.asarray(value, dtype=object)[sel], index=ds.df.index)
        if isinstance(message, pd.Series):
            msgs = np.asarray(message, dtype=object)[sel][mask[sel]]
            found = flag(ds, m, variable, "", value=val, severity=severity)
            found["message"] = msgs
        else:
            found = flag(ds, m, variable, message, value=val, severity=severity)
        out.append(found)
    return out


def _q(v) -> str:
    """A value quoted for a message: text in quotes, numbers bare."""
    return v if _looks_numeric(v) else f"'{v}'"


def _looks_numeric(v: str) -> bool:
    try:
        float(v)
        return v.strip() != "" and v.strip().lower() not in ("nan", "inf", "-inf", "infinity")
    except ValueError:
        return False


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _one_to_one(frame: pd.DataFrame, a: str, b: str, within: tuple = ()):
    """Rows whose `b` is not the usual `b` of their `a` (within groups of `within`).

    Returns (mask, messages) or None. For each value of `a` (per `within` group) with more than
    one value of `b`, the most frequent `b` (the first seen on a tie) is taken as meant, and the
    other rows are flagged; the message lists every value with its count.
    """
    if a not in frame.columns or b not in frame.columns:
        return None
    keys = [w for w in within if w in frame.columns] + [a]
    t = pd.DataFrame({k: _txt(frame[k]) for k in dict.fromkeys(keys + [b])}, index=frame.index)
    ok = (t[a] != "") & (t[b] != "")
    t = t[ok]
    if t.empty:
        return None
    counts = t.groupby(keys + [b], sort=False).size().rename("_n").reset_index()
    nb = counts.groupby(keys, sort=False)[b].transform("size")
    bad = counts[nb > 1]
    if bad.empty:
        return None
    bad = bad.sort_values(keys + ["_n"], ascending=[True] * len(keys) + [False], kind="stable")
    rows = []
    for key, grp in bad.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        listed = ", ".join(f"{_q(v)} ({_plural(n, 'record')})" for v, n in zip(grp[b], grp["_n"]))
        ctx = "".join(f" and {k} = {_q(v)}" for k, v in zip(keys[:-1], key[:-1]))
        avalue = key[-1]
        msg = (f"{a} = {_q(avalue)}{ctx} has {len(grp)} values of {b}: {listed}; "
               f"each {a} must have one {b} (expected {_q(grp[b].iloc[0])} here)")
        rows.append((*key, grp[b].iloc[0], msg))
    dom = pd.DataFrame(rows, columns=keys + ["_dom", "_msg"])
    merged = t.assign(_i=t.index).merge(dom, on=keys, how="left").set_index("_i")
    mask = merged["_dom"].notna() & (merged[b] != merged["_dom"])
    mask = mask.reindex(frame.index, fill_value=False)
    msgs = merged["_msg"].reindex(frame.index).fillna("")
    return mask, msgs


def _dm(study) -> pd.DataFrame | None:
    dm = study.domain("DM")
    if dm is None or "USUBJID" not in dm.columns:
        return None
    return dm


# ----------------------------------------------------------------------- keys and duplicates


@rule("SD0301", "error", "--SEQ unique per USUBJID within a domain",
      core=("CORE-000544", "CG0028"), p21=("SD0005",))
def seq_unique(study):
    """--SEQ must identify a record within a subject and a domain: two records of one subject
    with the same --SEQ cannot be told apart by SUPP--, RELREC or a reviewer.  Checked across all
    parts of a split domain together (LBCH, LBHE and LBUR share one LBSEQ numbering), since a
    reviewer merges them back into LB.  Every record of a shared --SEQ is flagged, naming the
    first one."""
    out = []
    for code, _, frame in _frames(study):
        seq = f"{code}SEQ"
        if seq not in frame.columns:
            continue
        s = _txt(frame[seq])
        key = pd.DataFrame({"u": _txt(frame["USUBJID"]), "s": s})
        dup = key.duplicated(keep=False) & (s != "")
        if not dup.any():
            continue
        where = _where(frame)
        g = key[dup].groupby(["u", "s"], sort=False)
        n = g["s"].transform("size")
        first = where[dup].groupby([key.loc[dup, "u"], key.loc[dup, "s"]], sort=False).transform("first")
        msg = pd.Series("", index=frame.index, dtype=object)
        msg[dup] = (seq + " = " + s[dup] + " is used by " + n.astype(str) + " records of USUBJID "
                    + key.loc[dup, "u"] + " in " + code + " (first: " + first
                    + "); --SEQ must be unique per subject within a domain: renumber them")
        out += _flag(study, frame, dup, seq, msg)
    return out


_FINDINGS_KEY = ("TESTCD", "TSTDTL", "OBJ", "CAT", "SCAT", "POS", "SPEC", "METHOD", "LOC", "LAT",
                 "DIR", "EVAL", "EVALID", "TPTREF", "TPTNUM", "DTC")
_EVENTS_KEY = ("TERM", "DECOD", "CAT", "SCAT", "OCCUR", "LOC", "LAT", "DIR", "SEV", "TOXGR",
               "STTPT", "STDTC")
_INTERVENTIONS_KEY = ("TRT", "DECOD", "MOOD", "CAT", "SCAT", "ROUTE", "LOC", "TRTV", "STDTC",
                      "TPT", "TPTNUM")


@rule("SD0302", "warning", "Duplicate records (same natural key)",
      p21=("SD1117", "SD1201", "SD1352"))
def natural_key_duplicates(study):
    """A Findings domain holds one result per subject, test and time point; an Events domain one
    record per event; an Interventions domain one record per intervention episode.  Two records
    that agree on the natural key (USUBJID with, for Findings, --TESTCD and the qualifiers that
    tell results apart: --TSTDTL, --OBJ, --CAT, --SCAT, --POS, --SPEC, --METHOD, --LOC, --LAT,
    --DIR, --EVAL, --EVALID, --TPTREF, --TPTNUM, --DTC; for Events, --TERM, --DECOD, --CAT,
    --SCAT, --OCCUR, --LOC, --LAT, --DIR, --SEV, --TOXGR, --STTPT, --STDTC; for Interventions,
    --TRT, --DECOD, --MOOD, --CAT, --SCAT, --ROUTE, --LOC, --TRTV, --STDTC, --TPT, --TPTNUM; and
    VISITNUM in every class: whichever exist) are the same observation entered twice.  The key
    lists follow Pinnacle 21 SD1117 / SD1201 / SD1352, plus VISITNUM: a medication log repeated at
    each visit is not a duplicate of itself.  The second and later records are flagged, each
    naming the first."""
    out = []
    suffixes = {"Findings": _FINDINGS_KEY, "Findings About": _FINDINGS_KEY,
                "Events": _EVENTS_KEY, "Interventions": _INTERVENTIONS_KEY}
    for code, cls, frame in _frames(study, GENERAL):
        topic = {"Events": "TERM", "Interventions": "TRT"}.get(cls, "TESTCD")
        if f"{code}{topic}" not in frame.columns:
            continue
        keys = ["USUBJID"] + [f"{code}{s}" for s in suffixes[cls] if f"{code}{s}" in frame.columns]
        if "VISITNUM" in frame.columns:
            keys.append("VISITNUM")
        t = pd.DataFrame({k: _txt(frame[k]) for k in keys}, index=frame.index)
        later = t.duplicated(keep="first") & (t[f"{code}{topic}"] != "")
        if not later.any():
            continue
        first = _where(frame).groupby([t[k] for k in keys], sort=False).transform("first")
        what, apart = {"Events": ("event", "--STDTC, --SEV"),
                       "Interventions": ("intervention episode", "--STDTC, --ROUTE, --TPTNUM")
                       }.get(cls, ("result", "--TPTNUM, --SPEC, --DTC"))
        msg = ("duplicates " + first + " (same " + ", ".join(keys) + "): one record per " + what
               + "; remove the copy or tell the records apart (e.g. " + apart + ")")
        out += _flag(study, frame, later, f"{code}{topic}", msg)
    return out


# --------------------------------------------------------------------------- paired variables


@rule("SD0303", "error", "--TESTCD has one --TEST within a domain (QS: within QSCAT)",
      core=("CORE-000303",), p21=("SD0040",), fda=("FDAB009",))
def testcd_one_test(study):
    """--TESTCD and --TEST name the same test: each test code must carry a single test name in
    a domain, across its split parts.  In QS the same code may name different items of different
    questionnaires, so there the pairing is checked within each QSCAT.  The most frequent name is
    taken as meant; the other records are flagged, and the message lists every name in use."""
    return _test_pairing(study, "TESTCD", "TEST")


@rule("SD0304", "error", "--TEST has one --TESTCD within a domain (QS: within QSCAT)",
      core=("CORE-000303",), p21=("SD1043",), fda=("FDAB009",))
def test_one_testcd(study):
    """The converse of SD0303: one test name must map to a single test code in a domain (within
    QSCAT for QS), otherwise results of one test are split across codes and a reviewer's
    tabulation by --TESTCD misses some of them."""
    return _test_pairing(study, "TEST", "TESTCD")


def _test_pairing(study, key: str, other: str) -> list:
    """Records whose --<other> differs from the one most used with their --<key> (QS: per QSCAT)."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        within = (f"{code}CAT",) if code == "QS" else ()
        res = _one_to_one(frame, f"{code}{key}", f"{code}{other}", within)
        if res is not None:
            out += _flag(study, frame, res[0], f"{code}{other}", res[1])
    return out


@rule("SD0305", "warning", "--STRESU constant for a test",
      core=("CORE-000699",), p21=("SD0007",), fda=("FDAB030",))
def stresu_constant(study):
    """Standard units exist so that results of one test can be compared and summarised: all
    records of one test (--TESTCD with, where present, --CAT, --SCAT, --SPEC, --METHOD, --TSTDTL,
    --OBJ)
    must use one --STRESU.  Records without a unit are not compared (a missing unit is another
    rule's business).  The most frequent unit is taken as the standard one."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        within = tuple(f"{code}{s}" for s in ("CAT", "SCAT", "SPEC", "METHOD", "TSTDTL", "OBJ"))
        res = _one_to_one(frame, f"{code}TESTCD", f"{code}STRESU", within)
        if res is not None:
            msgs = res[1].str.replace(r"each (\S+) must have one (\S+)",
                                      r"all results of a test must use one standard unit", regex=True)
            out += _flag(study, frame, res[0], f"{code}STRESU", msgs)
    return out


# --------------------------------------------------------------------------------- results


def _stres(frame, code):
    c, n = f"{code}STRESC", f"{code}STRESN"
    if c not in frame.columns or n not in frame.columns:
        return None
    stresc = _txt(frame[c])
    numeric, value = _parse(stresc)
    stresn = _num(frame[n])
    return stresc, numeric, value, stresn


@rule("SD0306", "error", "--STRESN populated exactly when --STRESC is numeric",
      core=("CORE-000863", "CORE-000732", "CORE-000542"), fda=("FB3101", "FB3102", "FB3103"),
      p21=("SD1122", "SD1448"))
def stresn_presence(study):
    """--STRESN is the numeric form of the standard result: it must be populated when --STRESC
    holds a number, and empty when --STRESC is text ('NEGATIVE', '<0.2'), where there is no
    number to give (FDA business rules FB3101-FB3103)."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        got = _stres(frame, code)
        if got is None:
            continue
        stresc, numeric, value, stresn = got
        n = f"{code}STRESN"
        missing = numeric & stresn.isna()
        out += _flag(study, frame, missing, n,
                     lambda v, c=code: f"{c}STRESN is empty but {c}STRESC = {v} is numeric: "
                                       f"set {c}STRESN = {v}", value=stresc)
        extra = ~numeric & stresn.notna() & (_txt(frame[n]) != "")
        out += _flag(study, frame, extra, n,
                     lambda v, c=code: f"{c}STRESN = {v} but {c}STRESC is not a number: "
                                       f"{c}STRESN must be empty when {c}STRESC is text (or empty)")
    return out


def _same_up_to_noise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal once both are rounded to 12 significant digits (floating-point noise only)."""
    scale = np.maximum(np.abs(a), np.abs(b))
    return np.abs(a - b) <= 1e-12 * np.where(scale == 0, 1.0, scale)


def _round12(text: str) -> str:
    try:
        return np.format_float_positional(float(f"{float(text):.12g}"), trim="-")
    except ValueError:
        return text


def _stres_differ(frame, code):
    """For a domain with --STRESC and --STRESN: (stresc, numeric, stresn, real, noise, shown) where
    `real` marks a number in --STRESN other than the one --STRESC states and `noise` one that
    agrees with it once both are rounded to 12 significant digits (floating-point noise)."""
    got = _stres(frame, code)
    if got is None:
        return None
    stresc, numeric, value, stresn = got
    c, n = f"{code}STRESC", f"{code}STRESN"
    differ = numeric & stresn.notna() & (value != stresn)
    noise = differ & _same_up_to_noise(value.to_numpy(), stresn.to_numpy())
    shown = pd.Series("", index=frame.index, dtype=object)
    shown[differ] = c + " = '" + stresc[differ] + "', " + n + " = " + _txt(stresn[differ])
    return stresc, numeric, stresn, differ & ~noise, noise, shown


@rule("SD0307", "error", "--STRESN equals the numeric value of --STRESC",
      core=("CORE-000542",), fda=("FB3101", "FB3102", "FB3103"),
      p21=("SD1212",))
def stresn_equals_stresc(study):
    """When --STRESC is a number, --STRESN must be that number: analyses use --STRESN while
    listings show --STRESC, and the two must agree.  A difference left by rounding one and not
    the other (STRESC '56.7', STRESN 56.724138) is a mismatch.  Differences of floating-point noise
    only (the two agree when rounded to 12 significant digits) are SD0337's."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        got = _stres_differ(frame, code)
        if got is None:
            continue
        real, shown = got[3], got[5]
        c, n = f"{code}STRESC", f"{code}STRESN"
        out += _flag(study, frame, real, n,
                     lambda v, c=c, n=n: f"{v}: {n} must equal the numeric value of {c} "
                                         f"(round {n} as {c} is rounded, or fix {c})",
                     value=shown)
    return out


@rule("SD0308", "warning", "--STRESU populated without --STRESC",
      core=("CORE-000133", "CG0426"), p21=("SD0030",))
def stresu_without_stresc(study):
    """A standard unit belongs to a standard result: --STRESU without --STRESC is a unit for
    nothing (a not-done test keeps neither)."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        u, c = f"{code}STRESU", f"{code}STRESC"
        if u not in frame.columns or c not in frame.columns:
            continue
        mask = _filled(frame, u) & ~_filled(frame, c)
        out += _flag(study, frame, mask, u,
                     lambda v, c=c, u=u: f"{u} = '{v}' but {c} is empty: give the standard "
                                         f"result in {c} or leave {u} empty")
    return out


@rule("SD0309", "warning", "--ORRES missing without --STAT = 'NOT DONE'",
      core=("CORE-000200", "CG0348"), p21=("SD0047",))
def orres_or_not_done(study):
    """A Findings record either has a result (--ORRES) or says why not (--STAT = 'NOT DONE').
    Derived records (--DRVFL = 'Y', e.g. questionnaire totals computed by the sponsor) have no
    collected result and are exempt, as Pinnacle 21 SD0047 exempts them."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        o = f"{code}ORRES"
        if o not in frame.columns:
            continue
        stat = _col(frame, f"{code}STAT").str.upper()
        derived = _col(frame, f"{code}DRVFL").str.upper() == "Y"
        mask = ~_filled(frame, o) & (stat != "NOT DONE") & ~derived
        test = _col(frame, f"{code}TESTCD")
        out += _flag(study, frame, mask, o,
                     lambda v, c=code: f"{c}ORRES is empty for {c}TESTCD = '{v}' and {c}STAT is not "
                                       f"'NOT DONE': give the result, or set {c}STAT = 'NOT DONE' "
                                       f"(with {c}REASND)", value=test)
    return out


@rule("SD0310", "warning", "--STRESC missing where --ORRES is given",
      core=("CORE-000021", "CG0397"), p21=("SD0036",))
def stresc_when_orres(study):
    """Every collected result (--ORRES) must also be given in standard format (--STRESC): the
    standardised columns are the ones reviewers analyse."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        o, c = f"{code}ORRES", f"{code}STRESC"
        if o not in frame.columns or c not in frame.columns:
            continue
        mask = _filled(frame, o) & ~_filled(frame, c)
        out += _flag(study, frame, mask, c,
                     lambda v, c=c, o=o: f"{c} is empty but {o} = '{v}': give the result in "
                                         f"standard format in {c}", value=_col(frame, o))
    return out


@rule("SD0311", "warning", "--STAT = 'NOT DONE' but a result is given",
      core=("CORE-000099", "CG0422"), p21=("SD1123",), fda=("FDAB042",))
def not_done_with_result(study):
    """--STAT = 'NOT DONE' says there is no result: a record that has one (--ORRES or --STRESC)
    contradicts itself.  Either the test was done (clear --STAT and --REASND) or the result does
    not belong there."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        s = f"{code}STAT"
        if s not in frame.columns:
            continue
        nd = _col(frame, s).str.upper() == "NOT DONE"
        for var in (f"{code}ORRES", f"{code}STRESC"):
            if var in frame.columns:
                mask = nd & _filled(frame, var)
                out += _flag(study, frame, mask, var,
                             lambda v, s=s, var=var: f"{s} = 'NOT DONE' but {var} = '{v}': a test "
                                                     f"not done has no result; clear {var} or {s}")
                break  # one finding per record: --ORRES when present, else --STRESC
    return out


@rule("SD0312", "warning", "--STAT = 'NOT DONE' without --REASND",
      core=("CORE-000774",), fda=("FB4202",))
def not_done_reason(study):
    """When an observation was not done, --REASND says why; 'NOT DONE' without a reason (or in a
    dataset without --REASND at all) leaves the reviewer guessing."""
    out = []
    for code, cls, frame in _frames(study, GENERAL, subject_level=False):
        s = f"{code}STAT"
        if s not in frame.columns:
            continue
        r = f"{code}REASND"
        mask = (_col(frame, s).str.upper() == "NOT DONE") & ~_filled(frame, r)
        how = "is empty" if r in frame.columns else "is not in the dataset"
        out += _flag(study, frame, mask, s,
                     f"{s} = 'NOT DONE' but {r} {how}: give the reason the observation was not done")
    return out


# ------------------------------------------------------------------------------------ dates


@rule("SD0313", "error", "--STDTC after --ENDTC",
      core=("CORE-000718", "CORE-000866"), fda=("FB3209",), p21=("SD0013", "SD0025"))
def start_before_end(study):
    """A start cannot follow its end.  --STDTC is compared with --ENDTC (and, in Findings, the
    collection --DTC with the end of collection --ENDTC) at the precision both share: '2021-10'
    is after '2021-09-30', but cannot be ordered against '2021-10-15'; such undeterminable pairs
    are not findings."""
    out = []
    for ds in study.datasets.values():
        if ds.is_supp:
            continue
        code, df = ds.domain, ds.df
        end = f"{code}ENDTC"
        if end not in df.columns:
            continue
        starts = [f"{code}STDTC"]
        cls = _class(study, code, df)
        if cls in FINDINGS:
            starts.append(f"{code}DTC")
        for start in starts:
            if start not in df.columns:
                continue
            after = (compare_dtc(_txt(df[start]), _txt(df[end])) == 1).fillna(False).astype(bool)
            if not after.any():
                continue
            shown = pd.Series("", index=df.index, dtype=object)
            shown[after] = start + " = " + _txt(df[start][after]) + ", " + end + " = " + _txt(df[end][after])
            out.append(flag(ds, after, start,
                            lambda v, s=start, e=end: f"{v}: {s} is after {e}; the start must be on or "
                                                      f"before the end (swap or correct the dates)",
                            value=shown))
    return out


_DY_PAIRS = (("DY", "DTC"), ("STDY", "STDTC"), ("ENDY", "ENDTC"))


_DAYS: dict = {}


def _study_days(study) -> list:
    """(dataset, dy variable, dtc variable, given days, expected days, subject known, ref) for every
    --DY / --STDY / --ENDY with its date in a subject-level dataset.  SD0314 and SD0315 both need
    them: computed once per study (dropped when the study is)."""
    key = id(study)
    hit = _DAYS.get(key)
    if hit is not None and hit[0]() is study:
        return hit[1]
    days = list(_compute_study_days(study))
    try:
        _DAYS[key] = (weakref.ref(study), days)
        weakref.finalize(study, _DAYS.pop, key, None)
    except TypeError:  # not weak-referenceable: no cache
        pass
    return days


def _compute_study_days(study):
    dm = _dm(study)
    if dm is None or "RFSTDTC" not in dm.columns:
        return
    rf = pd.Series(_txt(dm["RFSTDTC"]).to_numpy(), index=_txt(dm["USUBJID"]).to_numpy())
    rf = rf[~rf.index.duplicated()]
    for ds in study.datasets.values():
        if ds.is_supp or "USUBJID" not in ds.df.columns:
            continue
        df, code = ds.df, ds.domain
        subj = _txt(df["USUBJID"])
        known = subj.isin(rf.index)
        ref = subj.map(rf).fillna("")
        for dy_s, dtc_s in _DY_PAIRS:
            dy, dtc = f"{code}{dy_s}", f"{code}{dtc_s}"
            if dy not in df.columns or dtc not in df.columns:
                continue
            given = _num(df[dy])
            expected = study_day(_txt(df[dtc]), ref).astype("Float64").astype(float)
            yield ds, dy, dtc, given, expected, known, ref


@rule("SD0314", "error", "--DY / --STDY / --ENDY inconsistent with the date and RFSTDTC, or 0",
      core=("CORE-000552", "CORE-000529", "CORE-000553", "CG0006", "CG0220", "CG0222"),
      fda=("FB1603",), p21=("SD1086", "SD1090", "SD1094", "SD0038"))
def study_day_consistent(study):
    """Study days follow the SDTMIG algorithm: date - DM.RFSTDTC + 1 on or after the reference
    day, date - RFSTDTC before it, so there is no day 0.  A populated --DY that differs from that
    (for complete dates) or is 0 is wrong.  Needs DM with RFSTDTC; without it the rule is skipped."""
    out = []
    for ds, dy, dtc, given, expected, known, ref in _study_days(study):
        df = ds.df
        zero = given == 0
        wrong = given.notna() & expected.notna() & (given != expected) & ~zero
        text = given.isna() & (_txt(df[dy]) != "")
        if text.any():
            out.append(flag(ds, text, dy, lambda v, dy=dy: f"{dy} = '{v}' is not a number: a study "
                                                           f"day is an integer (no day 0)"))
        if wrong.any():
            found = flag(ds, wrong, dy, "", value=given)
            found["message"] = (dy + " = " + _txt(given[wrong]) + " for " + dtc + " = "
                                + _txt(df[dtc][wrong]) + ", RFSTDTC = " + ref[wrong] + ": expected "
                                + dy + " = " + _txt(expected[wrong])
                                + " (SDTMIG study day: date - RFSTDTC + 1 from the reference day "
                                  "on, date - RFSTDTC before it)").to_numpy()
            out.append(found)
        if zero.any():
            out.append(flag(ds, zero, dy, f"{dy} = 0: there is no study day 0 (the reference day is "
                                          f"day 1, the day before it day -1)", value=given))
    return out


@rule("SD0315", "warning", "--DY missing where computable, or given where it cannot be computed",
      core=("CORE-000853", "CORE-000354", "CORE-000138", "CORE-000139", "CG0007", "CG0221",
            "CG0223"),
      p21=("SD1084", "SD1088", "SD1092", "SD1085", "SD1089", "SD1093"), fda=("FDAB016",))
def study_day_populated(study):
    """--DY should be given whenever its date and DM.RFSTDTC are both complete dates, and only
    then: a study day next to a partial date (or for a subject without RFSTDTC) was imputed, which
    the SDTMIG does not allow.  Subjects missing from DM are another rule's finding."""
    out = []
    for ds, dy, dtc, given, expected, known, ref in _study_days(study):
        df = ds.df
        missing = expected.notna() & (_txt(df[dy]) == "")
        if missing.any():
            found = flag(ds, missing, dy, "", value=_txt(df[dtc]))
            found["message"] = (dy + " is empty but " + dtc + " = " + _txt(df[dtc][missing])
                                + " and RFSTDTC = " + ref[missing] + " are complete: set " + dy
                                + " = " + _txt(expected[missing])).to_numpy()
            out.append(found)
        imputed = known & expected.isna() & given.notna() & (given != 0)
        if imputed.any():
            found = flag(ds, imputed, dy, "", value=given)
            found["message"] = (dy + " = " + _txt(given[imputed]) + " but " + dtc + " = '"
                                + _txt(df[dtc][imputed]) + "' and RFSTDTC = '" + ref[imputed]
                                + "' are not both complete dates: a study day cannot be computed, "
                                  "leave " + dy + " empty").to_numpy()
            out.append(found)
    return out


# ----------------------------------------------------------------------------------- visits


@rule("SD0316", "error", "VISITNUM and VISIT one-to-one within a domain",
      core=("CORE-000361", "CG0035"), p21=("SD0051", "SD0052"))
def visit_one_to_one(study):
    """VISITNUM and VISIT name the same visit: within a domain each visit number has one name and
    each name one number.  Numbers are compared exactly, so 9.3 and 9.299999999999999 (a visit
    number computed in floating point) are two numbers for one visit."""
    out = []
    for code, cls, frame in _frames(study, subject_level=False):
        if "VISITNUM" not in frame.columns or "VISIT" not in frame.columns:
            continue
        res = _one_to_one(frame, "VISITNUM", "VISIT")
        if res is not None:
            out += _flag(study, frame, res[0], "VISIT", res[1])
        res = _one_to_one(frame, "VISIT", "VISITNUM")
        if res is not None:
            out += _flag(study, frame, res[0], "VISITNUM", res[1])
    return out


@rule("SD0317", "warning", "VISITNUM and VISIT paired as in SV/TV across domains",
      p21=("SD1023",))
def visit_across_domains(study):
    """A visit keeps its number and name in every domain, so that records of one visit can be
    joined: each domain's (VISITNUM, VISIT) pairs are compared with those of SV and TV (SV's with
    TV's only; with the other domains when neither exists).  A pair whose number the reference gives another name, or
    whose name the reference gives another number, is flagged; unscheduled visits absent from the
    reference are not."""
    pairs = {}
    for code, cls, frame in _frames(study, subject_level=False):
        if "VISITNUM" in frame.columns and "VISIT" in frame.columns:
            pairs[code] = (frame, _txt(frame["VISITNUM"]), _txt(frame["VISIT"]))
    if len(pairs) < 2:
        return []
    out = []
    for code, (frame, num, name) in pairs.items():
        if code == "TV":
            continue  # the plan itself
        if code == "SV":
            refs = ["TV"] if "TV" in pairs else []  # SV is the reference of the others
        else:
            refs = [c for c in ("SV", "TV") if c in pairs] or [c for c in pairs if c != code]
        if not refs:
            continue
        ref = pd.concat([pd.DataFrame({"n": pairs[c][1], "v": pairs[c][2]}) for c in refs])
        ref = ref[(ref["n"] != "") & (ref["v"] != "")].drop_duplicates()
        if ref.empty:
            continue
        names_of = ref.groupby("n")["v"].agg(lambda s: sorted(set(s)))
        nums_of = ref.groupby("v")["n"].agg(lambda s: sorted(set(s)))
        t = pd.DataFrame({"n": num, "v": name})
        ok = (t["n"] != "") & (t["v"] != "")
        distinct = t[ok].drop_duplicates()
        bad = {}
        for n, v in distinct.itertuples(index=False):  # distinct visit pairs, not rows
            other_names = names_of.get(n)
            other_nums = nums_of.get(v)
            src = "/".join(refs) if len(refs) <= 2 else "other domains"
            if other_names is not None and v not in other_names:
                bad[(n, v)] = (f"VISITNUM = {n} is VISIT {', '.join(repr(x) for x in other_names)} in "
                               f"{src} but VISIT = '{v}' here: use one name per visit number in "
                               f"every domain")
            elif other_nums is not None and n not in other_nums:
                noise = any(_looks_numeric(x) and _looks_numeric(n)
                            and abs(float(x) - float(n)) <= 1e-9 * max(1.0, abs(float(x)))
                            for x in other_nums)
                bad[(n, v)] = (f"VISIT = '{v}' is VISITNUM {', '.join(other_nums)} in {src} but "
                               f"VISITNUM = {n} here" + (" (floating-point noise: store the "
                                                         "rounded visit number)" if noise else "")
                               + ": use one number per visit in every domain")
        if not bad:
            continue
        table = pd.DataFrame([(n, v, m) for (n, v), m in bad.items()], columns=["n", "v", "_msg"])
        msg = t.assign(_i=t.index).merge(table, on=["n", "v"], how="left").set_index("_i")["_msg"]
        msg = msg.reindex(t.index).fillna("")
        mask = ok & (msg != "")
        out += _flag(study, frame, mask, "VISITNUM", msg, value=num)
    return out


# ------------------------------------------------------------------------------------- flags


_ASSESSMENT = ("TESTCD", "TSTDTL", "OBJ", "CAT", "SCAT", "METHOD", "SPEC", "LOC", "LAT", "DIR",
               "POS", "TPTREF", "TPTNUM")


def _one_flag(study, flagvar_suffix: str, what: str):
    out = []
    for code, cls, frame in _frames(study, FINDINGS):
        fl = f"{code}{flagvar_suffix}"
        if fl not in frame.columns or f"{code}TESTCD" not in frame.columns:
            continue
        y = _col(frame, fl).str.upper() == "Y"
        if not y.any():
            continue
        keys = ["USUBJID"] + [f"{code}{s}" for s in _ASSESSMENT if f"{code}{s}" in frame.columns]
        t = pd.DataFrame({k: _txt(frame[k]) for k in keys}, index=frame.index)[y]
        dup = t.duplicated(keep=False)
        if not dup.any():
            continue
        d = t[dup]
        where = _where(frame)[dup.index[dup]]
        grp = [d[k] for k in keys]
        n = d.groupby(grp, sort=False)[keys[0]].transform("size")
        rows = where.groupby(grp, sort=False).transform(lambda s: ", ".join(s.head(5))
                                                         + (", …" if len(s) > 5 else ""))
        shown = [k for k in keys[2:] if (d[k] != "").any()]
        ctx = pd.Series("", index=d.index, dtype=object)
        for k in shown:
            ctx = ctx + ", " + k + " = " + d[k]
        msg = pd.Series("", index=frame.index, dtype=object)
        msg[d.index] = (fl + " = 'Y' on " + n.astype(str) + " records of USUBJID " + d["USUBJID"]
                        + " for " + keys[1] + " = " + d[keys[1]] + ctx + " (" + rows
                        + "): at most one " + what + " record per subject and assessment")
        mask = pd.Series(False, index=frame.index)
        mask[d.index] = True
        out += _flag(study, frame, mask, fl, msg)
    return out


@rule("SD0318", "error", "--BLFL = 'Y' at most once per subject and assessment",
      core=("CORE-000914", "CG0569"), fda=("FB2601",), p21=("SD1439",))
def one_baseline(study):
    """A baseline is one record: a subject has at most one --BLFL = 'Y' per assessment.  The
    assessment is --TESTCD with the qualifiers that make a different measurement (--TSTDTL, --OBJ,
    --CAT, --SCAT, --METHOD, --SPEC, --LOC, --LAT, --DIR, --POS, as Pinnacle 21 SD1439) and the
    planned time point (--TPTREF, --TPTNUM): blood pressure 5 minutes supine and 1 and 3 minutes
    standing are three measurements with a baseline each (CORE-000914, keyed on --TESTCD only,
    reports those as duplicates).  Every flagged record of a duplicated assessment is listed."""
    return _one_flag(study, "BLFL", "baseline")


@rule("SD0319", "error", "--LOBXFL = 'Y' at most once per subject and assessment",
      core=("CORE-000915",), fda=("FB2602",), p21=("SD1445",))
def one_lobxfl(study):
    """The last observation before exposure is one record: at most one --LOBXFL = 'Y' per subject
    and assessment (same assessment key as SD0318)."""
    return _one_flag(study, "LOBXFL", "last-observation-before-exposure")


@rule("SD0320", "error", "Baseline / last-observation flag on a record without a result",
      core=("CORE-000643", "CORE-000105", "CG0569", "CG0553"), fda=("FB2603",),
      p21=("SD1131", "SD1372", "SD1371"))
def flagged_has_result(study):
    """--BLFL = 'Y' or --LOBXFL = 'Y' marks the value a change from baseline is computed from:
    the record must have a standard result (--STRESC).  A flag on a test not done (or with an
    empty result) points analysis at nothing."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS):
        c = f"{code}STRESC"
        if c not in frame.columns:
            continue
        empty = ~_filled(frame, c)
        for fl in (f"{code}BLFL", f"{code}LOBXFL"):
            if fl not in frame.columns:
                continue
            mask = (_col(frame, fl).str.upper() == "Y") & empty
            stat = _col(frame, f"{code}STAT")
            why = stat.where(stat == "", " (" + code + "STAT = '" + stat + "')")
            out += _flag(study, frame, mask, fl,
                         lambda v, fl=fl, c=c: f"{fl} = 'Y' but {c} is empty{v}: flag a record "
                                               f"that has a result, or clear {fl}",
                         value=why)
    return out


# ------------------------------------------------------------------------------ other timing


@rule("SD0321", "warning", "EPOCH populated on subject-level observations",
      core=("CORE-000701",), fda=("FB2201",), p21=("SD1339", "SD1077"))
def epoch_populated(study):
    """FDA business rule FB2201: every subject-level Interventions, Events and Findings record
    carries the trial EPOCH it happened in, so reviewers can tell screening from treatment.
    Blank EPOCH values are flagged per record; a dataset without the EPOCH variable gets one
    finding.  MH is exempt: medical history precedes the trial and has no trial epoch.  So is a
    record dated only partially ('2021-10') without a visit: the month may span two epochs, and
    leaving EPOCH empty is then right."""
    out = []
    for ds in study.datasets.values():
        if ds.is_supp or ds.domain == "MH" or "USUBJID" not in ds.df.columns or ds.df.empty:
            continue
        if _class(study, ds.domain, ds.df) not in GENERAL:
            continue
        if "EPOCH" not in ds.df.columns:
            out.append(dataset_finding(ds.name, "EPOCH",
                                       f"EPOCH is not in {ds.name}: its {len(ds.df)} subject-level "
                                       f"records need the trial epoch they occurred in"))
            continue
        df, code = ds.df, ds.domain
        mask = _txt(df["EPOCH"]) == ""
        dates = [v for v in (f"{code}DTC", f"{code}STDTC") if v in df.columns]
        if dates and "VISITNUM" not in df.columns:
            # Only partial dates ('2021-10') and no visit: the epoch may be undeterminable.
            given = pd.concat([_txt(df[v]) != "" for v in dates], axis=1).any(axis=1)
            complete = pd.concat([dtc_precision(_txt(df[v])).isin(_COMPLETE) for v in dates],
                                 axis=1).any(axis=1)
            mask &= complete | ~given
        out.append(flag(ds, mask, "EPOCH", "EPOCH is empty: give the trial epoch of the record "
                                           "(from its date and the subject's SE elements)"))
    return out


@rule("SD0322", "warning", "Reference range given for a non-numeric --ORRES",
      core=("CORE-000289", "CORE-000290", "CORE-000298", "CORE-000299",
            "CG0180", "CG0181", "CG0182", "CG0183"),
      p21=("SD1470", "SD1471", "SD1472", "SD1473"))
def ranges_for_numeric(study):
    """Reference ranges (--ORNRLO, --ORNRHI, --STNRLO, --STNRHI) describe continuous results: they
    belong only on records whose --ORRES is a number, optionally with a leading comparison
    ('<0.2', '<= -1.2', as Pinnacle 21 reads it).  On a text result ('NEGATIVE') use --STNRC."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        o = f"{code}ORRES"
        if o not in frame.columns:
            continue
        orres = _col(frame, o)
        text = (orres != "") & ~_parse(orres, _CONTINUOUS)[0]
        if not text.any():
            continue
        for s in ("ORNRLO", "ORNRHI", "STNRLO", "STNRHI"):
            var = f"{code}{s}"
            if var not in frame.columns:
                continue
            mask = text & _filled(frame, var)
            out += _flag(study, frame, mask, var,
                         lambda v, var=var, o=o: f"{var} is given but {o} = '{v}' is not numeric: "
                                                 f"reference ranges are for continuous results "
                                                 f"(use --STNRC for a text normal range)",
                         value=orres)
    return out


# ------------------------------------------------------------------------------------ AE


_SERIOUS = ("AESCAN", "AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE", "AESOD")


@rule("SD0323", "error", "AESER consistent with the seriousness criteria",
      core=("CORE-000022", "CORE-000266", "CG0041", "CG0042"), p21=("SD1132", "SD1062", "SD0009"))
def aeser_criteria(study):
    """An AE with any seriousness criterion 'Y' (AESCAN, AESCONG, AESDISAB, AESDTH, AESHOSP,
    AESLIFE, AESMIE, AESOD) is serious: AESER must be 'Y'.  Conversely a serious AE should say
    why: AESER = 'Y' with every criterion present 'N' or empty is flagged too (only when the
    dataset has criteria variables)."""
    out = []
    for ds in study.parts("AE"):
        df = ds.df
        crit = [c for c in _SERIOUS if c in df.columns]
        if "AESER" not in df.columns or not crit:
            continue
        ser = _txt(df["AESER"]).str.upper()
        ys = pd.DataFrame({c: _txt(df[c]).str.upper() == "Y" for c in crit})
        which = pd.Series("", index=df.index, dtype=object)
        for c in crit:
            which = which + np.where(ys[c].to_numpy(), ", " + c + " = 'Y'", "")
        which = which.str[2:]
        anyy = ys.any(axis=1)
        m1 = anyy & (ser != "Y")
        if m1.any():
            found = flag(ds, m1, "AESER", "")
            found["message"] = ("AESER = '" + ser[m1] + "' but " + which[m1]
                                + ": an AE meeting a seriousness criterion is serious; set AESER = 'Y'"
                                ).to_numpy()
            out.append(found)
        m2 = (ser == "Y") & ~anyy
        out.append(flag(ds, m2, "AESER",
                        f"AESER = 'Y' but none of {', '.join(crit)} is 'Y': record the criterion "
                        f"that made the AE serious"))
    return out


@rule("SD0324", "warning", "AEOUT consistent with AEENDTC",
      core=("CORE-000657", "CORE-000659", "CORE-000841"), fda=("FB3409", "FB3410", "FB0612"),
      p21=("SD1332", "SD1333", "SD1347"))
def aeout_end_date(study):
    """An AE that has not resolved (AEOUT = 'NOT RECOVERED/NOT RESOLVED') has no end date; one
    that resolved (AEOUT = 'RECOVERED/RESOLVED' or 'RECOVERED/RESOLVED WITH SEQUELAE') has one
    (or a collected AEDUR); a fatal one (AEOUT = 'FATAL') ends on the subject's date of death,
    DM.DTHDTC (compared at the precision both dates share)."""
    out = []
    for ds in study.parts("AE"):
        df = ds.df
        if "AEOUT" not in df.columns or "AEENDTC" not in df.columns:
            continue
        outc = _txt(df["AEOUT"]).str.upper()
        end = _txt(df["AEENDTC"])
        m1 = (outc == "NOT RECOVERED/NOT RESOLVED") & (end != "")
        out.append(flag(ds, m1, "AEENDTC",
                        lambda v: f"AEOUT = 'NOT RECOVERED/NOT RESOLVED' but AEENDTC = {v}: an AE "
                                  f"that has not resolved has no end date (correct AEOUT or AEENDTC)"))
        dur = _filled(df, "AEDUR")
        m2 = outc.isin(["RECOVERED/RESOLVED", "RECOVERED/RESOLVED WITH SEQUELAE"]) & (end == "") & ~dur
        out.append(flag(ds, m2, "AEENDTC",
                        lambda v: f"AEOUT = '{v}' but AEENDTC is empty: a resolved AE has an end "
                                  f"date (or AEDUR)", value=_txt(df["AEOUT"])))
        dm = _dm(study)
        fatal = outc == "FATAL"
        if dm is None or "DTHDTC" not in dm.columns or "USUBJID" not in df.columns or not fatal.any():
            continue
        dth = pd.Series(_txt(dm["DTHDTC"]).to_numpy(), index=_txt(dm["USUBJID"]).to_numpy())
        dth = _txt(df["USUBJID"]).map(dth[~dth.index.duplicated()]).fillna("")
        cmp = compare_dtc(end, dth)
        m3 = fatal & (dth != "") & ((end == "") | (cmp.notna() & (cmp != 0)).fillna(False).astype(bool))
        if m3.any():
            found = flag(ds, m3, "AEENDTC", "")
            found["message"] = ("AEOUT = 'FATAL' with AEENDTC = '" + end[m3] + "' but DM.DTHDTC = "
                                + dth[m3] + ": a fatal AE ends on the date of death").to_numpy()
            out.append(found)
    return out


_MEDDRA_PAIRS = (("DECOD", "PTCD"), ("BODSYS", "BDSYCD"), ("LLT", "LLTCD"), ("HLT", "HLTCD"),
                 ("HLGT", "HLGTCD"), ("SOC", "SOCCD"))


@rule("SD0325", "error", "MedDRA term and code one-to-one",
      core=("CORE-000268", "CORE-000184", "CORE-000706", "CORE-000716", "CORE-000719",
            "CORE-000723", "CG0049", "CG0083"), fda=("FB0909", "FB0910"),
      p21=("SD1287", "SD1288", "SD1242", "SD1243"))
def meddra_one_to_one(study):
    """In a MedDRA-coded Events domain each term has one code and each code one term: --DECOD and
    --PTCD, --BODSYS and --BDSYCD (and likewise --LLT/--LLTCD, --HLT/--HLTCD, --HLGT/--HLGTCD,
    --SOC/--SOCCD).  Two codes for one preferred term mean mixed MedDRA versions or a typo."""
    out = []
    for code, cls, frame in _frames(study, ("Events",), subject_level=False):
        for term_s, code_s in _MEDDRA_PAIRS:
            term, cd = f"{code}{term_s}", f"{code}{code_s}"
            for a, b in ((term, cd), (cd, term)):
                res = _one_to_one(frame, a, b)
                if res is not None:
                    out += _flag(study, frame, res[0], b, res[1])
    return out


@rule("SD0326", "error", "--BODSYS equals --SOC (and --BDSYCD equals --SOCCD)",
      core=("CORE-000264", "CORE-000362", "CG0039", "CG0037"), p21=("SD1462", "SD1463"))
def bodsys_is_soc(study):
    """With MedDRA, --BODSYS is the primary System Organ Class used for analysis, which is also
    what --SOC holds: where both are given they must be equal (and so must their codes)."""
    out = []
    for code, cls, frame in _frames(study, ("Events",), subject_level=False):
        for a, b in ((f"{code}BODSYS", f"{code}SOC"), (f"{code}BDSYCD", f"{code}SOCCD")):
            if a not in frame.columns or b not in frame.columns:
                continue
            x, y = _txt(frame[a]), _txt(frame[b])
            mask = (x != "") & (y != "") & (x != y)
            out += _flag(study, frame, mask, a,
                         lambda v, a=a, b=b: f"{v}: {a} must be the primary SOC, equal to {b}",
                         value=a + " = '" + x + "', " + b + " = '" + y + "'")
    return out


@rule("SD0327", "warning", "MedDRA code missing beside its term",
      core=("CORE-000024", "CG0082"), p21=("SD1461", "SD1449"), fda=("FDAB003",))
def meddra_codes_present(study):
    """Where a MedDRA code variable is present (--PTCD, --BDSYCD, --LLTCD, --HLTCD, --HLGTCD,
    --SOCCD), it is populated wherever its term is.  A code column left empty on every record is
    one finding for the dataset (code the terms or drop the column); otherwise each record with a
    term and no code is flagged."""
    out = []
    for code, cls, frame in _frames(study, ("Events",), subject_level=False):
        for term_s, code_s in _MEDDRA_PAIRS:
            term, cd = f"{code}{term_s}", f"{code}{code_s}"
            if term not in frame.columns or cd not in frame.columns:
                continue
            has_term, has_code = _filled(frame, term), _filled(frame, cd)
            mask = has_term & ~has_code
            if not mask.any():
                continue
            if not has_code.any():
                for part in sorted(set(frame.loc[mask, "__dataset__"])) if "__dataset__" in frame else []:
                    n = int((mask & (frame["__dataset__"] == part)).sum())
                    out.append(dataset_finding(part, cd, f"{cd} is empty on all {n} records that have "
                                                         f"{term}: give the MedDRA code of each term "
                                                         f"(or drop {cd})"))
                continue
            out += _flag(study, frame, mask, cd,
                         lambda v, cd=cd, term=term: f"{cd} is empty but {term} = '{v}': give its "
                                                     f"MedDRA code", value=_col(frame, term))
    return out


# ------------------------------------------------------------------------------------ EX


@rule("SD0328", "error", "--DOSU missing when a dose is given",
      core=("CORE-000093", "CG0114"), p21=("SD0035",))
def dose_units(study):
    """A dose without units is not a dose: --DOSU is required whenever --DOSE, --DOSTXT or
    --DOSTOT is given (Interventions domains)."""
    out = []
    for code, cls, frame in _frames(study, ("Interventions",), subject_level=False):
        u = f"{code}DOSU"
        doses = [v for v in (f"{code}DOSE", f"{code}DOSTXT", f"{code}DOSTOT") if v in frame.columns]
        if not doses:
            continue
        given = pd.concat([_filled(frame, v) for v in doses], axis=1).any(axis=1)
        mask = given & ~_filled(frame, u)
        first = pd.Series("", index=frame.index, dtype=object)
        for v in reversed(doses):
            first = first.where(~_filled(frame, v), v + " = " + _txt(frame[v]))
        how = "is empty" if u in frame.columns else "is not in the dataset"
        out += _flag(study, frame, mask, u,
                     lambda v, u=u, how=how: f"{v} but {u} {how}: give the dose units",
                     value=first)
    return out


@rule("SD0329", "error", "--DOSE negative",
      core=("CORE-000308", "CORE-000517"), fda=("FB4002",), p21=("SD0014",))
def dose_not_negative(study):
    """A dose is an amount given: it cannot be negative."""
    out = []
    for code, cls, frame in _frames(study, ("Interventions",), subject_level=False):
        for v in (f"{code}DOSE", f"{code}DOSTOT"):
            if v not in frame.columns:
                continue
            mask = _num(frame[v]) < 0
            out += _flag(study, frame, mask, v,
                         lambda x, v=v: f"{v} = {x} is negative: a dose is 0 or more")
    return out


@rule("SD0330", "error", "EXTRT = 'PLACEBO' with EXDOSE not 0",
      core=("CORE-000005", "CG0102"), p21=("SD1249",))
def placebo_dose(study):
    """A placebo delivers no active drug: EX records of EXTRT = 'PLACEBO' have EXDOSE = 0 (the
    amount of placebo goes in EXDOSTXT or SUPPEX, not EXDOSE)."""
    out = []
    for ds in study.parts("EX"):
        df = ds.df
        if "EXTRT" not in df.columns or "EXDOSE" not in df.columns:
            continue
        dose = _num(df["EXDOSE"])
        mask = (_txt(df["EXTRT"]).str.upper() == "PLACEBO") & dose.notna() & (dose != 0)
        out.append(flag(ds, mask, "EXDOSE",
                        lambda v: f"EXTRT = 'PLACEBO' but EXDOSE = {v}: a placebo dose is 0"))
    return out


# ------------------------------------------------------------------------------------ QS


@rule("SD0331", "error", "QS uses --EVAL / --EVALID",
      core=("CORE-000031", "CORE-000032", "CG0659", "CG0660"), p21=("SD1073",))
def qs_no_eval(study):
    """SDTMIG 3.4 QS: questionnaires are completed by the subject or rater defined by the
    instrument, so QSEVAL and QSEVALID must not be used."""
    out = []
    for ds in study.parts("QS"):
        for v in ("QSEVAL", "QSEVALID"):
            if v in ds.df.columns:
                out.append(dataset_finding(ds.name, v, f"{v} is in {ds.name}: QS must not use "
                                                       f"{v} (the evaluator is defined by the "
                                                       f"instrument); remove the variable",
                                           severity="error"))
    return out


# ------------------------------------------------------------------------------------ DM


@rule("SD0332", "error", "AGE and AGEU populated together",
      core=("CORE-000189", "CORE-000190", "CORE-000122", "CG0665", "CG0666"),
      p21=("SD2022", "SD2021"))
def age_with_units(study):
    """An age is a number with its unit: AGEU is given exactly when AGE (or AGETXT) is."""
    out = []
    for ds in study.parts("DM"):
        df = ds.df
        if "AGE" not in df.columns and "AGETXT" not in df.columns:
            continue
        age = _filled(df, "AGE") | _filled(df, "AGETXT")
        unit = _filled(df, "AGEU")
        out.append(flag(ds, age & ~unit, "AGEU", lambda v: f"AGE = {v} but AGEU is empty: give the "
                                                           f"age unit (e.g. YEARS)",
                        value=_col(df, "AGE").where(_col(df, "AGE") != "", _col(df, "AGETXT"))))
        out.append(flag(ds, unit & ~age, "AGE", lambda v: f"AGEU = '{v}' but AGE is empty: give "
                                                          f"the age or clear AGEU",
                        value=_col(df, "AGEU")))
    return out


@rule("SD0333", "error", "AGE negative", core=("CORE-000310",), fda=("FB4001",), p21=("SD0084",))
def age_not_negative(study):
    """An age cannot be negative."""
    out = []
    for ds in study.parts("DM"):
        if "AGE" in ds.df.columns:
            out.append(flag(ds, _num(ds.df["AGE"]) < 0, "AGE",
                            lambda v: f"AGE = {v} is negative: an age is 0 or more"))
    return out


_NULL_ARM_CODES = {"SCRNFAIL", "NOTASSGN", "NOTTRT", "UNPLAN"}
_NULL_ARM_NAMES = {"SCREEN FAILURE", "NOT ASSIGNED", "NOT TREATED", "UNPLANNED TREATMENT"}


def _armnrs_era(study) -> bool:
    try:
        return study.ig.dataset("DM").variable("ARMNRS") is not None
    except Exception:  # noqa: BLE001
        return False


@rule("SD0334", "error", "ARM / ARMCD / ACTARM / ACTARMCD / ARMNRS population",
      core=("CORE-000119", "CORE-000120", "CORE-000045", "CORE-000046", "CORE-000121",
            "CORE-000223", "CORE-000224", "CG0517", "CG0519", "CG0520", "CG0521", "CG0522"),
      p21=("SD1358", "SD1359", "SD1360", "SD1361", "SD1362"))
def arm_population(study):
    """Arm code and arm name come together (ARMCD with ARM, ACTARMCD with ACTARM); when a subject
    has no planned or no actual arm, ARMNRS says why, and ARMNRS is empty when both arms are
    given (SDTMIG 3.3+)."""
    out = []
    for ds in study.parts("DM"):
        df = ds.df
        for cd, name in (("ARMCD", "ARM"), ("ACTARMCD", "ACTARM")):
            if cd not in df.columns or name not in df.columns:
                continue
            c, n = _filled(df, cd), _filled(df, name)
            out.append(flag(ds, c & ~n, name, lambda v, cd=cd, name=name:
                            f"{cd} = '{v}' but {name} is empty: give both or neither",
                            value=_col(df, cd)))
            out.append(flag(ds, n & ~c, cd, lambda v, cd=cd, name=name:
                            f"{name} = '{v}' but {cd} is empty: give both or neither",
                            value=_col(df, name)))
        if not _armnrs_era(study) or "ARMCD" not in df.columns:
            continue
        nrs = _filled(df, "ARMNRS")
        arm = _filled(df, "ARMCD")
        act = _filled(df, "ACTARMCD") if "ACTARMCD" in df.columns else arm
        out.append(flag(ds, ~arm & ~nrs, "ARMNRS",
                        "ARMCD is empty and so is ARMNRS: give the reason the subject has no "
                        "planned arm in ARMNRS (e.g. SCREEN FAILURE)"))
        out.append(flag(ds, arm & ~act & ~nrs, "ARMNRS",
                        "ACTARMCD is empty and so is ARMNRS: give the reason the subject has no "
                        "actual arm in ARMNRS (e.g. NOT TREATED)"))
        out.append(flag(ds, arm & act & nrs, "ARMNRS",
                        lambda v: f"ARMNRS = '{v}' but ARMCD and ACTARMCD are both given: ARMNRS is "
                                  f"only for subjects without a planned or actual arm"))
    return out


@rule("SD0335", "error", "Arm populated with a reason for no arm (use ARMNRS)",
      core=("CORE-000115",), p21=("SD1363", "SD1364"))
def arm_not_a_reason(study):
    """Since SDTMIG 3.3, a subject without a planned or actual arm has ARMCD/ARM (or
    ACTARMCD/ACTARM) empty and the reason in ARMNRS: the old pseudo-arms 'SCRNFAIL' /
    'Screen Failure', 'NOTASSGN' / 'Not Assigned', 'NOTTRT' / 'Not Treated', 'UNPLAN' /
    'Unplanned Treatment' are no longer arms.  One finding per subject for the planned arm and one
    for the actual arm (checked only for IG versions with ARMNRS)."""
    if not _armnrs_era(study):
        return []
    out = []
    for ds in study.parts("DM"):
        df = ds.df
        for cd, name, what in (("ARMCD", "ARM", "planned"), ("ACTARMCD", "ACTARM", "actual")):
            c = _col(df, cd)
            n = _col(df, name)
            mask = c.str.upper().isin(_NULL_ARM_CODES) | n.str.upper().isin(_NULL_ARM_NAMES)
            shown = cd + " = '" + c + "', " + name + " = '" + n + "'"
            out.append(flag(ds, mask, cd if cd in df.columns else name,
                            lambda v, cd=cd, name=name, what=what:
                            f"{v} is a reason for no {what} arm, not an arm: leave {cd} and {name} "
                            f"empty and put the reason in ARMNRS (SDTMIG 3.3+)", value=shown))
    return out


@rule("SD0336", "error", "DTHDTC and DTHFL consistent",
      core=("CORE-000007", "CORE-000705", "CG0435"), p21=("SD2004", "SD2005"),
      fda=("FB0606", "FDAB006"))
def death_consistent(study):
    """A date of death means the subject died: DTHDTC given needs DTHFL = 'Y' (error).  The
    reverse, DTHFL = 'Y' without DTHDTC, is a warning: the date may be unknown, but should be
    given when known."""
    out = []
    for ds in study.parts("DM"):
        df = ds.df
        if "DTHDTC" not in df.columns and "DTHFL" not in df.columns:
            continue
        dth = _filled(df, "DTHDTC")
        fl = _col(df, "DTHFL").str.upper() == "Y"
        out.append(flag(ds, dth & ~fl, "DTHFL",
                        lambda v: f"DTHDTC = {v} but DTHFL is not 'Y': set DTHFL = 'Y' for a subject "
                                  f"who died", value=_col(df, "DTHDTC")))
        out.append(flag(ds, fl & ~dth, "DTHDTC",
                        "DTHFL = 'Y' but DTHDTC is empty: give the date of death when known",
                        severity="warning"))
    return out


# ------------------------------------------------------------------------- floating-point noise


@rule("SD0337", "error", "Floating-point noise in --STRESN / --STRESC",
      core=("CORE-000542",), fda=("FB3101", "FB3102", "FB3103"),
      p21=("SD1212",))
def stres_float_noise(study):
    """A standard result computed in floating point and stored unrounded: --STRESN
    8.549999999999999 for --STRESC '8.55' (equal once both are rounded to 12 significant digits,
    yet not the number the text states), or a --STRESC whose text itself shows the noise
    ('8.549999999999999').  Reviewers comparing --STRESN with --STRESC (CORE, FDA business rules
    FB3101-FB3103) see a mismatch; the fix is to round the derivation before storing it."""
    out = []
    for code, cls, frame in _frames(study, FINDINGS, subject_level=False):
        got = _stres_differ(frame, code)
        if got is None:
            continue
        stresc, numeric, stresn, real, noise, shown = got
        c, n = f"{code}STRESC", f"{code}STRESN"
        out += _flag(study, frame, noise, n,
                     lambda v, c=c, n=n: f"{v}: {n} differs from {c} by floating-point noise only; "
                                         f"store the rounded number {v.split(chr(39))[1]} in {n}",
                     value=shown)
        # Noise in the text itself: 15 or more significant digits that round to 12 or fewer.
        codes, uniq = pd.factorize(stresc.where(numeric, ""))
        uniq = [str(u) for u in uniq]
        bad = np.array([_noisy_text(u) for u in uniq] + [False], dtype=bool)
        out += _flag(study, frame, pd.Series(bad[codes], index=frame.index), c,
                     lambda v, c=c: f"{c} = '{v}' carries floating-point noise: write the rounded "
                                    f"value '{_round12(v)}'")
    return out


def _noisy_text(text: str) -> bool:
    digits = re.sub(r"[^0-9]", "", re.sub(r"[eE].*$", "", text)).lstrip("0")
    if len(digits) < 15:
        return False
    short = re.sub(r"[^0-9]", "", _round12(text)).lstrip("0")
    return len(short) <= 12


@rule("SD0338", "error", "RFSTDTC/RFENDTC missing for a subject assigned to an arm",
      core=("CORE-000191", "CG0570"))
def reference_dates_with_an_arm(study):
    """A subject assigned to an arm (ARMCD populated and not a reason for having none) has
    reference start and end dates: RFSTDTC and RFENDTC are Exp and only empty for screen
    failures and subjects not assigned (SDTMIG DM assumptions; CORE-000191)."""
    dm = study.datasets.get("DM")
    if dm is None or "ARMCD" not in dm.df.columns:
        return []
    df = dm.df
    arm = df["ARMCD"].astype(str).str.strip()
    assigned = (arm != "") & ~arm.str.upper().isin(["SCRNFAIL", "NOTASSGN", "NOTTRT"])
    out = []
    for var in ("RFSTDTC", "RFENDTC"):
        if var not in df.columns:
            continue
        missing = assigned & (df[var].astype(str).str.strip() == "")
        out.append(flag(dm, missing, var, f"{var} is empty although the subject is assigned to an "
                        "arm (ARMCD populated): give the subject's reference date", value=df["ARMCD"]))
    return out
