#!/usr/bin/env python3
"""ADaM derivation benchmark on the large synthetic study (not a unit test).

1. Makes sure the large study's SDTM exists (bench/work/out-n<N>/sdtm; generated and converted with
   `sdtm_rA.sdtm.convert` when missing).
2. Runs `sdtm_rA.adam.derive.derive` with the bundled ADaM specs in a subprocess: wall time, peak
   memory (ru_maxrss of the child), and the time of every step of every dataset, of reading the SDTM
   and of writing the XPT files. Targets (issue 4): under 30 s and 4 GB on 2 cores.
3. --profile writes a cProfile of the whole derivation to bench/work/profile-derive-n<N>.txt.

    python bench/bench_derive.py                  # 2,000 subjects
    python bench/bench_derive.py --subjects 100   # quick
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from memwatch import PeakTreeMemory  # noqa: E402
REPO = HERE.parent
TIME_TARGET_S = 30.0
MEMORY_TARGET_GB = 4.0


def child(sdtm: str, out: str, result_path: str, profile_path: str | None) -> int:
    sys.path.insert(0, str(REPO))
    import sdtm_rA.adam.derive as der
    import sdtm_rA.adam.steps as steps
    import sdtm_rA.io.xpt as xpt

    timings: dict[str, float] = {}

    def timed(key_of):
        def factory(fn):
            def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    key = key_of(a, k)
                    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t
            return wrapper
        return factory

    owner: dict[int, str] = {}            # id(step arguments) -> "ADSL step 03 merge"
    original_run = steps.run_step

    def run_step(st, df, args, ctx):
        t = time.perf_counter()
        try:
            return original_run(st, df, args, ctx)
        finally:
            key = owner.get(id(args), st.name)
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t

    original_derive_datasets = der.derive_datasets

    def derive_datasets(sdtm_frames, specs, progress=None, **kw):
        for sp in specs:
            for s in sp.steps + sp.later_steps:
                owner[id(s.args)] = f"{sp.dataset} {s.where()}"
        return original_derive_datasets(sdtm_frames, specs, progress, **kw)

    der.run_step = run_step
    der.derive_datasets = derive_datasets
    der.finish_dataset = timed(lambda a, k: f"{a[1].dataset} finish (order, types, sort)")(der.finish_dataset)
    der.read_sdtm_folder = timed(lambda a, k: "read SDTM")(der.read_sdtm_folder)
    xpt.write_xpt = timed(lambda a, k: f"write {k.get('name')}")(xpt.write_xpt)
    xpt.BackgroundWriter.finish = timed(lambda a, k: "wait for the XPT writer processes")(xpt.BackgroundWriter.finish)
    xpt.BackgroundWriter.submit = timed(lambda a, k: "submit XPT writes (waits when all workers are busy)")(
        xpt.BackgroundWriter.submit)
    xpt.prepare_for_xpt = timed(lambda a, k: f"check {a[1] if len(a) > 1 else '?'}")(xpt.prepare_for_xpt)

    prof = cProfile.Profile() if profile_path else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    result = der.derive(sdtm, out, command=["bench_derive"], progress=lambda m: print("   ", m, flush=True))
    if prof:
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(60)
        Path(profile_path).write_text(s.getvalue())
    total = time.perf_counter() - t0
    rows = {k: v["rows"] for k, v in result.outputs.items()}
    Path(result_path).write_text(json.dumps({"seconds": total, "timings": timings, "rows": rows}))
    return 0


def ensure_sdtm(n: int) -> Path:
    out = HERE / "work" / f"out-n{n}"
    if (out / "sdtm" / "dm.xpt").exists():
        return out / "sdtm"
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO))
    from generate_large_study import generate
    study = HERE / "work" / ("large" if n == 2000 else f"n{n}")
    if not (study / "generated.json").exists():
        generate(n, study, source=REPO, log=print)
    from sdtm_rA.sdtm.convert import convert
    print(f"converting {study} -> {out}")
    convert(study, out)
    return out / "sdtm"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        sdtm, out, res, prof = args.child
        return child(sdtm, out, res, prof if prof != "-" else None)
    sdtm = ensure_sdtm(args.subjects)
    out = HERE / "work" / f"adam-n{args.subjects}"
    prof = str(HERE / "work" / f"profile-derive-n{args.subjects}.txt") if args.profile else "-"
    with tempfile.TemporaryDirectory() as tmp:
        res_path = Path(tmp) / "result.json"
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(sdtm), str(out), str(res_path), prof])
        with PeakTreeMemory(proc.pid) as mem:
            if proc.wait():
                raise SystemExit(f"derive failed with exit code {proc.returncode}")
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = json.loads(res_path.read_text())
    peak_gb = mem.peak_gb
    cpu = (usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime)
    print(f"\nderive of {sdtm} ({args.subjects} subjects)")
    for key, sec in sorted(res["timings"].items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {sec:7.2f} s  {key}")
    records = sum(res["rows"].values())
    print(f"\noutputs: {res['rows']}  ({records:,} records)")
    print(f"derive() in the child  {res['seconds']:7.1f} s   target < {TIME_TARGET_S:.0f} s: "
          f"{'OK' if res['seconds'] < TIME_TARGET_S else 'MISSED'}")
    print(f"subprocess wall        {wall:7.1f} s   CPU {cpu:.1f} s")
    print(f"peak memory            {peak_gb:7.2f} GB  (PSS of the whole process tree, forked writers "
          f"included) target < {MEMORY_TARGET_GB:.0f} GB: {'OK' if peak_gb < MEMORY_TARGET_GB else 'MISSED'}")
    print(f"largest single process {usage.ru_maxrss / 1024 / 1024:7.2f} GB  (ru_maxrss)")
    if prof != "-":
        print(f"profile: {prof}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
