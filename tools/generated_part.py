"""Shared by the doc generators: rewrite (or, with --check, compare) the part of a document between
two markers, so that hand-written text and generated reference live in one file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(doc: Path, begin: str, end: str, render, repo: Path) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="exit 1 when the generated part is stale")
    args = ap.parse_args()
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{render()}\n{end}{tail}"
    if args.check:
        if new != text:
            print(f"{doc.relative_to(repo)} is stale: run python tools/{Path(sys.argv[0]).name}", file=sys.stderr)
            return 1
        return 0
    doc.write_text(new, encoding="utf-8")
    return 0
