#!/usr/bin/env python3
"""The expression language on 1,000,000 rows, each expression beside the hand-written pandas that
computes the same thing (the issue's target: about what a pandas column operation costs).

    python bench/bench_expressions.py [--rows 1000000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sdtm_rA.expression import DATE, Expression  # noqa: E402


def frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    start = days.strftime("%Y-%m-%d").to_numpy(dtype=object)
    start[rng.random(n) < 0.05] = "2021-03"                       # partial dates
    ref = (pd.Timestamp("2021-06-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame({
        "AESTDTC": start, "RFXSTDTC": ref.to_numpy(dtype=object),
        "AVAL": rng.normal(100, 20, n), "LBORRES": rng.integers(1, 500, n).astype(str).astype(object),
        "VISIT": rng.choice(["WEEK 4", "WEEK 8", "WEEK 12", "UNSCHEDULED 1.1"], n).astype(object),
        "PATNUM": (pd.Series(rng.integers(100, 999, n)).astype(str) + "-" +
                   pd.Series(rng.integers(1000, 9999, n)).astype(str)).to_numpy(dtype=object),
        "ADT": days,
    })


CASES = [
    ("AVAL > 120 and VISIT in ('WEEK 4', 'WEEK 8')",
     lambda df: (df.AVAL > 120) & df.VISIT.isin(["WEEK 4", "WEEK 8"])),
    ("(AVAL - 32) * 5 / 9", lambda df: (df.AVAL - 32) * 5 / 9),
    ("number(LBORRES) * 0.0555", lambda df: pd.to_numeric(df.LBORRES) * 0.0555),
    ("scan(PATNUM, 1, '-')", lambda df: df.PATNUM.str.split("-").str[0]),
    ("upper(VISIT) || ' X'", lambda df: df.VISIT.str.upper() + " X"),
    ("ADT + 30 >= date('2022-01-01')", lambda df: df.ADT + pd.Timedelta(days=30) >= pd.Timestamp("2022-01-01")),
    ("AESTDTC >= RFXSTDTC (partial ISO text)",
     lambda df: pd.to_datetime(df.AESTDTC, format="ISO8601", errors="coerce") >=
     pd.to_datetime(df.RFXSTDTC, format="ISO8601")),
    ("case when AVAL < 80 then 'LOW' when AVAL > 120 then 'HIGH' else 'NORMAL' end",
     lambda df: np.select([df.AVAL < 80, df.AVAL > 120], ["LOW", "HIGH"], "NORMAL")),
]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    n = ap.parse_args().rows
    df = frame(n)
    declared = {"AESTDTC": DATE, "RFXSTDTC": DATE}.get
    print(f"{n:,} rows            expression   pandas   ratio")
    for text, pandas_fn in CASES:
        expr = Expression(text.replace(" (partial ISO text)", ""))
        ours = min(timed(lambda: expr.evaluate(lambda c: df[c], declared, n)) for _ in range(3))
        theirs = min(timed(lambda: pandas_fn(df)) for _ in range(3))
        print(f"{text[:48]:<48} {ours:7.3f}s {theirs:7.3f}s {ours / theirs:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
