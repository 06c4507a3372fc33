"""Loading a domain mapping (`mappings/<domain>.yaml`) and checking it completely before anything runs.

Checks, all reported at once with file and line: YAML syntax; the schema (unknown keys, wrong
types); exactly one way of obtaining each variable; derivation names and their arguments; target
variables known to the IG (or sent to SUPPQUAL); codelists known to the CT; sources and raw columns
that exist.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError, Issue
from ..expression import Expression, ExpressionError
from .schema import (AGGREGATE_SCHEMA, ALGORITHMS, MAPPING_SCHEMA, MELT_FORMS, RULE_KEYS, SUPP_SCHEMA,
                     TABLE_FILE_SCHEMA, node_issues, schema_issues, suggest, table_file)
from ..io.yamlio import LineDict, line_of, load_yaml

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass
class Source:
    alias: str
    files: list[dict]
    line: int
    domain: str | None = None
    key: list[str] = field(default_factory=list)
    where: dict | None = None
    dedupe: str | None = None
    twin_columns: dict | None = None
    melt: dict | None = None
    align: str = "strict"


@dataclass
class Rule:
    variable: str
    spec: dict
    line: int


@dataclass
class Mapping:
    domain: str
    file: str  # as shown to the user
    path: Path
    doc: LineDict
    sources: dict[str, Source]
    primary: str
    tests: dict | None
    rules: list[Rule]
    keys: list[str] | None = None
    sort: list[str] | None = None

    def line(self, *path) -> int | None:
        return line_of(self.doc, list(path))


def load_mapping(path: Path, display: str) -> Mapping:
    doc = load_yaml(path, display)
    issues = schema_issues(doc, MAPPING_SCHEMA, display)
    if issues:
        raise ConversionError(issues)
    sources = {}
    for alias, spec in doc["sources"].items():
        files = spec.get("files") or ([{k: spec[k] for k in ("file", "sep", "encoding", "decimal",
                                                               "header_row", "sheet", "rename", "constants")
                                        if k in spec}]
                                      if "file" in spec else [])
        for at, melt in [(["sources", alias, "melt"], spec.get("melt"))] + [
                (["sources", alias, "files", i, "melt"], f.get("melt"))
                for i, f in enumerate(spec.get("files") or [])]:
            if melt:
                issues += melt_issues(melt, doc, at, display, alias)
        if not files and not spec.get("domain"):
            issues.append(Issue("error", f"source '{alias}' needs `file:`, `files:` or `domain:`",
                                file=display, line=line_of(doc, ["sources", alias])))
        sources[alias] = Source(alias, files, line_of(doc, ["sources", alias]) or 0,
                                domain=spec.get("domain"), key=list(spec.get("key", [])),
                                where=spec.get("where"), dedupe=spec.get("dedupe"),
                                twin_columns=spec.get("twin_columns"), melt=spec.get("melt"),
                                align=spec.get("align", "strict"))
    primary = next(iter(sources))
    if sources[primary].domain:
        issues.append(Issue("error", "the first source is the primary one and must be a raw file",
                            file=display, line=sources[primary].line))
    rules = [Rule(name, spec, line_of(doc, ["variables", name]) or 0)
             for name, spec in doc["variables"].items()]
    if issues:
        raise ConversionError(issues)
    return Mapping(domain=doc["domain"], file=display, path=Path(path), doc=doc, sources=sources,
                   primary=primary, tests=doc.get("tests"), rules=rules, keys=doc.get("keys"),
                   sort=doc.get("sort"))


MELT_GROUPS = ("test", "attr")


def melt_issues(melt: dict, doc, at: list, display: str, alias: str) -> list[Issue]:
    """A melt has one form, and a `pattern:` is a regular expression over column names that names the
    test and the attribute of each column it matches (`(?P<test>...)` and `(?P<attr>...)`)."""
    def error(message, *key):
        return Issue("error", f"source '{alias}' melt: {message}", file=display, line=line_of(doc, at + list(key)))

    forms = [k for k in MELT_FORMS if k in melt]
    if len(forms) != 1:
        given = f"several ({', '.join(forms)})" if forms else "none"
        return [error(f"give exactly one of columns (one column per test, with `value:`), pattern "
                      f"(several columns per test, by name) or groups (several columns per test, listed); "
                      f"given: {given}")]
    form = forms[0]
    if form == "columns" and "value" not in melt:
        return [error("`columns:` needs `value:` (the column that receives each melted value)")]
    if form != "columns" and "value" in melt:
        return [error(f"`value:` goes with `columns:` only; with `{form}:` each attribute is its own column",
                      "value")]
    if form != "pattern":
        return []
    try:
        regex = re.compile(melt["pattern"])
    except re.error as exc:
        return [error(f"pattern {melt['pattern']!r} is not a regular expression: {exc}", "pattern")]
    named = set(regex.groupindex)
    problems = []
    missing = [g for g in MELT_GROUPS if g not in named]
    if missing:
        problems.append(f"needs the named group{'s' if len(missing) > 1 else ''} "
                        + ", ".join(f"(?P<{g}>...)" for g in missing))
    extra = sorted(named - set(MELT_GROUPS))
    if extra:
        problems.append(f"unknown named group{'s' if len(extra) > 1 else ''} {', '.join(extra)}")
    if problems:
        return [error(f"pattern {melt['pattern']!r} " + " and ".join(problems)
                      + "; allowed named groups: test (the test a column belongs to), attr (which of its "
                      "attributes it holds)", "pattern")]
    return []


def check_rule(mapping: Mapping, name: str, spec, path: list, registry, issues: list, depth=0):
    """Structural check of one variable rule (recursively for `else`)."""
    display = mapping.file
    line = line_of(mapping.doc, path)
    if not isinstance(spec, dict):
        issues.append(Issue("error", f"{name}: a rule must be a mapping like `{{from: src.COL}}`",
                            file=display, line=line))
        return
    if "derive" in spec and spec["derive"] not in registry:
        issues.append(Issue("error", f"{name}: unknown derivation '{spec['derive']}'"
                            + suggest(spec["derive"], registry.keys())
                            + f"; known: {', '.join(sorted(registry))}",
                            file=display, line=line_of(mapping.doc, path + ["derive"])))
        return
    algos = ["derive"] if "derive" in spec else [k for k in ALGORITHMS if k in spec]
    if "derive" in spec:  # a derivation's own arguments may share a name with an algorithm (date:)
        clash = [k for k in ALGORITHMS if k in spec and k != "derive"
                 and k not in getattr(registry.get(spec["derive"]), "args", {})]
        algos += clash
    if len(algos) != 1:
        what = "no way of obtaining the value" if not algos else f"several ({', '.join(algos)})"
        issues.append(Issue("error", f"{name}: {what}; give exactly one of {', '.join(ALGORITHMS)}",
                            file=display, line=line))
        return
    known = dict(RULE_KEYS)
    deriv = None
    if "derive" in spec:
        deriv = registry.get(spec["derive"])
        if deriv is None:
            issues.append(Issue("error", f"{name}: unknown derivation '{spec['derive']}'"
                                + suggest(spec["derive"], registry.keys())
                                + f"; known: {', '.join(sorted(registry))}",
                                file=display, line=line_of(mapping.doc, path + ["derive"])))
            return
        known.update(deriv.args)
    for key in spec:
        if key not in known:
            extra = f"; derivation '{spec['derive']}' takes: {', '.join(deriv.args) or 'no arguments'}" \
                if deriv else ""
            issues.append(Issue("error", f"{name}: unknown key '{key}'{suggest(key, known)}; allowed keys: "
                                f"{', '.join(RULE_KEYS)}{extra}", file=display,
                                line=line_of(mapping.doc, path + [key])))
    issues += node_issues({k: spec[k] for k in spec if k in known}, {k: known[k] for k in spec if k in known},
                          display, mapping.doc, path, prefix=f"{name}.")
    if deriv:
        for req in deriv.required:
            if req not in spec:
                issues.append(Issue("error", f"{name}: derivation '{spec['derive']}' needs `{req}:`",
                                    file=display, line=line))
    for agg in ("first_date", "last_date"):
        if isinstance(spec.get(agg), dict):
            found = node_issues(spec[agg], AGGREGATE_SCHEMA, display, mapping.doc, path + [agg],
                                prefix=f"{name}.{agg}.")
            issues += found
            if not found:
                _check_formats(spec[agg], mapping, name, path + [agg], issues)
    for key in ("synonyms", "map"):
        if table_file(spec.get(key)):
            issues += node_issues(spec[key], TABLE_FILE_SCHEMA, display, mapping.doc, path + [key],
                                  prefix=f"{name}.{key}.")
    if isinstance(spec.get("supp"), dict):
        issues += node_issues(spec["supp"], SUPP_SCHEMA, display, mapping.doc, path + ["supp"],
                              prefix=f"{name}.supp.")
    if "date" in spec and "derive" not in spec:
        _check_formats(spec, mapping, name, path, issues)
    if "else" in spec:
        if depth >= MAX_ELSE:
            issues.append(Issue("error", f"{name}: `else:` nested more than {MAX_ELSE} deep",
                                file=display, line=line_of(mapping.doc, path + ["else"])))
        else:
            check_rule(mapping, f"{name}.else", spec["else"], path + ["else"], registry, issues, depth + 1)


MAX_ELSE = 5


def _check_formats(spec: dict, mapping: Mapping, name: str, path: list, issues: list) -> None:
    """Date formats and unknown tokens are checked before anything runs, with the line naming them."""
    from .. import dates
    unknown = spec.get("unknown") or dates.DEFAULT_UNKNOWN
    try:
        dates.check_format("yyyy", "date", unknown)
    except ValueError as exc:
        issues.append(Issue("error", f"{name}.unknown: {exc}", file=mapping.file,
                            line=line_of(mapping.doc, path + ["unknown"])))
        return
    for key, kind in (("format", "date"), ("time_format", "time")):
        value = spec.get(key)
        for fmt in (value if isinstance(value, list) else [value] if value else []):
            try:
                dates.check_format(str(fmt), kind, unknown, spec.get("year_window"))
            except ValueError as exc:
                issues.append(Issue("error", f"{name}.{key}: {exc}", file=mapping.file,
                                    line=line_of(mapping.doc, path + [key])))


def source_refs(spec: dict) -> list[tuple[str, str]]:
    """Every `alias.COLUMN` a rule reads, as (alias, column)."""
    refs = []

    def add(text):
        if isinstance(text, str) and "." in text:
            alias, col = text.split(".", 1)
            refs.append((alias, col))

    for key in ("from", "date"):
        if "derive" in spec and key == "date":
            continue
        val = spec.get(key)
        for item in (val if isinstance(val, list) else [val]):
            add(item)
    for name in expression_names(spec):
        add(name)
    for arg in ("visit", "source_column", "result_column"):
        if isinstance(spec.get(arg), str):
            add(spec[arg])
    if isinstance(spec.get("else"), dict):
        refs.extend(source_refs(spec["else"]))
    return refs


def target_refs(spec: dict, registry) -> set[str]:
    """Target variables a rule needs computed first (template placeholders, derivation inputs)."""
    deps = {name for name in expression_names(spec) if "." not in name}
    if "derive" in spec and spec["derive"] in registry:
        deps |= set(registry[spec["derive"]].requires(spec))
    if isinstance(spec.get("else"), dict):
        deps |= target_refs(spec["else"], registry)
    return deps


def expressions_of(spec: dict) -> list[tuple[str, str]]:
    """(key, expression text) of every expression a rule holds itself: a text `where:`, `compute:`
    and each {part} of a `template:` (its `else:` is a rule of its own)."""
    out = []
    if isinstance(spec.get("where"), str):
        out.append(("where", spec["where"]))
    if isinstance(spec.get("compute"), str):
        out.append(("compute", spec["compute"]))
    if isinstance(spec.get("template"), str):
        out += [("template", part) for part in PLACEHOLDER.findall(spec["template"])]
    return out


def expression_names(spec: dict) -> list[str]:
    """The names a rule's conditions and expressions read (map conditions: their keys)."""
    names = [k for k in spec.get("where") or {}] if isinstance(spec.get("where"), dict) else []
    for _, text in expressions_of(spec):
        try:
            names += Expression(text).names
        except ExpressionError:
            pass   # the schema check reports it with its line
    return names
