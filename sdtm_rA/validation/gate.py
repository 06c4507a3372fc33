"""The validator as the gate of publication: what a run would publish is validated in its staging
folder, and error-level findings (or a validator that cannot run) refuse the run unless the user
says `--allow-invalid`. Used by `convert` (SDTM) and `derive` (ADaM).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError, Issue, shown


class ValidationRefusal(ConversionError):
    """The validator found error-level findings in what a run would publish."""

    def __init__(self, issues, errors: int, what: str):
        super().__init__(issues)
        self.errors, self.what = errors, what


def validation_refusal(res, what: str, folder: str) -> ConversionError:
    """The validator's error-level findings as the reason a run publishes nothing: per rule and
    dataset, the count and the first records (row, USUBJID, variable, value)."""
    f = res.findings
    errors = f[f["severity"] == "error"]
    issues = []
    for (rule, dataset), grp in errors.groupby(["rule", "dataset"], sort=True):
        examples = []
        for rec in grp.head(3).to_dict("records"):
            parts = [f"row {rec['row']}" if rec.get("row") else ""]
            for key in ("usubjid", "variable"):
                if rec.get(key):
                    parts.append(f"{rec[key]}")
            if rec.get("value") not in (None, ""):
                parts.append(f"value {shown(rec['value'])}")
            examples.append(" ".join(p for p in parts if p))
        first = grp.iloc[0]
        listed = "; ".join(e for e in examples if e)
        issues.append(Issue("error", f"{rule}: {first['message']} ({len(grp):,} record(s)"
                                     f"{'; ' + listed if listed else ''})", file=folder, domain=dataset))
    issues.append(Issue("error", f"the validator finds {len(errors):,} error(s) in the {what} this run "
                                 "would publish, so nothing was published; fix the inputs, or publish "
                                 "anyway with --allow-invalid"))
    return ValidationRefusal(issues, len(errors), what)


def validate_before_publishing(output, name: str, out: Path, reports, record: dict,
                               allow_invalid: bool, what: str, standard=None):
    """Validate the staged folder OUT/name and stage its reports; the counts go to `record`
    (run.json). Error-level findings refuse the run (ConversionError) unless `allow_invalid`. A
    validator that cannot run refuses the run too, unless `allow_invalid`: then (None, why) is
    returned, its reports of an earlier run removed; else (result, "")."""
    try:
        from . import validate_folder             # looked up at call time (tests replace it
        from .report import summarise_counts, write_report
        res = validate_folder(output.staged(name), standard=standard)
        res.study.folder = out / name            # as the reports name it, once published
    except Exception as exc:  # noqa: BLE001 - reported; unvalidated data are published only on request
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if not allow_invalid:
            raise ConversionError([Issue("error", f"the validator could not run on the {what} ({why}), so "
                                         "nothing was published: unchecked data are not published "
                                         "unless --allow-invalid says so", file=str(out / name))])
        for report in reports:
            output.remove(report)
        record["validation"] = {"error": why, "published_unvalidated": True}
        return None, why
    counts = summarise_counts(res)
    record["validation"] = {**counts, "published_with_errors": bool(counts["error"]) and allow_invalid}
    if counts["error"] and not allow_invalid:
        raise validation_refusal(res, what, str(out / name))
    for report in reports:
        write_report(res, output.stage_file(report))
    return res, ""
