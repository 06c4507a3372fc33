"""The study configuration (`study.yaml`): identity, arms, visit schedule, epochs and TS parameters.

This is where everything study-specific lives; the engine itself knows nothing about any study.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError, Issue
from ..io.yamlio import line_of, load_yaml


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
    unscheduled_pattern: str | None = "UNSCHEDULED {n}"    # None: only `numbered:` labels
    unscheduled_step: float = 0.1
    unscheduled_numbered: tuple[str, ...] = ()     # labels that carry their VISITNUM ('UNS {visitnum}')
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
        if self.unscheduled_pattern is None:
            return re.compile(r"(?!)")      # matches nothing
        pattern = re.escape(_norm(self.unscheduled_pattern)).replace(re.escape("{N}"), r"(\d+)")
        return re.compile(f"^{pattern}$")

    def numbered_regexes(self) -> list[re.Pattern]:
        """`unscheduled: {numbered: ...}`: labels whose number is the VISITNUM ('UNSCHEDULED 3.1')."""
        return [numbered_regex(p) for p in self.unscheduled_numbered]


def numbered_regex(pattern: str) -> re.Pattern:
    text = re.escape(_norm(pattern)).replace(re.escape("{VISITNUM}"), r"(\d+(?:\.\d+)?)")
    return re.compile(f"^{text}$")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().upper())


STUDY_SCHEMA = {
    "study": {"type": "dict", "required": True, "schema": {
        "id": {"type": "string", "required": True, "regex": r"[A-Za-z0-9_\-]+"},
        "title": {"type": "string", "required": True},
        "xpt_timestamp": {"type": ["string", "datetime", "date"]},
    }},
    "standards": {"type": "dict", "schema": {
        "sdtmig": {"type": "string", "allowed": ["3.4"]},
        "ct": {"type": ["string", "date"]},
    }},
    "mappings": {"type": "string"},
    # places outside the study folder that raw files may be read from (see inputs.py)
    "external_inputs": {"type": "list", "schema": {"type": "string", "empty": False}},
    "arms": {"type": "list", "schema": {"type": "dict", "schema": {
        "armcd": {"type": "string", "required": True, "maxlength": 20, "empty": False},
        "arm": {"type": "string", "required": True, "maxlength": 200, "empty": False},
    }}},
    "visits": {"type": "list", "required": True, "schema": {"type": "dict", "schema": {
        "visitnum": {"type": "number", "required": True},
        "visit": {"type": "string", "required": True, "empty": False},   # '' would match blank raw visits
        "day": {"type": "integer", "nullable": True},
        "window": {"type": "list", "items": [{"type": "integer"}, {"type": "integer"}]},
        "epoch": {"type": "string"},
        "aliases": {"type": "list", "schema": {"type": "string", "empty": False}},
    }}},
    "unscheduled": {"type": "dict", "schema": {"pattern": {"type": "string", "regex": r".*\{n\}.*"},
                                               "numbered": {"type": ["string", "list"],
                                                            "schema": {"type": "string"}},
                                               "step": {"type": "float", "allowed": [0.1, 0.01, 0.001]}}},
    "epochs": {"type": "list", "schema": {"type": "dict", "schema": {
        "epoch": {"type": "string", "required": True, "empty": False},
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


def _document_study_schema() -> None:
    from .schema import documented
    documented(STUDY_SCHEMA["study"]["schema"], {
        "id": "STUDYID", "title": "the study's title (TS)",
        "xpt_timestamp": "the creation date written in every XPT header (reproducible files)"})
    documented(STUDY_SCHEMA["standards"]["schema"], {
        "sdtmig": "the SDTMIG version (3.4)", "ct": "the NCI CT package date (2025-03-28)"})
    documented(STUDY_SCHEMA["arms"]["schema"]["schema"], {"armcd": "ARMCD", "arm": "ARM"})
    documented(STUDY_SCHEMA["visits"]["schema"]["schema"], {
        "visitnum": "VISITNUM", "visit": "VISIT, as SDTM writes it",
        "day": "the planned study day (VISITDY; null: none)",
        "window": "[first, last] study day of the visit's window",
        "epoch": "the EPOCH of the visit's records",
        "aliases": "other raw spellings of the visit (SCR, D1)"})
    documented(STUDY_SCHEMA["unscheduled"]["schema"], {
        "pattern": "raw labels of unscheduled visits with their order, `UNSCHEDULED {n}`: VISITNUM after the "
                   "last scheduled visit on or before the date",
        "numbered": "raw labels that carry their VISITNUM, `UNS {visitnum}`",
        "step": "the VISITNUM step of the n-th unscheduled visit (0.1, 0.01, 0.001)"})
    documented(STUDY_SCHEMA["epochs"]["schema"]["schema"], {
        "epoch": "EPOCH", "start": "a DM date (RFXSTDTC) or {visit: ...} whose SVSTDTC starts it"})
    documented(STUDY_SCHEMA["trial_summary"]["schema"]["schema"], {
        "parmcd": "TSPARMCD", "value": "TSVAL", "null_flavor": "TSVALNF, instead of a value",
        "codelist": "the codelist of the value", "code": "TSVALCD", "ref": "TSVCDREF",
        "version": "TSVCDVER"})
    documented(STUDY_SCHEMA, {
        "study": "the study's identity", "standards": "the versions of the standards",
        "mappings": "the mappings folder (default `mappings/` of the study folder)",
        "external_inputs": "folders outside the study folder that raw files may be read from",
        "arms": "the planned arms", "visits": "the visit schedule", "unscheduled": "unscheduled visit labels",
        "epochs": "the epochs and what starts each", "trial_summary": "TS parameters"})


_document_study_schema()


def load_study(folder: Path, mapping_dir: Path | None = None) -> Study:
    """Read and validate `study.yaml` in `folder` (errors name the line): every value is checked
    here, before anything runs, so that a bad one never surfaces later as a traceback."""
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
    issues = _value_issues(doc, visits)
    if issues:
        raise ConversionError(issues)
    stamp = s.get("xpt_timestamp")
    mdir = mapping_dir or folder / doc.get("mappings", "mappings")
    std = doc.get("standards", {})
    return Study(folder=folder, study_id=s["id"], title=s["title"], mapping_dir=Path(mdir),
                 sdtmig=std.get("sdtmig", "3.4"), ct_version=str(std["ct"]) if std.get("ct") else None,
                 xpt_timestamp=str(stamp) if stamp else None, arms=list(doc.get("arms", [])),
                 visits=visits,
                 unscheduled_pattern=_ordinal(doc),
                 unscheduled_step=float(doc.get("unscheduled", {}).get("step", 0.1)),
                 unscheduled_numbered=_numbered(doc),
                 epochs=list(doc.get("epochs", [])), trial_summary=list(doc.get("trial_summary", [])),
                 doc=doc, path=path)


def _ordinal(doc) -> str | None:
    """`unscheduled: pattern:`; by default 'UNSCHEDULED {n}', unless only `numbered:` is declared."""
    uns = doc.get("unscheduled") or {}
    return uns.get("pattern", None if "numbered" in uns else "UNSCHEDULED {n}")


def _numbered(doc) -> tuple[str, ...]:
    value = (doc.get("unscheduled") or {}).get("numbered") or ()
    return (value,) if isinstance(value, str) else tuple(value)


def _value_issues(doc, visits: list[Visit]) -> list[Issue]:
    """What the schema cannot see: values that must exist elsewhere (a CT version we ship, a visit
    of the schedule), parse (the XPT timestamp) or agree with each other (unique names, windows)."""
    from ..standards.specs import ct_versions
    from ..io.xpt import reproducible_timestamp

    issues: list[Issue] = []

    def error(message, *where):
        issues.append(Issue("error", message, file="study.yaml", line=line_of(doc, list(where))))

    ct = doc.get("standards", {}).get("ct")
    if ct is not None and str(ct) not in ct_versions("sdtm"):
        error(f"standards.ct: SDTM CT version '{ct}' is not available; the versions there are: "
              f"{', '.join(ct_versions('sdtm')) or 'none'}", "standards", "ct")
    stamp = doc["study"].get("xpt_timestamp")
    try:
        reproducible_timestamp(stamp)
    except ValueError as exc:
        if stamp is None:       # from the environment: said here, before anything runs
            issues.append(Issue("error", f"{exc} (or set study.xpt_timestamp in study.yaml)",
                                file="environment"))
        else:
            error(f"study.xpt_timestamp: '{stamp}' is not an ISO 8601 date or date-time "
                  f"(e.g. 2024-06-30 or 2024-06-30T00:00:00)", "study", "xpt_timestamp")

    names: dict[str, tuple[int, float]] = {}
    seen_nums: dict[float, int] = {}
    for i, (raw, v) in enumerate(zip(doc.get("visits", []), visits)):
        where = ("visits", i)
        if v.visitnum in seen_nums:
            error(f"visits: VISITNUM {raw['visitnum']} is used twice (visits {seen_nums[v.visitnum] + 1} "
                  f"and {i + 1} of the schedule)", *where, "visitnum")
        seen_nums.setdefault(v.visitnum, i)
        for name in (v.visit, *v.aliases):
            if name in names and names[name][1] != v.visitnum:
                error(f"visits: '{name}' names visit {names[name][0] + 1} (VISITNUM "
                      f"{names[name][1]:g}) and visit {i + 1} (VISITNUM {v.visitnum:g}) of the "
                      f"schedule: a raw visit label must mean one visit", *where)
            names.setdefault(name, (i, v.visitnum))
        if v.day == 0:
            error(f"visits: {v.visit}: day 0 does not exist in SDTM study days (day 1 is the "
                  f"reference day, day -1 the day before)", *where, "day")
        if v.window:
            lo, hi = v.window
            if lo > hi:
                error(f"visits: {v.visit}: window [{lo}, {hi}] starts after it ends", *where, "window")
            elif v.day is not None and not lo <= v.day <= hi:
                error(f"visits: {v.visit}: planned day {v.day} is outside its window [{lo}, {hi}]",
                      *where, "window")

    lookup = {name: v for v in visits for name in (v.visit, *v.aliases)}
    epochs: dict[str, int] = {}
    for i, ep in enumerate(doc.get("epochs", [])):
        where = ("epochs", i)
        name, start = ep["epoch"], ep["start"]
        if name in epochs:
            error(f"epochs: epoch '{name}' is declared twice (epochs {epochs[name] + 1} and {i + 1})",
                  *where, "epoch")
        epochs.setdefault(name, i)
        if isinstance(start, str):
            if not re.fullmatch(r"[A-Z][A-Z0-9]{0,4}DTC", start):
                error(f"epochs: {name}: start '{start}' is not a DM date variable (e.g. RFICDTC, "
                      f"RFXSTDTC) nor {{visit: <a visit of the schedule>}}", *where, "start")
        elif set(start) != {"visit"}:
            error(f"epochs: {name}: start {dict(start)} must be a DM date variable (e.g. RFXSTDTC) or "
                  f"{{visit: <a visit of the schedule>}}", *where, "start")
        elif _norm(start["visit"]) not in lookup:
            error(f"epochs: {name}: start visit '{start['visit']}' is not in the schedule "
                  f"({', '.join(v.visit for v in visits)})", *where, "start")

    ordinal = _norm(_ordinal(doc) or "")
    for pattern in _numbered(doc):
        shape = _norm(pattern).replace("{VISITNUM}", "{N}")
        if re.findall(r"\{[^{}]*\}", pattern) != ["{visitnum}"]:
            error(f"unscheduled.numbered: {pattern!r} needs the placeholder {{visitnum}} once (where the label "
                  "carries the VISITNUM, e.g. 'UNSCHEDULED {visitnum}' for 'Unscheduled 3.1') and no other",
                  "unscheduled", "numbered")
        elif shape == ordinal:
            error(f"unscheduled.numbered: {pattern!r} has the shape of `pattern: {ordinal.replace('{N}', '{n}')}`"
                  f": a label such as {shape.replace('{N}', '3')!r} would be both the 3rd unscheduled visit and "
                  "VISITNUM 3; keep one of them", "unscheduled", "numbered")

    armcds: dict[str, int] = {}
    for i, arm in enumerate(doc.get("arms", [])):
        if arm["armcd"] in armcds:
            error(f"arms: ARMCD '{arm['armcd']}' is declared twice (arms {armcds[arm['armcd']] + 1} "
                  f"and {i + 1})", "arms", i, "armcd")
        armcds.setdefault(arm["armcd"], i)
    return issues


def bundled_study_folder() -> tuple[Path, Path]:
    """The example study shipped with the package, and its mappings folder.

    Installed, the mappings sit inside the package; in a checkout they are the repository's
    top-level `mappings/` (one copy, where data managers look for them).
    """
    here = Path(__file__).resolve().parent.parent / "bundled" / "ramsc01"
    installed = here / "mappings"
    if installed.is_dir() and any(installed.glob("*.yaml")):
        return here, installed
    checkout = Path(__file__).resolve().parents[2] / "mappings"
    return here, checkout
