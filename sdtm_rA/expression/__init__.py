"""One expression language for SDTM mappings and ADaM specs: data, never code.

    expr = Expression("ae.AESTDTC >= RFXSTDTC and AEONGO = 'Y'")   # parsed: ExpressionError if not
    expr.check(type_of)              # before running: names and types, with the offending position
    expr.mask(column, declared, n)   # a where: the records where it is true
    expr.values(column, declared, n) # a value per record

The text is tokenised and parsed by `grammar` into a tree of a dozen node kinds; `evaluate` walks it
over whole columns. Nothing reaches Python's eval, attribute access, files or the network: a name is
only ever looked up through the `column` callable the caller gives.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .evaluate import Columns, Evaluator, Types
from .functions import FUNCTIONS
from .grammar import ExpressionError, Name, parse, walk
from .values import ANY, BOOL, DATE, INSTANT, NUMBER, TEXT, Value, as_text

__all__ = ["Expression", "ExpressionError", "FUNCTIONS", "NUMBER", "TEXT", "DATE", "INSTANT", "BOOL", "ANY"]


class Expression:
    def __init__(self, text: str):
        self.text = text
        self.tree = parse(text)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @property
    def names(self) -> list[str]:
        """Every name the expression reads, in order of appearance, once each."""
        seen = []
        for node in walk(self.tree):
            if isinstance(node, Name) and node.name not in seen:
                seen.append(node.name)
        return seen

    def name_positions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in walk(self.tree):
            if isinstance(node, Name):
                out.setdefault(node.name, node.pos)
        return out

    def check(self, type_of=lambda name: None) -> str:
        """The result type (NUMBER, TEXT, DATE, BOOL, or ANY when it depends on the data); a type error
        where the types are known, raised before any data is read."""
        return self._walk(Types(type_of)).type

    def evaluate(self, column, declared=None, n: int = 0) -> Value:
        return self._walk(Columns(column, declared, n))

    def _walk(self, names) -> Value:
        try:
            return Evaluator(self.text, names).value(self.tree)
        except RecursionError:
            raise ExpressionError("the expression is nested too deeply", 0, self.text) from None

    def mask(self, column, declared=None, n: int = 0) -> np.ndarray:
        """Where the condition is true (unknown, as with a missing value, is not true)."""
        v = self.evaluate(column, declared, n)
        if v.type != BOOL:
            raise ExpressionError(f"a where: is a condition, and this expression gives "
                                  f"{_WORD[v.type]} (compare it: ... = 'Y')", 0, self.text)
        return v.data.fillna(False).to_numpy(dtype=bool)

    def values(self, column, declared=None, n: int = 0, index=None) -> pd.Series:
        """The value per record: float for numbers, ISO 8601 text for dates, text otherwise."""
        v = self.evaluate(column, declared, n)
        if v.type == BOOL:
            raise ExpressionError("this expression is a condition, not a value (write "
                                  "case when ... then 'Y' end)", 0, self.text)
        if v.type == NUMBER:
            return pd.Series(v.data, index=index, dtype=float)
        return pd.Series(as_text(v), index=index, dtype=object)


_WORD = {NUMBER: "a number", TEXT: "text", DATE: "a date", BOOL: "a condition", ANY: "a value"}
