"""Findings: which test each raw row is, and its standardised result.

A test dictionary (`tests:` in the mapping) recognises each collected test name, gives its --TESTCD
(checked against the CT, --TEST from the paired codelist), its standard unit and the factors that
convert collected units to it. Results are converted once, numbers formatted without float noise,
censored values ('<0.5') converted but kept as text with no numeric result.
"""
from __future__ import annotations

import math
import re
import sys
from decimal import Decimal

import numpy as np
import pandas as pd

from .errors import ConversionError, Issue, shown

CENSORED = re.compile(r"^\s*(<=|>=|<|>)\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")
NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def paired_codelist(short: str) -> str | None:
    """LBTESTCD → LBTEST, HAQ01TC → HAQ01TN, MUSCTSCD → MUSCTS: the CT's naming of test-name lists."""
    for code_suffix, name_suffix in (("TESTCD", "TEST"), ("TC", "TN"), ("CD", "")):
        if short.endswith(code_suffix):
            return short[: -len(code_suffix)] + name_suffix
    return None


def assign_tests(ctx) -> None:
    """Match every row's collected test name to a dictionary entry (all unmatched names at once)."""
    spec = ctx.mapping.tests
    if not spec:
        return
    m = ctx.mapping
    entries = list(spec.get("entries", []))
    default_cl = spec.get("codelist")
    exact, folded = {}, {}
    issues = []
    for i, e in enumerate(entries):
        for name in (e["match"] if isinstance(e["match"], list) else [e["match"]]):
            key = str(name)
            if key in exact and exact[key] != i:
                issues.append(Issue("error", f"tests: '{key}' matches two entries",
                                    file=m.file, line=m.line("tests", "entries", i)))
            exact[key] = i
            folded.setdefault(key.strip().upper(), i)
    rows = []
    for i, e in enumerate(entries):
        cl_key = e["codelist"] if "codelist" in e else default_cl
        testcd, test = e["testcd"], e.get("test")
        line = m.line("tests", "entries", i)
        if cl_key:
            try:
                cl = ctx.ct.codelist(cl_key)
            except KeyError as exc:
                issues.append(Issue("error", f"tests: {exc.args[0]}", file=m.file, line=line))
                cl = None
            if cl is not None and testcd not in cl.values:
                if not cl.extensible:
                    issues.append(Issue("error", f"tests: {testcd} is not in non-extensible codelist "
                                        f"{cl.short_name} ({cl.code})", file=m.file, line=line,
                                        value=testcd))
                elif not test:
                    issues.append(Issue("error", f"tests: {testcd} is not in codelist {cl.short_name} "
                                        f"({cl.code}); a sponsor-defined code needs `test:` (its name)",
                                        file=m.file, line=line, value=testcd))
            name_cl = (spec.get("test_codelist") if cl_key == default_cl else None) or \
                (paired_codelist(cl.short_name) if cl is not None else None)
            if cl is not None and testcd in cl.values and not test:
                test = _paired(ctx, cl.short_name, testcd, name_cl)
                if not test:
                    issues.append(Issue("error", f"tests: no test name for {testcd} in codelist "
                                        f"{name_cl}; give `test:`", file=m.file, line=line))
            elif cl is not None and testcd in cl.values:
                # SD0205: a sponsor's name that CT gives to another code says two different things
                other = _paired(ctx, name_cl, test, cl.short_name)
                if other and other != testcd:
                    issues.append(Issue("error", f"tests: '{test}' is the CT name of {other} "
                                        f"({name_cl}), not of {testcd}: drop `test:` to take "
                                        f"{testcd}'s CT name", file=m.file, line=line, value=test))
        elif not test:
            issues.append(Issue("error", f"tests: {testcd} has no codelist to take its name from; "
                                "give `test:`", file=m.file, line=line))
        if test and len(test) > 40:
            issues.append(Issue("error", f"tests: test name '{test}' is longer than 40 characters",
                                file=m.file, line=line))
        issues += _table_issues(m, e, ("tests", "entries", i))
        rows.append({"testcd": testcd, "test": test or "", "unit": e.get("unit", ""),
                     "convert": e.get("convert", {}), "units": e.get("units", {}),
                     "decimals": e.get("decimals"), "set": e.get("set", {}),
                     "results": {**spec.get("results", {}), **e.get("results", {})}, "line": line})
    issues += _table_issues(m, spec, ("tests",))
    if ctx.domain != "QS":  # QS pairs codes and names within QSCAT, which may come from the data
        issues += _one_to_one(m, rows)
    if issues:
        raise ConversionError(issues)
    names = ctx.column(spec["from"]).fillna("").astype(str)
    table = {}
    for value in names.unique():
        table[value] = exact.get(value, folded.get(value.strip().upper(), -1))
        if table[value] < 0 and spec.get("match_codes") and default_cl:
            # The raw value is itself a term of the codelist (e.g. an EDC that stores HAQ0101).
            code = ctx.ct.codelist(default_cl).lookup(value)
            if code is not None:
                name_cl = spec.get("test_codelist") or paired_codelist(ctx.ct.codelist(default_cl).short_name)
                test = ctx.ct.paired_value(default_cl, code, name_cl) if name_cl else None
                rows.append({"testcd": code, "test": test or "", "unit": "", "convert": {}, "units": {},
                             "decimals": None, "set": {}, "results": dict(spec.get("results", {})),
                             "line": m.line("tests", "from")})
                table[value] = len(rows) - 1
    which = names.map(table)
    bad = names[which < 0]
    if len(bad):
        ctx.report_values("", bad, lambda v: f"collected test name {shown(v)} matches no entry of `tests:`",
                          path=("tests",))
        raise ConversionError(ctx.issues.errors)
    ctx.test_entries = rows
    ctx.tests = pd.DataFrame({"entry": which.astype(int)}, index=ctx.index)
    for col in ("testcd", "test", "unit"):
        ctx.tests[col] = which.map({i: r[col] for i, r in enumerate(rows)})


def _paired(ctx, from_cl: str | None, value: str, to_cl: str) -> str | None:
    """The CT term paired with `value` (same C-code), or None (no such codelist or term)."""
    if not from_cl:
        return None
    try:
        return ctx.ct.paired_value(from_cl, value, to_cl)
    except KeyError:
        return None


def _one_to_one(m, rows: list[dict]) -> list[Issue]:
    """One name per --TESTCD and one --TESTCD per name (SD0303, SD0304): two entries that disagree
    would give a domain two tests under one code."""
    issues = []
    for key, other, what in (("testcd", "test", "test name"), ("test", "testcd", "test code")):
        first: dict = {}
        for r in rows:
            seen = first.setdefault(r[key], r)
            if seen[other] != r[other]:
                issues.append(Issue("error", f"tests: {r[key]} has a second {what} ('{r[other]}'; the "
                                    f"entry at line {seen['line']} gives '{seen[other]}')",
                                    file=m.file, line=r["line"], value=r[key]))
    return issues


def _table_issues(m, node: dict, path: tuple) -> list[Issue]:
    """`results:` and `convert:` values that would silently become wrong data: a YAML boolean or null
    (`yes` → 'True'), a non-finite number, a conversion factor that is not a positive number."""
    issues = []
    for key, value in (node.get("results") or {}).items():
        if isinstance(key, bool) or key is None or isinstance(value, bool) or value is None \
                or isinstance(value, (dict, list)) \
                or (isinstance(value, float) and not math.isfinite(value)):
            issues.append(Issue("error", f"tests: results: {key!r}: {value!r} is not a result text or a finite "
                                "number (quote yes/no/true/false/null to mean the text)", file=m.file,
                                line=m.line(*path, "results", key) or m.line(*path)))
    for unit, factor in (node.get("convert") or {}).items():
        if isinstance(factor, bool) or not math.isfinite(factor) or factor <= 0:
            issues.append(Issue("error", f"tests: convert: {unit}: {factor!r} is not a positive finite factor",
                                file=m.file, line=m.line(*path, "convert", unit) or m.line(*path)))
    return issues


def entry_of(ctx):
    if ctx.tests is None:
        raise ConversionError([Issue("error", "this derivation needs a `tests:` dictionary",
                                     file=ctx.mapping.file)])
    return ctx.tests["entry"]


def format_number(x: float, decimals: int | None = None) -> str:
    """A number as SDTM text: rounded once, no float noise (0.1*3 → '0.3'), no trailing zeros.

    Plain decimal notation, never an exponent: 10 significant digits (more when the integer part
    has more, up to 15), so 1e-12 is '0.000000000001' and 12345678901 stays whole. A non-zero number
    never becomes '0': with `decimals` that would round it to 0, ValueError. Non-finite numbers must
    be refused by the caller (parsing does); they are written as Python spells them."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if not math.isfinite(x):
        return str(x)
    if decimals is not None:
        rounded = round(x, decimals)
        if rounded == 0 and x != 0:
            raise ValueError(f"{format_number(x)} rounds to 0 at {decimals} decimals")
        text = f"{rounded:.{decimals}f}"
    else:
        digits = 10
        if x != 0:
            digits = min(15, max(10, math.floor(math.log10(abs(x))) + 1))
        text = format(Decimal(f"{x:.{digits}g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def conversion_factors(ctx, variable, units: pd.Series) -> pd.Series:
    """Per row, the factor from the collected unit to the test's standard unit (NaN: no conversion)."""
    entries = entry_of(ctx)
    units = units.fillna("").astype(str)
    factors = pd.Series(np.nan, index=ctx.index)
    combos = pd.DataFrame({"e": entries, "u": units}).drop_duplicates()
    for e, u in combos.itertuples(index=False):
        entry = ctx.test_entries[e]
        std = entry["unit"]
        mask = (entries == e) & (units == u)
        u_std = entry["units"].get(u, u)
        if u_std == std or u == "" or not std:
            factors[mask] = 1.0
            continue
        factor = entry["convert"].get(u, entry["convert"].get(u_std))
        if factor is None:
            ctx.issues.error(f"{entry['testcd']}: no conversion from {shown(u)} to the standard unit "
                             f"'{std}' (add it under `convert:` of the test) ({ctx.raw_lines(mask)})",
                             value=u, file=ctx.mapping.file, line=entry["line"], domain=ctx.domain,
                             variable=variable)
            continue
        factors[mask] = float(factor)
    return factors


def standard_result(ctx, variable, result: pd.Series, units: pd.Series) -> pd.Series:
    """--STRESC: numbers and censored values converted; text results through the test's `results:`.

    A test with a standard unit is numeric: a result that is neither a number, a censored number nor
    a declared text result would be labelled in that unit without being one, so it is an error."""
    from .domain import rows_by_code
    entries = entry_of(ctx)
    factors = conversion_factors(ctx, variable, units)
    text = result.fillna("").astype(str).str.strip()
    # factors are positive: -1 stands for 'no factor' (a unit problem, already reported)
    frame = pd.DataFrame({"e": entries.to_numpy(), "t": text.to_numpy(), "f": factors.fillna(-1.0).to_numpy()})
    codes = frame.groupby(["e", "t", "f"], sort=False).ngroup().to_numpy()
    distinct = frame.drop_duplicates()        # in first-appearance order, as ngroup numbers them
    results = np.empty(len(distinct), dtype=object)
    problems: dict = {}
    for k, (e, t, f) in enumerate(distinct.itertuples(index=False)):
        try:
            results[k] = _convert_one(t, f if f > 0 else math.nan, ctx.test_entries[e])
        except ValueError as exc:
            results[k] = ""
            problems.setdefault((e, t, str(exc)), []).append(k)
    active = np.ones(len(codes), dtype=bool) if ctx.active is None else \
        ctx.active.reindex(ctx.index, fill_value=False).to_numpy(dtype=bool)
    rows = rows_by_code(codes, active, ctx.index, {k for ks in problems.values() for k in ks})
    for (e, t, why), ks in sorted(problems.items(), key=lambda kv: kv[0][:2]):
        found = [rows[k] for k in ks if k in rows]
        if found:
            entry = ctx.test_entries[e]
            ctx.issues.error(f"{entry['testcd']}: result {shown(t)} {why} "
                             f"({ctx.raw_lines(found[0].append(found[1:]))})", value=t,
                             file=ctx.mapping.file, line=entry["line"], domain=ctx.domain, variable=variable)
    return pd.Series(results[codes] if len(codes) else [], index=ctx.index, dtype=object)


NOT_A_RESULT = ("is not a number, a censored number ('<0.5') or a text result declared under "
                "`results:` of the test or of `tests:` (the test has a standard unit, so it is numeric)")


def _convert_one(text: str, factor: float, entry) -> str:
    if text == "":
        return ""
    if text in entry["results"]:
        return _result_text(entry["results"][text])
    folded = {str(k).upper(): v for k, v in entry["results"].items()}
    if text.upper() in folded:
        return _result_text(folded[text.upper()])
    if factor != factor:  # NaN: unit problem already reported
        return ""
    if NUMBER.match(text):
        return _scaled(text, factor, entry)
    m = CENSORED.match(text)
    if m:
        return m.group(1) + _scaled(m.group(2), factor, entry)
    if entry["unit"]:
        raise ValueError(NOT_A_RESULT)
    return text


def _result_text(v) -> str:
    return format_number(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _scaled(number: str, factor: float, entry) -> str:
    """A collected number in the standard unit, refusing what a float cannot carry faithfully."""
    x, why = read_number(number)
    if why:
        raise ValueError(why)
    y = x * factor
    if not math.isfinite(y) or (x != 0 and abs(y) < sys.float_info.min):
        raise ValueError(f"is out of the range of numbers once converted to {entry['unit']} "
                         f"(× {format_number(factor)})")
    decimals = entry["decimals"]
    if decimals is not None and y != 0 and round(y, decimals) == 0:
        raise ValueError(f"is {format_number(y)} {entry['unit']}, which `decimals: {decimals}` "
                         "would round to 0")
    return format_number(y, decimals)


TOO_LARGE = "is too large for a number (beyond 1.8E+308)"
TOO_SMALL = "is too small for a number (below 2.2E-308, it would become 0)"


def read_number(text: str) -> tuple[float, str]:
    """(value, '') for plain number text; (NaN, why) for text that is not one or that a float would
    turn into something else (1e999 → inf, 1e-400 → 0). '' is (NaN, '')."""
    if not text.strip():
        return math.nan, ""
    if not NUMBER.match(text):
        return math.nan, "is not a number"
    x = float(text)
    if math.isinf(x):
        return math.nan, TOO_LARGE
    if abs(x) < sys.float_info.min and re.search(r"[1-9]", re.split(r"[eE]", text)[0]):
        return math.nan, TOO_SMALL
    return x, ""


def standard_numeric(ctx, variable, stresc: pd.Series) -> pd.Series:
    """--STRESN: the value of number text; censored and text results have none. A number text that a
    float cannot hold (1e999) is an error, never inf."""
    if pd.api.types.is_numeric_dtype(stresc):
        return check_finite(ctx, variable, stresc.astype(float))
    text = stresc.fillna("").astype(str)
    codes, uniques = pd.factorize(text)
    read = [read_number(u) for u in uniques]
    values = np.array([v for v, _ in read], dtype=float)
    bad = {u: why for u, (_, why) in zip(uniques, read) if why and why != "is not a number"}
    if bad:
        ctx.report_values(variable, text[text.isin(list(bad))], lambda v: f"{shown(v)} {bad[v]}")
    return pd.Series(values[codes], index=stresc.index, dtype=float)


def check_finite(ctx, variable, values: pd.Series, path=()) -> pd.Series:
    """Numbers computed elsewhere (a YAML constant .inf, an overflowing product) are never inf."""
    inf = np.isinf(values.to_numpy(dtype=float))
    if inf.any():
        ctx.report_values(variable, values[inf].astype(str),
                          lambda v: f"'{v}' is not a finite number", path=path)
        values = values.where(~inf)
    return values
