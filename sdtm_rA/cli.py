"""The `sdtm-ra` command line."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from . import __version__
from .errors import ConversionError


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


@click.group()
@click.version_option(__version__, prog_name="sdtm-ra")
def main():
    """sdtm-ra: raw clinical-trial records to CDISC SDTM/ADaM, validated, as SAS XPT v5."""


@main.command()
@click.argument("study", required=False, type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder; datasets go to OUT/sdtm/, provenance to OUT/run.json.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summary and errors.")
@click.option("--no-validate", "no_validate", is_flag=True,
              help="Do not validate the datasets written (no OUT/validation.json and .html).")
def convert(study, out, quiet, no_validate):
    """Convert STUDY (a folder with study.yaml, mappings/ and raw/) to SDTM.

    Without STUDY, the bundled example study (RAMSC01) is converted. The datasets written are then
    validated (as `sdtm-ra validate OUT/sdtm` would) into OUT/validation.json and OUT/validation.html;
    validation findings never make the conversion fail.
    """
    from .convert import convert as run_convert

    t0 = time.perf_counter()
    progress = (lambda m: None) if quiet else _echo_err
    try:
        result = run_convert(study, out, progress=progress, command=["sdtm-ra", *sys.argv[1:]],
                             validate=not no_validate)
    except ConversionError as exc:
        for issue in exc.issues:
            _echo_err(str(issue))
        _echo_err(f"conversion failed: {len(exc.issues)} error(s); nothing was written to {out}")
        sys.exit(1)
    warnings = [i for i in result.issues.items if i.severity == "warning"]
    for w in warnings:
        _echo_err(str(w))
    n = len(result.outputs)
    rows = sum(o["rows"] for o in result.outputs.values())
    click.echo(f"wrote {n} datasets ({rows} records) to {out}/sdtm in {time.perf_counter() - t0:.1f}s; "
               f"{len(warnings)} warning(s); provenance in {out}/run.json")
    if result.validation is not None:
        from .validation.report import console_summary, summarise_counts
        reports = [str(p) for p in result.validation_reports]
        click.echo(console_summary(result.validation, reports))
        errors = summarise_counts(result.validation)["error"]
        if errors:
            click.echo(f"validation: {errors:,} error(s) in the datasets written (the conversion itself "
                       f"succeeded); see {reports[0]}")
    elif result.validation_error:
        _echo_err(f"validation could not run: {result.validation_error}")


@main.command()
@click.argument("folder", type=str)
@click.option("--report", "reports", multiple=True, metavar="PATH",
              help="Write the full report to PATH; the extension picks the format: .html, .json, .csv "
                   "or .xlsx. May be given more than once.")
@click.option("--standard", default=None, metavar="NAME",
              help="Standard to validate against, e.g. sdtmig-3.4 (default: the version TS gives, else 3.4).")
@click.option("--rules", "rules", default=None, metavar="IDS",
              help="Run only these rules, comma-separated, e.g. SD0101,SD0203.")
def validate(folder, reports, standard, rules):
    """Check a folder of SDTM datasets (XPT v5, CSV or parquet) against the SDTMIG and CDISC CT.

    Exit status: 0 when there is no error-level finding, 1 when there are errors, 2 when the
    validation could not run (no such folder, no datasets, unknown standard or rule, unwritable report).
    """
    try:
        code = _validate(folder, reports, standard, rules)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a one-line reason, never a traceback
        if os.environ.get("SDTM_RA_DEBUG"):
            raise
        _echo_err(f"validate: {_one_line(exc)}")
        code = 2
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    from .validation.data import ValidationInputError
    from .validation.report import ReportFormatError
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (ValidationInputError, ReportFormatError)):
        return text
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {text} (internal error; SDTM_RA_DEBUG=1 shows the traceback)"


def _validate(folder, reports, standard, rules) -> int:
    from .specs import load_sdtmig
    from .validation.data import ValidationInputError, _standard_version, load_folder
    from .validation.engine import load_rules, run_rules
    from .validation.report import check_report_path, console_summary, write_report

    for path in reports:
        check_report_path(path)
    only = None
    if rules is not None:
        only = sorted({r.strip().upper() for r in rules.split(",") if r.strip()})
        if not only:
            raise ValidationInputError("--rules names no rule id (e.g. --rules SD0101,SD0203)")
        known = load_rules()
        unknown = [r for r in only if r not in known]
        if unknown:
            raise ValidationInputError(f"unknown rule id(s) {', '.join(unknown)} "
                                       f"(the rules are listed in docs/rules.md)")
    if standard:  # an unknown standard is reported before any dataset is read
        version = _standard_version({}, standard)
        try:
            load_sdtmig(version)
        except Exception as exc:  # noqa: BLE001
            raise ValidationInputError(f"unknown standard '{standard}': no SDTMIG {version} specs "
                                       f"({_one_line_plain(exc)})")
    folder_path = Path(folder)
    if not folder_path.exists():
        raise ValidationInputError(f"no such folder: {folder}")
    try:
        study = load_folder(folder_path, standard)
    except PermissionError as exc:
        raise ValidationInputError(f"cannot read folder {folder}: {exc.strerror}")
    result = run_rules(study, only)
    written = [write_report(result, path) for path in reports]
    click.echo(console_summary(result, written))
    if not written:
        click.echo("every finding: add --report report.html (or .json, .csv, .xlsx)")
    return 1 if result.has_errors else 0


def _one_line_plain(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    main()
