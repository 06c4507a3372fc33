"""raw files + study config + mappings → SDTM datasets (XPT v5) and run.json.

Nothing is written until every domain has been built and checked; then all files go to a temporary
folder beside the output and replace the previous output in one move, so a failed run leaves the
earlier outputs as they were.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..io import xpt
from .build import build_domain, check_mapping, prepare_domain
from .domain import raw_files
from ..io.sources import SLOW_SUFFIXES, Prefetch
from ..errors import ConversionError, Issue, Issues
from ..io.inputs import InputSnapshot, check_input_paths, check_output, conversion_inputs, external_roots
from ..io.publish import OutputFolder, write_failure
from ..io.signals import checkpoint
from .mapping import load_mapping
from ..io.yamlio import load_each
from ..standards.specs import load_ct, load_sdtmig
from .study import Study, bundled_study_folder, load_study
from .trial_summary import build_ts

FIRST = ("DM", "SV")  # reference dates and visit dates the other domains derive from


@dataclass
class ConversionResult:
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    issues: Issues = field(default_factory=Issues)
    outputs: dict[str, dict] = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    validation: object = None          # ValidationResult of OUT/sdtm, when validated
    validation_reports: list = field(default_factory=list)   # OUT/validation.html, .json
    validation_error: str = ""         # why validation could not run (the conversion still succeeded)
    mappings: list = field(default_factory=list)
    removed: list = field(default_factory=list)   # outputs of an earlier run removed as stale


def load_all_mappings(study: Study, ig, ct) -> list:
    """Every mapping of the study, checked; all problems of all files reported together."""
    mappings = load_each(study.mapping_dir, "mappings", load_mapping, "domain", "mapping",
                         checks=lambda m: check_mapping(m, ig, ct))
    first = [m for d in FIRST for m in mappings if m.domain == d]
    rest = sorted((m for m in mappings if m.domain not in FIRST), key=lambda m: m.domain)
    return first + rest


def needed_domains(mapping) -> set[str]:
    """Already-built domains a mapping reads (through derivations or `domain:` sources)."""
    from .derivations import REGISTRY
    needs = {src.domain for src in mapping.sources.values() if src.domain}
    for rule in mapping.rules:
        spec = rule.spec
        while isinstance(spec, dict):
            deriv = REGISTRY.get(spec.get("derive", ""))
            if deriv is not None:
                needs |= set(deriv.domains)
                if deriv.name == "subject_value":
                    needs.add(spec.get("domain", ""))
                if deriv.name == "study_day" and spec.get("reference"):
                    needs.add(spec["reference"].split(".")[0])
            spec = spec.get("else")
    return needs - {mapping.domain}


def build_study(study: Study, progress=None, on_built=None, mappings: list | None = None) -> ConversionResult:
    """Build every dataset in memory; `on_built(name, dataset)` is called as each one is complete
    (convert checks and writes it then, while the next domain is built). `mappings`: those of
    `checked_mappings(study)`, when already loaded."""
    progress = progress or (lambda msg: None)
    on_built = on_built or (lambda name, data: None)
    ig = load_sdtmig(study.sdtmig)
    ct = load_ct("sdtm", study.ct_version)
    result = ConversionResult()
    mappings = checked_mappings(study) if mappings is None else mappings
    result.mappings = mappings
    with Prefetch() as prefetch:
        return _build_all(study, mappings, ig, ct, result, prefetch, progress, on_built)


def _prefetch_workbooks(study: Study, mappings: list, prefetch: Prefetch) -> set[str]:
    """Start reading the workbooks of the domains that can wait (not DM/SV, read by no other
    domain); those domains are then checked and built last, once their workbooks have been read in
    the background while the others were read, checked and built."""
    needed = set().union(*(needed_domains(m) for m in mappings)) if mappings else set()
    deferred = set()
    for m in mappings:
        files = raw_files(m)
        slow = [f for f in files if Path(f[0]).suffix.lower() in SLOW_SUFFIXES]
        if not slow or m.domain in FIRST or m.domain in needed:
            continue
        if all(prefetch.start((study.folder / p).resolve(), d, **o) for p, d, o in slow):
            deferred.add(m.domain)
    return deferred


def _build_order(study, mappings, deferred: set[str], prefetch: Prefetch, built: dict):
    """The mappings in order, a deferred domain as soon as its workbooks are read (and the domains
    it reads are built): its XPT file, among the largest, is then written while the rest is built."""
    waiting = [m for m in mappings if m.domain in deferred]
    todo = [m for m in mappings if m.domain not in deferred]

    def ready(m) -> bool:
        return needed_domains(m) <= set(built) and all(
            prefetch.ready((study.folder / p).resolve(), o) for p, _, o in raw_files(m)
            if Path(p).suffix.lower() in SLOW_SUFFIXES)

    while todo or waiting:
        early = next((m for m in waiting if ready(m)), None)
        if early is not None or not todo:
            m = early or waiting[0]
            waiting.remove(m)
        else:
            m = todo.pop(0)
        yield m


def _build_all(study, mappings, ig, ct, result: ConversionResult, prefetch: Prefetch, progress,
               on_built) -> ConversionResult:
    # Every raw file read and every column reference checked before any domain is built, so that
    # one run reports the problems of all mappings (a deferred domain is checked just before it is
    # built, and its problems are reported in the same run).
    deferred = _prefetch_workbooks(study, mappings, prefetch)
    checkpoint("convert:reading")
    errors: list[Issue] = []
    contexts = {}
    for m in mappings:
        if m.domain in deferred:
            continue
        try:
            contexts[m.domain] = prepare_domain(m, study, ig, ct, result.datasets)
        except ConversionError as exc:
            errors.extend(exc.issues)
    if errors:
        raise ConversionError(errors)
    later = f"; {', '.join(sorted(deferred))}: workbooks read in the background" if deferred else ""
    progress(f"  read and checked {len(mappings) - len(deferred)} mappings and their raw files{later}")
    failed: set[str] = set()
    # messages kept per domain and reported in mapping order, whatever order the domains were built in
    per_domain = {m.domain: Issues() for m in mappings}
    errors_of: dict[str, list] = {}
    for m in _build_order(study, mappings, deferred, prefetch, result.datasets):
        t0 = time.perf_counter()
        blocked = needed_domains(m) & failed
        if blocked:
            # Its own errors would only repeat those of the domains it derives from.
            progress(f"  {m.domain:<8} not built: needs {', '.join(sorted(blocked))}")
            failed.add(m.domain)
            continue
        try:
            ctx = contexts.pop(m.domain, None) or prepare_domain(m, study, ig, ct, result.datasets)
            data, supp = build_domain(m, study, ig, ct, result.datasets, per_domain[m.domain], ctx=ctx)
        except ConversionError as exc:
            errors_of[m.domain] = exc.issues
            failed.add(m.domain)
            progress(f"  {m.domain:<8} FAILED ({len(exc.issues)} error(s))")
            continue
        result.datasets[m.domain] = data
        extra = ""
        if supp is not None and len(supp):
            result.datasets[f"SUPP{m.domain}"] = supp
            extra = f", SUPP{m.domain} {len(supp)}"
        progress(f"  {m.domain:<8} {len(data):>8} records{extra}  ({time.perf_counter() - t0:.1f}s)")
        if not errors_of:   # after a failed domain the run fails: nothing more is worth writing
            on_built(m.domain, data)
            if extra:
                on_built(f"SUPP{m.domain}", supp)
    for m in mappings:
        result.issues.extend(per_domain[m.domain])
        errors.extend(errors_of.get(m.domain, []))
    if errors:
        raise ConversionError(errors)
    ts_issues = Issues()
    result.datasets["TS"] = build_ts(study, ct, result.datasets.get("DM"), ts_issues)
    result.issues.extend(ts_issues.items)
    ts_issues.raise_if_errors()
    progress(f"  {'TS':<8} {len(result.datasets['TS']):>8} records")
    on_built("TS", result.datasets["TS"])
    result.run["ig"] = ig
    return result


def _xpt_variables(name: str, data: pd.DataFrame, ig) -> tuple[str, dict]:
    spec = ig.dataset(name)
    variables = {}
    for col in data.columns:
        v = spec.model_variable(col)
        typ = "Num" if pd.api.types.is_numeric_dtype(data[col]) else "Char"
        variables[col] = xpt.XptVariable(name=col, label=v.label if v else col, type=typ)
    return spec.label, variables


#: what `derive`/`run` add to OUT: a conversion that replaces OUT/sdtm removes them (they were
#: derived from the SDTM it replaces); `run` publishes new ones in the same step.
ADAM_OUTPUTS = ("adam", "adam-validation.json", "adam-validation.html", "summary.html")
VALIDATION_REPORTS = ("validation.json", "validation.html")


def open_study(study_folder: str | Path | None) -> Study:
    """The study of a folder (its study.yaml checked), or the bundled example when None."""
    if study_folder is None:
        folder, mapping_dir = bundled_study_folder()
        return load_study(folder, mapping_dir)
    return load_study(Path(study_folder))


def conversion_sources(study: Study, files: dict[str, Path]) -> list[tuple[str, Path]]:
    """The folders and files a conversion reads (`files`: those of inputs.conversion_inputs); an
    output folder may hold none of them."""
    return [("study folder", study.folder), ("mappings folder", study.mapping_dir),
            *(("external input", p) for p in external_roots(study)),
            *(("input file", p) for p in files.values())]


def checked_mappings(study: Study) -> list:
    """Every mapping of the study, checked, with the files they read allowed by the path policy."""
    mappings = load_all_mappings(study, load_sdtmig(study.sdtmig), load_ct("sdtm", study.ct_version))
    check_input_paths(study, mappings)
    return mappings


def convert(study_folder: str | Path | None, out: str | Path, *, progress=None,
            command: list[str] | None = None, validate: bool = False, allow_invalid: bool = False,
            output: OutputFolder | None = None, notify=None, mappings: list | None = None) -> ConversionResult:
    """Convert a study (the bundled example when `study_folder` is None) into `out/sdtm/`.

    With `validate` (what `sdtm-ra convert` does unless --no-validate), the datasets are validated
    before they are published, into `out/validation.json` and `.html`; error-level findings refuse
    the run (nothing is published) unless `allow_invalid`. Off by default for library callers
    (tests, benchmarks) that only convert. With `output` (an open OutputFolder, as `run` passes),
    everything is staged there and published by the caller; otherwise OUT is locked, staged and
    published here, and ADaM outputs of an earlier run (derived from other SDTM) are removed.
    `notify(text)` is told what was done about an earlier run that was interrupted in OUT.
    `mappings`: those of `checked_mappings(study)`, when the caller has loaded them.
    """
    progress = progress or (lambda msg: None)
    study = study_folder if isinstance(study_folder, Study) else open_study(study_folder)
    progress(f"study {study.study_id}: {study.title}")
    ig = load_sdtmig(study.sdtmig)
    created = xpt.reproducible_timestamp(study.xpt_timestamp)
    out = Path(out)
    own = output is None
    if mappings is None:
        mappings = checked_mappings(study)
    files = conversion_inputs(study, mappings)
    if own:   # before OUT is touched: an output folder holding an input is refused
        check_output(out, conversion_sources(study, files))
        output = OutputFolder(out, command, notify)
    snapshot = InputSnapshot(files)
    writer = xpt.BackgroundWriter()
    problems: list[Issue] = []
    try:
        if own:
            output.open()
        tmp = output.stage_folder("sdtm")

        def write(name: str, data: pd.DataFrame) -> None:
            # Each dataset is checked against the XPT limits as soon as it is built and handed to a
            # writer process while the next domain is built; after the first problem nothing more is
            # written (every dataset is still checked, so that all problems are reported together).
            label, variables = _xpt_variables(name, data, ig)
            checked = xpt.prepare_for_xpt(data, name, label, variables)
            problems.extend(Issue("error", p, domain=name) for p in checked.problems)
            if not problems:
                writer.submit(name, df=data, path=tmp / f"{name.lower()}.xpt", name=name, label=label,
                              variables=variables, created=created, prepared=checked)

        result = build_study(study, progress, on_built=write, mappings=mappings)
        result.run.pop("ig")
        if problems:
            raise ConversionError(problems)
        checkpoint("convert:built")
        for name, info in sorted(writer.finish().items()):
            result.outputs[f"sdtm/{name.lower()}.xpt"] = {"rows": int(info["rows"]), "sha256": info["sha256"]}
        result.run = _run_record(study, result, command, created, snapshot)
        _validate_output(result, output, out, f"sdtmig-{study.sdtmig}" if study.sdtmig else None,
                         validate, allow_invalid, progress)
        if own:
            result.removed = [name for name in ADAM_OUTPUTS if output.remove(name)]
            output.stage_json("run.json", result.run)
            output.commit()
    except (OSError, xpt.XptError) as exc:
        raise write_failure(out, exc, output)
    finally:
        writer.close()
        if own:
            output.close()
    return result


def _validate_output(result: ConversionResult, output: OutputFolder, out: Path, standard, validate: bool,
                     allow_invalid: bool, progress) -> None:
    """Validate the staged OUT/sdtm/ into OUT/validation.json and .html, published with it; reports
    of an earlier run are removed when this run is not validated (they would describe other data)."""
    if not validate:
        for name in VALIDATION_REPORTS:
            output.remove(name)
        return
    t0 = time.perf_counter()
    from ..validation.gate import validate_before_publishing
    res, result.validation_error = validate_before_publishing(
        output, "sdtm", out, VALIDATION_REPORTS, result.run, allow_invalid, "SDTM datasets", standard=standard)
    if res is None:
        progress(f"  validation could not run: {result.validation_error}")
        return
    result.validation = res
    result.validation_reports = [out / name for name in reversed(VALIDATION_REPORTS)]  # HTML first
    progress(f"  validated {len(res.study.datasets)} datasets in {time.perf_counter() - t0:.1f}s")


def _run_record(study: Study, result: ConversionResult, command, created, snapshot: InputSnapshot) -> dict:
    """Provenance: every file the conversion read (and only those) with its SHA-256, wherever it lies
    (checked unchanged since the run started); where an input was reached through a link, the place
    its data really are."""
    inputs, locations = snapshot.hashes()
    record = {
        "tool": "sdtm_rA",
        "version": __version__,
        "command": command if command is not None else sys.argv,
        "study": study.study_id,
        "xpt_timestamp": created.isoformat(),
        "inputs": inputs,
    }
    if locations:
        record["input_locations"] = locations
    record.update({
        "outputs": result.outputs,
        "warnings": [i.as_dict() for i in result.issues.items if i.severity == "warning"],
        "notes": [i.as_dict() for i in result.issues.items if i.severity == "note"],
    })
    return record
