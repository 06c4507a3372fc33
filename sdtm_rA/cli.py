"""The `sdtm-ra` command line."""
from __future__ import annotations

import sys
import time

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
def convert(study, out, quiet):
    """Convert STUDY (a folder with study.yaml, mappings/ and raw/) to SDTM.

    Without STUDY, the bundled example study (RAMSC01) is converted.
    """
    from .convert import convert as run_convert

    t0 = time.perf_counter()
    progress = (lambda m: None) if quiet else _echo_err
    try:
        result = run_convert(study, out, progress=progress, command=["sdtm-ra", *sys.argv[1:]])
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


if __name__ == "__main__":
    main()
