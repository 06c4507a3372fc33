#!/usr/bin/env python3
"""XPT reading benchmark (not a unit test): pyreadstat.read_xport vs sdtm_rA.io.xpt.read_xpt_fast.

Times both readers on the biggest .xpt file under bench/work (e.g. the ~300 MB, 1,000,000-row
LB of bench_convert.py's 2,000-subject study) or, when there is none of at least --min-mb MB,
on a generated LB-like file of --rows rows (29 variables, written once with write_xpt to
bench/work/xpt-bench/lb<rows>.xpt). Prints wall-clock and CPU time (the best of --repeat runs;
CPU time is the fairer number on a busy machine), the speed-up, and checks that both readers
give the same frame.

    python bench/bench_xpt_read.py                  # biggest file under bench/work
    python bench/bench_xpt_read.py --file some.xpt
    python bench/bench_xpt_read.py --generate --rows 1000000
    python bench/bench_xpt_read.py --folder bench/work/out-n2000/sdtm   # a whole submission
    python bench/bench_xpt_read.py --threads 1      # read_xpt_fast on one thread

Target: read_xpt_fast at least 5 times faster than pyreadstat on the 300 MB file.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work"
sys.path.insert(0, str(REPO))


def generate(rows: int) -> Path:
    """An LB-like dataset: 22 character and 7 numeric variables (~300 bytes a row)."""
    import numpy as np
    import pandas as pd
    from sdtm_rA.io.xpt import write_xpt

    out = WORK / "xpt-bench" / f"lb{rows}.xpt"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def pick(values):
        return np.asarray(values, dtype=object)[rng.integers(0, len(values), rows)]

    tests = [("ALT", "Alanine Aminotransferase", "U/L"), ("AST", "Aspartate Aminotransferase",
             "U/L"), ("HGB", "Hemoglobin", "g/dL"), ("GLUC", "Glucose", "mmol/L"),
             ("CCPAB", "Cyclic Citrullinated Peptide Antibody", "U/mL"), ("WBC", "Leukocytes",
             "10^9/L")]
    t = rng.integers(0, len(tests), rows)
    res = np.round(rng.normal(50, 20, rows), 1)
    missing = rng.random(rows) < 0.02
    subj = rng.integers(1, 2001, rows)
    df = pd.DataFrame({
        "STUDYID": "RAMSC01", "DOMAIN": "LB",
        "USUBJID": [f"RAMSC01-101-{s:04d}" for s in subj],
        "LBSEQ": np.arange(1, rows + 1, dtype="float64"),
        "LBTESTCD": [tests[i][0] for i in t], "LBTEST": [tests[i][1] for i in t],
        "LBCAT": pick(["CHEMISTRY", "HEMATOLOGY", "SEROLOGY", "URINALYSIS"]),
        "LBORRES": np.where(missing, "", res.astype(str)).astype(object),
        "LBORRESU": [tests[i][2] for i in t],
        "LBORNRLO": pick(["", "0", "10"]), "LBORNRHI": pick(["", "17", "40", "120"]),
        "LBSTRESC": np.where(missing, "", res.astype(str)).astype(object),
        "LBSTRESN": np.where(missing, np.nan, res),
        "LBSTRESU": [tests[i][2] for i in t],
        "LBSTNRLO": pick([0.0, 10.0, np.nan]), "LBSTNRHI": pick([17.0, 40.0, 120.0]),
        "LBNRIND": pick(["", "", "NORMAL", "HIGH", "LOW"]),
        "LBSTAT": np.where(missing, "NOT DONE", "").astype(object),
        "LBREASND": np.where(missing, "SAMPLE NOT COLLECTED", "").astype(object),
        "LBNAM": pick(["Central Laboratory", "Shariati Hospital Laboratory"]),
        "LBSPEC": pick(["SERUM", "BLOOD", "URINE"]),
        "LBMETHOD": pick(["ELISA", "SPECTROPHOTOMETRY", ""]),
        "LBLOBXFL": pick(["", "", "", "Y"]),
        "VISITNUM": pick([1.0, 2.0, 3.0, 4.0]),
        "VISIT": pick(["SCREENING", "BASELINE", "WEEK 4", "WEEK 12"]),
        "VISITDY": pick([-14.0, 1.0, 29.0, 85.0]),
        "EPOCH": pick(["SCREENING", "TREATMENT", "FOLLOW-UP"]),
        "LBDTC": [f"2021-{m:02d}-{d:02d}T08:30" for m, d in
                  zip(rng.integers(1, 13, rows), rng.integers(1, 29, rows))],
        "LBDY": rng.integers(-20, 200, rows).astype("float64"),
    })
    print(f"writing {rows} rows to {out} ...", flush=True)
    write_xpt(df, out, name="LB", label="Laboratory Test Results",
              created=dt.datetime(2024, 1, 1))
    return out


def biggest(min_mb: float) -> Path | None:
    files = [p for p in WORK.rglob("*.xpt") if p.is_file()]
    files = [p for p in files if p.stat().st_size >= min_mb * 1e6]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def timed(fn, repeat: int):
    """best wall-clock and best CPU time of `repeat` calls, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        out = None  # free the previous frame first
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def same(fast, slow) -> str:
    import pandas as pd
    df, _ = fast
    want, meta = slow
    want = want.copy()
    for col, kind in meta.readstat_variable_types.items():
        if kind == "string":
            want[col] = want[col].fillna("")
    try:
        pd.testing.assert_frame_equal(df, want, check_exact=True)
    except AssertionError as exc:
        return f"DIFFERENT: {str(exc)[:300]}"
    return "identical frames"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path)
    ap.add_argument("--folder", type=Path, help="read every .xpt of a folder (as the validator)")
    ap.add_argument("--generate", action="store_true", help="use a generated file")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--min-mb", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of read_xpt_fast (best kept)")
    ap.add_argument("--repeat-pyreadstat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-check", action="store_true", help="do not compare the frames")
    args = ap.parse_args(argv)

    import pyreadstat
    from sdtm_rA.io.xpt import read_xpt_fast

    if args.folder:
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() == ".xpt")
    else:
        path = args.file or (None if args.generate else biggest(args.min_mb))
        files = [path or generate(args.rows)]
    size = sum(p.stat().st_size for p in files)
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = ""
    what = files[0] if len(files) == 1 else args.folder
    print(f"{len(files)} file(s), {size / 1e6:.0f} MB: {what}")
    print(f"{os.cpu_count()} CPUs, {load}; pyreadstat {pyreadstat.__version__}")

    def fast():
        return [read_xpt_fast(p, threads=args.threads) for p in files]

    def slow():
        return [pyreadstat.read_xport(str(p)) for p in files]

    fw, fc, fres = timed(fast, args.repeat)
    rows = sum(len(df) for df, _ in fres)
    print(f"read_xpt_fast: wall {fw:7.2f} s   cpu {fc:7.2f} s   ({rows} rows, best of "
          f"{args.repeat})", flush=True)
    sw, sc, sres = timed(slow, args.repeat_pyreadstat)
    print(f"pyreadstat:    wall {sw:7.2f} s   cpu {sc:7.2f} s   (best of "
          f"{args.repeat_pyreadstat})", flush=True)
    print(f"speed-up:      wall {sw / fw:6.1f}x    cpu {sc / fc:6.1f}x   (target >= 5x)")
    if not args.no_check:
        verdicts = {same(f, s) for f, s in zip(fres, sres)}
        print("check:", "; ".join(sorted(verdicts)))
    return 0 if sw / fw >= 5 or sc / fc >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
