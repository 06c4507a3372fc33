"""Rheumatoid-arthritis endpoints: SDAI, CDAI, DAS28, activity categories, HAQ-DI, ACR20/50/70, EULAR.

Every function is vectorised: it takes pandas Series (or scalars / array-likes, which are broadcast to
the index of the first Series argument) and returns a Series.  A missing input gives a missing result
(NaN for scores, None / '' for categories and flags); nothing is imputed.  Inputs are taken in the SDTM
standard units used by this project and converted inside the function:

* joint counts TJC28 / SJC28: 0–28 (count of joints marked tender / swollen = Y, no pro-rating);
* patient / physician global assessments and pain: 0–100 mm VAS;
* CRP: mg/L (LBSTRESU); ESR: mm/h.

Out-of-range inputs (a count outside 0–28, a VAS outside 0–100, a negative CRP, an ESR <= 0) are
treated as missing.  Scores keep full precision; round only for display.  Formulas, cut-offs and
sources: ``docs/ra-endpoints.md`` (from ``ra-reference.md`` §1).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "sdai", "cdai", "das28_esr", "das28_crp", "activity_category", "CUTOFFS",
    "HAQ_CATEGORIES", "HAQ_AIDS", "haq_di", "acr_response", "ACR_COMPONENTS", "eular_response",
]

#: Tolerance used when a value is compared with a cut-off, so that float noise in a sum such as
#: 1.2 + 1.3 + 0.8 (= 3.3000000000000003) does not move a score that is exactly on a cut-off.
TOL = 1e-9


# --------------------------------------------------------------------------------------------- helpers
def _series(args: Sequence) -> list[pd.Series | None]:
    """Turn each argument into a float64 Series (None stays None); scalars take the first Series' index."""
    idx = next((a.index for a in args if isinstance(a, pd.Series)), None)
    out: list[pd.Series | None] = []
    for a in args:
        if a is None:
            out.append(None)
            continue
        if isinstance(a, pd.Series):
            s = a
        elif np.ndim(a) == 0:
            s = pd.Series([a] * (1 if idx is None else len(idx)), index=idx, dtype=object)
        else:
            s = pd.Series(list(a), index=idx, dtype=object)
        num = pd.to_numeric(s, errors="coerce")
        out.append(pd.Series(np.asarray(num.to_numpy(dtype="float64", na_value=np.nan)), index=s.index,
                             name=getattr(a, "name", None)))
    return out


def _within(s: pd.Series, lo: float, hi: float = np.inf, lo_open: bool = False) -> pd.Series:
    """s where lo <= s <= hi (lo < s when lo_open), else NaN."""
    ok = (s > lo) if lo_open else (s >= lo)
    return s.where(ok & (s <= hi))


def _joints(tjc28, sjc28):
    return _within(tjc28, 0, 28), _within(sjc28, 0, 28)


def _vas(x):
    return _within(x, 0, 100)


# --------------------------------------------------------------------------------- composite indices
def sdai(tjc28, sjc28, ptga_mm, phga_mm, crp_mg_l) -> pd.Series:
    """Simplified Disease Activity Index (Smolen 2003).

    SDAI = TJC28 + SJC28 + PtGA (0–10) + PhGA (0–10) + CRP (mg/dL).  The globals are converted from
    mm to the 0–10 scale (÷ 10) and CRP from mg/L to mg/dL (÷ 10) here, so callers pass SDTM units.

    Args:
        tjc28: tender joint count, 28 joints (0–28).
        sjc28: swollen joint count, 28 joints (0–28).
        ptga_mm: patient global assessment of disease activity, 0–100 mm VAS.
        phga_mm: physician (evaluator) global assessment of disease activity, 0–100 mm VAS.
        crp_mg_l: C-reactive protein in **mg/L** (LBSTRESN with LBSTRESU = mg/L).

    Returns:
        float Series (range 0–86), NaN where any component is missing or out of range.
    """
    t, s, pt, ph, crp = _series([tjc28, sjc28, ptga_mm, phga_mm, crp_mg_l])
    t, s = _joints(t, s)
    return (t + s + _vas(pt) / 10 + _vas(ph) / 10 + _within(crp, 0) / 10).rename("SDAI")


def cdai(tjc28, sjc28, ptga_mm, phga_mm) -> pd.Series:
    """Clinical Disease Activity Index (Aletaha 2005): TJC28 + SJC28 + PtGA (0–10) + PhGA (0–10).

    Args:
        tjc28: tender joint count, 28 joints (0–28).
        sjc28: swollen joint count, 28 joints (0–28).
        ptga_mm: patient global assessment of disease activity, 0–100 mm VAS (÷ 10 inside).
        phga_mm: physician global assessment of disease activity, 0–100 mm VAS (÷ 10 inside).

    Returns:
        float Series (range 0–76), NaN where any component is missing or out of range.
    """
    t, s, pt, ph = _series([tjc28, sjc28, ptga_mm, phga_mm])
    t, s = _joints(t, s)
    return (t + s + _vas(pt) / 10 + _vas(ph) / 10).rename("CDAI")


def das28_esr(tjc28, sjc28, esr_mm_h, gh_mm=None) -> pd.Series:
    """DAS28 with ESR (Prevoo 1995; das-score.nl formulae).

    4 variables (gh_mm given): 0.56·√TJC28 + 0.28·√SJC28 + 0.70·ln(ESR) + 0.014·GH.
    3 variables (gh_mm None):  [0.56·√TJC28 + 0.28·√SJC28 + 0.70·ln(ESR)] × 1.08 + 0.16.
    ln is the natural log.  ESR <= 0 gives NaN (ln undefined; the documented choice is "set missing",
    not "clamp to 1").  When gh_mm is given, a missing GH gives NaN (no fallback to 3 variables).

    Args:
        tjc28: tender joint count, 28 joints (0–28).
        sjc28: swollen joint count, 28 joints (0–28).
        esr_mm_h: erythrocyte sedimentation rate, mm/h (Westergren, first hour); must be > 0.
        gh_mm: patient global assessment (general health / disease activity), 0–100 mm VAS, or None
            for the 3-variable formula.

    Returns:
        float Series, NaN where an input is missing or out of range.
    """
    t, s, esr, gh = _series([tjc28, sjc28, esr_mm_h, gh_mm])
    t, s = _joints(t, s)
    core = 0.56 * np.sqrt(t) + 0.28 * np.sqrt(s) + 0.70 * np.log(_within(esr, 0, lo_open=True))
    out = core * 1.08 + 0.16 if gh is None else core + 0.014 * _vas(gh)
    return out.rename("DAS28ESR")


def das28_crp(tjc28, sjc28, crp_mg_l, gh_mm=None) -> pd.Series:
    """DAS28 with CRP (das-score.nl formulae); CRP in **mg/L** (unlike SDAI, which uses mg/dL).

    4 variables (gh_mm given): 0.56·√TJC28 + 0.28·√SJC28 + 0.36·ln(CRP + 1) + 0.014·GH + 0.96.
    3 variables (gh_mm None):  [0.56·√TJC28 + 0.28·√SJC28 + 0.36·ln(CRP + 1)] × 1.10 + 1.15.

    Args:
        tjc28: tender joint count, 28 joints (0–28).
        sjc28: swollen joint count, 28 joints (0–28).
        crp_mg_l: C-reactive protein, mg/L (>= 0).
        gh_mm: patient global assessment, 0–100 mm VAS, or None for the 3-variable formula.

    Returns:
        float Series, NaN where an input is missing or out of range.
    """
    t, s, crp, gh = _series([tjc28, sjc28, crp_mg_l, gh_mm])
    t, s = _joints(t, s)
    core = 0.56 * np.sqrt(t) + 0.28 * np.sqrt(s) + 0.36 * np.log(_within(crp, 0) + 1)
    out = core * 1.10 + 1.15 if gh is None else core + 0.014 * _vas(gh) + 0.96
    return out.rename("DAS28CRP")


# ----------------------------------------------------------------------------- activity categories
#: Cut-offs per index: (remission, low, moderate) upper bounds and whether the remission bound is
#: inclusive.  SDAI/CDAI: REMISSION <= r, LOW <= l, MODERATE <= m, HIGH > m.  DAS28: REMISSION < 2.6,
#: LOW <= 3.2, MODERATE <= 5.1, HIGH > 5.1 (ra-reference §1.2–1.4).
CUTOFFS: dict[str, tuple[tuple[float, float, float], bool]] = {
    "SDAI": ((3.3, 11.0, 26.0), True),
    "CDAI": ((2.8, 10.0, 22.0), True),
    "DAS28": ((2.6, 3.2, 5.1), False),
}


def activity_category(score, index: str, cutoffs: Sequence[float] | None = None,
                      remission_inclusive: bool | None = None, tol: float = TOL) -> pd.Series:
    """Disease-activity category REMISSION / LOW / MODERATE / HIGH.

    Args:
        score: index values (Series or scalar), unrounded.
        index: 'SDAI', 'CDAI' or 'DAS28' (case-insensitive; 'DAS28-ESR'/'DAS28-CRP' are taken as DAS28).
        cutoffs: (remission, low, moderate) upper bounds overriding the defaults in CUTOFFS, e.g.
            (2.4, 2.9, 4.6) for the alternative DAS28-CRP set (Fleischmann 2015).
        remission_inclusive: whether REMISSION is ``<=`` (SDAI, CDAI) or ``<`` (DAS28); default from
            CUTOFFS.  LOW and MODERATE upper bounds are always inclusive (``<=``).
        tol: absolute tolerance for comparisons with a cut-off (guards float noise in computed sums).

    Returns:
        object Series of 'REMISSION' / 'LOW' / 'MODERATE' / 'HIGH', None where score is missing.
    """
    key = index.upper().replace("_", "-")
    key = "DAS28" if key.startswith("DAS28") else key
    if key not in CUTOFFS:
        raise ValueError(f"index must be one of {sorted(CUTOFFS)}, got {index!r}")
    default_cuts, default_incl = CUTOFFS[key]
    rem, low, mod = tuple(cutoffs) if cutoffs is not None else default_cuts
    incl = default_incl if remission_inclusive is None else remission_inclusive
    (x,) = _series([score])
    is_rem = (x <= rem + tol) if incl else (x < rem - tol)
    conds = [x.isna(), is_rem, x <= low + tol, x <= mod + tol]
    vals = np.select(conds, [None, "REMISSION", "LOW", "MODERATE"], default="HIGH")
    return pd.Series(vals, index=x.index, dtype=object, name=f"{key}CAT").where(x.notna(), None)


# ------------------------------------------------------------------------------------------ HAQ-DI
#: HAQ-DI categories → difficulty items (CDISC QRS HAQ01 codes), ra-reference §1.5.
HAQ_CATEGORIES: dict[str, tuple[str, ...]] = {
    "DRESSING": ("HAQ0101", "HAQ0102"),
    "ARISING": ("HAQ0103", "HAQ0104"),
    "EATING": ("HAQ0105", "HAQ0106", "HAQ0107"),
    "WALKING": ("HAQ0108", "HAQ0109"),
    "HYGIENE": ("HAQ0123", "HAQ0124", "HAQ0125"),
    "REACH": ("HAQ0126", "HAQ0127"),
    "GRIP": ("HAQ0128", "HAQ0129", "HAQ0130"),
    "ACTIVITIES": ("HAQ0131", "HAQ0132", "HAQ0133"),
}

#: Aid/device and help-from-another-person items → the category they adjust (ARAMIS/CLINHAQ).
#: The "other" aids HAQ0117/HAQ0140 (+ specify HAQ0118/HAQ0141) are not mapped: recode them to a
#: specific aid code, or pass an extended ``aid_map``, when the specify text is unambiguous.
HAQ_AIDS: dict[str, str] = {
    "HAQ0114": "DRESSING", "HAQ0119": "DRESSING",
    "HAQ0116": "ARISING", "HAQ0120": "ARISING",
    "HAQ0115": "EATING", "HAQ0121": "EATING",
    "HAQ0110": "WALKING", "HAQ0111": "WALKING", "HAQ0112": "WALKING", "HAQ0113": "WALKING",
    "HAQ0122": "WALKING",
    "HAQ0134": "HYGIENE", "HAQ0135": "HYGIENE", "HAQ0137": "HYGIENE", "HAQ0139": "HYGIENE",
    "HAQ0142": "HYGIENE",
    "HAQ0138": "REACH", "HAQ0143": "REACH",
    "HAQ0136": "GRIP", "HAQ0144": "GRIP",
    "HAQ0145": "ACTIVITIES",
}


def haq_di(items: pd.DataFrame, aids_adjusted: bool = True, by: str | Sequence[str] = ("USUBJID", "VISIT"),
           min_categories: int = 6, aid_map: Mapping[str, str] | None = None,
           categories: Mapping[str, Iterable[str]] | None = None) -> pd.Series:
    """HAQ Disability Index (Fries 1980; Bruce & Fries 2003), one value per key.

    1. category score = highest item score (QSSTRESN 0–3) among the category's answered items;
    2. if ``aids_adjusted`` and any aid/device or help item of that category is ticked (a record whose
       QSSTRESC — or QSORRES when QSSTRESC is absent — is 'CHECKED', case-insensitive), a score of 0
       or 1 is raised to 2 (2 and 3 unchanged); an aid on its own does not make a category answered;
    3. HAQ-DI = sum of category scores ÷ number of categories answered;
    4. NaN when fewer than ``min_categories`` (6) categories are answered.

    Args:
        items: long QS data, one record per item, with the ``by`` columns, QSTESTCD, QSSTRESN and (for
            aids/help) QSSTRESC or QSORRES.  Item scores outside 0–3 or non-numeric are ignored.
            Records of other tests (HAQ0146 pain VAS, QSALL, ...) are ignored but still yield a key.
        aids_adjusted: True for the standard "with aids/devices" index, False to skip step 2.
        by: key column(s) identifying one questionnaire, e.g. ('USUBJID', 'VISITNUM').
        min_categories: minimum number of answered categories for a value.
        aid_map: aid/help QSTESTCD → category; default HAQ_AIDS.
        categories: category → item QSTESTCDs; default HAQ_CATEGORIES.

    Returns:
        float Series named HAQDI indexed by the key column(s) (every key present in ``items``).
    """
    keys = [by] if isinstance(by, str) else list(by)
    cats = dict(HAQ_CATEGORIES if categories is None else categories)
    aids = dict(HAQ_AIDS if aid_map is None else aid_map)
    item_cat = {code: cat for cat, codes in cats.items() for code in codes}
    df = items[keys].copy()
    code = _normalised(items["QSTESTCD"])
    score = pd.to_numeric(items["QSSTRESN"], errors="coerce") if "QSSTRESN" in items else pd.Series(np.nan, index=items.index)
    score = score.astype("float64").where(lambda v: (v >= 0) & (v <= 3))
    res_col = "QSSTRESC" if "QSSTRESC" in items else ("QSORRES" if "QSORRES" in items else None)
    checked = (_normalised(items[res_col]) == "CHECKED") if res_col else pd.Series(False, index=items.index)

    all_keys = pd.MultiIndex.from_frame(df.drop_duplicates()) if len(keys) > 1 else pd.Index(df[keys[0]].drop_duplicates())
    df["_cat"] = code.map(item_cat)
    df["_score"] = score
    cat_score = df.dropna(subset=["_cat", "_score"]).groupby(keys + ["_cat"])["_score"].max()
    if aids_adjusted and len(cat_score):
        aided = df.assign(_aidcat=code.map(aids))[checked.to_numpy()].dropna(subset=["_aidcat"])
        aided_idx = pd.MultiIndex.from_frame(aided[keys + ["_aidcat"]]).unique()
        raise_me = cat_score.index.isin(aided_idx)
        cat_score = cat_score.where(~raise_me, np.maximum(cat_score, 2.0))
    per_key = cat_score.groupby(level=keys)
    n = per_key.count()
    di = (per_key.sum() / n).where(n >= min_categories)
    if len(keys) == 1:
        di.index = pd.Index(di.index, name=keys[0])
    return di.reindex(all_keys).astype("float64").rename("HAQDI")


def _normalised(values: pd.Series) -> pd.Series:
    """Trimmed upper-case text, '' for missing; each distinct value is cleaned once (a HAQ export
    repeats a few dozen codes over a million rows)."""
    codes, uniques = pd.factorize(values)
    clean = pd.Series(uniques, dtype=object).astype(str).str.strip().str.upper().to_numpy(dtype=object)
    out = np.where(codes >= 0, clean[np.maximum(codes, 0)] if len(clean) else "", "")
    return pd.Series(out, index=values.index, dtype=object)


# --------------------------------------------------------------------------------------- ACR 20/50/70
#: ACR core set components (column names of ``base`` / ``post``); the first two are mandatory.
ACR_COMPONENTS = ("tjc28", "sjc28", "pain", "ptga", "phga", "haqdi", "crp")


def acr_response(base: pd.DataFrame, post: pd.DataFrame, level: int = 20, apr: str = "crp",
                 rel_tol: float = 1e-9, missing: str = "") -> pd.Series:
    """ACR20/50/70 response (Felson 1995), one flag per row.

    Improvement of a component = 100 × (baseline − post) / baseline, "improved" when it is
    >= ``level`` (inclusive; compared with a relative tolerance so that 10 → 8 is exactly 20 %).
    Response = improved in both TJC28 and SJC28 **and** in >= 3 of pain, ptga, phga, haqdi and the
    acute-phase reactant.  A component with baseline 0 is available but cannot improve (TJC/SJC at
    0 → 'N').  The flag is ``missing`` when TJC28 or SJC28 is unavailable (missing at baseline or
    post) or fewer than 3 of the 5 other components are available.

    Args:
        base: baseline values, one row per subject, columns tjc28, sjc28, pain (mm), ptga (mm),
            phga (mm), haqdi, and the acute-phase reactant column ``apr``.  An absent column is
            treated as missing throughout.
        post: post-baseline values, same columns, aligned with ``base`` on the index.
        level: 20, 50 or 70.
        apr: column holding the pre-specified acute-phase reactant ('crp' by default, or e.g. 'esr');
            any unit, as long as baseline and post use the same one.
        rel_tol: relative tolerance on the percentage comparison.
        missing: value returned when the response cannot be evaluated ('' = ADaM blank flag).

    Returns:
        object Series of 'Y' / 'N' / ``missing`` on the union of the two indexes.
    """
    if level not in (20, 50, 70):
        raise ValueError(f"level must be 20, 50 or 70, got {level!r}")
    idx = base.index.union(post.index)

    def col(df: pd.DataFrame, name: str) -> pd.Series:
        if name not in df:
            return pd.Series(np.nan, index=idx)
        return pd.to_numeric(df[name], errors="coerce").astype("float64").reindex(idx)

    def improved(name: str) -> tuple[pd.Series, pd.Series]:
        b, p = col(base, name), col(post, name)
        available = b.notna() & p.notna() & (b >= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = 100.0 * (b - p) / b
        imp = available & (b > 0) & (pct >= level * (1 - rel_tol))
        return available, imp

    t_av, t_imp = improved("tjc28")
    s_av, s_imp = improved("sjc28")
    others = [improved(c) for c in ("pain", "ptga", "phga", "haqdi", apr)]
    n_av = sum(a.astype(int) for a, _ in others)
    n_imp = sum(i.astype(int) for _, i in others)
    ok = t_av & s_av & (n_av >= 3)
    yes = t_imp & s_imp & (n_imp >= 3)
    out = pd.Series(np.where(yes, "Y", "N"), index=idx, dtype=object)
    return out.where(ok, missing).rename(f"ACR{level}")


# --------------------------------------------------------------------------------------------- EULAR
def eular_response(das28_now, das28_base, tol: float = TOL) -> pd.Series:
    """EULAR response (van Gestel 1996) from current DAS28 and baseline DAS28.

    improvement = baseline − current.
    GOOD: current <= 3.2 and improvement > 1.2.
    NONE: improvement <= 0.6, or improvement <= 1.2 with current > 5.1.
    MODERATE: everything else (improvement > 1.2 with current > 3.2, or 0.6 < improvement <= 1.2 with
    current <= 5.1).

    Args:
        das28_now: DAS28 at the post-baseline visit (unrounded; ESR or CRP version, same as baseline).
        das28_base: DAS28 at baseline.
        tol: absolute tolerance for the comparisons with 0.6 / 1.2 / 3.2 / 5.1 (float noise in the
            difference, e.g. 4.5 − 3.3 = 1.2000000000000002 counts as 1.2).

    Returns:
        object Series 'GOOD' / 'MODERATE' / 'NONE', None where either value is missing.
    """
    now, base = _series([das28_now, das28_base])
    imp = base - now
    big = imp > 1.2 + tol
    mid = (imp > 0.6 + tol) & ~big
    low_now = now <= 3.2 + tol
    high_now = now > 5.1 + tol
    vals = np.select([now.isna() | base.isna(), big & low_now, big, mid & ~high_now],
                     [None, "GOOD", "MODERATE", "MODERATE"], default="NONE")
    return pd.Series(vals, index=now.index, dtype=object, name="EULRESP").where(now.notna() & base.notna(), None)
