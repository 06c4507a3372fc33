"""Type-checking and vectorised evaluation of an expression tree over the columns of a frame.

One walker does both: over zero rows with declared types (ANY where a type is not known until the
data is) it is the check before anything runs; over the data it is the evaluation. Every operation
works on whole columns. A condition's right side, a CASE branch and a function's later arguments
are only evaluated on the records that reach them, so that `is_number(X) and number(X) > 5` or
`case when ... then number(X) end` never trip over the values they exclude.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .grammar import (Between, Binary, Call, Case, ExpressionError, In, Like, Literal, Missing, Name,
                      Node, Unary)
from .values import (ANY, BOOL, DATE, DAY_US, INSTANT, NUMBER, TEXT, Dates, Scalar, Value, as_text,
                     broadcast_dates, condition, datetime_dates, full, is_missing, numbers, of_series, strings,
                     take_dates, text_array, text_dates, where_dates)

TYPE_WORDS = {NUMBER: "a number", TEXT: "text", DATE: "a date", BOOL: "a condition", ANY: "a value"}


class Columns:
    """Where names get their values: `column(name)` a Series, `declared(name)` NUMBER/TEXT/DATE or
    None (the dtype decides). Values are read once per name."""

    def __init__(self, column, declared=None, n: int = 0):
        self._column, self._declared, self.n = column, declared or (lambda name: None), n
        self._cache: dict[str, Value] = {}

    def value(self, name: str, pos: int, text: str) -> Value:
        if name not in self._cache:
            v = of_series(self._column(name))
            want = self._declared(name)
            if want == INSTANT and v.type == DATE:
                v = Value(DATE, datetime_dates(self._column(name), instant=True))
            elif want in (DATE, INSTANT) and v.type == TEXT:
                v = Value(DATE, _located(lambda: text_dates(v.data, name, pos), text))
            elif want == NUMBER and v.type == TEXT:
                v = Value(NUMBER, _located(lambda: numbers(v.data, name, pos), text))
            self._cache[name] = v
        return self._cache[name]


class Types:
    """The check before running: names have a declared type or ANY; no data."""

    n = 0

    def __init__(self, type_of):
        self._type_of = type_of

    def value(self, name: str, pos: int, text: str) -> Value:
        t = self._type_of(name) or ANY
        return empty(DATE if t == INSTANT else t)


def empty(t: str) -> Value:
    if t not in (ANY, DATE, BOOL, NUMBER, TEXT):
        raise ValueError(f"no type {t!r}")
    if t == ANY:
        return Value(ANY, None)
    if t == DATE:
        z = np.zeros(0, dtype=np.int64)
        return Value(DATE, Dates(z, z.copy(), np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0)))
    if t == BOOL:
        return condition(np.zeros(0, bool))
    return full(0 if t == NUMBER else "", 0, t)


def _located(fn, text, rows=True):
    try:
        return fn()
    except ExpressionError as exc:
        exc.text = exc.text or text
        if not rows:
            exc.rows = None
        raise


def subset(v: Value, rows: np.ndarray) -> Value:
    if v.type == ANY:
        return v
    if isinstance(v, Scalar):
        return Scalar(v.type, v.scalar, len(rows))
    if v.type == DATE:
        return Value(DATE, take_dates(v.data, rows))
    return Value(v.type, v.data[rows])


def missing_of(t: str, n: int) -> Value:
    if t == NUMBER:
        return Value(NUMBER, np.full(n, np.nan))
    if t == TEXT:
        return full("", n, TEXT)
    if t == DATE:
        z = np.zeros(n, dtype=np.int64)
        return Value(DATE, Dates(z, z.copy(), np.zeros(n, np.int8), np.zeros(n, bool), np.full(n, np.nan)))
    return Value(BOOL, pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool)))


def put(into: Value, rows: np.ndarray, part: Value) -> Value:
    """`into` with the records at `rows` replaced by `part` (same type)."""
    if into.type == DATE:
        sel = np.zeros(len(into.data), dtype=bool)
        sel[rows] = True
        spread = missing_of(DATE, len(sel)).data
        for f in ("lo", "hi", "prec", "exact", "tz"):
            getattr(spread, f)[rows] = getattr(part.data, f)
        if into.data.text is not None and part.data.text is not None:
            spread.text = np.full(len(sel), "", dtype=object)
            spread.text[rows] = np.asarray(part.data.text, dtype=object)
        return Value(DATE, where_dates(sel, spread, into.data))
    if into.type == TEXT:
        data = np.asarray(into.data, dtype=object)
        data[rows] = np.asarray(part.data, dtype=object)
        return Value(TEXT, text_array(data))
    data = into.data.copy()
    data[rows] = part.data
    return Value(into.type, data)


def assemble(kind: str, n: int, parts: list[tuple[np.ndarray, Value]]) -> Value:
    """One column from parts that together cover each of the n records once (CASE branches): the
    parts are concatenated and put in record order with one take."""
    rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    order[rows] = np.arange(len(rows))
    if kind == TEXT:
        joined = pd.concat([pd.Series([v.scalar] * len(r), dtype="str") if isinstance(v, Scalar)
                            else strings(v.data) for r, v in parts], ignore_index=True)
        return Value(TEXT, text_array(joined).take(order))
    if kind == DATE:
        fields = {f: np.concatenate([getattr(v.data, f) for _, v in parts])[order]
                  for f in ("lo", "hi", "prec", "exact", "tz")}
        return Value(DATE, Dates(**fields))
    return Value(kind, np.concatenate([np.asarray(v.data) for _, v in parts])[order])


class Evaluator:
    """Evaluates nodes over `rows` of the frame (None: all)."""

    def __init__(self, text: str, names, rows: np.ndarray | None = None):
        self.text, self.names, self.rows = text, names, rows
        self.n = names.n if rows is None else len(rows)

    def error(self, message: str, node: Node, rows=None) -> ExpressionError:
        return ExpressionError(message, node.pos, self.text, rows=self._spread(rows))

    def _spread(self, rows):
        if rows is None or self.rows is None:
            return rows
        full_rows = np.zeros(self.names.n, dtype=bool)
        full_rows[self.rows[np.asarray(rows, dtype=bool)]] = True
        return full_rows

    def on(self, rows: np.ndarray) -> "Evaluator":
        """The same evaluation restricted to some of this evaluator's records."""
        base = rows if self.rows is None else self.rows[rows]
        return Evaluator(self.text, self.names, base)

    # -- nodes -----------------------------------------------------------------------------------
    def value(self, node: Node) -> Value:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def _literal(self, node: Literal) -> Value:
        return Scalar(BOOL if node.type == "bool" else node.type, node.value, self.n)

    def _name(self, node: Name) -> Value:
        v = self.names.value(node.name, node.pos, self.text)
        return v if self.rows is None else subset(v, self.rows)

    def _unary(self, node: Unary) -> Value:
        v = self.value(node.arg)
        if node.op == "not":
            b = self.condition(v, node.arg)
            return b if b.type == ANY else Value(BOOL, ~b.data)
        v = self.number(v, node.arg)
        return v if v.type == ANY else Value(NUMBER, -v.data)

    def _binary(self, node: Binary) -> Value:
        if node.op in ("and", "or"):
            return self.logic(node)
        a, b = self.value(node.left), self.value(node.right)
        if node.op == "||":
            if ANY in (a.type, b.type):
                return empty(TEXT) if self.n == 0 else Value(ANY, None)
            self.no_condition(a, node.left)
            self.no_condition(b, node.right)
            return Value(TEXT, text_array(_text_or_scalar(a) + _text_or_scalar(b)))
        if node.op in ("=", "<>", "<", "<=", ">", ">="):
            return self.compare(node.op, a, b, node)
        return self.arithmetic(node.op, a, b, node)

    def _in(self, node: In) -> Value:
        a = self.value(node.arg)
        if a.type == TEXT and all(isinstance(i, Literal) and i.type == TEXT for i in node.items):
            hit = strings(a.data).str.strip().isin([i.value.strip() for i in node.items]).to_numpy(dtype=bool)
            return condition(~hit if node.negated else hit)
        out = None
        for item in node.items:
            eq = self.compare("=", a, self.value(item), item)
            out = eq if out is None else _or(out, eq)
        return _not(out) if node.negated else out

    def _between(self, node: Between) -> Value:
        a = self.value(node.arg)
        out = _and(self.compare(">=", a, self.value(node.low), node.low),
                   self.compare("<=", a, self.value(node.high), node.high))
        return _not(out) if node.negated else out

    def _missing(self, node: Missing) -> Value:
        v = self.value(node.arg)
        if v.type == ANY:
            return empty(BOOL)
        m = is_missing(v)
        return condition(~m if node.negated else m)

    def _like(self, node: Like) -> Value:
        v = self.value(node.arg)
        if v.type == ANY:
            return empty(BOOL)
        if v.type != TEXT:
            raise self.error(f"LIKE compares text; {label(node.arg)} is {TYPE_WORDS[v.type]} "
                             f"(write text({label(node.arg)}) like ...)", node)
        hit = _like(strings(v.data), node.pattern)
        return condition(~hit if node.negated else hit)

    def _call(self, node: Call) -> Value:
        from .functions import call
        return call(self, node)

    def _case(self, node: Case) -> Value:
        result_type, pending = None, np.arange(self.n)
        parts = []
        for cond_node, value_node in node.whens:
            cond = self.condition(self.on(pending).value(cond_node) if self.n else self.value(cond_node),
                                  cond_node)
            hit = np.zeros(len(pending), bool) if cond.type == ANY else cond.data.fillna(False).to_numpy(bool)
            chosen = pending[hit]
            v = self.on(chosen).value(value_node) if self.n else self.value(value_node)
            parts.append((chosen, v, value_node))
            pending = pending[~hit]
        if node.default is not None:
            parts.append((pending, self.on(pending).value(node.default) if self.n else
                          self.value(node.default), node.default))
        for _, v, at in parts:
            if v.type == ANY:
                continue
            self.no_condition(v, at)
            if result_type is None:
                result_type = v.type
            elif v.type != result_type:
                raise self.error(f"the values of a CASE differ in type: {TYPE_WORDS[result_type]} and "
                                 f"{TYPE_WORDS[v.type]} ({label(at)}); convert with number(), text() or "
                                 f"date()", at)
        if result_type is None:
            return Value(ANY, None)
        if node.default is None:
            parts.append((pending, missing_of(result_type, len(pending)), node))
        return assemble(result_type, self.n, [(rows, v) for rows, v, _ in parts])

    # -- operations ------------------------------------------------------------------------------
    def logic(self, node: Binary) -> Value:
        a = self.condition(self.value(node.left), node.left)
        if a.type == ANY or self.n == 0:
            b = self.condition(self.value(node.right), node.right)
            return empty(BOOL) if ANY in (a.type, b.type) else (_and if node.op == "and" else _or)(a, b)
        decided = (a.data == (node.op == "or")).fillna(False).to_numpy(bool)   # False for and, True for or
        rest = np.flatnonzero(~decided)
        b_part = self.condition(self.on(rest).value(node.right), node.right)
        b = missing_of(BOOL, self.n)
        b = put(b, rest, b_part)
        return (_and if node.op == "and" else _or)(a, b)

    def condition(self, v: Value, node: Node) -> Value:
        if v.type in (BOOL, ANY):
            return v
        raise self.error(f"{label(node)} is {TYPE_WORDS[v.type]}, not a condition "
                         f"(compare it: {label(node)} = 'Y', or {label(node)} is not missing)", node)

    def no_condition(self, v: Value, node: Node) -> None:
        if v.type == BOOL:
            raise self.error(f"{label(node)} is a condition, not a value "
                             f"(write case when ... then 'Y' end)", node)

    def number(self, v: Value, node: Node) -> Value:
        return self._converted(v, node, NUMBER, numbers)

    def date(self, v: Value, node: Node) -> Value:
        return self._converted(v, node, DATE, text_dates)

    def _converted(self, v: Value, node: Node, kind: str, read) -> Value:
        """`v` as a number or a date: text is read (a text written in the expression is refused
        before any data is read); any other type is an error."""
        if v.type in (kind, ANY):
            return v
        if isinstance(node, Literal) and node.type == TEXT:
            one = _located(lambda: read(np.array([node.value], dtype=object), label(node), node.pos), self.text,
                           rows=False)
            if isinstance(v, Scalar):      # read once, not once per record
                return Scalar(NUMBER, float(one[0]), v.n) if kind == NUMBER else \
                    Value(DATE, broadcast_dates(one, v.n))
        if v.type == TEXT:
            try:
                return Value(kind, read(v.data, label(node), node.pos))
            except ExpressionError as exc:
                raise self.error(exc.message, node, exc.rows) from None
        raise self.error(f"{label(node)} is {TYPE_WORDS[v.type]}, not {TYPE_WORDS[kind]}", node)

    def compare(self, op: str, a: Value, b: Value, node: Node) -> Value:
        left, right = _operands(node)
        if ANY in (a.type, b.type):
            return empty(BOOL) if self.n == 0 else Value(ANY, None)
        self.no_condition(a, left)
        self.no_condition(b, right)
        types = {a.type, b.type}
        if types == {TEXT}:
            if op not in ("=", "<>"):
                raise self.error(f"'{op}' between two texts would compare them letter by letter "
                                 f"('10' < '9'); write number({label(left)}) or date({label(left)})", node)
            x, y = (b, a) if isinstance(a, Scalar) else (a, b)
            other = y.scalar.strip() if isinstance(y, Scalar) else strings(y.data).str.strip()
            eq = (strings(x.data).str.strip() == other).to_numpy(dtype=bool)
            return condition(eq if op == "=" else ~eq)
        if DATE in types:
            if types - {DATE, TEXT}:
                raise self.error(_cannot_compare(left, a, right, b), node)
            return _compare_dates(op, self.date(a, left).data, self.date(b, right).data)
        if types <= {NUMBER, TEXT}:
            x, y = self.number(a, left).data, self.number(b, right).data
            known = ~(np.isnan(x) | np.isnan(y))
            with np.errstate(invalid="ignore"):
                res = _NUMERIC[op](x, y)
            return condition(res, known)
        raise self.error(_cannot_compare(left, a, right, b), node)

    def arithmetic(self, op: str, a: Value, b: Value, node: Binary) -> Value:
        if ANY in (a.type, b.type) and op in ("+", "-"):
            return Value(ANY, None)          # a date or a number: known with the data
        if DATE in (a.type, b.type) and op in ("+", "-"):
            return self.date_arithmetic(op, a, b, node)
        x, y = self.number(a, node.left), self.number(b, node.right)
        if ANY in (x.type, y.type):
            return empty(NUMBER) if self.n == 0 else Value(ANY, None)
        xs, ys = (v.scalar if isinstance(v, Scalar) else v.data for v in (x, y))
        with np.errstate(all="ignore"):
            if op == "/":        # division by zero gives missing, as in SAS
                res = np.where(ys == 0, np.nan, xs / np.where(ys == 0, 1, ys)) if np.any(ys == 0) else xs / ys
            else:
                res = _ARITH[op](xs, ys)
        res = np.broadcast_to(np.asarray(res, dtype=float), (self.n,))
        if np.isinf(res).any():
            overflow = np.isinf(res) & np.isfinite(x.data) & np.isfinite(y.data)
            if overflow.any():
                raise self.error(f"'{op}' gives a number too large for a float", node, overflow)
        return Value(NUMBER, np.array(res))

    def date_arithmetic(self, op: str, a: Value, b: Value, node: Binary) -> Value:
        if a.type == DATE and b.type == DATE or (op == "-" and a.type == DATE and b.type == TEXT):
            if op == "+":
                raise self.error("two dates cannot be added; their difference in days is date1 - date2",
                                 node)
            x, y = a.data, self.date(b, node.right).data
            full_days = (x.prec >= 3) & (y.prec >= 3)
            diff = (np.floor_divide(x.lo, DAY_US) - np.floor_divide(y.lo, DAY_US)).astype(float)
            return Value(NUMBER, np.where(full_days, diff, np.nan))
        if b.type == DATE and op == "-":
            raise self.error(f"a date cannot be subtracted from {TYPE_WORDS[a.type]}", node)
        date_v, days_v, days_node = (a, b, node.right) if a.type == DATE else (b, a, node.left)
        if date_v.type == ANY or days_v.type == ANY:
            return empty(DATE) if self.n == 0 else Value(ANY, None)
        days = self.number(days_v, days_node).data
        frac = ~np.isnan(days) & (days != np.round(days))
        if frac.any():
            raise self.error(f"days added to a date are whole numbers; {label(days_node)} has "
                             f"{days[frac][0]:g}", days_node, frac)
        d = date_v.data
        sign = -1 if op == "-" else 1
        ok = (d.prec >= 3) & ~np.isnan(days)
        shift = np.where(ok, np.nan_to_num(days) * sign, 0).astype(np.int64) * DAY_US
        return Value(DATE, Dates(d.lo + shift, d.hi + shift, np.where(ok, d.prec, 0).astype(np.int8),
                                 d.exact, d.tz))


_NUMERIC = {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "**": np.power}


def _operands(node: Node) -> tuple[Node, Node]:
    if isinstance(node, Binary):
        return node.left, node.right
    return node, node


def _cannot_compare(left: Node, a: Value, right: Node, b: Value) -> str:
    return (f"cannot compare {label(left)} ({TYPE_WORDS[a.type]}) with {label(right)} "
            f"({TYPE_WORDS[b.type]})")


def _text_or_scalar(v: Value):
    """A value as text for ||: a Series, or the text itself when written in the expression."""
    if isinstance(v, Scalar) and v.type == TEXT:
        return v.scalar
    return strings(as_text(v))


def _like(s: pd.Series, pattern: str) -> np.ndarray:
    """SQL LIKE (% any text, _ one character, the whole text): prefix, suffix, part and equality
    run in Arrow; other patterns through a regular expression."""
    body = pattern.strip("%")
    if "_" not in pattern and "%" not in body:
        starts, ends = pattern.startswith("%"), pattern.endswith("%")
        if starts and ends:
            hit = s.str.contains(body, regex=False)
        elif ends:
            hit = s.str.startswith(body)
        elif starts:
            hit = s.str.endswith(body)
        else:
            hit = s == body
        return hit.fillna(False).to_numpy(dtype=bool)
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    objects = pd.Series(s.to_numpy(dtype=object), dtype=object)
    return objects.str.fullmatch(regex, flags=re.DOTALL).fillna(False).to_numpy(dtype=bool)


def _and(a: Value, b: Value) -> Value:
    return Value(BOOL, a.data & b.data)


def _or(a: Value, b: Value) -> Value:
    return Value(BOOL, a.data | b.data)


def _not(a: Value) -> Value:
    return Value(BOOL, ~a.data)


def _compare_dates(op: str, x: Dates, y: Dates) -> Value:
    """The completion rule: both values are completed to the finer of their two precisions (a month
    against a day: each of its days); the result is true or false where every pair of completions
    agrees, unknown otherwise. '2021-03' >= '2021-03-01' is true, '2021-03-04' = '2021-03-04T10:00'
    unknown; equal means one completion each, the same (a hyphenated gap is never equal)."""
    usable = (x.prec > 0) & (y.prec > 0) & (np.isnan(x.tz) == np.isnan(y.tz))
    finer = np.maximum(x.prec, y.prec)
    x_first, x_last = _completions(x, finer)
    y_first, y_last = _completions(y, finer)
    if op in ("<", ">="):
        lt_true, lt_false = x_last < y_first, x_first >= y_last
        res, known = (lt_true, lt_true | lt_false) if op == "<" else (lt_false, lt_true | lt_false)
    elif op in (">", "<="):
        gt_true, gt_false = x_first > y_last, x_last <= y_first
        res, known = (gt_true, gt_true | gt_false) if op == ">" else (gt_false, gt_true | gt_false)
    else:
        same = x.exact & y.exact & (x_first == x_last) & (y_first == y_last) & (x_first == y_first)
        apart = (x_last < y_first) | (x_first > y_last)
        res, known = (same, same | apart) if op == "=" else (apart, same | apart)
    return condition(res, usable & known)


_UNIT = {1: "Y", 2: "M"}     # calendar units of varying length
_UNIT_US = {3: DAY_US, 4: 3_600_000_000, 5: 60_000_000, 6: 1_000_000, 7: 1}


def _completions(d: Dates, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and last completion of each value at `precision` (1 year .. 7 microsecond), as
    counts of that unit since 1970, in UTC where the value has a zone."""
    zoned = ~np.isnan(d.tz)
    lo, last_instant = d.lo, d.hi - 1
    if zoned.any():
        shift = np.where(zoned, d.tz, 0).astype(np.int64) * 60_000_000
        lo, last_instant = lo - shift, last_instant - shift
    levels = np.unique(precision)
    if len(levels) == 1 and levels[0] in _UNIT_US:       # the usual case: one fixed-length unit
        unit = _UNIT_US[int(levels[0])]
        return np.floor_divide(lo, unit), np.floor_divide(last_instant, unit)
    first = np.zeros(len(d), dtype=np.int64)
    last = np.zeros(len(d), dtype=np.int64)
    for level in levels.tolist():
        rows = precision == level
        if level in _UNIT_US:
            first[rows] = np.floor_divide(lo[rows], _UNIT_US[level])
            last[rows] = np.floor_divide(last_instant[rows], _UNIT_US[level])
        elif level in _UNIT:
            unit = f"datetime64[{_UNIT[level]}]"
            first[rows] = lo[rows].astype("datetime64[us]").astype(unit).astype(np.int64)
            last[rows] = last_instant[rows].astype("datetime64[us]").astype(unit).astype(np.int64)
    return first, last


def label(node: Node) -> str:
    """How a message names an operand."""
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Literal):
        return repr(node.value) if node.type == TEXT else (f"{node.value:g}" if node.type == NUMBER
                                                            else str(node.value).lower())
    if isinstance(node, Call):
        return f"{node.name}(...)"
    return "the value"
