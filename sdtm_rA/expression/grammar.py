"""The expression syntax: SAS WHERE / SQL style text parsed into a tree, never run as Python.

    ae.AESTDTC >= RFXSTDTC and AEONGO = 'Y'
    (LBSTAT is missing or LBORRES ne '') and VISIT in ('WEEK 4', 'WEEK 8')
    (value - 32) * 5 / 9
    catx(', ', cm.IND1, cm.IND2, cm.IND3)
    case when AGE < 18 then 'CHILD' when AGE < 65 then 'ADULT' else 'ELDERLY' end

Keywords and function names are case-insensitive; names of variables are as written. Text is quoted
'…' or "…" (doubled quote inside); a name that is not a plain identifier is quoted `…`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


class ExpressionError(ValueError):
    """A problem in an expression: the message and where in the text it is (character offset)."""

    def __init__(self, message: str, pos: int | None = None, text: str = "", rows=None):
        super().__init__(message)
        self.message, self.pos, self.text, self.rows = message, pos, text, rows

    def __str__(self) -> str:
        return self.located()

    def located(self, text: str | None = None) -> str:
        """The message with the expression and a pointer to the offending part."""
        text = self.text if text is None else text
        if self.pos is None or not text:
            return self.message
        before, after = text[:self.pos], text[self.pos:]
        return f'{self.message} (at character {self.pos + 1}: "{before}⟦{after[:1]}⟧{after[1:]}")' \
            if len(text) <= 120 else f"{self.message} (at character {self.pos + 1})"


# -- the tree ------------------------------------------------------------------------------------

@dataclass
class Node:
    pos: int


@dataclass
class Literal(Node):
    value: object          # float, str or bool
    type: str              # number | text | bool


@dataclass
class Name(Node):
    name: str              # as written: 'AESTDTC', 'ae.AESTDTC', 'AVAL.SYSBP'


@dataclass
class Unary(Node):
    op: str                # '-' | 'not'
    arg: Node


@dataclass
class Binary(Node):
    op: str                # + - * / ** || = <> < <= > >= and or
    left: Node
    right: Node


@dataclass
class In(Node):
    arg: Node
    items: list[Node]
    negated: bool


@dataclass
class Between(Node):
    arg: Node
    low: Node
    high: Node
    negated: bool


@dataclass
class Missing(Node):
    arg: Node
    negated: bool


@dataclass
class Like(Node):
    arg: Node
    pattern: str
    negated: bool


@dataclass
class Call(Node):
    name: str              # lower case
    args: list[Node]


@dataclass
class Case(Node):
    whens: list[tuple[Node, Node]]
    default: Node | None = field(default=None)


def walk(node: Node):
    """Every node of a tree, parents first."""
    yield node
    for child in children(node):
        yield from walk(child)


def children(node: Node) -> list[Node]:
    if isinstance(node, Unary):
        return [node.arg]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, In):
        return [node.arg, *node.items]
    if isinstance(node, Between):
        return [node.arg, node.low, node.high]
    if isinstance(node, (Missing, Like)):
        return [node.arg]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Case):
        return [n for pair in node.whens for n in pair] + ([node.default] if node.default else [])
    return []


# -- tokens --------------------------------------------------------------------------------------

KEYWORDS = {"and", "or", "not", "in", "is", "missing", "null", "between", "like", "case", "when",
            "then", "else", "end", "true", "false", "eq", "ne", "lt", "le", "gt", "ge"}
_MNEMONIC = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_SYMBOLS = ("**", "||", "<=", ">=", "<>", "!=", "^=", "~=", "==", "=", "<", ">", "+", "-", "*", "/",
            "(", ")", ",", ".")
_SAME = {"!=": "<>", "^=": "<>", "~=": "<>", "==": "="}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<text>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<symbol>""" + "|".join(re.escape(s) for s in _SYMBOLS) + r""")
""", re.VERBOSE)
_HINTS = {"&": "write AND", "|": "write OR", "!": "write NOT", "'": "a text is not closed",
          '"': "a text is not closed", "`": "a quoted name is not closed", "[": "a list is (a, b)",
          "{": "a list is (a, b)", "%": "% only means 'any text' inside a LIKE pattern"}


@dataclass
class Token:
    kind: str      # number text name keyword symbol end
    value: str
    pos: int


def tokens(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = _HINTS.get(ch, "")
            raise ExpressionError(f"unexpected character {ch!r}" + (f": {hint}" if hint else ""), pos, text)
        kind, value = m.lastgroup, m.group()
        if kind == "text":
            out.append(Token("text", value[1:-1].replace(value[0] * 2, value[0]), pos))
        elif kind == "quoted":
            out.append(Token("name", value[1:-1], pos))
        elif kind == "word":
            low = value.lower()
            out.append(Token("keyword", low, pos) if low in KEYWORDS else Token("name", value, pos))
        elif kind != "space":
            out.append(Token(kind, _SAME.get(value, value), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


# -- the parser (precedence climbing) -----------------------------------------------------------

_COMPARE = ("=", "<>", "<", "<=", ">", ">=")


class _Parser:
    def __init__(self, text: str):
        self.text, self.toks, self.i = text, tokens(text), 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Token | None = None) -> ExpressionError:
        return ExpressionError(message, (tok or self.tok).pos, self.text)

    def take(self, kind: str, value: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (value is None or t.value == value):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, value: str, what: str) -> Token:
        t = self.take(kind, value)
        if t is None:
            raise self.error(f"expected {what}, found {self.describe(self.tok)}")
        return t

    @staticmethod
    def describe(t: Token) -> str:
        if t.kind == "end":
            return "the end of the expression"
        if t.kind == "text":
            return f"the text '{t.value}'"
        return f"'{t.value}'"

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("the expression is empty")
        node = self.or_()
        if self.tok.kind != "end":
            t = self.tok
            hint = " (join conditions with AND or OR)" if t.kind in ("name", "text", "number") else ""
            raise self.error(f"unexpected {self.describe(t)}{hint}")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while (t := self.take("keyword", "or")):
            node = Binary(t.pos, "or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while (t := self.take("keyword", "and")):
            node = Binary(t.pos, "and", node, self.not_())
        return node

    def not_(self) -> Node:
        if (t := self.take("keyword", "not")):
            return Unary(t.pos, "not", self.not_())
        return self.comparison()

    def comparison(self) -> Node:
        node = self.concat()
        t = self.tok
        op = _MNEMONIC.get(t.value, t.value) if t.kind in ("symbol", "keyword") else None
        if op in _COMPARE:
            self.i += 1
            right = self.concat()
            node = Binary(t.pos, op, node, right)
            if self.tok.kind == "symbol" and self.tok.value in _COMPARE:
                raise self.error("comparisons do not chain: write a < b and b < c")
            return node
        negated = False
        if t.kind == "keyword" and t.value == "not" and self.toks[self.i + 1].value in ("in", "between", "like"):
            self.i += 1
            negated = True
        if self.take("keyword", "in"):
            self.expect("symbol", "(", "( after IN: VISIT in ('WEEK 4', 'WEEK 8')")
            items = [self.concat()]
            while self.take("symbol", ","):
                items.append(self.concat())
            self.expect("symbol", ")", "',' or ')' in the list after IN")
            return In(t.pos, node, items, negated)
        if self.take("keyword", "between"):
            low = self.concat()
            self.expect("keyword", "and", "AND in BETWEEN low AND high")
            return Between(t.pos, node, low, self.concat(), negated)
        if self.take("keyword", "like"):
            pat = self.take("text")
            if pat is None:
                raise self.error("LIKE takes a quoted pattern: TERM like 'HEAD%'")
            return Like(t.pos, node, pat.value, negated)
        if self.take("keyword", "is"):
            neg = bool(self.take("keyword", "not"))
            if not (self.take("keyword", "missing") or self.take("keyword", "null")):
                raise self.error(f"expected MISSING or NULL after IS{' NOT' if neg else ''}, "
                                 f"found {self.describe(self.tok)}")
            return Missing(t.pos, node, neg)
        return node

    def concat(self) -> Node:
        return self.binary(("||",), self.additive)

    def additive(self) -> Node:
        return self.binary(("+", "-"), self.term)

    def term(self) -> Node:
        return self.binary(("*", "/"), self.unary)

    def binary(self, ops: tuple[str, ...], operand) -> Node:
        """Left-associative operators of one precedence level."""
        node = operand()
        while self.tok.kind == "symbol" and self.tok.value in ops:
            t = self.toks[self.i]
            self.i += 1
            node = Binary(t.pos, t.value, node, operand())
        return node

    def unary(self) -> Node:
        if (t := self.take("symbol", "-")):
            return Unary(t.pos, "-", self.unary())
        if self.take("symbol", "+"):
            return self.unary()
        return self.power()

    def power(self) -> Node:
        node = self.primary()
        if (t := self.take("symbol", "**")):
            return Binary(t.pos, "**", node, self.unary())   # right-associative, binds tighter than -
        return node

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "number":
            self.i += 1
            return Literal(t.pos, float(t.value), "number")
        if t.kind == "text":
            self.i += 1
            return Literal(t.pos, t.value, "text")
        if t.kind == "keyword" and t.value in ("true", "false"):
            self.i += 1
            return Literal(t.pos, t.value == "true", "bool")
        if t.kind == "keyword" and t.value == "case":
            return self.case()
        if self.take("symbol", "("):
            node = self.or_()
            self.expect("symbol", ")", "')'")
            return node
        if t.kind == "name":
            self.i += 1
            if self.tok.kind == "symbol" and self.tok.value == "(":
                return self.call(t)
            if self.take("symbol", "."):
                part = self.take("name")
                if part is None:
                    raise self.error(f"expected a column name after '{t.value}.'")
                return Name(t.pos, f"{t.value}.{part.value}")
            return Name(t.pos, t.value)
        if t.kind == "keyword":
            raise self.error(f"'{t.value}' is a keyword; quote a variable of that name: `{t.value.upper()}`")
        raise self.error(f"expected a value, a name or '(', found {self.describe(t)}")

    def call(self, name: Token) -> Node:
        self.expect("symbol", "(", "'('")
        args = []
        if not self.take("symbol", ")"):
            args.append(self.or_())
            while self.take("symbol", ","):
                args.append(self.or_())
            self.expect("symbol", ")", f"',' or ')' after the arguments of {name.value}")
        return Call(name.pos, name.value.lower(), args)

    def case(self) -> Node:
        start = self.expect("keyword", "case", "CASE")
        whens = []
        while self.take("keyword", "when"):
            cond = self.or_()
            self.expect("keyword", "then", "THEN after CASE WHEN condition")
            whens.append((cond, self.or_()))
        if not whens:
            raise self.error("CASE needs at least one WHEN condition THEN value")
        default = self.or_() if self.take("keyword", "else") else None
        self.expect("keyword", "end", "WHEN, ELSE or END")
        return Case(start.pos, whens, default)


def parse(text: str) -> Node:
    """The tree of `text`; ExpressionError (with the offending position) when it is not one."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is text, not {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"an expression of {len(text)} characters is longer than {MAX_LENGTH}")
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", 0, text) from None


MAX_LENGTH = 20_000
