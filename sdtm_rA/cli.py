"""The `sdtm-ra` command line."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from . import __version__
from .errors import ConversionError
from .io.publish import OutputBusy


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


#: exit status of a run stopped by a signal: 128 + its number, as shells report it
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """SIGTERM, raised where the program is (like Ctrl-C's KeyboardInterrupt), so that every
    `finally` removes what the run had staged before the process ends."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Interrupted()


class _Main(click.Group):
    """The command group: Ctrl-C exits 130 and SIGTERM 143 (never 1, which means "errors found"),
    after the run has removed what it staged; an output it had published says so."""

    def invoke(self, ctx):
        from .io import publish
        publish.COMMITTED.clear()
        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:          # not the main thread: leave SIGTERM as it is
            previous = None
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
            name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            if ctx.invoked_subcommand == "validate":
                what = "the validation did not finish (each report file is either whole or not written)"
            elif publish.COMMITTED:
                what = f"the outputs had just been published in full ({', '.join(publish.COMMITTED)})"
            else:
                what = "nothing was published; the output folder is as it was before this run"
            _echo_err(f"interrupted ({name}): {what}")
            raise click.exceptions.Exit(EXIT_INTERRUPTED[signum])
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _fail(exc: ConversionError, what: str, out) -> None:
    from .validation.gate import ValidationRefusal
    for issue in exc.issues:
        _echo_err(str(issue))
    if isinstance(exc, OutputBusy):
        _echo_err(f"{what} not started: {out} is in use")
    elif isinstance(exc, ValidationRefusal):
        _echo_err(f"{what} refused: the validator found {exc.errors:,} error(s) in the {exc.what}; "
                  f"nothing was written to {out}")
    else:
        _echo_err(f"{what} failed: {len(exc.issues)} error(s); nothing was written to {out}")
    sys.exit(1)


def _notice(text: str) -> None:
    """What was done about an earlier, interrupted run: always shown, even with --quiet."""
    _echo_err(f"note: {text}")


def _progress(quiet: bool):
    return (lambda m: None) if quiet else _echo_err


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="sdtm-ra")
def main():
    """sdtm-ra: raw clinical-trial records to CDISC SDTM/ADaM, validated, as SAS XPT v5.

    \b
    Exit status:
      convert, derive, run: 0 published; 1 nothing published (every problem listed)
      validate: 0 no error-level finding; 1 errors found; 2 could not run
      all: 130 interrupted by Ctrl-C, 143 by SIGTERM (what was staged is removed)
    """


ALLOW_INVALID = click.option(
    "--allow-invalid", "allow_invalid", is_flag=True,
    help="Publish the datasets even when the validator finds error-level findings in them "
         "(by default such a run publishes nothing and exits 1).")


@main.command()
@click.argument("study", required=False, type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output folder; datasets go to OUT/sdtm/, provenance to OUT/run.json.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summary and errors.")
@click.option("--no-validate", "no_validate", is_flag=True,
              help="Do not validate the datasets (no OUT/validation.json and .html).")
@ALLOW_INVALID
def convert(study, out, quiet, no_validate, allow_invalid):
    """Convert STUDY (a folder with study.yaml, mappings/ and raw/) to SDTM.

    Without STUDY, the bundled example study (RAMSC01) is converted. The datasets are validated (as
    `sdtm-ra validate` would) before they are published, into OUT/validation.json and .html; an
    error-level finding refuses the run unless --allow-invalid. OUT/sdtm, run.json and the reports
    are published together, in one step, or not at all; ADaM outputs of an earlier run (derived from
    the SDTM this run replaces) are removed.
    """
    from .sdtm.convert import convert as run_convert

    t0 = time.perf_counter()
    try:
        result = run_convert(study, out, progress=_progress(quiet), command=["sdtm-ra", *sys.argv[1:]],
                             validate=not no_validate, allow_invalid=allow_invalid, notify=_notice)
    except ConversionError as exc:
        _fail(exc, "conversion", out)
    warnings = [i for i in result.issues.items if i.severity == "warning"]
    for w in warnings:
        _echo_err(str(w))
    n = len(result.outputs)
    rows = sum(o["rows"] for o in result.outputs.values())
    click.echo(f"wrote {n} datasets ({rows} records) to {out}/sdtm in {time.perf_counter() - t0:.1f}s; "
               f"{len(warnings)} warning(s); provenance in {out}/run.json")
    if result.removed:
        click.echo(f"removed {', '.join(result.removed)} of an earlier run from {out}: derived from the "
                   f"SDTM this run replaced (run `sdtm-ra derive` or `sdtm-ra run` to make them anew)")
    _report_validation(result, "the conversion")


def _report_validation(result, what: str) -> None:
    if result.validation is not None:
        from .validation.report import console_summary, summarise_counts
        reports = [str(p) for p in result.validation_reports]
        click.echo(console_summary(result.validation, reports))
        errors = summarise_counts(result.validation)["error"]
        if errors:
            click.echo(f"validation: {errors:,} error(s) in the datasets published with --allow-invalid; "
                       f"see {reports[0]}")
    elif result.validation_error:
        _echo_err(f"validation could not run: {result.validation_error}")


@main.command()
@click.argument("sdtm", type=click.Path(file_okay=False))
@click.option("--spec", "spec", default=None, type=click.Path(file_okay=False),
              help="Folder of ADaM spec files (*.yaml); default: the bundled study's.")
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output folder; datasets go to OUT/adam/, provenance under \"adam\" in OUT/run.json.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summary and errors.")
@ALLOW_INVALID
def derive(sdtm, spec, out, quiet, allow_invalid):
    """Derive ADaM datasets from the SDTM datasets in folder SDTM (XPT, CSV or parquet).

    Every spec is checked against the SDTM variables before any derivation runs. The datasets are
    validated before they are published, into OUT/adam-validation.html and .json, with
    OUT/summary.html when there are ADSL and ADEFF; all of it is published in one step, or nothing.
    """
    from .adam.derive import derive as run_derive

    t0 = time.perf_counter()
    try:
        result = run_derive(sdtm, out, spec_folder=spec, progress=_progress(quiet),
                            command=["sdtm-ra", *sys.argv[1:]], reports=True, allow_invalid=allow_invalid,
                            notify=_notice)
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
    _report_validation(result, "the derivation")
    if result.summary is not None:
        click.echo(f"summary: {result.summary}")


@main.command()
@click.argument("study", required=False, type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output folder: OUT/sdtm/, OUT/adam/, run.json, validation reports, summary.html.")
@click.option("--spec", "spec", default=None, type=click.Path(file_okay=False),
              help="ADaM spec folder; default: STUDY/adam/, or the bundled study's specs.")
@click.option("--quiet", is_flag=True, help="No progress lines, only the summaries and errors.")
@ALLOW_INVALID
def run(study, out, spec, quiet, allow_invalid):
    """The whole pipeline: convert STUDY to SDTM, derive ADaM, validate both, write OUT/summary.html.

    Without STUDY, the bundled example study. Everything is published together, in one step, once all
    of it has succeeded: a failed conversion, derivation or validation (an error-level finding,
    unless --allow-invalid) publishes nothing and exits 1.
    """
    from .adam.derive import bundled_adam_specs, derive as run_derive
    from .sdtm.convert import ADAM_OUTPUTS, checked_mappings, conversion_sources, convert as run_convert, open_study
    from .io.inputs import check_output, conversion_inputs
    from .io.publish import OutputFolder, write_failure

    t0 = time.perf_counter()
    progress = _progress(quiet)
    command = ["sdtm-ra", *sys.argv[1:]]
    dest = OutputFolder(out, command, _notice)
    try:
        the_study = open_study(study)
        mappings = checked_mappings(the_study)
        if spec is None and study is not None:
            spec = Path(study) / "adam"
            spec = spec if spec.is_dir() else None
            if spec is None:
                click.echo(f"no ADaM specs in {Path(study) / 'adam'}: ADaM skipped (give --spec)")
        elif spec is None:
            spec = bundled_adam_specs()
        sources = conversion_sources(the_study, conversion_inputs(the_study, mappings))
        sources += [("ADaM specs folder", Path(spec))] if spec else []
        check_output(out, sources)          # before OUT is touched
        with dest:
            conv = run_convert(the_study, out, progress=progress, command=command, validate=True,
                               allow_invalid=allow_invalid, output=dest, mappings=mappings)
            result = None
            if spec is not None:
                result = run_derive(dest.staged("sdtm"), out, spec_folder=spec, progress=progress,
                                    command=command, reports=True, allow_invalid=allow_invalid,
                                    output=dest, sdtm_display=Path(out) / "sdtm")
                conv.run["adam"] = result.record
            else:
                for name in ADAM_OUTPUTS:
                    dest.remove(name)
            dest.stage_json("run.json", conv.run)
            dest.commit()
    except OSError as exc:
        _fail(write_failure(Path(out), exc, dest), "run", out)
    except ConversionError as exc:
        _fail(exc, "run", out)
    click.echo(f"SDTM: {len(conv.outputs)} datasets in {out}/sdtm")
    _report_validation(conv, "the conversion")
    if result is not None:
        _report_derived(result, out, t0)
    click.echo(f"published in {out} in {time.perf_counter() - t0:.1f}s")


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
    from .standards.specs import load_adamig, load_sdtmig
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
    from .io.signals import checkpoint
    checkpoint("validate:rules")
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
