"""Throw-away studies for engine tests.

`make_study(tmp_path, study_yaml, mappings, raw)` writes a study folder with a sensible default
`study.yaml` (one arm, a three-visit schedule, epochs, a trial summary parameter), so that each test
writes only the mapping and the few raw rows it is about.  The helpers below build the study in
memory (`build`), expect a failure (`conversion_error`), run the real command line (`run_cli`) and
read values out of the resulting data frames (`col`, `by`).

Everything here is plain data and file writing: no expected value is computed by the engine.
"""
from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "cli.py"

STUDYID = "TST01"

# The default study: one arm, SCREENING (day -14) / DAY 1 (day 1) / WEEK 2 (day 15), epochs that
# start at DM dates.  Tests that need more (an epoch starting at a visit) pass their own.
DEFAULT_STUDY: dict = {
    "study": {"id": STUDYID, "title": "Engine test study", "xpt_timestamp": "2024-01-02T03:04:05"},
    "standards": {"sdtmig": "3.4", "ct": "2025-03-28"},
    "arms": [{"armcd": "TRT", "arm": "Drug X 5 mg"}],
    "visits": [
        {"visitnum": 1, "visit": "SCREENING", "day": -14, "window": [-28, -1], "epoch": "SCREENING",
         "aliases": ["SCR"]},
        {"visitnum": 2, "visit": "DAY 1", "day": 1, "epoch": "TREATMENT", "aliases": ["D1"]},
        {"visitnum": 3, "visit": "WEEK 2", "day": 15, "epoch": "FOLLOW-UP", "aliases": ["W2"]},
    ],
    "unscheduled": {"pattern": "UNSCHEDULED {n}"},
    "epochs": [
        {"epoch": "SCREENING", "start": "RFICDTC"},
        {"epoch": "TREATMENT", "start": "RFXSTDTC"},
    ],
    "trial_summary": [
        {"parmcd": "TPHASE", "value": "Phase I Trial"},
        {"parmcd": "SPONSOR", "value": "Test Sponsor"},
    ],
}


def make_study(tmp_path: Path, study_yaml: str | dict | None = None,
               mappings: dict[str, str] | None = None,
               raw: dict[str, str | bytes] | None = None, *, name: str = "study") -> Path:
    """Write a study folder under `tmp_path/name` and return it.

    study_yaml: None → DEFAULT_STUDY; a dict → DEFAULT_STUDY with those top-level keys replaced
      (a key set to None is removed); a str → written verbatim.
    mappings: {"dm": yaml text} (or "dm.yaml") → mappings/dm.yaml, written verbatim.
    raw: {"raw/dm.csv": text or bytes} → paths relative to the study folder; text is written as
      UTF-8 with the newlines exactly as given, bytes are written verbatim.
    """
    folder = Path(tmp_path) / name
    (folder / "mappings").mkdir(parents=True, exist_ok=True)
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    if isinstance(study_yaml, str):
        text = study_yaml
    else:
        config = copy.deepcopy(DEFAULT_STUDY)
        for key, value in (study_yaml or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=False)
    (folder / "study.yaml").write_text(text, encoding="utf-8", newline="")
    for mname, mtext in (mappings or {}).items():
        fname = mname if mname.endswith(".yaml") else f"{mname.lower()}.yaml"
        (folder / "mappings" / fname).write_text(mtext, encoding="utf-8", newline="")
    for rel, content in (raw or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return folder


def mapping(domain: str, sources: dict[str, str], variables: dict[str, str], **top: str) -> str:
    """A mapping file, one rule per line (so that line numbers in tests are easy to count).

    sources/variables: name → flow-YAML text of the source / rule; top: extra top-level keys
    (tests=..., keys=..., sort=...) as YAML text placed between sources and variables.
    Line 1 is `domain:`, line 2 `sources:`, then one line per source, then the `top` blocks, then
    `variables:` and one line per variable.
    """
    lines = [f"domain: {domain}", "sources:"]
    lines += [f"  {alias}: {spec}" for alias, spec in sources.items()]
    for key, text in top.items():
        block = text.strip("\n")
        if "\n" in block:
            lines.append(f"{key}:")
            lines += ["  " + ln for ln in block.splitlines()]
        else:
            lines.append(f"{key}: {block}")
    lines.append("variables:")
    lines += [f"  {var}: {rule}" for var, rule in variables.items()]
    return "\n".join(lines) + "\n"


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line of `text` containing `needle`."""
    for i, ln in enumerate(text.splitlines(), start=1):
        if needle in ln:
            return i
    raise AssertionError(f"{needle!r} not in text")


# ---------------------------------------------------------------- a standard DM

# Reference dates of the standard DM, computed by hand from DM_RAW below:
#   101: RFICDTC 2021-03-01, RFSTDTC = RFXSTDTC 2021-03-10T09:30, RFXENDTC 2021-03-24T10:00
#   102: RFICDTC 2021-03-02, RFSTDTC = RFXSTDTC 2021-03-12 (dose time missing), DTHDTC 2021-06-30
#   103: RFICDTC 2021-03-05, RFSTDTC = RFXSTDTC 2021-03-15T08:00
DM_RAW = {
    "raw/dm.csv": (
        "SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT\n"
        "101,S01,M,1980-05-20,2021-03-01,\n"
        "102,S01,F,1975-03-02,2021-03-02,2021-06-30\n"
        "103,S02,F,1990-07-14,2021-03-05,\n"
    ),
    "raw/ex.csv": (
        "SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
        "101,2021-03-10,09:30,5\n"
        "101,2021-03-24,10:00,5\n"
        "102,2021-03-12,,5\n"
        "103,2021-03-15,08:00,5\n"
    ),
}

_EX = "source: ex, date: EXSTDAT, time: EXSTTIM, format: yyyy-MM-dd, time_format: \"HH:mm\""


def dm_variables(**override: str | None) -> dict[str, str]:
    """The rules of the standard DM mapping; keyword arguments replace (or, with None, drop) rules."""
    rules = {
        "USUBJID": '{template: "{STUDYID}-{dm.SUBJID}"}',
        "SUBJID": "{from: dm.SUBJID}",
        "RFSTDTC": "{first_date: {%s}}" % _EX,
        "RFENDTC": "{last_date: {%s}}" % _EX,
        "RFXSTDTC": "{first_date: {%s}}" % _EX,
        "RFXENDTC": "{last_date: {%s}}" % _EX,
        "RFICDTC": "{date: dm.ICDAT, format: yyyy-MM-dd}",
        "DTHDTC": "{date: dm.DTHDAT, format: yyyy-MM-dd}",
        "DTHFL": "{derive: flag_if_present, of: DTHDTC}",
        "SITEID": "{from: dm.SITE}",
        "BRTHDTC": "{date: dm.BRTHDAT, format: yyyy-MM-dd}",
        "AGE": "{derive: age, birth: BRTHDTC, reference: RFICDTC}",
        "AGEU": "{constant: YEARS, codelist: AGEU}",
        "SEX": "{from: dm.SEX, codelist: SEX}",
        "ARMCD": "{derive: planned_arm_code}",
        "ARM": "{derive: arm_name, armcd: ARMCD}",
        "ACTARMCD": "{derive: actual_arm_code, planned: ARMCD, exposure: ex}",
        "ACTARM": "{derive: arm_name, armcd: ACTARMCD}",
        "COUNTRY": "{constant: USA}",
    }
    for var, rule in override.items():
        if rule is None:
            rules.pop(var, None)
        else:
            rules[var] = rule
    return rules


def dm_mapping(**override: str | None) -> str:
    return mapping("DM", {"dm": "{file: raw/dm.csv}", "ex": "{file: raw/ex.csv, key: [SUBJID]}"},
                   dm_variables(**override))


def minimal_dm(source: str = "{file: raw/dm.csv}", **extra: str | None) -> str:
    """A DM mapping with only the Req variables (SUBJID from dm.SUBJID) plus `extra` rules."""
    rules = {
        "USUBJID": '{template: "{STUDYID}-{dm.SUBJID}"}',
        "SUBJID": "{from: dm.SUBJID}",
        "SITEID": '{constant: "01"}',
        "SEX": "{constant: U}",
        "COUNTRY": "{constant: USA}",
    }
    for var, rule in extra.items():
        if rule is None:
            rules.pop(var, None)
        else:
            rules[var] = rule
    return mapping("DM", {"dm": source}, rules)


def cm_mapping(source: str = "{file: raw/cm.csv}", *, sources: dict[str, str] | None = None,
               **extra: str | None) -> str:
    """A CM mapping (CM has no Exp variables): USUBJID, CMSEQ by CMTRT, CMTRT from cm.TRT, + extra."""
    rules = {
        "USUBJID": '{template: "{STUDYID}-{cm.SUBJID}"}',
        "CMSEQ": "{derive: seq, order: [CMTRT]}",
        "CMTRT": "{from: cm.TRT}",
    }
    for var, rule in extra.items():
        if rule is None:
            rules.pop(var, None)
        else:
            rules[var] = rule
    srcs = {"cm": source}
    srcs.update(sources or {})
    return mapping("CM", srcs, rules)


# ---------------------------------------------------------------- running the engine

def build(folder: Path):
    """Build every dataset in memory; returns the ConversionResult."""
    from sdtm_rA.sdtm.convert import build_study
    from sdtm_rA.sdtm.study import load_study
    return build_study(load_study(Path(folder)))


def conversion_error(folder: Path, out: Path | None = None):
    """Run the full conversion and return the ConversionError it must raise."""
    from sdtm_rA.sdtm.convert import convert
    from sdtm_rA.errors import ConversionError
    out = out or Path(folder).parent / "out-failed"
    with pytest.raises(ConversionError) as info:
        convert(folder, out, command=["test"])
    return info.value


def error_text(exc) -> str:
    return "\n".join(str(i) for i in exc.issues)


def run_cli(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run([sys.executable, str(CLI), "convert", str(folder), "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=120)


def start_cli(folder: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CLI), "convert", str(folder), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ---------------------------------------------------------------- reading results

def is_missing(v) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd
        if v is pd.NA or v is pd.NaT:
            return True
    except Exception:  # pragma: no cover
        pass
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v == ""


def norm(v):
    """'' for every kind of missing value, else the value itself (numbers stay numbers)."""
    if is_missing(v):
        return ""
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars
        v = v.item()
    return v


def col(df, var: str) -> list:
    """The values of a variable in row order, missing values as ''."""
    return [norm(v) for v in df[var].tolist()]


def by(df, key: str, var: str) -> dict:
    """{value of key: value of var}; the key must be unique."""
    keys = col(df, key)
    assert len(set(keys)) == len(keys), f"{key} is not unique: {keys}"
    return dict(zip(keys, col(df, var)))


def records(df, *variables: str) -> list[tuple]:
    return [tuple(norm(v) for v in row) for row in df[list(variables)].itertuples(index=False)]


_LINES = re.compile(r"\blines?\s+((?:\d+(?:\s*(?:,|and)\s*)?)+)", re.IGNORECASE)


_RAW_FILE_LINE = re.compile(r"\.(?:csv|tsv|txt|xlsx|sas7bdat|xpt):(\d+)\b", re.IGNORECASE)


def lines_in(text: str) -> set[int]:
    """Every raw line a message names: numbers after 'line'/'lines', and 'raw/x.csv:12' forms."""
    found: set[int] = set()
    for m in _LINES.finditer(text):
        found |= {int(x) for x in re.findall(r"\d+", m.group(1))}
    found |= {int(x) for x in _RAW_FILE_LINE.findall(text)}
    return found


def lines_after(text: str, value: str) -> set[int]:
    """The raw lines listed first after `value` in `text` (messages may list several values)."""
    pos = text.find(value)
    assert pos >= 0, f"{value!r} not in:\n{text}"
    m = _LINES.search(text, pos + len(value))
    assert m, f"no line list after {value!r} in:\n{text}"
    return {int(x) for x in re.findall(r"\d+", m.group(1))}
