"""Cross-dataset rules (SD04xx): what one dataset says about another.

Subjects and DM (SD0401-SD0408), exposure and reference dates (SD0405-SD0410), visits against SV
(SD0411-SD0412), arms against TA (SD0413), death (SD0414), supplemental qualifiers (SD0420-SD0428)
and the trial summary (SD0430-SD0440).

Split datasets are parts of their parent domain: a SUPPLBCH row's parent is looked up in the whole
LB domain (LBCH, LBHE, LBUR together: --SEQ is unique per subject across the parts), findings name
the part and its own row, and a split is never itself a finding.  Every rule checks that the
datasets and columns it needs exist and returns nothing otherwise: a missing DM, EX, SV, TA or TS
is reported by the dataset-level rules, not here (except for TS, whose absence is the same
technical rejection as a missing SSTDTC).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..dates import age_in_years, compare_dtc, dtc_precision, is_iso8601
from .model import _as_text, dataset_finding, flag, rule

# ----------------------------------------------------------------------------- helpers

# ISO 8601 as SDTM writes a right-truncated date/time without a zone: these sort as text.
_PLAIN_ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?$")
_NOT_SUBJECT = {"DM"}  # DM is the list of subjects the others are checked against


def _text(df: pd.DataFrame, col: str) -> pd.Series:
    """Column `col` as stripped text ('' when missing or absent); numbers as their plain text."""
    if col not in df.columns:
        return pd.Series("", index=df.index, dtype=object)
    s = df[col]
    if pd.api.types.is_numeric_dtype(s):
        return _num_text(s)
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").str.strip()
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _distinct(s: pd.Series) -> set:
    """The distinct values of a column as a set (without iterating every row)."""
    return set(pd.unique(s.to_numpy(dtype=object)))


def _lookup(keys: pd.Series, table) -> pd.Series:
    """keys.map(table) as text, '' where a key is not in the table (whatever the table's dtype)."""
    return keys.map(table).astype(object).where(lambda x: x.notna(), "").astype(str)


def _num_text(s: pd.Series) -> pd.Series:
    """Numbers as their plain text (1.0 -> '1', NaN -> ''), converting each distinct value once."""
    texts = {x: _as_text(float(x)) for x in pd.unique(s.dropna())}
    return _lookup(s, texts).astype(str)


def _number(df: pd.DataFrame, col: str) -> pd.Series:
    """Column `col` as float (NaN when missing, absent or not a number)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    s = df[col]
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    return pd.to_numeric(s.astype(str).str.strip(), errors="coerce")


def _key(values: pd.Series) -> pd.Series:
    """Numbers as matching keys: 1, 1.0 and ' 1' all become '1'; text stays stripped text."""
    num = pd.to_numeric(values.astype(str).str.strip(), errors="coerce") \
        if not pd.api.types.is_numeric_dtype(values) else values.astype(float)
    num = num.round(6)
    texts = {x: _as_text(float(x)) for x in num.dropna().unique()}
    keyed = num.map(texts)
    return keyed.where(num.notna(), values.astype(str).str.strip()).astype(str)


def _isin(values: pd.Series, allowed) -> pd.Series:
    """values.isin(allowed) through an object hash table: Arrow-backed strings against a large
    set are two orders of magnitude slower."""
    obj = pd.Series(values.to_numpy(dtype=object), index=values.index, dtype=object)
    allowed = allowed.to_numpy(dtype=object) if isinstance(allowed, pd.Series) else list(allowed)
    return obj.isin(pd.Index(allowed, dtype=object))


def _pair(a: pd.Series, b: pd.Series) -> pd.Series:
    """Two columns as one text key (for isin on pairs, much faster than tuples)."""
    return a.astype(str) + "\x1f" + b.astype(str)


def _norm(value) -> str:
    """One distinct value as text: stripped; numbers plain (1.0 -> '1'); missing -> ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _as_text(float(value))
    return str(value).strip()


class _Distinct:
    """The rows of a dataset grouped by the distinct combinations of some columns.

    Large datasets repeat few combinations (a million LB rows, some thousand subject-visits), so a
    check computed once per combination (`frame`, one row per combination with the values as
    stripped text) is spread back to the rows with `rows()`.
    """

    def __init__(self, df: pd.DataFrame, cols: list[str]):
        n = len(df)
        key = np.zeros(n, dtype=np.int64)
        uniques = {}
        for col in cols:
            if col in df.columns:
                codes, uniq = pd.factorize(df[col], use_na_sentinel=False)
                uniques[col] = (codes, [_norm(v) for v in uniq])
                key = key * max(len(uniq), 1) + codes
            else:
                uniques[col] = (np.zeros(n, dtype=np.int64), [""])
        self.inverse, distinct = pd.factorize(key)
        first = np.empty(len(distinct), dtype=np.int64)
        first[self.inverse[::-1]] = np.arange(n)[::-1]
        self.index = df.index
        self.frame = pd.DataFrame({col: pd.Series(np.asarray(vals, dtype=object)[codes[first]], dtype=object)
                                   for col, (codes, vals) in uniques.items()}).astype(str) \
            if len(distinct) else pd.DataFrame({col: pd.Series([], dtype=str) for col in cols})

    def rows(self, per_combination: pd.Series) -> pd.Series:
        """A per-combination Series (on `frame`'s index) as a Series over the dataset's rows."""
        return pd.Series(np.asarray(per_combination.to_numpy())[self.inverse], index=self.index)


def _flag_each(ds, mask, variable, messages: pd.Series, *, value=None, severity=None) -> pd.DataFrame:
    """flag() with one message per row: `messages` is a Series aligned on ds.df's index, or a
    function of the boolean mask returning the messages of the flagged rows only (cheaper)."""
    out = flag(ds, mask, variable, "", value=value, severity=severity)
    if len(out):
        m = pd.Series(mask, index=ds.df.index).fillna(False).astype(bool)
        msgs = messages(m) if callable(messages) else messages
        out["message"] = msgs.loc[m[m].index].astype(str).to_numpy()
    return out


def _dm(study):
    ds = study.datasets.get("DM")
    if ds is None or "USUBJID" not in ds.df.columns:
        return None
    return ds


def _subject_datasets(study, *, supp: bool = True):
    """Datasets holding subject records (USUBJID), DM excepted; SUPP-- when `supp`."""
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if name in _NOT_SUBJECT or ds.domain == "DM" and not ds.is_supp:
            continue
        if ds.is_supp and not supp:
            continue
        if "USUBJID" in ds.df.columns and len(ds.df):
            yield ds


def _certainly(a: pd.Series, b: pd.Series, order: int, rows=None) -> pd.Series:
    """True where ISO 8601 value a is certainly before (order -1) or after (order 1) b.

    Plain ISO 8601 text sorts in time order, so only the rows where the text order agrees with
    the order asked for are handed to compare_dtc (which knows partial dates and zones)."""
    cand = (a != "") & (b != "") & ((a < b) if order < 0 else (a > b))
    if rows is not None:
        cand &= rows
    out = pd.Series(False, index=a.index)
    if cand.any():
        out[cand] = (compare_dtc(a[cand], b[cand]) == order).fillna(False).astype(bool)
    return out


def _same_at_common_precision(a: pd.Series, b: pd.Series) -> pd.Series:
    """True where two plain ISO 8601 values agree on the parts both have ('2021-04-12' and
    '2021-04-12T10:05' agree); NA where either is missing or not plain ISO 8601."""
    a = a.astype(str)
    b = b.reindex(a.index).fillna("").astype(str)
    ok = a.str.match(_PLAIN_ISO) & b.str.match(_PLAIN_ISO)
    n = np.minimum(a.str.len(), b.str.len())
    pairs = pd.DataFrame({"a": a, "b": b, "n": n})[ok]
    same = pd.Series(pd.NA, index=a.index, dtype="boolean")
    if len(pairs):
        distinct = pairs.drop_duplicates()
        res = {(x, y, k): x[:k] == y[:k] for x, y, k in distinct.itertuples(index=False)}
        same.loc[pairs.index] = [res[(x, y, k)] for x, y, k in pairs.itertuples(index=False)]
    return same


# ----------------------------------------------------------------------------- exposure

_DOSE_NOTE = "EX records with EXDOSE > 0 (placebo records and records without EXDOSE included)"


def _ex_doses(study):
    """EX records that count as exposure to study treatment, with plain-ISO start and end.

    Returns (frame, note): frame has USUBJID, start, end (end = EXENDTC, or EXSTDTC when EXENDTC is
    empty), __dataset__, __row__; note says which records were used.  None when EX is missing.
    """
    ex = study.domain("EX")
    if ex is None or not {"USUBJID", "EXSTDTC"} <= set(ex.columns) or not len(ex):
        return None, ""
    note = "EX records"
    keep = pd.Series(True, index=ex.index)
    if "EXDOSE" in ex.columns:
        dose = _number(ex, "EXDOSE")
        placebo = _text(ex, "EXTRT").str.upper().str.contains("PLACEBO", regex=False)
        keep = (dose > 0) | dose.isna() | placebo
        note = _DOSE_NOTE
    start = _text(ex, "EXSTDTC")
    end = _text(ex, "EXENDTC")
    end = end.where(end != "", start)
    frame = pd.DataFrame({"USUBJID": _text(ex, "USUBJID"), "start": start, "end": end,
                          "__dataset__": ex["__dataset__"], "__row__": ex["__row__"],
                          "keep": keep})
    return frame, note


def _first_last(frame: pd.DataFrame):
    """Per subject: the first start and the last end (each with where it is), over kept records.

    A partial value may be the latest of its period: for the last end, '2021-06' sorts after
    '2021-06-07' so that the comparison happens at month precision.
    """
    kept = frame[frame["keep"]]
    st = kept[kept["start"].str.match(_PLAIN_ISO)]
    first = st.sort_values(["USUBJID", "start", "__dataset__", "__row__"], kind="stable") \
        .drop_duplicates("USUBJID").set_index("USUBJID")
    en = kept[kept["end"].str.match(_PLAIN_ISO)].assign(_k=lambda d: d["end"] + "~")
    last = en.sort_values(["USUBJID", "_k", "__dataset__", "__row__"], ascending=[True, False, True, True],
                          kind="stable").drop_duplicates("USUBJID").set_index("USUBJID")
    return first, last


# ============================================================================= subjects and DM


@rule("SD0401", "error", "USUBJID not in DM", core=("CORE-000201", "CG0029"), p21=("SD0064",))
def usubjid_in_dm(study):
    """Every USUBJID of every subject-level dataset (SUPP-- included) must have a DM record:
    DM is the list of subjects, and a record of a subject DM does not know cannot be tied to
    an arm, a reference start date or a demographic.  Empty USUBJIDs are left to the required-
    value rule."""
    dm = _dm(study)
    if dm is None:
        return None
    known = _text(dm.df, "USUBJID")
    out = []
    for ds in _subject_datasets(study):
        d = _Distinct(ds.df, ["USUBJID"])
        u = d.frame["USUBJID"]
        bad = d.rows((u != "") & ~_isin(u, known))
        out.append(flag(ds, bad, "USUBJID", lambda v, n=ds.name: (
            f"USUBJID '{v}' in {n} has no DM record: every subject must be in DM "
            f"(add the subject to DM or correct the identifier)")))
    return out


@rule("SD0402", "error", "STUDYID differs from DM.STUDYID", core=("CORE-000172", "CG0409"), p21=("SD1005",))
def studyid_matches_dm(study):
    """STUDYID of every dataset must be the study's STUDYID as DM gives it (for a subject record:
    that subject's DM STUDYID): a different value means records of another study, or a typo,
    and breaks every join on STUDYID."""
    dm = _dm(study)
    if dm is None or "STUDYID" not in dm.df.columns:
        return None
    dm_u, dm_s = _text(dm.df, "USUBJID"), _text(dm.df, "STUDYID")
    ids = sorted(_distinct(dm_s) - {""})
    if not ids:
        return None
    per_subject = pd.Series(dm_s.to_numpy(), index=dm_u.to_numpy())
    per_subject = per_subject[~per_subject.index.duplicated()]
    shown = ", ".join(f"'{i}'" for i in ids)
    out = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if name == "DM" or "STUDYID" not in ds.df.columns or not len(ds.df):
            continue
        d = _Distinct(ds.df, ["STUDYID", "USUBJID"])
        s, u = d.frame["STUDYID"], d.frame["USUBJID"]
        expected = u.map(per_subject).astype(object)
        own = expected.notna() & (expected != "")
        bad = (s != "") & ((own & (s != expected)) | (~own & ~s.isin(ids)))
        if not bad.any():
            continue
        exp_text = expected.where(own, shown).map(lambda e: e if e.startswith("'") else f"'{e}'")
        msgs = "STUDYID '" + s + "' differs from DM.STUDYID (" + exp_text + "): all datasets of a study carry DM's STUDYID"
        out.append(_flag_each(ds, d.rows(bad), "STUDYID", d.rows(msgs)))
    return out


@rule("SD0403", "error", "DM has more than one record for a subject", core=("CORE-000351", "CG0151"),
      p21=("SD0083",))
def dm_one_record_per_subject(study):
    """DM has exactly one record per subject (USUBJID unique in DM): every other dataset looks
    subjects up in DM, and two DM records make reference dates, arm and age ambiguous.  Each
    repeat after the first is flagged, naming the row it repeats."""
    return _one_record_per_subject(_dm(study))


def _one_record_per_subject(ds, article: str = "a"):
    """Findings for the records repeating an earlier record's USUBJID in a dataset of one record
    per subject (DM, ADSL), each naming the row of the first."""
    if ds is None:
        return None
    u = _text(ds.df, "USUBJID")
    dup = (u != "") & u.duplicated(keep="first")
    if not dup.any():
        return None
    first_row = ds.df.loc[~u.duplicated(keep="first")].assign(_u=u).set_index("_u")["__row__"]
    name = ds.name
    msgs = "USUBJID '" + u + f"' already has {article} {name} record ({name} row " + \
        u.map(first_row).map(_as_text) + f"): {name} must have one record per subject; merge or remove the repeat"
    return _flag_each(ds, dup, "USUBJID", msgs)


@rule("SD0404", "error", "SUBJID not unique within the study", core=("CORE-000186", "CG0150"), p21=("SD1001",))
def subjid_unique(study):
    """SUBJID must identify one subject within the study: two DM records with the same STUDYID and
    SUBJID but different USUBJIDs are two subjects sharing an identifier (the same USUBJID twice
    is SD0403's finding, not repeated here)."""
    dm = _dm(study)
    if dm is None or "SUBJID" not in dm.df.columns:
        return None
    df = pd.DataFrame({"s": _text(dm.df, "STUDYID"), "j": _text(dm.df, "SUBJID"), "u": _text(dm.df, "USUBJID")})
    df = df[df["j"] != ""]
    n = df.groupby(["s", "j"])["u"].transform("nunique")
    multi = df[n > 1]
    if not len(multi):
        return None
    first_u = multi.drop_duplicates(["s", "j"]).set_index(["s", "j"])["u"]
    firsts = multi.drop_duplicates(["s", "j", "u"])
    later = firsts[firsts.duplicated(["s", "j"], keep="first")]
    mask = pd.Series(False, index=dm.df.index)
    mask.loc[later.index] = True
    key = pd.MultiIndex.from_frame(df[["s", "j"]])
    owner = pd.Series(first_u.reindex(key).to_numpy(), index=df.index).reindex(dm.df.index).fillna("")
    msgs = "SUBJID '" + _text(dm.df, "SUBJID") + "' is also the SUBJID of subject '" + owner + \
        "': SUBJID must be unique within the study"
    return _flag_each(dm, mask, "SUBJID", msgs)


@rule("SD0405", "error", "RFXSTDTC is not the first EX start", core=("CORE-000239", "CG0148"),
      p21=("SD1205",))
def rfxstdtc_first_exposure(study):
    """DM.RFXSTDTC must be the start of the subject's first exposure to study treatment, i.e.
    the earliest EXSTDTC, compared at the precision both values have (a date-only RFXSTDTC
    agrees with a datetime EXSTDTC of the same day).  When EX has EXDOSE, only records with
    EXDOSE > 0 count (placebo records and records without a dose too), since a zero-dose record
    is not an exposure.  Also flagged: RFXSTDTC empty for a subject with such EX records, and
    RFXSTDTC given for a subject with no EX record at all."""
    return _rfx_check(study, "RFXSTDTC", "start", "first", "EXSTDTC")


@rule("SD0406", "error", "RFXENDTC is not the last EX end", core=("CORE-000238", "CG0147"),
      p21=("SD1206", "SD1207"))
def rfxendtc_last_exposure(study):
    """DM.RFXENDTC must be the end of the subject's last exposure to study treatment: the latest
    EXENDTC (EXSTDTC where EXENDTC is empty), compared at the precision both values have and over
    the same EX records as SD0405 (EXDOSE > 0 when EXDOSE exists).  Also flagged: RFXENDTC empty
    for a subject with such EX records, and RFXENDTC given for a subject with no EX record."""
    return _rfx_check(study, "RFXENDTC", "end", "last", "EXENDTC")


def _rfx_check(study, var, col, which, ex_var):
    dm = _dm(study)
    if dm is None or var not in dm.df.columns:
        return None
    frame, note = _ex_doses(study)
    if frame is None:
        return None
    first, last = _first_last(frame)
    ref = first if which == "first" else last
    u = _text(dm.df, "USUBJID")
    v = _text(dm.df, var)
    exp = _lookup(u, ref[col])
    where = (_lookup(u, ref["__dataset__"]) + " row " + u.map(ref["__row__"]).map(_as_text).fillna(""))
    has_any_ex = _isin(u, frame["USUBJID"])
    same = _same_at_common_precision(v, exp)
    what = f"{ex_var}" if which == "first" else f"{ex_var} (EXSTDTC where EXENDTC is empty)"
    wrong = (v != "") & (exp != "") & (same == False)  # noqa: E712 - nullable boolean
    empty = (v == "") & (exp != "")
    orphan = (v != "") & ~has_any_ex
    msgs = pd.Series("", index=dm.df.index, dtype=object)
    msgs[wrong] = (f"{var} = '" + v + f"' but the {which} {what} of the subject's {note} is '" + exp +
                   "' (" + where + f"): {var} must equal it (compared at the precision both have)")[wrong]
    msgs[empty] = (f"{var} is empty but the subject has {note}: the {which} {what} is '" + exp +
                   "' (" + where + ")")[empty]
    msgs[orphan] = (f"{var} = '" + v + f"' but the subject has no EX record: {var} must come from "
                    "EX (add the exposure records or clear the date)")[orphan]
    return _flag_each(dm, wrong | empty | orphan, var, msgs)


@rule("SD0407", "warning", "RFSTDTC differs from the first EX start")
def rfstdtc_first_exposure(study):
    """Where the study defines RFSTDTC as the first dose (RFSTDTC agrees with the first EXSTDTC,
    at common precision, for at least 80% of the subjects having both), a subject whose RFSTDTC
    differs from his first EXSTDTC is inconsistent with that definition, and every --DY of his
    records is then shifted.  Studies anchoring RFSTDTC elsewhere (randomisation) get no finding."""
    dm = _dm(study)
    if dm is None or "RFSTDTC" not in dm.df.columns:
        return None
    frame, note = _ex_doses(study)
    if frame is None:
        return None
    first, _ = _first_last(frame)
    u = _text(dm.df, "USUBJID")
    v = _text(dm.df, "RFSTDTC")
    exp = _lookup(u, first["start"])
    same = _same_at_common_precision(v, exp)
    both = same.notna()
    if not both.any():
        return None
    agree = int((same == True).sum())  # noqa: E712
    total = int(both.sum())
    if agree < 0.8 * total or agree < 2:
        return None
    wrong = both & (same == False)  # noqa: E712
    where = _lookup(u, first["__dataset__"]) + " row " + u.map(first["__row__"]).map(_as_text).fillna("")
    msgs = ("RFSTDTC = '" + v + "' but the first EXSTDTC of the subject's " + note + " is '" + exp + "' (" +
            where + f"): in this study RFSTDTC is the first dose ({agree} of {total} subjects), so it "
            "should be that date")
    return _flag_each(dm, wrong, "RFSTDTC", msgs)


@rule("SD0408", "warning", "AGE inconsistent with BRTHDTC")
def age_matches_birth_date(study):
    """AGE (in YEARS) must be the completed years between BRTHDTC and a reference date: RFSTDTC
    or RFICDTC (sponsors anchor age at consent or at first dose).  Checked only where the age is
    unambiguous: a partial birth date ('1980') that allows two ages at a reference date is not
    checked against it, so no value that could be right is ever flagged."""
    dm = _dm(study)
    if dm is None or not {"AGE", "BRTHDTC"} <= set(dm.df.columns):
        return None
    df = dm.df
    age = _number(df, "AGE")
    birth = _text(df, "BRTHDTC")
    ageu = _text(df, "AGEU").str.upper()
    usable = age.notna() & (birth != "") & ageu.isin(["", "YEARS"])
    refs = [r for r in ("RFSTDTC", "RFICDTC") if r in df.columns]
    if not refs or not usable.any():
        return None
    computed, ambiguous = [], pd.Series(False, index=df.index)
    for r in refs:
        ref = _text(df, r)
        a, amb = age_in_years(birth, ref)
        a = a.where(ref != "")
        computed.append((r, a))
        ambiguous |= amb.fillna(False).astype(bool) & (ref != "")
    any_known = pd.Series(False, index=df.index)
    matches = pd.Series(False, index=df.index)
    for r, a in computed:
        known = a.notna()
        any_known |= known
        matches |= known & (a.astype("Float64") == age).fillna(False).astype(bool)
    bad = usable & any_known & ~ambiguous & ~matches
    if not bad.any():
        return None
    text = pd.Series("", index=df.index, dtype=object)
    for r, a in computed:
        at = a.map(lambda x: "" if pd.isna(x) else str(int(x)))
        piece = at + " at " + r + " " + _text(df, r)
        text = text.where(at == "", text.where(text == "", text + " and ") + piece)
    msgs = ("AGE = " + age.map(_as_text) + " but BRTHDTC '" + birth + "' gives " + text +
            ": AGE must be the completed years at the reference date")
    return _flag_each(dm, bad, "AGE", msgs)


# ============================================================================= EX, reference dates, visits


@rule("SD0409", "error", "EX dates outside RFXSTDTC-RFXENDTC", core=("CG0147", "CG0148"),
      p21=("SD1205", "SD1206", "SD1207"), fda=("FDAB008", "FDAB034"))
def ex_within_reference_exposure(study):
    """Every exposure to study treatment must lie within the subject's RFXSTDTC-RFXENDTC: EXSTDTC
    not before RFXSTDTC, EXENDTC not after RFXENDTC (and, with no EXENDTC, EXSTDTC not after
    RFXENDTC).  Only orderings that are certain count (partial dates are compared as the ranges
    they stand for) and, as for SD0405, only records with EXDOSE > 0 when EXDOSE exists."""
    dm = _dm(study)
    if dm is None:
        return None
    frame, note = _ex_doses(study)
    if frame is None:
        return None
    dmu = _text(dm.df, "USUBJID")
    first_dm = ~dmu.duplicated()
    rfx_s = pd.Series(_text(dm.df, "RFXSTDTC")[first_dm].to_numpy(), index=dmu[first_dm].to_numpy())
    rfx_e = pd.Series(_text(dm.df, "RFXENDTC")[first_dm].to_numpy(), index=dmu[first_dm].to_numpy())
    out = []
    for ds in study.parts("EX"):
        df = ds.df
        if "EXSTDTC" not in df.columns or "USUBJID" not in df.columns:
            continue
        sub = frame[frame["__dataset__"] == ds.name].set_index("__row__")
        keep = df["__row__"].map(sub["keep"]).fillna(False).astype(bool)
        u = _text(df, "USUBJID")
        st, en = _text(df, "EXSTDTC"), _text(df, "EXENDTC")
        rs, re_ = _lookup(u, rfx_s), _lookup(u, rfx_e)
        before = _certainly(st, rs, -1, keep)
        end_after = _certainly(en, re_, 1, keep)
        start_after = _certainly(st, re_, 1, keep & (en == ""))
        out.append(_flag_each(ds, before, "EXSTDTC", "EXSTDTC '" + st + "' is before DM.RFXSTDTC '" + rs +
                              "': exposure cannot start before the first study treatment (correct EXSTDTC "
                              "or RFXSTDTC)"))
        out.append(_flag_each(ds, end_after, "EXENDTC", "EXENDTC '" + en + "' is after DM.RFXENDTC '" + re_ +
                              "': exposure cannot end after the last study treatment (correct EXENDTC or "
                              "RFXENDTC)"))
        out.append(_flag_each(ds, start_after, "EXSTDTC", "EXSTDTC '" + st + "' is after DM.RFXENDTC '" + re_ +
                              "': exposure cannot start after the last study treatment"))
    return out


@rule("SD0410", "warning", "Date after the end of participation (RFPENDTC)",
      core=("CORE-000720", "CORE-000952"), fda=("FB3406", "FB3407"), p21=("SD1202", "SD1203", "SD1204"))
def dates_not_after_rfpendtc(study):
    """A subject's --STDTC, --DTC and --ENDTC must not be after DM.RFPENDTC, the end of his
    participation in the study: a later date is a typo, or RFPENDTC is wrong (or the study is
    ongoing, which TS ONGOSIND = 'Y' should then say).  Only certain orderings count: a date
    of the same day as a RFPENDTC with a time is not flagged."""
    dm = _dm(study)
    if dm is None or "RFPENDTC" not in dm.df.columns:
        return None
    dmu = _text(dm.df, "USUBJID")
    first_dm = ~dmu.duplicated()
    rfpen = pd.Series(_text(dm.df, "RFPENDTC")[first_dm].to_numpy(), index=dmu[first_dm].to_numpy())
    rfpen = rfpen[rfpen != ""]
    if not len(rfpen):
        return None
    out = []
    for ds in _subject_datasets(study, supp=False):
        p = ds.domain
        variables = [v for v in (f"{p}STDTC", f"{p}DTC", f"{p}ENDTC") if v in ds.df.columns]
        if not variables:
            continue
        for var in variables:
            d = _Distinct(ds.df, ["USUBJID", var])
            val = d.frame[var]
            end = _lookup(d.frame["USUBJID"], rfpen)
            after = _certainly(val, end, 1)
            if not after.any():
                continue
            msgs = (f"{var} '" + val + "' is after DM.RFPENDTC '" + end +
                    "', the end of the subject's participation: correct the date or RFPENDTC")
            out.append(_flag_each(ds, d.rows(after), var, d.rows(msgs)))
    return out


def _visitnum_key(values: pd.Series) -> pd.Series:
    num = values.astype(float) if pd.api.types.is_numeric_dtype(values) else \
        pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return num.astype(float).round(6)


def _visit_combos(ds):
    """The distinct (USUBJID, VISITNUM, VISIT, --STAT ...) of a subject dataset, the numeric
    VISITNUM of each, and which should be in SV: VISITNUM given and the record not NOT DONE (nor,
    in EC, not occurred)."""
    stat = f"{ds.domain}STAT"
    cols = ["USUBJID", "VISITNUM", "VISIT", stat] + (["ECOCCUR"] if ds.domain == "EC" else [])
    d = _Distinct(ds.df, cols)
    f = d.frame
    vn = _visitnum_key(f["VISITNUM"])
    ok = vn.notna() & (f["USUBJID"] != "") & (f[stat] == "")
    if ds.domain == "EC":
        ok &= f["ECOCCUR"] != "N"
    return d, vn, ok


def _sv(study):
    sv = study.domain("SV")
    if sv is None or not {"USUBJID", "VISITNUM"} <= set(sv.columns):
        return None
    return pd.DataFrame({"u": _text(sv, "USUBJID"), "vn": _visitnum_key(sv["VISITNUM"]),
                         "visit": _text(sv, "VISIT")})


@rule("SD0411", "warning", "VISITNUM not in SV for the subject", core=("CORE-000168", "CG0033"), p21=("SD0065",))
def visitnum_in_sv(study):
    """A subject record's VISITNUM must be one of the subject's visits in SV: SV is the record of
    the visits that took place, and a record at a visit SV does not have is misdated or SV is
    incomplete.  Records with --STAT populated (NOT DONE) are exempt, as in Pinnacle 21.  Checked
    only when SV exists."""
    sv = _sv(study)
    if sv is None:
        return None
    known = _pair(sv["u"], sv["vn"])
    out = []
    for ds in _subject_datasets(study, supp=False):
        if ds.domain == "SV" or "VISITNUM" not in ds.df.columns:
            continue
        d, vn, ok = _visit_combos(ds)
        bad = ok & ~_isin(_pair(d.frame["USUBJID"], vn), known)
        out.append(flag(ds, d.rows(bad), "VISITNUM", lambda v, n=ds.name: (
            f"VISITNUM {v} of this {n} record is not a visit of the subject in SV: add the visit to SV "
            "or correct VISITNUM"), value=ds.df["VISITNUM"]))
    return out


@rule("SD0412", "warning", "VISIT differs from SV", core=("CORE-000270", "CG0034"), p21=("SD0065",))
def visit_matches_sv(study):
    """For a record whose VISITNUM is one of the subject's SV visits, VISIT must be the name SV
    gives that visit: one visit, one name across the study.  Records with --STAT populated are
    exempt.  Checked only when SV exists and has VISIT."""
    sv = _sv(study)
    if sv is None or not (sv["visit"] != "").any():
        return None
    named = sv[sv["visit"] != ""].drop_duplicates(["u", "vn"])
    names = pd.Series(named["visit"].to_numpy(), index=_pair(named["u"], named["vn"]).to_numpy())
    out = []
    for ds in _subject_datasets(study, supp=False):
        if ds.domain == "SV" or not {"VISITNUM", "VISIT"} <= set(ds.df.columns):
            continue
        d, vn, ok = _visit_combos(ds)
        visit = d.frame["VISIT"]
        expected = _pair(d.frame["USUBJID"], vn).map(names).astype(object)
        bad = ok & (visit != "") & expected.notna() & (visit != expected.fillna(""))
        if not bad.any():
            continue
        msgs = ("VISIT '" + visit + "' differs from SV's name for VISITNUM " + d.frame["VISITNUM"] +
                " of the subject: '" + expected.fillna("") + "'")
        out.append(_flag_each(ds, d.rows(bad), "VISIT", d.rows(msgs)))
    return out


# ============================================================================= arms and death

_ARM_CODES_ALLOWED = {"SCRNFAIL", "NOTASSGN", "NOTTRT", "UNPLAN"}
_ARMS_ALLOWED = {"SCREEN FAILURE", "NOT ASSIGNED", "NOT TREATED", "UNPLANNED TREATMENT"}


@rule("SD0413", "error", "ARMCD/ARM/ACTARMCD/ACTARM not in TA",
      core=("CORE-000208", "CORE-000210", "CORE-000047", "CORE-000209", "CG0512", "CG0514", "CG0516", "CG0518"),
      p21=("SD0066", "SD0071", "SD2002", "SD2003"))
def arms_in_ta(study):
    """DM's planned and actual arms must be arms of the trial design: ARMCD and ACTARMCD values of
    TA, and ARM / ACTARM the TA description of that code.  The conventional codes of subjects
    without an arm (SCRNFAIL, NOTASSGN, NOTTRT, UNPLAN and their descriptions, any case) are not
    TA arms and are not flagged here; SDTMIG 3.4 wants them null with ARMNRS, which the DM
    population rules report.  Checked only when TA exists."""
    dm = _dm(study)
    ta = study.domain("TA")
    if dm is None or ta is None or "ARMCD" not in ta.columns:
        return None
    codes = _text(ta, "ARMCD")
    arms = _text(ta, "ARM")
    arm_of = pd.Series(arms.to_numpy(), index=codes.to_numpy())
    arm_of = arm_of[(arm_of.index != "") & ~arm_of.index.duplicated()]
    known_codes, known_arms = _distinct(codes) - {""}, _distinct(arms) - {""}
    out = []
    for cd_var, arm_var in (("ARMCD", "ARM"), ("ACTARMCD", "ACTARM")):
        cd = _text(dm.df, cd_var) if cd_var in dm.df.columns else None
        if cd is not None:
            bad = (cd != "") & ~cd.isin(known_codes) & ~cd.str.upper().isin(_ARM_CODES_ALLOWED)
            out.append(flag(dm, bad, cd_var, lambda v, var=cd_var: (
                f"{var} '{v}' is not an arm of TA: expected one of {', '.join(sorted(known_codes))} "
                f"(or {', '.join(sorted(_ARM_CODES_ALLOWED))} for subjects without an arm)")))
        if arm_var not in dm.df.columns:
            continue
        arm = _text(dm.df, arm_var)
        expected = cd.map(arm_of).astype(object) if cd is not None else pd.Series(None, index=dm.df.index, dtype=object)
        has_code = expected.notna()
        mismatch = (arm != "") & has_code & (arm != expected.fillna(""))
        unknown = (arm != "") & ~has_code & ~arm.isin(known_arms) & ~arm.str.upper().isin(_ARMS_ALLOWED)
        msgs = pd.Series("", index=dm.df.index, dtype=object)
        if cd is not None:
            msgs[mismatch] = (f"{arm_var} '" + arm + f"' is not TA's description of {cd_var} '" + cd +
                              "': expected '" + expected.fillna("") + "'")[mismatch]
        msgs[unknown] = (f"{arm_var} '" + arm + "' is not an arm of TA: expected one of " +
                         ", ".join(f"'{a}'" for a in sorted(known_arms)))[unknown]
        out.append(_flag_each(dm, mismatch | unknown, arm_var, msgs))
    return out


@rule("SD0414", "error", "Death recorded but DM.DTHFL is not 'Y'", core=("CORE-000252", "CORE-000254",
      "CG0134", "CG0135", "CG0136"), p21=("SD1254", "SD1255", "SD1256"))
def death_flag(study):
    """A subject with a fatal adverse event (AEOUT = 'FATAL' or AESDTH = 'Y') or a death in DS
    (DSDECOD = 'DEATH') died: DM.DTHFL must be 'Y'.  The DM record is flagged, naming the first
    record that reports the death."""
    dm = _dm(study)
    if dm is None or "DTHFL" not in dm.df.columns:
        return None
    evidence = []
    ae = study.domain("AE")
    if ae is not None and "USUBJID" in ae.columns:
        for var, val in (("AEOUT", "FATAL"), ("AESDTH", "Y")):
            if var in ae.columns:
                hit = _text(ae, var).str.upper() == val
                evidence.append(pd.DataFrame({"u": _text(ae, "USUBJID")[hit],
                                              "why": (ae["__dataset__"] + " row " + ae["__row__"].map(_as_text) +
                                                      f" ({var} = '{val}')")[hit]}))
    ds = study.domain("DS")
    if ds is not None and {"USUBJID", "DSDECOD"} <= set(ds.columns):
        hit = _text(ds, "DSDECOD").str.upper() == "DEATH"
        evidence.append(pd.DataFrame({"u": _text(ds, "USUBJID")[hit],
                                      "why": (ds["__dataset__"] + " row " + ds["__row__"].map(_as_text) +
                                              " (DSDECOD = 'DEATH')")[hit]}))
    if not evidence:
        return None
    ev = pd.concat(evidence, ignore_index=True)
    ev = ev[ev["u"] != ""].drop_duplicates("u").set_index("u")["why"]
    u = _text(dm.df, "USUBJID")
    why = u.map(ev).astype(object)
    bad = why.notna() & (_text(dm.df, "DTHFL") != "Y")
    msgs = ("DTHFL is '" + _text(dm.df, "DTHFL") + "' but " + why.fillna("") +
            " reports the subject's death: DTHFL must be 'Y'")
    return _flag_each(dm, bad, "DTHFL", msgs)


# ============================================================================= supplemental qualifiers

_QNAM = re.compile(r"^[A-Z_][A-Z0-9_]{0,7}$")
_POPULATION_QNAMS = {"ITT", "MITT", "SAFETY", "EFFICACY", "PPROT", "FULLSET", "COMPLT"}
_POPULATION_FLAGS = re.compile(
    r"^(COMPLT\d*|COMPL\d*FL|COMP\d+FL|ITTFL|MITTFL|SAFFL|EFFFL|FASFL|PPROTFL|PPSFL|RANDFL|ENRLFL|PKFL|PKPFL)$")


def _supps(study):
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        if ds.is_supp and {"RDOMAIN", "USUBJID"} <= set(ds.df.columns) and len(ds.df):
            yield ds


class _Parents:
    """Parent domains looked up once per rule: the parts of a split domain together."""

    def __init__(self, study):
        self.study = study
        self._cache: dict = {}

    def get(self, rdomain: str):
        if rdomain not in self._cache:
            df = self.study.domain(rdomain) if rdomain else None
            if df is None and rdomain:  # parts of a custom domain (XYAB for XY) not known to the IG
                parts = [d for n, d in sorted(self.study.datasets.items())
                         if not d.is_supp and n.startswith(rdomain) and len(n) <= len(rdomain) + 2]
                if parts:
                    df = pd.concat([d.df.assign(__dataset__=d.name) for d in parts], ignore_index=True)
            self._cache[rdomain] = df
        return self._cache[rdomain]

    def columns(self, rdomain: str) -> set:
        df = self.get(rdomain)
        return set() if df is None else {c for c in df.columns if not c.startswith("__")}


@rule("SD0420", "error", "SUPP-- parent record not found", core=("CORE-000712", "CG0371"), p21=("SD0077", "SD0072"))
def supp_parent_exists(study):
    """Each SUPP-- record qualifies one parent record, found by RDOMAIN, USUBJID, IDVAR and
    IDVARVAL: the parent must exist, or the qualifier hangs in the air (for RDOMAIN = DM the
    parent is the subject's DM record, which SD0401 checks).  The parent of a split SUPP--
    dataset (SUPPLBCH) is looked up in the whole domain (LBCH, LBHE, LBUR: --SEQ is unique per
    subject across the parts), so a split is never a finding.  A RDOMAIN with no dataset in the
    folder is reported once per SUPP-- dataset.  Rows whose IDVAR is not a parent variable are
    left to SD0421."""
    parents = _Parents(study)
    out = []
    for ds in _supps(study):
        df = ds.df
        rd = _text(df, "RDOMAIN").str.upper()
        u = _text(df, "USUBJID")
        idvar = _text(df, "IDVAR").str.upper()
        idval = _text(df, "IDVARVAL")
        for dom in sorted(_distinct(rd) - {""}):
            rows = rd == dom
            parent = parents.get(dom)
            if parent is None or "USUBJID" not in parent.columns:
                out.append(dataset_finding(ds.name, "RDOMAIN", f"RDOMAIN '{dom}' ({int(rows.sum())} records of "
                                           f"{ds.name}) names no dataset of the folder: the parent records of "
                                           "these qualifiers are missing", value=dom, severity="error"))
                continue
            if dom == "DM":  # the parent is the subject's DM record: SD0401 checks it
                continue
            pu = _text(parent, "USUBJID")
            for var in sorted(_distinct(idvar[rows]) - {""}):
                if var not in parent.columns:
                    continue
                sel = rows & (idvar == var) & (idval != "")
                if not sel.any():
                    continue
                pk = _key(parent[var]) if pd.api.types.is_numeric_dtype(parent[var]) else _text(parent, var)
                sk = _key(idval) if pd.api.types.is_numeric_dtype(parent[var]) else idval
                known = _pair(pu, pk)
                bad = sel & ~_isin(_pair(u, sk), known)
                parts = ", ".join(sorted(_distinct(parent["__dataset__"]))) if "__dataset__" in parent.columns else dom
                out.append(flag(ds, bad, "IDVARVAL", lambda v, var=var, parts=parts: (
                    f"no {parts} record of this subject has {var} = {v}: the parent record of this "
                    "qualifier does not exist (correct IDVARVAL or remove the qualifier)")))
    return out


@rule("SD0421", "error", "IDVAR is not a variable of the parent domain", core=("CORE-000206", "CG0370"),
      p21=("SD0075",))
def supp_idvar_in_parent(study):
    """IDVAR names the parent-domain variable whose value (IDVARVAL) identifies the parent record
    (usually --SEQ, or --GRPID, --SPID, --REFID): it must be a variable of the RDOMAIN dataset(s),
    or no record can be found from it."""
    parents = _Parents(study)
    out = []
    for ds in _supps(study):
        rd = _text(ds.df, "RDOMAIN").str.upper()
        idvar = _text(ds.df, "IDVAR").str.upper()
        for dom in sorted(_distinct(rd) - {"", "DM"}):
            cols = parents.columns(dom)
            if not cols:
                continue
            bad = (rd == dom) & (idvar != "") & ~idvar.isin(cols)
            seq = f"{dom}SEQ"
            hint = f" (usually {seq})" if seq in cols else ""
            out.append(flag(ds, bad, "IDVAR", lambda v, dom=dom, hint=hint: (
                f"IDVAR '{v}' is not a variable of {dom}: IDVAR must name the {dom} variable that "
                f"identifies the parent record{hint}")))
    return out


@rule("SD0422", "error", "IDVAR/IDVARVAL populated for DM, or missing for other domains",
      core=("CORE-000134", "CG0163", "CG0203"), p21=("SD1072", "SD1051"))
def supp_idvar_presence(study):
    """IDVAR and IDVARVAL are empty exactly when the qualifier is about the subject (RDOMAIN = DM,
    one DM record per subject needs no identifier) and both populated otherwise: a record-level
    qualifier without IDVAR/IDVARVAL cannot be attached to a record."""
    out = []
    for ds in _supps(study):
        rd = _text(ds.df, "RDOMAIN").str.upper()
        idvar, idval = _text(ds.df, "IDVAR"), _text(ds.df, "IDVARVAL")
        dm = rd == "DM"
        other = (rd != "") & ~dm
        out.append(flag(ds, dm & (idvar != ""), "IDVAR", lambda v: (
            f"IDVAR '{v}' is populated for RDOMAIN = DM: qualifiers of the DM record leave IDVAR and "
            "IDVARVAL empty")))
        out.append(flag(ds, dm & (idvar == "") & (idval != ""), "IDVARVAL", lambda v: (
            f"IDVARVAL '{v}' is populated for RDOMAIN = DM: qualifiers of the DM record leave IDVAR and "
            "IDVARVAL empty")))
        out.append(flag(ds, other & (idvar == ""), "IDVAR", lambda v: (
            "IDVAR is empty: a qualifier of a record outside DM must name the identifying variable of "
            "its parent (e.g. --SEQ) in IDVAR and its value in IDVARVAL")))
        out.append(flag(ds, other & (idvar != "") & (idval == ""), "IDVARVAL", lambda v: (
            "IDVARVAL is empty: it must hold the value of IDVAR that identifies the parent record")))
    return out


@rule("SD0423", "error", "QNAM repeated for the same parent record", core=("CORE-000203", "CG0411"),
      p21=("SD0086",))
def supp_qnam_unique(study):
    """A parent record has at most one value of each supplemental qualifier: STUDYID, RDOMAIN,
    USUBJID, IDVAR, IDVARVAL and QNAM together are unique across the SUPP-- datasets of a domain
    (the parts of a split SUPP-- together).  Each repeat after the first is flagged."""
    out = []
    groups: dict[str, list] = {}
    for ds in _supps(study):
        if "QNAM" in ds.df.columns:
            groups.setdefault(ds.domain, []).append(ds)
    for dom, dss in sorted(groups.items()):
        frames = []
        for ds in dss:
            df = ds.df
            frames.append(pd.DataFrame({"ds": ds.name, "row": df["__row__"].to_numpy(),
                                        "k": (_text(df, "STUDYID") + "|" + _text(df, "RDOMAIN") + "|" +
                                              _text(df, "USUBJID") + "|" + _text(df, "IDVAR") + "|" +
                                              _key(_text(df, "IDVARVAL")) + "|" + _text(df, "QNAM")).to_numpy()}))
        allk = pd.concat(frames, ignore_index=True)
        dup = allk["k"].duplicated(keep="first")
        if not dup.any():
            continue
        firsts = allk[~dup].set_index("k")
        where = allk["k"].map(firsts["ds"] + " row " + firsts["row"].map(_as_text))
        for ds in dss:
            sel = (allk["ds"] == ds.name)
            d = dup[sel]
            if not d.any():
                continue
            mask = pd.Series(d.to_numpy(), index=ds.df.index)
            w = pd.Series(where[sel].to_numpy(), index=ds.df.index)
            msgs = ("QNAM '" + _text(ds.df, "QNAM") + "' is already given for this parent record (" + w +
                    "): one value per qualifier and parent record")
            out.append(_flag_each(ds, mask, "QNAM", msgs))
    return out


@rule("SD0424", "error", "QNAM is a variable of the parent domain", core=("CORE-000221", "CORE-000222", "CG0314"))
def supp_qnam_not_parent_variable(study):
    """A supplemental qualifier holds what the parent domain has no variable for: a QNAM that is a
    variable of the parent dataset, or a variable the SDTMIG defines for that domain, belongs in
    the parent dataset itself (e.g. SUPPAE QNAM = 'AESER' must be AE.AESER)."""
    parents = _Parents(study)
    out = []
    for ds in _supps(study):
        if "QNAM" not in ds.df.columns:
            continue
        rd = _text(ds.df, "RDOMAIN").str.upper()
        qnam = _text(ds.df, "QNAM").str.upper()
        for dom in sorted(_distinct(rd) - {""}):
            in_data = parents.columns(dom)
            try:
                in_ig = set(study.ig.dataset(dom).names)
            except (KeyError, AttributeError):
                in_ig = set()
            rows = (rd == dom) & (qnam != "")
            bad = rows & (qnam.isin(in_data) | qnam.isin(in_ig))

            def msg(v, dom=dom, in_data=in_data):
                where = f"a variable of the {dom} dataset" if v in in_data else f"an SDTMIG {dom} variable"
                return (f"QNAM '{v}' is {where}: put the value in {dom}.{v}, not in a supplemental "
                        "qualifier")
            out.append(flag(ds, bad, "QNAM", msg))
    return out


@rule("SD0425", "error", "Invalid QNAM", core=("CORE-000783", "CG0417"), p21=("SD1022",))
def supp_qnam_valid(study):
    """QNAM becomes a variable name when the qualifiers are transposed onto their parent: at most
    8 characters, upper-case letters, digits and underscores, not starting with a digit (XPT v5
    variable-name rules)."""
    out = []
    for ds in _supps(study):
        if "QNAM" not in ds.df.columns:
            continue
        q = _text(ds.df, "QNAM")
        bad = (q != "") & ~q.str.match(_QNAM)

        def msg(v):
            why = "longer than 8 characters" if len(v) > 8 else "not made of upper-case letters, digits and " \
                "underscores (first not a digit)"
            return f"QNAM '{v}' is {why}: QNAM must be a valid XPT variable name"
        out.append(flag(ds, bad, "QNAM", msg))
    return out


@rule("SD0426", "error", "QLABEL longer than 40 characters", core=("CORE-000211", "CG0416"), p21=("SD1049",))
def supp_qlabel_length(study):
    """QLABEL becomes the label of the transposed variable: at most 40 characters (XPT v5 limit)."""
    out = []
    for ds in _supps(study):
        if "QLABEL" not in ds.df.columns:
            continue
        lab = _text(ds.df, "QLABEL")
        bad = lab.str.len() > 40
        out.append(flag(ds, bad, "QLABEL", lambda v: (
            f"QLABEL has {len(v)} characters: a label holds at most 40 (shorten it)")))
    return out


@rule("SD0427", "warning", "Population flag in SUPPDM", core=("CG0138", "CG0528"), p21=("SD1365",))
def supp_population_flags(study):
    """Analysis population flags (ITT, SAFETY, EFFICACY, PPROT, COMPLT.., and ADSL-style ..FL
    names such as SAFFL, ITTFL) are analysis decisions: since SDTMIG 3.3 they are no longer
    standard supplemental qualifiers and belong in ADSL, not in SUPPDM."""
    out = []
    for ds in _supps(study):
        if "QNAM" not in ds.df.columns:
            continue
        rd = _text(ds.df, "RDOMAIN").str.upper()
        q = _text(ds.df, "QNAM").str.upper()
        bad = (rd == "DM") & (q.isin(_POPULATION_QNAMS) | q.str.match(_POPULATION_FLAGS))
        out.append(flag(ds, bad, "QNAM", lambda v: (
            f"QNAM '{v}' is an analysis population flag: population flags belong in ADaM (ADSL), "
            "not in SUPPDM")))
    return out


@rule("SD0428", "error", "RDOMAIN does not match the SUPP-- dataset", core=("CG0334",), p21=("SD0072",))
def supp_rdomain_matches_name(study):
    """SUPPxx holds qualifiers of domain xx only: every RDOMAIN of SUPPAE is AE, and of a split
    SUPPLBCH the parent domain LB (not the split name LBCH)."""
    out = []
    for ds in _supps(study):
        rd = _text(ds.df, "RDOMAIN")
        accepted = {ds.domain}
        if not study.ig.has(ds.domain) and len(ds.name) > 6:  # split of a custom domain: SUPPXYAB -> XY
            accepted.add(ds.name[4:6])
        bad = ~_isin(rd, accepted)
        out.append(flag(ds, bad, "RDOMAIN", lambda v, ds=ds: (
            f"RDOMAIN '{v}' in {ds.name}: {ds.name} holds qualifiers of {ds.domain} records, so RDOMAIN "
            f"must be '{ds.domain}'")))
    return out


# ============================================================================= trial summary

# The FDA's required TS parameters (Study Data Technical Conformance Guide; P21 SD22xx): SSTDTC
# is a technical rejection criterion (eCTD 1734); the others are warnings.  (parameter, P21 id,
# condition) - condition 'interventional': only when STYPE is INTERVENTIONAL or unknown;
# 'pclas': also only when INTTYPE is DRUG or BIOLOGIC (or unknown).
_TS_REQUIRED = (
    ("SDTIGVER", "SD2280", None), ("TITLE", "SD2213", None), ("TPHASE", "SD2214", None),
    ("TTYPE", "SD2215", None), ("INDIC", "", None), ("SPONSOR", "SD2218", None), ("STYPE", "SD2230", None),
    ("INTMODEL", "SD2228", "interventional"), ("INTTYPE", "SD2231", "interventional"),
    ("PCLAS", "SD2223", "pclas"),
)
_CDISC_REF = re.compile(r"^CDISC( CT)?$", re.IGNORECASE)
_CT_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _ts(study):
    ds = study.datasets.get("TS")
    if ds is None or "TSPARMCD" not in ds.df.columns:
        return None
    return ds


def _ts_value(ts, parmcd) -> str | None:
    """The (first) TSVAL of a parameter, upper case; None when the parameter is absent."""
    p = _text(ts.df, "TSPARMCD")
    vals = _text(ts.df, "TSVAL")[p == parmcd]
    return None if not len(vals) else vals.iloc[0].upper()


@rule("SD0430", "error", "TS lacks SSTDTC (study start date)", core=("CG0287",), p21=("SD2232",),
      fda=("eCTD 1734", "FDAB011"))
def ts_has_sstdtc(study):
    """TS must have the study start date (TSPARMCD = 'SSTDTC'): the FDA refuses a submission
    without it (technical rejection criterion 1734), since it decides which data standards the
    study had to follow.  A folder without TS is the same rejection."""
    ts = _ts(study)
    if ts is None:
        if "TS" in study.datasets:
            return dataset_finding("TS", "TSPARMCD", "TS has no TSPARMCD variable, so no SSTDTC record: "
                                   "TS needs a TSPARMCD = 'SSTDTC' record with the study start date")
        return dataset_finding("TS", None, "The folder has no TS dataset: the FDA rejects a study without "
                               "TS and its SSTDTC (study start date) record")
    if (_text(ts.df, "TSPARMCD") == "SSTDTC").any():
        return None
    return dataset_finding("TS", "TSPARMCD", "TS has no SSTDTC record: add TSPARMCD = 'SSTDTC' with "
                           "the study start date as TSVAL (ISO 8601); the FDA rejects a study without it",
                           value="SSTDTC")


@rule("SD0431", "warning", "TS lacks a parameter the FDA requires", core=("CORE-000741", "CG0287"),
      p21=tuple(p for _, p, _ in _TS_REQUIRED if p), fda=("FDAB011",))
def ts_required_parameters(study):
    """Besides SSTDTC, the FDA's Technical Conformance Guide asks every TS for SDTIGVER, TITLE,
    TPHASE, TTYPE, INDIC, SPONSOR and STYPE, and for an interventional study INTMODEL, INTTYPE
    and (for a drug or biologic) PCLAS.  A parameter without a value is still a record: give it
    with TSVALNF (e.g. 'NA') when it does not apply."""
    ts = _ts(study)
    if ts is None:
        return None
    present = _distinct(_text(ts.df, "TSPARMCD"))
    stype = _ts_value(ts, "STYPE")
    inttype = _ts_value(ts, "INTTYPE")
    interventional = stype in (None, "", "INTERVENTIONAL")
    out = []
    for parm, _, cond in _TS_REQUIRED:
        if parm in present:
            continue
        if cond in ("interventional", "pclas") and not interventional:
            continue
        if cond == "pclas" and inttype not in (None, "", "DRUG", "BIOLOGIC"):
            continue
        why = " (the study is interventional)" if cond == "interventional" else \
            f" (the investigational product is a {(inttype or 'drug').lower()})" if cond == "pclas" else ""
        try:
            name = study.ct.paired_value("TSPARMCD", parm, "TSPARM") or parm
        except KeyError:
            name = parm
        out.append(dataset_finding("TS", "TSPARMCD", f"TS has no {parm} ({name}) record, which the FDA "
                                   f"requires{why}: add it, with TSVALNF when no value applies", value=parm))
    return out


@rule("SD0432", "error", "Not exactly one of TSVAL and TSVALNF populated",
      core=("CORE-000149", "CORE-000150", "CORE-000041", "CORE-000787", "CG0259", "CG0260"),
      p21=("SD2017", "SD2018"))
def ts_value_or_null_flavor(study):
    """A TS record has a value (TSVAL) or says why it has none (TSVALNF, an ISO 21090 null
    flavor), never both and never neither."""
    ts = _ts(study)
    if ts is None or "TSVAL" not in ts.df.columns:
        return None
    val, nf = _text(ts.df, "TSVAL"), _text(ts.df, "TSVALNF")
    parm = _text(ts.df, "TSPARMCD")
    neither = (val == "") & (nf == "")
    both = (val != "") & (nf != "")
    return [
        _flag_each(ts, neither, "TSVAL", "TSVAL and TSVALNF are both empty for " + parm +
                   ": give the value in TSVAL, or the reason it is missing in TSVALNF (e.g. 'NA', 'UNK')"),
        _flag_each(ts, both, "TSVALNF", "TSVALNF '" + nf + "' is populated although TSVAL '" + val +
                   "' is given for " + parm + ": TSVALNF is only for records without a value",
                   value=ts.df["TSVALNF"] if "TSVALNF" in ts.df.columns else None),
    ]


@rule("SD0433", "error", "TSPARMCD and TSPARM not one-to-one", core=("CORE-000179", "CG0307"),
      p21=("SD1069", "SD1070"))
def ts_parmcd_parm_one_to_one(study):
    """Each TSPARMCD has one TSPARM and each TSPARM one TSPARMCD throughout TS.  The rows whose
    value differs from the first one given are flagged."""
    ts = _ts(study)
    if ts is None or "TSPARM" not in ts.df.columns:
        return None
    cd, nm = _text(ts.df, "TSPARMCD"), _text(ts.df, "TSPARM")
    ok = (cd != "") & (nm != "")
    return [_ts_pairing(ts, ok, cd, nm, "TSPARMCD", "TSPARM"),
            _ts_pairing(ts, ok, nm, cd, "TSPARM", "TSPARMCD")]


@rule("SD0434", "warning", "TSPARM is not the CDISC name of TSPARMCD", core=("CORE-000152",), p21=("CT2003",))
def ts_parm_matches_ct(study):
    """For a TSPARMCD of CDISC CT, TSPARM must be the TSPARM term paired with it (same C-code):
    e.g. INDIC is 'Trial Disease/Condition Indication'.  Sponsor parameters (not in CT) are not
    checked.  A warning, since names change between CT versions: the message names the version
    checked against."""
    ts = _ts(study)
    if ts is None or "TSPARM" not in ts.df.columns:
        return None
    try:
        cd_cl, nm_cl = study.ct.codelist("TSPARMCD"), study.ct.codelist("TSPARM")
    except KeyError:
        return None
    cd, nm = _text(ts.df, "TSPARMCD"), _text(ts.df, "TSPARM")
    pairs = {}
    for c in _distinct(cd) - {""}:
        t = cd_cl.term(c)
        p = nm_cl.term_by_code(t.code) if t is not None else None
        if p is not None:
            pairs[c] = p.value
    exp = cd.map(pairs).astype(object)
    bad = exp.notna() & (nm != "") & (nm != exp.fillna(""))
    version = getattr(study.ct, "version", "")
    return _flag_each(ts, bad, "TSPARM", "TSPARM '" + nm + "' is not the CDISC name of TSPARMCD '" + cd +
                      f"' in CT {version}: expected '" + exp.fillna("") + "'")


@rule("SD0435", "error", "TSSEQ repeated within a TSPARMCD", core=("CORE-000154", "CG0268"), p21=("SD1038",))
def ts_tsseq_unique(study):
    """Records of one parameter (e.g. several TTYPE values) are told apart by TSSEQ: TSSEQ is unique
    within each TSPARMCD (per TSGRPID when groups are used)."""
    ts = _ts(study)
    if ts is None or "TSSEQ" not in ts.df.columns:
        return None
    df = ts.df
    key = pd.DataFrame({"c": _text(df, "TSPARMCD"), "g": _text(df, "TSGRPID"), "s": _key(_text(df, "TSSEQ"))})
    dup = (key["c"] != "") & (key["s"] != "") & key.duplicated(keep="first")
    return _flag_each(ts, dup, "TSSEQ", "TSSEQ " + key["s"] + " is used twice for TSPARMCD '" + key["c"] +
                      "': number the records of a parameter 1, 2, 3 ...", value=df["TSSEQ"])


@rule("SD0436", "error", "SSTDTC is not a complete ISO 8601 date", core=("CORE-000505", "CG0285"),
      p21=("SD2247", "SD2247A"), fda=("eCTD 1734",))
def ts_sstdtc_iso(study):
    """The study start date (TSVAL of SSTDTC) must be a valid ISO 8601 date with year, month and
    day: the FDA cannot tell the applicable standards from a partial or unreadable date
    (technical rejection criterion 1734)."""
    ts = _ts(study)
    if ts is None or "TSVAL" not in ts.df.columns:
        return None
    parm, val = _text(ts.df, "TSPARMCD"), _text(ts.df, "TSVAL")
    rows = (parm == "SSTDTC") & (val != "")
    if not rows.any():
        return None
    valid = is_iso8601(val) & dtc_precision(val).isin(["day", "hour", "minute", "second"])
    return flag(ts, rows & ~valid, "TSVAL", lambda v: (
        f"SSTDTC = '{v}' is not a complete ISO 8601 date: write the study start date as YYYY-MM-DD"))


@rule("SD0437", "error", "TSVCDREF missing although TSVALCD or TSVCDVER is given",
      core=("CORE-000153", "CG0266"), p21=("SD1268",))
def ts_vcdref_present(study):
    """A code (TSVALCD) or a dictionary version (TSVCDVER) means nothing without the dictionary it
    comes from: TSVCDREF must name it (CDISC CT, SNOMED, UNII, MED-RT, ISO 3166 ...)."""
    ts = _ts(study)
    if ts is None:
        return None
    ref, cd, ver = _text(ts.df, "TSVCDREF"), _text(ts.df, "TSVALCD"), _text(ts.df, "TSVCDVER")
    bad = (ref == "") & ((cd != "") | (ver != ""))
    given = ("TSVALCD '" + cd + "'").where(cd != "", "TSVCDVER '" + ver + "'")
    hint = (" (TSVCDVER '" + ver + "' looks like the dictionary's name: it should hold its version)").where(
        (cd != "") & (ver != "") & ~ver.str.match(_CT_VERSION), "")
    msgs = ("TSVCDREF is empty although " + given + " is given for " + _text(ts.df, "TSPARMCD") +
            ": name the dictionary in TSVCDREF" + hint)
    return _flag_each(ts, bad, "TSVCDREF", msgs)


@rule("SD0438", "error", "TSVALCD is not the CDISC CT code of TSVAL", core=("CORE-001080", "CG0289"))
def ts_valcd_is_ct_code(study):
    """When TSVCDREF is CDISC CT ('CDISC' accepted as its older spelling), TSVALCD must be the
    C-code of the TSVAL term in a CDISC codelist (e.g. TSVAL 'PHASE II TRIAL' has C15601).
    Checked against the CT version the validator carries."""
    ts = _ts(study)
    if ts is None or not {"TSVAL", "TSVALCD", "TSVCDREF"} <= set(ts.df.columns):
        return None
    ref, val, cd = _text(ts.df, "TSVCDREF"), _text(ts.df, "TSVAL"), _text(ts.df, "TSVALCD").str.upper()
    rows = ref.str.match(_CDISC_REF) & (val != "") & (cd != "")
    if not rows.any():
        return None
    wanted_codes = _distinct(cd[rows])
    wanted_vals = _distinct(val[rows])
    values_of: dict[str, set] = {}
    codes_of: dict[str, set] = {}
    for cl in study.ct:
        for t in cl.terms:
            if t.code in wanted_codes:
                values_of.setdefault(t.code, set()).add(t.value)
            if t.value in wanted_vals:
                codes_of.setdefault(t.value, set()).add(t.code)
    ok = pd.Series([v in values_of.get(c, ()) for v, c in zip(val, cd)], index=ts.df.index)
    bad = rows & ~ok
    version = getattr(study.ct, "version", "")

    def expected(v):
        codes = sorted(codes_of.get(v, ()))
        return f"expected {' or '.join(codes)}" if codes else f"'{v}' is not a term of CDISC CT {version}"
    msgs = ("TSVALCD '" + cd + "' is not the CDISC CT code of TSVAL '" + val + "' (" + val.map(expected) +
            "; " + cd.map(lambda c: f"{c} is " + (" / ".join(f"'{x}'" for x in sorted(values_of[c]))
                                                   if c in values_of else "not a CT code")) + ")")
    return _flag_each(ts, bad, "TSVALCD", msgs)


@rule("SD0439", "error", "TSVCDVER is not a CDISC CT version", core=("CORE-000761", "CG0288"), p21=("SD1260",))
def ts_vcdver_ct_version(study):
    """When TSVCDREF is CDISC CT, TSVCDVER must give the CT package used, as its release date
    (YYYY-MM-DD, e.g. '2025-03-28'): codes and terms change between releases."""
    ts = _ts(study)
    if ts is None or "TSVCDREF" not in ts.df.columns:
        return None
    ref, ver = _text(ts.df, "TSVCDREF"), _text(ts.df, "TSVCDVER")
    rows = ref.str.match(_CDISC_REF)
    date_ok = ver.str.match(_CT_VERSION) & is_iso8601(ver)
    bad = rows & ~date_ok
    version = getattr(study.ct, "version", "YYYY-MM-DD")
    msgs = pd.Series(np.where(ver == "", "TSVCDVER is empty for a CDISC CT code of " + _text(ts.df, "TSPARMCD"),
                              "TSVCDVER '" + ver + "' is not a CDISC CT version"), index=ts.df.index) + \
        f": give the CT release date used (e.g. '{version}')"
    return _flag_each(ts, bad, "TSVCDVER", msgs)


@rule("SD0440", "error", "TSVAL and TSVALCD not one-to-one", core=("CG0265",), p21=("SD1278",))
def ts_val_valcd_one_to_one(study):
    """Within one dictionary (TSVCDREF), the same TSVAL always has the same TSVALCD and a TSVALCD
    always the same TSVAL (e.g. 'N' is C49487 wherever it is coded).  Records without TSVALCD are
    not compared.  The rows that differ from the first pairing are flagged."""
    ts = _ts(study)
    if ts is None or not {"TSVAL", "TSVALCD"} <= set(ts.df.columns):
        return None
    ref = _text(ts.df, "TSVCDREF").str.upper()
    val, cd = _text(ts.df, "TSVAL"), _text(ts.df, "TSVALCD")
    ok = (val != "") & (cd != "")
    return [_ts_pairing(ts, ok, val, cd, "TSVAL", "TSVALCD", within=ref),
            _ts_pairing(ts, ok, cd, val, "TSVALCD", "TSVAL", within=ref)]


def _ts_pairing(ts, ok, a, b, a_name: str, b_name: str, within=None):
    """Rows whose `b` differs from the first `b` given for the same `a` (and `within` value)."""
    k = a if within is None else within + "|" + a
    first = pd.Series(b[ok].to_numpy(), index=k[ok].to_numpy())
    first = first[~first.index.duplicated()]
    exp = k.map(first).astype(object)
    bad = ok & exp.notna() & (b != exp.fillna(""))
    return _flag_each(ts, bad, b_name, f"{b_name} '" + b + f"' differs from the {b_name} given earlier for "
                      f"{a_name} '" + a + "': '" + exp.fillna("") + f"' ({a_name} and {b_name} are "
                      "one-to-one)")
