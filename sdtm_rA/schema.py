"""Cerberus schemas for the YAML files, and error messages that point at a file, a line and a fix.

The schemas are the single description of what a mapping may say; the engine reads nothing that
has not passed them.
"""
from __future__ import annotations

import difflib

import cerberus

from .conditions import OPERATORS
from .errors import ConversionError, Issue
from .yamlio import line_of


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _walk_errors(error_tree, path, out):
    """Flatten Cerberus' nested error dict into (path, message) pairs."""
    if isinstance(error_tree, dict):
        for key, sub in error_tree.items():
            _walk_errors(sub, path + [key], out)
    elif isinstance(error_tree, list):
        for item in error_tree:
            _walk_errors(item, path, out)
    else:
        out.append((path, str(error_tree)))


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _values(v) -> bool:
    return _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v))


def condition_problems(cond) -> list[str]:
    """Why a `where:` condition is not one the engine can evaluate with certainty: a nested list
    (`[[A]]` would compare against the text "['A']" and match nothing), an unknown operator (a typo
    such as `emtpy` would otherwise be ignored), `empty:` that is not a boolean."""
    return [msg for _, msg in condition_paths(cond)]


def condition_paths(cond) -> list[tuple[list, str]]:
    """condition_problems, each with the keys leading to the offending part (for its line)."""
    if not isinstance(cond, dict):
        return []  # the `type: dict` rule says it
    allowed = ", ".join(OPERATORS)
    out = []
    for key, test in cond.items():
        if isinstance(test, dict):
            if not test:
                out.append(([key], f"{key}: an empty operator mapping; allowed operators: {allowed}"))
            for op, value in test.items():
                if op not in OPERATORS:
                    out.append(([key, op], f"{key}: unknown operator '{op}'{suggest(op, OPERATORS)}; "
                                f"allowed operators: {allowed}"))
                elif op == "empty" and not isinstance(value, bool):
                    out.append(([key, op], f"{key}: `empty:` takes true or false, not {value!r}"))
                elif op != "empty" and not _values(value):
                    out.append(([key, op], f"{key}: `{op}:` takes a value or a list of values, not {value!r}"))
        elif not _values(test):
            out.append(([key], f"{key}: {test!r} is not a condition (a list or mapping inside a list); give "
                        f"a value, a list of values, or one of the operators {allowed}"))
    return out


def allowed_text(values) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


class ErrorHandler(cerberus.errors.BasicErrorHandler):
    """Cerberus' messages, with every 'unallowed value' naming the values that are allowed."""

    def _format_message(self, field, error):
        if error.code in (cerberus.errors.UNALLOWED_VALUE.code, cerberus.errors.UNALLOWED_VALUES.code):
            allowed = list(error.constraint or [])
            given = error.value if error.code == cerberus.errors.UNALLOWED_VALUE.code else error.info[0]
            hint = suggest(given, allowed) if isinstance(given, str) else ""
            return f"unallowed value {given!r}{hint}; allowed: {allowed_text(allowed)}"
        return super()._format_message(field, error)


class Validator(cerberus.Validator):
    """Cerberus plus the checks a plain schema cannot express (`check_with: condition`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("error_handler", ErrorHandler)
        super().__init__(*args, **kwargs)

    def _check_with_condition(self, field, value):
        if isinstance(value, str):
            self._check_with_expression(field, value)
        for problem in condition_problems(value):
            self._error(field, problem)

    def _check_with_template(self, field, value):
        import re
        for part in re.findall(r"\{([^{}]+)\}", value):
            self._check_with_expression(field, part)

    def _check_with_expression(self, field, value):
        from .expression import Expression, ExpressionError
        try:
            Expression(value)
        except ExpressionError as exc:
            self._error(field, exc.located())


def error_texts(errors) -> list[str]:
    """Cerberus' nested error lists as plain sentences."""
    pairs: list = []
    _walk_errors(errors, [], pairs)
    return [".".join(str(p) for p in path) + (": " if path else "") + msg for path, msg in pairs]


def schema_issues(doc, schema: dict, file: str, allow_unknown=False) -> list[Issue]:
    validator = Validator(schema, allow_unknown=allow_unknown)
    if not isinstance(doc, dict):
        return [Issue("error", "expected a mapping of keys at the top level", file=file, line=1)]
    return node_issues(doc, schema, file, doc, [], allow_unknown=allow_unknown, validator=validator)


def node_issues(value: dict, schema: dict, file: str, doc, path: list, prefix: str = "",
                allow_unknown=False, validator=None) -> list[Issue]:
    """The problems of `value` (the node at `path` of `doc`) against `schema`, each at its own line;
    an unknown key names the keys allowed there."""
    validator = validator or Validator(schema, allow_unknown=allow_unknown)
    if validator.validate(dict(value)):
        return []
    pairs: list = []
    _walk_errors(validator.errors, [], pairs)
    issues = []
    for sub, msg in pairs:
        name = prefix + ".".join(str(p) for p in sub)
        where = sub
        if sub and (_schema_at(schema, sub[:-1]) or {}).get(sub[-1], {}).get("check_with") == "condition":
            node = value
            for step in sub:
                node = node[step]
            where = sub + next((keys for keys, text in condition_paths(node) if text == msg), [])
        if msg == "unknown field":
            parent = _schema_at(schema, sub[:-1])
            msg = unknown_key(sub[-1], parent.keys() if parent else [])
        issues.append(Issue("error", f"{name}: {msg}" if name else msg, file=file,
                            line=line_of(doc, path + where)))
    return issues


def unknown_key(key, allowed) -> str:
    allowed = list(allowed)
    return f"unknown key '{key}'{suggest(key, allowed)}; allowed keys: {', '.join(map(str, allowed))}"


def _schema_at(schema, path):
    """The {key: rule} schema of the mapping at `path`; None where its keys are free (names)."""
    node = {"type": "dict", "schema": schema}
    for step in path:
        if node.get("type") == "list" and isinstance(step, int) and isinstance(node.get("schema"), dict):
            node = node["schema"]
        elif isinstance(node.get("schema"), dict) and node.get("type") != "list":
            node = node["schema"].get(step)
        elif isinstance(node.get("valuesrules"), dict):
            node = node["valuesrules"]
        else:
            return None
        if not isinstance(node, dict):
            return None
    fields = node.get("schema")
    return fields if isinstance(fields, dict) and node.get("type") != "list" else None


def validate_document(doc, schema, file, what="document", allow_unknown=False):
    issues = schema_issues(doc, schema, file, allow_unknown=allow_unknown)
    if issues:
        raise ConversionError(issues)


# ---------------------------------------------------------------------------------------------
# Mapping files
COND = {"type": ["dict", "string"], "keysrules": {"type": "string"}, "check_with": "condition",
        "valuesrules": {"type": ["string", "number", "boolean", "list", "dict"], "nullable": True}}

FILE_OPTIONS = {
    "file": {"type": "string", "required": True},
    "sep": {"type": "string", "maxlength": 2},
    "encoding": {"type": "string"},
    "decimal": {"type": "string", "allowed": [".", ","]},
    "header_row": {"type": "integer", "min": 1},
    "sheet": {"type": ["string", "integer"]},
    "rename": {"type": "dict", "keysrules": {"type": "string"}, "valuesrules": {"type": "string"}},
    # columns with one value for every row of the file (which form or visit a file is)
    "constants": {"type": "dict", "minlength": 1, "keysrules": {"type": "string", "empty": False},
                  "valuesrules": {"type": "string"}},
}
MELT = {"type": "dict", "schema": {
    # one column per test: `columns` + `value`; several columns per test: `pattern` or `groups`
    "columns": {"type": "list", "schema": {"type": "string"}},
    "pattern": {"type": "string", "empty": False},
    "groups": {"type": "dict", "minlength": 1, "keysrules": {"type": "string", "empty": False},
               "valuesrules": {"type": "dict", "minlength": 1, "keysrules": {"type": "string", "empty": False},
                               "valuesrules": {"type": "string", "empty": False}}},
    "name": {"type": "string", "required": True, "empty": False},
    "value": {"type": "string", "empty": False}}}
MELT_FORMS = ("columns", "pattern", "groups")
FILE_OPTIONS["melt"] = MELT

SOURCE = {"type": "dict", "schema": {
    **{k: dict(v, required=False) for k, v in FILE_OPTIONS.items()},
    "files": {"type": "list", "schema": {"type": "dict", "schema": FILE_OPTIONS}},
    "domain": {"type": "string", "regex": r"[A-Z]{2}[A-Z0-9]*"},
    "key": {"type": "list", "schema": {"type": "string"}},
    "where": COND,
    "dedupe": {"type": "string", "allowed": ["report", "error"]},
    "twin_columns": {"type": "dict", "schema": {
        "suffix": {"type": "string", "required": True},
        "keep": {"type": "string", "allowed": ["decoded", "code"], "required": True}}},
    "melt": MELT,
    "align": {"type": "string", "allowed": ["strict", "union"]},
}}

# Keys that a variable rule may carry besides a derivation's own arguments.
RULE_KEYS = {
    "from": {"type": ["string", "list"]},
    "constant": {"type": ["string", "number", "boolean"], "nullable": True},
    "template": {"type": "string", "check_with": "template"},
    "date": {"type": ["string", "list"]},
    "first_date": {"type": "dict"},
    "last_date": {"type": "dict"},
    "derive": {"type": "string"},
    "compute": {"type": "string", "check_with": "expression"},
    "format": {"type": ["string", "list"]},
    "time_format": {"type": ["string", "list"]},
    "unknown": {"type": "list", "schema": {"type": "string"}},
    "codelist": {"type": "string"},
    "synonyms": {"type": ["dict", "string"]},
    "extensible": {"type": "boolean"},
    "map": {"type": "dict"},
    "case": {"type": "string", "allowed": ["upper", "lower", "title"]},
    "numeric": {"type": "boolean"},
    "supp": {"type": ["boolean", "dict"]},
    "transliterate": {"type": "boolean"},
    "where": COND,
    "else": {"type": "dict"},
}
# `synonyms:` / `map:` read from the export's own codelist file: one row per item, code and decode
TABLE_FILE_SCHEMA = {"file": {"type": "string", "required": True, "empty": False},
                     "item": {"type": "string", "required": True, "empty": False},
                     "item_column": {"type": "string", "empty": False},
                     "code": {"type": "string", "empty": False},
                     "decode": {"type": "string", "empty": False},
                     "sep": {"type": "string", "maxlength": 2},
                     "encoding": {"type": "string"},
                     "sheet": {"type": ["string", "integer"]}}
TABLE_FILE_DEFAULTS = {"item_column": "ITEM", "code": "CODE", "decode": "DECODE"}


def table_file(value) -> bool:
    """A `synonyms:`/`map:` mapping that names a codelist file rather than listing the table."""
    return isinstance(value, dict) and "file" in value


ALGORITHMS = ("from", "constant", "template", "compute", "date", "first_date", "last_date", "derive")

SUPP_SCHEMA = {"qnam": {"type": "string", "regex": r"[A-Z][A-Z0-9_]{0,7}"},
               "label": {"type": "string", "maxlength": 40},
               "orig": {"type": "string",  # Define-XML origin types, in the case the sponsor writes
                        "regex": r"(?i)(CRF|ASSIGNED|DERIVED|PROTOCOL|EDT|COLLECTED|PREDECESSOR|eDT)"},
               "eval": {"type": "string"}}

AGGREGATE_SCHEMA = {"source": {"type": "string", "required": True},
                    "date": {"type": "string", "required": True},
                    "time": {"type": "string"},
                    "format": {"type": ["string", "list"], "required": True},
                    "time_format": {"type": ["string", "list"]},
                    "unknown": {"type": "list", "schema": {"type": "string"}},
                    "where": COND}

TEST_ENTRY = {"type": "dict", "schema": {
    "match": {"type": ["string", "list", "number"], "required": True},
    "testcd": {"type": "string", "required": True, "regex": r"[A-Z][A-Z0-9_]{0,7}"},
    "codelist": {"type": "string", "nullable": True},
    "test": {"type": "string", "maxlength": 40},
    "unit": {"type": "string"},
    "units": {"type": "dict"},
    "convert": {"type": "dict", "valuesrules": {"type": ["number", "string"]}},
    "decimals": {"type": "integer", "min": 0, "max": 10},
    "set": {"type": "dict"},
    "numeric": {"type": "boolean"},
    "results": {"type": "dict"},
}}

MAPPING_SCHEMA = {
    "domain": {"type": "string", "required": True, "regex": r"[A-Z]{2}"},
    "description": {"type": "string"},
    "sources": {"type": "dict", "required": True, "minlength": 1,
                "keysrules": {"type": "string", "regex": r"[A-Za-z_][A-Za-z0-9_]*"},
                "valuesrules": SOURCE},
    "tests": {"type": "dict", "schema": {
        "from": {"type": "string", "required": True},
        "codelist": {"type": "string"},
        "test_codelist": {"type": "string"},
        "match_codes": {"type": "boolean"},
        "results": {"type": "dict"},
        "entries": {"type": "list", "schema": TEST_ENTRY}}},
    "sort": {"type": "list", "schema": {"type": "string"}},
    "keys": {"type": "list", "schema": {"type": "string"}},
    "variables": {"type": "dict", "required": True, "keysrules": {"type": "string"},
                  "valuesrules": {"type": "dict"}},
}
