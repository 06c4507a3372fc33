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

from ..errors import ConversionError, Issue, shown

# Digits are 0-9 only: '４０' (full-width) or '٤٦' (Arabic-Indic), which float() would read, are not
# the plain numbers an SDTM value holds; such a value is reported, never read.
CENSORED = re.compile(r"^\s*(<=|>=|<|>)\s*([-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?)\s*$")
NUMBER = re.compile(r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")


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
    for key in ("codelist", "test_codelist"):  # once, even where no entry or name needs them
        if spec.get(key):
            try:
                ctx.ct.codelist(spec[key])
            except KeyError as exc:
                issues.append(Issue("error", f"tests: {key}: {exc.args[0]}", file=m.file,
                                    line=m.line("tests", key), value=spec[key]))
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
                if cl_key != default_cl:   # the dictionary's own codelist is reported above
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
            name_cl = _name_codelist(spec, cl_key, cl)
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
    table, nameless = {}, {}
    for value in names.unique():
        table[value] = exact.get(value, folded.get(value.strip().upper(), -1))
        if table[value] < 0 and spec.get("match_codes") and default_cl:
            # The raw value is itself a term of the codelist (e.g. an EDC that stores HAQ0101).
            cl = ctx.ct.codelist(default_cl)
            code = cl.lookup(value)
            if code is not None:
                name_cl = _name_codelist(spec, default_cl, cl)
                test = _paired(ctx, cl.short_name, code, name_cl)
                if not test:
                    nameless[value] = f"{code} has no test name in codelist {name_cl}"
                rows.append({"testcd": code, "test": test or "", "unit": "", "convert": {}, "units": {},
                             "decimals": None, "set": {}, "results": dict(spec.get("results", {})),
                             "line": m.line("tests", "from")})
                table[value] = len(rows) - 1
    which = names.map(table)
    bad = names[which < 0]
    if len(bad) or nameless:
        ctx.report_values("", bad, lambda v: f"collected test name {shown(v)} matches no entry of `tests:`",
                          path=("tests",))
        ctx.report_values("", names[names.isin(list(nameless))], lambda v: (
            f"collected test code {shown(v)}: {nameless[v]}; give it an entry with `test:`"), path=("tests",))
        raise ConversionError(ctx.issues.errors)
    ctx.test_entries = rows
    ctx.tests = pd.DataFrame({"entry": which.astype(int)}, index=ctx.index)
    for col in ("testcd", "test", "unit"):
        ctx.tests[col] = which.map({i: r[col] for i, r in enumerate(rows)})


def _name_codelist(spec: dict, cl_key: str | None, cl) -> str | None:
    """The codelist of the test names paired with test-code codelist `cl`: `test_codelist:` for the
    dictionary's own codelist, else the CT's naming (LBTESTCD → LBTEST)."""
    given = spec.get("test_codelist") if cl_key == spec.get("codelist") else None
    return given or (paired_codelist(cl.short_name) if cl is not None else None)


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
        if isinstance(factor, str):
            problem = formula_problem(factor)
            if problem:
                issues.append(Issue("error", f"tests: convert: {unit}: {problem}", file=m.file,
                                    line=m.line(*path, "convert", unit) or m.line(*path)))
        elif isinstance(factor, bool) or not math.isfinite(factor) or factor <= 0:
            issues.append(Issue("error", f"tests: convert: {unit}: {factor!r} is not a positive finite factor",
                                file=m.file, line=m.line(*path, "convert", unit) or m.line(*path)))
    return issues


def formula_problem(text: str) -> str:
    """Why a `convert:` formula is not a number computed from `value` (the result in the collected
    unit); '' when it is one."""
    from ..expression import NUMBER, Expression, ExpressionError
    try:
        expr = Expression(text)
        others = [n for n in expr.names if n != "value"]
        if others:
            return (f"a conversion formula reads only `value` (the result in the collected unit), not "
                    f"{', '.join(others)}: {text!r}")
        if "value" not in expr.names:
            return f"a conversion formula computes from `value` (the result in the collected unit): {text!r}"
        kind = expr.check(lambda n: NUMBER)
    except ExpressionError as exc:
        return exc.located()
    return "" if kind == NUMBER else f"a conversion formula gives a number, and {text!r} does not"


def converted(ctx, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """`x` in the standard unit: a conversion code is a positive factor, or -(k + 1) for the k-th
    `convert:` formula of the domain (conversion_factors); NaN stays NaN."""
    x = np.asarray(x, dtype=float)
    codes = np.asarray(codes, dtype=float)
    with np.errstate(over="ignore", under="ignore"):   # out_of_range says so, per value
        y = x * np.where(codes > 0, codes, np.nan)
    formulas = getattr(ctx, "conversion_formulas", [])
    for code in np.unique(codes[codes < 0]).tolist():
        from ..expression import Expression
        rows = codes == code
        expr = Expression(formulas[int(-code) - 1])
        y[rows] = expr.values(lambda name: pd.Series(x[rows]), n=int(rows.sum())).to_numpy(dtype=float)
    return y


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
        digits = 10   # below 1e9 the integer part has at most 10 digits: no log10 per value
        if abs(x) >= 1e9:
            digits = min(15, max(10, math.floor(math.log10(abs(x))) + 1))
        text = f"{x:.{digits}g}"
        if "e" in text:   # only Decimal spells an exponent out
            text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def number_texts(values: pd.Series) -> pd.Series:
    """format_number of each value of a numeric column, computed once per distinct value ('' where
    missing)."""
    table = {v: format_number(float(v)) for v in pd.unique(values.dropna().to_numpy())}
    return values.map(table).fillna("").astype(str)


def conversion_factors(ctx, variable, units: pd.Series) -> pd.Series:
    """Per row, the factor from the collected unit to the test's standard unit, decided once per
    distinct (test, unit) pair; a `convert:` formula is coded -(k + 1) (see `converted`). NaN: no
    conversion (reported here), or no collected unit for a test with a standard unit (reported where
    a number meets it: a text result needs no unit)."""
    entries = entry_of(ctx).to_numpy(dtype=np.int64)
    u_codes, u_uniq = pd.factorize(units.fillna("").astype(str))
    codes, pairs = pd.factorize(entries * max(len(u_uniq), 1) + u_codes)
    per_pair = np.full(len(pairs), np.nan)
    for k, (e, u) in enumerate(zip(pairs // max(len(u_uniq), 1), pairs % max(len(u_uniq), 1))):
        entry, u = ctx.test_entries[e], str(u_uniq[u])
        std = entry["unit"]
        u_std = entry["units"].get(u, u)
        if u == "" and std:
            continue
        if u_std == std or not std:
            per_pair[k] = 1.0
            continue
        factor = entry["convert"].get(u, entry["convert"].get(u_std))
        if isinstance(factor, str):
            formulas = ctx.__dict__.setdefault("conversion_formulas", [])
            if factor not in formulas:
                formulas.append(factor)
            factor = -(formulas.index(factor) + 1)
        if factor is None:
            ctx.issues.error(f"{entry['testcd']}: no conversion from {shown(u)} to the standard unit "
                             f"'{std}' (add it under `convert:` of the test) ({ctx.raw_lines(codes == k)})",
                             value=u, file=ctx.mapping.file, line=entry["line"], domain=ctx.domain,
                             variable=variable)
            continue
        per_pair[k] = float(factor)
    return pd.Series(per_pair[codes], index=ctx.index, dtype=float)


def rounded_like_results(ctx, variable, raw: pd.Series, values: pd.Series) -> pd.Series:
    """Range limits in the standard unit as the results are written (the test's `decimals:`, no
    float noise): --NRIND must compare the numbers the dataset shows, not 6.1 with 6.105. Once per
    distinct (value, decimals); a limit that `decimals:` would round to 0 is an error, as a result."""
    decimals = np.array([-1 if e["decimals"] is None else e["decimals"] for e in ctx.test_entries],
                        dtype=np.int64)[entry_of(ctx).to_numpy(dtype=np.int64)]
    y = values.to_numpy(dtype=float)
    out = np.full(len(y), np.nan)
    zero = np.zeros(len(y), dtype=bool)
    for d in np.unique(decimals).tolist():
        rows = np.flatnonzero((decimals == d) & ~np.isnan(y))
        table = {}
        for v in pd.unique(y[rows]).tolist():
            try:
                table[v] = float(format_number(v, None if d < 0 else d))
            except ValueError:
                table[v] = np.nan
        got = pd.Series(y[rows]).map(table).to_numpy(dtype=float)
        out[rows] = got
        zero[rows[np.isnan(got)]] = True
    if zero.any():
        said = dict(zip(raw[zero].fillna("").astype(str), zip(y[zero].tolist(), decimals[zero].tolist())))
        ctx.report_values(variable, raw[zero], lambda v: (
            f"{shown(v)} is {format_number(said[v][0])} in the standard unit, which "
            f"`decimals: {said[v][1]}` would round to 0"))
    return pd.Series(out, index=values.index, dtype=float)


NOT_A_RESULT = ("is not a number, a censored number ('<0.5') or a text result declared under "
                "`results:` of the test or of `tests:` (the test has a standard unit, so it is numeric)")


def standard_result(ctx, variable, result: pd.Series, units: pd.Series) -> pd.Series:
    """--STRESC: numbers and censored values converted; text results through the test's `results:`.

    A test with a standard unit is numeric: a result that is neither a number, a censored number nor
    a declared text result would be labelled in that unit without being one, so it is an error.
    Vectorised over the distinct (test, result, factor) triples; each distinct text is read once."""
    from .domain import code_lines
    entries = entry_of(ctx).to_numpy(dtype=np.int64)
    factors = conversion_factors(ctx, variable, units).to_numpy()
    unitless = no_unit(ctx, units)
    text = result.fillna("").astype(str).str.strip()
    t_codes, t_uniq = pd.factorize(text)
    f_codes, f_uniq = pd.factorize(factors, use_na_sentinel=False)
    n_t, n_f = max(len(t_uniq), 1), max(len(f_uniq), 1)
    codes, keys = pd.factorize(((entries * n_t + t_codes) * n_f + f_codes) * 2 + unitless)
    unitless_k, keys = keys % 2 == 1, keys // 2
    e_k, t_k, f_k = keys // (n_t * n_f), keys // n_f % n_t, np.asarray(f_uniq, dtype=float)[keys % n_f]
    texts = np.asarray(t_uniq, dtype=object)
    tests = ctx.test_entries
    out = np.full(len(keys), "", dtype=object)
    why = np.full(len(keys), "", dtype=object)
    todo = texts[t_k] != ""

    # 1. declared text results (exact spelling first, then any case), whatever the factor
    exact = [{k: v for k, v in e["results"].items() if isinstance(k, str)} for e in tests]
    folded = [{str(k).upper(): v for k, v in e["results"].items()} for e in tests]
    spellings = set().union(*exact) if exact else set()
    upper = set().union(*folded) if folded else set()
    maybe = pd.Series(texts).isin(spellings).to_numpy() | \
        pd.Series(texts, dtype=object).str.upper().isin(upper).to_numpy()
    for k in np.flatnonzero(todo & maybe[t_k]):
        t, e = texts[t_k[k]], e_k[k]
        hit = exact[e][t] if t in exact[e] else folded[e].get(t.upper(), _NONE)
        if hit is not _NONE:
            out[k], todo[k] = _result_text(hit), False
    todo &= ~np.isnan(f_k) | unitless_k   # no factor: a unit problem, already reported

    # 2. numbers and censored numbers, scaled to the standard unit
    prefix, number, number_why = _censored_or_number(texts)
    numeric = todo & (number_why[t_k] != "is not a number")
    x = number[t_k[numeric]]
    y = converted(ctx, x, f_k[numeric])
    units = np.array([e["unit"] for e in tests], dtype=object)[e_k[numeric]]
    decimals = np.array([e["decimals"] for e in tests], dtype=object)[e_k[numeric]].tolist()
    reason = number_why[t_k[numeric]]
    for j in np.flatnonzero((reason == "") & unitless_k[numeric]):
        reason[j] = UNITLESS.format(unit=units[j])
    for j in np.flatnonzero((reason == "") & np.isnan(y) & ~np.isnan(x)):
        reason[j] = f"has no value in {units[j]} by its conversion formula"
    for j in np.flatnonzero((reason == "") & out_of_range(x, y)):
        how = f"× {format_number(f_k[numeric][j])}" if f_k[numeric][j] > 0 else "by its formula"
        reason[j] = f"is out of the range of numbers once converted to {units[j]} ({how})"
    scaled = np.full(len(y), "", dtype=object)
    ys = y.tolist()
    for j in np.flatnonzero(reason == "").tolist():
        try:
            scaled[j] = format_number(ys[j], decimals[j])
        except ValueError:
            reason[j] = (f"is {format_number(ys[j])} {units[j]}, which `decimals: {decimals[j]}` "
                         "would round to 0")
    ok = reason == ""
    out[numeric] = np.where(ok, prefix[t_k[numeric]] + scaled, "")
    why[numeric] = reason

    # 3. other text: kept for a qualitative test, an error for a test with a standard unit
    other = todo & ~numeric
    has_unit = np.array([bool(e["unit"]) for e in tests], dtype=bool)
    out[other & ~has_unit[e_k]] = texts[t_k[other & ~has_unit[e_k]]]
    why[other & has_unit[e_k]] = NOT_A_RESULT

    problems: dict = {}
    for k in np.flatnonzero(why != ""):
        problems.setdefault((e_k[k], texts[t_k[k]], why[k]), []).append(k)
    problems = sorted(problems.items(), key=lambda kv: kv[0][:2])
    active = np.ones(len(codes), dtype=bool) if ctx.active is None else \
        ctx.active.reindex(ctx.index, fill_value=False).to_numpy(dtype=bool)
    lines = code_lines(ctx, ctx.index, codes, active, [ks for _, ks in problems])
    for ((e, t, reason), _), where in zip(problems, lines):
        if where:
            entry = tests[e]
            ctx.issues.error(f"{entry['testcd']}: result {shown(t)} {reason} ({where})", value=t,
                             file=ctx.mapping.file, line=entry["line"], domain=ctx.domain, variable=variable)
    return pd.Series(out[codes] if len(codes) else [], index=ctx.index, dtype=object)


_NONE = object()
UNITLESS = ("has no collected unit, so it is not known to be in {unit}: map the unit (a constant one "
            "where the CRF prints it)")


def no_unit(ctx, units: pd.Series) -> np.ndarray:
    """Per row: a test with a standard unit but no collected unit. A number there is in no known
    unit; taking it as the standard one would be a guess."""
    has_unit = np.array([bool(e["unit"]) for e in ctx.test_entries], dtype=bool)
    return has_unit[entry_of(ctx).to_numpy(dtype=np.int64)] & \
        (units.fillna("").astype(str) == "").to_numpy(dtype=bool)


def _result_text(v) -> str:
    return format_number(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _censored_or_number(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct text: its comparison sign ('<' of '<0.5', '' for a plain number), the number
    and why it is none (read_numbers' reasons)."""
    prefix = np.full(len(texts), "", dtype=object)
    number, why = read_numbers(texts)
    rest = np.flatnonzero(why == "is not a number")
    if len(rest):
        parts = pd.Series(texts[rest], dtype=object).str.extract(CENSORED.pattern).to_numpy(dtype=object)
        hit = ~pd.isna(parts[:, 0])
        rest, parts = rest[hit], parts[hit]
        number[rest], why[rest] = read_numbers(parts[:, 1])
        prefix[rest] = parts[:, 0]
    return prefix, number, why


def out_of_range(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where a conversion y = x × factor left the numbers a float holds (inf, or a non-zero x
    become 0 or subnormal); NaN (no value, no factor) is not out of range."""
    return np.isinf(y) | ((x != 0) & (np.abs(y) < sys.float_info.min))


TOO_LARGE = "is too large for a number (beyond 1.8E+308)"
TOO_SMALL = "is too small for a number (below 2.2E-308, it would become 0)"


def read_numbers(texts) -> tuple[np.ndarray, np.ndarray]:
    """Plain number text → float, vectorised (give it distinct values): the values, and per text why
    it has none ('' for a number or a blank; 'is not a number', TOO_LARGE for 1e999, TOO_SMALL for
    1e-400, which a float would turn into inf or 0). NaN wherever the reason is not ''."""
    texts = pd.Series(np.asarray(texts, dtype=object), dtype=object)
    values = np.full(len(texts), np.nan)
    why = np.full(len(texts), "", dtype=object)
    number = _is_number(texts.to_numpy())
    other = np.flatnonzero(~number)
    why[other[(texts.iloc[other].str.strip() != "").to_numpy(dtype=bool)]] = "is not a number"
    matched = texts[number]
    try:
        x = matched.to_numpy(dtype=object).astype(float)
    except ValueError:   # \x1c-\x1f are whitespace to `re`, not to float() ('1\x1c'): strip them
        x = matched.str.strip().to_numpy(dtype=object).astype(float)
    where = np.flatnonzero(number)
    why[where[np.isinf(x)]] = TOO_LARGE
    tiny = np.flatnonzero((np.abs(x) < sys.float_info.min))
    mantissa = matched.iloc[tiny].str.split("[eE]", regex=True).str[0]
    why[where[tiny[mantissa.str.contains("[1-9]", regex=True).to_numpy(dtype=bool)]]] = TOO_SMALL
    values[where] = x
    values[why != ""] = np.nan
    return values, why


# NUMBER for ASCII text in RE2 syntax, with Python's \s spelled out: Arrow matches a column of them
# ten times faster than `re`.
_ASCII_SPACE = r"[\t\n\v\f\r\x1c-\x1f ]*"
_ASCII_NUMBER = rf"^{_ASCII_SPACE}[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?{_ASCII_SPACE}$"


def _is_number(texts: np.ndarray) -> np.ndarray:
    """NUMBER.match per text: Arrow on ASCII text, Python's `re` on the rest (Unicode spaces around
    the digits, which `re` takes and float() reads)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    arr = pa.array(texts, type=pa.large_string())
    number = pc.match_substring_regex(arr, _ASCII_NUMBER).to_numpy(zero_copy_only=False)
    other = np.flatnonzero(~pc.string_is_ascii(arr).to_numpy(zero_copy_only=False))
    number[other] = [NUMBER.match(t) is not None for t in texts[other]]
    return number


def numbers_of(text: pd.Series, allowed: tuple[str, ...] = ()) -> tuple[pd.Series, np.ndarray, dict]:
    """read_numbers per row (no missing values), reading each distinct text once: the values, the
    rows whose text has a reason not in `allowed`, and {text: reason} for those texts."""
    codes, uniques = pd.factorize(text)
    values, why = read_numbers(uniques)
    bad = np.flatnonzero((why != "") & ~np.isin(why, list(allowed)))
    reasons = dict(zip(np.asarray(uniques, dtype=object)[bad].tolist(), why[bad].tolist()))
    rows = np.isin(codes, bad) if len(bad) else np.zeros(len(codes), dtype=bool)
    return pd.Series(values[codes] if len(codes) else [], index=text.index, dtype=float), rows, reasons


def standard_numeric(ctx, variable, stresc: pd.Series) -> pd.Series:
    """--STRESN: the value of number text; censored and text results have none. A number text that a
    float cannot hold (1e999) is an error, never inf."""
    if pd.api.types.is_numeric_dtype(stresc):
        return check_finite(ctx, variable, stresc.astype(float))
    text = stresc.fillna("").astype(str)
    values, bad, reasons = numbers_of(text, allowed=("is not a number",))
    if reasons:
        ctx.report_values(variable, text[bad], lambda v: f"{shown(v)} {reasons[v]}")
    return values


def check_finite(ctx, variable, values: pd.Series, path=()) -> pd.Series:
    """Numbers computed elsewhere (a YAML constant .inf, an overflowing product) are never inf."""
    inf = np.isinf(values.to_numpy(dtype=float))
    if inf.any():
        ctx.report_values(variable, values[inf].astype(str),
                          lambda v: f"{shown(v)} is not a finite number", path=path)
        values = values.where(~inf)
    return values
