"""The functions of the expression language, each a whole-column operation.

Names follow SAS where SAS has one (scan, catx, substr, strip, coalesce), SQL otherwise. Each entry
says what its arguments are, which lets the check before running refuse a wrong call with the
allowed form, and feeds the generated reference (docs/mapping-language.md).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .grammar import Call, Literal, Node, Unary
from .values import (ANY, BOOL, DATE, NUMBER, TEXT, Dates, Value, as_text, condition, is_missing, strings,
                     text_array)

# Argument kinds: the value's type after conversion, or PATTERN / WHOLE (a literal checked before
# running: a regular expression, a whole number).
PATTERN, WHOLE, QUOTED, SAME = "pattern", "whole number", "quoted text", "same"


@dataclass(frozen=True)
class Function:
    args: tuple[str, ...]          # kinds of the required arguments
    optional: tuple[str, ...] = ()  # kinds of optional arguments, in order
    repeat: str | None = None       # kind of any further arguments
    result: str = TEXT              # SAME: the type of the arguments
    doc: str = ""
    example: str = ""

    def signature(self, name: str) -> str:
        word = {ANY: "value"}
        parts = [word.get(k, k) for k in self.args] + [f"[{word.get(k, k)}]" for k in self.optional] + \
                ([f"{word.get(self.repeat, self.repeat)}, ..."] if self.repeat else [])
        return f"{name}({', '.join(parts)})"


FUNCTIONS: dict[str, Function] = {
    "upper": Function((TEXT,), doc="upper case", example="upper(ae.TERM)"),
    "lower": Function((TEXT,), doc="lower case", example="lower(cm.ROUTE)"),
    "title": Function((TEXT,), doc="first letter of each word upper case, the rest lower (SAS propcase)",
                      example="title(AVISIT)"),
    "strip": Function((TEXT,), doc="without leading and trailing blanks", example="strip(dm.SITE)"),
    "length": Function((TEXT,), result=NUMBER, doc="number of characters, trailing blanks not counted "
                       "(0 for missing)", example="length(AETERM) > 200"),
    "substr": Function((TEXT, WHOLE), (WHOLE,), doc="the part starting at position start (1 = first "
                       "character), of length characters or to the end", example="substr(dm.PATNUM, 5)"),
    "scan": Function((TEXT, WHOLE), (QUOTED,), doc="the n-th word, words separated by any of the "
                     "delimiter characters (default blank); n < 0 counts from the end; '' when there are "
                     "fewer words", example="scan(dm.PATNUM, 1, '-')"),
    "extract": Function((TEXT, PATTERN), (WHOLE,), doc="the part matching a regular expression (its "
                        "group n, default 1, or the whole match when it has no group); '' without a match",
                        example=r"extract(dm.PATNUM, '^(\d+)-')"),
    "matches": Function((TEXT, PATTERN), result=BOOL, doc="the regular expression matches somewhere in "
                        "the text (anchor it with ^ and $)", example=r"matches(LBORRES, '^[<>]')"),
    "replace": Function((TEXT, QUOTED, QUOTED), doc="every occurrence of a text replaced",
                        example="replace(VSORRESU, 'deg ', '')"),
    "regex_replace": Function((TEXT, PATTERN, QUOTED), doc=r"every match of a regular expression replaced "
                              r"(\1 for a group)", example=r"regex_replace(TERM, '\s+', ' ')"),
    "contains": Function((TEXT, TEXT), result=BOOL, doc="the text contains the other",
                         example="contains(upper(CMINDC), 'ARTHRITIS')"),
    "starts_with": Function((TEXT, TEXT), result=BOOL, doc="the text starts with the other",
                            example="starts_with(VISIT, 'UNSCH')"),
    "ends_with": Function((TEXT, TEXT), result=BOOL, doc="the text ends with the other",
                          example="ends_with(FORM, '_LOG')"),
    "catx": Function((QUOTED, TEXT), repeat=TEXT, doc="the non-empty parts (stripped) joined by the "
                     "separator (SAS catx): check boxes into one value", example="catx(', ', cm.IND1, "
                     "cm.IND2, cm.IND3)"),
    "coalesce": Function((ANY, ANY), repeat=ANY, result=SAME, doc="the first value that is not missing",
                         example="coalesce(ae.AESTDAT_RAW, ae.AESTDAT)"),
    "number": Function((ANY,), result=NUMBER, doc="the number a text holds; a text that is not a plain "
                       "number is an error naming it", example="number(lab.RESULT) > number(lab.HIGH)"),
    "is_number": Function((TEXT,), result=BOOL, doc="the text is a plain number (missing: false)",
                          example="is_number(LBORRES)"),
    "text": Function((ANY,), doc="a number as SDTM writes it (2.0 is '2'), a date as ISO 8601 text",
                     example="text(AGE) || ' YEARS'"),
    "date": Function((ANY,), result=DATE, doc="an ISO 8601 date (partial allowed) from text; from a "
                     "date with a time, the day", example="date(AESTDTC) >= date(RFXSTDTC)"),
    "year": Function((DATE,), result=NUMBER, doc="the year of a date (missing if unknown)",
                     example="year(BRTHDTC)"),
    "month": Function((DATE,), result=NUMBER, doc="the month of a date (missing if unknown)",
                      example="month(AESTDTC)"),
    "day": Function((DATE,), result=NUMBER, doc="the day of the month (missing if unknown)",
                    example="day(AESTDTC)"),
    "round": Function((NUMBER,), (WHOLE,), result=NUMBER, doc="rounded to n decimals (default 0), halves "
                      "away from zero as SAS does", example="round(AVAL, 1)"),
    "floor": Function((NUMBER,), result=NUMBER, doc="the largest whole number not above",
                      example="floor(AGE)"),
    "ceil": Function((NUMBER,), result=NUMBER, doc="the smallest whole number not below",
                     example="ceil(ADY / 7)"),
    "abs": Function((NUMBER,), result=NUMBER, doc="the absolute value", example="abs(CHG)"),
    "sqrt": Function((NUMBER,), result=NUMBER, doc="the square root (missing below 0)",
                     example="sqrt(HEIGHT * WEIGHT / 3600)"),
    "exp": Function((NUMBER,), result=NUMBER, doc="e to the power", example="exp(AVAL)"),
    "log": Function((NUMBER,), result=NUMBER, doc="the natural logarithm (missing at 0 and below)",
                    example="log(AVAL)"),
    "log10": Function((NUMBER,), result=NUMBER, doc="the base-10 logarithm (missing at 0 and below)",
                      example="log10(AVAL)"),
    "min": Function((NUMBER, NUMBER), repeat=NUMBER, result=NUMBER, doc="the smallest of the values that "
                    "are not missing (SAS min)", example="min(AVAL, 100)"),
    "max": Function((NUMBER, NUMBER), repeat=NUMBER, result=NUMBER, doc="the largest of the values that "
                    "are not missing (SAS max)", example="max(AVAL, 0)"),
}


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def call(ev, node: Call) -> Value:
    fn = FUNCTIONS.get(node.name)
    if fn is None:
        raise ev.error(f"unknown function '{node.name}'{suggest(node.name, FUNCTIONS)}; the functions "
                       f"are {', '.join(sorted(FUNCTIONS))}", node)
    n_min, n_max = len(fn.args), len(fn.args) + len(fn.optional)
    if len(node.args) < n_min or (fn.repeat is None and len(node.args) > n_max):
        raise ev.error(f"{node.name} takes {fn.signature(node.name)}, given {len(node.args)} argument"
                       f"{'' if len(node.args) == 1 else 's'}", node)
    kinds = list(fn.args) + list(fn.optional) + [fn.repeat] * max(0, len(node.args) - n_max)
    args = [_argument(ev, kind, a, node) for kind, a in zip(kinds, node.args)]
    if any(isinstance(a, Value) and a.type == ANY for a in args):
        return _unknown_result(ev, fn, args)
    return _IMPL[node.name](ev, node, *args)


def _unknown_result(ev, fn: Function, args) -> Value:
    from .evaluate import empty
    result = fn.result
    if result == SAME:
        known = [a.type for a in args if isinstance(a, Value) and a.type != ANY]
        result = known[0] if known else ANY
    if result in (ANY,) or ev.n:
        return Value(ANY, None)
    return empty(result)


def _argument(ev, kind: str, node: Node, call_node: Call):
    if kind in (PATTERN, WHOLE, QUOTED):
        if kind == QUOTED:
            if not (isinstance(node, Literal) and node.type == TEXT):
                raise ev.error(f"{call_node.name}: expected a quoted text here", node)
            return node.value
        if kind == PATTERN:
            if not (isinstance(node, Literal) and node.type == TEXT):
                raise ev.error(f"{call_node.name}: the pattern must be a quoted regular expression", node)
            try:
                return re.compile(node.value)
            except re.error as exc:
                raise ev.error(f"{call_node.name}: {node.value!r} is not a regular expression: {exc}",
                               node) from None
        negative = isinstance(node, Unary) and node.op == "-"
        lit = node.arg if negative else node
        if not (isinstance(lit, Literal) and lit.type == NUMBER and lit.value == int(lit.value)):
            raise ev.error(f"{call_node.name}: expected a whole number written in the expression", node)
        return -int(lit.value) if negative else int(lit.value)
    v = ev.value(node)
    if kind == ANY or v.type == ANY:
        ev.no_condition(v, node)
        return v
    if kind == TEXT:
        ev.no_condition(v, node)
        return v if v.type == TEXT else Value(TEXT, as_text(v))
    if kind == NUMBER:
        return ev.number(v, node)
    if kind == DATE:
        return ev.date(v, node)
    return v


def _text(fn):
    """A text → text function applied through pandas' string methods."""
    def impl(ev, node, s: Value, *rest):
        return Value(TEXT, text_array(fn(strings(s.data), *rest)))
    return impl


def _flag(fn):
    def impl(ev, node, s: Value, *rest):
        return condition(fn(_python(s), *rest).fillna(False).to_numpy(dtype=bool))
    return impl


def _python(s: Value) -> pd.Series:
    """Text as Python strings: user regular expressions keep Python's `re` syntax (checked when the
    expression is read), which Arrow's RE2 does not fully share."""
    return pd.Series(np.asarray(s.data, dtype=object), dtype=object)


def _math(fn):
    def impl(ev, node, x: Value):
        with np.errstate(all="ignore"):
            res = fn(x.data)
        return Value(NUMBER, np.where(np.isfinite(res), res, np.nan))
    return impl


def _substr(ev, node, s, start, length=None):
    if start < 1 or (length is not None and length < 0):
        raise ev.error("substr: positions start at 1 and a length is not negative", node)
    stop = None if length is None else start - 1 + length
    return Value(TEXT, text_array(strings(s.data).str.slice(start - 1, stop)))


def _scan(ev, node, s, n, delims=None):
    if n == 0:
        raise ev.error("scan: the word number is a whole number other than 0", node)
    chars = " " if delims is None else delims
    if not chars:
        raise ev.error("scan: the delimiters are empty", node)
    splitter = re.compile("[" + re.escape(chars) + "]+")
    index = n - 1 if n > 0 else n

    def word(text: str) -> str:
        words = [w for w in splitter.split(text) if w]
        return words[index] if -len(words) <= index < len(words) else ""
    return Value(TEXT, _per_distinct(s, word))


def _extract(ev, node, s, regex, group=1):
    text = _python(s)
    if regex.groups == 0:
        found = text.str.extract("(" + regex.pattern + ")", expand=False)
    else:
        if not 1 <= group <= regex.groups:
            raise ev.error(f"extract: the pattern has {regex.groups} group(s), not {group}", node)
        found = text.str.extract(regex.pattern, expand=True)[group - 1]
    return Value(TEXT, text_array(found))


def _catx(ev, node, sep, *parts):
    out = None
    for p in parts:
        p = strings(p.data).str.strip()
        if out is None:
            out = p
            continue
        both = (out != "") & (p != "")
        out = out.where(~both, out + sep + p).where(out != "", p)
    return Value(TEXT, text_array(out))


def _coalesce(ev, node, *values):
    types = {v.type for v in values}
    if len(types) > 1:
        raise ev.error("coalesce: the values differ in type (" + ", ".join(sorted(types)) +
                       "); convert with number(), text() or date()", node)
    from .evaluate import put
    out = values[0]
    for v in values[1:]:
        rows = np.flatnonzero(is_missing(out))
        if not len(rows):
            break
        from .evaluate import subset
        out = put(out, rows, subset(v, rows))
    return out


def _text_of(ev, node, v):
    return Value(TEXT, as_text(v))


def _date_of(ev, node, v):
    if v.type == TEXT:
        v = ev.date(v, node.args[0])
    elif v.type != DATE:
        raise ev.error(f"date: takes text or a date, not {v.type}", node)
    d = v.data
    day = d.prec >= 3
    lo = np.where(day, d.lo - np.mod(d.lo, 86_400_000_000), d.lo)
    hi = np.where(day, lo + 86_400_000_000, d.hi)
    text = None if d.text is None else \
        text_array(strings(d.text).str.slice(0, 10).where(day, strings(d.text)))
    return Value(DATE, Dates(lo, hi, np.minimum(d.prec, 3).astype(np.int8), d.exact, np.full(len(d), np.nan),
                             text))


def _part(index: int, unit: str):
    def impl(ev, node, v):
        d = v.data
        known = d.prec >= index
        stamps = d.lo.astype("datetime64[us]")
        if unit == "Y":
            x = stamps.astype("datetime64[Y]").astype(np.int64) + 1970
        elif unit == "M":
            x = stamps.astype("datetime64[M]").astype(np.int64) % 12 + 1
        else:
            x = (stamps.astype("datetime64[D]") - stamps.astype("datetime64[M]")).astype(np.int64) + 1
        return Value(NUMBER, np.where(known, x.astype(float), np.nan))
    return impl


def _round(ev, node, x, decimals=0):
    if not isinstance(decimals, int):
        raise ev.error("round: the number of decimals must be a whole number written in the expression",
                       node)
    factor = 10.0 ** decimals
    with np.errstate(invalid="ignore"):
        scaled = np.round(np.abs(x.data) * factor, 9)   # 2.675 * 100 = 267.49999..: the fuzz SAS allows
        return Value(NUMBER, np.sign(x.data) * np.floor(scaled + 0.5) / factor)


def _extreme(fn):
    def impl(ev, node, *xs):
        stack = np.vstack([x.data for x in xs])
        if not stack.shape[1]:
            return Value(NUMBER, np.zeros(0))
        given = ~np.isnan(stack)
        picked = fn(np.where(given, stack, np.inf if fn is np.min else -np.inf), axis=0)
        return Value(NUMBER, np.where(given.any(axis=0), picked, np.nan))
    return impl


def _is_number(ev, node, s):
    from ..sdtm.findings import read_numbers
    codes, uniques = pd.factorize(s.data)
    _, why = read_numbers(np.asarray(uniques, dtype=object))
    ok = np.array([w == "" and str(u).strip() != "" for u, w in zip(uniques, why)] + [False], dtype=bool)
    return condition(ok[codes])


def _number_checked(ev, node, v):
    return ev.number(v, node.args[0])


_IMPL = {
    "upper": _text(lambda s: s.str.upper()),
    "lower": _text(lambda s: s.str.lower()),
    "title": _text(lambda s: s.str.title()),
    "strip": _text(lambda s: s.str.strip()),
    "length": lambda ev, node, s: Value(NUMBER, strings(s.data).str.rstrip().str.len().to_numpy(dtype=float)),
    "substr": _substr,
    "scan": _scan,
    "extract": _extract,
    "matches": _flag(lambda s, rx: s.str.contains(rx, regex=True)),
    "replace": lambda ev, node, s, old, new: _replace(ev, node, s, old, new),
    "regex_replace": lambda ev, node, s, rx, new: _regex_replace(ev, node, s, rx, new),
    "contains": lambda ev, node, s, part: _pairwise(node, s, part, "contains", lambda a, b: b in a),
    "starts_with": lambda ev, node, s, part: _pairwise(node, s, part, "startswith", lambda a, b: a.startswith(b)),
    "ends_with": lambda ev, node, s, part: _pairwise(node, s, part, "endswith", lambda a, b: a.endswith(b)),
    "catx": _catx,
    "coalesce": _coalesce,
    "number": _number_checked,
    "is_number": _is_number,
    "text": _text_of,
    "date": _date_of,
    "year": _part(1, "Y"),
    "month": _part(2, "M"),
    "day": _part(3, "D"),
    "round": _round,
    "floor": _math(np.floor),
    "ceil": _math(np.ceil),
    "abs": _math(np.abs),
    "sqrt": _math(np.sqrt),
    "exp": _math(np.exp),
    "log": _math(np.log),
    "log10": _math(np.log10),
    "min": _extreme(np.min),
    "max": _extreme(np.max),
}
assert set(_IMPL) == set(FUNCTIONS)


def _replace(ev, node, s, old, new):
    if old == "":
        raise ev.error("replace: the text to replace is empty", node)
    return Value(TEXT, text_array(strings(s.data).str.replace(old, new, regex=False)))


def _regex_replace(ev, node, s, rx, b):
    return Value(TEXT, text_array(_python(s).str.replace(rx, b, regex=True)))


def _per_distinct(s: Value, fn) -> pd.api.extensions.ExtensionArray:
    """fn(text) once per distinct text: a column of a million records has few distinct values."""
    codes, uniques = pd.factorize(s.data)
    table = np.array([fn(str(u)) for u in uniques] + [""], dtype=object)
    return text_array(table[codes])


def _pairwise(node: Call, s: Value, part: Value, method: str, fn) -> Value:
    """A text test against another text: against a quoted text in Arrow, against a column once per
    distinct pair."""
    other = node.args[1]
    if isinstance(other, Literal) and other.type == TEXT:
        kwargs = {"regex": False} if method == "contains" else {}
        hit = getattr(strings(s.data).str, method)(other.value, **kwargs)
        return condition(hit.fillna(False).to_numpy(dtype=bool))
    frame = pd.DataFrame({"a": s.data, "b": part.data})
    if not len(frame):
        return condition(np.zeros(0, bool))
    codes, pairs = pd.factorize(pd.MultiIndex.from_frame(frame))
    ok = np.array([fn(str(a), str(b)) for a, b in pairs], dtype=bool)
    return condition(ok[codes])
