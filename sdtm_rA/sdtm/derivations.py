"""Named derivations: implemented once, used by every domain (`derive: <name>` in a mapping).

Each is a small function of the whole column set of a domain, documented with its arguments, and
registered with the argument schema that the mapping validator checks before anything runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .. import dates
from . import findings
from ..errors import ConversionError, Issue, shown
from .schema import COND

REGISTRY: dict[str, "Derivation"] = {}
_S = {"type": "string"}
_L = {"type": "list", "schema": {"type": "string"}}


@dataclass
class Derivation:
    name: str
    func: Callable
    args: dict = field(default_factory=dict)
    required: tuple = ()
    inputs: tuple = ()  # argument names whose values are target variables (or lists of them)
    doc: str = ""
    subject: bool = False  # works per subject: needs USUBJID first
    domains: tuple = ()  # already-built domains it reads

    def requires(self, spec) -> list[str]:
        deps = ["USUBJID"] if self.subject else []
        for arg in self.inputs:
            val = spec.get(arg)
            for item in (val if isinstance(val, list) else [val]):
                if isinstance(item, str) and "." not in item:
                    deps.append(item)
        return deps


def derivation(name, args=None, required=(), inputs=()):
    def wrap(func):
        REGISTRY[name] = Derivation(name, func, args or {}, tuple(required), tuple(inputs),
                                    (func.__doc__ or "").strip())
        return func
    return wrap


def _text(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str)


def _usubjid(ctx) -> pd.Series:
    if "USUBJID" not in ctx.values:
        raise ConversionError([Issue("error", "this derivation needs USUBJID, mapped before it",
                                     file=ctx.mapping.file, domain=ctx.domain)])
    return _text(ctx.values["USUBJID"])


def subject_value(ctx, variable, domain: str, source_var: str) -> pd.Series:
    """A per-subject value of an already-built domain (e.g. DM.RFSTDTC) aligned to this domain."""
    if ctx.domain == domain and source_var in ctx.values:
        return _text(ctx.values[source_var])
    other = ctx.built.get(domain)
    if other is None:
        raise ConversionError([Issue("error", f"needs {domain}.{source_var}, but {domain} is not built "
                                     f"(is its mapping missing?)", **ctx.where(variable))])
    if source_var not in other.columns:
        raise ConversionError([Issue("error", f"needs {domain}.{source_var}, which {domain} does not have "
                                     f"(map {source_var} in {domain}'s mapping)", **ctx.where(variable))])
    table = other.drop_duplicates("USUBJID").set_index("USUBJID")[source_var]
    return _usubjid(ctx).map(table).fillna("").astype(str)


# -- identifiers --------------------------------------------------------------------------------
@derivation("seq", args={"order": _L}, inputs=("order",))
def seq(ctx, variable, spec):
    """--SEQ: 1, 2, … per USUBJID, in the order of `order` (target variables), then raw file order.

    The raw order is the tie-breaker so that the numbering is the same on every run.
    """
    order = spec.get("order", [])
    frame = pd.DataFrame({"USUBJID": _usubjid(ctx)}, index=ctx.index)
    sort_cols = ["USUBJID"]
    for i, var in enumerate(order):
        s = ctx.values[var]
        col = f"k{i}"
        if pd.api.types.is_numeric_dtype(s):
            frame[col] = s
        else:
            frame[col] = _text(s)
        sort_cols.append(col)
    frame["__file__"] = ctx.frame["__file__"].astype(str)
    frame["__line__"] = ctx.frame["__line__"]
    frame["__pos__"] = np.arange(len(frame))
    frame = frame.sort_values(sort_cols + ["__file__", "__line__", "__pos__"], kind="stable",
                              na_position="last")
    frame["seq"] = frame.groupby("USUBJID", sort=False).cumcount() + 1
    return frame["seq"].reindex(ctx.index).astype(float)


# -- timing ---------------------------------------------------------------------------------------
@derivation("study_day", args={"date": _S, "reference": _S}, required=("date",), inputs=("date",))
def study_day(ctx, variable, spec):
    """--DY from --DTC and DM.RFSTDTC (or `reference: DM.VAR`): no day 0; partial dates give none."""
    ref_dom, _, ref_var = spec.get("reference", "DM.RFSTDTC").partition(".")
    ref = subject_value(ctx, variable, ref_dom, ref_var)
    return dates.study_day(_text(ctx.values[spec["date"]]), ref).astype("Float64").astype(float)


def _visit_parts(ctx, variable, raw: pd.Series):
    """Scheduled visit for each raw label; the unscheduled ordinal n of 'UNSCHEDULED n'; and the
    VISITNUM that a label matching `unscheduled: {numbered: ...}` carries ('UNSCHEDULED 3.1' → 3.1).
    A label read both ways, or carrying a scheduled visit's number, is an error."""
    lookup = ctx.study.visit_lookup()
    unsched = ctx.study.unscheduled_regex()
    numbered_res = ctx.study.numbered_regexes()
    scheduled = {v.visitnum: v.visit for v in ctx.study.visits}
    sched, ordinal, numbered, bad, both, taken = {}, {}, {}, [], {}, {}
    for value in raw.unique():
        key = re.sub(r"\s+", " ", value.strip().upper())
        if key in lookup:
            sched[value] = lookup[key]
            continue
        found = unsched.match(key)
        carried = next((m for m in (r.match(key) for r in numbered_res) if m), None)
        if found and carried:
            both[value] = (int(found.group(1)), carried.group(1))
        elif found:
            ordinal[value] = int(found.group(1))
        elif carried:
            num = float(carried.group(1))
            if num in scheduled:
                taken[value] = num
            else:
                numbered[value] = num
        elif value != "":
            bad.append(value)
    if bad:
        names = ", ".join(v.visit for v in ctx.study.visits)
        ctx.report_values(variable, raw[raw.isin(bad)],
                          lambda v: f"visit {shown(v)} is not in the schedule of study.yaml ({names}) and "
                          f"does not match the unscheduled {_patterns_text(ctx.study)}")
    if both:
        ctx.report_values(variable, raw[raw.isin(list(both))], lambda v: (
            f"visit {shown(v)} matches both the unscheduled pattern '{ctx.study.unscheduled_pattern}' "
            f"(n = {both[v][0]}) and a numbered one (VISITNUM {both[v][1]}): which one it is cannot be known; "
            "make the patterns of `unscheduled:` in study.yaml exclusive"))
    if taken:
        ctx.report_values(variable, raw[raw.isin(list(taken))], lambda v: (
            f"unscheduled visit {shown(v)} carries VISITNUM {taken[v]:g}, the number of the scheduled visit "
            f"{scheduled[taken[v]]}: an unscheduled visit needs a number of its own (correct the label, or "
            "list it as an alias of the scheduled visit in study.yaml)"))
    return sched, ordinal, numbered


def _patterns_text(study) -> str:
    found = ([study.unscheduled_pattern] if study.unscheduled_pattern else []) + list(study.unscheduled_numbered)
    return ("pattern " if len(found) == 1 else "patterns ") + " nor ".join(f"'{p}'" for p in found)


@derivation("visitnum", args={"visit": _S, "date": _S}, required=("visit",), inputs=("date",))
def visitnum(ctx, variable, spec):
    """VISITNUM from the schedule; an unscheduled visit n gets the number of the last scheduled
    visit whose planned day is on or before its study day, plus n × step (study.yaml
    `unscheduled: {step: 0.1}`: 7.1 for UNSCHEDULED 1 after visit 7). The numbering must stay
    below the next integer: more unscheduled visits than the step allows is an error."""
    raw = _text(ctx.column(spec["visit"], variable))
    sched, ordinal, numbered = _visit_parts(ctx, variable, raw)
    out = raw.map({**{k: v.visitnum for k, v in sched.items()}, **numbered}).astype(float)
    is_uns = raw.isin(list(ordinal))
    if not is_uns.any():
        return out
    if not spec.get("date"):
        ctx.issues.error("unscheduled visits need `date:` to be placed between scheduled ones",
                         **ctx.where(variable))
        return out
    ref = subject_value(ctx, variable, "DM", "RFSTDTC")
    day = dates.study_day(_text(ctx.values[spec["date"]])[is_uns], ref[is_uns]).astype("Float64")
    undated = day.isna()
    if undated.any():
        ctx.report_values(variable, raw[is_uns][undated.to_numpy()],
                          lambda v: f"unscheduled visit {shown(v)} has no complete date to place it")
    planned = sorted((v.day, v.visitnum) for v in ctx.study.visits if v.day is not None)
    days = np.array([p[0] for p in planned], dtype=float)
    nums = np.array([p[1] for p in planned], dtype=float)
    d = day.to_numpy(dtype=float, na_value=np.nan)
    pos = np.searchsorted(days, d, side="right") - 1          # last planned day <= study day
    base = np.where(pos >= 0, nums[np.clip(pos, 0, None)], 0.0)
    step = ctx.study.unscheduled_step
    n = raw[is_uns].map(ordinal).to_numpy(dtype=float)
    value = np.round(base + n * step, 6)
    too_many = (n * step >= 1 - 1e-9) & ~np.isnan(d)
    if too_many.any():
        bad = raw[is_uns][too_many]
        ctx.report_values(variable, bad, lambda v: f"{shown(v)} cannot be numbered with step {step} "
                          f"without reaching the next visit number; set `unscheduled: {{step: 0.01}}` "
                          "in study.yaml")
    value[np.isnan(d) | too_many] = np.nan
    out[is_uns] = value
    return out


@derivation("visit", args={"visit": _S, "visitnum": _S}, required=("visit",), inputs=("visitnum",))
def visit(ctx, variable, spec):
    """VISIT: the schedule's name for the raw label (aliases resolved). An unscheduled visit is
    named after its VISITNUM when `visitnum:` is given ('UNSCHEDULED 7.1'), so that VISIT and
    VISITNUM stay one-to-one across subjects, as validators require; else as collected."""
    raw = _text(ctx.column(spec["visit"], variable))
    sched, ordinal, numbered = _visit_parts(ctx, variable, raw)
    table = {k: v.visit for k, v in sched.items()}
    table.update({k: re.sub(r"\s+", " ", k.strip().upper()) for k in [*ordinal, *numbered]})
    out = raw.map(table).astype(object).fillna("").astype(str)   # object: an empty table maps to floats
    if spec.get("visitnum") and (ordinal or numbered):
        nums = ctx.values[spec["visitnum"]]
        uns = raw.isin([*ordinal, *numbered]) & nums.notna()
        label = re.sub(r"\s*\{n\}\s*", " ", ctx.study.unscheduled_pattern or "UNSCHEDULED {n}").strip().upper()
        out[uns] = label + " " + findings.number_texts(nums[uns])
    return out


@derivation("visitdy", args={"visitnum": _S}, required=("visitnum",), inputs=("visitnum",))
def visitdy(ctx, variable, spec):
    """VISITDY: the planned study day of a scheduled visit (none for unscheduled ones)."""
    table = {v.visitnum: v.day for v in ctx.study.visits if v.day is not None}
    return ctx.values[spec["visitnum"]].map(table).astype(float)


def epoch_starts(ctx, variable) -> pd.DataFrame:
    """Per subject, the start date of each epoch declared in study.yaml (DM dates or a visit date)."""
    subjects = pd.Series(_usubjid(ctx).unique())
    out = pd.DataFrame({"USUBJID": subjects})
    dm = ctx.built.get("DM")
    sv = ctx.built.get("SV")
    for ep in ctx.study.epochs:
        start = ep["start"]
        if isinstance(start, str):
            if dm is None or start not in dm.columns:
                raise ConversionError([Issue("error", f"epoch {ep['epoch']} starts at DM.{start}, "
                                             "which is not available", file="study.yaml")])
            col = subjects.map(dm.drop_duplicates("USUBJID").set_index("USUBJID")[start])
        else:
            if sv is None:
                raise ConversionError([Issue("error", f"epoch {ep['epoch']} starts at a visit: "
                                             "build SV (mappings/sv.yaml) first", file="study.yaml")])
            lookup = ctx.study.visit_lookup()
            v = lookup.get(str(start.get("visit", "")).strip().upper())
            if v is None:
                raise ConversionError([Issue("error", f"epoch {ep['epoch']}: unknown visit "
                                             f"{start.get('visit')}", file="study.yaml")])
            rows = sv[sv["VISITNUM"] == v.visitnum].drop_duplicates("USUBJID").set_index("USUBJID")
            col = subjects.map(rows["SVSTDTC"])
        out[ep["epoch"]] = col.fillna("").astype(str)
    return out


def _compare_at_common_precision(dtc: pd.Series, ref: pd.Series) -> pd.Series:
    """Order two --DTC values: by date-time when both have a time, else by calendar date.

    A date-only record on the day something starts (e.g. first dose) counts as on that day.
    """
    both_times = dtc.str.contains("T") & ref.str.contains("T")
    full = dates.compare_dtc(dtc, ref)
    day = dates.compare_dtc(dtc.str[:10], ref.str[:10])
    return full.where(both_times, day)


@derivation("epoch", args={"date": _S, "visitnum": _S}, required=("date",),
            inputs=("date", "visitnum"))
def epoch(ctx, variable, spec):
    """EPOCH: the schedule's epoch for a scheduled visit; otherwise the last epoch that started on
    or before the record's date (date precision). Undeterminable (partial date) → empty."""
    out = pd.Series("", index=ctx.index, dtype=object)
    if spec.get("visitnum"):
        table = {v.visitnum: v.epoch for v in ctx.study.visits if v.epoch}
        out = ctx.values[spec["visitnum"]].map(table).fillna("").astype(str)
    todo = out == ""
    if not todo.any() or not ctx.study.epochs:
        return out
    starts = epoch_starts(ctx, variable).set_index("USUBJID")
    subj = _usubjid(ctx)[todo]
    date = _text(ctx.values[spec["date"]])[todo]
    result = pd.Series("", index=subj.index, dtype=object)
    unknown = pd.Series(False, index=subj.index)
    for ep in ctx.study.epochs:
        start = subj.map(starts[ep["epoch"]]).fillna("")
        cmp = _compare_at_common_precision(date, start)
        result = result.where(~((cmp >= 0).fillna(False).astype(bool) & (start != "")), ep["epoch"])
        # A partial date that may fall either side of an epoch start leaves EPOCH undetermined.
        unknown |= cmp.isna() & (start != "") & (date != "")
    result[unknown] = ""
    out[todo] = result
    return out


@derivation("last_before_exposure", args={"by": _L, "ties": _L, "date": _S, "result": _S,
                                           "status": _S},
            required=("by", "date", "result"), inputs=("by", "ties", "date", "result", "status"))
def last_before_exposure(ctx, variable, spec):
    """--LOBXFL: 'Y' on the last record with a result on or before DM.RFXSTDTC, per subject and `by`.

    A date-only record on the day of first exposure counts as before it (pre-dose by protocol).
    Records whose order against RFXSTDTC cannot be determined (partial dates) are not candidates.
    Exactly one per subject and `by` group: ties on date are broken by `ties` (the last wins).
    """
    ref = subject_value(ctx, variable, "DM", "RFXSTDTC")
    dtc = _text(ctx.values[spec["date"]])
    has_result = _text(ctx.values[spec["result"]]) != ""
    if spec.get("status"):
        has_result &= _text(ctx.values[spec["status"]]) != "NOT DONE"
    before = (_compare_at_common_precision(dtc, ref) <= 0).fillna(False).astype(bool)
    cand = has_result & before & (ref != "")
    frame = pd.DataFrame({"USUBJID": _usubjid(ctx), "dtc": dtc}, index=ctx.index)
    keys = ["USUBJID"]
    for i, var in enumerate(spec["by"]):
        frame[f"b{i}"] = _text(ctx.values[var])
        keys.append(f"b{i}")
    ties = []
    for i, var in enumerate(spec.get("ties", [])):
        frame[f"t{i}"] = ctx.values[var]
        ties.append(f"t{i}")
    frame["__line__"] = ctx.frame["__line__"]
    frame = frame[cand].sort_values(keys + ["dtc"] + ties + ["__line__"], kind="stable")
    last = frame.groupby(keys, sort=False).tail(1).index
    out = pd.Series("", index=ctx.index, dtype=object)
    out[last] = "Y"
    return out


# -- demographics ------------------------------------------------------------------------------
@derivation("age", args={"birth": _S, "reference": _S}, required=("birth", "reference"),
            inputs=("birth", "reference"))
def age(ctx, variable, spec):
    """AGE in completed years from BRTHDTC at the reference date (e.g. RFICDTC). With a partial birth
    date the age is given only when every possible completion gives the same age."""
    years, ambiguous = dates.age_in_years(_text(ctx.values[spec["birth"]]),
                                          _text(ctx.values[spec["reference"]]))
    if ambiguous.any():
        ctx.report_values(variable, _text(ctx.values[spec["birth"]])[ambiguous],
                          lambda v: f"age cannot be derived from partial birth date {shown(v)}",
                          severity="warning")
    return years.astype("Float64").astype(float)


def _arm_table(ctx):
    return {a["armcd"]: a["arm"] for a in ctx.study.arms}


@derivation("planned_arm_code", args={"from": _S})
def planned_arm_code(ctx, variable, spec):
    """ARMCD: a single-arm study assigns every subject to its one arm (study.yaml `arms:`)."""
    arms = ctx.study.arms
    if len(arms) != 1:
        ctx.issues.error("planned_arm_code needs exactly one arm in study.yaml; with several arms "
                         "map ARMCD from the randomisation data with `from:` and `codelist`",
                         **ctx.where(variable))
        return pd.Series("", index=ctx.index, dtype=object)
    return pd.Series(arms[0]["armcd"], index=ctx.index, dtype=object)


# SDTMIG 3.3+: a subject without a planned or actual arm has the arm variables empty and the reason
# in ARMNRS (codelist ARMNULRS, C142179); the old pseudo-arm codes are reasons, not arms.
PSEUDO_ARMS = {"SCRNFAIL": "SCREEN FAILURE", "NOTASSGN": "NOT ASSIGNED", "NOTTRT": "ASSIGNED, NOT TREATED",
               "UNPLAN": "UNPLANNED TREATMENT"}
NOT_TREATED = "ASSIGNED, NOT TREATED"


@derivation("arm_name", args={"armcd": _S}, required=("armcd",), inputs=("armcd",))
def arm_name(ctx, variable, spec):
    """ARM/ACTARM: the description of an arm code from study.yaml; empty where the code is empty."""
    table = _arm_table(ctx)
    codes = _text(ctx.values[spec["armcd"]])
    is_pseudo = codes.str.upper().isin(list(PSEUDO_ARMS)) & ~codes.isin(list(table))
    pseudo = codes[is_pseudo]
    if len(pseudo):
        ctx.report_values(variable, pseudo, lambda v: (
            f"arm code {shown(v)} is a reason for no arm, not an arm: SDTMIG 3.4 leaves "
            f"{spec['armcd']} and {variable} empty and gives the reason in ARMNRS "
            f"({shown(PSEUDO_ARMS[v.upper()])})"))
    unknown = codes[(codes != "") & ~codes.isin(list(table)) & ~is_pseudo]
    if len(unknown):
        ctx.report_values(variable, unknown, lambda v: f"arm code {shown(v)} is not in study.yaml `arms:`")
    return codes.map(table).fillna("").astype(str)


@derivation("actual_arm_code", args={"planned": _S, "exposure": _S, "exposure_where": COND},
            required=("planned", "exposure"), inputs=("planned",))
def actual_arm_code(ctx, variable, spec):
    """ACTARMCD: the planned arm for subjects with at least one exposure record in the source
    `exposure` (optionally filtered by `exposure_where`); empty for an assigned subject never
    treated, whose reason ARMNRS gives ('ASSIGNED, NOT TREATED', SDTMIG 3.4): without an ARMNRS
    rule that is an error saying what to add, never a pseudo-arm code."""
    from . import conditions
    src = ctx.mapping.sources.get(spec["exposure"])
    if src is None or spec["exposure"] not in ctx.raw:
        ctx.issues.error(f"unknown exposure source '{spec['exposure']}'", **ctx.where(variable))
        return pd.Series("", index=ctx.index, dtype=object)
    raw = ctx.raw[spec["exposure"]]
    if spec.get("exposure_where"):
        raw = raw[conditions.evaluate(spec["exposure_where"], lambda c: raw[c], raw.index)]
    keys = src.key
    treated = raw[keys].astype(str).drop_duplicates().assign(__treated__=True)
    mine = pd.DataFrame({k: ctx.frame[f"{ctx.mapping.primary}.{k}"].astype(str) for k in keys})
    flag = pd.Series(mine.merge(treated, on=keys, how="left")["__treated__"].fillna(False)
                     .astype(bool).to_numpy(), index=ctx.index)
    planned = _text(ctx.values[spec["planned"]])
    untreated = ~flag & (planned != "")
    if untreated.any() and "ARMNRS" not in {r.variable for r in ctx.mapping.rules}:
        ctx.issues.error(
            f"subjects assigned to an arm but never treated ({ctx.raw_lines(untreated)}): SDTMIG 3.4 "
            f"leaves {variable} and ACTARM empty and gives the reason in ARMNRS; add `ARMNRS: "
            f"{{derive: arm_null_reason, planned: {spec['planned']}, actual: {variable}}}` to the mapping",
            **ctx.where(variable))
    return planned.where(~untreated, "")


@derivation("arm_null_reason", args={"planned": _S, "actual": _S}, required=("planned", "actual"),
            inputs=("planned", "actual"))
def arm_null_reason(ctx, variable, spec):
    """ARMNRS: 'ASSIGNED, NOT TREATED' where the planned arm is given and the actual one is empty;
    empty where both are given. Why a subject has no planned arm (SCREEN FAILURE, NOT ASSIGNED) is
    not in the arms: it must come from the data, through `else:`."""
    planned = _text(ctx.values[spec["planned"]])
    actual = _text(ctx.values[spec["actual"]])
    out = pd.Series("", index=ctx.index, dtype=object)
    out[(planned != "") & (actual == "")] = NOT_TREATED
    unplanned = planned == ""
    if unplanned.any() and "else" not in spec:
        ctx.issues.error(f"subjects without a planned arm ({ctx.raw_lines(unplanned)}): why (SCREEN "
                         "FAILURE, NOT ASSIGNED) is not in the arms; give it from the raw data with "
                         "`else: {from: <source>.<column>, codelist: ARMNULRS}`", **ctx.where(variable))
    return out


@derivation("flag_if_present", args={"of": _S}, required=("of",), inputs=("of",))
def flag_if_present(ctx, variable, spec):
    """'Y' where `of` has a value, else empty (e.g. DTHFL from DTHDTC): the IG's Y-or-null flags."""
    return (_text(ctx.values[spec["of"]]) != "").map({True: "Y", False: ""})


@derivation("subject_value", args={"domain": _S, "variable": _S}, required=("domain", "variable"))
def subject_value_derivation(ctx, variable, spec):
    """A value of the subject's record in an already-built domain (e.g. DM.ARM)."""
    return subject_value(ctx, variable, spec["domain"], spec["variable"])


# -- findings ---------------------------------------------------------------------------------
@derivation("test_code")
def test_code(ctx, variable, spec):
    """--TESTCD from the `tests:` dictionary entry the row matched."""
    findings.entry_of(ctx)
    return ctx.tests["testcd"].astype(str)


@derivation("test_name")
def test_name(ctx, variable, spec):
    """--TEST: the CT name paired with the --TESTCD term (same C-code), or the sponsor's `test:`."""
    findings.entry_of(ctx)
    return ctx.tests["test"].astype(str)


@derivation("test_attribute", args={"name": _S}, required=("name",))
def test_attribute(ctx, variable, spec):
    """A per-test constant declared under `set:` of the test entry (e.g. LBCAT, LBMETHOD)."""
    entries = findings.entry_of(ctx)
    table = {i: str(e["set"].get(spec["name"], "")) for i, e in enumerate(ctx.test_entries)}
    return entries.map(table).astype(str)


@derivation("standard_result", args={"result": _S, "unit": _S}, required=("result", "unit"),
            inputs=("result", "unit"))
def standard_result(ctx, variable, spec):
    """--STRESC: the collected result converted to the test's standard unit (censored kept as text)."""
    return findings.standard_result(ctx, variable, ctx.values[spec["result"]], ctx.values[spec["unit"]])


@derivation("standard_numeric", args={"of": _S}, required=("of",), inputs=("of",))
def standard_numeric(ctx, variable, spec):
    """--STRESN: the numeric value of --STRESC; empty for censored ('<5') or text results."""
    return findings.standard_numeric(ctx, variable, ctx.values[spec["of"]])


@derivation("standard_unit", args={"result": _S}, required=("result",), inputs=("result",))
def standard_unit(ctx, variable, spec):
    """--STRESU: the test's standard unit, where there is a standard result."""
    findings.entry_of(ctx)
    has = _text(ctx.values[spec["result"]]) != ""
    return ctx.tests["unit"].astype(str).where(has, "")


@derivation("standard_range", args={"of": _S, "unit": _S}, required=("of", "unit"),
            inputs=("of", "unit"))
def standard_range(ctx, variable, spec):
    """--STNRLO/--STNRHI: a collected range limit converted like the result."""
    factors = findings.conversion_factors(ctx, variable, ctx.values[spec["unit"]])
    from .domain import to_number
    raw = ctx.values[spec["of"]]
    x = to_number(ctx, variable, raw)
    out = pd.Series(findings.converted(ctx, x.to_numpy(dtype=float), factors.to_numpy(dtype=float)),
                    index=x.index)
    lost = out.isna() & x.notna() & (factors < 0)
    if lost.any():
        ctx.report_values(variable, raw[lost], lambda v: f"{shown(v)} has no value in the standard unit "
                          "by its conversion formula")
    beyond = findings.out_of_range(x.to_numpy(dtype=float), out.to_numpy(dtype=float))
    if beyond.any():
        ctx.report_values(variable, raw[beyond], lambda v: f"{shown(v)} is out of the range of numbers "
                          "once converted to the standard unit")
    unitless = findings.no_unit(ctx, ctx.values[spec["unit"]]) & x.notna().to_numpy()
    if unitless.any():
        ctx.report_values(variable, raw[unitless], lambda v: (
            f"{shown(v)} {findings.UNITLESS.format(unit='the standard unit')}"))
    return findings.rounded_like_results(ctx, variable, raw, out.where(~beyond))


@derivation("reference_range_indicator", args={"result": _S, "low": _S, "high": _S},
            required=("result", "low", "high"), inputs=("result", "low", "high"))
def reference_range_indicator(ctx, variable, spec):
    """--NRIND: LOW below the low limit, HIGH above the high limit, NORMAL within (limits inclusive);
    empty without a numeric result or without the limit it would need."""
    res = ctx.values[spec["result"]].astype(float)
    lo = ctx.values[spec["low"]].astype(float)
    hi = ctx.values[spec["high"]].astype(float)
    out = pd.Series("", index=ctx.index, dtype=object)
    known = res.notna() & (lo.notna() | hi.notna())
    out[known] = "NORMAL"
    out[res.notna() & lo.notna() & (res < lo)] = "LOW"
    out[res.notna() & hi.notna() & (res > hi)] = "HIGH"
    return out


# Which derivations work subject by subject (so wait for USUBJID) and read other built domains
# (so cannot run when those failed).
for _name, _domains in {"seq": (), "study_day": ("DM",), "visitnum": ("DM",), "epoch": ("DM", "SV"),
                        "last_before_exposure": ("DM",), "subject_value": ()}.items():
    REGISTRY[_name].subject = True
    REGISTRY[_name].domains = _domains
