"""Findings: which test each raw row is, and its standardised result.

A test dictionary (`tests:` in the mapping) recognises each collected test name, gives its --TESTCD
(checked against the CT, --TEST from the paired codelist), its standard unit and the factors that
convert collected units to it. Results are converted once, numbers formatted without float noise,
censored values ('<0.5') converted but kept as text with no numeric result.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .errors import ConversionError, Issue

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
            if cl is not None and testcd in cl.values and not test:
                name_cl = spec.get("test_codelist") if cl_key == default_cl else None
                name_cl = name_cl or paired_codelist(cl.short_name)
                test = ctx.ct.paired_value(cl.short_name, testcd, name_cl) if name_cl else None
                if not test:
                    issues.append(Issue("error", f"tests: no test name for {testcd} in codelist "
                                        f"{name_cl}; give `test:`", file=m.file, line=line))
        elif not test:
            issues.append(Issue("error", f"tests: {testcd} has no codelist to take its name from; "
                                "give `test:`", file=m.file, line=line))
        if test and len(test) > 40:
            issues.append(Issue("error", f"tests: test name '{test}' is longer than 40 characters",
                                file=m.file, line=line))
        rows.append({"testcd": testcd, "test": test or "", "unit": e.get("unit", ""),
                     "convert": e.get("convert", {}), "units": e.get("units", {}),
                     "decimals": e.get("decimals"), "set": e.get("set", {}),
                     "results": {**spec.get("results", {}), **e.get("results", {})}, "line": line})
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
        ctx.report_values("", bad, lambda v: f"collected test name '{v}' matches no entry of `tests:`",
                          path=("tests",))
        raise ConversionError(ctx.issues.errors)
    ctx.test_entries = rows
    ctx.tests = pd.DataFrame({"entry": which.astype(int)}, index=ctx.index)
    for col in ("testcd", "test", "unit"):
        ctx.tests[col] = which.map({i: r[col] for i, r in enumerate(rows)})


def entry_of(ctx):
    if ctx.tests is None:
        raise ConversionError([Issue("error", "this derivation needs a `tests:` dictionary",
                                     file=ctx.mapping.file)])
    return ctx.tests["entry"]


def format_number(x: float, decimals: int | None = None) -> str:
    """A number as SDTM text: rounded once, no float noise (0.1*3 → '0.3'), no trailing zeros."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if decimals is not None:
        text = f"{round(x, decimals):.{decimals}f}"
    else:
        text = f"{x:.10g}"
        if "e" in text:
            text = f"{x:.10f}"
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
            ctx.issues.error(f"{entry['testcd']}: no conversion from '{u}' to the standard unit "
                             f"'{std}' (add it under `convert:` of the test) ({ctx.raw_lines(mask)})",
                             value=u, file=ctx.mapping.file, line=entry["line"], domain=ctx.domain,
                             variable=variable)
            continue
        factors[mask] = float(factor)
    return factors


def standard_result(ctx, variable, result: pd.Series, units: pd.Series) -> pd.Series:
    """--STRESC: numbers and censored values converted; text results through the test's `results:`."""
    entries = entry_of(ctx)
    factors = conversion_factors(ctx, variable, units)
    text = result.fillna("").astype(str).str.strip()
    out = pd.Series("", index=ctx.index, dtype=object)
    frame = pd.DataFrame({"e": entries, "t": text, "f": factors})
    for (e, t, f), grp in frame.groupby(["e", "t", "f"], dropna=False, sort=False):
        entry = ctx.test_entries[e]
        out[grp.index] = _convert_one(t, f, entry)
    return out


def _convert_one(text: str, factor: float, entry) -> str:
    if text == "":
        return ""
    if text in entry["results"]:
        v = entry["results"][text]
        return format_number(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    folded = {str(k).upper(): v for k, v in entry["results"].items()}
    if text.upper() in folded:
        v = folded[text.upper()]
        return format_number(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    if factor != factor:  # NaN: unit problem already reported
        return ""
    if NUMBER.match(text):
        return format_number(float(text) * factor, entry["decimals"])
    m = CENSORED.match(text)
    if m:
        return m.group(1) + format_number(float(m.group(2)) * factor, entry["decimals"])
    return text


def standard_numeric(stresc: pd.Series) -> pd.Series:
    text = stresc.fillna("").astype(str)
    mask = text.str.match(NUMBER)
    return pd.to_numeric(text.where(mask, None), errors="coerce").astype(float)
