"""A static, self-contained HTML page summarising the RA efficacy results of ADSL + ADEFF.

`summary_html(adsl, adeff)` builds the page; `write_summary(path, adsl, adeff)` writes it atomically.
The page holds: a header (title, study, subjects); one figure per score (SDAI, CDAI: each subject's
course over the analysis visits on the disease-activity bands); responders per visit (ACR20/50/70,
EULAR); each subject's activity category at baseline and at the last visit; the mean of the other
scores (pain VAS, HAQ-DI, DAS28-ESR) per visit.  A parameter missing from ADEFF gives a one-line
notice in its section instead of an error.

Only ADEFF records with ANL01FL = "Y" are used (all records when the column is absent).  The page
needs no other file (figures are SVG inlined as data: URIs) and is byte-for-byte the same for the
same input: no dates, matplotlib's defaults instead of the user's matplotlibrc, a fixed SVG id salt,
sorted subjects and visits.  matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from ..io.publish import write_atomically
from .ra_scores import CUTOFFS, activity_category

__all__ = ["summary_html", "write_summary"]

SCORES = ("SDAI", "CDAI")
RESPONSES = ("ACR20", "ACR50", "ACR70")
EULAR = ("GOOD", "MODERATE", "NONE")
OTHERS = ("PAINVAS", "HAQDI", "DAS28ESR")
REQUIRED = ("USUBJID", "PARAMCD", "AVISIT", "AVISITN", "AVAL", "AVALC")
CATEGORIES = ("REMISSION", "LOW", "MODERATE", "HIGH")
BAND_COLOURS = ("#2ca02c", "#bcbd22", "#ff7f0e", "#d62728")   # in CATEGORIES order
SVG_HASH_SALT = "sdtm_rA.adam.summary"                         # SVG ids would be random otherwise

CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left}
th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.notice{color:#8a5a00}
.REMISSION{background:#dff0d8}.LOW{background:#f4f4c8}.MODERATE{background:#fde3c8}.HIGH{background:#f8d0d0}
img{max-width:100%;display:block;margin:.5em 0}
"""


# ------------------------------------------------------------------------------------------ writing
def write_summary(path, adsl: pd.DataFrame, adeff: pd.DataFrame, *, title: str = "") -> None:
    """Write the summary page to `path`.

    The page is built completely before the file is touched, then written to a temporary file in the
    same folder and moved over `path` in one step, so a failure leaves an existing file as it was.
    """
    page = summary_html(adsl, adeff, title=title).encode("utf-8")
    write_atomically(Path(path), lambda tmp: tmp.write_bytes(page))


# ------------------------------------------------------------------------------------------ the page
def summary_html(adsl: pd.DataFrame, adeff: pd.DataFrame, title: str = "") -> str:
    """The summary page as one HTML string (see the module docstring for its sections).

    Raises ValueError when ADSL lacks USUBJID or ADEFF lacks one of `REQUIRED`.
    """
    if "USUBJID" not in adsl.columns:
        raise ValueError("ADSL has no USUBJID column")
    eff = _analysis_records(adeff)
    title = title or "RA efficacy summary"
    body = [f"<h1>{_e(title)}</h1>", _header(adsl, eff), "<h2>Disease activity over time</h2>"]
    body += [_score_section(eff, score) for score in SCORES]
    body += ["<h2>Responders per visit</h2>", _responder_section(eff),
             "<h2>Activity category per subject</h2>", _activity_section(adsl, eff),
             "<h2>Other scores: mean per visit</h2>", _others_section(eff)]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _analysis_records(adeff: pd.DataFrame) -> pd.DataFrame:
    """The ANL01FL records, text cleaned, in a fixed order (subject, parameter, visit) for stable output."""
    missing = [c for c in REQUIRED if c not in adeff.columns]
    if missing:
        raise ValueError(f"ADEFF lacks the column(s) {', '.join(missing)}")
    eff = adeff if "ANL01FL" not in adeff.columns else adeff[adeff["ANL01FL"] == "Y"]
    eff = eff.copy()
    for col in ("USUBJID", "PARAMCD", "AVISIT", "AVALC", "PARAM", "STUDYID", "AVALCAT1", "ABLFL"):
        if col in eff.columns:
            eff[col] = eff[col].where(eff[col].notna(), "").astype(str).str.strip()
    eff["AVALC"] = eff["AVALC"].str.upper()
    eff["AVAL"] = pd.to_numeric(eff["AVAL"], errors="coerce")
    eff["AVISITN"] = pd.to_numeric(eff["AVISITN"], errors="coerce")
    base = eff["ABLFL"] == "Y" if "ABLFL" in eff.columns else eff["AVISITN"] == 0
    eff["_BASE"] = base
    eff["_POST"] = ~base & (eff["AVISITN"] > 0)
    return eff.sort_values(["USUBJID", "PARAMCD", "AVISITN"], kind="mergesort").reset_index(drop=True)


def _header(adsl: pd.DataFrame, eff: pd.DataFrame) -> str:
    studies = sorted(set(eff["STUDYID"]) - {""}) if "STUDYID" in eff.columns else []
    subjects = adsl.drop_duplicates("USUBJID")
    arms = _treatment(subjects).value_counts().sort_index()
    by_arm = ", ".join(f"{_e(arm or '(none)')}: {n}" for arm, n in arms.items())
    return (f"<p>Study: {_e(', '.join(studies) or '(not given)')}<br>"
            f"Subjects: {len(subjects)}{f' ({by_arm})' if by_arm else ''}</p>")


def _score_section(eff: pd.DataFrame, score: str) -> str:
    data = eff[(eff["PARAMCD"] == score) & eff["AVAL"].notna() & eff["AVISITN"].notna()]
    if data.empty:
        return _notice(f"{score}: no analysis records in ADEFF.")
    label = _param_label(data, score)
    svg = _score_svg(data, score, label)
    return (f"<h3>{_e(label)}</h3>\n<img alt=\"{_e(label)} per subject over the visits\" "
            f"src=\"data:image/svg+xml;base64,{base64.b64encode(svg).decode('ascii')}\">")


def _responder_section(eff: pd.DataFrame) -> str:
    """Cells n/N (pct%): N subjects with a response at the visit, n responders (or in the category)."""
    rows, notices = [], []
    for paramcd, wanted in [(p, ("Y",)) for p in RESPONSES] + [("EULRESP", EULAR)]:
        data = eff[(eff["PARAMCD"] == paramcd) & eff["_POST"]]
        if data.empty:
            notices.append(_notice(f"{paramcd}: no post-baseline analysis records in ADEFF."))
            continue
        label = _param_label(data, paramcd)
        for value in wanted:
            rows.append((paramcd, label if value == "Y" else f"{label}: {value}", data, value))
    if not rows:
        return "\n".join(notices)
    visits = _visits(pd.concat([d for _, _, d, _ in rows]))
    out = ["<table id=\"responders\">", "<tr><th>PARAMCD</th><th>Response</th>"
           + "".join(f"<th>{_e(v)}</th>" for _, v in visits) + "</tr>"]
    for paramcd, label, data, value in rows:
        cells = []
        for num, _ in visits:
            at = data[(data["AVISITN"] == num) & (data["AVALC"] != "")]
            n_all = at["USUBJID"].nunique()
            n = at.loc[at["AVALC"] == value, "USUBJID"].nunique()
            cells.append(f"<td class=\"num\">{n}/{n_all} ({_percent(n, n_all)}%)</td>" if n_all
                         else "<td class=\"num\">&ndash;</td>")
        out.append(f"<tr><th>{_e(paramcd)}</th><td>{_e(label)}</td>{''.join(cells)}</tr>")
    return "\n".join(out + ["</table>"] + notices)


def _activity_section(adsl: pd.DataFrame, eff: pd.DataFrame) -> str:
    """Per subject (of ADSL and ADEFF): category at baseline and at the last visit with a value."""
    subjects = adsl.drop_duplicates("USUBJID")
    subjects = subjects.set_index(subjects["USUBJID"].astype(str).str.strip().rename(None))
    ids = sorted(set(subjects.index) | set(eff.loc[eff["PARAMCD"].isin(SCORES), "USUBJID"]))
    treatment = _treatment(subjects)
    start = (pd.to_datetime(subjects["TRTSDT"], errors="coerce") if "TRTSDT" in subjects.columns
             else pd.Series(pd.NaT, index=subjects.index))
    present = [s for s in SCORES if (eff["PARAMCD"] == s).any()]
    notices = [_notice(f"{s}: no analysis records in ADEFF.") for s in SCORES if s not in present]
    if not present:
        return "\n".join(notices)
    scores = eff[eff["PARAMCD"].isin(present) & eff["AVAL"].notna()].copy()
    cat = scores.get("AVALCAT1", pd.Series("", index=scores.index))
    for s in present:                                      # derive the category where ADEFF has none
        rows = (scores["PARAMCD"] == s) & (cat == "")
        cat = cat.mask(rows, activity_category(scores.loc[rows, "AVAL"], s).fillna(""))
    scores["_CAT"] = cat
    out = ["<table id=\"activity\">", "<tr><th>Subject</th><th>Treatment</th><th>Start</th>"
           + "".join(f"<th>{s} baseline</th><th>{s} last visit</th>" for s in present) + "</tr>"]
    for sid in ids:
        day = start.get(sid, pd.NaT)
        cells = [f"<th>{_e(sid)}</th><td>{_e(treatment.get(sid, ''))}</td>"
                 f"<td>{'' if pd.isna(day) else day.strftime('%Y-%m-%d')}</td>"]
        for s in present:
            own = scores[(scores["USUBJID"] == sid) & (scores["PARAMCD"] == s)]
            cells.append(_category_cell(own[own["_BASE"]], with_visit=False))
            cells.append(_category_cell(own[own["_POST"]], with_visit=True))
        out.append(f"<tr>{''.join(cells)}</tr>")
    return "\n".join(out + ["</table>"] + notices)


def _others_section(eff: pd.DataFrame) -> str:
    present = [p for p in OTHERS if ((eff["PARAMCD"] == p) & eff["AVAL"].notna()).any()]
    notices = [_notice(f"{p}: no analysis records in ADEFF.") for p in OTHERS if p not in present]
    if not present:
        return "\n".join(notices)
    data = eff[eff["PARAMCD"].isin(present) & eff["AVAL"].notna() & eff["AVISITN"].notna()]
    visits = _visits(data)
    out = ["<table id=\"others\">", "<tr><th>PARAMCD</th><th>Parameter</th>"
           + "".join(f"<th>{_e(v)}</th>" for _, v in visits) + "</tr>"]
    for p in present:
        own = data[data["PARAMCD"] == p]
        cells = []
        for num, _ in visits:
            vals = own.loc[own["AVISITN"] == num, "AVAL"]
            cells.append(f"<td class=\"num\">{vals.mean():.2f} (n={len(vals)})</td>" if len(vals)
                         else "<td class=\"num\">&ndash;</td>")
        out.append(f"<tr><th>{p}</th><td>{_e(_param_label(own, p))}</td>{''.join(cells)}</tr>")
    return "\n".join(out + ["</table>"] + notices)


# ------------------------------------------------------------------------------------------ the figure
def _score_svg(data: pd.DataFrame, score: str, label: str) -> bytes:
    """One line per subject over the visits, on shaded activity bands; SVG bytes without a date.

    A bare Figure on an Agg canvas leaves pyplot and the global backend alone; text from the data is
    drawn as given (no mathtext for a '$' in a subject id).
    """
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    visits = _visits(data)
    upper, remission_inclusive = CUTOFFS[score]
    top = max(float(data["AVAL"].max()) * 1.08, upper[-1] * 1.3)
    bottom = min(0.0, float(data["AVAL"].min()))
    bounds = (bottom,) + upper + (top,)
    names = [f"Remission {'≤' if remission_inclusive else '<'} {upper[0]:g}",
             f"Low ≤ {upper[1]:g}", f"Moderate ≤ {upper[2]:g}", f"High > {upper[2]:g}"]
    with matplotlib.style.context("default"), \
            matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        fig = Figure(figsize=(8, 4.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i, name in enumerate(names):
            ax.axhspan(bounds[i], bounds[i + 1], color=BAND_COLOURS[i], alpha=0.15, lw=0)
            ax.text(0.99, (bounds[i] + bounds[i + 1]) / 2, name, transform=ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize="small", color="#444")
        handles, labels = [], []
        for i, (sid, own) in enumerate(data.groupby("USUBJID", sort=True)):
            handles += ax.plot(own["AVISITN"], own["AVAL"], marker="os^Dv"[i % 5], lw=1.2)
            labels.append(sid)
        first, last = visits[0][0], visits[-1][0]
        span = (last - first) or 1.0
        ax.set_xlim(first - 0.05 * span, last + 0.3 * span)      # room on the right for the band names
        ax.set_ylim(bottom, top)
        ax.set_xticks([n for n, _ in visits], [v for _, v in visits], parse_math=False,
                      rotation=30 if len(visits) > 6 else 0)
        ax.set_xlabel("Analysis visit (weeks)")
        ax.set_ylabel(score)
        ax.set_title(label, parse_math=False)
        legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                           fontsize="small", ncols=1 + len(labels) // 25, title="Subject")
        for text in legend.get_texts():
            text.set_parse_math(False)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ helpers
def _e(value) -> str:
    """HTML-escaped text; a missing value is empty."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else html.escape(str(value))


def _notice(text: str) -> str:
    return f"<p class=\"notice\">{_e(text)}</p>"


def _percent(n: int, total: int) -> int:
    """Percentage rounded half up (2/3 → 67, 1/8 → 13) in integers: no float tie decided by chance."""
    return (200 * n + total) // (2 * total)


def _visits(data: pd.DataFrame) -> list[tuple[float, str]]:
    """The (AVISITN, AVISIT) pairs of `data` in AVISITN order, one label per visit number."""
    pairs = data.loc[data["AVISITN"].notna(), ["AVISITN", "AVISIT"]].drop_duplicates()
    pairs = pairs.sort_values(["AVISITN", "AVISIT"], kind="mergesort").drop_duplicates("AVISITN")
    return [(float(n), v) for n, v in zip(pairs["AVISITN"], pairs["AVISIT"])]


def _param_label(data: pd.DataFrame, paramcd: str) -> str:
    labels = sorted(set(data["PARAM"]) - {""}) if "PARAM" in data.columns else []
    return labels[0] if labels else paramcd


def _treatment(adsl: pd.DataFrame) -> pd.Series:
    """TRT01A, else ARM, else empty: the actual treatment when ADSL has it."""
    col = next((c for c in ("TRT01A", "ARM") if c in adsl.columns), None)
    if col is None:
        return pd.Series("", index=adsl.index, dtype=object)
    return adsl[col].where(adsl[col].notna(), "").astype(str)


def _category_cell(records: pd.DataFrame, with_visit: bool) -> str:
    """'CATEGORY (value)' of the latest record, shaded by category; with the visit for the last visit."""
    if records.empty:
        return "<td>&ndash;</td>"
    last = records.iloc[-1]                                  # records are sorted by AVISITN
    cat = last["_CAT"]
    text = f"{cat} ({last['AVAL']:.1f})" + (f", {last['AVISIT']}" if with_visit else "")
    cls = f" class=\"{cat}\"" if cat in CATEGORIES else ""
    return f"<td{cls}>{_e(text)}</td>"
