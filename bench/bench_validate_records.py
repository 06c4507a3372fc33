"""Timing check for the record-level rules (SD02xx; not a unit test).

Builds a 1,000,000-row LB-like dataset in memory (2,000 subjects x 10 visits x 50 tests, ~20,000
distinct collection dates, ~1,200 distinct results) with 100 injected errors (values outside
their codelist, bad dates, nulls in Req variables, a --TEST paired with the wrong --TESTCD, bad
--TESTCD names, over-long --TEST and text), runs every SD02xx rule on it, checks that each
injected error is found on its row and nothing else is, and prints the time per rule and the
peak memory.  For comparison it also times Cerberus validating whole records one by one on a
sample (the way the issue measured ~7,500 rows/s) and extrapolates to the whole dataset.

    python bench/bench_validate_records.py            # 1,000,000 rows
    python bench/bench_validate_records.py 200000     # another size
"""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sdtm_rA.standards.specs import load_ct, load_sdtmig  # noqa: E402
from sdtm_rA.validation import rules_record  # noqa: E402,F401  (registers the rules)
from sdtm_rA.validation.data import Dataset, StudyData  # noqa: E402
from sdtm_rA.validation.model import RULES  # noqa: E402
from sdtm_rA.validation.schemas import RecordValidator, dataset_schema  # noqa: E402

BUDGET_SECONDS = 3.0
TESTS = ["ALB", "ALP", "ALT", "AST", "BILI", "UREAN", "CA", "CHOL", "CK", "CL", "CREAT", "GGT", "GLUC",
         "K", "LDH", "MG", "PHOS", "PROT", "SODIUM", "TRIG", "URATE", "HGB", "HCT", "WBC", "RBC",
         "PLAT", "NEUT", "LYM", "MONO", "EOS", "BASO", "MCV", "MCH", "MCHC", "RDW", "INR", "PT",
         "APTT", "FIBRINO", "CRP", "ESR", "TSH", "HBA1C", "FERRITIN", "IRON", "NEUTLE", "VITB12",
         "LYMLE", "AMYLASE", "HBA1CHGB"]   # all LBTESTCD terms of CDISC CT
UNITS = ["g/L", "U/L", "U/L", "U/L", "umol/L", "mmol/L", "mmol/L", "mmol/L", "U/L", "mmol/L",
         "umol/L", "U/L", "mmol/L"] + ["mmol/L"] * 37


def build(n_rows: int, rng: np.random.Generator):
    ct = load_ct("sdtm")
    names = [ct.paired_value("C65047", t, "C67154") for t in TESTS]
    assert all(names), "every bench test code must be a CT term"
    n_tests, n_visits = len(TESTS), 10
    per_subject = n_tests * n_visits
    n_subj = max(1, n_rows // per_subject)
    n = n_subj * per_subject
    subj = np.repeat(np.arange(n_subj), per_subject)
    visit = np.tile(np.repeat(np.arange(1, n_visits + 1), n_tests), n_subj)
    test = np.tile(np.arange(n_tests), n_subj * n_visits)
    start = pd.Timestamp("2020-01-06") + pd.to_timedelta(rng.integers(0, 400, n_subj), unit="D")
    coll = (start[subj] + pd.to_timedelta((visit - 1) * 14, unit="D")
            + pd.to_timedelta(rng.integers(7 * 60, 17 * 60, n_subj)[subj], unit="min"))
    dtc = pd.Series(coll.strftime("%Y-%m-%dT%H:%M"), dtype="str")
    result = np.round(rng.normal(50, 15, n), 1)
    res_text = pd.Series(result).map("{:.1f}".format)
    usubjid = pd.Series(np.char.add("STUDY1-", np.char.zfill(subj.astype(str), 5)), dtype="str")
    str_col = lambda values, idx: pd.Series(np.asarray(values, dtype=object)[idx], dtype="str")  # noqa: E731
    df = pd.DataFrame({
        "STUDYID": pd.Series(["STUDY1"] * n, dtype="str"),
        "DOMAIN": pd.Series(["LB"] * n, dtype="str"),
        "USUBJID": usubjid,
        "LBSEQ": np.tile(np.arange(1, per_subject + 1), n_subj).astype(float),
        "LBTESTCD": str_col(TESTS, test),
        "LBTEST": str_col(names, test),
        "LBCAT": str_col(["CHEMISTRY"] * 21 + ["HEMATOLOGY"] * 17 + ["COAGULATION"] * 3 + ["CHEMISTRY"] * 9, test),
        "LBORRES": pd.Series(res_text, dtype="str"),
        "LBORRESU": str_col(UNITS, test),
        "LBSTRESC": pd.Series(res_text, dtype="str"),
        "LBSTRESN": result,
        "LBSTRESU": str_col(UNITS, test),
        "LBNRIND": str_col(["NORMAL", "HIGH", "LOW", "NORMAL"], rng.integers(0, 4, n)),
        "LBSPEC": str_col(["SERUM"] * 21 + ["BLOOD"] * 29, test),
        "LBBLFL": str_col(["Y", ""], (visit != 1).astype(int)),
        "VISITNUM": visit.astype(float),
        "VISIT": str_col([f"WEEK {2 * (v - 1)}" for v in range(n_visits + 1)], visit),
        "EPOCH": str_col(["SCREENING", "TREATMENT"], (visit > 1).astype(int)),
        "LBDTC": dtc,
        "LBDY": ((visit - 1) * 14 + 1).astype(float),
    })
    df["__row__"] = np.arange(1, n + 1)

    injected = {}   # (rule, variable, row) -> value
    rows = iter(rng.choice(n, 200, replace=False))

    def inject(rule, col, value, k, also=()):
        for _ in range(k):
            i = next(rows)
            df.loc[i, col] = value
            for r in (rule, *also):
                injected[(r, col, i + 1)] = value
    inject("SD0204", "LBBLFL", "YES", 10)            # NY (non-extensible): error
    inject("SD0204", "LBNRIND", "Normal", 10)        # NRIND (extensible): warning, did you mean NORMAL
    inject("SD0204", "LBSTRESU", "mg/dl", 10)        # UNIT (extensible): warning, did you mean mg/dL
    inject("SD0206", "LBDTC", "2021-02-30", 10)
    inject("SD0206", "LBDTC", "15/03/2021", 5)
    inject("SD0206", "LBDTC", "2021-13-01T10:00", 5)
    inject("SD0202", "USUBJID", "", 5)
    inject("SD0202", "LBTESTCD", "", 5)
    inject("SD0202", "LBSEQ", np.nan, 5)
    inject("SD0202", "LBTEST", "", 5)
    inject("SD0205", "LBTEST", "Glucose", 0)         # placed below, on rows that are not GLUC
    # these two are not CT terms either: also a new-term warning of the codelist rule
    inject("SD0208", "LBTESTCD", "1GLUCOSE", 5, also=("SD0204",))
    inject("SD0209", "LBTEST", "Glucose Measured In Fasting Venous Serum Sample", 5, also=("SD0204",))
    inject("SD0203", "LBORRES", "x" * 150 + " é" * 30, 5)
    for _ in range(10):
        i = next(rows)
        while df.at[i, "LBTESTCD"] in ("GLUC", "", "1GLUCOSE"):
            i = next(rows)
        df.loc[i, "LBTEST"] = "Glucose"
        injected[("SD0205", "LBTEST", i + 1)] = "Glucose"
    ds = Dataset(name="LB", domain="LB", df=df, path=Path("lb.xpt"),
                 var_types={c: ("Num" if pd.api.types.is_numeric_dtype(df[c]) else "Char") for c in df.columns})
    study = StudyData(folder=Path("."), datasets={"LB": ds}, standard="SDTMIG 3.4",
                      ig=load_sdtmig("3.4"), ct=ct)
    return study, injected


def record_by_record(study, sample: int) -> float:
    """Rows per second of plain Cerberus validating whole LB records one by one."""
    ds = study.datasets["LB"]
    schema = {k: v for k, v in dataset_schema(study.spec(ds), study.ct).items() if k in ds.columns}
    v = RecordValidator(schema, allow_unknown=True)
    docs = ds.df.drop(columns="__row__").iloc[:sample].to_dict("records")
    start = time.perf_counter()
    for d in docs:
        v.validate({k: (None if isinstance(x, float) and x != x else x) for k, x in d.items()})
    return sample / (time.perf_counter() - start)


def main() -> None:
    n_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(3)
    t0 = time.perf_counter()
    study, injected = build(n_rows, rng)
    n = len(study.datasets["LB"].df)
    print(f"built {n:,} LB rows, {len(injected)} injected findings in {time.perf_counter() - t0:.1f} s")
    total = 0.0
    found = []
    print(f"{'rule':<8} {'seconds':>8} {'findings':>9}  title")
    for rid in sorted(r for r in RULES if r.startswith("SD02")):
        start = time.perf_counter()
        out = RULES[rid].func(study)
        elapsed = time.perf_counter() - start
        total += elapsed
        frames = [f for f in (out if isinstance(out, list) else [out]) if f is not None and len(f)]
        res = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["row", "variable"])
        res["rule"] = rid
        found.append(res)
        print(f"{rid:<8} {elapsed:8.3f} {len(res):9d}  {RULES[rid].title}")
    print(f"{'total':<8} {total:8.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:,.0f} MB")

    findings = pd.concat(found, ignore_index=True)
    got = {(r.rule, r.variable, int(r.row)) for r in findings.itertuples() if r.row}
    missed = sorted(set(injected) - got)
    extra = sorted(got - set(injected))
    print(f"injected errors found: {len(set(injected) & got)}/{len(injected)}; unexpected findings: {len(extra)}")
    for key in missed[:10]:
        print("  missed", key)
    for key in extra[:10]:
        print("  unexpected", key)
    for rid, grp in findings.groupby("rule"):
        print(f"  {rid}: {grp['message'].iloc[0]}")

    sample = 5_000
    rate = record_by_record(study, sample)
    print(f"Cerberus record by record: {rate:,.0f} rows/s -> {n / rate:,.0f} s for {n:,} rows "
          f"(distinct values: {total:.2f} s, {n / rate / max(total, 1e-9):,.0f}x faster)")

    if missed or extra:
        sys.exit("FAIL: the injected errors and the findings differ")
    if n >= 1_000_000 and total >= BUDGET_SECONDS:
        sys.exit(f"FAIL: {total:.2f} s for {n:,} rows (budget {BUDGET_SECONDS} s)")
    print("OK")


if __name__ == "__main__":
    main()
