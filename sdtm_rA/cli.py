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


def _fail(exc: ConversionError, what: str, out) -> None:
    for issue in exc.issues:
        _echo_err(str(issue))
    _echo_err(f"{what} failed: {len(exc.issues)} error(s); nothing was written to {out}")
    sys.exit(1)


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
        _fail(exc, "conversion", out)
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
@click.argument("sdtm", type=click.Path(file_okay=False))
@click.option("--spec", "spec", default=None, type=click.Path(file_okay=False),
              help="Folder of ADaM spec files (*.yaml); default: the bundled study's.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder; datasets go to OUT/adam/, provenance under \"adam\" in OUT/run.json.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summary and errors.")
def derive(sdtm, spec, out, quiet):
    """Derive ADaM datasets from the SDTM datasets in folder SDTM (XPT, CSV or parquet).

    Every spec is checked against the SDTM variables before any derivation runs; a failed run leaves
    OUT/adam/ as it was.
    """
    from .adam.derive import derive as run_derive

    t0 = time.perf_counter()
    progress = (lambda m: None) if quiet else _echo_err
    try:
        result = run_derive(sdtm, out, spec_folder=spec, progress=progress,
                            command=["sdtm-ra", *sys.argv[1:]])
    except ConversionError as exc:
        _fail(exc, "derivation", out)
    _report_derived(result, out, t0)


def _report_derived(result, out, t0) -> None:
    warnings = [i for i in result.issues.items if i.severity == "warning"]
    for w in warnings:
        _echo_err(str(w))
    rows = sum(o["rows"] for o in result.outputs.values())
    click.echo(f"wrote {len(result.outputs)} ADaM datasets ({rows} records) to {out}/adam in "
               f"{time.perf_counter() - t0:.1f}s; {len(warnings)} warning(s)")


@main.command()
@click.argument("study", required=False, type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: OUT/sdtm/, OUT/adam/, run.json, validation reports, summary.html.")
@click.option("--spec", "spec", default=None, type=click.Path(file_okay=False),
              help="ADaM spec folder; default: STUDY/adam/, or the bundled study's specs.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summaries and errors.")
def run(study, out, spec, quiet):
    """The whole pipeline: convert STUDY to SDTM, derive ADaM, validate both, write OUT/summary.html.

    Without STUDY, the bundled example study. Exit 1 when the conversion or the derivation fails;
    validation findings are reported (OUT/validation.html, OUT/adam-validation.html) without failing.
    """
    from .adam.derive import derive as run_derive
    from .convert import convert as run_convert

    t0 = time.perf_counter()
    progress = (lambda m: None) if quiet else _echo_err
    command = ["sdtm-ra", *sys.argv[1:]]
    try:
        conv = run_convert(study, out, progress=progress, command=command, validate=True)
    except ConversionError as exc:
        _fail(exc, "conversion", out)
    click.echo(f"SDTM: {len(conv.outputs)} datasets in {out}/sdtm")
    if conv.validation is not None:
        from .validation.report import console_summary
        click.echo(console_summary(conv.validation, [str(p) for p in conv.validation_reports]))
    if spec is None and study is not None:
        own = Path(study) / "adam"
        if not own.is_dir():
            click.echo(f"no ADaM specs in {own}: ADaM skipped (give --spec)")
            return
        spec = own
    t1 = time.perf_counter()
    try:
        result = run_derive(Path(out) / "sdtm", out, spec_folder=spec, progress=progress, command=command)
    except ConversionError as exc:
        _fail(exc, "derivation", f"{out}/adam")
    _report_derived(result, out, t1)
    _after_derive(result, Path(out), progress)
    click.echo(f"done in {time.perf_counter() - t0:.1f}s")


def _after_derive(result, out: Path, progress) -> None:
    """ADaM validation reports and the summary page; problems here are reported, never fatal."""
    try:
        from .validation import validate_folder
        from .validation.report import console_summary, write_report
        res = validate_folder(out / "adam")
        paths = [out / "adam-validation.html", out / "adam-validation.json"]
        for p in paths:
            write_report(res, p)
        click.echo(console_summary(res, [str(p) for p in paths]))
    except Exception as exc:  # noqa: BLE001 - the datasets are written; say why the check could not run
        _echo_err(f"ADaM validation could not run: {_one_line_plain(exc)}")
    if {"ADSL", "ADEFF"} <= set(result.datasets):
        from .adam.summary import write_summary
        try:
            write_summary(out / "summary.html", result.datasets["ADSL"], result.datasets["ADEFF"],
                          title=f"{result.datasets['ADSL']['STUDYID'].iloc[0]}: efficacy summary")
            click.echo(f"summary: {out / 'summary.html'}")
        except Exception as exc:  # noqa: BLE001
            _echo_err(f"summary.html could not be written: {_one_line_plain(exc)}")


@main.command()
@click.argument("folder", type=str)
@click.option("--report", "reports", multiple=True, metavar="PATH",
              help="Write the full report to PATH; the extension picks the format: .html, .json, .csv "
                   "or .xlsx. May be given more than once.")
@click.option("--standard", default=None, metavar="NAME",
              help="Standard to validate against, e.g. sdtmig-3.4 or adamig-1.3 (default: ADaMIG 1.3 for a "
                   "folder of ADaM datasets, else the SDTMIG version TS gives, else 3.4).")
@click.option("--rules", "rules", default=None, metavar="IDS",
              help="Run only these rules, comma-separated, e.g. SD0101,SD0203.")
def validate(folder, reports, standard, rules):
    """Check a folder of SDTM or ADaM datasets (XPT v5, CSV or parquet) against the IG and CDISC CT.

    Exit status: 0 when there is no error-level finding, 1 when there are errors, 2 when the
    validation could not run (no such folder, no datasets, an entry named like a dataset that is not a
    file, unknown standard or rule, unwritable report, a report path over an input dataset or a .csv
    report inside FOLDER). Reports show data values a spreadsheet would run as formulas as text.
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
    from .specs import load_adamig, load_sdtmig
    from .validation.data import ValidationInputError, _family_version, load_folder
    from .validation.engine import load_rules, run_rules
    from .validation.report import check_report_path, check_report_target, console_summary, write_report

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
        family, version = _family_version({}, standard)
        try:
            (load_adamig if family == "ADaM" else load_sdtmig)(version)
        except Exception as exc:  # noqa: BLE001
            ig = "ADaMIG" if family == "ADaM" else "SDTMIG"
            raise ValidationInputError(f"unknown standard '{standard}': no {ig} {version} specs "
                                       f"({_one_line_plain(exc)})")
    folder_path = Path(folder)
    if not folder_path.exists():
        raise ValidationInputError(f"no such folder: {folder}")
    try:
        for path in reports:  # never over an input, never a file the next run reads as a dataset
            check_report_target(path, folder_path)
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
