#!/usr/bin/env python3
"""Generate a LARGE synthetic study in the raw shape of the bundled example RAMSC01.

The output folder is a complete study folder that `sdtm_rA.sdtm.convert.convert` (or
`python cli.py convert DIR --out OUT`) converts with the bundled mappings unchanged:

    DIR/study.yaml        copied from sdtm_rA/bundled/ramsc01/study.yaml
    DIR/mappings/         copied from the top-level mappings/ (dm, sv, ex, ae, lb, qs, mk + terms/)
    DIR/raw/...           the raw EDC export, same file names, columns, encodings, separators and
                          date/number formats as sdtm_rA/bundled/ramsc01/raw/ (see its README.md)
    DIR/generated.json    parameters, row counts and timings of this run

Shape (per subject; defaults give ~1.0 M LB rows and ~1.5 M QS records at 2,000 subjects):

* sites 101 and 102 (about half each); SUBJID zero-padded text ('0001'), unique across sites
  (dm.yaml joins ic/ex/sv on SUBJID alone);
* visits: the 8 scheduled visits of study.yaml on schedule (actual day inside the window) plus
  9 unscheduled visits `UNSCHEDULED 1..9` between Day 2 and Week 24. Nine is the most the engine
  can number without collisions: VISITNUM = last planned visit + n/10, so n = 10 would equal the
  next scheduled VISITNUM;
* consent 0-10 days before screening, screening day -21..-7, infusions at Day 1 / Week 4 /
  Week 8 (10:00-10:59), lab samples at 07:30, 08:00, ... (always before the infusion);
* LB: all 9 tests the LB mapping's `tests:` dictionary knows, at every visit, 3-4 serial samples
  per visit (different LBTIM, so the LB key USUBJID/LBTESTCD/VISITNUM/LBDTC stays unique);
  site 101 ',' + decimal point, mg/L; site 102 ';' + decimal comma, mg/dL, `TNF-α`, `mm/hr`;
  a few censored values, NOT DONE rows and N/100 exact duplicate rows (LB `dedupe: report`);
* QS: HAQ-DI at every visit (qs_haq.xlsx, sheet HAQ, long, only ticked aid/help boxes) and the
  two global assessments at every visit (ga.csv, wide, dd/mm/yyyy). The QS key
  (USUBJID, QSCAT, QSTESTCD, VISITNUM) allows at most 46 HAQ items x 17 visits per subject, so the
  aid/help boxes are ticked at whatever rate reaches the requested row count (~0.85 by default);
* MK: 28 joints x (screening + the 6 efficacy visits) for every subject;
* DM, IC, EX (3 infusions), AE (1 + Poisson(2) per subject, MedDRA coding rows of the bundled
  ae.csv, some partial and ongoing).

The QS workbook: an .xlsx sheet holds at most 1,048,576 rows; at the default size the HAQ sheet has
more (~1.43 M), which Excel itself would refuse/truncate; openpyxl and pandas read it. openpyxl's
write-only mode needs ~8 s per 100,000 rows here (about 2 minutes for the default size), so the
default `--xlsx-writer fast` writes the same OOXML (inline strings, like openpyxl) directly,
reusing the bundled workbook's static parts; `--xlsx-writer openpyxl` uses openpyxl write-only.

Deterministic: numpy Generator with a fixed seed; same arguments -> same bytes.

    python bench/generate_large_study.py [--subjects 2000] [--out bench/work/large]
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import shutil
import sys
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "sdtm_rA" / "bundled" / "ramsc01"
BUNDLED_RAW = BUNDLED / "raw"
DEFAULT_OUT = REPO / "bench" / "work" / "large"

STUDYID = "RAMSC01"
CRLF = "\r\n"
MONTHS = np.array(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
SCHEDULED = [  # VISITNUM, VISIT, planned day, actual-day jitter (inside the study.yaml window)
    (1, "SCREENING", -14, None), (2, "DAY 1", 1, 0), (3, "WEEK 1", 8, 2), (4, "WEEK 4", 29, 3),
    (5, "WEEK 8", 57, 3), (6, "WEEK 12", 85, 5), (7, "WEEK 16", 113, 5), (8, "WEEK 24", 169, 5)]
N_UNSCHEDULED = 9
INFUSION_SLOTS = (1, 3, 4)              # DAY 1, WEEK 4, WEEK 8 (scheduled slot index)
MK_SLOTS = (0, 1, 3, 4, 5, 6, 7)        # screening + efficacy visits (no WEEK 1, no unscheduled)
SAMPLE_TIMES = ["07:30", "08:00", "08:30", "09:00", "09:30", "07:00", "06:30", "06:00"]
XLSX_MAX_ROWS = 1_048_576


def load_reference_tables():
    """HAQ item texts, joints, notes: the bundled generator is the single source of truth."""
    spec = importlib.util.spec_from_file_location("_ramsc01_gen", REPO / "tools" / "generate_ramsc01.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -------------------------------------------------------------------------------------------
# small vectorised helpers
# -------------------------------------------------------------------------------------------
def ymd(d: np.ndarray):
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y, m, day


def fmt_dates(d: np.ndarray, style: str = "dmy") -> np.ndarray:
    """datetime64[D] -> 'dd-MMM-yyyy' (upper-case month), 'dd/mm/yyyy' or 'UN-MMM-yyyy'."""
    uniq, inv = np.unique(d, return_inverse=True)
    y, m, day = ymd(uniq)
    if style == "dmy":
        txt = [f"{a:02d}-{MONTHS[b - 1]}-{c}" for a, b, c in zip(day, m, y)]
    elif style == "slash":
        txt = [f"{a:02d}/{b:02d}/{c}" for a, b, c in zip(day, m, y)]
    elif style == "un":
        txt = [f"UN-{MONTHS[b - 1]}-{c}" for b, c in zip(m, y)]
    else:
        raise ValueError(style)
    return np.array(txt, dtype=object)[inv.reshape(-1)].reshape(d.shape)


def fmt_numbers(values: np.ndarray, decimals: np.ndarray, comma: np.ndarray) -> np.ndarray:
    """Numbers rounded to `decimals` as text without trailing zeros ('21.5', '46'), ',' where `comma`."""
    decimals = np.broadcast_to(decimals, values.shape).astype(np.int64)
    comma = np.broadcast_to(comma, values.shape).astype(np.int64)
    scaled = np.round(values * 10.0 ** decimals).astype(np.int64)
    key = scaled * 32 + decimals * 2 + comma
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    out = []
    for k, i in zip(uniq, first):
        d, c = int(decimals[i]), bool(comma[i])
        text = f"{scaled[i] / 10 ** d:.{d}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        out.append(text.replace(".", ",") if c else text)
    return np.array(out, dtype=object)[inv]


def study_dates(day1: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Study day (no day 0; negative days count back from Day 1) -> calendar date."""
    offset = np.where(days > 0, days - 1, days)
    return day1 + offset.astype("timedelta64[D]")


def hhmm(minutes: np.ndarray, colon: bool = True) -> np.ndarray:
    uniq, inv = np.unique(minutes, return_inverse=True)
    sep = ":" if colon else ""
    return np.array([f"{m // 60:02d}{sep}{m % 60:02d}" for m in uniq], dtype=object)[inv]


def write_csv(path: Path, df: pd.DataFrame, *, sep: str = ",", encoding: str = "utf-8",
              label_row: list[str] | None = None) -> None:
    buf = io.StringIO()
    if label_row:
        buf.write(",".join(label_row) + CRLF)
    df.to_csv(buf, sep=sep, index=False, lineterminator=CRLF)
    path.write_bytes(buf.getvalue().encode(encoding))


# -------------------------------------------------------------------------------------------
# the study
# -------------------------------------------------------------------------------------------
class Generator:
    def __init__(self, n_subjects: int, seed: int, lb_per_subject: float, qs_per_subject: float):
        self.n = n_subjects
        self.rng = np.random.default_rng(seed)
        self.lb_per_subject = lb_per_subject
        self.qs_per_subject = qs_per_subject
        self.ref = load_reference_tables()
        self.counts: dict[str, int] = {}
        self._subjects()
        self._visits()

    # -- subjects and schedule ---------------------------------------------------------------
    def _subjects(self):
        n, rng = self.n, self.rng
        width = max(3, len(str(n)))
        self.subjid = np.array([f"{i + 1:0{width}d}" for i in range(n)], dtype=object)
        self.site = np.where(rng.random(n) < 0.5, "101", "102").astype(object)
        self.site[0], self.site[min(1, n - 1)] = "101", "102"
        # staggered enrolment over ~2.5 years
        start = np.datetime64("2021-01-04")
        self.day1 = start + (np.arange(n) * 900 // max(n, 1) + rng.integers(0, 7, n)).astype("timedelta64[D]")
        self.weight = rng.integers(45, 111, n)
        self.severity = rng.uniform(0.6, 2.6, n)          # drives HAQ, joints, CRP, pain
        self.response = rng.uniform(-0.2, 0.6, n)         # improvement by Week 24

    def _visits(self):
        n, rng = self.n, self.rng
        sched = np.zeros((n, len(SCHEDULED)), dtype=np.int64)
        for j, (_, _, planned, jitter) in enumerate(SCHEDULED):
            if jitter is None:                            # screening: day -21 .. -7
                sched[:, j] = rng.integers(-21, -6, n)
            else:
                sched[:, j] = planned + rng.integers(-jitter, jitter + 1, n)
        # unscheduled: 9 distinct days in Day 2 .. Week 24 - 1, never on a scheduled visit day
        cand = np.arange(2, 176)
        keys = rng.random((n, cand.size))
        keys[cand[None, :] >= sched[:, [7]]] = np.inf
        for j in range(1, len(SCHEDULED)):
            keys[cand[None, :] == sched[:, [j]]] = np.inf
        uns = np.sort(cand[np.argsort(keys, axis=1)[:, :N_UNSCHEDULED]], axis=1)
        planned = np.array([p for _, _, p, _ in SCHEDULED])
        vnums = np.array([v for v, _, _, _ in SCHEDULED])
        base = vnums[np.searchsorted(planned, uns, side="right") - 1]
        labels_s = np.array([v for _, v, _, _ in SCHEDULED], dtype=object)
        n_all = len(SCHEDULED) + N_UNSCHEDULED
        days = np.concatenate([sched, uns], axis=1)
        label = np.concatenate([np.broadcast_to(labels_s, (n, len(SCHEDULED))),
                                np.broadcast_to(np.array([f"UNSCHEDULED {k}" for k in range(1, N_UNSCHEDULED + 1)],
                                                         dtype=object), (n, N_UNSCHEDULED))], axis=1)
        vnum_txt = np.concatenate([np.broadcast_to(np.array([str(v) for v in vnums], dtype=object),
                                                   (n, len(SCHEDULED))),
                                   (base.astype(str).astype(object) + "."
                                    + np.broadcast_to(np.arange(1, N_UNSCHEDULED + 1).astype(str).astype(object),
                                                      (n, N_UNSCHEDULED)))], axis=1)
        visitdy = np.concatenate([np.broadcast_to(np.array([str(p) for p in planned], dtype=object),
                                                  (n, len(SCHEDULED))),
                                  np.full((n, N_UNSCHEDULED), "", dtype=object)], axis=1)
        slot = np.broadcast_to(np.arange(n_all), (n, n_all))
        order = np.argsort(days, axis=1, kind="stable")   # chronological per subject
        take = lambda a: np.take_along_axis(np.asarray(a), order, axis=1)  # noqa: E731
        self.v_days, self.v_label, self.v_num = take(days), take(label), take(vnum_txt)
        self.v_visitdy, self.v_slot = take(visitdy), take(slot)
        self.v_date = study_dates(self.day1[:, None], self.v_days)
        self.v_dmy = fmt_dates(self.v_date)
        self.sched_days = sched
        self.sched_date = study_dates(self.day1[:, None], sched)
        self.n_visits = n_all

    def _ident(self, subj_idx) -> dict:
        return {"STUDYID": STUDYID, "SITEID": self.site[subj_idx], "SUBJID": self.subjid[subj_idx]}

    def _pairs(self, slots=None):
        """(subject, visit) pairs in subject then chronological order, optionally only some slots."""
        s = np.repeat(np.arange(self.n), self.n_visits)
        k = np.tile(np.arange(self.n_visits), self.n)
        if slots is not None:
            keep = np.isin(self.v_slot[s, k], slots)
            s, k = s[keep], k[keep]
        return s, k

    # -- DM / IC / SV / EX / AE ---------------------------------------------------------------
    def dm_ic(self):
        n, rng = self.n, self.rng
        ic_date = self.sched_date[:, 0] - rng.integers(0, 11, n).astype("timedelta64[D]")
        birth = ic_date - rng.integers(18 * 366, 60 * 365, n).astype("timedelta64[D]")
        by, bm, bd = ymd(birth)
        iy, im, idd = ymd(ic_date)
        age = iy - by - ((im < bm) | ((im == bm) & (idd < bd))).astype(int)
        brth = fmt_dates(birth)
        u = rng.random(n)
        brth = np.where(u < 0.03, fmt_dates(birth, "un"), brth)
        brth = np.where(u > 0.99, np.array([f"UN-UNK-{y}" for y in by], dtype=object), brth)
        no_age = (rng.random(n) < 0.02) & (u >= 0.03) & (u <= 0.99)   # AGE derived from full BRTHDAT
        pick = lambda options, p=None: np.array(options, dtype=object)[rng.choice(len(options), n, p=p)]  # noqa: E731
        dm = pd.DataFrame({
            **self._ident(slice(None)), "BRTHDAT": brth,
            "AGE": np.where(no_age, "", age.astype(str)), "AGEU": np.where(no_age, "", "Years"),
            "SEX": pick(["Female", "F", "female", "Male", "M", "male"], [0.35, 0.2, 0.1, 0.2, 0.1, 0.05]),
            "ETHNIC": pick(["Not reported", "NOT HISPANIC OR LATINO", "not reported", "Not Hispanic or Latino",
                            "NOT REPORTED", "not hispanic or latino"]),
            "RACE": pick(["White", "Persian", "white", "Iranian"], [0.4, 0.3, 0.15, 0.15]),
            "COUNTRY": "IRN", "WEIGHT_SCR_KG": self.weight.astype(str), "DTHDAT": ""})
        ic = pd.DataFrame({**self._ident(slice(None)), "ICDAT": fmt_dates(ic_date),
                           "ICFVER": pick(["1.0", "2.0"], [0.2, 0.8])})
        return dm, ic

    def mh(self):
        """The RA diagnosis (3-15 years before screening; 5 % with an unknown day, 2 % year only)
        and, for a third of the subjects, one other condition."""
        n, rng = self.n, self.rng
        diag = self.sched_date[:, 0] - rng.integers(3 * 365, 15 * 365, n).astype("timedelta64[D]")
        u = rng.random(n)
        dat = fmt_dates(diag)
        dat = np.where(u < 0.05, fmt_dates(diag, "un"), dat)
        dat = np.where(u > 0.98, np.array([f"UN-UNK-{y}" for y in ymd(diag)[0]], dtype=object), dat)
        ra = pd.DataFrame({**self._ident(slice(None)), "MHSPID": "1", "MHCAT": "PRIMARY DIAGNOSIS",
                           "MHTERM": "Rheumatoid arthritis", "MHSTDAT": dat, "MHONGO": "Y"})
        other = np.flatnonzero(rng.random(n) < 1 / 3)
        extra = pd.DataFrame({**self._ident(other), "MHSPID": "2", "MHCAT": "GENERAL MEDICAL HISTORY",
                              "MHTERM": np.array(["Hypertension", "Hypothyroidism", "Iron deficiency anaemia"],
                                                 dtype=object)[rng.integers(0, 3, len(other))],
                              "MHSTDAT": fmt_dates(diag[other] + rng.integers(0, 365, len(other)).astype("timedelta64[D]")),
                              "MHONGO": "Y"})
        return pd.concat([ra, extra]).sort_values(["SUBJID", "MHSPID"], kind="mergesort")

    def sv(self):
        s, k = self._pairs()
        return pd.DataFrame({**self._ident(s), "VISITNUM": self.v_num[s, k], "VISIT": self.v_label[s, k],
                             "VISITDY": self.v_visitdy[s, k], "ACTUAL_STUDY_DAY": self.v_days[s, k].astype(str),
                             "SVSTDAT": self.v_dmy[s, k]})

    def ex(self):
        n, rng = self.n, self.rng
        s = np.repeat(np.arange(n), 3)
        slot = np.tile(np.array(INFUSION_SLOTS), n)
        date = self.sched_date[s, slot]
        dmy = fmt_dates(date)
        start = 600 + rng.integers(0, 60, s.size)
        end = start + rng.integers(30, 46, s.size)
        site101 = self.site[s] == "101"
        st = hhmm(start)
        st = np.where(~site101 & (rng.random(s.size) < 0.02), hhmm(start, colon=False), st)   # '0945'
        en = np.where(rng.random(s.size) < 0.005, "", hhmm(end))
        cells = self.weight[s].astype(str).astype(object)
        odd = rng.random(s.size) < 0.005
        cells = np.where(odd, np.array([f"{w / 10:g}E7 cells" for w in self.weight[s]], dtype=object), cells)
        vol_odd = rng.random(s.size) < 0.005
        ym = np.array([f"{y % 100:02d}{m:02d}" for y, m in zip(*ymd(date)[:2])], dtype=object)
        lot = "BMC-" + ym + "-" + np.array([f"{i % 1000:03d}" for i in range(s.size)], dtype=object)
        adj = np.where(rng.random(s.size) < 0.01, "Infusion paused 10 min (chills), restarted at half rate "
                       "and completed", "")
        return pd.DataFrame({
            **self._ident(s), "VISIT": np.array([SCHEDULED[j][1] for j in slot], dtype=object),
            "EXREFID_LABEL": np.tile(np.array(["INFUSION 1", "INFUSION 2", "INFUSION 3"], dtype=object), n),
            "EXTRT": "BM-cMSC", "EXSTDAT": dmy, "EXSTTIM": st, "EXENDAT": dmy, "EXENTIM": en, "EXDOSE": "1",
            "EXDOSU": np.where(site101, "x10^6 cells/kg", "10^6/kg"), "TOTAL_CELLS_X10E6": cells,
            "EXDOSFRM": "INJECTION, SUSPENSION", "EXROUTE": "Intravenous", "EXLOC": "Antecubital fossa",
            "EXLAT": np.where(rng.random(s.size) < 0.5, "Right", "Left"),
            "EXVAMT": np.where(vol_odd, "100 ml", "100"), "EXVAMTU": np.where(vol_odd, "", "mL"),
            "EXADJ": adj, "EXLOT": lot})

    def ae(self):
        n, rng = self.n, self.rng
        tpl = pd.read_csv(BUNDLED_RAW / "ae.csv", dtype=str, keep_default_na=False, encoding="latin-1")
        k = 1 + rng.poisson(2.0, n)
        s = np.repeat(np.arange(n), k)
        spid = np.arange(s.size) - np.repeat(np.cumsum(k) - k, k) + 1
        t = rng.integers(0, len(tpl), s.size)
        out = tpl.iloc[t].reset_index(drop=True)
        st_day = rng.integers(1, 176, s.size)
        en_day = st_day + rng.integers(0, 21, s.size)
        st_date = study_dates(self.day1[s], st_day)
        en_date = study_dates(self.day1[s], en_day)
        ongoing = rng.random(s.size) < 0.05
        partial = rng.random(s.size) < 0.03
        out["STUDYID"], out["SITEID"], out["SUBJID"] = STUDYID, self.site[s], self.subjid[s]
        out["AEYN"], out["AESPID"] = "Y", spid.astype(str)
        out["AESTDAT"] = np.where(partial, fmt_dates(st_date, "un"), fmt_dates(st_date))
        tim = hhmm(rng.integers(6 * 60, 23 * 60, s.size))
        out["AESTTIM"] = np.where(partial | (rng.random(s.size) < 0.3), "", tim)
        out["AEENDAT"] = np.where(ongoing, "", np.where(partial, fmt_dates(en_date, "un"), fmt_dates(en_date)))
        out["AEONGO"] = np.where(ongoing, "Y", "N")
        out["AEOUT"] = np.where(ongoing, "Not recovered", "Recovered")
        out["AEOUT - Code"] = np.where(ongoing, "3", "1")
        return out

    # -- LB ------------------------------------------------------------------------------------
    def lb(self):
        rng = self.rng
        t101 = pd.read_csv(BUNDLED_RAW / "lb_101.csv", dtype=str, keep_default_na=False)
        t102 = pd.read_csv(BUNDLED_RAW / "lb_102.csv", dtype=str, keep_default_na=False, sep=";")
        t101 = t101.drop_duplicates("LBTEST").reset_index(drop=True)
        t102 = t102.drop_duplicates("LBTEST").reset_index(drop=True)
        assert len(t101) == len(t102) == 9, "expected the 9 LB tests in both bundled lab files"
        ntest = len(t101)
        # (subject, visit) pairs x 3-4 serial samples x 9 tests
        s, k = self._pairs()
        mean_samples = self.lb_per_subject / (ntest * self.n_visits)
        lo = max(1, int(math.floor(mean_samples)))
        ns = lo + (rng.random(s.size) < (mean_samples - lo)).astype(np.int64)
        ns = np.minimum(ns, len(SAMPLE_TIMES))
        ps, pk = np.repeat(s, ns), np.repeat(k, ns)
        samp = np.arange(ps.size) - np.repeat(np.cumsum(ns) - ns, ns)
        rs, rk, rsamp = np.repeat(ps, ntest), np.repeat(pk, ntest), np.repeat(samp, ntest)
        test = np.tile(np.arange(ntest), ps.size)
        site101 = self.site[rs] == "101"
        nrow = rs.size
        # values in site-101 units: test order is the bundled files' order
        names = list(t101["LBTEST"])
        idx = {name: i for i, name in enumerate(names)}
        mu = np.zeros(ntest); sd = np.zeros(ntest); dec = np.zeros(ntest, dtype=np.int64)  # noqa: E702
        for name, m_, s_, d_ in [("CRP", 1.9, 0.9, 1), ("ESR", 3.4, 0.5, 0), ("RF", 3.8, 0.9, 0),
                                 ("Anti-CCP", 5.0, 1.0, 0), ("IL-10", 1.6, 0.35, 1), ("IL-17A", 3.0, 0.35, 1),
                                 ("TNF-alpha", 3.4, 0.3, 1), ("Treg (CD4+CD25+FOXP3+) % of CD4+", 1.1, 0.3, 1),
                                 ("Th17 (CD4+IL-17A+) % of CD4+", 0.9, 0.35, 1)]:
            i = idx[name]
            mu[i], sd[i], dec[i] = m_, s_, d_
        subj_eff = (self.severity[rs] - 1.6) * 0.4
        val = np.exp(mu[test] + subj_eff + sd[test] * rng.standard_normal(nrow))
        crp = test == idx["CRP"]
        val = np.where(crp & ~site101, val / 10.0, val)           # site 102 writes CRP in mg/dL
        d = np.where(crp & ~site101, dec[test] + 1, dec[test])
        res = fmt_numbers(val, d, ~site101)
        ccp_hi = (test == idx["Anti-CCP"]) & (val > 500)
        res = np.where(ccp_hi, ">500", res)
        cens = crp & (rng.random(nrow) < 0.003)
        res = np.where(cens, np.where(site101, "<5", "<0,5"), res)
        nd = rng.random(nrow) < 0.002
        res = np.where(nd, "", res)
        reasons = np.array(["Sample hemolyzed", "Insufficient sample", "Sample lost in transit"], dtype=object)
        reasnd = np.where(nd, reasons[rng.integers(0, 3, nrow)], "")
        tmpl = lambda col: np.where(site101, t101[col].to_numpy(object)[test], t102[col].to_numpy(object)[test])  # noqa: E731
        times = np.array(SAMPLE_TIMES, dtype=object)
        df = pd.DataFrame({
            **self._ident(rs), "VISIT": self.v_label[rs, rk], "LBDAT": self.v_dmy[rs, rk], "LBTIM": times[rsamp],
            "LBCAT": tmpl("LBCAT"), "LBNAM": tmpl("LBNAM"), "LBSPEC": tmpl("LBSPEC"), "LBTEST": tmpl("LBTEST"),
            "LBORRES": res, "LBORRESU": tmpl("LBORRESU"), "LBORNRLO": tmpl("LBORNRLO"),
            "LBORNRHI": tmpl("LBORNRHI"), "LBSTAT": np.where(nd, "NOT DONE", ""), "LBREASND": reasnd})
        # N/100 exact duplicate rows next to their originals (LB `dedupe: report`)
        ndup = self.n // 100
        if ndup:
            dup = np.sort(rng.choice(np.flatnonzero(~nd), ndup, replace=False))
            order = np.argsort(np.concatenate([np.arange(nrow), dup]), kind="stable")
            df = pd.concat([df, df.iloc[dup]], ignore_index=True).iloc[order].reset_index(drop=True)
        self.counts["lb_duplicates"] = int(ndup)
        is101 = (df["SITEID"] == "101").to_numpy()
        return df[is101].reset_index(drop=True), df[~is101].reset_index(drop=True)

    # -- QS (HAQ workbook + GA) ----------------------------------------------------------------
    def qs(self):
        rng, ref = self.rng, self.ref
        codes = sorted(ref.HAQ_TEXT)                                  # HAQ0101 .. HAQ0146
        assert len(codes) == 46
        difficulty = [c for _, items, _ in ref.HAQ_CATEGORIES for c in items]
        specify = {"HAQ0118": "HAQ0117", "HAQ0141": "HAQ0140"}
        boxes = [c for c in codes if c not in difficulty and c not in specify and c != "HAQ0146"]
        s, k = self._pairs()
        npair = s.size
        # tick rate that reaches the requested QS rows (HAQ rows + 2 GA records per visit)
        p_nd, p_missing, p_pain = 0.005, 0.002, 0.99
        haq_target = (self.qs_per_subject - 2 * self.n_visits) / self.n_visits
        fixed = len(difficulty) * (1 - p_missing) + p_pain
        p_tick = float(np.clip((haq_target - p_nd - (1 - p_nd) * fixed) / ((1 - p_nd) * (len(boxes) + 2)), 0, 1))
        self.counts["qs_tick_rate"] = round(p_tick, 4)
        col = {c: i for i, c in enumerate(codes)}
        pres = np.zeros((npair, len(codes)), dtype=bool)
        for c in difficulty:
            pres[:, col[c]] = rng.random(npair) >= p_missing
        pres[:, col["HAQ0146"]] = rng.random(npair) < p_pain
        for c in boxes:
            pres[:, col[c]] = rng.random(npair) < p_tick
        for spec_code, other in specify.items():
            pres[:, col[spec_code]] = pres[:, col[other]]
        not_done = rng.random(npair) < p_nd
        pres[not_done] = False
        pr, it = np.nonzero(pres)
        nd_pairs = np.flatnonzero(not_done)
        pr = np.concatenate([pr, nd_pairs])
        it = np.concatenate([it, np.full(nd_pairs.size, len(codes))])
        order = np.lexsort((it, pr))
        pr, it = pr[order], it[order]
        rs, rk = s[pr], k[pr]
        nrow = pr.size
        codes_all = np.array(codes + ["HAQALL"], dtype=object)
        texts = np.array([ref.HAQ_TEXT[c] for c in codes] + [ref.HAQ_ALL_TEXT], dtype=object)
        item = codes_all[it]
        # values
        vday = self.v_days[rs, rk]
        level = self.severity[rs] * (1 - self.response[rs] * np.clip(vday, 0, 169) / 169)
        score = np.clip(np.round(level + rng.normal(0, 0.5, nrow)), 0, 3).astype(np.int64)
        resp = np.array(ref.HAQ_RESPONSES, dtype=object)[score]
        is_diff = np.isin(item, difficulty)
        is_pain = item == "HAQ0146"
        is_spec = np.isin(item, list(specify))
        is_all = item == "HAQALL"
        pain_mm = np.clip(np.round(level * 30 + rng.normal(0, 8, nrow)), 0, 100).astype(np.int64)
        in_cm = is_pain & (rng.random(nrow) < 0.003)
        spec_texts = np.array(["Velcro shoe fasteners", "Raised bed", "Electric can opener", "Reacher grabber",
                               "Shower chair with back"], dtype=object)
        value = np.full(nrow, None, dtype=object)
        value[is_diff] = resp[is_diff]
        value[~is_diff & ~is_pain & ~is_spec & ~is_all] = "Checked"
        value[is_spec] = spec_texts[rng.integers(0, spec_texts.size, int(is_spec.sum()))]
        pain_vals = pain_mm.astype(object)                            # numeric cells (int mm / float cm)
        pain_vals[in_cm] = [round(v / 10, 1) for v in pain_mm[in_cm]]
        value[is_pain] = pain_vals[is_pain]
        unit = np.full(nrow, None, dtype=object)
        unit[is_pain] = np.where(in_cm[is_pain], "cm", "mm")
        stat = np.where(is_all, "NOT DONE", None).astype(object)
        reas = np.where(is_all, "Questionnaire not completed by the patient", None).astype(object)
        haq = {"STUDYID": np.full(nrow, STUDYID, dtype=object), "SITEID": self.site[rs],
               "SUBJID": self.subjid[rs], "VISIT": self.v_label[rs, rk], "QSDAT": self.v_dmy[rs, rk],
               "QSCAT": np.full(nrow, ref.HAQ_QSCAT, dtype=object), "ITEMCODE": item, "QSTEST": texts[it],
               "QSORRES": value, "QSORRESU": unit, "QSSTAT": stat, "QSREASND": reas}
        # GA: wide, every visit
        gday = self.v_days[s, k]
        glevel = self.severity[s] * (1 - self.response[s] * np.clip(gday, 0, 169) / 169)
        ptga = np.clip(np.round(glevel * 28 + rng.normal(0, 8, npair)), 0, 100).astype(np.int64)
        phga = np.clip(np.round(glevel * 26 + rng.normal(0, 6, npair)), 0, 100).astype(np.int64)
        ga = pd.DataFrame({**self._ident(s), "VISIT": self.v_label[s, k],
                           "GADAT": fmt_dates(self.v_date[s, k], "slash"),
                           "PTGA_MM": ptga.astype(str), "PHGA_MM": phga.astype(str)})
        return haq, is_pain, ga

    # -- MK ------------------------------------------------------------------------------------
    def mk(self):
        rng, ref = self.rng, self.ref
        s, k = self._pairs(MK_SLOTS)
        joints = [(j, side) for j in ref.JOINTS for side in ref.SIDES]
        nj = len(joints)
        rs, rk = np.repeat(s, nj), np.repeat(k, nj)
        ji = np.tile(np.arange(nj), s.size)
        vday = self.v_days[rs, rk]
        level = self.severity[rs] * (1 - self.response[rs] * np.clip(vday, 0, 169) / 169)
        p_t = np.clip(level / 5, 0.02, 0.8)
        tender = rng.random(rs.size) < p_t
        swollen = rng.random(rs.size) < p_t * 0.7
        ne = rng.random(rs.size) < 0.001
        yn = lambda b: np.where(ne, "NE", np.where(b, "Y", "N"))  # noqa: E731
        return pd.DataFrame({**self._ident(rs), "VISIT": self.v_label[rs, rk], "MKDAT": self.v_dmy[rs, rk],
                             "JOINT": np.array([j for j, _ in joints], dtype=object)[ji],
                             "SIDE": np.array([sd for _, sd in joints], dtype=object)[ji],
                             "TENDER": yn(tender), "SWOLLEN": yn(swollen)})


# -------------------------------------------------------------------------------------------
# xlsx
# -------------------------------------------------------------------------------------------
def _col_letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def write_xlsx_fast(path: Path, header: list[str], columns: dict, numeric: np.ndarray,
                    numeric_col: str, chunk: int = 100_000) -> None:
    """OOXML written directly (inline strings, as openpyxl writes them); sheet 'HAQ' = data, the
    bundled workbook's 'Notes' sheet and static parts (styles, theme, rels, docProps) reused.
    Empty (None) cells are omitted; cells of `numeric_col` where `numeric` are number cells."""
    nrow = len(next(iter(columns.values())))
    letters = [_col_letter(i) for i in range(len(header))]
    prepared = []
    for L, name in zip(letters, header):
        vals = np.asarray(columns[name], dtype=object)
        isnum = numeric if name == numeric_col else np.zeros(nrow, dtype=bool)
        text = ~pd.isna(vals) & ~isnum
        codes, uniq = pd.factorize(np.where(text, vals, ""))
        esc = np.array([escape(str(u)) for u in uniq], dtype=object)[codes]
        prepared.append((L, name, esc, text, isnum, vals))
    head = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetPr><outlinePr '
            'summaryBelow="1" summaryRight="1" /><pageSetUpPr /></sheetPr>'
            f'<dimension ref="A1:{letters[-1]}{nrow + 1}" /><sheetViews><sheetView workbookViewId="0"><pane '
            'ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen" /><selection pane="bottomLeft" '
            'activeCell="A1" sqref="A1" /></sheetView></sheetViews><sheetFormatPr baseColWidth="8" '
            'defaultRowHeight="15" /><sheetData><row r="1">'
            + "".join(f'<c r="{L}1" t="inlineStr"><is><t>{escape(h)}</t></is></c>' for L, h in zip(letters, header))
            + "</row>")
    tail = ('</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5" />'
            '</worksheet>')
    src = zipfile.ZipFile(BUNDLED_RAW / "qs_haq.xlsx")
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                z.writestr(info, src.read(info.filename))
                continue
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            with z.open(zi, "w", force_zip64=True) as fh:
                fh.write(head.encode())
                for a in range(0, nrow, chunk):
                    b = min(nrow, a + chunk)
                    r = np.arange(a + 2, b + 2).astype(str).astype(object)
                    row = '<row r="' + r + '">'
                    for L, name, esc, text, isnum, vals in prepared:
                        cell = np.where(text[a:b], ('<c r="' + L) + r + ('" t="inlineStr"><is><t>' + esc[a:b]
                                                                         + "</t></is></c>"), "")
                        nums = np.flatnonzero(isnum[a:b])
                        if nums.size:
                            cell[nums] = [f'<c r="{L}{r[i]}" t="n"><v>{vals[a + i]}</v></c>' for i in nums]
                        row = row + cell
                    row = row + "</row>"
                    fh.write("".join(row.tolist()).encode("utf-8"))
                fh.write(tail.encode())
    tmp.replace(path)


def write_xlsx_openpyxl(path: Path, header: list[str], columns: dict, notes: list[str]) -> None:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("HAQ")
    ws.append(header)
    cols = [columns[h] for h in header]
    for row in zip(*cols):
        ws.append(list(row))
    nws = wb.create_sheet("Notes")
    for line in notes:
        nws.append([line])
    wb.save(path)


# -------------------------------------------------------------------------------------------
def sync_config(out: Path, source: Path = REPO) -> bool:
    """Copy study.yaml and the mappings folder of the checkout `source` into the study folder `out`
    (the raw data do not depend on them). True if anything changed."""
    out = Path(out)
    src_study = Path(source) / "sdtm_rA" / "bundled" / "ramsc01" / "study.yaml"
    src_maps = Path(source) / "mappings"
    dst_maps = out / "mappings"
    same = (out / "study.yaml").exists() and (out / "study.yaml").read_bytes() == src_study.read_bytes()
    if same and dst_maps.is_dir():
        a = {p.relative_to(src_maps): p.read_bytes() for p in src_maps.rglob("*") if p.is_file()
             and "__pycache__" not in p.parts}
        b = {p.relative_to(dst_maps): p.read_bytes() for p in dst_maps.rglob("*") if p.is_file()}
        if a == b:
            return False
    shutil.copy2(src_study, out / "study.yaml")
    if dst_maps.exists():
        shutil.rmtree(dst_maps)
    shutil.copytree(src_maps, dst_maps, ignore=shutil.ignore_patterns("__pycache__"))
    return True


def generate(n_subjects: int = 2000, out: Path = DEFAULT_OUT, *, seed: int = 20240630,
             lb_per_subject: float = 500, qs_per_subject: float = 750, xlsx_writer: str = "fast",
             source: Path = REPO, log=print) -> dict:
    t_all = time.perf_counter()
    out = Path(out)
    raw = out / "raw"
    if out.exists():
        if any(out.iterdir()) and not (out / "generated.json").exists():
            raise SystemExit(f"{out} exists and was not made by this generator (no generated.json): "
                             "refusing to replace it")
        shutil.rmtree(out)
    raw.mkdir(parents=True)
    sync_config(out, source)
    timings: dict[str, float] = {}
    rows: dict[str, int] = {}

    def step(name):
        class _T:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *a):
                timings[name] = round(time.perf_counter() - self.t, 3)
                log(f"  {name:<28} {timings[name]:7.2f} s" + (f"  {rows[name]:>10,} rows" if name in rows else ""))
        return _T()

    log(f"generating {n_subjects} subjects into {out}")
    with step("setup (subjects, visits)"):
        g = Generator(n_subjects, seed, lb_per_subject, qs_per_subject)
    with step("dm.csv + ic.csv"):
        dm, ic = g.dm_ic()
        write_csv(raw / "dm.csv", dm, encoding="utf-8-sig")
        write_csv(raw / "ic.csv", ic)
        rows["dm.csv + ic.csv"] = len(dm)
    with step("mh.csv"):
        mh = g.mh()
        write_csv(raw / "mh.csv", mh)
        rows["mh.csv"] = len(mh)
    with step("sv.csv"):
        sv = g.sv()
        write_csv(raw / "sv.csv", sv)
        rows["sv.csv"] = len(sv)
    with step("ex.csv"):
        ex = g.ex()
        write_csv(raw / "ex.csv", ex)
        rows["ex.csv"] = len(ex)
    with step("ae.csv"):
        ae = g.ae()
        write_csv(raw / "ae.csv", ae, encoding="latin-1")
        rows["ae.csv"] = len(ae)
    with step("lb_101.csv + lb_102.csv"):
        lb1, lb2 = g.lb()
        write_csv(raw / "lb_101.csv", lb1)
        write_csv(raw / "lb_102.csv", lb2, sep=";")
        rows["lb_101.csv + lb_102.csv"] = len(lb1) + len(lb2)
    with step("qs data"):
        haq, numeric, ga = g.qs()
    with step("ga.csv"):
        write_csv(raw / "ga.csv", ga)
        rows["ga.csv"] = len(ga)
    nhaq = len(haq["ITEMCODE"])
    rows[f"qs_haq.xlsx ({xlsx_writer})"] = nhaq
    with step(f"qs_haq.xlsx ({xlsx_writer})"):
        header = list(haq)
        if xlsx_writer == "openpyxl":
            write_xlsx_openpyxl(raw / "qs_haq.xlsx", header, haq, g.ref.QS_NOTES)
        else:
            write_xlsx_fast(raw / "qs_haq.xlsx", header, haq, numeric, "QSORRES")
    if nhaq + 1 > XLSX_MAX_ROWS:
        log(f"  NOTE: sheet HAQ has {nhaq + 1:,} rows (with the header): more than an .xlsx sheet's "
            f"{XLSX_MAX_ROWS:,}; Excel would not open it whole, openpyxl/pandas read it.")
    with step("mk_joints.csv"):
        mk = g.mk()
        labels = (BUNDLED_RAW / "mk_joints.csv").read_bytes().decode("utf-8").split("\r\n")[0].split(",")
        write_csv(raw / "mk_joints.csv", mk, label_row=labels)
        rows["mk_joints.csv"] = len(mk)
    total = time.perf_counter() - t_all
    expected = {  # SDTM records the raw rows become (LB minus duplicates; QS = HAQ + 2 per GA row; MK x 2)
        "DM": len(dm), "SV": len(sv), "EX": len(ex), "AE": len(ae),
        "LB": len(lb1) + len(lb2) - g.counts["lb_duplicates"], "QS": nhaq + 2 * len(ga), "MK": 2 * len(mk)}
    meta = {"generator": "bench/generate_large_study.py", "subjects": n_subjects, "seed": seed,
            "lb_rows_per_subject": lb_per_subject, "qs_rows_per_subject": qs_per_subject,
            "xlsx_writer": xlsx_writer, "raw_rows": {
                "dm.csv": len(dm), "ic.csv": len(ic), "mh.csv": len(mh), "sv.csv": len(sv), "ex.csv": len(ex), "ae.csv": len(ae),
                "lb_101.csv": len(lb1), "lb_102.csv": len(lb2), "qs_haq.xlsx": nhaq, "ga.csv": len(ga),
                "mk_joints.csv": len(mk)},
            "expected_records": expected, "counts": g.counts,
            "file_bytes": {p.name: p.stat().st_size for p in sorted(raw.iterdir())},
            "timings_s": timings, "total_s": round(total, 3)}
    (out / "generated.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log(f"  total {total:.1f} s; expected SDTM records: "
        + ", ".join(f"{k} {v:,}" for k, v in expected.items()))
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=20240630)
    ap.add_argument("--lb-rows-per-subject", type=float, default=500,
                    help="LB raw rows per subject (default 500: ~1 M at 2,000 subjects)")
    ap.add_argument("--qs-rows-per-subject", type=float, default=750,
                    help="QS records per subject, HAQ rows + 2 GA records per visit (default 750: ~1.5 M)")
    ap.add_argument("--xlsx-writer", choices=["fast", "openpyxl"], default="fast",
                    help="fast: direct OOXML (default); openpyxl: openpyxl write-only mode (slow)")
    args = ap.parse_args(argv)
    if args.subjects < 2:
        ap.error("--subjects must be at least 2 (one per site)")
    generate(args.subjects, args.out, seed=args.seed, lb_per_subject=args.lb_rows_per_subject,
             qs_per_subject=args.qs_rows_per_subject, xlsx_writer=args.xlsx_writer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
