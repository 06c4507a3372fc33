"""The named derivations an ADaM spec may use, with their arguments.

An ADaM spec lists steps (`- {derive: <name>, <argument>: <value>, ...}`) that run in order on one
working dataset. Each step here declares its arguments by kind, which is what lets the spec be
checked completely before anything runs: a `var` must be a variable that an earlier step created, a
`source_var` a variable of the `dataset` the step reads, a `new` a valid ADaM name; the Cerberus
schema of every step is generated from these declarations. The work itself is done by the admiral-
style functions of `sdtm_rA.adam.*`; a step only connects arguments to them.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from . import bds, occurrence, ra_scores, subject
from .subject import order_columns
from .dates import derive_vars_dt, derive_vars_dtm, study_day
from ..expression import BOOL, DATE, NUMBER, Expression, ExpressionError, as_text
from .where import as_condition_text, check_condition, check_expression, declared, evaluate

NAME_RE = r"^[A-Z][A-Z0-9_]{0,7}$"
PARAMCD_RE = r"^[A-Z_][A-Z0-9_]{0,7}$"

# Cerberus rules of the nested arguments: every key at every depth is checked before a run.
SCALAR = {"type": ["string", "number", "boolean", "date"], "nullable": True}
CONDITION = {"type": ["dict", "string"], "check_with": check_condition}
# a sort order: variables, each ascending or {desc: VARIABLE} (admiral's desc())
ORDER = {"type": "list", "minlength": 1,
         "schema": {"type": ["string", "dict"], "schema": {"desc": {"type": "string", "required": True}}}}


def _records_of(**fields) -> dict:
    """A list of mappings with these keys (`name: (type, required)`); nothing else is allowed."""
    schema = {k: {"type": t, "required": True, "nullable": nullable} if req else {"type": t, "nullable": nullable}
              for k, (t, req, nullable) in fields.items()}
    return {"type": "list", "minlength": 1, "schema": {"type": "dict", "schema": schema}}


@dataclass(frozen=True)
class Arg:
    kind: str                 # see KINDS
    required: bool = False
    default: object = None
    allowed: tuple = ()
    doc: str = ""
    rule: object = None       # the Cerberus rule of a nested value (list of mappings, a value map)


KINDS = {
    "var": "a variable of the dataset being derived, created by an earlier step",
    "vars": "a list of such variables",
    "order": "a sort order: variables of the dataset being derived, each ascending, or `{desc: VARIABLE}` "
             "descending (admiral's `desc()`); missing values sort last either way (dplyr's arrange)",
    "new": "the name of a variable this step creates (at most 8 characters)",
    "dataset": "an SDTM domain of the input folder or an ADaM dataset derived before this one",
    "source_var": "a variable of the step's `dataset`",
    "source_vars": "a list of variables of the step's `dataset`",
    "keep": "variables of the step's `dataset` to bring along: a list, or {NEW: SOURCE}",
    "summaries": "{NEW: {function: VARIABLE}}: values computed over a group's records, e.g. {AVAL: {mean: AVAL}}",
    "where": "a condition on the dataset being derived (see where conditions)",
    "source_where": "a condition on the step's `dataset`",
    "paramcd": "a parameter code (at most 8 characters)",
    "params": "{role: PARAMCD}: the parameters the step reads",
    "set": "{VARIABLE: value} on the new records: a value of the variable's type, null for missing",
    "text": "a text", "number": "a number", "integer": "a whole number", "boolean": "true or false",
    "list": "a list", "mapping": "a mapping", "any": "any value",
    "expression": "an expression over variables of the dataset being derived (docs/expressions.md)",
    "join_where": "an expression over the variables of the dataset being derived and of the step's "
                  "`dataset` (NAME.join for the latter where both have NAME)",
}


@dataclass(frozen=True)
class Step:
    name: str
    func: Callable          # func(df, args, ctx) -> DataFrame
    args: dict
    doc: str
    starts: bool = False    # may be the first step (creates the records)
    adds_records: bool = False
    restrictable: bool = False   # accepts `where:` to derive on a subset only (restrict_derivation)
    fixed_outputs: tuple = ()
    outputs_of: Callable | None = None   # extra outputs computed from the arguments
    per_source_record: bool = False      # one record per record of its `dataset` meeting `where`

    def outputs(self, args: dict) -> list[str]:
        out = [args[n] for n, a in self.args.items() if a.kind == "new" and args.get(n)]
        for n, a in self.args.items():
            if a.kind == "keep" and args.get(n):
                out += list(keep_map(args[n]).keys())
        out += list(self.fixed_outputs)
        if self.outputs_of:
            out += self.outputs_of(args)
        return out


STEPS: dict[str, Step] = {}


def step(name, *, starts=False, adds_records=False, restrictable=False, fixed_outputs=(),
         outputs_of=None, per_source_record=False, **args: Arg):
    if restrictable and "where" not in args:
        args["where"] = Arg("where", doc="derive on these records only; the others get missing values")

    def wrap(func):
        STEPS[name] = Step(name, func, args, inspect.cleandoc(func.__doc__ or ""), starts, adds_records,
                           restrictable, tuple(fixed_outputs), outputs_of, per_source_record)
        return func
    return wrap


def keep_map(keep) -> dict:
    """`[A, B]` → {A: A, B: B}; `{NEW: OLD}` as is."""
    if not keep:
        return {}
    if isinstance(keep, dict):
        return dict(keep)
    return {k: k for k in keep}


def args_with_defaults(st: Step, args: dict) -> dict:
    full = {n: a.default for n, a in st.args.items()}
    full.update({k: v for k, v in args.items() if k != "derive"})
    return full


class StepError(ValueError):
    """A step that cannot run on these data (the message names the values at fault); `at`: the path
    of the argument at fault inside the step (its line is reported)."""

    def __init__(self, message: str, at: tuple = ()):
        super().__init__(message)
        self.at = tuple(at)


# ----------------------------------------------------------------------------- shared helpers

def _key_text(v) -> str:
    """A value map's key as the text `as_condition_text` gives (1 and 1.0 -> '1')."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "Y" if v is True else "N" if v is False else str(v)


def _flag_values(mask: pd.Series, true, false) -> pd.Series:
    return pd.Series(np.where(mask.to_numpy(), true, false), index=mask.index, dtype=object)


def _records(ctx, name: str, where) -> pd.DataFrame:
    """The records of dataset `name` meeting `where` (the mask is cached by the context: the same
    filter is often used by several steps and by the scheduling estimate)."""
    src = ctx.dataset(name)
    return src[ctx.mask(name, where)] if where else src


def _subject_keys(src: pd.DataFrame) -> list[str]:
    return [c for c in ("STUDYID", "USUBJID") if c in src.columns]


def _numbers(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def censored_numbers(values: pd.Series, censored: str = "missing") -> pd.Series:
    """Numbers from results; a censored text result ('<0.5', '>500') gives missing, its limit, or half
    its limit (the LLOQ/2 convention for '<')."""
    num = _numbers(values)
    if censored == "missing":
        return num
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    m = text.str.extract(r"^([<>]=?)\s*([0-9]*\.?[0-9]+)$")
    limit = pd.to_numeric(m[1], errors="coerce")
    if censored == "half":
        limit = limit.where(~m[0].fillna("").str.startswith("<"), limit / 2)
    return num.where(num.notna(), limit)


def _append(df: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty:
        return new.reset_index(drop=True)
    return pd.concat([df, new], ignore_index=True)


# ----------------------------------------------------------------------------- records and merges

@step("records", starts=True, per_source_record=True, dataset=Arg("dataset", True), where=Arg("source_where"),
      keep=Arg("keep", doc="default: every variable"))
def records(df, a, ctx):
    """Start the dataset with the records of `dataset` meeting `where` (ADSL from DM, ADAE from AE)."""
    src = _records(ctx, a["dataset"], a["where"])
    cols = keep_map(a["keep"]) or {c: c for c in src.columns}
    out = src[list(cols.values())].copy()
    out.columns = list(cols.keys())
    return out.reset_index(drop=True)


SINGLE_DOSE = {"type": "dict", "schema": {
    "frequency": {"type": "string", "required": True}, "start": {"type": "string", "required": True},
    "end": {"type": "string", "required": True}}}


@step("joined", dataset=Arg("dataset", True), keep=Arg("keep", True), by=Arg("vars", default=["USUBJID"]),
      where=Arg("source_where", doc="admiral's filter_add"),
      join_where=Arg("join_where", doc="admiral's filter_join: an expression over both datasets' variables "
                     "(the other's as NAME.join where both have NAME)"),
      order=Arg("source_vars"), mode=Arg("text", allowed=("first", "last")),
      single_dose=Arg("mapping", rule=SINGLE_DOSE,
                      doc="{frequency: EXDOSFRQ, start: EXSTDTC, end: EXENDTC}: read one record per dose "
                          "(admiral's create_single_dose_dataset), with EXSTDT/EXSTDTM, EXENDT/EXENDTM"))
def joined(df, a, ctx):
    """Variables of the record of `dataset` in the same `by` group that meets `join_where` and is
    first/last by `order` (admiral derive_vars_joined): LDOSEDTM, the last dose on or before each
    AE start; DOSEON/DOSEU, the dose of the day the AE started."""
    from .joined import create_single_dose_dataset, derive_vars_joined
    if a["mode"] and not a["order"]:
        raise StepError("mode: first/last needs `order`", ("mode",))
    src = _records(ctx, a["dataset"], a["where"])
    try:
        if a["single_dose"]:
            sd = a["single_dose"]
            src = create_single_dose_dataset(src, sd["frequency"], sd["start"], sd["end"])
        return derive_vars_joined(df, src, a["by"], keep_map(a["keep"]), _pair_mask(a["join_where"]),
                                  a["order"], a["mode"])
    except ExpressionError as exc:
        raise StepError(f"join_where: {exc}", ("join_where",)) from exc
    except ValueError as exc:
        raise StepError(str(exc)) from exc


def _pair_mask(text):
    """join_where as a function of the joined pairs (None: every pair)."""
    if not text:
        return None
    expr = Expression(text)
    return lambda pairs: expr.mask(lambda name: pairs[name], declared, len(pairs))


EVENTS = {"type": "list", "minlength": 1, "schema": {"type": "dict", "schema": {
    "dataset": {"type": "string", "regex": r"^[A-Z][A-Z0-9]{1,7}$"},
    "where": {**CONDITION, "nullable": True},
    "values": {"type": "dict", "required": True, "minlength": 1, "keysrules": {"type": "string", "regex": NAME_RE},
               "valuesrules": {"type": "string", "check_with": check_expression}},
    "date": {"type": "string", "check_with": check_expression}}}}


@step("extreme_event", events=Arg("list", True, rule=EVENTS,
                                  doc="[{dataset, where, values: {NEW: expression}, date: expression}]: "
                                      "admiral's event(); without dataset, the dataset being derived"),
      by=Arg("vars", default=["STUDYID", "USUBJID"]),
      order=Arg("list", default=["event"], rule={"type": "list", "minlength": 1,
                                                 "schema": {"type": "string", "allowed": ["event", "date"]}}),
      mode=Arg("text", default="first", allowed=("first", "last")),
      outputs_of=lambda a: list(dict.fromkeys(n for e in a.get("events") or [] for n in e.get("values") or {})))
def extreme_event(df, a, ctx):
    """Variables set by the first/last of several kinds of events per subject (admiral
    derive_vars_extreme_event): DTHCAUS/DTHDOM from a fatal AE or a death in DS; each event's
    values and date are expressions over its records (a text is quoted: DTHDOM: "'AE'")."""
    from .joined import derive_vars_extreme_event
    events = []
    for i, e in enumerate(a["events"]):
        at = ("events", i)
        if e.get("dataset"):
            src = _records(ctx, e["dataset"], e.get("where"))
        else:
            src = df[evaluate(e["where"], df)] if e.get("where") else df
        try:
            values = {n: Expression(t).values(lambda name: src[name], declared, len(src), src.index)
                      for n, t in e["values"].items()}
            when = None
            if e.get("date"):
                v = Expression(e["date"]).evaluate(lambda name: src[name], declared, len(src))
                if v.type != DATE:
                    raise StepError(f"events[{i + 1}].date: {e['date']!r} is not a date", at)
                stamps = v.data.lo.astype("datetime64[us]")
                stamps[v.data.prec < 3] = np.datetime64("NaT")
                when = stamps
        except ExpressionError as exc:
            raise StepError(f"events[{i + 1}]: {exc}", at) from exc
        events.append((src, values, when))
    if "date" in a["order"] and not any(e.get("date") for e in a["events"]):
        raise StepError("order: date needs a `date:` in the events", ("order",))
    try:
        return derive_vars_extreme_event(df, events, a["by"], a["order"], a["mode"])
    except ValueError as exc:
        raise StepError(str(exc)) from exc


@step("toxicity_grade", new=Arg("new", True), term=Arg("var", True, doc="the CTCAE term of each record "
                                                     "(ATOXDSCH, ATOXDSCL)"),
      direction=Arg("text", True, allowed=("H", "L")),
      criteria=Arg("text", default="ctcae-v4", doc="grading criteria bundled as data under specs/adam/ctcae/"),
      unit=Arg("expression", doc="each record's unit, for criteria with fixed thresholds: "
                                 "extract(PARAM, '\\(([^()]+)\\)$') (admiral's extract_unit(PARAM))"),
      restrictable=True)
def toxicity_grade(df, a, ctx):
    """ATOXGRH/ATOXGRL: the CTCAE grade of each record (admiral derive_var_atoxgr_dir) from criteria
    kept as data, one expression per grade; ATOXGR is then a compute (admiral derive_var_atoxgr)."""
    from .toxicity import derive_var_atoxgr_dir, load_criteria
    try:
        criteria = load_criteria(a["criteria"])
    except ValueError as exc:
        raise StepError(str(exc), ("criteria",)) from exc
    try:
        unit = Expression(a["unit"]) if a["unit"] else None
        return derive_var_atoxgr_dir(df, a["new"], a["term"], a["direction"], criteria, declared, unit)
    except ValueError as exc:
        raise StepError(str(exc), ("term",)) from exc


@step("merge", dataset=Arg("dataset", True), keep=Arg("keep", True), by=Arg("vars", default=["USUBJID"]),
      where=Arg("source_where"), order=Arg("source_vars"),
      mode=Arg("text", default="first", allowed=("first", "last")))
def merge(df, a, ctx):
    """Variables of the first/last record per `by` group of `dataset` (admiral derive_vars_merged);
    without `order`, two records for one group are an error."""
    src = ctx.dataset(a["dataset"])
    mask = evaluate(a["where"], src) if a["where"] else None
    try:
        return subject.merge_first_last(df, src, by=a["by"], order=a["order"], mode=a["mode"],
                                        filter=mask, new_vars=keep_map(a["keep"]))
    except ValueError as exc:
        raise StepError(str(exc)) from exc


@step("exists_flag", new=Arg("new", True), dataset=Arg("dataset", True), where=Arg("source_where"),
      by=Arg("vars", default=["USUBJID"]), then=Arg("text", default="Y"), **{"else": Arg("text", default="N")})
def exists_flag(df, a, ctx):
    """`then` (Y) when `dataset` has a record meeting `where` for the same `by` values (SAFFL: any dose)."""
    src = _records(ctx, a["dataset"], a["where"])
    found = src[a["by"]].drop_duplicates().assign(__hit=True)
    hit = df[a["by"]].merge(found, on=a["by"], how="left")["__hit"].fillna(False).to_numpy(dtype=bool)
    return df.assign(**{a["new"]: _flag_values(pd.Series(hit, index=df.index), a["then"], a["else"])})


@step("flag", new=Arg("new", True), where=Arg("where", True), then=Arg("text", default="Y"),
      **{"else": Arg("text", default="N")}, unknown_if_missing=Arg("vars", doc="missing where any of these is"))
def flag(df, a, ctx):
    """`then` (Y) where the condition holds, else `else` (N) (ITTFL, a status from a baseline value); missing
    where a variable of `unknown_if_missing` is missing (no value, no status)."""
    res = _flag_values(evaluate(a["where"], df), a["then"], a["else"] or None)
    for v in a["unknown_if_missing"] or []:
        res = res.where(df[v].notna() & (df[v].astype(str).str.strip() != ""), None)
    return df.assign(**{a["new"]: res})


@step("compute", restrictable=True, new=Arg("new", True), value=Arg("expression", True))
def compute(df, a, ctx):
    """`new` set to an expression over each record's variables (the `mutate()` of admiral's
    templates): a formula, text functions for AVISIT, a date offset, a CASE category. A number stays a
    number, a date becomes a date (missing unless the day is known), text stays text; a condition
    is refused (use `flag`, or case when ... then 'Y' end)."""
    v = Expression(a["value"]).evaluate(lambda name: df[name], declared, len(df))
    if v.type == BOOL:
        raise StepError(f"value: {a['value']!r} is a condition, not a value (use the flag step, or "
                        f"case when ... then 'Y' end)", ("value",))
    if v.type == NUMBER:
        out = pd.Series(v.data, index=df.index, dtype=float)
    elif v.type == DATE:
        stamps = v.data.lo.astype("datetime64[us]")
        stamps[v.data.prec < 3] = np.datetime64("NaT")
        out = pd.Series(stamps.astype("datetime64[ns]"), index=df.index)
    else:
        out = pd.Series(as_text(v), index=df.index, dtype=object)
    return df.assign(**{a["new"]: out})


@step("constant", restrictable=True, new=Arg("new", True), value=Arg("any", True, rule=SCALAR))
def constant(df, a, ctx):
    """One value on every record (AGEU, a PARAMTYP)."""
    return df.assign(**{a["new"]: a["value"]})


_CENSORED = Arg("text", default="missing", allowed=("missing", "limit", "half"),
                doc="a '<x'/'>x' result: missing, x, or x/2 for '<x'")


@step("copy", restrictable=True, new=Arg("new", True), source=Arg("var", True),
      numeric=Arg("boolean", default=False), censored=_CENSORED)
def copy(df, a, ctx):
    """A variable under another name (TRT01P from ARM); `numeric: true` reads text as numbers."""
    s = df[a["source"]]
    return df.assign(**{a["new"]: censored_numbers(s, a["censored"]) if a["numeric"] else s})


@step("recode", restrictable=True, new=Arg("new", True), source=Arg("var", True),
      values=Arg("mapping", True, rule={"type": "dict", "minlength": 1, "valuesrules": SCALAR,
                                        "keysrules": {"type": ["string", "number", "boolean"]}}),
      other=Arg("any", rule=SCALAR), keep_unmapped=Arg("boolean", default=False))
def recode(df, a, ctx):
    """A value map (TRT01PN from TRT01P); values not in the map get `other` (default missing), or
    stay as they are with `keep_unmapped: true` (rename one PARAMCD, keep the rest)."""
    values = {_key_text(k): v for k, v in a["values"].items()}
    s = as_condition_text(df[a["source"]])
    res = s.map(values)
    if a["keep_unmapped"]:
        res = res.where(s.isin(list(values)), s)
    elif a["other"] is not None:
        res = res.where(s.isin(list(values)), a["other"])
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        res = pd.to_numeric(res, errors="coerce")
    return df.assign(**{a["new"]: res})


@step("groups", restrictable=True, new=Arg("new", True), source=Arg("var", True),
      groups=Arg("list", True, doc="a value belongs to the first group with ge <= value < lt", rule=_records_of(label=("string", True, False),
                                                                        ge=("number", False, True),
                                                                        lt=("number", False, True))))
def groups(df, a, ctx):
    """Categories of a number: `groups: [{label: "<65", lt: 65}, {label: ">=65", ge: 65}]`
    (a value belongs to the first group with `ge <= value < lt`)."""
    cuts = [(g.get("ge"), g.get("lt"), g["label"]) for g in a["groups"]]
    return subject.derive_age_groups(df, cuts=cuts, new=a["new"], age=a["source"])


# ----------------------------------------------------------------------------- dates

def _flags_wanted(a: dict, default_highest: str) -> bool:
    """admiral's flag_imputation 'auto': the flags when something may be imputed; `flag` forces."""
    if a.get("flag") is not None:
        return bool(a["flag"])
    return (a.get("highest_imputation") or default_highest) != "n"


def _date_outputs(suffix_flags, default_highest):
    def outputs(a):
        new = a.get("new") or ""
        prefix = new[: -len(suffix_flags[0])] if new.endswith(suffix_flags[0]) else new
        return [prefix + s for s in suffix_flags[1:] if _flags_wanted(a, default_highest)]
    return outputs


def _imputation(default_highest: str) -> dict:
    return dict(highest_imputation=Arg("text", default=default_highest, allowed=("Y", "M", "D", "h", "m", "s", "n")),
                date_imputation=Arg("text", default="first"),
                min_dates=Arg("vars"), max_dates=Arg("vars"),
                flag=Arg("boolean", doc="the --DTF (and --TMF) flags; default: when something may be imputed "
                                        "(admiral's 'auto')"))


def _prefix(new: str, suffix: str) -> str:
    if not new.endswith(suffix):
        raise StepError(f"new: {new} must end in {suffix} (its flags are named after it)")
    return new[: -len(suffix)]


@step("date", new=Arg("new", True), dtc=Arg("var", True), outputs_of=_date_outputs(("DT", "DTF"), "n"),
      **_imputation("n"))
def date(df, a, ctx):
    """A numeric date from an ISO 8601 --DTC with admiral's imputation rules and its --DTF flag."""
    return derive_vars_dt(df, _prefix(a["new"], "DT"), a["dtc"], highest_imputation=a["highest_imputation"],
                          date_imputation=a["date_imputation"],
                          flag_imputation="date" if _flags_wanted(a, "n") else "none",
                          min_dates=a["min_dates"], max_dates=a["max_dates"])


@step("datetime", new=Arg("new", True), dtc=Arg("var", True), time_imputation=Arg("text", default="first"),
      outputs_of=_date_outputs(("DTM", "DTF", "TMF"), "h"), **_imputation("h"))
def datetime(df, a, ctx):
    """A numeric datetime from an ISO 8601 --DTC with admiral's imputation rules (by default the
    time is imputed: admiral's highest_imputation 'h'), --DTF and --TMF."""
    return derive_vars_dtm(df, _prefix(a["new"], "DTM"), a["dtc"], highest_imputation=a["highest_imputation"],
                           date_imputation=a["date_imputation"], time_imputation=a["time_imputation"],
                           flag_imputation="both" if _flags_wanted(a, "h") else "none",
                           min_dates=a["min_dates"], max_dates=a["max_dates"])


@step("datepart", restrictable=True, new=Arg("new", True), source=Arg("var", True))
def datepart(df, a, ctx):
    """The date of a datetime (TRTSDT from TRTSDTM)."""
    return df.assign(**{a["new"]: pd.to_datetime(df[a["source"]]).dt.normalize()})


@step("study_day", restrictable=True, new=Arg("new", True), date=Arg("var", True),
      reference=Arg("var", default="TRTSDT"))
def study_day_step(df, a, ctx):
    """ADY/ASTDY: days from the reference date, no day 0 (day 1 is the reference date)."""
    return df.assign(**{a["new"]: study_day(df[a["date"]], df[a["reference"]])})


@step("treatment_dates", dataset=Arg("dataset", default="EX"), dose=Arg("source_var", default="EXDOSE"),
      include_placebo=Arg("boolean", default=True),
      end_fallback_to_start=Arg("boolean", default=False,
                                doc="take EXSTDTC where EXENDTC is missing (a study rule; admiral does not)"),
      fixed_outputs=("TRTSDTM", "TRTSTMF", "TRTEDTM", "TRTETMF", "TRTSDT", "TRTEDT"))
def treatment_dates(df, a, ctx):
    """TRTSDTM/TRTSDT (first dose > 0) and TRTEDTM/TRTEDT (last end among doses with an EXENDTC),
    with time flags (admiral's ADSL template: a subject with no EXENDTC has no end)."""
    return subject.derive_trt_dates(df, ctx.dataset(a["dataset"]), dose_var=a["dose"],
                                    include_placebo=a["include_placebo"],
                                    end_fallback_to_start=a["end_fallback_to_start"])


@step("duration", restrictable=True, new=Arg("new", True), start=Arg("var", True), end=Arg("var", True),
      unit=Arg("text", default="DAYS", allowed=("DAYS", "WEEKS", "YEARS")), unit_var=Arg("new"),
      add_one=Arg("boolean", default=True))
def duration(df, a, ctx):
    """end − start (+1 when not negative, admiral's default): TRTDURD, ADURN/ADURU, a disease
    duration in years (365.25 days, `add_one: false`)."""
    return occurrence.derive_duration(df, start=a["start"], end=a["end"], new=a["new"], unit=a["unit"],
                                      new_unit=a["unit_var"], add_one=a["add_one"])


@step("last_date", new=Arg("new", True),
      sources=Arg("list", True, doc="the latest complete date among these records: `dtc:` an ISO 8601 "
                  "--DTC, or `date:` a date variable; without `dataset:`, the dataset being derived "
                  "(TRTEDT of ADSL itself)",
                  rule={"type": "list", "minlength": 1, "schema": {"type": "dict", "schema": {
                      "dataset": {"type": "string", "regex": r"^[A-Z][A-Z0-9]{1,7}$"},
                      "dtc": {"type": "string", "excludes": "date", "required": True},
                      "date": {"type": "string", "excludes": "dtc", "required": True},
                      "where": {**CONDITION, "nullable": True}}}}),
      by=Arg("vars", default=["USUBJID"]))
def last_date(df, a, ctx):
    """The latest complete date over several sources (LSTALVDT: last date known alive), which may
    include dates of the dataset being derived."""
    frames = []
    for s in a["sources"]:
        if s.get("dataset"):
            src = _records(ctx, s["dataset"], s.get("where"))
        else:
            src = df[evaluate(s["where"], df)] if s.get("where") else df
        if s.get("date"):
            d = pd.to_datetime(src[s["date"]]).dt.normalize().to_numpy(dtype="datetime64[ns]")
        else:   # parse each distinct --DTC once (a million lab records have a few thousand dates)
            codes, uniques = pd.factorize(src[s["dtc"]])
            parsed = pd.to_datetime(pd.Series(uniques, dtype=object).astype(str).str[:10], format="%Y-%m-%d",
                                    errors="coerce").to_numpy()
            d = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.datetime64("NaT"))
        frames.append(pd.DataFrame({**{k: src[k].to_numpy() for k in a["by"]}, "__d": d}))
    allv = pd.concat(frames, ignore_index=True).dropna(subset=["__d"])
    last = allv.groupby(a["by"])["__d"].max().rename(a["new"]).reset_index()
    out = df.merge(last, on=a["by"], how="left")
    out.index = df.index
    return out


# ----------------------------------------------------------------------------- occurrence flags

@step("trtemfl", new=Arg("new", default="TRTEMFL"), start=Arg("var", default="ASTDT"),
      end=Arg("var", default="AENDT"), trt_start=Arg("var", default="TRTSDT"), trt_end=Arg("var", default="TRTEDT"),
      end_window=Arg("integer", doc="days after trt_end still treatment-emergent; null (default): no limit"),
      ignore_missing_start=Arg("boolean", default=False))
def trtemfl(df, a, ctx):
    """Treatment-emergent flag, admiral's rules in admiral's order (see occurrence.derive_trtemfl)."""
    return occurrence.derive_trtemfl(df, start=a["start"], end=a["end"], trt_start=a["trt_start"],
                                     trt_end=a["trt_end"], end_window=a["end_window"],
                                     ignore_missing_start=a["ignore_missing_start"], new=a["new"])


@step("extreme_flag", new=Arg("new", True), by=Arg("vars", True), order=Arg("order", True),
      mode=Arg("text", default="first", allowed=("first", "last")), where=Arg("where"))
def extreme_flag(df, a, ctx):
    """'Y' on the first/last record per group among those meeting `where` (admiral
    derive_var_extreme_flag: AOCCFL, AOCCPFL, ANL01FL; `order: [ADT, {desc: AVAL}]` for desc())."""
    mask = evaluate(a["where"], df) if a["where"] else None
    return occurrence.derive_extreme_flag(df, by=a["by"], order=a["order"], new=a["new"], mode=a["mode"],
                                          filter=mask)


# ----------------------------------------------------------------------------- BDS parameters

_PARAM = dict(paramcd=Arg("paramcd", True), param=Arg("text", True), paramn=Arg("number"),
              set=Arg("set", doc="e.g. {ANL01FL: Y}"))


def _param_outputs(*fixed):
    def outputs(a):
        out = ["STUDYID", "USUBJID"] + list(fixed) + (["PARAMN"] if a.get("paramn") is not None else [])
        out += [b for b in a.get("by") or [] if b not in out] if "dataset" in a else []
        return out + list((a.get("set") or {}).keys())
    return outputs


def _set(new: pd.DataFrame, a: dict, like: pd.DataFrame | None = None) -> pd.DataFrame:
    """The `set` values on new records. A variable that exists (in `like`, the dataset the records
    join, or in `new`) keeps its type: null is a missing number, date or text, and a value of
    another type is an error (a number column turned into text fails every later comparison)."""
    for k, v in (a.get("set") or {}).items():
        col = like[k] if like is not None and k in like.columns else new[k] if k in new.columns else None
        new[k] = _typed(k, v, col)
    return new


def _typed(name: str, v, col: pd.Series | None):
    if col is None:
        return v
    if pd.api.types.is_datetime64_any_dtype(col):
        kind, ok = "dates", v is None or isinstance(v, _dt.date)
        missing = pd.NaT
    elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        kind, ok = "text", v is None or isinstance(v, str)
        missing = None
    else:
        kind, ok = "numbers", v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
        missing = np.nan
    if not ok:
        what = "a date" if isinstance(v, _dt.date) else "true/false" if isinstance(v, bool) else \
            "a number" if isinstance(v, (int, float)) else "text" if isinstance(v, str) else type(v).__name__
        hint = "; write it in quotes" if kind == "text" and isinstance(v, (int, float, _dt.date)) else ""
        raise StepError(f"set: {name}: {v!r} is {what}, but {name} holds {kind}{hint}", ("set", name))
    if v is None:
        return missing
    return pd.Timestamp(v) if kind == "dates" else float(v) if kind == "numbers" else v


def _param_frame(src: pd.DataFrame, a: dict, aval, avalc=None) -> pd.DataFrame:
    out = src[_subject_keys(src)].copy()
    out["PARAMCD"] = a["paramcd"]
    out["PARAM"] = a["param"]
    if a.get("paramn") is not None:
        out["PARAMN"] = float(a["paramn"])
    out["AVAL"] = aval
    if avalc is not None:
        out["AVALC"] = avalc
    for new, old in keep_map(a.get("keep")).items():
        out[new] = src[old].to_numpy()
    return out


def _traceability(src, a, var):
    dom = a["dataset"]
    if f"{dom}SEQ" not in src.columns and f"{dom[:2]}SEQ" in src.columns:
        dom = dom[:2]                   # a split dataset (LBCH) is part of its domain (LB, LBSEQ)
    seq = f"{dom}SEQ"
    seqs = _numbers(src[seq]).to_numpy() if seq in src.columns else np.nan
    return {"SRCDOM": dom, "SRCVAR": var, "SRCSEQ": seqs}


@step("parameter", starts=True, adds_records=True, per_source_record=True, dataset=Arg("dataset", True), where=Arg("source_where", True),
      aval=Arg("source_var"), avalc=Arg("source_var"), factor=Arg("number"),
      low=Arg("source_var"), high=Arg("source_var"), keep=Arg("keep"), censored=_CENSORED,
      outputs_of=lambda a: (_param_outputs("PARAMCD", "PARAM", "AVAL", "SRCDOM", "SRCVAR", "SRCSEQ")(a)
                            + (["AVALC"] if a.get("avalc") else []) + (["ANRLO"] if a.get("low") else [])
                            + (["ANRHI"] if a.get("high") else [])),
      **_PARAM)
def parameter(df, a, ctx):
    """One analysis record per record of `dataset` meeting `where` (CRP from LB, PAINVAS from QS);
    `factor` converts the unit (AVAL and the range); SRCDOM/SRCVAR/SRCSEQ trace each record."""
    src = _records(ctx, a["dataset"], a["where"])
    factor = 1.0 if a["factor"] is None else float(a["factor"])
    aval = np.nan
    if a["aval"]:
        raw = src[a["aval"]]
        if a["censored"] != "missing" and a["avalc"]:
            raw = raw.where(~_blank(raw), src[a["avalc"]])     # '' (CSV) is as missing as NaN
        aval = censored_numbers(raw, a["censored"]) * factor
    avalc = src[a["avalc"]].astype(object).to_numpy() if a["avalc"] else None
    if a["avalc"] and a["factor"] is not None:
        avalc = _converted_text(src[a["avalc"]], factor)
    new = _param_frame(src, a, np.asarray(aval, dtype="float64") if a["aval"] else np.nan, avalc)
    for arg, var in (("low", "ANRLO"), ("high", "ANRHI")):
        if a[arg]:
            new[var] = (_numbers(src[a[arg]]) * factor).to_numpy()
    for k, v in _traceability(src, a, a["aval"] or a["avalc"] or "").items():
        new[k] = v
    return _append(df, _set(new, a, df))


def _converted_text(text: pd.Series, factor: float) -> np.ndarray:
    """Character results in the new unit: '12' -> '1.2', '<5' -> '<0.5' with factor 0.1 (the
    censoring sign is kept; other text, e.g. 'NEGATIVE', as it is)."""
    t = text.astype(object).where(text.notna(), "").astype(str).str.strip()
    m = t.str.extract(r"^([<>]=?)?\s*(-?[0-9]*\.?[0-9]+)$")
    num = pd.to_numeric(m[1], errors="coerce") * factor
    conv = m[0].fillna("") + num.map(lambda v: "" if pd.isna(v) else f"{v:.15g}")
    return np.where(num.notna(), conv, t).astype(object)


def _grouped_param(df, a, ctx, values: pd.Series, src: pd.DataFrame) -> pd.DataFrame:
    """Records for a parameter computed per `by` group of `src`: `values` is indexed by the group keys;
    kept variables come from the group's first record."""
    by = a["by"]
    first = src.drop_duplicates(by, keep="first").set_index(by)
    vals = values.reindex(first.index)
    keep = {c: c for c in _subject_keys(src) if c not in by}
    first = first.reset_index()
    new = first[by + list(keep)].copy()
    new["PARAMCD"], new["PARAM"] = a["paramcd"], a["param"]
    if a.get("paramn") is not None:
        new["PARAMN"] = float(a["paramn"])
    new["AVAL"] = vals.to_numpy(dtype="float64")
    for n, old in keep_map(a.get("keep")).items():
        new[n] = first[old].to_numpy()
    new = new[new["AVAL"].notna()]
    return _append(df, _set(new, a, df))


@step("parameter_count", starts=True, adds_records=True, dataset=Arg("dataset", True),
      where=Arg("source_where", True), count_where=Arg("source_where", True),
      by=Arg("source_vars", default=["USUBJID", "VISITNUM"]), keep=Arg("keep"),
      outputs_of=_param_outputs("PARAMCD", "PARAM", "AVAL"), **_PARAM)
def parameter_count(df, a, ctx):
    """The number of records meeting `count_where` among those meeting `where`, per `by` group
    (TJC28: joints with MKORRES Y among the evaluated joints; a visit without any gets no record)."""
    src = _records(ctx, a["dataset"], a["where"])
    hit = evaluate(a["count_where"], src).astype(int)
    counts = hit.groupby([src[b] for b in a["by"]]).sum().astype("float64")
    return _grouped_param(df, a, ctx, counts, src)


@step("parameter_haq_di", starts=True, adds_records=True, dataset=Arg("dataset", True),
      where=Arg("source_where", True), by=Arg("source_vars", default=["USUBJID", "VISITNUM"]), keep=Arg("keep"),
      aids_adjusted=Arg("boolean", default=True), min_categories=Arg("integer", default=6),
      outputs_of=_param_outputs("PARAMCD", "PARAM", "AVAL"), **_PARAM)
def parameter_haq_di(df, a, ctx):
    """HAQ-DI scored from the HAQ items (ra_scores.haq_di): highest item per category, aids/help
    raise 0-1 to 2, mean over answered categories, missing under `min_categories`."""
    src = _records(ctx, a["dataset"], a["where"])
    di = ra_scores.haq_di(src, aids_adjusted=a["aids_adjusted"], by=a["by"], min_categories=a["min_categories"])
    return _grouped_param(df, a, ctx, di, src)


#: Formulas a computed parameter may name: role names are the functions' argument names.
FORMULAS: dict[str, Callable] = {
    "sdai": ra_scores.sdai, "cdai": ra_scores.cdai,
    "das28_esr": ra_scores.das28_esr, "das28_crp": ra_scores.das28_crp,
    "ratio": lambda numerator, denominator: numerator / denominator.where(denominator != 0),
}


def formula_parameters(formula) -> list[str]:
    """The parameters an expression formula reads (`AVAL.SYSBP` → SYSBP), in order."""
    if not isinstance(formula, str) or formula in FORMULAS:
        return []
    try:
        names = Expression(formula).names
    except ExpressionError:
        return []
    return list(dict.fromkeys(n.split(".", 1)[1] for n in names if n.startswith("AVAL.")))


def check_formula(field, value, error) -> None:
    """A computed parameter's formula: a named one, or an expression whose names are `AVAL.PARAMCD`
    (admiral's derive_param_computed: `AVAL.SYSBP`, the AVAL of SYSBP in the same group)."""
    if not isinstance(value, str) or value in FORMULAS:
        return
    try:
        expr = Expression(value)
        other = [n for n in expr.names if not n.startswith("AVAL.")]
        if other:
            error(field, f"{other[0]}: a formula reads the parameters' values as AVAL.PARAMCD "
                         f"(e.g. (AVAL.SYSBP + 2 * AVAL.DIABP) / 3), or is one of {', '.join(FORMULAS)}")
            return
        if not expr.names:
            error(field, f"{value!r} is neither a named formula ({', '.join(FORMULAS)}) nor an expression "
                         f"reading AVAL.PARAMCD")
            return
        kind = expr.check(lambda n: NUMBER)
        if kind != NUMBER:
            error(field, f"a formula gives a number, and {value!r} does not")
    except ExpressionError as exc:
        error(field, exc.located())


def formula_roles(name: str) -> tuple[list[str], list[str]]:
    """(required roles, optional roles) of a formula."""
    sig = inspect.signature(FORMULAS[name])
    req = [p for p, v in sig.parameters.items() if v.default is inspect.Parameter.empty]
    opt = [p for p, v in sig.parameters.items() if v.default is not inspect.Parameter.empty]
    return req, opt


def _with_constants(sel, keys, constants, by, used) -> pd.DataFrame:
    """`sel` with each constant parameter's value (one record per `by` group, as HEIGHT measured once)
    copied into every group of the other parameters: admiral's constant_parameters/constant_by_vars."""
    unused = [p for p in constants if p not in used]
    if unused:
        raise StepError(f"constant_parameters: the formula does not read {', '.join(unused)}",
                        ("constant_parameters",))
    outside = [v for v in by if v not in keys]
    if outside:
        raise StepError(f"constant_by: {', '.join(outside)} must be among the `by` variables "
                        f"({', '.join(keys)})", ("constant_by",))
    const = sel[sel["PARAMCD"].isin(constants)]
    twice = const[const.duplicated(by + ["PARAMCD"], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        same = (twice[by + ["PARAMCD"]] == first[by + ["PARAMCD"]]).all(axis=1)
        raise StepError(f"constant_parameters: {first['PARAMCD']} has {int(same.sum())} records for "
                        f"{', '.join(f'{v}={first[v]}' for v in by)}; a constant parameter has one per "
                        f"constant_by group (restrict it with `where`)", ("constant_parameters",))
    regular = sel[~sel["PARAMCD"].isin(constants)]
    groups = regular[keys].drop_duplicates()
    copies = groups.merge(const[by + ["PARAMCD", "AVAL"]], on=by, how="inner")
    return pd.concat([regular, copies], ignore_index=True)


def _carry(df, sel, by, carry, new):
    """Carried variables of new records: the latest (max) value among the input records of the group."""
    if not carry:
        return new
    agg = sel.groupby(by, dropna=False)[carry].max().reset_index()
    return new.merge(agg, on=by, how="left")


@step("parameter_computed", adds_records=True,
      formula=Arg("text", True, rule={"type": "string", "check_with": check_formula},
                  doc=f"a named formula ({', '.join(FORMULAS)}) with its `inputs`, or an expression over "
                      "AVAL.PARAMCD (admiral's derive_param_computed): (AVAL.SYSBP + 2 * AVAL.DIABP) / 3"),
      inputs=Arg("params", doc="{role: PARAMCD} of a named formula"), by=Arg("vars", default=["USUBJID", "AVISITN"]), where=Arg("where"),
      carry=Arg("vars", doc="variables copied from the inputs (the latest value)"),
      constant_parameters=Arg("list", rule={"type": "list", "minlength": 1,
                                            "schema": {"type": "string", "regex": PARAMCD_RE}},
                              doc="parameters measured once (HEIGHT), joined to every group by `constant_by` "
                                  "(admiral's constant_parameters)"),
      constant_by=Arg("vars", default=["USUBJID"], doc="admiral's constant_by_vars"),
      only_missing=Arg("boolean", default=False,
                       doc="create the parameter only in groups that have no record of it yet (admiral's "
                           "derive_param_wbc_abs: the absolute count where only the differential was collected)"),
      outputs_of=lambda a: [o for o in _param_outputs("PARAMCD", "PARAM", "AVAL", "PARAMTYP")(a)
                            if o != "PARAM" or a.get("param") is not None],
      **{**_PARAM, "param": Arg("text", doc="PARAM of the new records; none: a later step gives PARAM to every "
                                            "record (admiral's lookup after derive_param_*)")})
def parameter_computed(df, a, ctx):
    """A parameter computed from other parameters of the same `by` group, created only where every
    required input has a value (SDAI, CDAI, DAS28-ESR/CRP, a ratio such as Treg/Th17), by a named
    formula or an expression (admiral's derive_param_computed: MAP, BMI, BSA...)."""
    if a["formula"] in FORMULAS:
        if not a["inputs"]:
            raise StepError(f"formula {a['formula']} needs `inputs:`", ("formula",))
        roles = dict(a["inputs"])
        named = FORMULAS[a["formula"]]

        def func(v):
            return named(**{r: v[p] for r, p in roles.items()})
    else:
        if a["inputs"]:
            raise StepError("an expression formula names its parameters itself (AVAL.PARAMCD); "
                            "remove `inputs:`", ("inputs",))
        roles = {p: p for p in formula_parameters(a["formula"])}
        expr = Expression(a["formula"])

        def func(v):
            n = len(next(iter(v.values())))
            return expr.values(lambda name: v[name.split(".", 1)[1]].reset_index(drop=True), n=n).to_numpy()
    sel = df[evaluate(a["where"], df)] if a["where"] else df
    sel = sel[sel["PARAMCD"].isin(list(roles.values()))]
    absent = [p for p in dict.fromkeys(roles.values()) if p not in set(sel["PARAMCD"])]
    if absent:     # a misspelt code would otherwise give no record, silently
        raise StepError(f"formula: no record of parameter {', '.join(absent)}"
                        f"{' among the records meeting `where`' if a['where'] else ''}; parameters here: "
                        f"{', '.join(sorted(set(df['PARAMCD'].dropna().astype(str)))) or 'none'}", ("formula",))
    keys = a["by"] + _subject_keys(df)
    keys = list(dict.fromkeys(keys))
    if a["constant_parameters"]:
        sel = _with_constants(sel, keys, list(a["constant_parameters"]), list(a["constant_by"]),
                              set(roles.values()))
    set_values = {"PARAM": a["param"]} if a["param"] is not None else {}
    if a["paramn"] is not None:
        set_values["PARAMN"] = float(a["paramn"])
    try:
        out = bds.derive_param_computed(sel, by=keys, parameters=list(dict.fromkeys(roles.values())),
                                        new_paramcd=a["paramcd"],
                                        func=func,
                                        set_values=set_values)
    except ValueError as exc:
        raise StepError(f"{exc} (restrict the inputs with `where`, e.g. {{ANL01FL: Y}})") from exc
    new = out.iloc[len(sel):].reset_index(drop=True)
    if a["only_missing"]:
        have = df.loc[df["PARAMCD"] == a["paramcd"], keys].drop_duplicates().assign(__have=True)
        new = new.merge(have, on=keys, how="left")
        new = new[new["__have"].isna()].drop(columns="__have").reset_index(drop=True)
    new = new[[c for c in new.columns if c in keys or c in ("PARAMCD", "AVAL", "PARAMTYP") or c in set_values]]
    new = _carry(df, sel, keys, [c for c in (a["carry"] or []) if c not in keys], new)
    return _append(df, _set(new, a, df))


def _post_baseline(df, a, paramcds):
    sel = df[df["PARAMCD"].isin(paramcds)]
    return sel[evaluate(a["post_where"], sel)] if a["post_where"] else sel


_POST = {"ABLFL": {"not": "Y"}, "AVISITN": {"gt": 0}}


@step("parameter_acr", adds_records=True, level=Arg("integer", True, allowed=(20, 50, 70)),
      components=Arg("params", True), apr=Arg("text", default="crp"),
      by=Arg("vars", default=["USUBJID", "AVISITN"]), post_where=Arg("where", default=_POST),
      base=Arg("var", default="BASE"), carry=Arg("vars"),
      tolerance=Arg("number", default=1e-9, doc="relative tolerance of the % improvement comparison"),
      outputs_of=_param_outputs("PARAMCD", "PARAM", "AVAL", "AVALC", "PARAMTYP"), **_PARAM)
def parameter_acr(df, a, ctx):
    """ACR20/50/70 (Felson 1995) at each post-baseline group from the components' AVAL and BASE:
    AVALC Y/N, AVAL 1/0; no record where the response cannot be evaluated."""
    comps = a["components"]
    sel = _post_baseline(df, a, list(comps.values()))
    keys = list(dict.fromkeys(a["by"] + _subject_keys(df)))
    if sel.duplicated(keys + ["PARAMCD"]).any():
        dup = sel.loc[sel.duplicated(keys + ["PARAMCD"], keep=False), keys + ["PARAMCD"]].head(5)
        raise StepError(f"more than one record per {keys + ['PARAMCD']} among the components: "
                        f"{dup.to_dict('records')} (restrict with post_where, e.g. ANL01FL: Y)")
    post = sel.pivot(index=keys, columns="PARAMCD", values="AVAL")
    base = sel.pivot(index=keys, columns="PARAMCD", values=a["base"])
    rename = {p: r for r, p in comps.items()}
    post, base = post.rename(columns=rename), base.rename(columns=rename)
    resp = ra_scores.acr_response(base, post, level=a["level"], apr=a["apr"], rel_tol=a["tolerance"])
    resp = resp[resp != ""]
    new = resp.index.to_frame(index=False)
    new["PARAMCD"], new["PARAM"] = a["paramcd"], a["param"]
    if a["paramn"] is not None:
        new["PARAMN"] = float(a["paramn"])
    new["AVALC"] = resp.to_numpy()
    new["AVAL"] = np.where(new["AVALC"] == "Y", 1.0, 0.0)
    new["PARAMTYP"] = "DERIVED"
    new = _carry(df, sel, keys, [c for c in (a["carry"] or []) if c not in keys], new)
    return _append(df, _set(new, a, df))


@step("parameter_eular", adds_records=True, das28=Arg("paramcd", True),
      by=Arg("vars", default=["USUBJID", "AVISITN"]), post_where=Arg("where", default=_POST),
      base=Arg("var", default="BASE"), carry=Arg("vars"),
      outputs_of=_param_outputs("PARAMCD", "PARAM", "AVALC", "PARAMTYP"), **_PARAM)
def parameter_eular(df, a, ctx):
    """EULAR response GOOD/MODERATE/NONE (van Gestel 1996) from a DAS28 parameter and its BASE."""
    sel = _post_baseline(df, a, [a["das28"]])
    keys = list(dict.fromkeys(a["by"] + _subject_keys(df)))
    resp = ra_scores.eular_response(sel["AVAL"], sel[a["base"]])
    ok = resp.notna()
    new = sel.loc[ok, keys].reset_index(drop=True)
    new["PARAMCD"], new["PARAM"] = a["paramcd"], a["param"]
    if a["paramn"] is not None:
        new["PARAMN"] = float(a["paramn"])
    new["AVALC"] = resp[ok].to_numpy()
    new["PARAMTYP"] = "DERIVED"
    new = _carry(df, sel, keys, [c for c in (a["carry"] or []) if c not in keys], new)
    return _append(df, _set(new, a, df))


# ----------------------------------------------------------------------------- BDS timing and baseline

@step("analysis_visit", windows=Arg("list", True, doc="study-day windows lo..hi (null: open)",
                                    rule=_records_of(avisit=("string", True, False), avisitn=("number", True, False),
                                                     target=("number", True, False), lo=("number", True, True),
                                                     hi=("number", True, True))),
      day=Arg("var", default="ADY"), by=Arg("vars", default=["USUBJID", "PARAMCD"]),
      value=Arg("var", default="AVAL"), avisit=Arg("new", default="AVISIT"), avisitn=Arg("new", default="AVISITN"),
      flag=Arg("new", default="ANL01FL"))
def analysis_visit(df, a, ctx):
    """AVISIT/AVISITN from study-day windows, and ANL01FL on the record nearest each window's target."""
    if not a["value"]:
        return bds.derive_analysis_window(df, a["windows"], day=a["day"], by=a["by"], value=None,
                                          avisit=a["avisit"], avisitn=a["avisitn"], flag=a["flag"])
    has = df[a["value"]].notna() if a["value"] in df.columns else pd.Series(False, index=df.index)
    if a["value"] == "AVAL" and "AVALC" in df.columns:
        has |= ~_blank(df["AVALC"])        # '>500' has no AVAL but is a result
    work = df.assign(__HASVAL=np.where(has, 1.0, np.nan))
    out = bds.derive_analysis_window(work, a["windows"], day=a["day"], by=a["by"], value="__HASVAL",
                                     avisit=a["avisit"], avisitn=a["avisitn"], flag=a["flag"])
    return out.drop(columns="__HASVAL")


@step("baseline_flag", new=Arg("new", default="ABLFL"), by=Arg("vars", default=["USUBJID", "PARAMCD"]),
      date=Arg("var", default="ADT"), reference=Arg("var", default="TRTSDT"), order=Arg("vars", default=[]),
      where=Arg("where"))
def baseline_flag(df, a, ctx):
    """ABLFL: the last record with a value on or before the reference date (ties: `order`, then input
    order); `where` limits the candidates (e.g. ANL01FL: Y, or scheduled visits only)."""
    if not a["where"]:
        return bds.derive_ablfl(df, by=a["by"], date=a["date"], ref=a["reference"], order=a["order"],
                                new=a["new"])
    mask = evaluate(a["where"], df)
    part = bds.derive_ablfl(df[mask], by=a["by"], date=a["date"], ref=a["reference"], order=a["order"],
                            new=a["new"])
    out = df.copy()
    out[a["new"]] = ""
    out.loc[mask, a["new"]] = part[a["new"]]
    return out


@step("base", new=Arg("new", default="BASE"), source=Arg("var", default="AVAL"),
      by=Arg("vars", default=["USUBJID", "PARAMCD"]), flag=Arg("var", default="ABLFL"))
def base(df, a, ctx):
    """BASE (or BASEC, BNRIND with another `source`): the baseline record's value on every record."""
    try:
        return bds.derive_base(df, by=a["by"], source=a["source"], new=a["new"], flag=a["flag"])
    except ValueError as exc:
        raise StepError(str(exc)) from exc


@step("change", restrictable=True, new=Arg("new", default="CHG"), value=Arg("var", default="AVAL"),
      base=Arg("var", default="BASE"))
def change(df, a, ctx):
    """CHG = AVAL − BASE."""
    return bds.derive_chg(df, value=a["value"], base=a["base"], new=a["new"])


@step("percent_change", restrictable=True, new=Arg("new", default="PCHG"), value=Arg("var", default="AVAL"),
      base=Arg("var", default="BASE"))
def percent_change(df, a, ctx):
    """PCHG = 100 × (AVAL − BASE) / |BASE|, empty when BASE is 0."""
    return bds.derive_pchg(df, value=a["value"], base=a["base"], new=a["new"])


@step("range_indicator", restrictable=True, new=Arg("new", default="ANRIND"), value=Arg("var", default="AVAL"),
      low=Arg("var", default="ANRLO"), high=Arg("var", default="ANRHI"),
      significant_digits=Arg("integer", default=15, doc="values and limits are compared after rounding"))
def range_indicator(df, a, ctx):
    """ANRIND LOW/NORMAL/HIGH against ANRLO/ANRHI; a value on a limit is NORMAL, compared after rounding
    to 15 significant digits as admiral does (so 0.1 + 0.2 is on a limit of 0.3)."""
    return bds.derive_anrind(df, low=a["low"], high=a["high"], value=a["value"], new=a["new"],
                             signif_dig=a["significant_digits"])


@step("shift", restrictable=True, new=Arg("new", default="SHIFT1"), source=Arg("var", default="BNRIND"),
      to=Arg("var", default="ANRIND"))
def shift(df, a, ctx):
    """SHIFT1 = 'BNRIND to ANRIND'."""
    return bds.derive_shift(df, from_var=a["source"], to_var=a["to"], new=a["new"])


@step("activity_category", new=Arg("new", default="AVALCAT1"), value=Arg("var", default="AVAL"),
      indexes=Arg("mapping", True, doc="the index whose cut-offs apply to each PARAMCD",
                  rule={"type": "dict", "minlength": 1, "keysrules": {"type": "string", "regex": PARAMCD_RE},
                        "valuesrules": {"type": "string", "allowed": sorted(ra_scores.CUTOFFS)}}))
def activity_category(df, a, ctx):
    """REMISSION/LOW/MODERATE/HIGH by the published cut-offs of each index, per PARAMCD."""
    out = df.copy()
    res = pd.Series(None, index=df.index, dtype=object)
    for paramcd, index in a["indexes"].items():
        m = df["PARAMCD"] == paramcd
        if m.any():
            res[m] = ra_scores.activity_category(_numbers(df.loc[m, a["value"]]), index).to_numpy()
    out[a["new"]] = res
    return out


def run_step(st: Step, df: pd.DataFrame | None, args: dict, ctx) -> pd.DataFrame:
    """Run one step; `where:` on a restrictable step derives on the subset only (others get missing)."""
    a = args_with_defaults(st, args)
    if st.restrictable and a.get("where"):
        mask = evaluate(a["where"], df)
        part = st.func(df[mask], a, ctx)
        out = df.copy()
        for col in st.outputs(a):
            if col in part.columns:
                out[col] = part[col].reindex(out.index)
        return out
    return st.func(df, a, ctx)


# ----------------------------------------------------------------------------- added for the CDISC pilot specs

def _blank(s: pd.Series) -> pd.Series:
    """True where a value is missing: NaN/None/NaT, or text that is empty after stripping blanks."""
    return s.isna() | (s.astype(object).where(s.notna(), "").astype(str).str.strip() == "")


@step("coalesce", restrictable=True, new=Arg("new", True),
      sources=Arg("vars", True, doc="variables tried in this order"))
def coalesce(df, a, ctx):
    """The first non-missing value among `sources` (dplyr's coalesce in an admiral mutate). Why: a
    rule with a fallback cannot be written with `copy` (a variable is created once): the pilot's
    TRTEDT is the end date of the last EX record or, where that is missing, the date of
    discontinuation; blank text counts as missing, as in SDTM."""
    cols = [df[v] for v in a["sources"]]
    if all(pd.api.types.is_datetime64_any_dtype(c) for c in cols) or \
            all(pd.api.types.is_numeric_dtype(c) for c in cols):
        res = cols[0]                      # dates stay dates, numbers numbers
        for c in cols[1:]:
            res = res.where(res.notna(), c)
        return df.assign(**{a["new"]: res})
    res = cols[0].astype(object)
    for c in cols[1:]:
        res = res.where(~_blank(res), c.astype(object))
    res = res.where(~_blank(res), None)
    return df.assign(**{a["new"]: res})


@step("analysis_ratio", restrictable=True, new=Arg("new", True), value=Arg("var", default="AVAL"),
      reference=Arg("var", True, doc="the denominator: BASE, ANRLO, ANRHI, A1LO, A1HI"))
def analysis_ratio(df, a, ctx):
    """`value` / `reference`, missing when the reference is 0 or either is missing (admiral
    derive_var_analysis_ratio: R2BASE, R2A1LO, R2A1HI; BR2A1HI with value: BASE). Why: thresholds
    expressed as multiples of a limit (the pilot's ANRIND is H above 1.5 x A1HI) become a `flag` on
    the ratio, and the ratios themselves are standard BDS variables."""
    return bds.derive_analysis_ratio(df, numer=a["value"], denom=a["reference"], new=a["new"])


@step("extreme_records", adds_records=True, by=Arg("vars", True), order=Arg("order", True),
      mode=Arg("text", default="last", allowed=("first", "last")),
      where=Arg("where", doc="only these records are candidates"),
      set=Arg("set", True, doc="e.g. {AVISIT: End of Treatment}"),
      outputs_of=lambda a: list((a.get("set") or {}).keys()))
def extreme_records(df, a, ctx):
    """Per `by` group, a copy of the first/last record (by `order`, missing last) among those meeting
    `where`, added as a new record with the `set` values (admiral derive_extreme_records). Why: BDS
    timepoints derived from other records, such as the pilot's "End of Treatment" visit (the last
    scheduled on-treatment value of each subject and parameter), are extra records, not flags."""
    mask = evaluate(a["where"], df) if a["where"] else None
    picked = occurrence.derive_extreme_flag(df, by=a["by"], order=a["order"], new="__PICK", mode=a["mode"],
                                            filter=mask)["__PICK"].eq("Y").to_numpy()
    return _append(df, _set(df[picked].copy(), a, df))


@step("locf", adds_records=True, visits=Arg("list", True, doc="the expected analysis visits",
                                            rule=_records_of(avisit=("string", True, False),
                                                             avisitn=("number", True, False))),
      by=Arg("vars", default=["USUBJID", "PARAMCD"]), value=Arg("var", default="AVAL"),
      where=Arg("where", doc="the observed records (e.g. {ANL01FL: Y})"),
      keep=Arg("vars", doc="variables copied from the carried record (PARAM, PARAMN, TRTA, ...)"),
      set=Arg("set", doc="e.g. {ANL01FL: Y}"),
      outputs_of=lambda a: ["AVISIT", "AVISITN", "DTYPE"] + list((a.get("set") or {}).keys()))
def locf(df, a, ctx):
    """For each `by` group, a record for every expected visit that has no observed value, carrying
    the value of the latest earlier observed visit, with DTYPE 'LOCF' (admiral derive_locf_records):
    an imputed record is a record of its own, flagged, never an overwritten value. Visits before the
    first observation get nothing (there is nothing to carry)."""
    obs = df[evaluate(a["where"], df)] if a["where"] else df
    obs = obs[obs[a["value"]].notna() & obs["AVISITN"].notna()]
    keys = list(a["by"])
    keep = [c for c in (a["keep"] or []) if c not in keys]
    expected = pd.DataFrame({"AVISIT": [v["avisit"] for v in a["visits"]],
                             "AVISITN": [float(v["avisitn"]) for v in a["visits"]]})
    groups = obs[keys].drop_duplicates()
    grid = groups.merge(expected, how="cross")
    seen = obs[keys + ["AVISITN"]].drop_duplicates()
    missing = grid.merge(seen, on=keys + ["AVISITN"], how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    if missing.empty:
        return df
    last = obs.sort_values(keys + ["AVISITN"], kind="mergesort")[keys + ["AVISITN", a["value"]] + keep]
    missing = missing.sort_values("AVISITN", kind="mergesort")
    carried = pd.merge_asof(missing, last.rename(columns={"AVISITN": "__FROM"}).sort_values("__FROM"),
                            left_on="AVISITN", right_on="__FROM", by=keys, direction="backward",
                            allow_exact_matches=False)
    new = carried[carried["__FROM"].notna()].drop(columns="__FROM")
    new["DTYPE"] = "LOCF"
    new = _set(new, a, df)
    return _append(df, new.sort_values(keys + ["AVISITN"], kind="mergesort"))


# ----------------------------------------------------------------------------- admiral's generic derivations (issue 9 §4)

def _key_sample(df: pd.DataFrame, cols: list[str], n: int = 3) -> str:
    """A few key combinations as a user reads them: `USUBJID=S1, ADT=2021-01-05`."""
    rows = df[cols].drop_duplicates().head(n)
    text = {c: as_condition_text(rows[c]) for c in cols}
    return "; ".join(", ".join(f"{c}={text[c].iloc[i] or '(missing)'}" for c in cols) for i in range(len(rows)))


@step("obs_number", restrictable=True, new=Arg("new", default="ASEQ"), by=Arg("vars", default=[]),
      order=Arg("order", True),
      check=Arg("text", default="error", allowed=("error", "warning", "none"),
                doc="records tied on by + order: an error (default: the number would follow the input "
                    "order), a warning, or accepted (admiral's check_type; its default is none)"))
def obs_number(df, a, ctx):
    """The number of each record within its `by` group, 1, 2, ... in `order` (admiral
    derive_var_obs_number: ASEQ). Why an error on ties by default: two records that tie on every
    sort variable would be numbered by the order they happen to arrive in, so the same data could
    give another ASEQ."""
    by = list(a["by"] or [])
    cols, asc = order_columns(a["order"])
    direction = {**dict(zip(cols, asc)), **{b: True for b in by}}
    keys = list(dict.fromkeys(by + cols))
    ascending = [direction[k] for k in keys]
    srt = df[keys].sort_values(keys, ascending=ascending, kind="mergesort", na_position="last")
    ties = srt.duplicated(keys, keep=False)
    if ties.any() and a["check"] != "none":
        msg = (f"{int(ties.sum())} records are not unique with respect to {', '.join(keys)}, e.g. "
               f"{_key_sample(srt[ties], keys)}: {a['new']} would follow the order the records arrive in")
        if a["check"] == "error":
            raise StepError(msg + "; add a variable to `order` (or check: warning)", ("order",))
        warnings.warn(msg, UserWarning, stacklevel=2)
    if by:
        n = srt.groupby(by, sort=False, dropna=False).cumcount() + 1
    else:
        n = pd.Series(np.arange(1, len(srt) + 1), index=srt.index)
    return df.assign(**{a["new"]: n.reindex(df.index).astype("float64")})


#: Summary functions of `summary_records`: missing values are skipped; a group without any value gets
#: a missing result (count: 0). sd is the sample standard deviation (n - 1), as R's sd().
SUMMARIES = {"mean": "mean", "median": "median", "min": "min", "max": "max", "sum": "sum", "sd": "std",
             "count": "count"}
SUMMARY_RULE = {"type": "dict", "minlength": 1, "keysrules": {"type": "string", "regex": NAME_RE},
                "valuesrules": {"type": "dict", "minlength": 1, "maxlength": 1,
                                "keysrules": {"type": "string", "allowed": list(SUMMARIES)},
                                "valuesrules": {"type": "string"}}}


def summary_sources(values) -> list[str]:
    """The variables a `summaries` argument reads."""
    return [src for fn in (values or {}).values() if isinstance(fn, dict) for src in fn.values()]


@step("summary_records", adds_records=True, by=Arg("vars", True, doc="admiral by_vars: one new record per group; "
                                                                    "the new records carry these variables"),
      where=Arg("where", doc="admiral filter_add: the records summarised"),
      values=Arg("summaries", True, rule=SUMMARY_RULE,
                 doc="admiral set_values_to's summaries, e.g. {AVAL: {mean: AVAL}}"),
      dtype=Arg("text", default="AVERAGE", doc="DTYPE of the new records; null: no DTYPE"),
      set=Arg("set", doc="other values of the new records (admiral set_values_to), e.g. {AVISIT: Average}"),
      outputs_of=lambda a: list(a.get("values") or {}) + (["DTYPE"] if a.get("dtype") else [])
      + list((a.get("set") or {}).keys()))
def summary_records(df, a, ctx):
    """One new record per `by` group summarising the records meeting `where` (admiral
    derive_summary_records: the mean of triplicate ECG or vital-sign measurements, DTYPE AVERAGE).
    The new records have the `by` variables, the summaries, DTYPE and the `set` values; every other
    variable is missing, so name in `by` what they must keep (admiral's summarise does the same)."""
    by = list(a["by"])
    src = df[evaluate(a["where"], df)] if a["where"] else df
    grouped = src.groupby(by, dropna=False, sort=True)
    new = grouped.size().reset_index()[by]
    for out, spec in a["values"].items():
        (fn, var), = spec.items()
        col = src[var]
        dates = pd.api.types.is_datetime64_any_dtype(col)
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)) and \
                not (dates and fn in ("min", "max", "count")):
            what = "dates" if dates else "text"
            raise StepError(f"values: {out}: {fn} needs numbers, but {var} holds {what}", ("values", out))
        res = getattr(col.groupby([src[b] for b in by], dropna=False, sort=True), SUMMARIES[fn])()
        new[out] = res.to_numpy() if fn == "count" or dates else res.to_numpy(dtype="float64")
    if a["dtype"]:
        new["DTYPE"] = a["dtype"]
    return _append(df, _set(new, a, df))


@step("basetype_records", adds_records=True,
      basetypes=Arg("list", True, doc="one copy of the records meeting `where` per entry (no `where`: every record)",
                    rule={"type": "list", "minlength": 1, "schema": {"type": "dict", "schema": {
                        "basetype": {"type": "string", "required": True, "empty": False},
                        "where": {**CONDITION, "nullable": True}}}}),
      new=Arg("new", default="BASETYPE"))
def basetype_records(df, a, ctx):
    """The records meeting each entry's condition, copied once per entry with BASETYPE set to its
    `basetype` (admiral derive_basetype_records: LAST and WORST baselines, or one per position of a
    vital sign); records meeting none are kept once with BASETYPE missing. A record meeting several
    conditions is copied for each."""
    names = [b["basetype"] for b in a["basetypes"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StepError(f"basetypes: {', '.join(dup)} given twice (each BASETYPE is one copy of the records)",
                        ("basetypes",))
    masks = [evaluate(b.get("where"), df) for b in a["basetypes"]]
    anywhere = np.logical_or.reduce([m.to_numpy() for m in masks])
    parts = [df[~anywhere].assign(**{a["new"]: None})]
    parts += [df[m].assign(**{a["new"]: b["basetype"]}) for b, m in zip(a["basetypes"], masks)]
    return pd.concat(parts, ignore_index=True)


@step("ontrtfl", new=Arg("new", default="ONTRTFL"), start_date=Arg("var", default="ADT"),
      end_date=Arg("var", doc="the end of an event (AENDT); an event ending before ref_start_date is not on "
                             "treatment"),
      ref_start_date=Arg("var", default="TRTSDT"),
      ref_end_date=Arg("var", default="TRTEDT", doc="null: no upper bound (admiral's default)"),
      ref_end_window=Arg("integer", default=0, doc="days after ref_end_date still on treatment"),
      ignore_time=Arg("boolean", default=True, doc="admiral's ignore_time_for_ref_end_date: the window is "
                                                   "checked on dates"),
      filter_pre_timepoint=Arg("where", doc="records on ref_start_date meeting this are before treatment "
                                            "(e.g. a pre-dose timepoint)"),
      span_period=Arg("boolean", default=False, doc="events started before ref_start_date and ongoing or ending "
                                                    "after it are on treatment (needs end_date)"))
def ontrtfl(df, a, ctx):
    """On-treatment flag 'Y' (else missing) by admiral derive_var_ontrtfl's rules, in its order: a
    record on ref_start_date, or without start_date when ref_start_date is known, is on treatment
    unless `filter_pre_timepoint` holds; one after ref_start_date is when no ref_end_date is given,
    or up to ref_end_date + ref_end_window days; an event ending before ref_start_date is not; with
    `span_period`, an event spanning ref_start_date is. A comparison with a missing date leaves the
    flag as the earlier rules set it (R's if_else with missing = the flag)."""
    if a["ref_end_window"] < 0:
        raise StepError(f"ref_end_window: {a['ref_end_window']} must be 0 or more days", ("ref_end_window",))
    if a["span_period"] and not a["end_date"]:
        raise StepError("span_period needs end_date (whether the event ends after ref_start_date)", ("span_period",))
    st, rs = occurrence._dates(df, a["start_date"]), occurrence._dates(df, a["ref_start_date"])
    flag = (st.isna() & rs.notna()) | (rs == st)
    if a["filter_pre_timepoint"]:
        flag &= ~evaluate(a["filter_pre_timepoint"], df)
    end_ok = pd.Series(True, index=df.index)
    if a["ref_end_date"]:
        re = occurrence._dates(df, a["ref_end_date"]) + pd.Timedelta(days=int(a["ref_end_window"]))
        end_ok = (st.dt.normalize() <= re.dt.normalize()) if a["ignore_time"] else (st <= re)
    flag |= (rs < st) & end_ok
    if a["end_date"]:
        en = occurrence._dates(df, a["end_date"])
        flag &= ~(en < rs)
        if a["span_period"]:
            flag |= end_ok & (en.isna() | (en >= rs))
    return df.assign(**{a["new"]: _flag_values(flag, "Y", None)})


def _crit_outputs(a) -> list[str]:
    y = a.get("crit_nr") or 1
    return [f"CRIT{y}", f"CRIT{y}FL"] + ([f"CRIT{y}FN"] if a.get("create_numeric_flag") else [])


def _unevaluable(cond, df: pd.DataFrame) -> pd.Series:
    """Records where the condition reads a missing value other than through `empty:` (R: NA)."""
    out = pd.Series(False, index=df.index)
    if not isinstance(cond, dict):
        return out
    for key, test in cond.items():
        if key == "any":
            for sub in test:
                out |= _unevaluable(sub, df)
            continue
        if isinstance(test, dict) and set(test) == {"empty"}:
            continue
        out |= _blank(df[key])
        if isinstance(test, dict):
            for ref in test.values():
                if isinstance(ref, dict) and "var" in ref:
                    out |= _blank(df[ref["var"]])
    return out


@step("crit_flag", restrictable=True, crit_nr=Arg("integer", default=1, doc="the y of CRITy, CRITyFL, CRITyFN"),
      condition=Arg("where", True), description=Arg("text", True, doc="the text of CRITy"),
      values_yn=Arg("boolean", default=False, doc="N where the condition does not hold (else missing)"),
      create_numeric_flag=Arg("boolean", default=False, doc="CRITyFN: 1 for Y, 0 for N"),
      outputs_of=_crit_outputs)
def crit_flag(df, a, ctx):
    """CRITy, CRITyFL and CRITyFN from a condition (admiral derive_vars_crit_flag): CRITyFL is Y where the
    condition holds; with `values_yn`, N where it does not and missing where it cannot be told: the
    condition reads a missing value (R's NA; `empty:` tests are not counted), so PCHG <= -5 on a
    record without PCHG is missing, not N. CRITy is the description on the Y records, or on every
    record with `values_yn`."""
    if a["crit_nr"] < 1:
        raise StepError(f"crit_nr: {a['crit_nr']} must be 1 or more", ("crit_nr",))
    crit, fl, fn = (_crit_outputs({**a, "create_numeric_flag": True}))
    hit = evaluate(a["condition"], df)
    if a["values_yn"]:
        res = _flag_values(hit, "Y", "N").where(hit | ~_unevaluable(a["condition"], df), None)
        text = pd.Series(a["description"], index=df.index, dtype=object)
    else:
        res = _flag_values(hit, "Y", None)
        text = _flag_values(hit, a["description"], None)
    out = df.assign(**{crit: text, fl: res})
    if a["create_numeric_flag"]:
        out[fn] = res.map({"Y": 1.0, "N": 0.0}).astype("float64")
    return out
