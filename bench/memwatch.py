"""Peak memory of a process *tree*, for benchmarks whose work runs in forked processes.

`ru_maxrss` gives the largest single process; a conversion that writes XPT files and reads workbooks
in forked children uses the sum. Summing RSS would count the pages a fork shares with its parent
twice, so this sums PSS (proportional set size: a shared page is split among its sharers) from
/proc/<pid>/smaps_rollup, sampled every `interval` seconds (Linux only; elsewhere it reports 0).
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _pss_kb(p)
        todo += _children(p)
    return total


class PeakTreeMemory:
    """with PeakTreeMemory(popen.pid) as m: ...; m.peak_gb"""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_pss_kb(self.pid))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_gb(self) -> float:
        return self.peak_kb / 1024 / 1024

    @staticmethod
    def available() -> bool:
        return os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")
