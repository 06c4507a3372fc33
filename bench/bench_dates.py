"""Timing check for sdtm_rA.dates (not a unit test): 1,000,000 raw dates with about
2,000 distinct values must convert in well under a second.

    python bench/bench_dates.py
"""
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sdtm_rA.dates import compare_dtc, is_iso8601, study_day, to_iso8601  # noqa: E402

N_ROWS, N_DISTINCT = 1_000_000, 2_000


def raw_dates(rng: np.random.Generator) -> pd.Series:
    days = pd.Timestamp("2015-01-01") + pd.to_timedelta(np.arange(N_DISTINCT - 20), unit="D")
    distinct = [d.strftime("%d-%b-%Y").upper() for d in days]
    distinct += [f"UN-{m}-2020" for m in ("JAN", "FEB", "MAR", "APR", "MAY", "JUN")]
    distinct += ["UN UNK 2019", "30-FEB-2021", "", "15 MAR 2021"] + ["UN-UNK-UNKN"] * 10
    return pd.Series(rng.choice(np.array(distinct, dtype=object), N_ROWS), dtype="str")


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    print(f"{label:<40} {time.perf_counter() - start:6.3f} s")
    return result


def main() -> None:
    rng = np.random.default_rng(1)
    dates = raw_dates(rng)
    times = pd.Series(rng.choice(np.array(["0945", "1230", "", "08UN"], dtype=object), N_ROWS), dtype="str")
    start = time.perf_counter()
    iso, issues = timed("to_iso8601 dates", to_iso8601, dates, date_format="dd-MMM-yyyy")
    elapsed = time.perf_counter() - start
    print(f"  {len(issues)} issues, {dates.nunique()} distinct values")
    timed("to_iso8601 dates + separate times", to_iso8601, dates, times,
          date_format="dd-MMM-yyyy", time_format="HHmm")
    timed("is_iso8601", is_iso8601, iso)
    timed("study_day (scalar reference)", study_day, iso, "2018-06-01")
    timed("compare_dtc", compare_dtc, iso, iso.iloc[::-1].reset_index(drop=True))
    if elapsed >= 1.0:
        sys.exit(f"FAIL: to_iso8601 took {elapsed:.2f} s for {N_ROWS:,} rows (budget: well under 1 s)")
    print(f"OK: to_iso8601 within budget ({elapsed:.2f} s < 1 s)")


if __name__ == "__main__":
    main()
