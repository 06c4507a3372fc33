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

import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .errors import ConversionError, Issue

STAGE_PREFIX = ".sdtm-ra-stage-"
JOURNAL = ".sdtm-ra-journal.json"
OWNER = "owner.json"
MANIFEST = "manifest.json"
#: the temporary names earlier versions left behind when killed (mkdtemp/mkstemp: 8 random characters)
LEGACY = re.compile(r"^(\.(sdtm|adam)-[a-z0-9_]{8}(-run\.json)?|\.(sdtm|adam)-old-\d+|"
                    r"\.(run\.json|validation\.(json|html)|adam-validation\.(json|html)|summary\.html)"
                    r"\.[a-z0-9_]{8}\.tmp)$")


def publish_mode(path: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; what is published gets the permissions
    a plain mkdir/open would give (the user's umask), so colleagues sharing the study folder can read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


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


# ----------------------------------------------------------------------------------- test hook
def checkpoint(name: str) -> None:
    """Where the environment says so (SDTM_RA_PAUSE_AT=name), write SDTM_RA_PAUSE_FILE and wait to be
    killed: the integrity tests stop a real run at each stage this way, without guessing with sleeps.
    With signals held off (the publication step), the wait ends as soon as one is pending."""
    if os.environ.get("SDTM_RA_PAUSE_AT") != name:
        return
    marker = os.environ.get("SDTM_RA_PAUSE_FILE")
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n", encoding="utf-8")
    while True:
        if hasattr(signal, "sigpending") and signal.sigpending() & {signal.SIGINT, signal.SIGTERM}:
            return
        time.sleep(0.02)


class _HeldSignals:
    """Ctrl-C and SIGTERM wait until the block ends (a publication is never left half-done by them)."""

    SIGNALS = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self):
        self._old = (signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
                     if hasattr(signal, "pthread_sigmask") else None)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)


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
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
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


def write_failure(out: Path, exc: Exception) -> ConversionError:
    """A dataset file that could not be written (the writer says why, or only that it failed): the
    free space of OUT's device is told, since a full disk is the usual cause."""
    try:
        st = os.statvfs(out)
        free = st.f_bavail * st.f_frsize
        space = f"; {free:,} bytes free on the output's device" + (" (the disk is full)" if free < (1 << 20) else "")
    except (OSError, AttributeError):
        space = ""
    text = os_reason(exc) if isinstance(exc, OSError) else " ".join(str(exc).split())
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
    """

    def __init__(self, out, command=None, notify=None):
        self.out = Path(out)
        self.command = list(command or [])
        self.notify = notify or (lambda msg: None)   # what recovery did, told at once (the run may fail)
        self.notes: list[str] = []
        self._fd: int | None = None
        self._made: list[Path] = []
        self._stage: Path | None = None
        self._entries: dict[str, dict] = {}
        self._external: list[str] = []
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
            p = out
            while not p.exists() and not p.is_symlink() and p != p.parent:
                missing.append(p)
                p = p.parent
            out.mkdir(parents=True, exist_ok=True)
            self._made = list(reversed(missing))
        except FileExistsError as exc:
            raise output_error(out, "cannot create the output folder: a file of that name is in the way", exc)
        except NotADirectoryError as exc:
            raise output_error(out, "cannot create the output folder: a file is in its path", exc)
        except OSError as exc:
            raise output_error(out, "cannot create the output folder", exc)
        if not out.is_dir():
            raise ConversionError([Issue("error", "the output folder is a file, not a folder", file=str(out))])
        try:
            self._lock()
            self._recover()
            for note in self.notes:
                self.notify(note)
            self._stage = out / f"{STAGE_PREFIX}{os.getpid()}"
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
        try:
            import fcntl
        except ImportError:   # no flock (Windows): runs into one folder are not guarded
            return
        try:
            self._fd = os.open(self.out, os.O_RDONLY)
        except OSError as exc:
            raise output_error(self.out, "cannot open the output folder", exc)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise OutputBusy([Issue("error", f"another sdtm-ra run is writing to this output folder"
                                    f"{self._owner_text()}; wait for it to end or choose another --out",
                                    file=str(self.out))])
        except OSError:
            pass      # a filesystem without flock: go on unguarded rather than refuse to work

    def _owner_text(self) -> str:
        for stage in sorted(self.out.glob(f"{STAGE_PREFIX}*")):
            info = _read_json(stage / OWNER)
            if info:
                cmd = " ".join(info.get("command") or []) or "?"
                return f" (pid {info.get('pid')}, `{cmd}`, started {info.get('started')})"
        return ""

    # -- recovery --------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Undo what an interrupted run left (the lock is held: no other run is at work here)."""
        journal = self.out / JOURNAL
        info = _read_json(journal) if journal.exists() else None
        if journal.exists():
            for entry in reversed((info or {}).get("entries", [])):
                _roll_back(entry)
            journal.unlink()
            who = f" (pid {info.get('pid')}, `{' '.join(info.get('command') or [])}`)" if info else ""
            self.notes.append(f"an earlier run{who} was interrupted while publishing its outputs: "
                              f"the outputs it was replacing were restored")
        leftovers = []
        for stage in sorted(self.out.glob(f"{STAGE_PREFIX}*")):
            manifest = _read_json(stage / MANIFEST) or {}
            for extra in manifest.get("external", []):
                if _exists(Path(extra)):
                    _remove(Path(extra))
            _remove(stage)
            leftovers.append(stage.name)
        leftovers += self._legacy_leftovers()
        if leftovers:
            self.notes.append(f"removed the temporary files of an interrupted run: {', '.join(leftovers)}")

    def _legacy_leftovers(self) -> list[str]:
        """Temporary names of earlier versions: `.sdtm-old-PID` (a previous OUT/sdtm moved aside) is
        put back when OUT/sdtm is missing; every other one is removed."""
        found = []
        for path in sorted(self.out.iterdir()):
            name = path.name
            if name.startswith(STAGE_PREFIX) or name == JOURNAL:
                continue
            if not LEGACY.match(name):
                continue
            for final in ("sdtm", "adam"):
                if name.startswith(f".{final}-old-") and not (self.out / final).exists():
                    os.replace(path, self.out / final)
                    self.notes.append(f"restored {final}/ from {name}, where an interrupted run had moved it")
                    break
            else:
                _remove(path)
                found.append(name)
        return found

    # -- staging ---------------------------------------------------------------------------------
    def _target(self, name: str) -> Path:
        """Where OUT/name really is: the target of a link, else OUT/name itself."""
        final = self.out / name
        return Path(os.path.realpath(final)) if final.is_symlink() else final

    def _staging_path(self, name: str) -> Path:
        target = self._target(name)
        if target.parent == self.out:
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
        False when there is nothing to remove. A linked folder is emptied, its link kept."""
        final = self.out / name
        if not _exists(final) or name in self._entries:
            return False
        if final.is_symlink() and final.is_dir():
            self.stage_folder(name)
        else:
            self._entries[name] = {"name": name, "staged": None}
        return True

    # -- publishing ------------------------------------------------------------------------------
    def commit(self) -> None:
        """Publish everything staged, and remove what was marked, in one journalled step."""
        entries = []
        for name, e in self._entries.items():
            target = self._target(name)
            if e["staged"]:
                publish_mode(Path(e["staged"]))
            if target.parent == self.out:
                (self._stage / "old").mkdir(exist_ok=True)
                backup = self._stage / "old" / name
            else:
                backup = target.parent / f".sdtm-ra-old-{os.getpid()}-{target.name}"
                self._note_external(backup)
            entries.append({"target": str(target), "staged": e["staged"], "backup": str(backup),
                            "had_old": _exists(target)})
        journal = self.out / JOURNAL
        with _HeldSignals():
            _write_json(journal, {"pid": os.getpid(), "command": self.command, "entries": entries})
            checkpoint("commit:journal")
            for e in entries:
                if e["had_old"]:
                    os.replace(e["target"], e["backup"])
                checkpoint(f"commit:aside:{Path(e['target']).name}")
                if e["staged"]:
                    os.replace(e["staged"], e["target"])
            checkpoint("commit:applied")
            journal.unlink()
            _fsync_dir(self.out)
            self.committed = True
            COMMITTED.append(str(self.out))
        checkpoint("commit:done")

    def close(self) -> None:
        """Remove what was staged (and, after a commit, the previous outputs moved aside); release OUT."""
        try:
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


def _roll_back(entry: dict) -> None:
    """Undo one journalled move, whichever of its two renames had happened."""
    target, backup, staged = Path(entry["target"]), Path(entry["backup"]), entry.get("staged")
    if _exists(backup):
        _remove(target)
        os.replace(backup, target)
    elif not entry.get("had_old") and staged and not _exists(Path(staged)):
        _remove(target)                  # the new output had been moved in where there was none: out
