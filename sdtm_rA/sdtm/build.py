"""One domain, from checked mapping to conformed dataset plus its SUPP-- qualifiers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import dates
from . import findings
from .conform import CONTROL, check_ascii, conform, control_message, transliterate, untransliterable
from .derivations import REGISTRY
from .domain import (DomainContext, RuleFailed, check_references, evaluate_rule, evaluation_order,
                     read_sources)
from ..errors import ConversionError, Issue, Issues, shown
from .findings import number_texts
from .mapping import Mapping, check_rule
from .schema import suggest
from ..io.sources import FILE, LINE
from .suppqual import build_supp


def check_mapping(mapping: Mapping, ig, ct) -> list[Issue]:
    """Everything that can be checked without the raw data: rules, derivations, targets, codelists."""
    issues: list[Issue] = []
    if not ig.has(mapping.domain):
        issues.append(Issue("error", f"domain '{mapping.domain}' is not in SDTMIG {ig.version}",
                            file=mapping.file, line=mapping.line("domain")))
        return issues
    spec = ig.dataset(mapping.domain)
    for rule in mapping.rules:
        check_rule(mapping, rule.variable, rule.spec, ["variables", rule.variable], REGISTRY, issues)
        is_supp = bool(rule.spec.get("supp")) if isinstance(rule.spec, dict) else False
        if spec.model_variable(rule.variable) is None and not is_supp:
            issues.append(Issue("error", f"{rule.variable} is not a {mapping.domain} variable in "
                                f"SDTMIG {ig.version} nor allowed by the SDTM model for its class"
                                + suggest(rule.variable, spec.allowed_names())
                                + f"; mark it `supp: {{label: ...}}` to send it to SUPP{mapping.domain}",
                                file=mapping.file, line=rule.line, value=rule.variable))
        if is_supp and len(_qnam(rule)) > 8:
            issues.append(Issue("error", f"{rule.variable}: QNAM '{_qnam(rule)}' is longer than 8 "
                                "characters; give `supp: {qnam: ...}`", file=mapping.file, line=rule.line))
        spec_node = rule.spec
        depth = 0
        while isinstance(spec_node, dict) and depth < 6:
            for key in ("transliterate", "supp"):
                if depth and key in spec_node:   # read from the variable's own rule only
                    path = ("variables", rule.variable) + ("else",) * depth + (key,)
                    issues.append(Issue("error", f"{rule.variable}: `{key}:` applies to the whole "
                                        "variable: give it beside the first rule, not under `else:`",
                                        file=mapping.file, line=mapping.line(*path) or rule.line))
            if "codelist" in spec_node:
                try:
                    ct.codelist(spec_node["codelist"])
                except KeyError as exc:
                    issues.append(Issue("error", f"{rule.variable}: {exc.args[0]}", file=mapping.file,
                                        line=mapping.line("variables", rule.variable, "codelist")
                                        or rule.line, value=spec_node["codelist"]))
            spec_node = spec_node.get("else")
            depth += 1
    rules = {r.variable: r for r in mapping.rules}
    for i, entry in enumerate((mapping.tests or {}).get("entries") or []):
        for name in (entry.get("set") or {}):   # a misspelt name would become a column of its own
            rule = rules.get(str(name))
            if rule is not None and not _reads_test_attribute(rule.spec, name):
                issues.append(Issue("error", f"tests.entries.{i}.set: {name} is also mapped by its rule "
                                    f"(line {rule.line}), which would win over `set:` without a word; remove "
                                    f"one, or read the constant with {{derive: test_attribute, name: {name}}}",
                                    file=mapping.file, line=mapping.line("tests", "entries", i, "set", name),
                                    value=str(name)))
            elif spec.model_variable(str(name)) is None:
                issues.append(Issue("error", f"tests.entries.{i}.set: {name} is not a {mapping.domain} "
                                    f"variable in SDTMIG {ig.version}" + suggest(name, spec.allowed_names()),
                                    file=mapping.file, line=mapping.line("tests", "entries", i, "set", name),
                                    value=str(name)))
    return issues


def _reads_test_attribute(spec, name) -> bool:
    """The rule (or one of its `else:` branches) reads the tests' `set:` constant of `name`."""
    while isinstance(spec, dict):
        if spec.get("derive") == "test_attribute" and spec.get("name") == name:
            return True
        spec = spec.get("else")
    return False


def _transliterate(ctx, names: set[str]) -> None:
    """`transliterate: true` variables made ASCII, per distinct value. A character with no ASCII form
    is an error naming the raw lines: dropping it would change the text."""
    for name in sorted(names):
        values = ctx.values.get(name)
        if values is None or pd.api.types.is_numeric_dtype(values):
            continue
        text = values.fillna("").astype(str)
        codes, uniques = pd.factorize(text)
        out = np.array([transliterate(v) for v in uniques], dtype=object)
        bad = np.flatnonzero([not v.isascii() for v in out])
        if len(bad):
            ctx.report_values(name, text[np.isin(codes, bad)], lambda v: (
                f"{shown(v)}: '{untransliterable(v)}' (U+{ord(untransliterable(v)):04X}) has no ASCII "
                "transliteration; correct the raw value (XPT v5 takes ASCII only)"))
        ctx.values[name] = pd.Series(out[codes], index=text.index, dtype=text.dtype)


def check_values(ctx, supp_only: set[str]) -> None:
    """What the validator would call an error in a record, caught while the raw lines are known.
    Works on distinct values; each check names its validator rule."""
    _check_text(ctx, supp_only)
    _check_identifiers(ctx)
    if ctx.domain == "DM":
        _check_dm(ctx)


def _check_text(ctx, supp_only: set[str]) -> None:
    """--DTC text that is not ISO 8601 (SD0206); control characters in SUPP-- values (SD0131;
    conform checks the domain's own variables, which it has in hand anyway)."""
    for name, values in ctx.values.items():
        dtc = name.endswith("DTC") and ctx.spec.model_variable(name) is not None
        if pd.api.types.is_numeric_dtype(values) or not (dtc or name in supp_only):
            continue
        uniq = pd.Series(pd.unique(values.to_numpy()), dtype=object).dropna().astype(str)
        bad = set(uniq[uniq.str.contains(CONTROL, regex=True)])
        if bad:
            ctx.report_values(name, values[values.isin(bad)], control_message)
        if dtc:
            not_iso = set(uniq[~dates.is_iso8601(uniq).to_numpy()])
            if not_iso:
                ctx.report_values(name, values[values.isin(not_iso)], lambda v: (
                    f"{shown(v)} is not ISO 8601 date/time text; read raw dates with `date:` and "
                    "`format:`"))


def _check_identifiers(ctx) -> None:
    """STUDYID and DOMAIN as the study and the mapping say (SD0402, SD0104), every subject in DM
    (SD0401), --SEQ unique per subject when it is not derived by `seq` (SD0301)."""
    mapped = {r.variable: r.spec for r in ctx.mapping.rules}
    for name, expected in (("STUDYID", ctx.study.study_id), ("DOMAIN", ctx.domain)):
        if name in mapped and name in ctx.values:
            text = ctx.values[name].fillna("").astype(str)
            other = set(pd.unique(text.to_numpy())) - {expected}
            if other:
                ctx.report_values(name, text[text.isin(other)], lambda v, name=name, expected=expected: (
                    f"{name} {shown(v)} is not {shown(expected)} (" + ("study.yaml `study: {id: ...}`"
                    if name == "STUDYID" else "the mapping's `domain:`") + ")"))
    if "USUBJID" not in ctx.values:
        return
    usubjid = ctx.values["USUBJID"].fillna("").astype(str)
    dm = ctx.built.get("DM")
    if ctx.domain != "DM" and dm is not None and "USUBJID" in dm.columns:
        absent = set(pd.unique(usubjid.to_numpy())) - set(dm["USUBJID"].astype(str)) - {""}
        if absent:
            ctx.report_values("USUBJID", usubjid[usubjid.isin(absent)], lambda v: (
                f"subject {shown(v)} is not in DM: every record belongs to a subject of DM"))
    seq = f"{ctx.domain}SEQ"
    if seq in ctx.values and mapped.get(seq, {}).get("derive") != "seq":
        numbers = ctx.values[seq]
        frame = pd.DataFrame({"u": usubjid, "s": numbers})
        twice = frame.duplicated(keep=False).to_numpy() & numbers.notna().to_numpy()
        if twice.any():
            keys = usubjid[twice] + " " + number_texts(numbers[twice])
            ctx.report_values(seq, keys, lambda v: (
                f"{seq} {v.rsplit(' ', 1)[1]} is repeated for subject {shown(v.rsplit(' ', 1)[0])}: "
                f"{seq} must be unique per USUBJID (use `derive: seq`)"))


def _check_dm(ctx) -> None:
    """One record per USUBJID (SD0403) and one subject per SUBJID (SD0404)."""
    if "USUBJID" not in ctx.values:
        return
    usubjid = ctx.values["USUBJID"].fillna("").astype(str)
    twice = usubjid.duplicated(keep=False) & (usubjid != "")
    if twice.any():
        ctx.report_values("USUBJID", usubjid[twice], lambda v: (
            f"subject {shown(v)} has several DM records: DM must have one record per USUBJID"))
    if "SUBJID" in ctx.values:
        subjid = ctx.values["SUBJID"].fillna("").astype(str)
        pairs = pd.DataFrame({"s": subjid, "u": usubjid})[subjid != ""].drop_duplicates()
        owners = pairs.groupby("s")["u"].agg(lambda u: ", ".join(shown(x) for x in sorted(u)[:5]))
        counts = pairs["s"].value_counts()
        shared = set(counts[counts > 1].index)
        if shared:
            ctx.report_values("SUBJID", subjid[subjid.isin(shared)], lambda v: (
                f"SUBJID {shown(v)} is the SUBJID of {counts[v]} subjects ({owners[v]}): SUBJID "
                "must be unique within the study"))


def _why_absent(name, lines: dict, failed: set, mapping) -> str:
    """Why a variable a rule reads has no values: not mapped, or mapped but its own rule failed (a
    follow-on error: fix that one first)."""
    if name not in lines:
        return "which is not mapped"
    if name in failed:
        return (f"which could not be computed (its rule at {mapping.file}:{lines[name]} failed; "
                "fix that first)")
    return f"which is computed after it (rule at {mapping.file}:{lines[name]})"


def _qnam(rule) -> str:
    supp = rule.spec.get("supp")
    return supp.get("qnam", rule.variable) if isinstance(supp, dict) else rule.variable


def prepare_domain(mapping: Mapping, study, ig, ct, built: dict) -> DomainContext:
    """Read the domain's raw sources and check every column its rules name (nothing built yet)."""
    ctx = DomainContext(mapping, study, ig.dataset(mapping.domain), ct, built, Issues(), REGISTRY)
    read_sources(ctx)
    ref_issues = check_references(ctx)
    if ref_issues:
        raise ConversionError(ref_issues)
    return ctx


def build_domain(mapping: Mapping, study, ig, ct, built: dict, issues: Issues,
                 ctx: DomainContext | None = None):
    """→ (dataset, supp dataset or None). Raises ConversionError with every error of this domain."""
    spec = ig.dataset(mapping.domain)
    if ctx is None:
        ctx = prepare_domain(mapping, study, ig, ct, built)
    local = ctx.issues
    findings.assign_tests(ctx)
    order_issues: list = []
    order = evaluation_order(mapping, REGISTRY, order_issues)
    if order_issues:
        raise ConversionError(order_issues)
    mapped = {r.variable for r in mapping.rules}
    for name, value in (("STUDYID", study.study_id), ("DOMAIN", mapping.domain)):
        if name not in mapped:
            ctx.values[name] = pd.Series(value, index=ctx.index, dtype=object)
    lines = {r.variable: r.line for r in mapping.rules}
    failed: set[str] = set()
    for rule in order:
        try:
            ctx.values[rule.variable] = evaluate_rule(ctx, rule.variable, rule.spec,
                                                      ("variables", rule.variable))
        except RuleFailed:
            failed.add(rule.variable)
        except KeyError as exc:
            failed.add(rule.variable)
            why = _why_absent(exc.args[0], lines, failed, mapping)
            local.error(f"{rule.variable}: needs '{exc.args[0]}', {why}", file=mapping.file, line=rule.line)
    issues.extend(local.items)
    if local.errors:
        raise ConversionError(local.errors)
    # Per-test constants (`set:` in the tests dictionary) fill variables the mapping left out.
    if ctx.tests is not None:
        for name in sorted({k for e in ctx.test_entries for k in e["set"]}):
            if name not in ctx.values:
                table = {i: str(e["set"].get(name, "")) for i, e in enumerate(ctx.test_entries)}
                ctx.values[name] = ctx.tests["entry"].map(table).astype(str)
    before = len(local.items)
    _transliterate(ctx, {r.variable for r in mapping.rules if r.spec.get("transliterate")})
    check_values(ctx, {r.variable for r in mapping.rules if r.spec.get("supp")})
    found = local.items[before:]
    issues.extend(found)
    if any(i.severity == "error" for i in found):
        raise ConversionError([i for i in found if i.severity == "error"])
    supp_rules = [r for r in mapping.rules if r.spec.get("supp")]
    standard = {k: v for k, v in ctx.values.items()
                if k not in {r.variable for r in supp_rules if spec.model_variable(r.variable) is None}}
    data = pd.DataFrame(standard, index=ctx.index)
    for r in supp_rules:  # a standard variable marked supp goes to SUPP only
        data = data.drop(columns=[r.variable], errors="ignore")
    if "DOMAIN" not in data.columns:
        data.insert(0, "DOMAIN", mapping.domain)
    if "STUDYID" not in data.columns:
        data.insert(0, "STUDYID", study.study_id)
    origin = ctx.frame[FILE].astype(str) + " line " + ctx.frame[LINE].astype(str)
    local2 = Issues()
    qualifiers = {}
    for r in supp_rules:
        cfg = r.spec["supp"] if isinstance(r.spec["supp"], dict) else {}
        label = cfg.get("label") or (spec.model_variable(r.variable).label if spec.model_variable(r.variable) else r.variable)
        qualifiers[cfg.get("qnam", r.variable)] = {"values": ctx.values[r.variable], "label": label,
                                                    "orig": cfg.get("orig", "CRF"),
                                                    "eval": cfg.get("eval", "")}
    where = {"file": mapping.file, "lines": {r.variable: r.line for r in mapping.rules},
             "keys_line": mapping.line("keys")}
    conformed = conform(mapping.domain, data, spec, local2, where=where,
                        row_origin=origin, keys=mapping.keys, sort=mapping.sort)
    issues.extend(local2.items)
    if local2.errors:
        raise ConversionError(local2.errors)
    supp = None
    if qualifiers:
        # SUPP rows follow the parent rows; align qualifier values to the conformed order via SEQ.
        base = data.copy()
        supp = build_supp(mapping.domain, base, qualifiers)
        supp_spec = ig.dataset(f"SUPP{mapping.domain}")
        local3 = Issues()
        check_ascii(f"SUPP{mapping.domain}", supp, local3, {"file": mapping.file})
        issues.extend(local3.items)
        if local3.errors:
            raise ConversionError(local3.errors)
        supp = supp[[v.name for v in supp_spec.variables if v.name in supp.columns]]
    return conformed, supp
