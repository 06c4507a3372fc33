"""Cerberus schemas for the YAML files, and error messages that point at a file, a line and a fix.

The schemas are the single description of what a mapping may say; the engine reads nothing that
has not passed them.
"""
from __future__ import annotations

import difflib

import cerberus

from .conditions import OPERATORS
from ..errors import ConversionError, Issue
from ..io.yamlio import line_of


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
        from ..expression import Expression, ExpressionError
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
def documented(schema: dict, docs: dict[str, str]) -> dict:
    """`schema` with each key's one-line meaning (Cerberus `meta`), from which tools/mapping_doc.py
    writes the reference of docs/mapping-language.md: a key without a meaning, or a meaning of no
    key, stops the import, so the reference cannot miss a key."""
    missing, extra = sorted(set(schema) - set(docs)), sorted(set(docs) - set(schema))
    if missing or extra:
        raise AssertionError(f"schema keys without a description: {missing}; descriptions of no key: {extra}")
    for key, text in docs.items():
        schema[key] = {**schema[key], "meta": {"doc": text}}
    return schema


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
documented(MELT["schema"], {
    "columns": "one column per test: the columns melted into one record each (with `value:`)",
    "pattern": "several columns per test, by name: a regular expression over whole column names with the "
               "named groups `test` and `attr` (GLUC_RES, GLUC_UNIT → test GLUC, attributes RES, UNIT)",
    "groups": "several columns per test, listed: {test: {attribute column: raw column}}",
    "name": "the column that receives each record's test (the melted column's name, the pattern's `test`, "
            "the group's name)",
    "value": "with `columns:`, the column that receives each melted value"})
documented(FILE_OPTIONS, {
    "file": "the raw file, relative to the study folder: .csv .txt .tsv .xlsx .xlsm .sas7bdat .xpt",
    "sep": "the field separator of a text file (default `,`; tab for .tsv)",
    "encoding": "the text encoding (default UTF-8; a byte-order mark is always removed)",
    "decimal": "the decimal sign of the file's numbers: `,` turns 1,25 into 1.25",
    "header_row": "the line holding the column names (default 1), when a row of labels is above it",
    "sheet": "the sheet of a workbook, by name or number (default: the first)",
    "rename": "{raw name: new name}, applied to this file before the files are stacked; a name the file "
              "does not have is an error",
    "constants": "{column: text}: columns holding one value for every row of this file (which form, visit or "
                 "site it is); a name the file already has is an error",
    "melt": "wide form → one record per test (§2); applied to this file before stacking"})

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
documented(SOURCE["schema"]["twin_columns"]["schema"], {
    "suffix": "the suffix of the coded twin columns (`AESEV - Code` beside `AESEV`)",
    "keep": "which of the two to read: the `decoded` value or the `code`"})
documented(SOURCE["schema"], {
    **{k: FILE_OPTIONS[k]["meta"]["doc"] + " (a source of one file)" for k in FILE_OPTIONS if k != "melt"},
    "files": "several files stacked into one source, each with its own reading options (the keys of a "
             "source of one file)",
    "domain": "an SDTM domain built before this one, as a source (`dm.RFSTDTC`), joined on `key:`",
    "key": "the columns joining this source to the primary rows (one row per key), or relating it for "
           "first_date/last_date/actual_arm_code",
    "where": "keep the rows meeting a condition (§6) on the source's columns, after melt",
    "dedupe": "exact duplicate rows: `report` drops the copies with a warning, `error` refuses them",
    "twin_columns": "exports writing a coded twin beside each decoded column",
    "melt": "wide form → one record per test (§2), after the files are stacked",
    "align": "files whose columns differ: `strict` (default) refuses them; `union` stacks them, a column "
             "missing from a file empty for its rows"})

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
    "year_window": {"type": "integer", "min": 1000, "max": 9899},
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
documented(RULE_KEYS, {
    "from": "a raw column (`alias.COLUMN`) or target variable; a list: the first non-missing wins",
    "constant": "one value for every record (true/false are Y/N; null is missing)",
    "template": "text with {parts}: target variables, raw columns or expressions; an empty part is an error",
    "date": "a raw date (and time: [date column, time column]) to ISO 8601 (§4)",
    "first_date": "the earliest date of a related source per key (§3)",
    "last_date": "the latest date of a related source per key (§3)",
    "derive": "a named derivation (§5) with its arguments as further keys",
    "compute": "the value of an expression (docs/expressions.md)",
    "format": "the raw date layout(s) of `date:` (dd-MMM-yyyy, yyyy-MM-dd, …)",
    "time_format": "the raw time layout(s) of `date:`'s time column (HH:mm, HHmm, …)",
    "unknown": "the texts meaning an unknown date part; replaces the default list (UN, UNK, UNKN, UNKNOWN, --)",
    "year_window": "with a 2-digit year format (dd-MMM-yy): the first of the 100 years the two digits stand "
                   "for (1930: 30 is 1930, 29 is 2029)",
    "codelist": "the CDISC codelist the values must belong to (name or C-code)",
    "synonyms": "a study synonym table applied before the codelist: inline, a YAML file, or the export's "
                "codelist file",
    "extensible": "accept values outside an extensible codelist (as warnings)",
    "map": "recode exact raw values (others pass through): inline or from the export's codelist file",
    "case": "change the case: upper, lower or title",
    "numeric": "read the value as a number (numeric IG variables always are)",
    "supp": "send the variable to SUPP-- (true, or {qnam, label, orig, eval})",
    "transliterate": "replace non-ASCII characters (°C → deg C) instead of refusing them",
    "where": "keep the value only where a condition (§6) holds, missing elsewhere",
    "else": "a complete rule for the records where this one gives no value (nested up to 5 deep)"})
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
documented(TABLE_FILE_SCHEMA, {
    "file": "the export's codelist file, relative to the study folder (CSV, workbook or SAS file)",
    "item": "the item (codelist) whose rows give the table",
    "item_column": "the column naming the item (default ITEM)",
    "code": "the column of the raw codes (default CODE)",
    "decode": "the column of what each code means (default DECODE)",
    "sep": "the field separator of a text file",
    "encoding": "the text encoding of a text file",
    "sheet": "the sheet of a workbook"})


def table_file(value) -> bool:
    """A `synonyms:`/`map:` mapping that names a codelist file rather than listing the table."""
    return isinstance(value, dict) and "file" in value


ALGORITHMS = ("from", "constant", "template", "compute", "date", "first_date", "last_date", "derive")

SUPP_SCHEMA = {"qnam": {"type": "string", "regex": r"[A-Z][A-Z0-9_]{0,7}"},
               "label": {"type": "string", "maxlength": 40},
               "orig": {"type": "string",  # Define-XML origin types, in the case the sponsor writes
                        "regex": r"(?i)(CRF|ASSIGNED|DERIVED|PROTOCOL|EDT|COLLECTED|PREDECESSOR|eDT)"},
               "eval": {"type": "string"}}
documented(SUPP_SCHEMA, {
    "qnam": "QNAM (default: the variable's name)",
    "label": "QLABEL, at most 40 characters",
    "orig": "QORIG: CRF, ASSIGNED, DERIVED, PROTOCOL, eDT, COLLECTED, PREDECESSOR",
    "eval": "QEVAL, the evaluator (e.g. INVESTIGATOR)"})

AGGREGATE_SCHEMA = {"source": {"type": "string", "required": True},
                    "date": {"type": "string", "required": True},
                    "time": {"type": "string"},
                    "format": {"type": ["string", "list"], "required": True},
                    "time_format": {"type": ["string", "list"]},
                    "unknown": {"type": "list", "schema": {"type": "string"}},
                    "year_window": {"type": "integer", "min": 1000, "max": 9899},
                    "where": COND}
documented(AGGREGATE_SCHEMA, {
    "source": "the related source (its `key:` relates it to the primary rows)",
    "date": "its date column",
    "time": "its time column",
    "format": "the date layout(s)",
    "time_format": "the time layout(s)",
    "unknown": "the texts meaning an unknown date part (replaces the default list)",
    "year_window": "the first of the 100 years a 2-digit year stands for",
    "where": "only the rows meeting a condition (§6) on the related source's columns"})

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
documented(TEST_ENTRY["schema"], {
    "match": "the raw test name(s) (or codes with `match_codes:`) of this test, matched exactly, then in "
             "any case",
    "testcd": "the --TESTCD",
    "codelist": "the codelist of the test's coded results (null: none)",
    "test": "the --TEST, for a sponsor code (at most 40 characters); CT codes take the CT name",
    "unit": "the standard unit: the test is numeric",
    "units": "{collected unit: standard spelling}: units that are the same under another name",
    "convert": "{collected unit: factor or formula over `value`} to the standard unit",
    "decimals": "decimals of the standard results and ranges (rounded once)",
    "set": "{VARIABLE: value}: per-test constants of variables the mapping does not map (LBCAT, LBSPEC)",
    "numeric": "the results must be numbers even without a unit",
    "results": "{raw text: result}: text results of this test (NEGATIVE, 'Not detected': 0)"})

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
documented(MAPPING_SCHEMA["tests"]["schema"], {
    "from": "the raw column holding the test names (`alias.COLUMN`)",
    "codelist": "the --TESTCD codelist (LBTESTCD, VSTESTCD, …)",
    "test_codelist": "the --TEST codelist, where it is not the paired one of `codelist`",
    "match_codes": "the raw column holds test codes, matched against each entry's `match:`",
    "results": "{raw text: result}: text results shared by every test",
    "entries": "the tests, one mapping each"})
documented(MAPPING_SCHEMA, {
    "domain": "the SDTMIG dataset this file builds",
    "description": "free text for the reader",
    "sources": "{alias: source}: where the records come from; the first is the primary one (one record "
               "per row)",
    "tests": "findings: the tests dictionary (§7)",
    "sort": "the record order (default STUDYID, USUBJID, --SEQ)",
    "keys": "the natural key, checked for duplicates",
    "variables": "{VARIABLE: rule}: how each target variable is obtained (§3)"})
