"""ADaM specs: one YAML document per analysis dataset, read safely and checked before anything runs.

    dataset: ADSL
    label: Subject-Level Analysis Dataset
    class: ADSL                      # ADSL | BDS | OCCDS | OTHER
    keys: [STUDYID, USUBJID]         # unique record key, also the sort order
    steps:                           # named derivations (sdtm_rA.adam.steps), run in order
      - {derive: records, dataset: DM, where: {ARMCD: {not: [SCRNFAIL, ""]}}}
      - {derive: copy, new: TRT01P, source: ARM}
    variables:                       # the output: order, label, type (from the ADaMIG when omitted)
      STUDYID:
      TRT01P: {label: Planned Treatment for Period 01}

The check walks the steps with the variables each one creates, so a spec that reads a variable no
earlier step made, names an SDTM variable the input folder lacks, or lists an output nobody derives is
reported with file and line before the first derivation runs. Nothing in a spec is evaluated as code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError, Issue
from ..sdtm.schema import schema_issues, suggest
from ..standards.specs import load_adamig
from ..io.yamlio import line_of, load_each, load_yaml
from .steps import (CONDITION, NAME_RE, ORDER, PARAMCD_RE, SCALAR, STEPS, FORMULAS, Step, args_with_defaults,
                    formula_parameters, formula_roles, keep_map, order_columns, summary_sources)
from .where import check_expression, columns_of

CLASSES = ("ADSL", "BDS", "OCCDS", "OTHER")
FORMATS = ("DATE9.", "DATETIME20.", "TIME8.")


def _check_keep(field, value, error) -> None:
    """`keep:` is a list of variables or a mapping {NEW: SOURCE}."""
    if isinstance(value, list):
        bad = [v for v in value if not isinstance(v, str)]
    elif isinstance(value, dict):
        bad = [f"{k}: {v}" for k, v in value.items() if not (isinstance(k, str) and isinstance(v, str))]
    else:
        bad = None
    if bad is None or bad:
        error(field, f"takes a list of variables or a mapping {{NEW: SOURCE}} of variable names"
                     f"{'' if bad is None else '; not: ' + ', '.join(map(repr, bad))}")

_VARIABLE = {"type": "dict", "nullable": True, "schema": {
    "label": {"type": "string", "maxlength": 40},
    "type": {"type": "string", "allowed": ["Char", "Num"]},
    "length": {"type": "integer", "min": 1, "max": 200},
    "format": {"type": "string", "allowed": list(FORMATS)},
}}

TOP_SCHEMA = {
    "dataset": {"type": "string", "required": True, "regex": r"^AD[A-Z0-9]{2,6}$"},
    "label": {"type": "string", "required": True, "maxlength": 40},
    "class": {"type": "string", "required": True, "allowed": list(CLASSES)},
    "keys": {"type": "list", "required": True, "minlength": 1, "schema": {"type": "string"}},
    "description": {"type": "string"},
    "steps": {"type": "list", "required": True, "minlength": 1, "schema": {"type": "dict"}},
    "later_steps": {"type": "list", "minlength": 1, "schema": {"type": "dict"}},
    "variables": {"type": "dict", "required": True, "minlength": 1,
                  "keysrules": {"type": "string", "regex": NAME_RE}, "valuesrules": _VARIABLE},
}

_KIND_RULES = {
    "var": {"type": "string"}, "new": {"type": "string", "regex": NAME_RE},
    "dataset": {"type": "string", "regex": r"^[A-Z][A-Z0-9]{1,7}$"}, "source_var": {"type": "string"},
    "vars": {"type": "list", "schema": {"type": "string"}}, "order": ORDER,
    "source_vars": {"type": "list", "schema": {"type": "string"}},
    "keep": {"type": ["list", "dict"], "check_with": _check_keep}, "where": CONDITION, "source_where": CONDITION,
    "paramcd": {"type": "string", "regex": PARAMCD_RE},
    "params": {"type": "dict", "keysrules": {"type": "string"},
               "valuesrules": {"type": "string", "regex": PARAMCD_RE}},
    "set": {"type": "dict", "keysrules": {"type": "string"}, "valuesrules": SCALAR},
    "text": {"type": "string"}, "number": {"type": "number"}, "integer": {"type": "integer"},
    "boolean": {"type": "boolean"}, "list": {"type": "list"}, "mapping": {"type": "dict"}, "any": {},
    "summaries": {"type": "dict"},
    "expression": {"type": "string", "check_with": check_expression},
    "join_where": {"type": "string", "check_with": check_expression},
}


def step_schema(st: Step) -> dict:
    schema = {"derive": {"type": "string", "required": True}}
    for name, arg in st.args.items():
        rule = dict(arg.rule or _KIND_RULES[arg.kind])
        if arg.required:
            rule["required"] = True
        else:
            rule["nullable"] = True       # null: "none" (e.g. no end window), not the default
        if arg.allowed:
            rule["allowed"] = list(arg.allowed)
        schema[name] = rule
    return schema


@dataclass
class VariableMeta:
    name: str
    label: str
    type: str | None      # None: from the data (numeric → Num)
    length: int | None = None
    format: str | None = None


@dataclass
class SpecStep:
    step: Step
    args: dict            # as written (without `derive`)
    line: int | None
    index: int
    section: str = "steps"    # or "later_steps"

    def where(self) -> str:
        word = "later step" if self.section == "later_steps" else "step"
        return f"{word} {self.index + 1} ({self.step.name})"

    def datasets(self) -> set[str]:
        """Datasets this step reads."""
        a = args_with_defaults(self.step, self.args)
        out = {a[n] for n, arg in self.step.args.items() if arg.kind == "dataset" and a.get(n)}
        for src in a.get("sources") or []:
            if isinstance(src, dict) and src.get("dataset"):
                out.add(src["dataset"])
        return out


@dataclass
class AdamSpec:
    dataset: str
    label: str
    class_: str
    keys: list[str]
    steps: list[SpecStep]
    variables: dict[str, VariableMeta]
    file: str
    doc: dict = field(repr=False, default_factory=dict)
    later_steps: list[SpecStep] = field(default_factory=list)
    created: dict = field(repr=False, default_factory=dict)    # set by check_spec: variable → step
    params: set = field(repr=False, default_factory=set)

    def line(self, *path) -> int | None:
        return line_of(self.doc, list(path))

    def reads(self) -> set[str]:
        """Datasets the steps read (SDTM domains or ADaM datasets); they are derived first."""
        return set().union(*(s.datasets() for s in self.steps))

    def reads_later(self) -> set[str]:
        """Datasets the later steps read: derived after this one, which they then complete (ADSL's
        baseline scores from ADEFF, which itself reads ADSL's treatment dates)."""
        return set().union(*(s.datasets() for s in self.later_steps)) if self.later_steps else set()


def load_spec(path: Path, display: str | None = None) -> AdamSpec:
    """Read and schema-check one spec file (the checks against the data come in `check_spec`)."""
    display = display or str(path)
    doc = load_yaml(path, display)
    issues = schema_issues(doc, TOP_SCHEMA, display)
    if issues:
        raise ConversionError(issues)
    steps = _parse_steps(doc, "steps", display, issues)
    later = _parse_steps(doc, "later_steps", display, issues)
    if issues:
        raise ConversionError(issues)
    ig = load_adamig()
    structure = {"ADSL": "ADSL", "BDS": "BDS"}.get(doc["class"])
    variables = {}
    for name, meta in doc["variables"].items():
        meta = meta or {}
        std = None
        if structure:
            try:
                std = ig.dataset(structure).variable(name)
            except (KeyError, LookupError):
                std = None
        label = meta.get("label") or (std.label if std else "")
        if not label:
            issues.append(Issue("error", f"variables.{name}: no label, and the ADaMIG has none for {name} "
                                f"in class {doc['class']}: give `label:`", file=display,
                                line=line_of(doc, ["variables", name])))
        typ = meta.get("type") or ({"Char": "Char", "Num": "Num"}.get(std.type) if std else None)
        variables[name] = VariableMeta(name, label, typ, meta.get("length"), meta.get("format"))
    for k in doc["keys"]:
        if k not in variables:
            issues.append(Issue("error", f"keys: {k} is not in variables", file=display, line=line_of(doc, ["keys"])))
    if issues:
        raise ConversionError(issues)
    return AdamSpec(doc["dataset"], doc["label"], doc["class"], list(doc["keys"]), steps, variables, display, doc,
                    later)


def _parse_steps(doc, section: str, display: str, issues: list) -> list[SpecStep]:
    steps = []
    for i, raw in enumerate(doc.get(section) or []):
        line = line_of(doc, [section, i])
        name = raw.get("derive")
        st = STEPS.get(name) if isinstance(name, str) else None
        if st is None:
            issues.append(Issue("error", f"{section}[{i + 1}]: unknown derivation {name!r}"
                                f"{suggest(name, STEPS)}; known: {', '.join(sorted(STEPS))}",
                                file=display, line=line))
            continue
        for issue in schema_issues(raw, step_schema(st), display):
            issues.append(Issue("error", f"{section}[{i + 1}] ({name}): {issue.message}", file=display,
                                line=issue.line or line))
        steps.append(SpecStep(st, {k: v for k, v in raw.items() if k != "derive"}, line, i, section))
    return steps


def check_spec(spec: AdamSpec, known: dict[str, set[str]], later: bool = False) -> list[Issue]:
    """Walk the steps with the variables available at each one; `known` gives the variables of every
    dataset the spec may read (SDTM domains of the input folder, ADaM datasets derived before).
    With `later`, the later steps, continuing from what the steps created."""
    issues: list[Issue] = []
    if not later:
        spec.created, spec.params = {}, set()
    cols: dict[str, int] = spec.created      # variable → index of the step that created it
    params: set[str] = spec.params

    def err(s: SpecStep, msg: str, key=None):
        line = line_of(spec.doc, [s.section, s.index, key]) if key else s.line
        issues.append(Issue("error", f"{s.where()}: {msg}", file=spec.file, line=line or s.line,
                            domain=spec.dataset))

    def need(s, key, var, pool, what):
        if var not in pool:
            hint = suggest(var, pool)
            err(s, f"{key}: {var} is not {what}{hint}", key)

    for s in (spec.later_steps if later else spec.steps):
        a = args_with_defaults(s.step, s.args)
        if later and s.step.adds_records:
            err(s, "later steps add variables, not records")
        if s.index == 0 and not s.step.starts and not later:
            err(s, "the first step must create the records (records, parameter, parameter_count, "
                   "parameter_haq_di)")
        if (s.index > 0 or later) and s.step.starts and not s.step.adds_records:
            err(s, "records can only start the dataset (use merge to add variables)")
        src_name = a.get("dataset")
        src_cols = known.get(src_name, set()) if src_name else set()
        if s.step.name == "joined" and isinstance(a.get("single_dose"), dict):
            from .joined import single_dose_columns
            sd = a["single_dose"]
            src_cols = set(src_cols) | set(single_dose_columns(sd.get("start", ""), sd.get("end", "")))
        if src_name and src_name not in known:
            err(s, f"dataset: {unknown_dataset(spec, src_name, known)}", "dataset")
            src_name = None
        mine = f"a variable of {spec.dataset} at this step"
        theirs = f"a variable of {src_name}"
        for name, arg in s.step.args.items():
            val = a.get(name)
            if val is None or val == [] or val == {}:
                continue
            if arg.kind == "var":
                need(s, name, val, cols, mine)
            elif arg.kind == "vars":
                for v in val:
                    need(s, name, v, cols, mine)
            elif arg.kind == "order":
                for v in order_columns(val)[0]:
                    need(s, name, v, cols, mine)
            elif arg.kind == "summaries":
                for v in summary_sources(val):
                    need(s, name, v, cols, mine)
            elif arg.kind in ("where", "expression"):
                for v in columns_of(val):
                    need(s, name, v, cols, mine)
            elif src_name and arg.kind == "source_var":
                need(s, name, val, src_cols, theirs)
            elif src_name and arg.kind == "source_vars":
                for v in val:
                    need(s, name, v, src_cols, theirs)
            elif src_name and arg.kind == "keep":
                for v in keep_map(val).values():
                    need(s, name, v, src_cols, theirs)
            elif src_name and arg.kind == "join_where":
                both = set(cols) | {c + ".join" if c in cols else c for c in src_cols}
                for v in columns_of(val):
                    need(s, name, v, both, f"a variable of {spec.dataset} at this step or of {src_name}")
            elif src_name and arg.kind == "source_where":
                for v in columns_of(val):
                    need(s, name, v, src_cols, theirs)
            elif arg.kind == "params" or (arg.kind == "paramcd" and name != "paramcd"):
                if "*" in params:
                    continue        # PARAMCD values come from data (records/recode): not known here
                for p in (val.values() if isinstance(val, dict) else [val]):
                    if p not in params:
                        err(s, f"{name}: parameter {p} is not created by an earlier step{suggest(p, params)}", name)
        if s.step.name == "last_date":           # the schema checked the shape of every source
            for j, src in enumerate(a.get("sources") or []):
                date_var = src.get("dtc") or src.get("date")
                if not src.get("dataset"):              # the dataset being derived
                    for v in [date_var] + columns_of(src.get("where") or {}):
                        need(s, "sources", v, cols, mine)
                elif src["dataset"] not in known:
                    err(s, f"sources[{j + 1}]: dataset {unknown_dataset(spec, src['dataset'], known)}", "sources")
                else:
                    for v in [date_var] + columns_of(src.get("where") or {}):
                        need(s, "sources", v, known[src["dataset"]], f"a variable of {src['dataset']}")
        if s.step.name == "extreme_event":        # the schema checked the shape of every event
            for j, ev in enumerate(a.get("events") or []):
                name_set, what = cols, mine
                if ev.get("dataset"):
                    if ev["dataset"] not in known:
                        err(s, f"events[{j + 1}]: dataset {unknown_dataset(spec, ev['dataset'], known)}", "events")
                        continue
                    name_set, what = known[ev["dataset"]], f"a variable of {ev['dataset']}"
                texts = list((ev.get("values") or {}).values()) + [ev.get("date") or ""]
                for v in columns_of(ev.get("where") or {}) + [n for t in texts if t for n in columns_of(t)]:
                    need(s, "events", v, name_set, what)
        if s.step.name == "basetype_records":        # conditions inside the list (the schema checked the shape)
            for b in a.get("basetypes") or []:
                for v in columns_of(b.get("where") or {}):
                    need(s, "basetypes", v, cols, mine)
        if s.step.name == "parameter_computed" and a.get("formula") not in FORMULAS:
            for p in formula_parameters(a.get("formula")):
                if "*" not in params and p not in params:
                    err(s, f"formula: parameter {p} is not created by an earlier step{suggest(p, params)}",
                        "formula")
        if s.step.name == "parameter_computed" and a.get("formula") in FORMULAS:
            req, opt = formula_roles(a["formula"])
            roles = set(a.get("inputs") or {})
            for r in sorted(roles - set(req) - set(opt)):
                err(s, f"inputs: {a['formula']} has no input {r!r}; it takes {', '.join(req + opt)}", "inputs")
            for r in req:
                if r not in roles:
                    err(s, f"inputs: {a['formula']} needs {r}", "inputs")
        if s.step.name == "parameter_acr":
            from .ra_scores import ACR_COMPONENTS
            roles = set(ACR_COMPONENTS) | {a.get("apr") or "crp"}
            for r in sorted(set(a.get("components") or {}) - roles):
                err(s, f"components: unknown component {r!r}{suggest(r, roles)}; ACR components are "
                       f"{', '.join(sorted(roles))}", "components")
        outputs = s.step.outputs(a)
        if s.step.name == "records" and not a.get("keep"):
            outputs += sorted(src_cols)         # every variable of the source
        for out in outputs:
            if out in cols and not s.step.adds_records:
                err(s, f"{out} already exists (created by step {cols[out] + 1})")
            cols.setdefault(out, s.index)
        if s.step.adds_records and a.get("paramcd"):
            params.add(a["paramcd"])
        elif "PARAMCD" in outputs:
            params.add("*")
    if spec.later_steps and not later:
        return issues                        # the output is complete after the later steps
    for name in spec.variables:
        if name not in cols:
            issues.append(Issue("error", f"variables: {name} is not created by any step"
                                f"{suggest(name, cols)}", file=spec.file,
                                line=spec.line("variables", name), domain=spec.dataset))
    return issues


def unknown_dataset(spec: AdamSpec, name: str, known) -> str:
    """Why a step cannot read dataset `name`, saying what is really wrong."""
    if name == spec.dataset:
        return (f"{name} is the dataset this spec derives: a step cannot read it; use the variables the "
                f"earlier steps created (the records are the working dataset)")
    there = f"; available: {', '.join(sorted(known))}"
    if name.startswith("AD"):
        return (f"{name} is neither an SDTM dataset of the input nor an ADaM dataset derived before "
                f"{spec.dataset} (no spec of the folder derives it){suggest(name, known)}{there}")
    return f"{name} is not in the input{suggest(name, known)}{there}"


def load_spec_folder(folder: Path) -> list[AdamSpec]:
    """Every `*.yaml` of an ADaM spec folder, each problem of every file reported together; ordered
    so that a dataset comes after those it reads (ADSL first)."""
    specs = load_each(Path(folder), Path(folder).name, load_spec, "dataset", "ADaM spec")
    return order_specs(specs)


def order_specs(specs: list[AdamSpec]) -> list[AdamSpec]:
    by_name = {s.dataset: s for s in specs}
    done, order, visiting = set(), [], set()

    def visit(s: AdamSpec, chain):
        if s.dataset in done:
            return
        if s.dataset in visiting:
            raise ConversionError([Issue("error", f"datasets read each other: {' -> '.join(chain + [s.dataset])}",
                                         file=s.file)])
        visiting.add(s.dataset)
        for dep in sorted(s.reads() & set(by_name)):
            if dep != s.dataset:
                visit(by_name[dep], chain + [s.dataset])
        visiting.discard(s.dataset)
        done.add(s.dataset)
        order.append(s)

    for s in sorted(specs, key=lambda s: (s.dataset != "ADSL", s.dataset)):
        visit(s, [])
    return order
