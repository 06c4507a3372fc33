#!/usr/bin/env python3
"""End-to-end conversion benchmark on a large synthetic study (not a unit test).

1. Generates the study with bench/generate_large_study.py if it is not there yet (same subjects).
2. Runs `sdtm_rA.sdtm.convert.convert` in a subprocess: wall time, peak memory
   (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss), time per domain (raw read + checks, build,
   XPT check + write of the domain and its SUPP--) and records per second.
3. In a second subprocess reads the produced XPTs back into DataFrames (not timed) and times
   pyreadstat alone writing them (`write_xport(..., file_format_version=5)`): the floor for the
   writing step. Prints both times and "convert / pyreadstat-only write".
   Targets: ratio <= 2 and peak memory < 4 GB.
4. Optionally (--profile LB,QS,XPT) a third run with cProfile switched on only while the named
   domains are read/built (XPT: while datasets are checked and written); top functions printed
   and saved.

    python bench/bench_convert.py --subjects 100            # quick mode (~20 s)
    python bench/bench_convert.py                          # 2,000 subjects (~1 M LB, ~1.5 M QS rows)
    python bench/bench_convert.py --profile LB,QS,XPT

Layout under --work (default bench/work): the study in `large/` (2,000 subjects, the generator's
default) or `n<N>/`, the conversion output in `out-n<N>/`, reports in `report-n<N>.json` and
`profile-n<N>-<what>.txt`. Nothing under sdtm_rA/ is touched: timings come from wrappers installed
in the child process around the engine's functions.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RATIO_TARGET = 2.0
MEMORY_TARGET_GB = 4.0


# =============================================================================================
# child: the conversion, instrumented
# =============================================================================================
def _wrap(module, name, wrapper_factory):
    original = getattr(module, name, None)
    if original is None:
        return None
    setattr(module, name, wrapper_factory(original))
    return original


def child_convert(study: str, out: str, result_path: str, profile: list[str], prof_out: str | None,
                  engine: str) -> int:
    sys.path.insert(0, engine)
    import sdtm_rA
    import sdtm_rA.sdtm.convert as conv
    import sdtm_rA.io.sources as sources
    import sdtm_rA.io.xpt as xpt

    timings = {"read": {}, "prepare": {}, "build": {}, "xpt_check": {}, "xpt_write": {}}
    rows_read = {}
    profilers = {what: cProfile.Profile() for what in profile}

    def timed(kind, key_of, prof_key_of=None):
        def factory(fn):
            def wrapper(*args, **kwargs):
                key = key_of(args, kwargs)
                prof = profilers.get(prof_key_of(args, kwargs)) if prof_key_of else None
                if prof is not None:
                    prof.enable()
                t = time.perf_counter()
                try:
                    res = fn(*args, **kwargs)
                finally:
                    dt = time.perf_counter() - t
                    if prof is not None:
                        prof.disable()
                    timings[kind][key] = timings[kind].get(key, 0.0) + dt
                if kind == "read":
                    rows_read[key] = rows_read.get(key, 0) + len(res)
                return res
            return wrapper
        return factory

    # raw file reads, wherever the engine imported read_table by name
    read_key = lambda a, k: str(a[1] if len(a) > 1 else k.get("display"))  # noqa: E731
    original_read = sources.read_table
    for mod in list(sys.modules.values()):
        if mod is not None and getattr(mod, "__name__", "").startswith("sdtm_rA") and \
                getattr(mod, "read_table", None) is original_read:
            setattr(mod, "read_table", timed("read", read_key)(original_read))
    domain_of = lambda a, k: getattr(a[0], "domain", "?")  # noqa: E731

    _wrap(conv, "prepare_domain", timed("prepare", domain_of, domain_of))
    _wrap(conv, "build_domain", timed("build", domain_of, domain_of))
    name_of = lambda a, k: str(k.get("name") or (a[1] if len(a) > 1 else "?"))  # noqa: E731
    xpt_prof = lambda a, k: "XPT"  # noqa: E731
    _wrap(xpt, "check_for_xpt", timed("xpt_check", name_of, xpt_prof))
    if hasattr(xpt, "prepare_for_xpt"):  # convert checks each dataset once, through prepare_for_xpt
        _wrap(xpt, "prepare_for_xpt", timed("xpt_check", name_of, xpt_prof))
    _wrap(xpt, "write_xpt", timed("xpt_write", name_of, xpt_prof))

    # build breakdown (no profiler): each top-level variable rule, each named derivation (also when
    # called from inside a rule), conform() and the SUPP-- build, keyed "DOMAIN variable/what"
    timings["rule"], timings["derivation"], timings["step"] = {}, {}, {}
    ctx_domain = lambda a, k: getattr(a[0], "domain", "?")  # noqa: E731
    try:
        import sdtm_rA.sdtm.build as build_mod
        _wrap(build_mod, "evaluate_rule", timed("rule", lambda a, k: f"{ctx_domain(a, k)} {a[1]}"))
        _wrap(build_mod, "conform", timed("step", lambda a, k: f"{a[0]} conform()"))
        _wrap(build_mod, "build_supp", timed("step", lambda a, k: f"{a[0]} build_supp()"))
        _wrap(build_mod, "read_sources", timed("step", lambda a, k: f"{ctx_domain(a, k)} read_sources()"))
        import sdtm_rA.sdtm.derivations as deriv_mod
        for dname, d in getattr(deriv_mod, "REGISTRY", {}).items():
            d.func = timed("derivation", lambda a, k, n=dname: f"{ctx_domain(a, k)} {n}")(d.func)
    except (ImportError, AttributeError) as exc:  # the engine changed shape: keep the rest
        print(f"    (build breakdown not available: {exc})")

    lines = []
    t_start = time.perf_counter()

    def progress(msg):
        lines.append((round(time.perf_counter() - t_start, 3), msg))
        print(f"    [{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    result = conv.convert(study, out, progress=progress, command=["bench_convert"])
    total = time.perf_counter() - t_start
    outputs = {Path(k).stem.upper(): v["rows"] for k, v in result.outputs.items()}
    report = {
        "engine_version": getattr(sdtm_rA, "__version__", "?"),
        "convert_s": total, "timings": timings, "rows_read": rows_read,
        "outputs": outputs, "progress": lines,
        "warnings": sum(1 for i in result.issues.items if i.severity == "warning"),
        "maxrss_kb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if profile and prof_out:
        report["profiles"] = {}
        for what, prof in profilers.items():
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.strip_dirs()
            tot = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
            buf.write(f"=== {what}: profiled time {tot:.1f} s (tottime sum; profiler overhead included)\n")
            buf.write("--- top by tottime (own time)\n")
            stats.sort_stats("tottime").print_stats(25)
            buf.write("--- top by cumulative time\n")
            stats.sort_stats("cumulative").print_stats(35)
            path = f"{prof_out}-{what}.txt"
            Path(path).write_text(buf.getvalue(), encoding="utf-8")
            prof.dump_stats(f"{prof_out}-{what}.prof")
            report["profiles"][what] = path
    Path(result_path).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


# =============================================================================================
# child: pyreadstat alone writing the same datasets
# =============================================================================================
def child_pyreadstat(sdtm_dir: str, result_path: str) -> int:
    import pandas as pd
    import pyreadstat

    files = sorted(Path(sdtm_dir).glob("*.xpt"))
    frames = {}
    t_read = {}
    for f in files:
        t = time.perf_counter()
        df, meta = pyreadstat.read_xport(str(f))
        # Text columns as numpy object arrays ('' for missing), as sdtm_rA.io.xpt hands them to
        # pyreadstat: pandas 3 reads them back as the 'str' dtype, which pyreadstat writes ~3x slower.
        for col in df.columns:
            if not pd.api.types.is_numeric_dtype(df[col]):
                df[col] = pd.Series(df[col].fillna("").tolist(), dtype=object, index=df.index)
        t_read[f.stem.upper()] = time.perf_counter() - t
        frames[f.stem.upper()] = (df, meta)
    t_write, cpu_write = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-pyreadstat-") as tmp:
        for name, (df, meta) in frames.items():
            labels = [meta.column_names_to_labels.get(c) or c for c in df.columns]
            t, c = time.perf_counter(), time.process_time()
            pyreadstat.write_xport(df, os.path.join(tmp, f"{name.lower()}.xpt"), file_format_version=5,
                                   table_name=name, file_label=meta.file_label or name,
                                   column_labels=labels)
            t_write[name] = time.perf_counter() - t
            cpu_write[name] = time.process_time() - c
    report = {"read_s": t_read, "write_s": t_write, "write_cpu_s": cpu_write,
              "rows": {k: len(v[0]) for k, v in frames.items()},
              "maxrss_kb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    Path(result_path).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


# =============================================================================================
# parent
# =============================================================================================
def ensure_study(study_dir: Path, subjects: int, regenerate: bool, engine: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from generate_large_study import generate, sync_config
    meta_path = study_dir / "generated.json"
    if meta_path.exists() and not regenerate:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("subjects") == subjects:
            changed = sync_config(study_dir, engine)
            print(f"study: {study_dir} (reused; generated in {meta.get('total_s')} s"
                  f"{'; study.yaml/mappings refreshed from ' + str(engine) if changed else ''})")
            return meta
    return generate(subjects, study_dir, source=engine, log=print)


TREE_PEAK_KB = {"last": 0}


def run_child(args: list[str]) -> tuple[float, int, float]:
    """-> (wall s, peak RSS of all children so far in KB, CPU s (user + system) of this child).
    The peak PSS of the child's whole process tree (forked writers and readers included) is left in
    TREE_PEAK_KB["last"]."""
    from memwatch import PeakTreeMemory
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], cwd=REPO)
    with PeakTreeMemory(proc.pid) as mem:
        proc.wait()
    TREE_PEAK_KB["last"] = mem.peak_kb
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"child {args[:2]} failed with exit code {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, after.ru_maxrss, cpu


def run_profile(work: Path, n: int, study_dir: Path, profile: list[str], report: dict, engine: Path) -> None:
    """A separate conversion with cProfile on only while `profile` domains (or XPT) are handled."""
    print(f"\nprofile run (cProfile on {', '.join(profile)} only; separate conversion)")
    prof_json = work / f".profile-n{n}.json"
    prof_prefix = work / f"profile-n{n}"
    run_child(["--child", "convert", "--study", str(study_dir), "--out", str(work / f"out-prof-n{n}"),
               "--result", str(prof_json), "--profile", ",".join(profile), "--prof-out", str(prof_prefix),
               "--engine", str(engine)])
    pr = json.loads(prof_json.read_text(encoding="utf-8"))
    report["profiles"] = pr.get("profiles", {})
    for what, path in pr.get("profiles", {}).items():
        text = Path(path).read_text(encoding="utf-8")
        head = text.split("--- top by cumulative time")[0]
        print("\n" + "\n".join(line[:150] for line in head.splitlines()[:45]))
        print(f"(full profile: {path})")


def fmt_rate(rows: float, secs: float) -> str:
    return f"{rows / secs:,.0f}" if secs > 0 else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="same as --subjects 100")
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--regenerate", action="store_true", help="generate the study even if present")
    ap.add_argument("--profile", default="", help="comma-separated domains (and/or XPT) to profile in an "
                    "extra, separate run, e.g. LB,QS,XPT")
    ap.add_argument("--no-pyreadstat", action="store_true", help="skip the pyreadstat-only write run")
    ap.add_argument("--profile-only", action="store_true", help="with --profile: skip the timed runs")
    ap.add_argument("--engine", type=Path, default=REPO,
                    help="checkout whose sdtm_rA/, mappings/ and study.yaml to benchmark (default: this one), "
                    "e.g. a `git archive` export of a commit")
    ap.add_argument("--child", choices=["convert", "pyreadstat"], help=argparse.SUPPRESS)
    ap.add_argument("--study", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--prof-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "convert":
        return child_convert(args.study, args.out, args.result,
                             [p for p in args.profile.split(",") if p], args.prof_out, str(args.engine))
    if args.child == "pyreadstat":
        return child_pyreadstat(args.out, args.result)

    n = 100 if args.quick else args.subjects
    work = args.work.resolve()
    study_dir = work / ("large" if n == 2000 else f"n{n}")
    out_dir = work / f"out-n{n}"
    report_path = work / f"report-n{n}.json"
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    engine = args.engine.resolve()
    meta = ensure_study(study_dir, n, args.regenerate, engine)
    gen_s = time.perf_counter() - t

    profile = [p.strip().upper() for p in args.profile.split(",") if p.strip()]
    if args.profile_only:
        if not profile:
            ap.error("--profile-only needs --profile")
        report = {"subjects": n, "study": str(study_dir)}
        run_profile(work, n, study_dir, profile, report, engine)
        return 0

    print(f"\nconvert {study_dir} -> {out_dir} (subprocess)")
    conv_json = work / f".convert-n{n}.json"
    load_before = os.getloadavg()
    wall, maxrss_kb, conv_cpu = run_child(["--child", "convert", "--study", str(study_dir), "--out", str(out_dir),
                                 "--result", str(conv_json), "--engine", str(engine)])
    tree_peak_kb = TREE_PEAK_KB["last"]
    conv = json.loads(conv_json.read_text(encoding="utf-8"))
    peak_gb = maxrss_kb / 1024 ** 2

    prs = None
    if not args.no_pyreadstat:
        print("\npyreadstat-only write of the same datasets (subprocess)")
        prs_json = work / f".pyreadstat-n{n}.json"
        prs_wall, _, _ = run_child(["--child", "pyreadstat", "--out", str(out_dir / "sdtm"),
                                 "--result", str(prs_json)])
        prs = json.loads(prs_json.read_text(encoding="utf-8"))
        prs["wall_s"] = prs_wall

    # ---- report ------------------------------------------------------------------------------
    tm = conv["timings"]
    outputs = conv["outputs"]
    domains = [d for d in outputs if not d.startswith("SUPP") and d != "TS"]
    domains = [d for d in ["DM", "SV", "AE", "EX", "LB", "MK", "QS"] if d in domains] + \
              [d for d in domains if d not in ("DM", "SV", "AE", "EX", "LB", "MK", "QS")]
    print(f"\n=== RESULTS: {n} subjects "
          f"(generation {meta.get('total_s', gen_s):.1f} s{' (reused)' if gen_s < 1 else ''})")
    print("\nraw file reads (inside prepare):")
    for f, s in sorted(tm["read"].items(), key=lambda kv: -kv[1]):
        rows = conv["rows_read"].get(f, 0)
        print(f"  {f:<22} {rows:>10,} rows {s:8.2f} s  {fmt_rate(rows, s):>10} rows/s")
    print(f"\n{'domain':<8} {'records':>10} {'read+check':>11} {'build':>8} {'xpt':>8} {'total':>8} "
          f"{'records/s':>11} {'pyreadstat':>11}")
    tot = {"prepare": 0.0, "build": 0.0, "xpt": 0.0}
    rows_all = 0
    per_domain = {}
    for d in domains + ["TS"]:
        rec = outputs.get(d, 0)
        prep = tm["prepare"].get(d, 0.0)
        build = tm["build"].get(d, 0.0)
        names = [d] + ([f"SUPP{d}"] if f"SUPP{d}" in outputs else [])
        xs = sum(tm["xpt_check"].get(x, 0.0) + tm["xpt_write"].get(x, 0.0) for x in names)
        pw = sum(prs["write_s"].get(x, 0.0) for x in names) if prs else float("nan")
        total = prep + build + xs
        rec_all = sum(outputs.get(x, 0) for x in names)
        per_domain[d] = {"records": rec, "records_incl_supp": rec_all, "read_check_s": prep, "build_s": build,
                         "xpt_s": xs, "total_s": total, "pyreadstat_write_s": pw}
        tot["prepare"] += prep
        tot["build"] += build
        tot["xpt"] += xs
        rows_all += rec_all
        supp = f" (+{rec_all - rec:,} SUPP)" if rec_all != rec else ""
        print(f"{d:<8} {rec:>10,} {prep:>11.2f} {build:>8.2f} {xs:>8.2f} {total:>8.2f} "
              f"{fmt_rate(rec_all, total):>11} {pw:>11.2f}{supp}")
    other = conv["convert_s"] - sum(tot.values())
    print(f"{'all':<8} {rows_all:>10,} {tot['prepare']:>11.2f} {tot['build']:>8.2f} {tot['xpt']:>8.2f} "
          f"{sum(tot.values()):>8.2f} {fmt_rate(rows_all, conv['convert_s']):>11}"
          f"{(' ' + format(sum(prs['write_s'].values()), '>11.2f')) if prs else ''}")
    print(f"(other: mappings/specs loading, hashing inputs for run.json, moving files: {other:.2f} s)")
    slow = sorted((d for d in per_domain if d != "TS"), key=lambda d: -per_domain[d]["total_s"])[:3]
    for d in slow:
        items = [(k.split(" ", 1)[1], v, "rule") for k, v in tm.get("rule", {}).items() if k.startswith(d + " ")]
        items += [(k.split(" ", 1)[1], v, "derivation") for k, v in tm.get("derivation", {}).items()
                  if k.startswith(d + " ")]
        items += [(k.split(" ", 1)[1], v, "step") for k, v in tm.get("step", {}).items() if k.startswith(d + " ")]
        if not items:
            continue
        items.sort(key=lambda x: -x[1])
        print(f"\n{d}: where the time goes (read+check {per_domain[d]['read_check_s']:.1f} s, build "
              f"{per_domain[d]['build_s']:.1f} s, xpt {per_domain[d]['xpt_s']:.1f} s); slowest steps of the build:")
        for what, secs, kind in items[:10]:
            print(f"  {secs:7.2f} s  {kind:<10} {what}")
    print("\nXPT per dataset (engine check + write | pyreadstat-only write):")
    for x in sorted(outputs, key=lambda x: -(tm["xpt_check"].get(x, 0) + tm["xpt_write"].get(x, 0)))[:6]:
        print(f"  {x:<8} {outputs[x]:>10,} rows  check {tm['xpt_check'].get(x, 0):6.2f} s  write "
              f"{tm['xpt_write'].get(x, 0):6.2f} s  | pyreadstat {prs['write_s'].get(x, 0) if prs else float('nan'):6.2f} s")
    print(f"\nconvert() in the child      {conv['convert_s']:8.1f} s")
    print(f"convert subprocess wall     {wall:8.1f} s   ({fmt_rate(rows_all, wall)} records/s overall)")
    print(f"convert subprocess CPU      {conv_cpu:8.1f} s   (user + system; load average before "
          f"{load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    tree_gb = tree_peak_kb / 1024 / 1024
    print(f"peak memory, all processes  {tree_gb:8.2f} GB   (sum of PSS of the process tree, sampled every "
          f"0.2 s) target < {MEMORY_TARGET_GB:.0f} GB: {'OK' if tree_gb < MEMORY_TARGET_GB else 'MISSED'}")
    print(f"peak memory (ru_maxrss)     {peak_gb:8.2f} GB   (largest single process)")
    ratio = None
    if prs:
        pw_total = sum(prs["write_s"].values())
        ratio = wall / pw_total if pw_total else float("inf")
        print(f"pyreadstat-only write       {pw_total:8.1f} s   (read-back, not timed: "
              f"{sum(prs['read_s'].values()):.1f} s; subprocess wall {prs['wall_s']:.1f} s)")
        pw_cpu = sum(prs.get("write_cpu_s", {}).values())
        print(f"convert / pyreadstat-only write = {ratio:.1f}   target <= {RATIO_TARGET:g}: "
              f"{'OK' if ratio <= RATIO_TARGET else 'MISSED'}   (CPU time ratio {conv_cpu:.1f} / "
              f"{pw_cpu:.1f} s = {conv_cpu / pw_cpu if pw_cpu else float('inf'):.1f})")
        print(f"  (XPT step alone: engine check+write {tot['xpt']:.1f} s vs pyreadstat {pw_total:.1f} s "
              f"= {tot['xpt'] / pw_total if pw_total else float('inf'):.1f}x)")
    report = {"subjects": n, "study": str(study_dir), "engine": str(engine), "generated": meta, "convert_wall_s": wall,
              "convert_cpu_s": conv_cpu, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "convert_s": conv["convert_s"], "peak_maxrss_gb": peak_gb, "per_domain": per_domain,
              "reads": {f: {"s": s, "rows": conv["rows_read"].get(f)} for f, s in tm["read"].items()},
              "xpt": {k: tm["xpt_check"].get(k, 0.0) + tm["xpt_write"].get(k, 0.0) for k in outputs},
              "pyreadstat": prs, "ratio": ratio, "targets": {"ratio": RATIO_TARGET, "memory_gb": MEMORY_TARGET_GB},
              "build_breakdown": {k: tm.get(k, {}) for k in ("rule", "derivation", "step")},
              "warnings": conv["warnings"], "progress": conv["progress"]}

    # ---- optional profile run ----------------------------------------------------------------
    if profile:
        run_profile(work, n, study_dir, profile, report, engine)
    report_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nreport: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
