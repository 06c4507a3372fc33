"""The study configuration (`study.yaml`): identity, arms, visit schedule, epochs and TS parameters.

This is where everything study-specific lives; the engine itself knows nothing about any study.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConversionError, Issue
from .yamlio import line_of, load_yaml


@dataclass
class Visit:
    visitnum: float
    visit: str
    day: int | None
    window: tuple[int, int] | None
    epoch: str | None
    aliases: tuple[str, ...] = ()


@dataclass
class Study:
    folder: Path
    study_id: str
    title: str
    mapping_dir: Path
    sdtmig: str = "3.4"
    ct_version: str | None = None
    xpt_timestamp: str | None = None
    arms: list[dict] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    unscheduled_pattern: str = "UNSCHEDULED {n}"
    unscheduled_step: float = 0.1
    epochs: list[dict] = field(default_factory=list)
    trial_summary: list[dict] = field(default_factory=list)
    doc: dict = field(default_factory=dict)
    path: Path | None = None

    def display(self, path: Path) -> str:
        """Paths in messages are relative to the study folder, the way the user sees them."""
        try:
            return str(Path(path).resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(path)

    def visit_lookup(self) -> dict[str, Visit]:
        table = {}
        for v in self.visits:
            for name in (v.visit, *v.aliases):
                table[_norm(name)] = v
        return table

    def unscheduled_regex(self) -> re.Pattern:
        pattern = re.escape(_norm(self.unscheduled_pattern)).replace(re.escape("{N}"), r"(\d+)")
        return re.compile(f"^{pattern}$")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().upper())


STUDY_SCHEMA = {
    "study": {"type": "dict", "required": True, "schema": {
        "id": {"type": "string", "required": True, "regex": r"[A-Za-z0-9_\-]+"},
        "title": {"type": "string", "required": True},
        "xpt_timestamp": {"type": ["string", "datetime"]},
    }},
    "standards": {"type": "dict", "schema": {
        "sdtmig": {"type": "string", "allowed": ["3.4"]},
        "ct": {"type": "string"},
    }},
    "mappings": {"type": "string"},
    "arms": {"type": "list", "schema": {"type": "dict", "schema": {
        "armcd": {"type": "string", "required": True, "maxlength": 20},
        "arm": {"type": "string", "required": True, "maxlength": 200},
    }}},
    "visits": {"type": "list", "required": True, "schema": {"type": "dict", "schema": {
        "visitnum": {"type": "number", "required": True},
        "visit": {"type": "string", "required": True},
        "day": {"type": "integer", "nullable": True},
        "window": {"type": "list", "items": [{"type": "integer"}, {"type": "integer"}]},
        "epoch": {"type": "string"},
        "aliases": {"type": "list", "schema": {"type": "string"}},
    }}},
    "unscheduled": {"type": "dict", "schema": {"pattern": {"type": "string", "regex": r".*\{n\}.*"},
                                               "step": {"type": "float", "allowed": [0.1, 0.01, 0.001]}}},
    "epochs": {"type": "list", "schema": {"type": "dict", "schema": {
        "epoch": {"type": "string", "required": True},
        "start": {"required": True, "type": ["string", "dict"]},
    }}},
    "trial_summary": {"type": "list", "schema": {"type": "dict", "schema": {
        "parmcd": {"type": "string", "required": True, "maxlength": 8},
        "value": {"type": ["string", "number", "date"], "excludes": "null_flavor"},
        "null_flavor": {"type": "string", "allowed": ["NI", "NA", "UNK", "ASKU", "NASK", "NAV",
                                                      "MSK", "OTH", "PINF", "NINF", "QS", "TRC"],
                        "excludes": "value"},
        "codelist": {"type": "string"},
        "code": {"type": "string"},
        "ref": {"type": "string"},
        "version": {"type": "string"},
    }}},
}


def load_study(folder: Path, mapping_dir: Path | None = None) -> Study:
    """Read and validate `study.yaml` in `folder` (errors name the line)."""
    from .schema import validate_document

    folder = Path(folder)
    path = folder / "study.yaml"
    if not path.exists():
        raise ConversionError([Issue("error", "no study.yaml in the study folder", file=str(folder))])
    doc = load_yaml(path, "study.yaml")
    validate_document(doc, STUDY_SCHEMA, "study.yaml", what="study configuration")
    s = doc["study"]
    visits = []
    for v in doc.get("visits", []):
        visits.append(Visit(float(v["visitnum"]), _norm(v["visit"]), v.get("day"),
                            tuple(v["window"]) if v.get("window") else None, v.get("epoch"),
                            tuple(_norm(a) for a in v.get("aliases", []))))
    nums = [v.visitnum for v in visits]
    if len(set(nums)) != len(nums):
        raise ConversionError([Issue("error", "visit schedule has repeated VISITNUM values",
                                     file="study.yaml", line=line_of(doc, ["visits"]))])
    stamp = s.get("xpt_timestamp")
    mdir = mapping_dir or folder / doc.get("mappings", "mappings")
    std = doc.get("standards", {})
    return Study(folder=folder, study_id=s["id"], title=s["title"], mapping_dir=Path(mdir),
                 sdtmig=std.get("sdtmig", "3.4"), ct_version=std.get("ct"),
                 xpt_timestamp=str(stamp) if stamp else None, arms=list(doc.get("arms", [])),
                 visits=visits,
                 unscheduled_pattern=doc.get("unscheduled", {}).get("pattern", "UNSCHEDULED {n}"),
                 unscheduled_step=float(doc.get("unscheduled", {}).get("step", 0.1)),
                 epochs=list(doc.get("epochs", [])), trial_summary=list(doc.get("trial_summary", [])),
                 doc=doc, path=path)


def bundled_study_folder() -> tuple[Path, Path]:
    """The example study shipped with the package, and its mappings folder.

    Installed, the mappings sit inside the package; in a checkout they are the repository's
    top-level `mappings/` (one copy, where data managers look for them).
    """
    here = Path(__file__).resolve().parent / "bundled" / "ramsc01"
    installed = here / "mappings"
    if installed.is_dir() and any(installed.glob("*.yaml")):
        return here, installed
    checkout = Path(__file__).resolve().parent.parent / "mappings"
    return here, checkout
