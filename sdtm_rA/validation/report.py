"""Validation reports: JSON, CSV, XLSX and HTML files, and the console summary.

`write_report(result, path)` picks the format from the extension (.json, .csv, .xlsx, .html/.htm).
Every file is written to a temporary file in the same folder and moved over the target in one step
(`os.replace`), so a reader never sees half a report and a failed write leaves the previous one.

JSON: {"summary": {...}, "findings": [{rule, severity, dataset, variable, row, usubjid, seq, value,
message}, ...]}, one finding per line, in the engine's deterministic order; `row` is the 1-based row in
the dataset file, 0 for a finding about a dataset or variable as a whole. Two runs on the same folder
give the same file apart from `summary.seconds`.
CSV: the same findings, one per line, with a header. XLSX: a Summary sheet and a Findings sheet
(autofilter, frozen header). Values come from the validated data, which anyone may have written:
text a spreadsheet would run as a formula (starting with = + - @ TAB CR or NUL, OWASP's list; not
a plain number such as -1.5) gets a leading single quote in the CSV ('=HYPERLINK(...) is shown as
text) and Excel's quote-prefix text style in the XLSX (the value itself unchanged); CSV fields
holding ',' ';' or a line break are quoted, so that no value starts a cell of its own. HTML: one self-contained page (no external resources): the summary table
first, then the findings grouped by dataset and rule, filterable by text and severity; at most
`HTML_ROWS_PER_GROUP` rows are shown per dataset and rule (the JSON/CSV reports have them all).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.publish import write_atomically
from .model import FINDING_COLUMNS, RULES, SEVERITIES

HTML_ROWS_PER_GROUP = 500
XLSX_MAX_ROWS = 1_048_575          # Excel's limit, less the header row
FORMATS = (".json", ".csv", ".xlsx", ".html", ".htm")

# Findings that no registered rule produces: the loader's (a file that cannot be read, ...).
PSEUDO_RULES = {
    "SYS0001": ("error", "Dataset file can be read and holds the dataset its name says",
                "A dataset file that cannot be read (truncated, corrupt, not the format its extension "
                "says) or that holds another dataset than its file name says cannot be validated; "
                "the file must be re-created."),
}


class ReportFormatError(ValueError):
    """The report path has an extension no writer handles, or would overwrite an input."""


# ------------------------------------------------------------------------------------------------
# spreadsheet safety (CSV and XLSX)
# ------------------------------------------------------------------------------------------------
_FORMULA_START = frozenset("=+-@\t\r\0")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def formula_like(text: str) -> bool:
    """Text a spreadsheet would run as a formula: it starts with = + - @ TAB CR or NUL (OWASP's
    list), unless it is a plain number ('-1.5', '+2'), which a spreadsheet reads as that number."""
    return bool(text) and text[0] in _FORMULA_START and not _PLAIN_NUMBER.fullmatch(text)


def spreadsheet_text(text: str) -> str:
    """A CSV field's text: formula-like text behind a single quote, as OWASP recommends."""
    return "'" + text if formula_like(text) else text


# ------------------------------------------------------------------------------------------------
# rule metadata
# ------------------------------------------------------------------------------------------------
def reference_kind(ref: str) -> str:
    """CORE-000355 → CORE, CG0014 → CG, FB1603 / FDAB018 → FDA, SD0002 / CT2001 → P21."""
    r = ref.upper()
    if r.startswith("CORE"):
        return "CORE"
    if r.startswith("CG"):
        return "CG"
    if r.startswith(("FB", "FDA")):
        return "FDA"
    return "P21"


def rule_references(r) -> dict[str, list[str]]:
    """The cross-references of a rule by kind (CORE, CG, FDA, P21), each list in the rule's order."""
    out: dict[str, list[str]] = {"CORE": [], "CG": [], "FDA": [], "P21": []}
    if r is None:
        return out
    for ref in tuple(r.core) + tuple(r.fda) + tuple(r.p21):
        kind = reference_kind(ref)
        if ref not in out[kind]:
            out[kind].append(ref)
    return out


def references_text(refs: dict[str, list[str]]) -> str:
    return "; ".join(f"{k} {', '.join(v)}" for k, v in refs.items() if v)


def rule_info(rule_id: str) -> dict:
    """Severity, title, description and references of a rule id (registered or pseudo)."""
    r = RULES.get(rule_id)
    if r is not None:
        return {"severity": r.severity, "title": r.title, "doc": r.doc, "references": rule_references(r)}
    sev, title, doc = PSEUDO_RULES.get(rule_id, ("error", "", ""))
    return {"severity": sev, "title": title, "doc": doc, "references": rule_references(None)}


# ------------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------------
def _findings(result) -> pd.DataFrame:
    f = result.findings
    if f is None or not len(f):
        return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "row" else object)
                             for c in FINDING_COLUMNS})
    return f


def _group_counts(f: pd.DataFrame) -> pd.DataFrame:
    """Findings counted per (dataset, rule, severity): one pass over the findings, small result."""
    if not len(f):
        return pd.DataFrame(columns=["dataset", "rule", "severity", "n"])
    return (f.groupby(["dataset", "rule", "severity"], sort=True, observed=True).size()
            .rename("n").reset_index())


def summarise(result) -> dict:
    """The report's summary: what was validated, against what, and counts per severity and rule."""
    from .. import __version__
    f = _findings(result)
    study = result.study
    datasets = []
    for name in sorted(study.datasets):
        ds = study.datasets[name]
        datasets.append({"name": name, "domain": ds.domain, "file": Path(ds.path).name,
                         "rows": int(len(ds.df)), "variables": len(ds.columns)})
    counts = _group_counts(f)
    by_rule = []
    for rid, grp in counts.groupby("rule", sort=True):
        info = rule_info(rid)
        sev = grp.groupby("severity")["n"].sum()
        by_rule.append({
            "rule": rid, "severity": info["severity"], "title": info["title"],
            "count": int(grp["n"].sum()),
            "by_severity": {x: int(sev[x]) for x in SEVERITIES if sev.get(x, 0)},
            "datasets": sorted(set(grp["dataset"]) - {""}),
            "references": info["references"],
        })
    sev = counts.groupby("severity")["n"].sum() if len(counts) else {}
    return {
        "tool": "sdtm_rA", "version": __version__,
        "folder": str(study.folder),
        "standard": study.standard,
        "datasets": datasets,
        "rules_run": sorted(getattr(result, "timings", {}) or {}),
        "findings": int(len(f)),
        "by_severity": {x: int(sev.get(x, 0)) for x in SEVERITIES},
        "by_rule": by_rule,
        "seconds": round(float(getattr(result, "seconds", 0.0) or 0.0), 3),
    }


def check_report_path(path) -> str:
    """The format of a report path (its extension), or ReportFormatError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ReportFormatError(f"cannot write a report as '{suffix or Path(path).name}': "
                                f"use .html, .json, .csv or .xlsx")
    return suffix


def check_report_target(path, folder) -> None:
    """ReportFormatError when writing the report at `path` would destroy or add an input of
    `folder`: a dataset file of the folder (or the file a link there points to), or a new file in
    the folder that the next validation would read as a dataset (.csv there). Links and '..' are
    resolved: what counts is the directory entry the report replaces (a link there is replaced, not
    the file it points to)."""
    from .data import READABLE
    path, folder = Path(path), Path(folder)
    if not folder.is_dir():
        return                      # load_folder says what the folder is
    target = path.parent.resolve() / path.name
    base = folder.resolve()
    inputs = {}
    for entry in base.iterdir():
        if entry.suffix.lower() in READABLE:
            inputs[entry] = inputs[entry.resolve()] = folder / entry.name
    same = [shown for p, shown in inputs.items() if p == target or (
        target.is_file() and not target.is_symlink() and p.exists() and target.samefile(p))]
    if same:                                                 # samefile: AE.CSV on a case-blind disk
        raise ReportFormatError(f"the report {path} would overwrite the dataset file {same[0]} "
                                f"that is being validated; write the report elsewhere")
    if target.parent == base and target.suffix.lower() in READABLE:
        raise ReportFormatError(f"the report {path} would be written into the validated folder "
                                f"{folder} as a {target.suffix.lower()} file, which the next "
                                f"validation would read as a dataset; write it outside {folder} "
                                f"(or as .json, .html or .xlsx)")


def write_report(result, path) -> Path:
    """Write the report in the format the extension of `path` says (.json .csv .xlsx .html .htm)."""
    suffix = check_report_path(path)
    writer = {".json": write_json, ".csv": write_csv, ".xlsx": write_xlsx,
              ".html": write_html, ".htm": write_html}[suffix]
    return writer(result, path)


# ------------------------------------------------------------------------------------------------
# JSON and CSV
# ------------------------------------------------------------------------------------------------
CHUNK = 50_000    # findings encoded at a time: bounded memory for million-finding reports


def _encoded_lines(f: pd.DataFrame, pieces) -> list[str]:
    """Per finding, the concatenation of encode(value) over `pieces` [(column, encode), ...].

    Each encode runs once per distinct value of its column (findings repeat rule, dataset, variable,
    USUBJID and message a lot); the texts are then gathered and joined column-wise (pyarrow when
    available, else numpy object arrays).
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pandas is usually installed with pyarrow
        pa = pc = None
    parts = []
    for col, encode in pieces:
        codes, uniques = pd.factorize(f[col], use_na_sentinel=False)
        texts = [encode(u) for u in uniques]
        if pa is not None:
            parts.append(pa.array(texts, type=pa.string()).take(pa.array(codes)))
        else:
            table = np.empty(len(texts), dtype=object)
            table[:] = texts
            parts.append(table[codes])
    if pa is not None:
        return pc.binary_join_element_wise(*parts, "").to_pylist()
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out.tolist()


def _prepared(f: pd.DataFrame) -> pd.DataFrame:
    """The finding columns in order, text as str and row as int."""
    f = f[FINDING_COLUMNS].copy()
    for col in FINDING_COLUMNS:
        f[col] = f[col].fillna(0).astype("int64") if col == "row" else f[col].fillna("").astype(str)
    return f


def _json_pieces():
    pieces = []
    for i, col in enumerate(FINDING_COLUMNS):
        head = ("{" if i == 0 else ",") + json.dumps(col) + ":"
        tail = "}" if i == len(FINDING_COLUMNS) - 1 else ""
        if col == "row":
            pieces.append((col, lambda v, h=head, t=tail: f"{h}{int(v)}{t}"))
        else:
            pieces.append((col, lambda v, h=head, t=tail: h + json.dumps(str(v), ensure_ascii=False) + t))
    return pieces


def _findings_json_lines(f: pd.DataFrame):
    """One JSON object per finding (keys in FINDING_COLUMNS order), in chunks of lines."""
    pieces = _json_pieces()
    for start in range(0, len(f), CHUNK):
        yield _encoded_lines(_prepared(f.iloc[start:start + CHUNK]), pieces)


def _csv_field(v: str) -> str:
    """Quoted where it holds a separator (',' or ';', which Excel uses in many locales), a quote or
    a line break, so that no part of a value becomes a cell of its own; see spreadsheet_text."""
    v = spreadsheet_text(v)
    return '"' + v.replace('"', '""') + '"' if any(ch in v for ch in ',;"\r\n') else v


def _findings_csv_lines(f: pd.DataFrame):
    """The findings as CSV lines (fields quoted only where they must be), in chunks."""
    pieces = [(col, (lambda v, s=("," if i else ""): f"{s}{int(v)}") if col == "row" else
               (lambda v, s=("," if i else ""): s + _csv_field(str(v))))
              for i, col in enumerate(FINDING_COLUMNS)]
    for start in range(0, len(f), CHUNK):
        yield _encoded_lines(_prepared(f.iloc[start:start + CHUNK]), pieces)


def _dump_summary(summary: dict) -> str:
    """The summary object, one key per line and one list item (dataset, rule) per line."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False)
    parts = []
    for key, value in summary.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n    ".join(dump(v) for v in value)
            parts.append(f"  {dump(key)}: [\n    {items}\n  ]")
        else:
            parts.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(parts) + "\n}"


def write_json(result, path) -> Path:
    f = _findings(result)
    summary = summarise(result)

    def write(tmp: Path):
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="\n") as fh:
            fh.write('{\n"summary": ')
            fh.write(_dump_summary(summary))
            fh.write(',\n"findings": [')
            first = True
            for lines in _findings_json_lines(f):
                fh.write("\n" if first else ",\n")
                fh.write(",\n".join(lines))
                first = False
            fh.write("\n]\n}\n" if not first else "]\n}\n")
    return write_atomically(path, write)


def write_csv(result, path) -> Path:
    f = _findings(result)

    def write(tmp: Path):
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
            fh.write(",".join(FINDING_COLUMNS) + "\n")
            for lines in _findings_csv_lines(f):
                fh.write("\n".join(lines))
                fh.write("\n")
    return write_atomically(path, write)


# ------------------------------------------------------------------------------------------------
# XLSX
# ------------------------------------------------------------------------------------------------
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xl_text(v) -> str:
    """Text a worksheet cell can hold: control characters shown as \\xNN, at most 32,767 chars."""
    s = str(v)
    if _ILLEGAL_XML.search(s):
        s = _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return s if len(s) <= 32767 else s[:32750] + " …(truncated)"


def write_xlsx(result, path) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    f = _findings(result)
    s = summarise(result)
    shown = min(len(f), XLSX_MAX_ROWS)

    def cell(sheet, v):
        """Formula-like text as a quote-prefixed text cell: shown as text, and still text when
        someone edits it in Excel (see formula_like)."""
        if not (isinstance(v, str) and formula_like(v)):
            return v
        c = WriteOnlyCell(sheet, value=v)
        c.data_type = "s"
        c.quotePrefix = True
        return c

    def write(tmp: Path):
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Summary")
        bold = Font(bold=True)

        def put(*values):
            ws.append([cell(ws, v) for v in values])

        def head(*values):
            cells = []
            for v in values:
                c = WriteOnlyCell(ws, value=v)
                c.font = bold
                cells.append(c)
            ws.append(cells)

        for col, width in zip("ABCDEFG", (12, 10, 10, 60, 50, 30, 12)):
            ws.column_dimensions[col].width = width
        head("SDTM validation report")
        put("Folder", _xl_text(s["folder"]))
        put("Standard", s["standard"])
        put("Datasets", _xl_text(", ".join(d["name"] for d in s["datasets"])))
        put("Rules run", len(s["rules_run"]))
        put("Seconds", s["seconds"])
        if shown < len(f):
            put("Note", f"the Findings sheet holds the first {shown:,} of {len(f):,} findings "
                        f"(Excel's row limit); the JSON and CSV reports hold them all")
        put()
        head("Severity", "Findings")
        for sev in SEVERITIES:
            put(sev, s["by_severity"][sev])
        put("total", s["findings"])
        put()
        head("Rule", "Severity", "Findings", "Title", "References", "Datasets")
        for r in s["by_rule"]:
            sev = "/".join(r["by_severity"]) or r["severity"]
            put(r["rule"], sev, r["count"], _xl_text(r["title"]), references_text(r["references"]),
                _xl_text(", ".join(r["datasets"])))

        wf = wb.create_sheet("Findings")
        widths = {"rule": 10, "severity": 9, "dataset": 10, "variable": 10, "row": 8, "usubjid": 20,
                  "seq": 7, "value": 30, "message": 100}
        for i, col in enumerate(FINDING_COLUMNS, start=1):
            wf.column_dimensions[get_column_letter(i)].width = widths.get(col, 12)
        wf.freeze_panes = "A2"
        last = get_column_letter(len(FINDING_COLUMNS))
        wf.auto_filter.ref = f"A1:{last}{shown + 1}"
        cells = []
        for col in FINDING_COLUMNS:
            c = WriteOnlyCell(wf, value=col)
            c.font = bold
            cells.append(c)
        wf.append(cells)
        sub = f[FINDING_COLUMNS].head(shown)
        text_cols = [c for c in FINDING_COLUMNS if c != "row"]
        data = {c: sub[c].astype(str).map(_xl_text).tolist() for c in text_cols}
        data["row"] = sub["row"].astype(int).tolist()
        columns = [data[c] for c in FINDING_COLUMNS]
        for values in zip(*columns):
            wf.append([cell(wf, v) for v in values])
        wb.save(tmp)
    return write_atomically(path, write)


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em 2em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{margin-top:1.5em;border-bottom:1px solid #ccc}
h3{margin:1.2em 0 .3em} .meta{color:#555}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{font-weight:600;white-space:nowrap} .error .sev,.sev.error{color:#b00020} .warning .sev,.sev.warning{color:#a15c00}
.notice .sev,.sev.notice{color:#2f5f8a}
details{margin:.4em 0 .8em;border-left:3px solid #ddd;padding-left:.7em} details.error{border-color:#b00020}
details.warning{border-color:#e0a030} details.notice{border-color:#7aa6d0}
summary{cursor:pointer} .doc{color:#444;max-width:70em;margin:.3em 0} .note{color:#a15c00;font-style:italic}
.filters{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #eee;z-index:1}
.filters input[type=search]{width:28em;padding:3px} .filters label{margin-left:1em}
td.v{font-family:ui-monospace,Consolas,monospace;white-space:pre-wrap;word-break:break-all;max-width:25em}
.hidden{display:none}
"""

_JS = """
(function(){
  var q=document.getElementById('q'), boxes=document.querySelectorAll('input.sevbox'),
      shown=document.getElementById('shown');
  function apply(){
    var text=q.value.trim().toLowerCase(), on={}, total=0;
    boxes.forEach(function(b){on[b.value]=b.checked;});
    document.querySelectorAll('section.ds').forEach(function(sec){
      var secVisible=0;
      sec.querySelectorAll('details.group').forEach(function(g){
        var key=g.getAttribute('data-key'), groupHit=text==='' || key.indexOf(text)>=0, n=0;
        g.querySelectorAll('tbody tr').forEach(function(tr){
          var ok=on[tr.getAttribute('data-sev')] &&
                 (groupHit || tr.textContent.toLowerCase().indexOf(text)>=0);
          tr.classList.toggle('hidden',!ok); if(ok){n++;}
        });
        g.classList.toggle('hidden',n===0); secVisible+=n;
      });
      sec.classList.toggle('hidden',secVisible===0); total+=secVisible;
    });
    shown.textContent=total.toLocaleString()+' finding rows shown';
  }
  q.addEventListener('input',apply);
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  apply();
})();
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _anchor(dataset: str, rule: str) -> str:
    return "g-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{dataset or 'study'}-{rule}")


def _doc_html(doc: str) -> str:
    """A rule's docstring as escaped HTML: paragraphs kept, line breaks and indentation folded."""
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc or "") if p.strip()]
    return "<br>".join(_e(p) for p in paras)


def render_html(result) -> str:
    f = _findings(result)
    s = summarise(result)
    out: list[str] = []
    w = out.append
    title = f"SDTM validation: {s['folder']}"
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    w(f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    w(f"<h1>SDTM validation report</h1>\n<p class=\"meta\">Folder <b>{_e(s['folder'])}</b> · "
      f"standard {_e(s['standard'])} · {len(s['datasets'])} datasets "
      f"({_e(', '.join(d['name'] + ' ' + format(d['rows'], ',') for d in s['datasets']))} rows) · "
      f"{len(s['rules_run'])} rules run · {s['seconds']:.1f} s · {_e(s['tool'])} {_e(s['version'])}</p>\n")

    # ---- summary ------------------------------------------------------------------------------
    w("<h2 id=\"summary\">Summary</h2>\n<table id=\"by-severity\" class=\"summary\">\n"
      "<thead><tr><th>Severity</th><th>Findings</th></tr></thead>\n<tbody>\n")
    for sev in SEVERITIES:
        w(f"<tr class=\"{sev}\"><td class=\"sev\">{sev}</td><td class=\"n\">{s['by_severity'][sev]:,}</td></tr>\n")
    w(f"<tr><td><b>total</b></td><td class=\"n\"><b>{s['findings']:,}</b></td></tr>\n</tbody></table>\n")
    if s["by_rule"]:
        w("<table id=\"by-rule\" class=\"summary\">\n<thead><tr><th>Rule</th><th>Severity</th>"
          "<th>Findings</th><th>Title</th><th>References</th><th>Datasets</th></tr></thead>\n<tbody>\n")
        for r in s["by_rule"]:
            sevs = list(r["by_severity"]) or [r["severity"]]
            links = ", ".join(f"<a href=\"#{_anchor(d, r['rule'])}\">{_e(d)}</a>" for d in r["datasets"])
            if not r["datasets"]:
                links = f"<a href=\"#{_anchor('', r['rule'])}\">(study)</a>"
            w(f"<tr class=\"{_e(sevs[0])}\"><td><b>{_e(r['rule'])}</b></td>"
              f"<td class=\"sev\">{_e('/'.join(sevs))}</td><td class=\"n\">{r['count']:,}</td>"
              f"<td>{_e(r['title'])}</td><td>{_e(references_text(r['references']))}</td>"
              f"<td>{links}</td></tr>\n")
        w("</tbody></table>\n")
    else:
        w("<p><b>No findings.</b></p>\n")

    # ---- findings -----------------------------------------------------------------------------
    if len(f):
        w("<h2 id=\"findings\">Findings by dataset and rule</h2>\n<div class=\"filters\">"
          "<input type=\"search\" id=\"q\" placeholder=\"Filter: rule, variable, USUBJID, value, message…\" "
          "aria-label=\"filter findings\">")
        for sev in SEVERITIES:
            w(f"<label class=\"sev {sev}\"><input type=\"checkbox\" class=\"sevbox\" value=\"{sev}\" checked> "
              f"{sev} ({s['by_severity'][sev]:,})</label>")
        w(" <span id=\"shown\" class=\"meta\"></span></div>\n")
        cols = ["row", "usubjid", "seq", "variable", "value", "message"]
        counts = _group_counts(f)
        positions = f.groupby(["dataset", "rule"], sort=True, observed=True).indices
        for dataset, dcounts in counts.groupby("dataset", sort=True):
            w(f"<section class=\"ds\"><h3>{_e(dataset or '(study)')}</h3>\n")
            for rid, gcounts in dcounts.groupby("rule", sort=True):
                info = rule_info(rid)
                present = set(gcounts["severity"])
                sevs = [x for x in SEVERITIES if x in present] + sorted(present - set(SEVERITIES))
                total = int(gcounts["n"].sum())
                key = f"{dataset} {rid} {info['title']}".lower()
                refs = references_text(info["references"])
                w(f"<details class=\"group {_e(sevs[0])}\" id=\"{_anchor(dataset, rid)}\" "
                  f"data-key=\"{_e(key)}\" open>\n<summary><b>{_e(rid)}</b> "
                  f"<span class=\"sev {_e(sevs[0])}\">{_e('/'.join(sevs))}</span> "
                  f"{_e(info['title'])} — {total:,} finding{'s' if total != 1 else ''}</summary>\n")
                doc = _doc_html(info["doc"])
                if doc or refs:
                    w(f"<p class=\"doc\">{doc}{' ' if doc and refs else ''}"
                      f"{('<i>' + _e(refs) + '</i>') if refs else ''}</p>\n")
                w("<table><thead><tr><th>Row</th><th>USUBJID</th><th>SEQ</th><th>Variable</th>"
                  "<th>Value</th><th>Message</th></tr></thead>\n<tbody>\n")
                pos = np.sort(positions[(dataset, rid)])[:HTML_ROWS_PER_GROUP]
                part = f.iloc[pos]
                esc = {c: part[c].astype(str).map(_e).tolist() for c in cols}
                rows_txt = ["" if r == 0 else f"{r:,}" for r in part["row"].astype(int).tolist()]
                for i, sev in enumerate(part["severity"].astype(str).map(_e).tolist()):
                    w(f"<tr class=\"{sev}\" data-sev=\"{sev}\"><td class=\"n\">{rows_txt[i]}</td>"
                      f"<td>{esc['usubjid'][i]}</td><td class=\"n\">{esc['seq'][i]}</td>"
                      f"<td>{esc['variable'][i]}</td><td class=\"v\">{esc['value'][i]}</td>"
                      f"<td>{esc['message'][i]}</td></tr>\n")
                w("</tbody></table>\n")
                if total > len(part):
                    w(f"<p class=\"note\">Showing the first {len(part):,} of {total:,} findings of "
                      f"{_e(rid)} in {_e(dataset or 'the study')}; the JSON and CSV reports list them all.</p>\n")
                w("</details>\n")
            w("</section>\n")
        w(f"<script>{_JS}</script>\n")
    w("</body>\n</html>\n")
    return "".join(out)


def write_html(result, path) -> Path:
    text = render_html(result)

    def write(tmp: Path):
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="\n") as fh:
            fh.write(text)
    return write_atomically(path, write)


# ------------------------------------------------------------------------------------------------
# console
# ------------------------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def totals_line(result) -> str:
    """'2 errors, 14 warnings, 0 notices'"""
    c = summarise_counts(result)
    return ", ".join(_plural(c[s], s) for s in SEVERITIES)


def summarise_counts(result) -> dict:
    f = _findings(result)
    vc = f["severity"].value_counts()
    return {s: int(vc.get(s, 0)) for s in SEVERITIES}


def console_summary(result, reports=(), *, width: int = 60) -> str:
    """A compact table of counts per rule (id, severity, count, title), the totals per severity and
    the report path(s)."""
    s = summarise(result)
    lines = [f"validated {len(s['datasets'])} datasets in {s['folder']} against {s['standard']}: "
             f"{len(s['rules_run'])} rules in {s['seconds']:.1f} s"]
    if s["by_rule"]:
        sevs = ["/".join(r["by_severity"]) or r["severity"] for r in s["by_rule"]]
        sw = max(len("severity"), *(len(x) for x in sevs))
        cw = max(len("count"), *(len(f"{r['count']:,}") for r in s["by_rule"]))
        lines.append(f"  {'rule':<8} {'severity':<{sw}} {'count':>{cw}}  title")
        for r, sev in zip(s["by_rule"], sevs):
            title = r["title"] if len(r["title"]) <= width else r["title"][:width - 1] + "…"
            lines.append(f"  {r['rule']:<8} {sev:<{sw}} {r['count']:>{cw},}  {title}")
    else:
        lines.append("  no findings")
    lines.append(totals_line(result))
    reports = [str(p) for p in reports]
    if reports:
        lines.append(f"report: {reports[0]}" + (f" (also {', '.join(reports[1:])})" if reports[1:] else ""))
    return "\n".join(lines)
