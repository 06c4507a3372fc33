"""What a run reads, where it may read it from, and where it may not write.

The path policy: a mapping's raw files (`file:`), synonym tables (`synonyms: terms/x.yaml`) and
codelist files (`synonyms: {file: raw/codelists.csv, ...}`) must
lie inside the study folder or the mappings folder, as written (a link inside the study, such as a
`raw/` that points to shared storage, is the user's own choice and is followed). A path outside them
(`../x.csv`, `/data/x.csv`) is refused unless `study.yaml` lists that place under `external_inputs:`.
Every file a run reads is hashed into run.json, wherever it lies; files it does not read are not.

An output folder must not hold any input: OUT may not be the study folder, nor a folder that
contains the study, its mappings, a declared external input or (for ADaM) the specs or the SDTM
folder read, except OUT/sdtm, the conversion's own output, which the ADaM derivation reads.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConversionError, Issue
from ..sdtm.schema import table_file
from .xpt import _sha256


def lexical(path: Path) -> Path:
    """An absolute path with '.' and '..' resolved as written (links are not followed)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def external_roots(study) -> list[Path]:
    """The places outside the study that `study.yaml` allows inputs from (`external_inputs:`)."""
    return [lexical(study.folder / p) for p in (study.doc or {}).get("external_inputs", []) or []]


def synonym_references(node, path=()):
    """(path of keys, file name, relative to the study folder?) of every `synonyms: <file>` (relative to
    the mapping file) and every `synonyms:`/`map: {file: ...}` codelist file (relative to the study
    folder) in a mapping document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "synonyms" and isinstance(value, str):
                yield (*path, key), value, False
            elif key in ("synonyms", "map") and table_file(value) and isinstance(value["file"], str):
                yield (*path, key, "file"), value["file"], True
            else:
                yield from synonym_references(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from synonym_references(value, (*path, i))


def mapping_inputs(study, mapping) -> list[tuple[Path, tuple, str]]:
    """(path as written, resolved against its base; YAML path; how it is named) of every file a
    mapping reads besides itself."""
    found = []
    for alias, src in mapping.sources.items():
        for i, f in enumerate(src.files):
            yaml_path = ("sources", alias, "files", i, "file") if "files" in mapping.doc["sources"][alias] \
                else ("sources", alias, "file")
            found.append((study.folder / f["file"], yaml_path, f["file"]))
    for yaml_path, name, in_study in synonym_references(mapping.doc):
        found.append(((study.folder if in_study else Path(mapping.path).parent) / name, yaml_path, name))
    return found


def check_input_paths(study, mappings) -> None:
    """Every raw file and synonym table inside the study, its mappings or a declared external place."""
    roots = [lexical(study.folder), lexical(study.mapping_dir), *external_roots(study)]
    issues = []
    for m in mappings:
        for path, yaml_path, name in mapping_inputs(study, m):
            where = lexical(path)
            if not any(_inside(where, r) for r in roots):
                issues.append(Issue(
                    "error", f"'{name}' is outside the study folder ({where}); list its folder under "
                    f"`external_inputs:` in study.yaml to read it from there", file=m.file,
                    line=m.line(*yaml_path), value=name))
            elif where.is_dir():
                issues.append(Issue("error", f"'{name}' is a folder, not a file", file=m.file,
                                    line=m.line(*yaml_path), value=name))
    if issues:
        raise ConversionError(issues)


def conversion_inputs(study, mappings) -> dict[str, Path]:
    """{label: path} of every file a conversion reads: study.yaml, the mappings, raw files, synonym
    tables. Labels are 'study/<path in the study>', 'mappings/<path>', else the absolute path."""
    study_root, map_root = lexical(study.folder), lexical(study.mapping_dir)

    def label(path: Path) -> str:
        where = lexical(path)
        if _inside(where, map_root):
            return f"mappings/{where.relative_to(map_root).as_posix()}"
        if _inside(where, study_root):
            return f"study/{where.relative_to(study_root).as_posix()}"
        return where.as_posix()

    files = {label(study.path or study.folder / "study.yaml"): study.path or study.folder / "study.yaml"}
    for path in sorted(Path(study.mapping_dir).glob("*.yaml")):
        files[label(path)] = path
    for m in mappings:
        for path, _, _ in mapping_inputs(study, m):
            files.setdefault(label(path), path)
    return dict(sorted(files.items()))


class InputSnapshot:
    """The size and modification time of every input, taken before the run reads them: run.json's
    hashes are computed at the end, and an input that changed in between (a sync job still writing
    into raw/) refuses the run, since its hash would describe other data than those converted."""

    def __init__(self, files: dict[str, Path]):
        self.files = dict(files)
        self.before = {name: _stat(path) for name, path in self.files.items()}

    def hashes(self) -> tuple[dict[str, str], dict[str, str]]:
        """(SHA-256 per input, real place of inputs reached through a link), once every input is
        checked to be what it was when the run started (also while it is being hashed)."""
        self._unchanged()
        result = hash_inputs(self.files)
        self._unchanged()
        return result

    def _unchanged(self) -> None:
        changed = [name for name, path in self.files.items() if _stat(path) != self.before[name]]
        if changed:
            raise ConversionError([Issue(
                "error", "changed while this run was reading it (its size or modification time is not what "
                "it was when the run started), so the outputs may mix two versions of it: nothing was "
                "published; run again once the file is complete", file=name) for name in changed])


def _stat(path: Path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return ("missing", exc.errno)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def hash_inputs(files: dict[str, Path]) -> tuple[dict[str, str], dict[str, str]]:
    """SHA-256 of each input; and, for those reached through a link, where the data really are."""
    hashes, locations = {}, {}
    for name, path in files.items():
        hashes[name] = _sha256(path)
        real = os.path.realpath(path)
        if real != str(lexical(path)):
            locations[name] = real
    return hashes, locations


def check_output(out, inputs, *, own_sdtm: Path | None = None, what: str = "output folder") -> None:
    """Refuse an output folder that is, or contains, one of `inputs` ((label, path) of files or
    folders). `own_sdtm` (OUT/sdtm read by derive) is exempt: derive never writes it. Paths are
    compared both as written and with links resolved."""
    outs = (lexical(out), Path(os.path.realpath(out)))
    exempt = set()
    if own_sdtm is not None:
        exempt = {lexical(own_sdtm), Path(os.path.realpath(own_sdtm))}
    for label, path in inputs:
        forms = (lexical(path), Path(os.path.realpath(path)))
        if exempt & set(forms):
            continue
        for cand in forms:
            for o in outs:
                if _inside(cand, o):
                    why = f"is the {label}" if cand == o else f"holds the {label} {path}"
                    raise ConversionError([Issue(
                        "error", f"the {what} {why}: outputs there would overwrite or mix with the inputs; "
                        "choose another --out", file=str(out))])
