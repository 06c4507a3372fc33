"""Building one SDTM domain from its mapping: sources → one frame → each variable by its rule.

The named mapping algorithms (assign, constant, template, first non-missing, date, first/last date of
a related table, recode through a codelist, derivation) are evaluated column-wise on the whole frame.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import conditions
from .. import dates
from ..expression import BOOL, DATE, NUMBER, TEXT, Expression, ExpressionError, as_text
from ..errors import ConversionError, Issue, Issues, rows_text, shown
from .mapping import Mapping, expressions_of, source_refs, target_refs
from ..io.sources import (FILE, LINE, MeltError, columns_text, drop_twin_columns, melt, read_table,
                      report_duplicates)
from .schema import TABLE_FILE_DEFAULTS, table_file
from ..io.yamlio import load_yaml

REPORTED_VALUES = 20   # distinct offending values listed one by one, per variable and problem


def raw_lines(frame: pd.DataFrame, mask) -> str:
    """'raw/lb.csv lines 3, 9' for the rows in `mask` (row labels, or booleans over `frame` or aligned
    to it), grouped by file."""
    if isinstance(mask, pd.Series) and mask.dtype == bool:
        labels = mask.index[mask.to_numpy()]
    elif isinstance(mask, np.ndarray) and mask.dtype == bool:
        labels = frame.index[mask]
    else:
        labels = pd.Index(mask)
    return raw_lines_per(frame, labels, np.zeros(len(labels), dtype=np.int64), 1)[0]


def raw_lines_per(frame: pd.DataFrame, labels, groups: np.ndarray, n: int) -> list[str]:
    """raw_lines of n groups of rows at once (row `labels[i]` is in group `groups[i]`; a row may be
    in several): one sort instead of a pass over the frame per group, for the 100,000s of distinct
    bad values a wrongly mapped column can hold."""
    pos = frame.index.get_indexer(labels)
    if (pos < 0).any():
        raise KeyError(f"rows not in the frame: {list(pd.Index(labels)[pos < 0][:5])}")
    f_codes, f_names = pd.factorize(frame[FILE].iloc[pos], sort=True)
    f_names = f_names.tolist()
    lines = frame[LINE].iloc[pos].to_numpy(dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    order = np.lexsort((lines, f_codes, groups))
    g, f, line = groups[order], f_codes[order], lines[order]
    starts = np.flatnonzero(np.r_[len(g) > 0, (g[1:] != g[:-1]) | (f[1:] != f[:-1])])
    parts: list[list[str]] = [[] for _ in range(n)]
    for a, b in zip(starts.tolist(), np.r_[starts[1:], len(g)].tolist()):
        parts[g[a]].append(f"{f_names[f[a]]} {rows_text(line[a:b].tolist())}")
    return ["; ".join(p) for p in parts]


class DomainContext:
    """What a rule or derivation may look at while a domain is being built."""

    def __init__(self, mapping: Mapping, study, spec, ct, built: dict, issues: Issues, registry):
        self.mapping = mapping
        self.study = study
        self.spec = spec
        self.ct = ct
        self.built = built
        self.issues = issues
        self.registry = registry
        self.raw: dict[str, pd.DataFrame] = {}
        self.frame: pd.DataFrame | None = None
        self.values: dict[str, pd.Series] = {}
        self.tests: pd.DataFrame | None = None
        self.supp: dict[str, dict] = {}
        self._joined: set[str] = set()
        self._table_files: dict = {}     # codelist files read by `synonyms:`/`map:`, by file and options
        # Rows an `else:` fallback is computed for; problems elsewhere are not the user's concern.
        self.active: pd.Series | None = None

    # -- where things come from -------------------------------------------------------------
    @property
    def domain(self) -> str:
        return self.mapping.domain

    @property
    def index(self):
        return self.frame.index

    def where(self, variable: str, *path) -> dict:
        rule_line = self.mapping.line("variables", variable, *path) if variable else None
        return {"file": self.mapping.file, "line": rule_line, "domain": self.domain,
                "variable": variable}

    def raw_lines(self, mask) -> str:
        return raw_lines(self.frame, mask)

    def raw_lines_per(self, labels, groups, n) -> list[str]:
        return raw_lines_per(self.frame, labels, groups, n)

    def report_values(self, variable: str, bad: pd.Series, message, severity="error", path=()):
        """One issue per distinct offending value, with every raw line that carries it (the rows
        grouped by value in one sort: a column can hold 100,000s of distinct bad values); past
        REPORTED_VALUES distinct values, one more issue counts the rest and shows three of them, so
        that a wrong column does not flood the report."""
        bad = bad.fillna("").astype(str)
        if self.active is not None:
            bad = bad[self.active.reindex(bad.index, fill_value=False).to_numpy()]
        codes, values = pd.factorize(bad)
        values = values.tolist()
        order = sorted(range(len(values)), key=values.__getitem__)
        shown_ids, rest = order[:REPORTED_VALUES], order[REPORTED_VALUES:]
        if rest:       # the lines of the values shown only: the others are counted
            keep = np.isin(codes, shown_ids)
            remap = np.full(len(values), -1)
            remap[shown_ids] = np.arange(len(shown_ids))
            lines = raw_lines_per(self.frame, bad.index[keep], remap[codes[keep]], len(shown_ids))
        else:
            lines = raw_lines_per(self.frame, bad.index, codes, len(values))
            remap = np.arange(len(values))
        at = self.where(variable, *path)
        for i in shown_ids:
            text = message(values[i]) if callable(message) else message
            getattr(self.issues, severity)(f"{text} ({lines[remap[i]]})", value=values[i], **at)
        if rest:
            records = int(np.isin(codes, rest).sum())
            examples = ", ".join(shown(values[i]) for i in rest[:3])
            getattr(self.issues, severity)(
                f"{len(rest)} more distinct values with problems of this kind in {records} records, "
                f"not listed one by one; e.g. {examples}", **at)

    # -- columns ------------------------------------------------------------------------------
    def column(self, ref: str, variable: str = "") -> pd.Series:
        """`alias.COL` from a source (joined to the primary rows on first use) or a target variable."""
        if "." in ref:
            alias, col = ref.split(".", 1)
            name = f"{alias}.{col}"
            if name not in self.frame.columns:
                self._join(alias, variable)
            return self.frame[name]
        if ref in self.values:
            return self.values[ref]
        raise KeyError(ref)

    def _join(self, alias: str, variable: str):
        if alias in self._joined:
            return
        src = self.mapping.sources[alias]
        if src.domain:
            other = self.built.get(src.domain)
            if other is None:
                raise ConversionError([Issue("error", f"source '{alias}' needs domain {src.domain}, "
                                             "which is not built (is its mapping missing?)",
                                             file=self.mapping.file, line=src.line)])
            keys = src.key or ["USUBJID"]
            left = pd.DataFrame({k: self.column(k) for k in keys}, index=self.frame.index)
            right = other.rename(columns={c: f"{alias}.{c}" for c in other.columns if c not in keys})
        else:
            keys = src.key
            if not keys:
                raise ConversionError([Issue("error", f"source '{alias}' is read row by row with the "
                                             "primary source but declares no `key:` to join on",
                                             file=self.mapping.file, line=src.line)])
            left = pd.DataFrame({k: self.frame[f"{self.mapping.primary}.{k}"] for k in keys},
                                index=self.frame.index)
            raw = self.raw[alias]
            right = raw.rename(columns={c: f"{alias}.{c}" for c in raw.columns if c not in keys})
            dup = right.duplicated(subset=keys, keep=False)
            if dup.any():
                found = []
                for key_vals, grp in raw[dup.to_numpy()].groupby(keys, sort=True):
                    key_vals = key_vals if isinstance(key_vals, tuple) else (key_vals,)
                    key_text = ", ".join(f"{k}={shown(v)}" for k, v in zip(keys, key_vals))
                    found.append(Issue(
                        "error", f"source '{alias}' has several rows for {key_text} "
                        f"({grp[FILE].iloc[0]} {rows_text(grp[LINE])}); a joined source must have "
                        "one row per key", file=self.mapping.file, line=src.line,
                        value=" ".join(str(v) for v in key_vals)))
                raise ConversionError(found)
        right = right.drop(columns=[c for c in right.columns if c.endswith((FILE, LINE))], errors="ignore")
        merged = left.merge(right, on=keys, how="left", validate="many_to_one")
        merged.index = self.frame.index
        for col in merged.columns:
            if col not in keys:
                self.frame[col] = merged[col].fillna("") if merged[col].dtype == object or \
                    pd.api.types.is_string_dtype(merged[col]) else merged[col]
        self._joined.add(alias)


# ------------------------------------------------------------------------------------------------
def read_options(f: dict) -> dict:
    """The `read_table` options of one entry of a source's `files`."""
    return dict(sep=f.get("sep"), encoding=f.get("encoding"), header_row=f.get("header_row", 1),
                sheet=f.get("sheet"), decimal=f.get("decimal", "."))


def raw_files(mapping) -> list[tuple]:
    """(path, display, options) of every raw file a mapping reads."""
    return [(f["file"], f["file"], read_options(f)) for src in mapping.sources.values() if not src.domain
            for f in src.files]


def read_sources(ctx: DomainContext) -> None:
    """Read every raw source of the mapping, apply its filters, and build the primary frame."""
    m = ctx.mapping
    issues = []
    for alias, src in m.sources.items():
        if src.domain:
            continue
        parts, renamed = [], []
        for i, f in enumerate(src.files):
            path = (ctx.study.folder / f["file"]).resolve()
            display = f["file"]
            try:
                df = read_table(path, display, **read_options(f))
            except ConversionError as exc:
                issues.extend(Issue(i.severity, i.message + f" (source '{alias}' of {m.file}:{src.line})",
                                    file=i.file, line=i.line) for i in exc.issues)
                continue
            if src.twin_columns:
                df = drop_twin_columns(df, src.twin_columns["suffix"], src.twin_columns["keep"], display)
            at = ["sources", alias] + (["files", i] if "files" in m.doc["sources"][alias] else [])
            if f.get("rename"):
                found = [Issue("error", f"source '{alias}': rename: {shown(c)} is not a column of {display}"
                               + _col_hint(c, df.columns) + f"; its columns: {columns_text(df)}",
                               file=m.file, line=m.line(*at, "rename", c) or src.line, value=c)
                         for c in f["rename"] if c not in df.columns]
                if found:
                    issues += found
                    continue
                df = df.rename(columns=f["rename"])
            if f.get("constants"):
                clash = [c for c in f["constants"] if c in df.columns]
                if clash:
                    issues += [Issue("error", f"source '{alias}': constants: {shown(c)} is a column of {display}: "
                                     "a constant may not replace raw data; give the constant another name",
                                     file=m.file, line=m.line(*at, "constants", c) or src.line, value=c)
                               for c in clash]
                    continue
                df = df.assign(**f["constants"])
            if f.get("melt"):
                try:
                    df = melt(df, f["melt"], display)
                except MeltError as exc:
                    issues.append(_melt_issue(m, alias, at, exc, f.get("rename")))
                    continue
            if f.get("rename"):
                renamed.append((at, f, df))
            parts.append(df)
        if not parts:
            continue
        cols = [list(p.columns) for p in parts]
        if src.align == "union":
            issues += _unread_rename_targets(m, alias, renamed, parts)
            allcols = list(dict.fromkeys(c for cs in cols for c in cs))
            parts = [p.reindex(columns=allcols, fill_value="") for p in parts]
            cols = [allcols for _ in parts]
        if any(set(c) != set(cols[0]) for c in cols[1:]):
            issues.append(Issue("error", f"the files of source '{alias}' have different columns: "
                                + "; ".join(f"{f['file']}: {sorted(set(c) - set(cols[0]) | set(cols[0]) - set(c))}"
                                            for f, c in zip(src.files[1:], cols[1:]) if set(c) != set(cols[0])),
                                file=m.file, line=src.line))
            continue
        df = pd.concat(parts, ignore_index=True)
        if src.melt:
            try:
                df = melt(df, src.melt, _files_text(src))
            except MeltError as exc:
                issues.append(_melt_issue(m, alias, ["sources", alias], exc, _renames(src)))
                continue
        if src.where:
            missing = [c for c in condition_names(src.where) if c not in df.columns]
            if missing:
                issues += [_where_issue(m, alias, src, c, df) for c in missing]
                continue
            try:
                df = df[conditions.evaluate(src.where, lambda c: df[c], df.index)].reset_index(drop=True)
            except ExpressionError as exc:
                issues.append(_condition_issue(exc, df, src.where, f"source '{alias}' where",
                                               file=m.file, line=m.line("sources", alias, "where")))
                continue
        if src.dedupe:
            dup_issues = Issues()
            df = report_duplicates(df, src.dedupe, src.files[0]["file"], dup_issues).reset_index(drop=True)
            ctx.issues.extend(dup_issues.warnings)
            issues.extend(dup_issues.errors)
        ctx.raw[alias] = df
    if issues:
        raise ConversionError(issues)
    prim = ctx.raw[m.primary]
    frame = prim.rename(columns={c: f"{m.primary}.{c}" for c in prim.columns if c not in (FILE, LINE)})
    ctx.frame = frame
    ctx._joined.add(m.primary)


def _melt_issue(m: Mapping, alias: str, at: list, exc: MeltError, renames: dict | None) -> Issue:
    line = m.line(*at, "melt", exc.key) if exc.key else None
    text = str(exc)
    if exc.column in (renames or {}):
        text += f" ({shown(exc.column)} is renamed to {shown(renames[exc.column])} by `rename:`, which comes first)"
    return Issue("error", f"source '{alias}' melt: {text}", file=m.file, line=line or m.line(*at, "melt"))


def _renames(src) -> dict:
    return {k: v for f in src.files for k, v in (f.get("rename") or {}).items()}


def condition_names(cond) -> list[str]:
    """The columns a condition reads: a map's keys, an expression's names."""
    if isinstance(cond, str):
        try:
            return Expression(cond).names
        except ExpressionError:
            return []     # the schema check reports it
    return list(cond or {})


def _condition_issue(exc: ExpressionError, frame: pd.DataFrame, text: str, what: str, **at) -> Issue:
    lines = f" ({raw_lines(frame, exc.rows)})" if exc.rows is not None and np.asarray(exc.rows).any() else ""
    return Issue("error", f"{what}: {exc.located(text)}{lines}", **at)


def _where_issue(m: Mapping, alias: str, src, column: str, df) -> Issue:
    """A source filter naming a column the source does not have at that step: what became of it."""
    melted = [f.get("melt") for f in src.files if f.get("melt")] + ([src.melt] if src.melt else [])
    into = next((spec for spec in melted if column in (spec.get("columns") or [])
                 or any(column in g.values() for g in (spec.get("groups") or {}).values())
                 or ("pattern" in spec and re.fullmatch(spec["pattern"], column))), None)
    if column in _renames(src):
        why = f" (it is renamed to {shown(_renames(src)[column])} by `rename:`, which comes first)"
    elif into:
        why = f" (it is melted by `melt:`, which comes first, into {_melted_names(into)})"
    else:
        why = _col_hint(column, df.columns)
    return Issue("error", f"source '{alias}' where: {shown(column)} is not a column of the source{why}; "
                 f"the filter reads the columns after rename, constants and melt: {columns_text(df)}",
                 file=m.file, line=m.line("sources", alias, "where", column) or src.line, value=column)


def _melted_names(melted: dict) -> str:
    if "value" in melted:
        return f"{melted['name']} and {melted['value']}"
    if "groups" in melted:
        return ", ".join([melted["name"], *dict.fromkeys(a for g in melted["groups"].values() for a in g)])
    return f"{melted['name']} and the attribute columns of the pattern"


def _files_text(src) -> str:
    return " + ".join(f["file"] for f in src.files)


def _unread_rename_targets(m: Mapping, alias: str, renamed: list, parts: list) -> list[Issue]:
    """Under `align: union` a column missing from a file is left empty for its rows, so a misspelt
    rename target (`UNITS: LBORESU`) would silently empty the column it meant to fill. A target that
    no other file of the source has and that nothing in the mapping names is such a typo."""
    named = _names_in(m.doc, skip="rename")
    issues = []
    for at, f, df in renamed:
        others = {c for p in parts if p is not df for c in p.columns} - {FILE, LINE}
        for old, new in f["rename"].items():
            if new in others or new in named:
                continue
            hint = _hint(new, sorted(others | {n for n in named if n.isidentifier()}))
            issues.append(Issue("error", f"source '{alias}': rename: {shown(old)} → {shown(new)} ({f['file']}): "
                                f"no other file of the source has {shown(new)} and nothing in the mapping "
                                f"reads it{hint}; under `align: union` the column meant would be left empty "
                                "for these rows", file=m.file, line=m.line(*at, "rename", old), value=new))
    return issues


def _names_in(node, skip: str) -> set[str]:
    """Every word of every key and text of a YAML document (`lab.UNIT` gives 'lab', 'UNIT' and
    'lab.UNIT'), except under keys named `skip`: what a column name may be referred to by."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == skip:
                continue
            out |= _names_in(k, skip) | _names_in(v, skip)
    elif isinstance(node, list):
        for v in node:
            out |= _names_in(v, skip)
    elif isinstance(node, str):
        out.add(node)
        out |= set(re.findall(r"[^\s.{}]+", node))
    return out


def _col_hint(col, columns):
    from .schema import suggest
    return suggest(col, [c for c in columns if c not in (FILE, LINE)])


def check_references(ctx: DomainContext) -> list[Issue]:
    """Every `alias.COLUMN` named by a rule exists (checked before any variable is computed)."""
    m = ctx.mapping
    issues = []
    for rule in m.rules:
        refs = source_refs(rule.spec)
        for agg in ("first_date", "last_date"):
            if agg in rule.spec:
                a = rule.spec[agg]
                refs += [(a.get("source"), a.get(k)) for k in ("date", "time") if a.get(k)]
                refs += [(a.get("source"), c) for c in condition_names(a.get("where"))]
        for alias, col in refs:
            if alias not in m.sources:
                # A dotted constant-looking text (e.g. a unit '10^6.kg') is not a reference.
                if rule.spec.get("from") or rule.spec.get("date") or "template" in rule.spec:
                    issues.append(Issue("error", f"{rule.variable}: unknown source '{alias}'"
                                        + _hint(alias, m.sources), file=m.file, line=rule.line))
                continue
            src = m.sources[alias]
            if src.domain:
                continue
            if alias in ctx.raw and col not in ctx.raw[alias].columns:
                issues.append(Issue("error", f"{rule.variable}: column '{col}' is not in source "
                                    f"'{alias}' ({', '.join(f['file'] for f in src.files)})"
                                    + _col_hint(col, ctx.raw[alias].columns), file=m.file,
                                    line=rule.line, value=col))
    for rule in m.rules:
        issues += _expression_issues(ctx, rule.variable, rule.spec, ["variables", rule.variable])
    if m.tests:
        alias, _, col = m.tests["from"].partition(".")
        if alias not in ctx.raw or col not in ctx.raw[alias].columns:
            issues.append(Issue("error", f"tests.from: '{m.tests['from']}' is not a column of a source",
                                file=m.file, line=m.line("tests", "from")))
    return issues


def _expression_issues(ctx: DomainContext, variable: str, spec, path: list) -> list[Issue]:
    """Each expression of a rule checked before anything runs: its bare names are variables of this
    mapping, and the types fit (raw columns are text; target variables have their IG type)."""
    if not isinstance(spec, dict):
        return []
    m = ctx.mapping
    targets = {r.variable for r in m.rules} | {"STUDYID", "DOMAIN"}
    out = []
    for key, text in expressions_of(spec):
        try:
            expr = Expression(text)
        except ExpressionError:
            continue    # the schema check reports it
        unknown = [n for n in expr.names if "." not in n and n not in targets]
        if unknown:
            pos = expr.name_positions()[unknown[0]]
            why = ExpressionError(f"'{unknown[0]}' is not a variable of this mapping{_hint(unknown[0], targets)}"
                                  f"; a raw column is written alias.COLUMN", pos, text)
            out.append(Issue("error", f"{variable}.{key}: {why.located()}", file=m.file,
                             line=m.line(*path, key) or m.line(*path)))
            continue
        try:
            expr.check(lambda n: _declared_type(ctx, n))
        except ExpressionError as exc:
            out.append(Issue("error", f"{variable}.{key}: {exc.located(text)}", file=m.file,
                             line=m.line(*path, key) or m.line(*path)))
    if isinstance(spec.get("else"), dict):
        out += _expression_issues(ctx, f"{variable}.else", spec["else"], path + ["else"])
    return out


def _declared_type(ctx: DomainContext, name: str) -> str:
    if "." in name:
        return TEXT
    if name.endswith("DTC"):
        return DATE
    var = ctx.spec.model_variable(name) if ctx.spec is not None else None
    return NUMBER if var is not None and var.type == "Num" else TEXT


def _hint(word, choices):
    from .schema import suggest
    return suggest(word, choices)


# ------------------------------------------------------------------------------------------------
def evaluation_order(mapping: Mapping, registry, issues: list) -> list:
    """Rules in an order where every rule's inputs are computed before it (YAML order otherwise)."""
    names = [r.variable for r in mapping.rules]
    deps = {r.variable: (target_refs(r.spec, registry) & set(names)) - {r.variable} for r in mapping.rules}
    for r in mapping.rules:
        for alias, _ in source_refs(r.spec):
            src = mapping.sources.get(alias)
            if src is not None and src.domain:
                deps[r.variable] |= set(src.key or ["USUBJID"]) & set(names)
    ordered, done = [], set()
    pending = list(mapping.rules)
    while pending:
        progressed = False
        for r in list(pending):
            if deps[r.variable] <= done:
                ordered.append(r)
                done.add(r.variable)
                pending.remove(r)
                progressed = True
                break
        if not progressed:
            cyc = ", ".join(r.variable for r in pending)
            issues.append(Issue("error", f"variables depend on each other in a circle: {cyc}",
                                file=mapping.file, line=pending[0].line))
            return ordered
    return ordered


def evaluate_rule(ctx: DomainContext, variable: str, spec: dict, path=()) -> pd.Series:
    idx = ctx.index
    # Rows outside `where:` are never looked at, so their raw values cannot raise errors.
    mask = None
    if spec.get("where"):
        mask = rule_condition(ctx, variable, spec["where"], path)
    if "derive" in spec:
        deriv = ctx.registry[spec["derive"]]
        out = deriv.func(ctx, variable, spec)
    elif "from" in spec:
        refs = spec["from"] if isinstance(spec["from"], list) else [spec["from"]]
        out = None
        for ref in refs:
            s = ctx.column(ref, variable).fillna("").astype(str)
            out = s if out is None else out.where(out != "", s)
    elif "constant" in spec:
        out = pd.Series(_constant_text(spec["constant"]), index=idx, dtype=object)
    elif "template" in spec:
        out = _template(ctx, variable, spec["template"], path, mask)
    elif "compute" in spec:
        out = _compute(ctx, variable, spec["compute"], path, mask)
    elif "date" in spec:
        out = _date(ctx, variable, spec, path, mask)
    elif "first_date" in spec or "last_date" in spec:
        out = _aggregate_date(ctx, variable, spec, path)
    out = _modifiers(ctx, variable, spec, out, path)
    if "else" in spec:
        missing = _is_missing(out)
        if missing.any():
            previous = ctx.active
            ctx.active = missing if previous is None else (missing & previous)
            try:
                fallback = evaluate_rule(ctx, variable, spec["else"], tuple(path) + ("else",))
            finally:
                ctx.active = previous
            out = out.where(~missing, fallback)
    return out


def _is_missing(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return s.isna()
    return s.isna() | (s.astype(str) == "")


def _constant_text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "Y" if v else "N"
    return v


class RuleFailed(Exception):
    """A rule's expression failed; the problem is already among the domain's issues."""


def rule_expression(ctx, variable: str, text: str, path, key: str, rows=None):
    """`text` evaluated over the domain's records (or `rows`, a boolean mask of them): an
    ExpressionError becomes an error at the line of `key`, naming the raw lines of the offending
    values, and the rule fails."""
    expr = Expression(text)
    index = ctx.index if rows is None else ctx.index[np.asarray(rows, dtype=bool)]

    def column(name):
        s = ctx.column(name, variable)
        return s if rows is None else s[np.asarray(rows, dtype=bool)]
    try:
        return expr, expr.evaluate(column, target_types, len(index))
    except ExpressionError as exc:
        where = ""
        if exc.rows is not None and np.asarray(exc.rows).any():
            full = np.zeros(len(ctx.index), dtype=bool)
            if rows is None:
                full[:] = exc.rows
            else:
                full[np.flatnonzero(np.asarray(rows, dtype=bool))[exc.rows]] = True
            where = f" ({ctx.raw_lines(pd.Series(full, index=ctx.index))})"
        ctx.issues.error(f"{variable}.{key}: {exc.located(text)}{where}", **ctx.where(variable, *path, key))
        raise RuleFailed(variable) from None


def target_types(name: str):
    """Names without a source alias are target variables; the --DTC ones hold ISO 8601 dates."""
    return DATE if "." not in name and name.endswith("DTC") else None


def rule_condition(ctx, variable: str, cond, path) -> pd.Series:
    if not isinstance(cond, str):
        return conditions.evaluate(cond, lambda c: ctx.column(c, variable), ctx.index)
    _, value = rule_expression(ctx, variable, cond, path, "where")
    if value.type != BOOL:
        ctx.issues.error(f"{variable}.where: {cond!r} is not a condition (compare a value: X = 'Y')",
                         **ctx.where(variable, *path, "where"))
        raise RuleFailed(variable)
    return pd.Series(value.data.fillna(False).to_numpy(dtype=bool), index=ctx.index)


def _compute(ctx, variable, text, path, mask=None) -> pd.Series:
    """`compute:` an expression's value per record: numbers for a numeric variable (text numbers as
    SDTM writes them otherwise), dates as ISO 8601 text."""
    _, value = rule_expression(ctx, variable, text, path, "compute", rows=mask)
    if value.type == BOOL:
        ctx.issues.error(f"{variable}.compute: {text!r} is a condition, not a value (write "
                         f"case when ... then 'Y' end)", **ctx.where(variable, *path, "compute"))
        raise RuleFailed(variable)
    numeric = _is_numeric_target(ctx, variable) and value.type == NUMBER
    part = pd.Series(value.data if numeric else as_text(value), dtype=float if numeric else object)
    out = pd.Series(np.nan if numeric else "", index=ctx.index, dtype=float if numeric else object)
    if mask is None:
        out[:] = part.to_numpy()
    else:
        out[np.asarray(mask, dtype=bool)] = part.to_numpy()
    return out


def _template(ctx, variable, template, path, mask=None):
    idx = ctx.index
    pieces = re.split(r"(\{[^{}]+\})", template)
    out = pd.Series("", index=idx, dtype=object)
    any_missing = pd.Series(False, index=idx)
    for piece in pieces:
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if re.fullmatch(r"\w+(\.\w+)?", name):
                s = ctx.column(name, variable).fillna("").astype(str)
            else:
                s = pd.Series(as_text(rule_expression(ctx, variable, name, path, "template")[1]), index=idx,
                              dtype=object)
            any_missing |= s == ""
            out = out + s
        elif piece:
            out = out + piece
    if mask is not None:
        any_missing &= mask
    if any_missing.any():
        ctx.report_values(variable, out[any_missing], lambda v: f"template '{template}' has an empty part",
                          severity="error")
    return out.where(~any_missing, "")


def _formats(value):
    return value if isinstance(value, list) else [value] if value else []


def parse_dates(ctx, variable, date_s, time_s, date_formats, time_formats, unknown, path=(),
                column: str = "", year_window: int | None = None):
    """Raw date (and time) text → ISO 8601 with the declared formats; bad dates are errors.

    Works on the distinct (date, time) pairs, and tries every declared format on each: a value two
    formats read as different dates is ambiguous, and a column that needs two formats ordering day
    and month differently (12/31/2016 and 31/12/2016) is an error even if each value alone is clear.
    Of the formats that read a value, the first declared one gives its ISO text."""
    date_s = date_s.fillna("").astype(str)
    d_codes, d_uniq = pd.factorize(date_s)
    if time_s is None:
        t_codes, t_uniq = np.zeros(len(date_s), dtype=np.int64), np.array([""], dtype=object)
    else:
        t_codes, t_uniq = pd.factorize(time_s.reindex(date_s.index).fillna("").astype(str))
    codes, pairs = pd.factorize(d_codes.astype(np.int64) * len(t_uniq) + t_codes)
    n = len(pairs)
    dist_d = pd.Series(np.asarray(d_uniq, dtype=object)[pairs // len(t_uniq)], dtype=object)
    dist_t = None if time_s is None else \
        pd.Series(np.asarray(t_uniq, dtype=object)[pairs % len(t_uniq)], dtype=object)
    active = getattr(ctx, "active", None)
    act = np.ones(len(date_s), dtype=bool) if active is None else \
        active.reindex(date_s.index, fill_value=False).to_numpy(dtype=bool)
    shown_pairs = np.zeros(n, dtype=bool)   # pairs on rows whose problems are the user's concern
    shown_pairs[codes[act]] = True

    combos = [(d, t) for d in date_formats for t in (time_formats or [None])]
    isos = np.empty((len(combos), n), dtype=object)
    ok = np.ones((len(combos), n), dtype=bool)
    errors, warnings = [], []
    for i, (dfmt, tfmt) in enumerate(combos):
        kwargs = {"date_format": dfmt, "time_format": tfmt, "year_window": year_window}
        if unknown:
            kwargs["unknown"] = tuple(unknown)
        iso, issues = dates.to_iso8601(dist_d, dist_t, **kwargs)
        isos[i] = iso.to_numpy(dtype=object)
        err, warn = {}, {}
        for iss in issues:
            (err if iss.severity == "error" else warn).setdefault(iss.index, []).append(iss)
        ok[i, list(err)] = False
        errors.append(err)
        warnings.append(warn)
    chosen = ok.argmax(axis=0)
    read = ok.any(axis=0)
    result = isos[chosen, np.arange(n)] if n else np.array([], dtype=object)
    result[~read] = ""

    def label(i):
        d, t = combos[i]
        return f"{d}{' + ' + t if t else ''}"

    def value_of(k):
        return f"{dist_d[k]} {dist_t[k]}".strip() if dist_t is not None else dist_d[k]

    # (groups of pairs, message made from the raw lines of each group, value)
    problems: list = []
    for k in np.flatnonzero((ok.sum(axis=0) > 1) & shown_pairs):
        readings = {}
        for i in np.flatnonzero(ok[:, k]):
            readings.setdefault(isos[i, k], label(i))
        if len(readings) > 1:
            result[k] = ""
            said = ", ".join(f"{f} as {iso}" for iso, f in readings.items()).replace(" as ", " reads it as ", 1)
            problems.append(([[k]], lambda lines, k=k, said=said:
                             f"ambiguous date {shown(value_of(k))} in {column}: {said} ({lines[0]}); "
                             "declare only the format the export uses", value_of(k)))
    by_date_format = {d: ok[[i for i, c in enumerate(combos) if c[0] == d]].any(axis=0)
                      for d in date_formats}
    filled = shown_pairs & (dist_d.to_numpy(dtype=object) != "")
    for j, a in enumerate(date_formats):
        for b in date_formats[j + 1:]:
            if not dates.contradicts(a, b):
                continue
            only_a = list(np.flatnonzero(filled & by_date_format[a] & ~by_date_format[b])[:3])
            only_b = list(np.flatnonzero(filled & by_date_format[b] & ~by_date_format[a])[:3])
            if only_a and only_b:
                problems.append(([[k] for k in only_a + only_b], lambda lines, a=a, b=b, only_a=only_a, only_b=only_b:
                                 f"{column} mixes date formats that order day and month differently: "
                                 f"only {a} reads {_examples(only_a, value_of, lines)} and only {b} "
                                 f"reads {_examples(only_b, value_of, lines[len(only_a):])}; one column "
                                 "must keep one order of day and month", None))
    invalid = {}
    for k in np.flatnonzero(~read & shown_pairs):
        for iss in errors[-1].get(k, []):
            invalid.setdefault((str(iss.value), iss.reason), []).append(k)
    fmts = " or ".join(f"{d}{' ' + t if t else ''}" for d, t in combos)
    kinds: dict = {}
    for (value, reason), ks in sorted(invalid.items()):
        kinds.setdefault(dates.problem_class(value, reason), []).append((value, reason, ks))
    for (key, does), members in kinds.items():
        if len(members) <= LISTED_DATES:
            for value, reason, ks in members:
                problems.append(([ks], lambda lines, value=value, reason=reason:
                                 f"invalid date {shown(value)}: {reason} (declared format {fmts}; "
                                 f"{lines[0]})", value))
            continue
        examples = members[:DATE_EXAMPLES]
        problems.append(([ks for _, _, ks in examples], lambda lines, key=key, does=does, n=len(members),
                         examples=examples: f"{n} values of {column} {does}"
                         + ("" if key[0] in ("separator", "shape") and len(combos) == 1
                            else f" (declared format {fmts})") + "; "
                         "e.g. " + ", ".join(
                             shown(v) + (f": {r}" if key[0] in ("calendar", "other") and r != does else "")
                             + f" ({text})" for (v, r, _), text in zip(examples, lines))
                         + f" (+{n - len(examples)} more)", None))
    notes = {}
    for k in np.flatnonzero(read & shown_pairs):
        for iss in warnings[chosen[k]].get(k, []):
            notes.setdefault((str(iss.value), iss.reason), []).append(k)
    notes = sorted(notes.items())
    texts = iter(code_lines(ctx, date_s.index, codes, act, [g for groups, _, _ in problems for g in groups]
                            + [ks for _, ks in notes]))
    at = ctx.where(variable, *path)
    for groups, make, value in problems:
        ctx.issues.error(make([next(texts) for _ in groups]), value=value, **at)
    for (value, reason), _ in notes:
        ctx.issues.warning(f"{reason}: {shown(value)} ({next(texts)})", value=value, **at)
    out = np.asarray(result, dtype=object)[codes] if n else np.array([], dtype=object)
    return pd.Series(out, index=date_s.index, dtype=object)


# A column with more distinct bad dates of one kind than this gets one message with examples.
LISTED_DATES = 5
DATE_EXAMPLES = 3


def _examples(ks, value_of, lines) -> str:
    return ", ".join(f"{shown(value_of(k))} ({text})" for k, text in zip(ks, lines))


def code_lines(ctx, index: pd.Index, codes: np.ndarray, act: np.ndarray, groups: list) -> list[str]:
    """ctx.raw_lines of each group of distinct-value codes (`codes`: per row of `index`), in one
    batch; rows where `act` is False are left out ('' for a group with no other row). A code may be
    in several groups."""
    sizes = [len(ks) for ks in groups]
    member = np.fromiter((int(k) for ks in groups for k in ks), dtype=np.int64, count=sum(sizes))
    group = np.repeat(np.arange(len(groups)), sizes)
    order = np.argsort(member, kind="stable")
    member, group = member[order], group[order]
    rows = np.flatnonzero(act & np.isin(codes, member))
    lo, hi = np.searchsorted(member, codes[rows], "left"), np.searchsorted(member, codes[rows], "right")
    count = hi - lo
    # each row once per group of its code
    take = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())
    return ctx.raw_lines_per(index[np.repeat(rows, count)], group[take], len(groups))


def _date(ctx, variable, spec, path, mask=None):
    refs = spec["date"] if isinstance(spec["date"], list) else [spec["date"]]
    date_s = ctx.column(refs[0], variable).fillna("").astype(str)
    time_s = ctx.column(refs[1], variable).fillna("").astype(str) if len(refs) > 1 else None
    if mask is not None:
        date_s = date_s.where(mask, "")
        time_s = time_s.where(mask, "") if time_s is not None else None
    return parse_dates(ctx, variable, date_s, time_s, _formats(spec.get("format")) or ["yyyy-MM-dd"],
                       _formats(spec.get("time_format")), spec.get("unknown"), path, column=refs[0],
                       year_window=spec.get("year_window"))


def _aggregate_date(ctx, variable, spec, path):
    """Earliest/latest date of a related table per subject (e.g. RFXSTDTC from the exposure form)."""
    kind = "first_date" if "first_date" in spec else "last_date"
    a = spec[kind]
    src = ctx.mapping.sources[a["source"]]
    raw = ctx.raw[a["source"]]
    if a.get("where"):
        try:
            raw = raw[conditions.evaluate(a["where"], lambda c: raw[c], raw.index)]
        except ExpressionError as exc:
            ctx.issues.items.append(_condition_issue(exc, raw, a["where"], f"{variable}.{kind}.where",
                                               **ctx.where(variable, *path, kind, "where")))
            raise RuleFailed(variable) from None
    sub_ctx = _SubContext(ctx, raw)
    iso = parse_dates(sub_ctx, variable, raw[a["date"]], raw[a["time"]] if a.get("time") else None,
                      _formats(a["format"]), _formats(a.get("time_format")), a.get("unknown"),
                      tuple(path) + (kind,), column=f"{a['source']}.{a['date']}",
                      year_window=a.get("year_window"))
    keys = src.key
    if not keys:
        raise ConversionError([Issue("error", f"source '{a['source']}' needs `key:` to relate it to "
                                     "the primary source", file=ctx.mapping.file, line=src.line)])
    table = raw[keys].copy()
    table["__iso__"] = iso
    table = table[table["__iso__"] != ""]
    # ISO 8601 text of equal precision sorts chronologically; a date sorts before its own datetimes.
    table = table.sort_values(keys + ["__iso__"], kind="stable")
    pick = table.groupby(keys, sort=False)["__iso__"].agg("first" if kind == "first_date" else "last")
    left = pd.DataFrame({k: ctx.frame[f"{ctx.mapping.primary}.{k}"] for k in keys})
    merged = left.merge(pick.reset_index(), on=keys, how="left")
    return pd.Series(merged["__iso__"].fillna("").to_numpy(), index=ctx.index, dtype=object)


class _SubContext:
    """Lets date parsing report lines of a related table rather than of the primary one."""

    def __init__(self, ctx, frame):
        self._ctx, self.frame, self.issues = ctx, frame, ctx.issues

    def raw_lines(self, mask):
        return raw_lines(self.frame, mask)

    def raw_lines_per(self, labels, groups, n) -> list[str]:
        return raw_lines_per(self.frame, labels, groups, n)

    def where(self, variable, *path):
        return self._ctx.where(variable, *path)


def _modifiers(ctx, variable, spec, out, path):
    if spec.get("where"):
        mask = rule_condition(ctx, variable, spec["where"], path)
        out = out.where(mask, float("nan") if pd.api.types.is_numeric_dtype(out) else "")
    if "map" in spec:
        numeric = pd.api.types.is_numeric_dtype(out)
        if table_file(spec["map"]):
            table = codelist_file_table(ctx, spec["map"], ctx.where(variable, *path, "map"), "map")
        else:
            table = {_map_key(k, numeric): _constant_text(v) for k, v in spec["map"].items()}
        if numeric:      # numbers (a compute:, a derivation) compare as SDTM writes them: 2.0 is the key 2
            from .findings import number_texts
            out = number_texts(out)
        out = out.map({v: table.get(v, v) for v in pd.unique(out.to_numpy())})  # once per distinct value
    if spec.get("case"):
        out = getattr(out.astype(str).str, spec["case"])()
    if "codelist" in spec or "synonyms" in spec:
        out = recode(ctx, variable, spec, out, path)
    if spec.get("numeric") or _is_numeric_target(ctx, variable):
        out = to_number(ctx, variable, out, path)
    return out


def _is_numeric_target(ctx, variable) -> bool:
    var = ctx.spec.model_variable(variable) if ctx.spec is not None else None
    return bool(var and var.type == "Num")


def to_number(ctx, variable, s: pd.Series, path=()) -> pd.Series:
    """Text → float, per distinct value; text that is not a plain finite number is an error."""
    from .findings import check_finite, numbers_of
    if pd.api.types.is_numeric_dtype(s):
        return check_finite(ctx, variable, s.astype(float), path)
    text = s.fillna("").astype(str).str.strip()
    values, bad, reasons = numbers_of(text)
    if reasons:
        ctx.report_values(variable, text[bad], lambda v: f"{shown(v)} {reasons[v]}", path=path)
    return values


def load_synonyms(ctx, variable, value, path) -> dict:
    """A study synonym table, inline or from a file relative to the mapping file (so a mapping folder
    carries its own terminology decisions). Every problem names the mapping line that points at it."""
    at = ctx.where(variable, *path, "synonyms")
    if table_file(value):
        return codelist_file_table(ctx, value, at, "synonyms")
    if isinstance(value, dict):
        return _synonym_table(value, "the synonym table", at)
    file = ctx.mapping.path.parent / value
    display = f"mappings/{value}"
    if not file.is_file():
        what = "a folder" if file.is_dir() else "not found"
        raise ConversionError([Issue("error", f"synonym table {display} is {what}: `synonyms:` names "
                                     "a YAML file relative to the mapping file", value=value, **at)])
    try:
        doc = load_yaml(file, display)
    except ConversionError as exc:
        raise ConversionError([Issue(i.severity, f"{i.message} (synonym table of {ctx.mapping.file}:"
                                     f"{at['line']})", file=i.file, line=i.line) for i in exc.issues])
    except OSError as exc:
        raise ConversionError([Issue("error", f"synonym table {display} cannot be read "
                                     f"({exc.strerror or exc})", value=value, **at)])
    if isinstance(doc, dict) and "synonyms" in doc and len(doc) > 1:
        others = ", ".join(str(k) for k in doc if k != "synonyms")
        raise ConversionError([Issue("error", f"synonym table {display}: `synonyms:` must be the only "
                                     f"top-level key (also found: {others}; indent them under it)",
                                     value=value, **at)])
    table = doc.get("synonyms", doc) if isinstance(doc, dict) else doc
    if not isinstance(table, dict):
        raise ConversionError([Issue("error", f"synonym table {display} must map raw values to terms "
                                     "(a YAML mapping, optionally under `synonyms:`)", value=value, **at)])
    return _synonym_table(table, f"synonym table {display}", at)


def codelist_file_table(ctx, spec: dict, at: dict, key: str) -> dict:
    """{code: decode} of one item of the export's own codelist file (relative to the study folder),
    read once per conversion of the domain. A code with two decodes (also differing only in case:
    synonyms match case-insensitively), a row with a code and no decode or the reverse, an item
    with no row and a column the file does not have are errors naming the file and lines."""
    names = {k: spec.get(k, TABLE_FILE_DEFAULTS[k]) for k in TABLE_FILE_DEFAULTS}
    display = spec["file"]
    where = f" (`{key}:` of {ctx.mapping.file}:{at['line']})"
    cache = ctx._table_files
    frame_key = (display, spec.get("sep"), spec.get("encoding"), spec.get("sheet"))
    if frame_key not in cache:
        try:
            cache[frame_key] = read_table(ctx.study.folder / display, display, sep=spec.get("sep"),
                                          encoding=spec.get("encoding"), sheet=spec.get("sheet"))
        except ConversionError as exc:
            raise ConversionError([Issue(i.severity, i.message + where, file=i.file, line=i.line)
                                   for i in exc.issues])
    df = cache[frame_key]
    missing = [(k, c) for k, c in names.items() if c not in df.columns]
    if missing:
        raise ConversionError([Issue("error", f"codelist file {display} has no column {shown(c)} (`{k}:`"
                                     + ("" if k in spec else ", the default") + f"){_col_hint(c, df.columns)}; "
                                     f"its columns: {columns_text(df)}", value=c, **at) for k, c in missing])
    rows = df[df[names["item_column"]] == spec["item"]]
    if rows.empty:
        items = sorted(df[names["item_column"]].unique())
        raise ConversionError([Issue("error", f"codelist file {display} has no row with {names['item_column']} "
                                     f"{shown(spec['item'])}{_col_hint(spec['item'], items)}; its items: "
                                     f"{', '.join(map(shown, items[:20]))}" + (f", … ({len(items)} items)"
                                                                             if len(items) > 20 else ""),
                                     value=spec["item"], **at)])
    code, decode = rows[names["code"]], rows[names["decode"]]
    problems = []
    half = rows[(code == "") != (decode == "")]
    for _, r in half.iterrows():
        empty = "code" if r[names["code"]] == "" else "decode"
        problems.append(Issue("error", f"item {shown(spec['item'])}: a row with an empty {empty} "
                              f"({names['code']} {shown(r[names['code']])}, {names['decode']} "
                              f"{shown(r[names['decode']])}){where}", file=display, line=int(r[LINE])))
    pairs = rows[(code != "") & (decode != "")].drop_duplicates([names["code"], names["decode"]])
    folded = pairs[names["code"]].str.strip().str.upper()
    for _, group in pairs[folded.duplicated(keep=False)].groupby(folded[folded.duplicated(keep=False)], sort=False):
        codes = ", ".join(f"{shown(c)} → {shown(d)}" for c, d in zip(group[names["code"]], group[names["decode"]]))
        problems.append(Issue("error", f"item {shown(spec['item'])}: code {shown(group[names['code']].iloc[0])} "
                              f"has several decodes ({codes}, {rows_text(group[LINE].tolist())}): which term "
                              f"it means is ambiguous{where}", file=display, line=int(group[LINE].iloc[0])))
    if problems:
        raise ConversionError(problems)
    return dict(zip(pairs[names["code"]], pairs[names["decode"]]))


def _synonym_table(table: dict, origin: str, at: dict) -> dict:
    """Raw value → term, refusing entries YAML would silently turn into other text (`yes` → 'True',
    an empty value → 'None', a nested mapping)."""
    bad = [k for k, v in table.items() if not _plain(k) or not _plain(v)]
    if bad:
        shown_bad = ", ".join(f"{k!r}: {table[k]!r}" for k in bad[:5])
        raise ConversionError([Issue("error", f"{origin}: entries must map text to text "
                                     f"(quote yes/no/true/false/null to mean the text): {shown_bad}", **at)])
    return {str(k): str(v) for k, v in table.items()}


def _map_key(key, numeric: bool) -> str:
    """A `map:` key as the text it matches; against numbers, a YAML number as SDTM writes it."""
    if numeric and _plain(key) and not isinstance(key, str):
        from .findings import format_number
        return format_number(float(key))
    return str(key)


def _plain(v) -> bool:
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


def recode(ctx, variable, spec, out, path=()):
    """Raw values → controlled terms: study synonyms first, then the codelist's terms and synonyms.

    Works on distinct values. A value that matches nothing is an error listing every raw line that
    carries it, unless the codelist is extensible and the mapping says `extensible: true`.
    """
    synonyms = load_synonyms(ctx, variable, spec["synonyms"], path) if "synonyms" in spec else {}
    syn_ci = {k.strip().upper(): v for k, v in synonyms.items()}
    codelist = ctx.ct.codelist(spec["codelist"]) if "codelist" in spec else None
    text = out.fillna("").astype(str)
    table, unmatched, new_terms = {}, [], []
    for value in text.unique():
        if value == "":
            table[value] = ""
            continue
        term = synonyms.get(value) or syn_ci.get(value.strip().upper())
        if term is None and codelist is not None:
            term = codelist.lookup(value)
        if term is not None and codelist is not None and term not in codelist.values:
            looked = codelist.lookup(term)
            if looked is not None:
                term = looked
            elif not (codelist.extensible and spec.get("extensible")):
                ctx.issues.error(f"synonym table maps {shown(value)} to {shown(term)}, which is not a term of "
                                 f"codelist {codelist.short_name} ({codelist.code})",
                                 value=value, **ctx.where(variable, *path, "synonyms"))
                term = ""
        if term is None:
            if codelist is None:
                term = value
            elif codelist.extensible and spec.get("extensible"):
                term = value
                new_terms.append(value)
            else:
                unmatched.append(value)
                term = ""
        table[value] = term
    if new_terms:
        ctx.report_values(variable, text[text.isin(new_terms)], lambda v: (
            f"{shown(v)} is a new term in extensible codelist {codelist.short_name} ({codelist.code})"),
            severity="warning", path=path)
    if unmatched:
        bad = text[text.isin(unmatched)]
        terms = sorted(codelist.values)
        expect = ", ".join(terms[:12]) + (f", … ({len(terms)} terms)" if len(terms) > 12 else "")
        ext = " (extensible: add `extensible: true` to accept new terms)" if codelist.extensible else ""
        ctx.report_values(variable, bad, lambda v: f"{shown(v)} is not in codelist {codelist.short_name} "
                          f"({codelist.code}) and no synonym maps it; expected one of {expect}{ext}",
                          path=path)
    return text.map(table)
