"""Safe YAML reading that remembers line numbers, so that every mapping problem can point at its line.

Only PyYAML's SafeLoader is used: a mapping file is data and nothing in it is ever executed.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ConversionError, Issue


class LineDict(dict):
    """A dict that knows the line of each of its keys (1-based) and its own line."""

    line: int = 0
    key_lines: dict


class LineList(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers where the first alias (*name) is, for the alias-expansion check."""

    first_alias = None

    def compose_node(self, parent, index):
        if self.first_alias is None and self.check_event(yaml.AliasEvent):
            self.first_alias = self.peek_event()
        return super().compose_node(parent, index)


# An alias (*name) repeats its anchored node. Nested aliases multiply (nine lists of nine aliases
# of the list before: 9^9 nodes from 9 lines, the "billion laughs"); what the loaded document would
# hold is counted on the composed node graph, before any Python object is built.
MAX_ALIAS_EXPANSION = 10_000


def _expanded_size(root) -> tuple[int, int] | None:
    """(nodes the document holds with every alias expanded, distinct nodes written), computed once
    per node (memoised; iterative, so that deep documents do not hit the recursion limit); None
    for a node that contains itself (`a: &a [*a]`), which has no finite expansion."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack = [root]
    while stack:
        node = stack[-1]
        if id(node) in size:
            stack.pop()
            continue
        if isinstance(node, yaml.SequenceNode):
            kids = node.value
        elif isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        else:
            kids = []
        todo = [k for k in kids if id(k) not in size]
        if id(node) not in open_:
            open_.add(id(node))
            if any(id(k) in open_ for k in todo):
                return None
            stack.extend(todo)
            continue
        if todo:  # a child reached again through a cycle before it was finished
            return None
        open_.discard(id(node))
        size[id(node)] = 1 + sum(size[id(k)] for k in kids)
        stack.pop()
    return size[id(root)], len(size)


def _construct_mapping(loader, node, deep=False):
    written = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)           # merged pairs (`<<: *anchor`) come first, in YAML's order
    merged = len(node.value) - written
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    from_merge: set = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark)
        if i < merged:
            from_merge.add(key)
        elif key in from_merge:            # a key written beside `<<:` replaces the merged one
            from_merge.discard(key)
        elif key in result:
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
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if loader.first_alias is not None:
            _check_aliases(node, loader.first_alias, display)
        return loader.construct_document(node)
    except RecursionError:
        raise ConversionError([Issue("error", "YAML nested too deeply to be read", file=display)])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConversionError([Issue("error", f"YAML syntax: {msg}", file=display, line=line)])
    except yaml.YAMLError as exc:
        raise ConversionError([Issue("error", f"YAML: {exc}", file=display)])
    finally:
        loader.dispose()


def _check_aliases(node, first_alias, display: str) -> None:
    """Refuse a document whose aliases would expand it far beyond what is written (an alias bomb)."""
    sizes = _expanded_size(node)
    if sizes is None:
        raise ConversionError([Issue(
            "error", f"YAML alias *{first_alias.anchor} (or a later one) refers to a block that "
            f"contains the alias itself: the document would be infinite", file=display,
            line=first_alias.start_mark.line + 1)])
    expanded, written = sizes
    if expanded - written > MAX_ALIAS_EXPANSION:
        raise ConversionError([Issue(
            "error", f"YAML aliases (*{first_alias.anchor} is the first) would expand this document "
            f"to {expanded:,} nodes, {expanded - written:,} more than the {written:,} written (at most "
            f"{MAX_ALIAS_EXPANSION:,} more are accepted): an alias may repeat a block, not multiply "
            f"the document", file=display, line=first_alias.start_mark.line + 1)])


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
