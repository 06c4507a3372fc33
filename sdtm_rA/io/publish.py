"""Publishing outputs: everything a run writes into OUT appears there at once, or not at all.

A run holds a lock on OUT (a second run into the same folder is refused, never raced), builds its
files in a staging folder inside OUT, and publishes them in one short step guarded by a journal:

1. the journal (`OUT/.sdtm-ra-journal.json`) lists every output to replace or remove;
2. each previous output is moved aside, and its new version moved into place;
3. the journal is deleted: from that instant the new outputs are the published ones.

A run killed before step 3 leaves the journal behind; the next run that opens OUT (under the lock)
rolls those moves back, so OUT holds exactly what it held before the killed run, and says so. A run
killed before step 1 leaves only its staging folder, which the next run removes. Ctrl-C and SIGTERM
are held off during step 2 (a few renames) and take effect right after it.

An output that is a symbolic link (`OUT/sdtm` -> shared storage) stays a link: its target is replaced,
in the target's own folder.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import ConversionError, Issue
from .signals import HeldSignals, checkpoint

STAGE_PREFIX = ".sdtm-ra-stage-"
JOURNAL = ".sdtm-ra-journal.json"
LOCK_FILE = ".sdtm-ra.lock"       # only where a folder cannot be flock()ed
OWNER = "owner.json"
MANIFEST = "manifest.json"
#: the temporary names earlier versions left behind when killed (mkdtemp/mkstemp: 8 random characters)
LEGACY = re.compile(r"^(\.(sdtm|adam)-[a-z0-9_]{8}(-run\.json)?|\.(sdtm|adam)-old-\d+|"
                    r"\.(run\.json|validation\.(json|html)|adam-validation\.(json|html)|summary\.html)"
                    r"\.[a-z0-9_]{8}\.tmp)$")


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()     # read once, at import: changing it later would race with other threads


def publish_mode(path: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; what is published gets the permissions
    a plain mkdir/open would give (the user's umask), so colleagues sharing the study folder can read."""
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~_UMASK)


def write_atomically(path: Path, write) -> Path:
    """Call write(tmp_path) on a temporary file beside `path`, then move it over `path` at once, with
    the permissions a plain open would give; on any failure the temporary file is removed and an
    existing `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ----------------------------------------------------------------------------------- helpers
def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    """Remove a file, a link or a folder tree (a link is removed, never followed); what cannot be
    removed is left for the next run's clean-up."""
    try:
        if path.is_symlink() or not path.is_dir():
            if _exists(path):
                path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass


def _write_json(path: Path, data: dict) -> None:
    """A small JSON file written whole (temporary file, fsync, rename, fsync of the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def os_reason(exc: OSError) -> str:
    """'No space left on device', 'Permission denied': what the system said, without the errno."""
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


def output_error(out: Path, what: str, exc: OSError) -> ConversionError:
    where = f" ({exc.filename})" if getattr(exc, "filename", None) and str(exc.filename) != str(out) else ""
    return ConversionError([Issue("error", f"{what}: {os_reason(exc)}{where}", file=str(out))])


#: output folders published by this process (an interrupt right after a publication says so)
COMMITTED: list[str] = []


def write_failure(out: Path, exc: Exception, output: "OutputFolder | None" = None) -> ConversionError:
    """An output that could not be written, naming the file where the system says which, and the
    free space of OUT's device where the disk may be full (ENOSPC, or a writer that only says it
    failed); an OSError about a file outside the output (an input that vanished or cannot be read)
    is said to be about that file."""
    name = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and name and output is not None and not output.owns(Path(name)):
        return ConversionError([Issue("error", f"cannot read: {os_reason(exc)} (nothing was published)",
                                      file=str(name))])
    space = ""
    if not isinstance(exc, OSError) or exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            st = os.statvfs(out if Path(out).exists() else Path(out).parent)
            free = st.f_bavail * st.f_frsize
            space = f"; {free:,} bytes free on the output's device" + (" (the disk is full)" if free < (1 << 20) else "")
        except (OSError, AttributeError):
            pass
    if isinstance(exc, OSError):
        text = os_reason(exc)
        if name and output is not None:
            text += f" ({output.display(Path(name))})"
    else:
        text = " ".join(str(exc).split())
    return ConversionError([Issue("error", f"the outputs could not be written (nothing was published): "
                                  f"{text}{space}", file=str(out))])


class OutputBusy(ConversionError):
    """Another run holds the output folder."""



# ----------------------------------------------------------------------------------- the folder
class OutputFolder:
    """OUT for the length of one run: locked, recovered from interrupted runs, staged, published once.

        with OutputFolder(out, command) as dest:
            folder = dest.stage_folder("sdtm")        # write the new OUT/sdtm here
            path = dest.stage_file("run.json")        # write the new OUT/run.json here
            dest.remove("summary.html")               # an output that would now describe other data
            dest.commit()                             # all of it, in one step
    Leaving the block without commit() removes what was staged; OUT is as it was.

    Only what an earlier sdtm-ra run wrote is ever replaced or removed: an `OUT/adam` or
    `OUT/summary.html` in a folder without our run.json, or a file in `OUT/sdtm` that run.json does
    not list, refuses the run (`--out` pointed at the wrong place must not cost the user a file).
    """

    def __init__(self, out, command=None, notify=None):
        self.out = Path(out)                       # as the user wrote it, for messages
        self.root = _absolute(self.out)            # for every file operation (the cwd may change)
        self.command = list(command or [])
        self.notify = notify or (lambda msg: None)   # what recovery did, told at once (the run may fail)
        self.notes: list[str] = []
        self._fd: int | None = None
        self._made: list[Path] = []
        self._stage: Path | None = None
        self._entries: dict[str, dict] = {}
        self._external: list[str] = []
        self._journal_pending = False
        self._ours: set[str] | None = None         # outputs recorded in OUT/run.json (None: no run.json of ours)
        self._run_json_problem = ""
        self.committed = False

    # -- opening ---------------------------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self) -> "OutputFolder":
        out = self.out
        try:
            missing = []
            p = self.root
            while not p.exists() and not p.is_symlink() and p != p.parent:
                missing.append(p)
                p = p.parent
            self.root.mkdir(parents=True, exist_ok=True)
            self._made = list(reversed(missing))
        except FileExistsError as exc:
            raise output_error(out, "cannot create the output folder: a file of that name is in the way", exc)
        except NotADirectoryError as exc:
            raise output_error(out, "cannot create the output folder: a file is in its path", exc)
        except OSError as exc:
            raise output_error(out, "cannot create the output folder", exc)
        if not self.root.is_dir():
            raise ConversionError([Issue("error", "the output folder is a file, not a folder", file=str(out))])
        try:
            self._lock()
            self._recover()
            for note in self.notes:
                self.notify(note)
            self._read_run_json()
            self._stage = self.root / f"{STAGE_PREFIX}{os.getpid()}"
            self._stage.mkdir()
            _write_json(self._stage / OWNER, {"pid": os.getpid(), "command": self.command,
                                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
            checkpoint("locked")
        except OSError as exc:
            self.close()
            raise output_error(out, "cannot write to the output folder", exc)
        except BaseException:
            self.close()
            raise
        return self

    def _lock(self) -> None:
        """An exclusive flock on OUT itself (released by the system when the process ends, however it
        ends); where a filesystem cannot lock a folder (NFS), a POSIX lock on OUT/.sdtm-ra.lock."""
        try:
            import fcntl
        except ImportError:   # Windows: no flock; runs into one folder are not guarded there
            return
        try:
            self._fd = os.open(self.root, os.O_RDONLY)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            self._busy()
        except OSError:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        try:
            self._fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            self._busy()
        except OSError as exc:
            raise output_error(self.out, "cannot lock the output folder, so a second run into it could "
                               "mix its outputs with this one's", exc)

    def _busy(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        raise OutputBusy([Issue("error", f"another sdtm-ra run is writing to this output folder"
                                f"{self._owner_text()}; wait for it to end or choose another --out",
                                file=str(self.out))])

    def _owner_text(self) -> str:
        for stage in sorted(self.root.glob(f"{STAGE_PREFIX}*")):
            info = _read_json(stage / OWNER)
            if info:
                cmd = " ".join(info.get("command") or []) or "?"
                return f" (pid {info.get('pid')}, `{cmd}`, started {info.get('started')})"
        return ""

    # -- recovery --------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Undo what an interrupted run left (the lock is held: no other run is at work here)."""
        journal = self.root / JOURNAL
        unfinished = journal.with_name(JOURNAL + ".tmp")    # a journal never finished: nothing was moved
        if _exists(unfinished):
            _remove(unfinished)
            self.notes.append(f"removed {unfinished.name}, the unfinished journal of a run interrupted "
                              "before it moved any output")
        if _exists(journal):
            info = _read_json(journal)
            if info is None:
                raise ConversionError([Issue(
                    "error", f"{JOURNAL} (left by an interrupted run) cannot be read, so what it was "
                    "publishing cannot be undone with certainty: check the outputs in this folder, then "
                    "delete the file", file=str(self.out))])
            try:
                for entry in reversed(info.get("entries", [])):
                    _roll_back(entry, self.root)
            except OSError as exc:
                raise output_error(self.out, f"an interrupted run's publication could not be undone "
                                   f"(see {JOURNAL})", exc)
            journal.unlink()
            _fsync_dir(self.root)
            self.notes.append(f"an earlier run (pid {info.get('pid')}, `{' '.join(info.get('command') or [])}`) "
                              f"was interrupted while publishing its outputs: the outputs it was replacing "
                              f"were restored")
        leftovers = []
        for stage in sorted(self.root.glob(f"{STAGE_PREFIX}*")):
            manifest = _read_json(stage / MANIFEST) or {}
            for extra in manifest.get("external", []):
                _remove(Path(extra))
            _remove(stage)
            leftovers.append(stage.name)
        leftovers += self._legacy_leftovers()
        if leftovers:
            self.notes.append(f"removed the temporary files of an interrupted run: {', '.join(leftovers)}")

    def _legacy_leftovers(self) -> list[str]:
        """Temporary names of earlier versions, which published OUT/sdtm and then run.json:
        `.sdtm-old-PID` (the previous OUT/sdtm moved aside) is put back when OUT/sdtm is missing;
        a staged `.sdtm-XXXXXXXX-run.json` whose folder was already swapped in is the run.json that
        describes OUT/sdtm, and is put in place; every other one is removed."""
        found = []
        names = {p.name for p in self.root.iterdir()}
        for name in sorted(names):
            path = self.root / name
            if not LEGACY.match(name):
                continue
            if name.endswith("-run.json") and name[: -len("-run.json")] not in names:
                os.replace(path, self.root / "run.json")
                self.notes.append(f"put {name} in place as run.json: an interrupted run had published "
                                  "sdtm/ but not yet the run.json describing it")
                continue
            for final in ("sdtm", "adam"):
                if name.startswith(f".{final}-old-") and not _exists(self.root / final):
                    os.replace(path, self.root / final)
                    self.notes.append(f"restored {final}/ from {name}, where an interrupted run had moved it")
                    break
            else:
                _remove(path)
                found.append(name)
        return found

    # -- what is ours ----------------------------------------------------------------------------
    def _read_run_json(self) -> None:
        """The outputs earlier runs recorded in OUT/run.json: only those may be replaced or removed."""
        path = self.root / "run.json"
        if not _exists(path):
            return
        run = _read_json(path)
        if not isinstance(run, dict):
            self._run_json_problem = "its run.json cannot be read as JSON"
            return
        parts = [run, run.get("adam") if isinstance(run.get("adam"), dict) else {}]
        if not any(p.get("tool") == "sdtm_rA" for p in parts):
            self._run_json_problem = "its run.json was not written by sdtm-ra"
            return
        self._ours = {name for p in parts for name in (p.get("outputs") or {})}

    def _check_ours(self, name: str) -> None:
        """Refuse to replace or remove OUT/name unless an earlier sdtm-ra run wrote it."""
        final = self.root / name
        if not _exists(final):
            return
        if self._ours is None:
            why = self._run_json_problem or "the folder has no run.json of sdtm-ra"
            raise ConversionError([Issue("error", f"{name} is already in the output folder and no sdtm-ra run "
                                         f"wrote it ({why}): this run would replace or remove it; choose "
                                         "another --out, or move it away", file=str(self.out))])
        if final.is_dir():
            foreign = sorted(p.name for p in final.iterdir() if f"{name}/{p.name}" not in self._ours)
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" (+{len(foreign) - 5} more)" if len(foreign) > 5 else "")
                raise ConversionError([Issue(
                    "error", f"{name}/ holds files no sdtm-ra run wrote ({shown}); this run would replace "
                    f"the folder and lose them: move them away or choose another --out", file=str(self.out))])

    # -- staging ---------------------------------------------------------------------------------
    def _target(self, name: str) -> Path:
        """Where OUT/name really is: the target of a link, else OUT/name itself."""
        final = self.root / name
        return Path(os.path.realpath(final)) if final.is_symlink() else final

    def _staging_path(self, name: str) -> Path:
        self._check_ours(name)
        target = self._target(name)
        if target.parent == self.root:
            folder = self._stage / "new"
            folder.mkdir(exist_ok=True)
            return folder / name
        staged = target.parent / f".sdtm-ra-new-{os.getpid()}-{target.name}"
        self._note_external(staged)
        return staged

    def _note_external(self, path: Path) -> None:
        """Files made outside OUT (beside a link's target) are listed before they exist, so that
        recovery after a kill finds and removes them."""
        self._external.append(str(path))
        _write_json(self._stage / MANIFEST, {"external": self._external})

    def stage_folder(self, name: str) -> Path:
        """An empty folder whose content will become OUT/name."""
        path = self._staging_path(name)
        _remove(path)
        path.mkdir()
        self._entries[name] = {"name": name, "staged": str(path)}
        return path

    def stage_file(self, name: str) -> Path:
        """The path of a file that will become OUT/name (the caller writes it)."""
        path = self._staging_path(name)
        self._entries[name] = {"name": name, "staged": str(path)}
        return path

    def stage_json(self, name: str, data: dict) -> Path:
        """A JSON file (run.json) staged for publication with the outputs it describes."""
        path = self.stage_file(name)
        path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    def staged(self, name: str) -> Path | None:
        entry = self._entries.get(name)
        return Path(entry["staged"]) if entry and entry["staged"] else None

    def discard(self, name: str) -> None:
        """Forget what was staged for OUT/name (it will not be published)."""
        entry = self._entries.pop(name, None)
        if entry and entry["staged"]:
            _remove(Path(entry["staged"]))

    def remove(self, name: str) -> bool:
        """OUT/name is removed when the run is published (an output that would describe other data);
        False when there is nothing to remove. A linked folder is emptied, its link kept; a linked file
        loses its link (the file it points to, outside OUT, is not touched)."""
        final = self.root / name
        if not _exists(final) or name in self._entries:
            return False
        self._check_ours(name)
        if final.is_symlink() and final.is_dir():
            self.stage_folder(name)
        else:
            self._entries[name] = {"name": name, "staged": None, "link": final.is_symlink()}
        return True

    # -- publishing ------------------------------------------------------------------------------
    def commit(self) -> None:
        """Publish everything staged, and remove what was marked, in one journalled step: if any
        rename fails, those already done are undone before the error is raised."""
        entries = []
        for name, e in self._entries.items():
            target = self.root / name if e.get("link") else self._target(name)
            if e["staged"]:
                publish_mode(Path(e["staged"]))
            if target.parent == self.root:
                (self._stage / "old").mkdir(exist_ok=True)
                backup = self._stage / "old" / name
            else:
                backup = target.parent / f".sdtm-ra-old-{os.getpid()}-{target.name}"
                self._note_external(backup)
            entries.append({"target": self._journal_path(target), "backup": self._journal_path(backup),
                            "staged": self._journal_path(Path(e["staged"])) if e["staged"] else None,
                            "had_old": _exists(target)})
        journal = self.root / JOURNAL
        with HeldSignals():
            _write_json(journal, {"pid": os.getpid(), "command": self.command, "entries": entries})
            self._journal_pending = True
            checkpoint("commit:journal")
            try:
                for e in entries:
                    target = self._real_path(e["target"])
                    if e["had_old"]:
                        os.replace(target, self._real_path(e["backup"]))
                    checkpoint(f"commit:aside:{target.name}")
                    if e["staged"]:
                        os.replace(self._real_path(e["staged"]), target)
                checkpoint("commit:applied")
            except BaseException:
                for e in reversed(entries):
                    _roll_back(e, self.root)          # may raise: the journal then stays for the next run
                journal.unlink()
                self._journal_pending = False
                raise
            journal.unlink()
            self._journal_pending = False
            _fsync_dir(self.root)
            self.committed = True
            COMMITTED.append(str(self.out))
        checkpoint("commit:done")

    def display(self, path: Path) -> str:
        """A path of this run as the user knows it: OUT's entry it stands for (a staged, backup or
        journal name inside OUT is shown as the output it belongs to), else the path itself."""
        where = _absolute(path)
        for name, e in self._entries.items():
            if str(where) in (e.get("staged"), str(self._target(name))):
                return name
        try:
            rel = where.relative_to(self.root)
        except ValueError:
            return str(path)
        parts = rel.parts
        if parts and parts[0].startswith(STAGE_PREFIX) and len(parts) >= 3 and parts[1] in ("new", "old"):
            return "/".join(parts[2:])
        return rel.as_posix()

    def owns(self, path: Path) -> bool:
        """A path this run writes: inside OUT, or staged beside a linked output's target."""
        where = _absolute(path)
        return where == self.root or self.root in where.parents or str(where) in self._external

    def _journal_path(self, path: Path) -> str:
        """Inside OUT: relative to it (the journal stays right if OUT is reached by another path);
        outside (a link's target): absolute."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _real_path(self, text: str) -> Path:
        return _resolve_journal_path(text, self.root)

    def close(self) -> None:
        """Remove what was staged (and, after a commit, the previous outputs moved aside); release OUT.
        A publication that could not be undone keeps its journal and backups for the next run."""
        try:
            if not self._journal_pending:
                for extra in self._external:
                    _remove(Path(extra))
                if self._stage is not None:
                    _remove(self._stage)
            for folder in reversed(self._made):     # folders this run created and left empty
                try:
                    folder.rmdir()
                except OSError:
                    break
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def _resolve_journal_path(text: str, root: Path) -> Path:
    path = Path(text)
    return path if path.is_absolute() else root / path


def _roll_back(entry: dict, root: Path) -> None:
    """Undo one journalled move, whichever of its two renames had happened."""
    target, backup = _resolve_journal_path(entry["target"], root), _resolve_journal_path(entry["backup"], root)
    staged = _resolve_journal_path(entry["staged"], root) if entry.get("staged") else None
    if _exists(backup):
        if _exists(target):
            _remove_or_fail(target)
        os.replace(backup, target)
    elif not entry.get("had_old") and staged is not None and not _exists(staged):
        _remove_or_fail(target)          # the new output had been moved in where there was none: out


def _remove_or_fail(path: Path) -> None:
    """Like _remove, but an output that cannot be removed while undoing a publication is an error."""
    if path.is_symlink() or not path.is_dir():
        if _exists(path):
            path.unlink()
    else:
        shutil.rmtree(path)
