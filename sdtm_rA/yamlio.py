"""Safe YAML reading that remembers line numbers, so that every mapping problem can point at its line.

Only PyYAML's SafeLoader is used: a mapping file is data and nothing in it is ever executed.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConversionError, Issue


class LineDict(dict):
    """A dict that knows the line of each of its keys (1-based) and its own line."""

    line: int = 0
    key_lines: dict


class LineList(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {result.key_lines[key]})",
                key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader, node, deep=False):
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path, display: str | None = None):
    """Read one YAML document; a syntax error becomes a ConversionError naming file and line."""
    display = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConversionError([Issue("error", "file not found", file=display)])
    except UnicodeDecodeError as exc:
        raise ConversionError([Issue("error", f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                     file=display)])
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConversionError([Issue("error", f"YAML syntax: {msg}", file=display, line=line)])
    except yaml.YAMLError as exc:
        raise ConversionError([Issue("error", f"YAML: {exc}", file=display)])


def line_of(doc, path) -> int | None:
    """The line of the node at `path` (a sequence of keys/indexes), or of its nearest ancestor."""
    node, line = doc, getattr(doc, "line", None)
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and step < len(node):
            child = node[step]
            line = getattr(child, "line", None) or node.line
            node = child
        else:
            break
    return line


def load_each(folder: Path, prefix: str, load, key: str, what: str, checks=None) -> list:
    """Every `*.yaml` of `folder`, read with `load(path, display)`; the problems of all files reported
    together (a file that does not load does not hide the others'). Two files for the same `key`
    attribute (a domain, a dataset) are an error; `checks(doc)` may add more problems per file."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ConversionError([Issue("error", f"no {what} files (*.yaml) found", file=str(folder))])
    docs, issues, seen = [], [], {}
    for path in files:
        display = f"{prefix}/{path.name}"
        try:
            doc = load(path, display)
        except ConversionError as exc:
            issues.extend(exc.issues)
            continue
        name = getattr(doc, key)
        if name in seen:
            issues.append(Issue("error", f"{key} {name} is also in {seen[name]}", file=display,
                                line=doc.line(key)))
            continue
        seen[name] = display
        if checks is not None:
            issues.extend(checks(doc))
        docs.append(doc)
    if issues:
        raise ConversionError(issues)
    return docs
