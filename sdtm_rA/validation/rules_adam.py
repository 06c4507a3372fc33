"""ADaM datasets: rules AD01xx.

Run only for a folder of ADaM datasets (ADSL present, every dataset named AD…, or
`--standard adamig-1.3`), which is validated against ADaMIG 1.3: the subject-level dataset
(ADSL: present, one record per subject, its required variables, the subjects every other dataset
refers to), the flag and imputation-flag conventions, the Basic Data Structure (BDS: any dataset
with PARAMCD: parameters, analysis values, baseline, change from baseline, analysis records) and
the occurrence datasets (OCCDS such as ADAE: treatment-emergent flag, start and end dates).
The generic structure rules of SD01xx (dataset and variable names, dataset and variable labels,
lengths, ASCII text) run for ADaM folders too; rules that read SDTMIG metadata do not.

The ids AD01xx are this toolkit's own; Pinnacle 21's ADaM rule ids (AD0001 ...) are given as
references where the check is the same.  Numeric comparisons (CHG, PCHG) are made as admiral makes
them, at 15 significant digits.  Every rule works on whole columns (distinct values where values
repeat); loops run over datasets, columns and groups of findings, never over records.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..adam.bds import signif
from .data import adam_structure
from .model import dataset_finding, flag, rule
from .rules_consistency import _one_to_one, _txt
from .rules_cross import _flag_each, _isin, _number, _one_record_per_subject, _text

ADAM = ("ADaM",)
IG = "ADaMIG 1.3"
#: ADSL population flags: 'Y' or 'N' for every subject (with ADaMIG's Population Indicator set)
POPULATION_FLAGS = ("SAFFL", "ITTFL", "EFFFL", "FASFL", "PPROTFL", "COMPLFL")
MAX_PARAMCD = 8
MAX_PARAM = 200
_PARAMCD_RE = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
_SAS_EPOCH = pd.Timestamp("1960-01-01")


# --------------------------------------------------------------------------------- helpers


def _datasets(study):
    """The datasets of the folder with records, in name order."""
    return [study.datasets[n] for n in sorted(study.datasets) if len(study.datasets[n].df)]


def _adsl(study):
    ds = study.datasets.get("ADSL")
    return ds if ds is not None and "USUBJID" in ds.df.columns else None


def _bds(study):
    """BDS datasets (TTE included): those with PARAMCD."""
    return [ds for ds in _datasets(study) if adam_structure(ds) in ("BDS", "TTE")]


def _bad_values(series: pd.Series, bad) -> pd.Series:
    """Rows whose value (as stripped text) is bad: `bad(text) -> bool` is asked once per distinct
    value, so a million-row column costs its few distinct values."""
    codes, uniq = pd.factorize(series, use_na_sentinel=False)
    verdict = np.array([bool(bad(t)) for t in _txt(pd.Series(uniq, dtype=object))], dtype=bool)
    return pd.Series(verdict[codes] if len(uniq) else np.zeros(len(series), dtype=bool),
                     index=series.index)


def _differ(x: pd.Series, y: pd.Series) -> pd.Series:
    """x and y both present and different at 15 significant digits (admiral's comparison).

    A difference of floating-point noise that rounding happens to split across a 15th-digit
    boundary (|x - y| within 1e-14 of their magnitude, e.g. 100 * CHG / |BASE| against
    (AVAL - BASE) / |BASE| * 100) is not a difference."""
    a, b = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(invalid="ignore"):
        out = (signif(a) != signif(b)) & (np.abs(a - b) > 1e-14 * scale)
    return pd.Series(out & ~np.isnan(a) & ~np.isnan(b), index=x.index)


def _shown(values: pd.Series) -> pd.Series:
    """Numbers as message text (15 significant digits, no trailing noise)."""
    return _txt(pd.Series(signif(values.to_numpy(dtype=float)), index=values.index))


def _rows_of(frame: pd.DataFrame, mask: pd.Series, keys: list[str]) -> pd.Series:
    """For each flagged row, the file rows of its group (same `keys` among flagged rows): 'rows 3
    and 5', 'rows 3, ..., 9 (4 records)'."""
    rows = frame.loc[mask, "__row__"].astype(int)
    g = rows.groupby([frame.loc[mask, k] for k in keys], sort=False)
    first, last, n = (g.transform(how).astype(str) for how in ("first", "last", "size"))
    text = "rows " + first + np.where(n == "2", " and ", ", ..., ") + last
    text = text.where(n.isin(["1", "2"]), text + " (" + n + " records)")
    return text.reindex(frame.index).fillna("")


def _group_text(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """'USUBJID 'S1', PARAMCD 'CRP'' for each row: the group a message is about."""
    out = pd.Series("", index=frame.index, dtype=object)
    for i, k in enumerate(keys):
        out = out + ("" if i == 0 else ", ") + k + " '" + frame[k] + "'"
    return out


def _days(series: pd.Series) -> pd.Series:
    """A date variable as days since 1960-01-01 (SAS dates): numbers as they are; text (CSV) as a
    number, an ISO 8601 date or a DATE9 date ('05JAN2021'); NaN when none of these."""
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    codes, uniq = pd.factorize(series, use_na_sentinel=False)
    text = _txt(pd.Series(uniq, dtype=object))
    num = pd.to_numeric(text, errors="coerce")
    for fmt in ("ISO8601", "%d%b%Y"):
        todo = num.isna() & (text != "")
        if not todo.any():
            break
        when = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        num[todo] = (when - _SAS_EPOCH).dt.days
    return pd.Series(num.to_numpy(dtype=float)[codes] if len(uniq) else np.array([], dtype=float),
                     index=series.index)


def _iso(days: pd.Series) -> pd.Series:
    """Days since 1960-01-01 as ISO 8601 dates (the way a reviewer reads a DATE9 value)."""
    when = _SAS_EPOCH + pd.to_timedelta(days, unit="D")
    return when.dt.strftime("%Y-%m-%d").fillna("")


# --------------------------------------------------------------------------------- ADSL


@rule("AD0101", "error", "ADSL dataset missing", p21=("AD0001",), standards=ADAM)
def adsl_present(study):
    """ADaMIG 1.3 (ADSL variables): an ADaM submission always includes ADSL, the subject-level
    analysis dataset, even when no other analysis dataset is submitted; every other ADaM dataset
    takes its subjects, treatments and population flags from it.  Fires once when the folder
    holds ADaM datasets but no ADSL."""
    if "ADSL" in study.datasets:
        return None
    names = ", ".join(sorted(study.datasets))
    return dataset_finding("ADSL", None, f"the folder holds ADaM datasets ({names}) but no ADSL: "
                           "every ADaM submission includes adsl.xpt, one record per subject "
                           f"({IG})")


@rule("AD0102", "error", "ADSL has more than one record for a subject", standards=ADAM)
def adsl_one_record_per_subject(study):
    """ADaMIG 1.3 (ADSL variables): ADSL has one record per subject, whatever the design; two
    records for one USUBJID make every merge of ADSL variables (treatment, population flags,
    baseline characteristics) into another dataset duplicate that subject's records.  Each repeat
    after the first is flagged, naming the row it repeats."""
    return _one_record_per_subject(_adsl(study), "an")


def _actual_treatments_used(study) -> dict[str, list[str]]:
    """ADSL TRTxxA variables other datasets rely on: {TRT01A: ['ADAE.TRTA', ...], TRT02A: [...]}."""
    used: dict[str, list[str]] = {}
    for ds in _datasets(study):
        if ds.name == "ADSL":
            continue
        for col in ds.columns:
            if col == "TRTA":
                used.setdefault("TRT01A", []).append(f"{ds.name}.TRTA")
            elif re.fullmatch(r"TRT\d\dA", col):
                used.setdefault(col, []).append(f"{ds.name}.{col}")
    return used


@rule("AD0103", "error", "Required ADaMIG variable missing (ADSL, BDS)", standards=ADAM)
def required_variables(study):
    """Every variable ADaMIG 1.3 marks Req for the dataset's structure is present: in ADSL
    STUDYID, USUBJID, SUBJID, SITEID, AGE, AGEU, SEX, RACE, ARM and TRTxxP (TRT01P at least); in
    a BDS dataset STUDYID, USUBJID, PARAM and PARAMCD.  TRTxxA (Cond) is required in ADSL when
    an analysis uses actual treatment: when another dataset has TRTA (TRT01A then) or TRTxxA.
    ADSL also has at least one subject-level population flag (SAFFL, ITTFL, FASFL ...), without
    which no analysis population can be selected.  OCCDS and other structures, which ADaMIG 1.3
    does not tabulate, are not checked."""
    out = []
    for ds in [study.datasets[n] for n in sorted(study.datasets)]:
        spec = study.spec(ds)
        if spec is None:
            continue
        present = set(ds.columns)
        for var in spec.variables:
            if var.core != "Req":
                continue
            name = re.sub(r"[yw]", "1", re.sub(r"xx|zz", "01", var.name))
            if name not in present:
                label = (spec.variable(name) or var).label
                out.append(dataset_finding(ds.name, name, f"{name} ({label}) is a Required variable "
                                           f"of {spec.name} in {IG} but is missing from {ds.name}: "
                                           "add it"))
        if ds.name != "ADSL":
            continue
        for name, users in sorted(_actual_treatments_used(study).items()):
            if name not in present:
                out.append(dataset_finding(ds.name, name, f"{name} (actual treatment) is missing from "
                                           f"ADSL but other datasets analyse by actual treatment "
                                           f"({', '.join(users)}): {IG} requires TRTxxA in ADSL then; "
                                           "add it"))
        flags = _population_flags(study)
        if not present & set(flags):
            out.append(dataset_finding(ds.name, None, "ADSL has no population flag (" + ", ".join(flags)
                                       + f"): {IG} requires at least one subject-level population "
                                       "flag; add those the analyses use"))
    return out


@rule("AD0104", "error", "USUBJID not in ADSL", standards=ADAM)
def usubjid_in_adsl(study):
    """ADaMIG 1.3 (ADSL variables): USUBJID links ADSL to every other dataset, so each subject of
    an ADaM dataset has an ADSL record; a subject ADSL does not know has no treatment, population
    flag or baseline characteristic, and drops out of (or breaks) every analysis by them.  Empty
    USUBJIDs are flagged too.  Without ADSL the finding is AD0101's."""
    adsl = _adsl(study)
    if adsl is None:
        return None
    known = set(_text(adsl.df, "USUBJID")) - {""}
    out = []
    for ds in _datasets(study):
        if ds.name == "ADSL" or "USUBJID" not in ds.df.columns:
            continue
        u = _text(ds.df, "USUBJID")
        bad = ~_isin(u, known)
        out.append(flag(ds, bad, "USUBJID", lambda v, n=ds.name: (
            f"USUBJID is empty in {n}: every record of an analysis dataset belongs to a subject of "
            "ADSL" if not v.strip() else
            f"USUBJID '{v}' in {n} has no ADSL record: every subject of an analysis dataset must be "
            "in ADSL (add the subject to ADSL or correct the identifier)"), value=u))
    return out


def _population_flags(study) -> tuple[str, ...]:
    """The ADSL population flags: SAFFL, ITTFL, EFFFL, FASFL, PPROTFL, COMPLFL and whatever else
    ADaMIG's ADSL lists as a Population Indicator (RANDFL, ENRLFL)."""
    try:
        spec = study.ig.dataset("ADSL")
    except KeyError:
        return POPULATION_FLAGS
    extra = [v.name for v in spec.variables if v.variable_set == "Population Indicator"]
    return tuple(dict.fromkeys([*POPULATION_FLAGS, *extra]))


@rule("AD0105", "error", "ADSL population flag null", p21=("AD0005",), standards=ADAM)
def population_flag_null(study):
    """ADaMIG 1.3 (ADSL population indicator variables): a subject-level population flag (SAFFL,
    ITTFL, EFFFL, FASFL, PPROTFL, COMPLFL, RANDFL, ENRLFL) is 'Y' or 'N' for every subject, never
    null: a null cannot be told from a subject nobody assessed, and counts of 'N' become wrong.
    Values other than 'Y' and 'N' are AD0106's finding."""
    adsl = study.datasets.get("ADSL")
    if adsl is None or not len(adsl.df):
        return None
    out = []
    for col in _population_flags(study):
        if col in adsl.df.columns:
            out.append(flag(adsl, _text(adsl.df, col) == "", col, f"{col} is null: an ADSL population "
                            f"flag is 'Y' or 'N' for every subject (set 'N' for subjects outside the "
                            "population)"))
    return out


@rule("AD0106", "error", "Flag variable (*FL) not 'Y', 'N' or null", p21=("AD0005",), standards=ADAM)
def flag_values(study):
    """ADaMIG 1.3 (flag variable conventions): a character flag (a name ending in FL) holds 'Y',
    'N' or null, nothing else ('YES', 'y', '1').  The flags ADaMIG defines as 'Y' or null (ABLFL,
    ANLzzFL, ONTRTFL, LVOTFL, the record-level population flags *RFL / *PFL) are not 'N' either:
    a record not flagged has the flag null."""
    out = []
    for ds in _datasets(study):
        spec = study.spec(ds)
        for col in ds.columns:
            if not col.endswith("FL"):
                continue
            var = spec.variable(col) if spec is not None else None
            y_only = var is not None and tuple(var.value_list) == ("Y",)
            allowed = {"Y", ""} if y_only else {"Y", "N", ""}
            bad = _bad_values(ds.df[col], lambda t, a=allowed: t not in a)
            out.append(flag(ds, bad, col, lambda v, c=col, y=y_only: (
                f"{c} = 'N': {c} is 'Y' or null in {IG} (leave it null on the records not flagged)"
                if y and v.strip() == "N" else
                f"{c} = '{v}': a flag variable (*FL) holds only 'Y', 'N' or null")))
    return out


def _imputation_flags(study, suffix: str, codelist: str, fallback: tuple, meaning: str):
    try:
        allowed = set(study.ct.codelist(codelist).values)
    except (KeyError, AttributeError):
        allowed = set(fallback)
    shown = ", ".join(f"'{v}'" for v in fallback if v in allowed) or ", ".join(sorted(allowed))
    out = []
    for ds in _datasets(study):
        for col in ds.columns:
            if col.endswith(suffix):
                bad = _bad_values(ds.df[col], lambda t: t != "" and t not in allowed)
                out.append(flag(ds, bad, col, lambda v, c=col: (
                    f"{c} = '{v}' is not a {meaning} imputation flag: {c} holds {shown} or null "
                    f"(codelist {codelist})")))
    return out


@rule("AD0107", "error", "Date imputation flag (*DTF) not 'Y', 'M' or 'D'", standards=ADAM)
def date_imputation_flag(study):
    """ADaMIG 1.3 (timing variable conventions): *DTF says which part of the numeric date *DT was
    imputed: 'Y' (year, hence month and day), 'M' (month and day), 'D' (day), null when the date
    was complete; the values are ADaM CT codelist DATEFL (C81223).  Anything else ('DAY', 'y')
    hides from a reviewer which dates are imputed."""
    return _imputation_flags(study, "DTF", "DATEFL", ("Y", "M", "D"), "date")


@rule("AD0108", "error", "Time imputation flag (*TMF) not 'H', 'M' or 'S'", standards=ADAM)
def time_imputation_flag(study):
    """ADaMIG 1.3 (timing variable conventions): *TMF says which part of the time of a numeric
    datetime was imputed: 'H' (hour, hence minutes and seconds), 'M' (minutes and seconds), 'S'
    (seconds), null when the time was complete; ADaM CT codelist TIMEFL (C81226)."""
    return _imputation_flags(study, "TMF", "TIMEFL", ("H", "M", "S"), "time")


def _is_timing_name(col: str) -> bool:
    """*DT (date), *DTM (datetime), *TM (time) ADaM variables; SDTM --ELTM (an ISO 8601 duration
    kept as text) is not one."""
    return col.endswith(("DT", "DTM")) or (col.endswith("TM") and not col.endswith("ELTM"))


@rule("AD0109", "error", "Analysis date/time variable (*DT, *DTM, *TM) not numeric", standards=ADAM)
def timing_numeric(study):
    """ADaMIG 1.3 (timing variable conventions): *DT, *DTM and *TM variables are numeric SAS dates
    (days since 1960-01-01), datetimes and times, shown with a format such as DATE9.; ISO 8601 text
    belongs to the SDTM --DTC variables.  A character date cannot be compared, subtracted or
    windowed.  Judged on the stored type (XPT, parquet): CSV carries no types; a parquet column
    with no value at all has none either."""
    out = []
    for ds in _datasets(study):
        if ds.format == "csv":
            continue
        for col in ds.columns:
            if not _is_timing_name(col) or ds.var_types.get(col) != "Char":
                continue
            text = _text(ds.df, col)
            filled = text[text != ""]
            if ds.format != "xpt" and filled.empty:
                continue
            example = filled.iloc[0] if len(filled) else ""
            out.append(dataset_finding(ds.name, col, f"{col} is a character variable in {ds.name}"
                                       + (f" (e.g. '{example}')" if example else "")
                                       + ": ADaM dates, datetimes and times are numeric (SAS date, "
                                       "datetime or time values with a display format)", value=example))
    return out


# --------------------------------------------------------------------------------- BDS


@rule("AD0111", "error", "PARAMCD not a valid short name", standards=ADAM)
def paramcd_name(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): PARAMCD is at most 8 characters, starts with
    a letter or an underscore and holds only letters A-Z, digits and underscores, because it
    becomes a variable name when a BDS dataset is transposed.  Empty values are not judged here."""
    out = []
    for ds in _bds(study):
        bad = _bad_values(ds.df["PARAMCD"], lambda t: t != "" and (len(t) > MAX_PARAMCD
                                                                     or not _PARAMCD_RE.match(t)))

        def message(v):
            why = []
            if len(v) > MAX_PARAMCD:
                why.append(f"is {len(v)} characters long (at most {MAX_PARAMCD})")
            if not _PARAMCD_RE.match(v):
                why.append("must start with a letter or _ and hold only letters A-Z, digits and _")
            return f"PARAMCD = '{v}' " + " and ".join(why)
        out.append(flag(ds, bad, "PARAMCD", message))
    return out


def _pairing(study, key: str, other: str) -> list:
    out = []
    for ds in _bds(study):
        res = _one_to_one(ds.df, key, other)
        if res is not None:
            out.append(_flag_each(ds, res[0], other, res[1]))
    return out


@rule("AD0112", "error", "PARAMCD has more than one PARAM within a dataset", standards=ADAM)
def paramcd_one_param(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): PARAM and PARAMCD are one-to-one within a
    dataset: PARAMCD is the short name of the one parameter PARAM describes (units included).  A
    PARAMCD with two PARAMs mixes two parameters in one analysis.  The most frequent PARAM is
    taken as meant; the other records are flagged, and the message lists every PARAM in use."""
    return _pairing(study, "PARAMCD", "PARAM")


@rule("AD0113", "error", "PARAM has more than one PARAMCD within a dataset", standards=ADAM)
def param_one_paramcd(study):
    """The converse of AD0112: one PARAM has one PARAMCD within a dataset, or the records of one
    parameter are split across codes and an analysis by PARAMCD misses some of them."""
    return _pairing(study, "PARAM", "PARAMCD")


@rule("AD0114", "error", "PARAM longer than 200 characters", standards=ADAM)
def param_length(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): PARAM is a character variable, at most 200
    characters (the XPT v5 limit); a longer description is cut by every SAS transport writer."""
    out = []
    for ds in _bds(study):
        if "PARAM" not in ds.df.columns:
            continue
        bad = _bad_values(ds.df["PARAM"], lambda t: len(t) > MAX_PARAM)
        out.append(flag(ds, bad, "PARAM", lambda v: f"PARAM is {len(v)} characters long: at most "
                        f"{MAX_PARAM} are allowed; shorten the parameter description"))
    return out


@rule("AD0115", "warning", "Neither AVAL nor AVALC populated on a BDS record", standards=ADAM)
def aval_or_avalc(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): a BDS record carries its analysis value, in
    AVAL (numeric) or AVALC (character).  A dataset with neither variable is an error (one
    finding); a record with both null is a warning: usually a derivation that did not run, or a
    test not done carried over from SDTM, which an analysis counts as a missing value."""
    out = []
    for ds in _bds(study):
        df = ds.df
        if "AVAL" not in df.columns and "AVALC" not in df.columns:
            out.append(dataset_finding(ds.name, None, f"{ds.name} has PARAMCD but neither AVAL nor "
                                       "AVALC: a BDS dataset holds its analysis values in AVAL or AVALC",
                                       severity="error"))
            continue
        empty = _number(df, "AVAL").isna() & (_text(df, "AVALC") == "")
        if not empty.any():
            continue
        var = "AVAL" if "AVAL" in df.columns else "AVALC"
        msgs = ("neither AVAL nor AVALC is populated for PARAMCD '" + _text(df, "PARAMCD")
                + "': every BDS record carries its analysis value (leave out records of tests not done)")
        out.append(_flag_each(ds, empty, var, msgs))
    return out


def _with_numbers(study, cols: tuple[str, ...]):
    """(BDS dataset, [its columns `cols` as numbers]) for each BDS dataset having all of them."""
    for ds in _bds(study):
        if set(cols) <= set(ds.df.columns):
            yield ds, [_number(ds.df, c) for c in cols]


def _parameter(ds) -> pd.Series:
    """' (PARAMCD 'CRP')' for each record: which parameter a numeric message is about."""
    return " (PARAMCD '" + _text(ds.df, "PARAMCD") + "')"


def _subject_parameter(df: pd.DataFrame) -> list[str]:
    """USUBJID, PARAMCD and BASETYPE when present: the scope of one baseline."""
    return [k for k in ("USUBJID", "PARAMCD", "BASETYPE") if k in df.columns]


@rule("AD0116", "error", "More than one ABLFL = 'Y' record per subject and parameter", standards=ADAM)
def one_baseline_record(study):
    """ADaMIG 1.3 (BDS indicator variables): ABLFL = 'Y' marks the one record a subject's baseline
    value of a parameter (BASE) comes from: at most one per USUBJID and PARAMCD, and per BASETYPE
    when the dataset defines several baselines.  Two flagged records leave BASE ambiguous.  Every
    flagged record of such a group is listed, with the rows of the others."""
    out = []
    for ds in _bds(study):
        df = ds.df
        if "ABLFL" not in df.columns or "USUBJID" not in df.columns:
            continue
        keys = _subject_parameter(df)
        t = pd.DataFrame({k: _text(df, k) for k in keys}, index=df.index).assign(__row__=df["__row__"])
        y = _text(df, "ABLFL") == "Y"
        dup = y & t[y].duplicated(keys, keep=False).reindex(df.index, fill_value=False)
        if not dup.any():
            continue
        msgs = ("ABLFL = 'Y' on " + ds.name + " " + _rows_of(t, dup, keys) + " of " + _group_text(t, keys)
                + ": at most one baseline record per subject and parameter; flag one of them only")
        out.append(_flag_each(ds, dup, "ABLFL", msgs))
    return out


@rule("AD0117", "error", "BASE not constant within a subject and parameter", standards=ADAM)
def base_constant(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): BASE is the subject's baseline value of the
    parameter, the same on every record of a USUBJID and PARAMCD (and BASETYPE when present); two
    values make CHG and PCHG of one subject incomparable between visits.  Records without BASE
    are not judged.  The most frequent value is taken as meant; the other records are flagged,
    and the message lists every value in use."""
    out = []
    for ds in _bds(study):
        within = tuple(k for k in ("USUBJID", "BASETYPE") if k in ds.df.columns)
        res = _one_to_one(ds.df, "PARAMCD", "BASE", within)
        if res is None:
            continue
        msgs = res[1].str.replace("each PARAMCD must have one BASE",
                                  "BASE must be constant for a subject and parameter", regex=False)
        out.append(_flag_each(ds, res[0], "BASE", msgs))
    return out


@rule("AD0118", "error", "CHG is not AVAL - BASE", standards=ADAM)
def chg_is_aval_minus_base(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): CHG is the change from baseline, AVAL - BASE.
    Checked where AVAL, BASE and CHG are all present, comparing at 15 significant digits as
    admiral does (floating-point noise is not a difference); a CHG computed from another value,
    rounded for display or left from an earlier derivation is flagged."""
    out = []
    for ds, (a, b, c) in _with_numbers(study, ("AVAL", "BASE", "CHG")):
        bad = _differ(c, a - b)
        if bad.any():
            msgs = ("CHG = " + _shown(c) + " but AVAL - BASE = " + _shown(a) + " - " + _shown(b) + " = "
                    + _shown(a - b) + _parameter(ds))
            out.append(_flag_each(ds, bad, "CHG", msgs, value=c))
    return out


@rule("AD0119", "error", "PCHG is not 100 * (AVAL - BASE) / |BASE|, or given when BASE is 0",
      standards=ADAM)
def pchg_formula(study):
    """ADaMIG 1.3 (BDS analysis parameter variables): PCHG is the percent change from baseline,
    100 * (AVAL - BASE) / |BASE| (admiral divides by the absolute baseline, so a rise from a
    negative baseline is positive), compared at 15 significant digits like CHG (AD0118).  With
    BASE = 0 the percent change does not exist and PCHG must be null."""
    out = []
    for ds, (a, b, p) in _with_numbers(study, ("AVAL", "BASE", "PCHG")):
        zero = p.notna() & (b == 0)
        expected = ((a - b) / b.abs() * 100).where(b != 0)
        bad = _differ(p, expected)
        if zero.any():
            out.append(_flag_each(ds, zero, "PCHG", "PCHG = " + _shown(p) + " but BASE is 0" + _parameter(ds)
                                  + ": there is no percent change from a zero baseline; PCHG must be "
                                  "null", value=p))
        if bad.any():
            msgs = ("PCHG = " + _shown(p) + " but 100 * (AVAL - BASE) / |BASE| = 100 * (" + _shown(a)
                    + " - " + _shown(b) + ") / " + _shown(b.abs()) + " = " + _shown(expected)
                    + _parameter(ds))
            out.append(_flag_each(ds, bad, "PCHG", msgs, value=p))
    return out


@rule("AD0120", "error", "Duplicate analysis records among ANL01FL = 'Y'", standards=ADAM)
def anl01fl_duplicates(study):
    """ADaMIG 1.3 (BDS indicator variables): ANL01FL = 'Y' selects the records an analysis uses, one
    per subject, parameter and time point: two flagged records with the same USUBJID, PARAMCD,
    AVISITN and ADT (and ATPTN when present) are counted twice in a by-visit summary.  Records of
    different BASETYPEs or DTYPEs (an observed value and the AVERAGE derived from it, as admiral's
    templates flag both) are different analysis records.  The second and later records are
    flagged, each naming the first."""
    out = []
    for ds in _bds(study):
        df = ds.df
        if "ANL01FL" not in df.columns or not {"AVISITN", "ADT"} & set(df.columns):
            continue
        keys = [k for k in ("USUBJID", "PARAMCD", "BASETYPE", "AVISITN", "ADT", "ATPTN", "DTYPE")
                if k in df.columns]
        y = _text(df, "ANL01FL") == "Y"
        t = df.loc[y, keys]
        later = t.duplicated(keep="first").reindex(df.index, fill_value=False)
        if not later.any():
            continue
        first = df.loc[y, "__row__"].groupby([t[k] for k in keys], sort=False, dropna=False).transform("first")
        msgs = ("duplicates " + ds.name + " row " + first.astype(int).astype(str).reindex(df.index).fillna("")
                + " among the ANL01FL = 'Y' records (same " + ", ".join(keys) + "): flag one record "
                "per subject, parameter and time point for the analysis")
        out.append(_flag_each(ds, later, "ANL01FL", msgs))
    return out


# --------------------------------------------------------------------------------- OCCDS


@rule("AD0121", "warning", "TRTEMFL mixes 'N' and null", standards=ADAM)
def trtemfl_convention(study):
    """ADaM OCCDS (ADAE): TRTEMFL is either 'Y' or null (admiral's convention) or 'Y' or 'N'
    throughout a dataset.  A mixture leaves a reader guessing whether a null means 'not
    treatment-emergent' or 'could not be decided' (e.g. a missing start date), and counts of 'N'
    differ from counts of not-'Y'.  The records of the less used convention are flagged (the null
    ones on a tie).  Values other than 'Y', 'N' and null are AD0106's finding."""
    out = []
    for ds in _datasets(study):
        if "TRTEMFL" not in ds.df.columns:
            continue
        t = _text(ds.df, "TRTEMFL")
        n_no, n_null = int((t == "N").sum()), int((t == "").sum())
        if not (n_no and n_null):
            continue
        minority = "N" if n_no < n_null else ""
        msg = (f"TRTEMFL is 'N' on {n_no} and null on {n_null} records of {ds.name}: use one "
               "convention, 'Y'/null or 'Y'/'N', for the records not treatment-emergent")
        out.append(flag(ds, t == minority, "TRTEMFL", msg))
    return out


@rule("AD0122", "error", "ASTDT after AENDT", standards=ADAM)
def start_before_end(study):
    """ADaM OCCDS: an event or intervention cannot end before it starts: ASTDT (analysis start
    date, imputed or not) is on or before AENDT where both are present.  An inversion usually comes
    from an imputation (a partial start imputed to the last day of the month past a complete end
    date) or a data-entry error kept from SDTM.  Dates are numeric SAS dates (CSV: also ISO 8601
    or DATE9 text)."""
    out = []
    for ds in _datasets(study):
        df = ds.df
        if not {"ASTDT", "AENDT"} <= set(df.columns):
            continue
        start, end = _days(df["ASTDT"]), _days(df["AENDT"])
        bad = start.notna() & end.notna() & (start > end)
        if not bad.any():
            continue
        flags = [f for f in ("ASTDTF", "AENDTF") if f in df.columns]
        imputed = pd.Series("", index=df.index, dtype=object)
        for f in flags:
            imputed = imputed + (", " if f != flags[0] else " (") + f + " '" + _text(df, f) + "'"
        msgs = ("ASTDT " + _iso(start) + " is after AENDT " + _iso(end) + ": an analysis start date "
                "is on or before its end date; check the dates and their imputation" + imputed
                + (")" if flags else ""))
        out.append(_flag_each(ds, bad, "ASTDT", msgs, value=_iso(start)))
    return out
