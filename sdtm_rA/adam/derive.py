"""SDTM datasets + ADaM specs → ADaM datasets (XPT v5) in OUT/adam/, with provenance in OUT/run.json.

Every spec is checked against the variables of the SDTM folder before the first derivation runs;
datasets are then derived in dependency order (ADSL first). Nothing is written until all of them are
built and pass the XPT checks; OUT/adam/ is then replaced in one move, so a failed run leaves the
earlier outputs as they were.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..io import xpt
from ..errors import ConversionError, Issue, Issues
from .spec import AdamSpec, check_spec, load_spec_folder
from .steps import StepError, args_with_defaults, keep_map, run_step
from .where import columns_of, evaluate
from ..validation.data import read_problem

SAS_EPOCH = pd.Timestamp("1960-01-01")
READABLE = (".xpt", ".csv", ".parquet")


@dataclass
class DeriveResult:
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    specs: dict[str, AdamSpec] = field(default_factory=dict)
    issues: Issues = field(default_factory=Issues)
    outputs: dict[str, dict] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    record: dict = field(default_factory=dict)           # the "adam" part of run.json
    validation: object = None
    validation_reports: list = field(default_factory=list)
    validation_error: str = ""
    summary: Path | None = None


class _Context:
    """What a step may read: the SDTM domains and the ADaM datasets derived so far."""

    def __init__(self, sdtm: dict, adam: dict):
        self.sdtm, self.adam = sdtm, adam
        self._masks: dict = {}

    def dataset(self, name: str) -> pd.DataFrame:
        if name in self.adam:
            return self.adam[name]
        return self.sdtm[name]

    def mask(self, name: str, where) -> pd.Series:
        """`where` evaluated on an SDTM dataset, once (ADaM datasets change while derived: not cached)."""
        if name in self.adam:
            return evaluate(where, self.adam[name])
        key = (name, json.dumps(where, sort_keys=True, default=str))
        if key not in self._masks:
            self._masks[key] = evaluate(where, self.sdtm[name])
        return self._masks[key]

    def estimated_records(self, sp: AdamSpec) -> int:
        """The records of `sp` made one per SDTM record (records, parameter; grouped parameters
        are far fewer than what they read): the datasets with the most are derived first, so that
        their XPT files, the longest to write, are written while the others are derived."""
        total = 0
        for s in sp.steps:
            a = args_with_defaults(s.step, s.args)
            if s.step.per_source_record and a.get("dataset") in self.sdtm:
                m = self.mask(a["dataset"], a.get("where")) if a.get("where") else None
                total += int(m.sum()) if m is not None else len(self.sdtm[a["dataset"]])
        return total


def bundled_adam_specs() -> Path:
    """The ADaM specs of the bundled study: `specs/adam/ramsc01/` in a checkout, `sdtm_rA/_specs/...`
    once installed."""
    from ..standards.specs import specs_dir
    return specs_dir() / "adam" / "ramsc01"


@functools.lru_cache(maxsize=None)
def sdtm_types() -> dict[str, str]:
    """SDTMIG 3.4 type (Char/Num) of every variable name: a variable keeps its type in ADaM."""
    from ..standards.specs import load_sdtmig
    ig = load_sdtmig("3.4")
    types: dict[str, str] = {}
    for name in ig.names:
        for v in ig.dataset(name).variables:
            types.setdefault(v.name, v.type)
    return types


def _numbers_where_sdtm_has_them(df: pd.DataFrame) -> pd.DataFrame:
    """A CSV has only text: columns the SDTMIG types Num become numbers ('' -> missing)."""
    types = sdtm_types()
    for col in df.columns:
        if types.get(col) == "Num" and not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.to_numeric(df[col].astype(object).where(df[col].astype(str).str.strip() != ""),
                                    errors="coerce")
    return df


def _sdtm_files(folder: Path) -> list[Path]:
    from ..validation.data import ValidationInputError, dataset_files
    folder = Path(folder)
    if not folder.is_dir():
        raise ConversionError([Issue("error", "SDTM folder not found", file=str(folder))])
    try:
        files = dataset_files(folder)
    except ValidationInputError as exc:   # a folder named ae.xpt, a broken link: never skipped
        raise ConversionError([Issue("error", str(exc), file=str(folder))])
    if not files:
        raise ConversionError([Issue("error", "no SDTM datasets (.xpt, .csv, .parquet)", file=str(folder))])
    return files


def sdtm_columns(folder: Path) -> dict[str, list[str]]:
    """The variables of every SDTM dataset of `folder`, from the file headers only."""
    out, problems = {}, []
    for path in _sdtm_files(folder):
        try:
            if path.suffix.lower() == ".xpt":
                names = xpt.xpt_column_names(path)
            elif path.suffix.lower() == ".csv":
                names = list(pd.read_csv(path, nrows=0).columns)
            else:
                import pyarrow.parquet as pq
                names = list(pq.read_schema(path).names)
        except Exception as exc:  # noqa: BLE001 - any unreadable input is reported with its file
            problems.append(Issue("error", f"cannot be read: {read_problem(path, exc)}", file=str(path)))
            continue
        out[path.stem.upper()] = names
    if problems:
        raise ConversionError(problems)
    return out


#: Steps whose arguments name every SDTM variable they read, plus these fixed ones; any other step
#: reading an SDTM dataset gets all its variables.
_SOURCE_COLUMNS = {"records": (), "merge": (), "exists_flag": (), "parameter": (), "parameter_count": (),
                   "parameter_haq_di": ("QSTESTCD", "QSSTRESN", "QSSTRESC", "QSORRES"),
                   "treatment_dates": ("EXSTDTC", "EXENDTC", "EXSEQ", "EXTRT")}


def needed_sdtm_columns(specs: list[AdamSpec], sdtm: set[str]) -> dict[str, set | None]:
    """The SDTM variables the specs read, per dataset (None: all): a million-row domain is then read
    for its few needed columns only."""
    need: dict[str, set | None] = {}

    def add(name, cols):
        if name in sdtm and need.get(name, set()) is not None:
            need.setdefault(name, set()).update(cols)

    for sp in specs:
        for s in sp.steps + sp.later_steps:
            a = args_with_defaults(s.step, s.args)
            for src in a.get("sources") or []:     # last_date
                if isinstance(src, dict) and src.get("dataset"):
                    add(src["dataset"], {src.get("dtc") or src.get("date"), *columns_of(src.get("where") or {}),
                                         *(a.get("by") or []), "STUDYID", "USUBJID"})
            name = a.get("dataset")
            if name not in sdtm:
                continue
            if s.step.name not in _SOURCE_COLUMNS or (s.step.name == "records" and not a.get("keep")):
                need[name] = None
                continue
            cols = {"STUDYID", "USUBJID", f"{name}SEQ", f"{name[:2]}SEQ", *_SOURCE_COLUMNS[s.step.name]}
            for arg_name, arg in s.step.args.items():
                v = a.get(arg_name)
                if not v:
                    continue
                if arg.kind == "source_var" or (arg.kind == "vars" and arg_name == "by"):
                    cols |= {v} if isinstance(v, str) else set(v)
                elif arg.kind == "source_vars":
                    cols |= set(v)
                elif arg.kind == "keep":
                    cols |= set(keep_map(v).values())
                elif arg.kind == "source_where":
                    cols |= set(columns_of(v))
            add(name, cols)
    return need


def read_sdtm_folder(folder: Path, columns: dict[str, set | None] | None = None) -> dict[str, pd.DataFrame]:
    """The SDTM datasets of `folder`; with `columns`, only the datasets named there, each with the
    variables listed (None: all of them)."""
    from ..validation.data import read_one
    data = {}
    problems = []
    for path in _sdtm_files(folder):
        name = path.stem.upper()
        if columns is not None and name not in columns:
            continue
        wanted = None if columns is None else columns[name]
        try:
            if wanted is not None and path.suffix.lower() == ".xpt":
                df, _ = xpt.read_xpt_fast(path, columns=wanted)
            else:
                df, _ = read_one(path)
                if wanted is not None:
                    df = df[[c for c in df.columns if c in wanted]]
        except Exception as exc:  # noqa: BLE001 - any unreadable input is reported with its file
            problems.append(Issue("error", f"cannot be read: {read_problem(path, exc)}", file=str(path)))
            continue
        data[path.stem.upper()] = _numbers_where_sdtm_has_them(df) if path.suffix.lower() == ".csv" else df
    if problems:
        raise ConversionError(problems)
    return data


def derive_datasets(sdtm: dict[str, pd.DataFrame], specs: list[AdamSpec], progress=None,
                    on_finished=None, known: dict[str, list] | None = None) -> DeriveResult:
    """Check every spec, then derive the datasets in memory; `on_finished(spec, dataset)` is called
    as each one is complete (derive writes it then, while the next is derived)."""
    progress = progress or (lambda msg: None)
    result = DeriveResult()
    # the variables the specs may name: all those of the input files, even when only some were read
    known = {name: set(cols) for name, cols in (known or {n: df.columns for n, df in sdtm.items()}).items()}
    issues: list[Issue] = []
    for sp in specs:
        issues += check_spec(sp, known)
        # what the datasets derived after this one may read (before its later steps: what exists then)
        known[sp.dataset] = set(sp.variables) & set(sp.created) if sp.later_steps else set(sp.variables)
    for sp in specs:
        if sp.later_steps:
            missing = sp.reads_later() - set(known)
            if missing:
                issues.append(Issue("error", f"later_steps read {', '.join(sorted(missing))}, which is "
                                    "neither in the input nor specified", file=sp.file, domain=sp.dataset))
            else:
                issues += check_spec(sp, known, later=True)
    if issues:
        raise ConversionError(issues)
    ctx = _Context(sdtm, result.datasets)
    pending: dict[str, tuple] = {}       # datasets waiting for their later steps
    for sp in _schedule(specs, ctx, set(sdtm)):
        t0 = time.perf_counter()
        df = _run_steps(sp, sp.steps, None, ctx, result)
        if sp.later_steps:
            pending[sp.dataset] = (sp, df, t0)
            result.datasets[sp.dataset] = df      # the others read it as it is now
        else:
            _finished(result, sp, df, t0, progress, on_finished)
        _complete_pending(pending, result, ctx, set(sdtm), progress, on_finished)
    if pending:  # datasets whose later steps wait for each other: never write them half-derived
        raise ConversionError([Issue("error", f"later_steps read {', '.join(sorted(psp.reads_later()))}, "
                                     "which wait(s) for this dataset's own later steps (a loop)",
                                     file=psp.file, line=psp.line("later_steps"), domain=name)
                               for name, (psp, _, _) in pending.items()])
    return result


def _complete_pending(pending: dict, result: DeriveResult, ctx, sdtm_names: set, progress, on_finished):
    """Run the later steps of every dataset whose inputs are now complete, until none is left ready
    (completing one may make another ready)."""
    progressed = True
    while progressed:
        progressed = False
        for name, (psp, pdf, pt0) in list(pending.items()):
            if psp.reads_later() <= set(result.specs) | sdtm_names:
                del pending[name]
                _finished(result, psp, _run_steps(psp, psp.later_steps, pdf, ctx, result), pt0, progress,
                          on_finished)
                progressed = True


def _schedule(specs: list[AdamSpec], ctx: _Context, available: set[str]):
    """Specs in an order where each comes after the datasets it reads; among those ready, the
    largest first (see `_Context.estimated_records`). The order changes no value, only the time."""
    todo = list(specs)
    done = set(available)
    size = {sp.dataset: ctx.estimated_records(sp) for sp in specs}
    while todo:
        ready = [sp for sp in todo if sp.reads() - {sp.dataset} <= done] or todo[:1]
        nxt = max(ready, key=lambda sp: (sp.dataset == "ADSL", size[sp.dataset], -todo.index(sp)))
        todo.remove(nxt)
        done.add(nxt.dataset)
        yield nxt


def _run_steps(sp: AdamSpec, steps, df, ctx, result) -> pd.DataFrame:
    for s in steps:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = run_step(s.step, df, s.args, ctx)
            except (StepError, ValueError, KeyError, TypeError) as exc:
                at = getattr(exc, "at", ())
                line = (sp.line(s.section, s.index, *at) if at else None) or s.line
                raise ConversionError([Issue("error", f"{s.where()}: {exc}", file=sp.file, line=line,
                                             domain=sp.dataset)]) from exc
        for w in caught:
            result.issues.warning(f"{s.where()}: {w.message}", file=sp.file, line=s.line, domain=sp.dataset)
    return df


def _finished(result: DeriveResult, sp: AdamSpec, df: pd.DataFrame, t0: float, progress, on_finished) -> None:
    result.datasets[sp.dataset] = finish_dataset(df, sp)
    result.specs[sp.dataset] = sp
    progress(f"  {sp.dataset:<8} {len(df):>8} records  ({time.perf_counter() - t0:.1f}s)")
    if on_finished is not None:
        on_finished(sp, result.datasets[sp.dataset])


def _sas_number(s: pd.Series, fmt: str | None) -> pd.Series:
    """datetime64 → the SAS number its display format reads: seconds since 1960 for DATETIME,
    seconds since midnight for TIME, else whole days since 1960 (a time of day is dropped, never
    rounded up to the next day)."""
    seconds = (s - SAS_EPOCH).dt.total_seconds()
    if fmt and fmt.startswith("DATETIME"):
        return seconds
    if fmt and fmt.startswith("TIME"):
        return (s - s.dt.normalize()).dt.total_seconds()
    return np.floor(seconds / 86400.0)


def finish_dataset(df: pd.DataFrame, sp: AdamSpec) -> pd.DataFrame:
    """The spec's variables in its order, ADaM types, sorted by the keys (which must be unique)."""
    out = pd.DataFrame(index=df.index)
    for name, meta in sp.variables.items():
        s = df[name]
        if meta.type is None:
            meta.type = sdtm_types().get(name)       # an SDTM variable carried over (AESEQ, VISITNUM)
        if pd.api.types.is_datetime64_any_dtype(s):
            out[name] = s            # kept as dates for the datasets that read this one; see xpt_frame
            meta.type = "Num"
            if not meta.format:
                timed = name.endswith("DTM") or bool((s.dropna() != s.dropna().dt.normalize()).any())
                meta.format = "DATETIME20." if timed else "DATE9."
            continue
        if isinstance(s.dtype, pd.BooleanDtype) or pd.api.types.is_bool_dtype(s):
            s = s.map({True: "Y", False: "N"})
        if meta.type == "Num" or (meta.type is None and pd.api.types.is_numeric_dtype(s)):
            if pd.api.types.is_numeric_dtype(s):
                num, bad = s.astype("float64"), pd.Series(False, index=s.index)
            else:
                num = pd.to_numeric(s, errors="coerce").astype("float64")
                bad = s.notna() & num.isna() & (as_text(s).str.strip() != "")
            if bad.any():
                vals = sorted(set(s[bad].astype(str)))[:5]
                raise ConversionError([Issue("error", f"{name} is numeric but has text values {vals}",
                                             file=sp.file, line=sp.line("variables", name), domain=sp.dataset)])
            s, meta.type = num, "Num"
        else:
            s, meta.type = as_text(s), "Char"
        out[name] = s
    out = out.sort_values(sp.keys, kind="mergesort", na_position="last").reset_index(drop=True)
    dup = out.duplicated(sp.keys, keep=False)
    if dup.any():
        sample = out.loc[dup, sp.keys].drop_duplicates().head(5).to_dict("records")
        raise ConversionError([Issue("error", f"keys {sp.keys} are not unique: {dup.sum()} records share "
                                     f"their key, e.g. {sample}", file=sp.file, line=sp.line("keys"),
                                     domain=sp.dataset)])
    return out


def xpt_frame(df: pd.DataFrame, sp: AdamSpec) -> pd.DataFrame:
    """Dates and datetimes as SAS numbers for the XPT file, by each variable's format."""
    out = df.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = _sas_number(out[name], sp.variables[name].format)
    return out


def as_text(s: pd.Series) -> pd.Series:
    """Character values with '' for missing; only values that are not already text are converted
    (1.0 -> '1'), so a million-row text column costs one vectorised fillna."""
    if pd.api.types.is_string_dtype(s) and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.fillna("")
    s = s.astype(object)
    out = s.where(s.notna(), "")
    other = out.map(type) != str
    if other.any():
        out[other] = out[other].map(_text)
    return out


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _xpt_variables(sp: AdamSpec) -> dict:
    return {n: xpt.XptVariable(name=n, label=m.label, type=m.type, length=m.length, format=m.format)
            for n, m in sp.variables.items()}


#: what derive publishes besides OUT/adam/: the ADaM validation reports and the summary page
ADAM_REPORTS = ("adam-validation.html", "adam-validation.json")
SUMMARY = "summary.html"


def derive(sdtm_folder, out, *, spec_folder=None, progress=None, command=None, xpt_timestamp=None,
           reports: bool = False, allow_invalid: bool = False, output=None,
           sdtm_display=None, notify=None) -> DeriveResult:
    """Derive the ADaM datasets of `spec_folder` (the bundled study's when None) from `sdtm_folder`
    into OUT/adam/, and record inputs and outputs under "adam" in OUT/run.json.

    With `reports` (what `sdtm-ra derive` and `run` do), the datasets are validated before they are
    published, into OUT/adam-validation.html/.json (error-level findings refuse the run unless
    `allow_invalid`), and OUT/summary.html is written when there are ADSL and ADEFF; without, such
    files of an earlier run are removed (they would describe other data). With `output` (an open
    OutputFolder, as `run` passes), everything is staged there and published by the caller.
    `notify(text)` is told what was done about an earlier run that was interrupted in OUT.
    """
    from ..io.inputs import check_output
    from ..io.publish import OutputFolder, write_failure
    from ..io.signals import checkpoint
    progress = progress or (lambda msg: None)
    spec_folder = Path(spec_folder) if spec_folder else bundled_adam_specs()
    snapshot = _inputs(Path(sdtm_folder), spec_folder)      # before anything is read
    specs = load_spec_folder(spec_folder)
    out = Path(out)
    own = output is None
    if own:
        check_output(out, [("SDTM folder", Path(sdtm_folder)), ("ADaM specs folder", spec_folder)],
                     own_sdtm=out / "sdtm")
    header = sdtm_columns(Path(sdtm_folder))
    if own:
        output = OutputFolder(out, command, notify)
    writer = xpt.BackgroundWriter()
    problems: list[Issue] = []
    try:
        if own:   # locked before the SDTM is read: a conversion into OUT cannot replace it meanwhile
            output.open()
        sdtm = read_sdtm_folder(Path(sdtm_folder), needed_sdtm_columns(specs, set(header)))
        progress(f"ADaM from {sdtm_display or sdtm_folder} with the specs of {spec_folder}")
        created = xpt.reproducible_timestamp(xpt_timestamp if xpt_timestamp is not None
                                             else _sdtm_timestamp(Path(sdtm_folder)))
        tmp = output.stage_folder("adam")

        def write(sp: AdamSpec, data: pd.DataFrame) -> None:
            # each dataset is checked and handed to a writer process as soon as it is final, while the
            # next one is derived; after the first problem nothing more is written (but all is checked)
            frame = xpt_frame(data, sp)
            variables = _xpt_variables(sp)
            checked = xpt.prepare_for_xpt(frame, sp.dataset, sp.label, variables)
            problems.extend(Issue("error", p, domain=sp.dataset, file=sp.file) for p in checked.problems)
            if not problems:
                writer.submit(sp.dataset, df=frame, path=tmp / f"{sp.dataset.lower()}.xpt", name=sp.dataset,
                              label=sp.label, variables=variables, created=created, prepared=checked)

        result = derive_datasets(sdtm, specs, progress, on_finished=write, known=header)
        if problems:
            raise ConversionError(problems)
        checkpoint("derive:built")
        for name, info in sorted(writer.finish().items()):
            result.outputs[f"adam/{name.lower()}.xpt"] = {"rows": info["rows"], "sha256": info["sha256"]}
        result.inputs, locations = snapshot.hashes()
        result.record = {"tool": "sdtm_rA", "version": __version__,
                         "command": command if command is not None else sys.argv,
                         "xpt_timestamp": created.isoformat(),
                         "sdtm_folder": os.path.abspath(sdtm_display or sdtm_folder),
                         "spec_folder": os.path.abspath(spec_folder), "inputs": result.inputs,
                         **({"input_locations": locations} if locations else {}),
                         "outputs": result.outputs,
                         "warnings": [i.as_dict() for i in result.issues.items if i.severity == "warning"]}
        _reports(result, output, out, reports, allow_invalid, progress)
        if own:
            run = _published_run_json(out / "run.json")
            run["adam"] = result.record
            output.stage_json("run.json", run)
            output.commit()
    except (OSError, xpt.XptError) as exc:
        raise write_failure(out, exc, output)
    finally:
        writer.close()
        if own:
            output.close()
    return result


def _reports(result: DeriveResult, output, out: Path, reports: bool, allow_invalid: bool, progress) -> None:
    """ADaM validation reports and the summary page, staged with the datasets (or the earlier ones
    removed). A validator that cannot run, or a summary that cannot be drawn, is a warning."""
    if not reports:
        for name in (*ADAM_REPORTS, SUMMARY):
            output.remove(name)
        return
    from ..validation.gate import validate_before_publishing
    res, result.validation_error = validate_before_publishing(
        output, "adam", out, ADAM_REPORTS, result.record, allow_invalid, "ADaM datasets")
    if res is None:
        result.issues.warning(f"ADaM validation could not run: {result.validation_error}")
    else:
        result.validation = res
        result.validation_reports = [out / name for name in ADAM_REPORTS]
    if {"ADSL", "ADEFF"} <= set(result.datasets):
        from .summary import write_summary
        adsl = result.datasets["ADSL"]
        try:
            write_summary(output.stage_file(SUMMARY), adsl, result.datasets["ADEFF"],
                          title=f"{adsl['STUDYID'].iloc[0] if len(adsl) else ''}: efficacy summary")
            result.summary = out / SUMMARY
            return
        except OSError:
            raise                         # the output cannot be written: the run fails (nothing published)
        except Exception as exc:  # noqa: BLE001 - a drawing problem must not lose the datasets
            output.discard(SUMMARY)
            result.issues.warning(f"summary.html could not be written: {type(exc).__name__}: {exc}")
    output.remove(SUMMARY)


def _published_run_json(path: Path) -> dict:
    """The run.json in OUT (what convert wrote), to which derive adds its "adam" part."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _sdtm_timestamp(folder: Path):
    """The creation date in the header of the SDTM XPT files: ADaM made from the same SDTM carry the
    same date, so two runs give identical bytes (None when there is no XPT input)."""
    for path in sorted(folder.glob("*.xpt")):
        with open(path, "rb") as fh:
            head = fh.read(160)
        stamp = xpt._header_datetime(head[80 + 64:160])
        if stamp is not None:
            return stamp
    return None


def _inputs(sdtm_folder: Path, spec_folder: Path):
    """What derive reads: every dataset file of the SDTM folder and every spec file, as a snapshot
    taken before they are read (hashed at the end; see inputs.InputSnapshot)."""
    from ..io.inputs import InputSnapshot
    files = {f"sdtm/{p.name}": p for p in _sdtm_files(sdtm_folder)}
    files.update({f"adam-specs/{p.name}": p for p in sorted(Path(spec_folder).glob("*.yaml"))})
    return InputSnapshot(files)