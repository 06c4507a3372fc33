"""Problems found while reading a study, collected so that a data manager sees all of them at once.

Every problem names where it comes from (a mapping file and line, or a raw file and its lines) and the
offending value, because the person reading it has to find and fix it in those files.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    severity: str  # "error" | "warning" | "note"
    message: str
    file: str = ""
    line: int | None = None
    domain: str = ""
    variable: str = ""
    value: str | None = None

    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file

    def __str__(self) -> str:
        parts = [p for p in (self.where(), self.domain, self.variable) if p]
        head = ": ".join(parts)
        return f"{self.severity}: {head}: {self.message}" if head else f"{self.severity}: {self.message}"

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass
class Issues:
    """An accumulator: code keeps going after a problem so that one run reports every problem."""

    items: list[Issue] = field(default_factory=list)

    def error(self, message: str, **where) -> None:
        self.items.append(Issue("error", message, **where))

    def warning(self, message: str, **where) -> None:
        self.items.append(Issue("warning", message, **where))

    def note(self, message: str, **where) -> None:
        self.items.append(Issue("note", message, **where))

    def extend(self, other: "Issues | list[Issue]") -> None:
        self.items.extend(other.items if isinstance(other, Issues) else other)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConversionError(self.errors)


class ConversionError(Exception):
    """Raised when a phase of the conversion found errors; carries every error of that phase."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


SHOWN_LIMIT = 100


def shown(value, limit: int = SHOWN_LIMIT) -> str:
    """A raw value as a message quotes it: control characters escaped ('\\n'), cut at `limit`
    characters with '…' and the full length, so that a bad 100,000-character cell stays readable."""
    text = "" if value is None else str(value)
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in cut)
    if len(text) > limit:
        return f"'{cut}…' ({len(text):,} characters)"
    return f"'{cut}'"


def rows_text(lines, limit: int = 10) -> str:
    """'lines 3, 7, 12 (+4 more)': row lists stay readable when a value recurs thousands of times."""
    lines = sorted({int(x) for x in lines})
    shown = ", ".join(str(x) for x in lines[:limit])
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    word = "line" if len(lines) == 1 else "lines"
    return f"{word} {shown}{more}"
