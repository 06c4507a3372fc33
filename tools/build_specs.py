#!/usr/bin/env python3
"""Generate the project's ``specs/`` from the CDISC / NCI EVS reference standards.

Usage::

    python tools/build_specs.py [--standards DIR] [--out DIR] [--ct-version YYYY-MM-DD]

Why this exists: the toolkit must know dataset/variable metadata (labels, types, order, core)
and the controlled terminology (CT) offline, in a small, diff-able form that it can ship inside
the package.  This script distils the read-only exports in ``<repo>/../shared/standards`` into
plain CSV files of *facts* only -- codes, submission values, labels, types, order, core, roles --
for the SDTMIG, the SDTM model version it implements (which variables a domain may add beyond
its IG table), the ADaMIG and the CT.
CDISC's prose (CDISC Notes, CDISC Definition, NCI Preferred Term) is deliberately dropped: it is
not needed by the toolkit and is not ours to redistribute.

The output is deterministic (rows sorted, UTF-8, ``\\n`` line endings, minimal CSV quoting, JSON
with sorted keys, no timestamps), so re-running on the same sources gives identical bytes and a
``git diff`` of ``specs/`` shows exactly what changed between two standard versions.

The CT version is discovered from the file names in ``<standards>/ct`` (``sdtm-ct-YYYY-MM-DD.tsv``
etc.); the newest is used unless ``--ct-version`` says otherwise, so adopting a newer CT package
is a single command.  Files recorded in a previous ``specs/manifest.json`` that this run does not
produce again (e.g. the CT of the previous version) are removed, so ``specs/`` always matches its
manifest.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STANDARDS = REPO.parent / "shared" / "standards"
DEFAULT_OUT = REPO / "specs"

DEFAULT_SDTMIG = "3.4"
DEFAULT_ADAMIG = "1.3"

# The SDTM model version each SDTMIG version implements (stated on the title page of each IG:
# SDTMIG v3.4 <-> SDTM v2.0, v3.3 <-> v1.7, v3.2 <-> v1.4, v3.1.3 <-> v1.3, v3.1.2 <-> v1.2).
# The model lists the variables a general-observation-class domain may use beyond its IG table.
SDTM_MODEL_FOR_SDTMIG = {"3.4": "2.0", "3.3": "1.7", "3.2": "1.4", "3.1.3": "1.3", "3.1.2": "1.2"}

# CT packages we know how to convert, in manifest order.  Only "sdtm" is mandatory.
CT_PACKAGES = ("sdtm", "adam", "define-xml")
CT_FILE_RE = re.compile(r"^(?P<package>[a-z][a-z-]*?)-ct-(?P<version>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|tsv)$")

SDTM_TYPES = {"Char", "Num"}
SDTM_CORES = {"Req", "Exp", "Perm"}
ADAM_CORES = {"Req", "Cond", "Perm"}
EXTENSIBLE = {"Yes": "Y", "No": "N"}

# Column headers of the generated files (the loader sdtm_rA/standards/specs.py reads these names).
SDTM_DATASET_COLS = ["dataset", "label", "class", "structure"]
SDTM_VARIABLE_COLS = [
    "dataset", "order", "variable", "label", "type", "codelists", "role", "core",
    "value_domain", "value_list",
]
SDTM_MODEL_DATASET_COLS = ["dataset", "label", "class", "structure"]
SDTM_MODEL_VARIABLE_COLS = [
    "class", "dataset", "order", "variable", "label", "type", "role", "value_domain",
    "usage_restrictions",
]
ADAM_STRUCTURE_COLS = ["structure", "label", "class", "subclass"]
ADAM_VARIABLE_COLS = [
    "structure", "order", "variable", "label", "type", "codelists", "variable_set", "core",
    "value_list",
]
CT_COLS = ["codelist_code", "codelist", "codelist_name", "extensible", "code", "value", "synonyms"]


class SourceError(Exception):
    """A reference file does not look the way this script expects."""


# --------------------------------------------------------------------------- reading


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(path: Path, required: list[str]) -> list[dict[str, str]]:
    """Read a CSV (or TSV) source into dicts with whitespace-trimmed values.

    ``utf-8-sig`` drops the byte-order mark some CDISC Library exports carry.  NCI EVS TSVs are
    not quoted (quote characters occur inside values), hence ``QUOTE_NONE`` for them.
    """
    if not path.is_file():
        raise SourceError(f"missing source file: {path}")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        if path.suffix == ".tsv":
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise SourceError(f"{path}:{lineno}: wrong number of fields")
            rows.append({k: v.strip() for k, v in row.items()})
    return rows


def split_list(value: str) -> list[str]:
    """Split CDISC's ``"a; b"`` lists; the generated files join them with a bare ``;``."""
    return [p.strip() for p in value.split(";") if p.strip()]


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise SourceError(msg)


# --------------------------------------------------------------------------- converters


def build_sdtmig(src_dir: Path, version: str) -> dict[str, tuple[list[str], list[list[str]], Path]]:
    ds_path, var_path = src_dir / "Datasets.csv", src_dir / "Variables.csv"
    datasets = read_table(ds_path, ["Version", "Class", "Dataset Name", "Dataset Label", "Structure"])
    variables = read_table(
        var_path,
        ["Version", "Variable Order", "Dataset Name", "Variable Name", "Variable Label", "Type",
         "CDISC CT Codelist Code(s)", "Role", "Core"],
    )
    want = f"SDTMIG v{version}"
    for path, rows in ((ds_path, datasets), (var_path, variables)):
        versions = {r["Version"] for r in rows}
        check(versions == {want}, f"{path}: expected Version {want!r}, found {sorted(versions)}")

    ds_rows, names = [], set()
    for r in datasets:
        name = r["Dataset Name"]
        check(name not in names, f"{ds_path}: duplicate dataset {name}")
        names.add(name)
        ds_rows.append([name, r["Dataset Label"], r["Class"], r["Structure"]])
    ds_rows.sort()

    var_rows, seen = [], set()
    for r in variables:
        ds, name = r["Dataset Name"], r["Variable Name"]
        where = f"{var_path}: {ds}.{name}"
        check(ds in names, f"{where}: dataset not in {ds_path.name}")
        check((ds, name) not in seen, f"{where}: duplicate variable")
        seen.add((ds, name))
        check(r["Variable Order"].isdigit(), f"{where}: bad Variable Order {r['Variable Order']!r}")
        check(r["Type"] in SDTM_TYPES, f"{where}: bad Type {r['Type']!r}")
        check(r["Core"] in SDTM_CORES, f"{where}: bad Core {r['Core']!r}")
        var_rows.append([
            ds, int(r["Variable Order"]), name, r["Variable Label"], r["Type"],
            ";".join(split_list(r["CDISC CT Codelist Code(s)"])), r["Role"], r["Core"],
            r.get("Described Value Domain(s)", ""), ";".join(split_list(r.get("Value List", ""))),
        ])
    var_rows.sort(key=lambda row: (row[0], row[1], row[2]))
    return {
        "datasets.csv": (SDTM_DATASET_COLS, ds_rows, ds_path),
        "variables.csv": (SDTM_VARIABLE_COLS, var_rows, var_path),
    }


def build_sdtm_model(src_dir: Path, version: str) -> dict[str, tuple[list[str], list[list[str]], Path]]:
    """The SDTM model: its datasets and its variables, per class or per dataset.

    ``Variables.csv`` holds class-level variables (``Dataset Name`` empty: the 'General
    Observations' identifiers and timing variables, and those of the Interventions, Events,
    Findings, Findings About and Associated Persons classes, written with ``--`` for the domain
    prefix) and dataset-level ones (DM, SV, TA, SUPPQUAL ...).  Kept: class, dataset, order,
    name, label, type, role, described value domain and the usage restriction ('Not in human
    clinical trials', 'EG Domain only' ...: which domains may use the variable).  Definitions,
    notes and examples are prose and dropped.  A literal ``\\n`` in a source value is read as
    a line break and, like any run of whitespace, folded to one space.
    """
    ds_path, var_path = src_dir / "Datasets.csv", src_dir / "Variables.csv"
    datasets = read_table(ds_path, ["Version", "Class", "Dataset Name", "Dataset Label", "Structure"])
    variables = read_table(
        var_path,
        ["Version", "Variable Order", "Class", "Dataset Name", "Variable Name", "Variable Label",
         "Type", "Described Value Domain", "Role", "Usage Restrictions"],
    )
    want = f"SDTM v{version}"
    for path, rows in ((ds_path, datasets), (var_path, variables)):
        versions = {r["Version"] for r in rows}
        check(versions == {want}, f"{path}: expected Version {want!r}, found {sorted(versions)}")

    def clean(text: str) -> str:
        return " ".join(text.replace("\\n", " ").split())

    ds_rows, ds_class = [], {}
    for r in datasets:
        name = r["Dataset Name"]
        check(name and name not in ds_class, f"{ds_path}: empty or duplicate dataset {name!r}")
        ds_class[name] = r["Class"]
        ds_rows.append([name, r["Dataset Label"], r["Class"], r["Structure"]])
    ds_rows.sort()

    var_rows, seen = [], set()
    for r in variables:
        cls, ds, name = r["Class"], r["Dataset Name"], r["Variable Name"]
        where = f"{var_path}: {cls}/{ds or '-'}.{name}"
        check(bool(cls) and bool(name), f"{where}: empty class or variable name")
        if ds:
            check(ds_class.get(ds) == cls,
                  f"{where}: dataset not in {ds_path.name} with class {cls!r}")
        check((cls, ds, name) not in seen, f"{where}: duplicate variable")
        seen.add((cls, ds, name))
        check(r["Variable Order"].isdigit(), f"{where}: bad Variable Order {r['Variable Order']!r}")
        check(r["Type"] in SDTM_TYPES, f"{where}: bad Type {r['Type']!r}")
        check(bool(r["Role"]), f"{where}: empty Role")
        var_rows.append([
            cls, ds, int(r["Variable Order"]), name, clean(r["Variable Label"]), r["Type"],
            r["Role"], clean(r["Described Value Domain"]), clean(r["Usage Restrictions"]),
        ])
    var_rows.sort(key=lambda row: (row[0], row[1], row[2], row[3]))
    return {
        "datasets.csv": (SDTM_MODEL_DATASET_COLS, ds_rows, ds_path),
        "variables.csv": (SDTM_MODEL_VARIABLE_COLS, var_rows, var_path),
    }


def build_adamig(src_dir: Path, version: str) -> dict[str, tuple[list[str], list[list[str]], Path]]:
    ds_path, var_path = src_dir / "DataStructures.csv", src_dir / "Variables.csv"
    structures = read_table(
        ds_path, ["Version", "Data Structure Name", "Data Structure Description", "Class", "Subclass"]
    )
    variables = read_table(
        var_path,
        ["Version", "Data Structure Name", "Variable Set", "Variable Name", "Variable Label", "Type",
         "CDISC CT Codelist Code(s)", "Core"],
    )
    want = f"ADaMIG v{version}"
    for path, rows in ((ds_path, structures), (var_path, variables)):
        versions = {r["Version"] for r in rows}
        check(versions == {want}, f"{path}: expected Version {want!r}, found {sorted(versions)}")

    # Variables.csv names a structure by its description ("Subject-Level Analysis Dataset",
    # "Basic Data Structure") while DataStructures.csv has both the short name (ADSL, BDS) and the
    # description ("Subject-Level Analysis Dataset Structure"): map description -> short name.
    st_rows, by_description = [], {}
    for r in structures:
        short, desc = r["Data Structure Name"], r["Data Structure Description"]
        st_rows.append([short, desc, r["Class"], r["Subclass"]])
        for key in (desc, desc.removesuffix(" Structure")):
            by_description.setdefault(key, short)
    st_rows.sort()

    var_rows, seen, order = [], set(), defaultdict(int)
    for r in variables:  # the export has no order column: the IG order is the row order
        long_name, name = r["Data Structure Name"], r["Variable Name"]
        short = by_description.get(long_name)
        where = f"{var_path}: {long_name}.{name}"
        check(short is not None, f"{where}: structure not found in {ds_path.name}")
        check((short, name) not in seen, f"{where}: duplicate variable")
        seen.add((short, name))
        check(r["Type"] in SDTM_TYPES, f"{where}: bad Type {r['Type']!r}")
        check(r["Core"] in ADAM_CORES, f"{where}: bad Core {r['Core']!r}")
        order[short] += 1
        var_rows.append([
            short, order[short], name, r["Variable Label"], r["Type"],
            ";".join(split_list(r["CDISC CT Codelist Code(s)"])), r["Variable Set"], r["Core"],
            ";".join(split_list(r.get("Value List Value", ""))),
        ])
    var_rows.sort(key=lambda row: (row[0], row[1], row[2]))
    return {
        "datastructures.csv": (ADAM_STRUCTURE_COLS, st_rows, ds_path),
        "variables.csv": (ADAM_VARIABLE_COLS, var_rows, var_path),
    }


def build_ct(path: Path) -> tuple[list[str], list[list[str]], Path]:
    """One output row per term; the codelist's attributes are repeated on each of its terms.

    A codelist without any term (none in the 2025-03-28 packages) still gets one row, with
    empty code/value/synonyms, so that no codelist is lost.
    """
    rows = read_table(
        path,
        ["Code", "Codelist Code", "Codelist Extensible (Yes/No)", "Codelist Name",
         "CDISC Submission Value", "CDISC Synonym(s)"],
    )
    codelists: dict[str, dict[str, str]] = {}
    for r in rows:
        if not r["Codelist Code"]:
            code = r["Code"]
            check(code not in codelists, f"{path}: duplicate codelist {code}")
            check(r["Codelist Extensible (Yes/No)"] in EXTENSIBLE,
                  f"{path}: codelist {code}: bad extensible flag {r['Codelist Extensible (Yes/No)']!r}")
            codelists[code] = r
    terms: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen = set()
    for r in rows:
        cl = r["Codelist Code"]
        if not cl:
            continue
        check(cl in codelists, f"{path}: term {r['Code']} refers to unknown codelist {cl}")
        check((cl, r["Code"]) not in seen, f"{path}: term {r['Code']} twice in codelist {cl}")
        seen.add((cl, r["Code"]))
        terms[cl].append(r)

    out = []
    for code, cl in codelists.items():
        head = [code, cl["CDISC Submission Value"], cl["Codelist Name"],
                EXTENSIBLE[cl["Codelist Extensible (Yes/No)"]]]
        if not terms[code]:
            out.append(head + ["", "", ""])
        for t in terms[code]:
            out.append(head + [t["Code"], t["CDISC Submission Value"], t["CDISC Synonym(s)"]])
    out.sort(key=lambda row: (row[1], row[0], row[5], row[4]))
    return CT_COLS, out, path


# --------------------------------------------------------------------------- writing


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def discover_ct(ct_dir: Path) -> dict[str, dict[str, Path]]:
    """``{version: {package: path}}`` for the CT files found in ``ct_dir``."""
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    if ct_dir.is_dir():
        for p in sorted(ct_dir.iterdir()):
            m = CT_FILE_RE.match(p.name)
            if m and m["package"] in CT_PACKAGES:
                found[m["version"]][m["package"]] = p
    return dict(found)


README = """\
# specs/ (generated -- do not edit by hand)

This directory holds the CDISC standards the toolkit works against, reduced to facts: SDTMIG v{sdtmig}
datasets and variables (`sdtmig-{sdtmig}/`: label, class, structure, variable order, label, type
Char/Num, codelist C-codes, role, core Req/Exp/Perm), the SDTM model v{sdtm} that SDTMIG
v{sdtmig} implements (`sdtm-{sdtm}/`: its datasets, and its variables per class -- `--` standing
for the domain prefix -- or per dataset: order, label, type, role, value domain, usage
restriction), ADaMIG v{adamig} data structures and variables (`adamig-{adamig}/`), and the NCI EVS Controlled Terminology package {ct} (`ct/`: one row per term
with its codelist's C-code, short name, name and extensibility, the term's C-code, submission value
and synonyms, for every codelist of the packages {ct_packages}). CDISC's prose (notes,
definitions, NCI preferred terms) is deliberately left out. `manifest.json` records, for every file, its source file, the
SHA-256 of that source and the row count. Read these files through `sdtm_rA.standards.specs`
(`load_sdtmig()`, `load_adamig()`, `load_ct()`); an installed package carries them as
`sdtm_rA._specs`.

Regenerate them from the reference exports (default `../shared/standards` next to the repository)
with `python tools/build_specs.py` (options: `--standards DIR`, `--out DIR`, `--ct-version
YYYY-MM-DD`; the newest CT package found is the default). The output is deterministic: running it
again on the same sources gives identical bytes, so `git diff specs/` shows exactly what a new
standard version changes.

One exception, never written or removed by the generator: `adam/<study>/*.yaml` are the authored ADaM
specs of the bundled study (see docs/adam-specs.md); edit those by hand.
"""


def build(standards: Path, out: Path, ct_version: str | None, sdtmig: str, adamig: str,
          sdtm: str | None = None) -> dict:
    standards, out = standards.resolve(), out.resolve()
    if not standards.is_dir():
        raise SourceError(f"standards directory not found: {standards}")

    available = discover_ct(standards / "ct")
    with_sdtm = sorted(v for v, pk in available.items() if "sdtm" in pk)
    if not with_sdtm:
        raise SourceError(f"no sdtm-ct-YYYY-MM-DD.tsv/.csv in {standards / 'ct'}")
    if ct_version is None:
        ct_version = with_sdtm[-1]
    elif ct_version not in with_sdtm:
        raise SourceError(f"CT version {ct_version} not found; available: {', '.join(with_sdtm)}")

    if sdtm is None:
        sdtm = SDTM_MODEL_FOR_SDTMIG.get(sdtmig)
        if sdtm is None:
            raise SourceError(f"which SDTM model version SDTMIG v{sdtmig} implements is not known; "
                              "give it with --sdtm-version")

    outputs: dict[str, tuple[list[str], list[list], Path]] = {}
    for name, spec in build_sdtmig(standards / f"sdtmig-{sdtmig}", sdtmig).items():
        outputs[f"sdtmig-{sdtmig}/{name}"] = spec
    for name, spec in build_sdtm_model(standards / f"sdtm-{sdtm}", sdtm).items():
        outputs[f"sdtm-{sdtm}/{name}"] = spec
    for name, spec in build_adamig(standards / f"adamig-{adamig}", adamig).items():
        outputs[f"adamig-{adamig}/{name}"] = spec
    packages = []
    for package in CT_PACKAGES:
        src = available[ct_version].get(package)
        if src is not None:
            outputs[f"ct/{package}-ct-{ct_version}.csv"] = build_ct(src)
            packages.append(package)

    manifest_path = out / "manifest.json"
    previous = []
    if manifest_path.is_file():
        try:
            previous = list(json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {}))
        except (ValueError, AttributeError):
            previous = []

    files = {}
    for rel, (header, rows, src) in sorted(outputs.items()):
        target = out / rel
        write_csv(target, header, rows)
        files[rel] = {
            "source": src.relative_to(standards).as_posix(),
            "source_sha256": sha256(src),
            "rows": len(rows),
            "sha256": sha256(target),
        }

    for rel in previous:  # drop what an earlier run wrote and this one did not
        stale = (out / rel).resolve()
        if rel not in files and stale.is_file() and out in stale.parents:
            stale.unlink()
            print(f"removed stale {rel}", file=sys.stderr)

    manifest = {
        "generator": "tools/build_specs.py",
        "versions": {"sdtmig": sdtmig, "adamig": adamig, "ct": ct_version},
        # kept out of "versions" (whose keys callers compare); the loader reads the pairing here
        "sdtm_model": {"version": sdtm, "sdtmig": sdtmig},
        "ct_packages": packages,
        "files": files,
    }
    write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text(out / "README.md", README.format(
        sdtmig=sdtmig, sdtm=sdtm, adamig=adamig, ct=ct_version, ct_packages=", ".join(packages)))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--standards", type=Path, default=DEFAULT_STANDARDS,
                    help=f"reference standards directory (default: {DEFAULT_STANDARDS})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    ap.add_argument("--ct-version", help="CT package date YYYY-MM-DD (default: newest found)")
    ap.add_argument("--sdtmig-version", default=DEFAULT_SDTMIG, help="SDTMIG version (default: %(default)s)")
    ap.add_argument("--adamig-version", default=DEFAULT_ADAMIG, help="ADaMIG version (default: %(default)s)")
    ap.add_argument("--sdtm-version",
                    help="SDTM model version (default: the one the SDTMIG version implements, "
                         f"{', '.join(f'{k}->{v}' for k, v in SDTM_MODEL_FOR_SDTMIG.items())})")
    args = ap.parse_args(argv)
    try:
        manifest = build(args.standards, args.out, args.ct_version, args.sdtmig_version, args.adamig_version,
                         args.sdtm_version)
    except SourceError as exc:
        print(f"build_specs: error: {exc}", file=sys.stderr)
        return 1
    for rel, info in manifest["files"].items():
        print(f"{rel}: {info['rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
