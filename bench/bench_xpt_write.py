#!/usr/bin/env python3
"""XPT writing benchmark (not a unit test): sdtm_rA.io.xpt check + write vs pyreadstat alone.

On a 1,000,000-row x 29-variable LB-like frame (bench/work/out-n2000/sdtm/lb.xpt read with
read_xpt_fast if it exists, else generated in memory; --file / --generate to choose), times

* ours: what ``sdtm_rA.sdtm.convert`` does for one dataset - ``prepare_for_xpt`` (the checks, once)
  then ``write_xpt(..., prepared=...)``; with an older sdtm_rA that has no ``prepare_for_xpt``:
  ``check_for_xpt`` then ``write_xpt`` (which checked again);
* pyreadstat alone: ``pyreadstat.write_xport`` of the same data as ``write_xpt`` hands it (text
  columns as object arrays, '' for missing, same labels, version 5); preparing that frame is
  not timed.  For information, also pyreadstat on the frame's own pandas-3 ``str`` columns.

The frame is made like the ones ``sdtm_rA.sdtm.convert`` builds: a mix of ``str`` and ``object``
text columns, with missing values (NaN / None) rather than ''.  Prints the best wall-clock and
CPU time of --repeat runs and our overhead as a share of pyreadstat's time (target <= 30 %).

    python bench/bench_xpt_write.py                     # lb.xpt of the 2,000-subject study
    python bench/bench_xpt_write.py --generate --rows 1000000
    python bench/bench_xpt_write.py --engine /tmp/rev   # another revision of sdtm_rA
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work"
DEFAULT_FILE = WORK / "out-n2000" / "sdtm" / "lb.xpt"
# text columns that sdtm_rA.sdtm.convert's LB has as object (the others are pandas 3 str)
OBJECT_COLUMNS = ("STUDYID", "DOMAIN", "LBSTRESC", "LBNRIND", "LBLOBXFL", "LBDTC")
CREATED = dt.datetime(2024, 1, 1)


def generate(rows: int):
    """An LB-like frame: 22 text and 7 numeric variables (~300 bytes a row), with labels."""
    import numpy as np
    import pandas as pd

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
        "LBSTNRLO": pick([0.0, 10.0, np.nan]).astype("float64"),
        "LBSTNRHI": pick([17.0, 40.0, 120.0]).astype("float64"),
        "LBNRIND": pick(["", "", "NORMAL", "HIGH", "LOW"]),
        "LBSTAT": np.where(missing, "NOT DONE", "").astype(object),
        "LBREASND": np.where(missing, "SAMPLE NOT COLLECTED", "").astype(object),
        "LBNAM": pick(["Central Laboratory", "Shariati Hospital Laboratory"]),
        "LBSPEC": pick(["SERUM", "BLOOD", "URINE"]),
        "LBMETHOD": pick(["ELISA", "SPECTROPHOTOMETRY", ""]),
        "LBLOBXFL": pick(["", "", "", "Y"]),
        "VISITNUM": pick([1.0, 2.0, 3.0, 4.0]).astype("float64"),
        "VISIT": pick(["SCREENING", "BASELINE", "WEEK 4", "WEEK 12"]),
        "VISITDY": pick([-14.0, 1.0, 29.0, 85.0]).astype("float64"),
        "EPOCH": pick(["SCREENING", "TREATMENT", "FOLLOW-UP"]),
        "LBDTC": [f"2021-{m:02d}-{d:02d}T08:30" for m, d in
                  zip(rng.integers(1, 13, rows), rng.integers(1, 29, rows))],
        "LBDY": rng.integers(-20, 200, rows).astype("float64"),
    })
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype("str")
    return df, {c: c for c in df.columns}, "Laboratory Test Results"


def load(path: Path):
    from sdtm_rA.io.xpt import read_xpt_fast

    df, meta = read_xpt_fast(path)
    return df, dict(meta.column_names_to_labels), meta.file_label or meta.table_name


def like_convert(df):
    """Text columns as sdtm_rA.sdtm.convert builds them: '' -> missing, some object columns."""
    import pandas as pd

    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s
        elif col in OBJECT_COLUMNS:
            a = s.to_numpy(dtype=object)
            a[a == ""] = None
            out[col] = pd.Series(a, dtype=object)
        else:
            out[col] = s.mask(s == "")  # str column with NaN for missing
    return pd.DataFrame(out)


def pyreadstat_frame(df):
    """What write_xpt hands to pyreadstat: object text columns ('' for missing), float64."""
    import pandas as pd

    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s.astype("float64")
        else:
            out[col] = pd.Series(s.to_numpy(dtype=object, na_value=""), dtype=object)
    return pd.DataFrame(out)


def timed(fn, repeat: int):
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        out = None
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, help=f"an XPT file to take the frame from "
                                              f"(default {DEFAULT_FILE.relative_to(REPO)})")
    ap.add_argument("--generate", action="store_true", help="generate the frame in memory")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engine", type=Path, help="folder holding the sdtm_rA package to time")
    ap.add_argument("--no-str", action="store_true", help="skip pyreadstat on str columns")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.engine or REPO))

    import pandas as pd
    import pyreadstat
    from sdtm_rA.io import xpt

    path = args.file or (None if args.generate or not DEFAULT_FILE.exists() else DEFAULT_FILE)
    t0 = time.perf_counter()
    df, labels, label = load(path) if path else generate(args.rows)
    if path and args.rows < len(df):
        df = df.iloc[:args.rows].reset_index(drop=True)
    df = like_convert(df)
    variables = {c: xpt.XptVariable(c, labels.get(c) or c,
                                    "Num" if pd.api.types.is_numeric_dtype(df[c].dtype)
                                    else "Char") for c in df.columns}
    plain = pyreadstat_frame(df)
    kinds = pd.Series([str(t) for t in df.dtypes]).value_counts().to_dict()
    print(f"frame: {len(df)} rows x {df.shape[1]} columns {kinds} "
          f"({'from ' + str(path) if path else 'generated'}, {time.perf_counter() - t0:.1f} s)")
    try:
        loadavg = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        loadavg = ""
    print(f"{os.cpu_count()} CPUs, {loadavg}; pandas {pd.__version__}, pyreadstat "
          f"{pyreadstat.__version__}, sdtm_rA from {Path(xpt.__file__).parent}")

    WORK.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix="xpt-write-", dir=WORK))
    target = tmpdir / "lb.xpt"
    prepare = getattr(xpt, "prepare_for_xpt", None)
    parts = {}

    def ours():
        t = time.perf_counter()
        if prepare is not None:
            prep = prepare(df, "LB", label, variables)
            assert not prep.problems, prep.problems[:3]
            parts["check"] = time.perf_counter() - t
            info = xpt.write_xpt(df, target, name="LB", label=label, variables=variables,
                                 created=CREATED, prepared=prep)
        else:
            problems = xpt.check_for_xpt(df, "LB", label, variables)
            assert not problems, problems[:3]
            parts["check"] = time.perf_counter() - t
            info = xpt.write_xpt(df, target, name="LB", label=label, variables=variables,
                                 created=CREATED)
        parts["write"] = time.perf_counter() - t - parts["check"]
        return info

    def alone(frame):
        def run():
            pyreadstat.write_xport(frame, str(tmpdir / "alone.xpt"), file_label=label,
                                   column_labels=[variables[c].label for c in frame.columns],
                                   table_name="LB", file_format_version=5)
        return run

    try:
        pw, pc, _ = timed(alone(plain), args.repeat)
        print(f"pyreadstat alone (object columns):  wall {pw:7.2f} s   cpu {pc:7.2f} s",
              flush=True)
        if not args.no_str:
            sw, sc, _ = timed(alone(df.fillna({c: "" for c in df.columns
                                               if not pd.api.types.is_numeric_dtype(df[c])})
                                    .astype({c: "str" for c in OBJECT_COLUMNS
                                             if c in df.columns})), 1)
            print(f"pyreadstat alone (str columns):     wall {sw:7.2f} s   cpu {sc:7.2f} s   "
                  f"({sw / pw:.1f}x the object columns; for information)", flush=True)
        best = None
        for _ in range(args.repeat):
            w, c, info = timed(ours, 1)
            if best is None or w < best[0]:
                best = (w, c, dict(parts))
        ow, oc, op = best
        api = "prepare_for_xpt + write_xpt" if prepare else "check_for_xpt + write_xpt"
        print(f"ours ({api}):  wall {ow:7.2f} s   cpu {oc:7.2f} s   "
              f"(check {op['check']:.2f} s, write {op['write']:.2f} s)", flush=True)
        same = (target.stat().st_size == (tmpdir / "alone.xpt").stat().st_size)
        print(f"overhead: wall {ow - pw:+.2f} s = {100 * (ow - pw) / pw:.0f} % of pyreadstat, "
              f"cpu {oc - pc:+.2f} s = {100 * (oc - pc) / pc:.0f} %   (target <= 30 %); "
              f"file sizes {'equal' if same else 'DIFFER'} ({info['rows']} rows)")
        return 0 if (ow - pw) <= 0.3 * pw or (oc - pc) <= 0.3 * pc else 1
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
