"""Signals during a run: Ctrl-C and SIGTERM held off while outputs are being published, and the test
hook that stops a real run at a named stage.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HELD: list["HeldSignals"] = []


class HeldSignals:
    """Ctrl-C and SIGTERM received inside the block take effect when it ends, so that a publication
    (a few renames) is never left half-done by them. Python runs signal handlers in the main thread
    whichever thread the system delivered the signal to, so a handler that only notes the signal
    holds it off for the whole process (blocking the signal mask would not: other threads, e.g.
    pyarrow's, would still receive it)."""

    def __init__(self):
        self.pending: list[int] = []
        self._old: dict = {}

    def _note(self, signum, frame) -> None:
        self.pending.append(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._note)
        _HELD.append(self)
        return self

    def __exit__(self, *exc):
        _HELD.remove(self)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self.pending and exc[0] is None:
            sig = self.pending[0]
            old = self._old.get(sig)
            if callable(old):
                old(sig, None)                      # raises KeyboardInterrupt (or the CLI's Interrupted)
            elif old == signal.SIG_DFL:
                os.kill(os.getpid(), sig)           # what the signal would have done


def checkpoint(name: str) -> None:
    """Where the environment says so (SDTM_RA_PAUSE_AT=name), write SDTM_RA_PAUSE_FILE and wait until
    that file is deleted (the run then goes on) or the process is killed: the integrity tests stop a
    real run at each stage this way, without guessing with sleeps. With signals held off (the
    publication step), the wait ends as soon as one has arrived."""
    if os.environ.get("SDTM_RA_PAUSE_AT") != name:
        return
    marker = os.environ.get("SDTM_RA_PAUSE_FILE")
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n", encoding="utf-8")
    while not (_HELD and _HELD[-1].pending) and (not marker or os.path.exists(marker)):
        time.sleep(0.02)


def reset_in_worker() -> None:
    """In a forked worker: SIGTERM kills it at once (its parent stops it that way), Ctrl-C is left to
    the parent, which stops its workers; handlers inherited from the parent would make a worker
    catch them and block on a pipe nobody reads any more."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
