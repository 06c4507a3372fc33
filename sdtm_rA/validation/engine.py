"""Running every rule on a study and putting the findings in a deterministic order."""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .data import StudyData, load_folder
from .model import FINDING_COLUMNS, RULES, SEVERITIES

RULE_MODULES = ("rules_dataset", "rules_record", "rules_consistency", "rules_cross", "rules_adam")


def load_rules() -> dict:
    """Import the rule modules (each registers its rules). Missing modules are skipped."""
    for mod in RULE_MODULES:
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{mod}":
                raise
    return RULES


@dataclass
class ValidationResult:
    study: StudyData
    findings: pd.DataFrame
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict:
        return {s: int((self.findings["severity"] == s).sum()) for s in SEVERITIES}

    @property
    def has_errors(self) -> bool:
        return bool((self.findings["severity"] == "error").any())

    def summary(self) -> dict:
        f = self.findings
        per_rule = []
        for rid, grp in f.groupby("rule", sort=True):
            r = RULES.get(rid)
            per_rule.append({"rule": rid, "severity": ", ".join(sorted(set(grp["severity"]))),
                             "title": r.title if r else "", "references": r.references if r else "",
                             "count": int(len(grp)),
                             "datasets": sorted(set(grp["dataset"]))})
        return {"standard": self.study.standard, "datasets": sorted(self.study.datasets),
                "by_severity": self.counts, "by_rule": per_rule, "rules_run": len(self.timings),
                "seconds": round(self.seconds, 2)}


def run_rules(study: StudyData, only: list[str] | None = None) -> ValidationResult:
    t0 = time.perf_counter()
    rules = load_rules()
    frames = []
    timings = {}
    for load in study.load_findings:
        frames.append(load.assign(rule="SYS0001"))
    for rid in sorted(rules):
        r = rules[rid]
        if only and rid not in only:
            continue
        if study.family not in r.standards:  # SDTM rules for SDTMIG folders, ADaM rules for ADaMIG
            continue
        t1 = time.perf_counter()
        try:
            out = r.func(study)
        except Exception as exc:  # noqa: BLE001 - a rule that cannot run is itself reported
            out = [pd.DataFrame([{"dataset": "", "variable": "", "row": 0, "usubjid": "", "seq": "",
                                  "value": "", "message": f"rule could not run: {type(exc).__name__}: {exc}",
                                  "severity": "notice"}])]
        timings[rid] = time.perf_counter() - t1
        if out is None:
            continue
        for frame in (out if isinstance(out, list) else [out]):
            if frame is not None and len(frame):
                frames.append(frame.assign(rule=rid))
    if frames:
        findings = pd.concat(frames, ignore_index=True)
    else:
        findings = pd.DataFrame(columns=FINDING_COLUMNS)
    if "severity" not in findings.columns:
        findings["severity"] = None
    default = findings["rule"].map(lambda r: RULES[r].severity if r in RULES else "error")
    findings["severity"] = findings["severity"].where(findings["severity"].notna(), default)
    findings["row"] = findings["row"].fillna(0).astype(int)
    for col in ("dataset", "variable", "usubjid", "seq", "value", "message"):
        findings[col] = findings[col].fillna("").astype(str)
    findings = findings[FINDING_COLUMNS].sort_values(
        ["dataset", "rule", "row", "variable", "value", "message"], kind="stable").reset_index(drop=True)
    return ValidationResult(study, findings, time.perf_counter() - t0, timings)


def validate_folder(folder: str | Path, standard: str | None = None, only=None) -> ValidationResult:
    return run_rules(load_folder(folder, standard), only)
