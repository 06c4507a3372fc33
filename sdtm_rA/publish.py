"""Publishing outputs: a folder is built in a temporary place beside its final one and then replaces
the previous folder in one move, so that a reader never sees a half-written set of files and a failed
run leaves the earlier outputs as they were."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def publish_mode(path: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; what is published gets the permissions
    a plain mkdir/open would give (the user's umask), so colleagues sharing the study folder can read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


def replace_folder(tmp: Path, final: Path) -> None:
    """`tmp` becomes `final`; the previous `final`, if any, is moved aside first and then removed."""
    publish_mode(tmp)
    old = None
    if final.exists():
        old = final.parent / f".{final.name}-old-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
