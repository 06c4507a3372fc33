"""Issue 9, SDTM side: wrong results found on the way (§5) and nothing accepted silently (§1).

Each test failed before its fix. Expected values are worked out by hand in the comments; raw lines
are counted with line 1 the header; mapping lines follow `studykit.mapping` (1 `domain:`,
2 `sources:`, one line per source, the top-level blocks, `variables:`, one line per variable).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402
from studykit import by, col  # noqa: E402
from test_integrity_values import _lab, errors_of  # noqa: E402

U = "TST01-"

# ============================================================== §5 decimals: also rounds the ranges

GLUCOSE = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: Glucose, testcd: GLUC, unit: mmol/L, convert: {mg/dL: 0.0555}, decimals: 1}
  - {match: CRP, testcd: CRP, unit: mg/L, convert: {mg/dL: 10}}
"""
RANGE_RULES = dict(
    LBORNRLO="{from: lab.LO}", LBORNRHI="{from: lab.HI}",
    LBSTNRLO="{derive: standard_range, of: LBORNRLO, unit: LBORRESU}",
    LBSTNRHI="{derive: standard_range, of: LBORNRHI, unit: LBORRESU}",
    LBNRIND="{derive: reference_range_indicator, result: LBSTRESN, low: LBSTNRLO, high: LBSTNRHI}")


def test_decimals_round_the_converted_range_like_the_result(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT;LO;HI\n"
           "L1;101;Glucose;110;mg/dL;60;110\n"     # 110 x 0.0555 = 6.105 -> 6.1; range 3.33 -> 3.3, 6.105 -> 6.1
           "L2;101;Glucose;111;mg/dL;60;110\n"     # 6.1605 -> 6.2 > 6.1: HIGH
           "L3;101;Glucose;58;mg/dL;60;110\n"      # 3.219 -> 3.2 < 3.3: LOW
           "L4;101;CRP;0.07;mg/dL;0.07;1\n")       # no decimals: 0.07 x 10 = 0.7000000000000001 in
    #                                                binary; the result is written 0.7, so is the limit
    lb = sk.build(_lab(tmp_path, raw, GLUCOSE, **RANGE_RULES)).datasets["LB"]
    assert by(lb, "LBSPID", "LBSTRESN") == {"L1": 6.1, "L2": 6.2, "L3": 3.2, "L4": 0.7}
    assert by(lb, "LBSPID", "LBSTNRLO") == {"L1": 3.3, "L2": 3.3, "L3": 3.3, "L4": 0.7}
    assert by(lb, "LBSPID", "LBSTNRHI") == {"L1": 6.1, "L2": 6.1, "L3": 6.1, "L4": 10}
    assert by(lb, "LBSPID", "LBNRIND") == {"L1": "NORMAL", "L2": "HIGH", "L3": "LOW", "L4": "NORMAL"}


def test_decimals_never_round_a_range_limit_to_zero(tmp_path):
    raw = ("SPID;SUBJID;TEST;RESULT;UNIT;LO;HI\n"
           "L1;101;Glucose;100;mg/dL;0.5;110\n")   # 0.5 x 0.0555 = 0.02775, 0 at 1 decimal
    assert errors_of(_lab(tmp_path, raw, GLUCOSE, **RANGE_RULES)) == [
        "error: mappings/lb.yaml:23: LB: LBSTNRLO: '0.5' is 0.02775 in the standard unit, which "
        "`decimals: 1` would round to 0 (raw/lab.csv line 2)"]


# ============================================================== §5 actual arm: ARMNRS, not NOTTRT

ARM_RAW = {"raw/dm.csv": "SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT\n"
                         "101,S01,M,1980-05-20,2021-03-01,\n"
                         "102,S01,F,1975-03-02,2021-03-02,\n"
                         "103,S02,F,1990-07-14,2021-03-05,\n",
           "raw/ex.csv": "SUBJID,EXSTDAT,EXSTTIM,EXDOSE\n"
                         "101,2021-03-10,09:30,5\n"}   # 102 and 103 never treated


def test_an_untreated_subject_has_empty_actual_arm_and_armnrs(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(
        ARMNRS="{derive: arm_null_reason, planned: ARMCD, actual: ACTARMCD}")}, raw=ARM_RAW)
    dm = sk.build(folder).datasets["DM"]
    assert col(dm, "ARMCD") == ["TRT", "TRT", "TRT"]
    assert col(dm, "ACTARMCD") == ["TRT", "", ""]
    assert col(dm, "ACTARM") == ["Drug X 5 mg", "", ""]
    assert col(dm, "ARMNRS") == ["", "ASSIGNED, NOT TREATED", "ASSIGNED, NOT TREATED"]


def test_an_untreated_subject_without_armnrs_says_what_to_add(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping()}, raw=ARM_RAW)
    # 1 domain, 2 sources, 3 dm, 4 ex, 5 variables, 6.. the rules: ACTARMCD is the 17th → line 22
    assert errors_of(folder) == [
        "error: mappings/dm.yaml:22: DM: ACTARMCD: subjects assigned to an arm but never treated "
        "(raw/dm.csv lines 3, 4): SDTMIG 3.4 leaves ACTARMCD and ACTARM empty and gives the reason in "
        "ARMNRS; add `ARMNRS: {derive: arm_null_reason, planned: ARMCD, actual: ACTARMCD}` to the mapping"]


def test_a_pseudo_arm_code_is_refused(tmp_path):
    raw = dict(ARM_RAW)
    raw["raw/dm.csv"] = ("SUBJID,SITE,SEX,BRTHDAT,ICDAT,DTHDAT,ARM\n"
                         "101,S01,M,1980-05-20,2021-03-01,,TRT\n"
                         "102,S01,F,1975-03-02,2021-03-02,,SCRNFAIL\n")
    folder = sk.make_study(tmp_path, mappings={"dm": sk.dm_mapping(
        ARMCD="{from: dm.ARM}", ACTARMCD=None, ACTARM=None)}, raw=raw)
    assert errors_of(folder) == [
        "error: mappings/dm.yaml:21: DM: ARM: arm code 'SCRNFAIL' is a reason for no arm, not an arm: "
        "SDTMIG 3.4 leaves ARMCD and ARM empty and gives the reason in ARMNRS ('SCREEN FAILURE') "
        "(raw/dm.csv line 3)"]


# ============================================================== §5 a wrong date format: one message

def test_a_wrong_date_format_is_summarised_per_kind_of_problem(tmp_path):
    rows = "".join(f"{100 + i},2021-03-{i + 1:02d}\n" for i in range(12))   # lines 2-13: '-' not '/'
    rows += "112,2021-03-01\n"                                              # line 14: a repeat
    rows += "200,30/02/2021\n201,31/04/2021\n"                              # lines 15, 16: impossible
    rows += "".join(f"{300 + i},2021/03/{i + 1:02d}\n" for i in range(6))   # lines 17-22: year first
    rows += "400,03/2021/01\n"                                              # line 23: alone of its shape
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(
        RFICDTC="{date: dm.ICDAT, format: dd/MM/yyyy}")}, raw={"raw/dm.csv": "SUBJID,ICDAT\n" + rows})
    at = "error: mappings/dm.yaml:10: DM: RFICDTC: "   # 9 variables:, 10 the 6th rule
    assert errors_of(folder) == [   # in the order of their (first) values
        at + "invalid date '03/2021/01': '03/2021/01' does not match the format 'dd/MM/yyyy' (declared "
        "format dd/MM/yyyy; raw/dm.csv line 23)",
        at + "12 values of dm.ICDAT use '-' where the format 'dd/MM/yyyy' has '/'; e.g. '2021-03-01' "
        "(raw/dm.csv lines 2, 14), '2021-03-02' (raw/dm.csv line 3), '2021-03-03' (raw/dm.csv line 4) "
        "(+9 more)",
        at + "6 values of dm.ICDAT are written '9999/99/99' (9 a digit, A a letter), which does not match "
        "the format 'dd/MM/yyyy'; e.g. '2021/03/01' (raw/dm.csv line 17), '2021/03/02' (raw/dm.csv line 18), "
        "'2021/03/03' (raw/dm.csv line 19) (+3 more)",
        at + "invalid date '30/02/2021': day 30 does not exist in February 2021 (declared format "
        "dd/MM/yyyy; raw/dm.csv line 15)",
        at + "invalid date '31/04/2021': day 31 does not exist in April 2021 (declared format "
        "dd/MM/yyyy; raw/dm.csv line 16)"]


def test_many_impossible_dates_of_one_kind_are_summarised(tmp_path):
    rows = "".join(f"{100 + i},{i + 1:02d}/13/2021\n" for i in range(7))   # lines 2-8: month 13
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(
        RFICDTC="{date: dm.ICDAT, format: dd/MM/yyyy}")}, raw={"raw/dm.csv": "SUBJID,ICDAT\n" + rows})
    assert errors_of(folder) == [
        "error: mappings/dm.yaml:10: DM: RFICDTC: 7 values of dm.ICDAT are not real dates or times "
        "(declared format dd/MM/yyyy); e.g. '01/13/2021': month 13 does not exist (raw/dm.csv line 2), "
        "'02/13/2021': month 13 does not exist (raw/dm.csv line 3), '03/13/2021': month 13 does not "
        "exist (raw/dm.csv line 4) (+4 more)"]


# ============================================================== §5 follow-on messages

def test_a_variable_whose_rule_failed_is_not_called_unmapped(tmp_path):
    # 1 domain, 2 sources, 3 cm, 4 variables, 5 USUBJID, 6 CMSEQ, 7 CMTRT, 8 CMDOSTXT, 9 CMDOSU
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(
        CMDOSTXT="{derive: flag_if_present, of: CMNOPE}", CMDOSU="{template: '{CMDOSTXT}x'}")},
        raw={"raw/cm.csv": "SUBJID,TRT\n1,A\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CMDOSTXT: needs 'CMNOPE', which is not mapped",
        "error: mappings/cm.yaml:9: CMDOSU: needs 'CMDOSTXT', which could not be computed (its rule at "
        "mappings/cm.yaml:8 failed; fix that first)"]


def test_a_variable_missing_from_a_built_domain_is_named_as_such(tmp_path):
    # DM is built, without BRTHDTC (a Perm variable, so not written empty either): "not built yet
    # (build DM first)" would send the user elsewhere
    folder = sk.make_study(tmp_path, mappings={
        "dm": sk.minimal_dm(), "cm": sk.cm_mapping(CMSTDTC="{date: cm.STDAT, format: yyyy-MM-dd}",
                                                   CMSTDY="{derive: study_day, date: CMSTDTC, "
                                                          "reference: DM.BRTHDTC}")},
        raw={"raw/dm.csv": "SUBJID\n1\n", "raw/cm.csv": "SUBJID,TRT,STDAT\n1,A,2021-01-02\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:9: CM: CMSTDY: needs DM.BRTHDTC, which DM does not have (map BRTHDTC "
        "in DM's mapping)"]


@pytest.mark.parametrize("source, message", [
    ("{file: raw/cm.csv, align: unoin}",
     "sources.cm.align: unallowed value 'unoin' (did you mean 'union'?); allowed: 'strict', 'union'"),
    ("{file: raw/cm.csv, decimal: ';'}", "sources.cm.decimal: unallowed value ';'; allowed: '.', ','"),
    ("{files: [{file: raw/cm.csv, decimal: ';'}]}",
     "sources.cm.files.0.decimal: unallowed value ';'; allowed: '.', ','"),
    ("{file: raw/cm.csv, dedupe: reprot}",
     "sources.cm.dedupe: unallowed value 'reprot' (did you mean 'report'?); allowed: 'report', 'error'"),
])
def test_unallowed_values_name_the_allowed_ones(tmp_path, source, message):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(source)},
                           raw={"raw/cm.csv": "SUBJID,TRT\n1,A\n"})
    assert errors_of(folder) == [f"error: mappings/cm.yaml:3: {message}"]


def test_an_unallowed_value_in_a_rule_names_the_allowed_ones(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(CMDOSU="{from: cm.TRT, case: uper}")},
                           raw={"raw/cm.csv": "SUBJID,TRT\n1,A\n"})
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:8: CMDOSU.case: unallowed value 'uper' (did you mean 'upper'?); allowed: "
        "'upper', 'lower', 'title'"]


# ============================================================== §1 rename: under align: union

UNION_RAW = {"raw/a.csv": "SUBJID,TRT,UNIT\n1,A,mg\n",
             "raw/b.csv": "SUBJID,TRT,UNITS\n2,B,g\n"}


def _union(tmp_path, rename: str):
    source = "{files: [{file: raw/a.csv}, {file: raw/b.csv, rename: %s}], align: union}" % rename
    return sk.make_study(tmp_path, mappings={"cm": sk.cm_mapping(source, CMDOSU="{from: cm.UNIT}")},
                         raw=UNION_RAW)


def test_union_rename_works(tmp_path):
    cm = sk.build(_union(tmp_path, "{UNITS: UNIT}")).datasets["CM"]
    assert by(cm, "CMTRT", "CMDOSU") == {"A": "mg", "B": "g"}


def test_a_misspelt_rename_target_under_union_is_an_error(tmp_path):
    # UNTI exists in no other file and nothing reads it: b.csv's units would silently be lost
    assert errors_of(_union(tmp_path, "{UNITS: UNTI}")) == [
        "error: mappings/cm.yaml:3: source 'cm': rename: 'UNITS' → 'UNTI' (raw/b.csv): no other file of "
        "the source has 'UNTI' and nothing in the mapping reads it (did you mean 'UNIT'?); under `align: "
        "union` the column meant would be left empty for these rows"]


def test_a_rename_of_a_column_the_file_does_not_have_is_an_error(tmp_path):
    assert errors_of(_union(tmp_path, "{UNIS: UNIT}")) == [
        "error: mappings/cm.yaml:3: source 'cm': rename: 'UNIS' is not a column of raw/b.csv (did you mean "
        "'UNITS'?); its columns: SUBJID, TRT, UNITS"]


def test_a_rename_problem_names_the_line_of_its_key(tmp_path):
    text = ("domain: CM\n"
            "sources:\n"
            "  cm:\n"
            "    align: union\n"
            "    files:\n"
            "      - {file: raw/a.csv}\n"
            "      - file: raw/b.csv\n"
            "        rename:\n"
            "          UNIS: UNIT\n"                       # line 9
            "variables:\n"
            "  USUBJID: {template: '{STUDYID}-{cm.SUBJID}'}\n"
            "  CMSEQ: {derive: seq, order: [CMTRT]}\n"
            "  CMTRT: {from: cm.TRT}\n")
    folder = sk.make_study(tmp_path, mappings={"cm": text}, raw=UNION_RAW)
    assert errors_of(folder) == [
        "error: mappings/cm.yaml:9: source 'cm': rename: 'UNIS' is not a column of raw/b.csv (did you mean "
        "'UNITS'?); its columns: SUBJID, TRT, UNITS"]


# ============================================================== §1 every key at every depth

UNKNOWN = "zzunknwn"


def _full_mapping() -> dict:
    """A mapping that uses every place of MAPPING_SCHEMA that has keys of its own, every nested rule
    (else, first_date, last_date, supp) and every derivation (as a SUPP variable)."""
    from sdtm_rA.sdtm.derivations import REGISTRY
    melt = {"columns": ["A", "B"], "name": "TEST", "value": "RESULT"}
    cond = {"TEST": {"not": ["X"]}}
    doc = {
        "domain": "LB", "description": "every depth",
        "sources": {
            "lab": {"file": "raw/lab.csv", "sep": ",", "encoding": "utf-8", "decimal": ".", "header_row": 1,
                    "rename": {"A": "B"}, "melt": melt, "where": cond, "dedupe": "report",
                    "twin_columns": {"suffix": " - Code", "keep": "decoded"}, "align": "strict"},
            "more": {"files": [{"file": "raw/lab.csv", "melt": dict(melt)}], "key": ["SUBJID"]},
        },
        "tests": {"from": "lab.TEST", "codelist": "LBTESTCD", "results": {"NEG": "NEGATIVE"},
                  "entries": [{"match": "CRP", "testcd": "CRP", "unit": "mg/L", "convert": {"mg/dL": 10}}]},
        "keys": ["USUBJID"], "sort": ["USUBJID"],
        "variables": {
            "USUBJID": {"template": "{STUDYID}-{lab.SUBJID}"},
            "LBDTC": {"date": "lab.D", "format": "yyyy-MM-dd", "where": dict(cond),
                      "else": {"date": "lab.E", "format": "yyyy-MM-dd",
                               "else": {"constant": "2021", "where": dict(cond)}}},
            "LBENDTC": {"first_date": {"source": "more", "date": "D", "format": "yyyy-MM-dd",
                                       "where": dict(cond)}},
            "LBORRES": {"from": "lab.RESULT", "supp": {"qnam": "LBRAW", "label": "Raw result"}},
        },
    }
    for i, (name, deriv) in enumerate(sorted(REGISTRY.items())):
        rule = {"derive": name, "supp": True}
        for arg, schema in deriv.args.items():
            types = schema.get("type")
            types = "dict" if isinstance(types, list) and "dict" in types else types   # a condition map
            rule[arg] = {"dict": dict(cond), "list": ["LBDTC"]}.get(types, "LBDTC")
        doc["variables"][f"DRV{i}"] = rule
    return doc


def _rule_places(doc):
    """(path, allowed keys) of every rule of `doc`, with its nested rules and conditions."""
    from sdtm_rA.sdtm.schema import AGGREGATE_SCHEMA, RULE_KEYS, SUPP_SCHEMA
    from sdtm_rA.sdtm.derivations import REGISTRY

    def walk(rule, path):
        extra = (rule["derive"], list(REGISTRY[rule["derive"]].args)) if "derive" in rule else ()
        yield path, list(RULE_KEYS), extra
        for key, value in rule.items():
            if key == "else":
                yield from walk(value, path + ["else"])
            elif key in ("first_date", "last_date"):
                yield path + [key], list(AGGREGATE_SCHEMA), ()
            elif key == "supp" and isinstance(value, dict):
                yield path + [key], list(SUPP_SCHEMA), ()

    for name, rule in doc["variables"].items():
        yield from walk(rule, ["variables", name])


def _schema_places(rule, path):
    """Every place under `rule` whose keys the schema fixes: (path with '*' for a name and 0 for a
    list item, its allowed keys); conditions as (path, None)."""
    if rule.get("check_with") == "condition":
        yield tuple(path), None
    elif rule.get("type") == "list" and isinstance(rule.get("schema"), dict):
        yield from _schema_places(rule["schema"], path + [0])
    elif isinstance(rule.get("schema"), dict):
        yield tuple(path), list(rule["schema"])
        for key, sub in rule["schema"].items():
            yield from _schema_places(sub, path + [key])
    elif isinstance(rule.get("valuesrules"), dict):
        yield from _schema_places(rule["valuesrules"], path + ["*"])


def _resolve(node, path):
    """The concrete path in `node` for a schema path ('*': the first name under which the rest exists)."""
    if not path:
        return []
    step, rest = path[0], path[1:]
    if step == "*":
        for key in node:
            found = _resolve(node[key], rest)
            if found is not None:
                return [key] + found
        return None
    if isinstance(step, int):
        return None if not isinstance(node, list) or not node else [0] + (_resolve(node[0], rest) or [])
    if not isinstance(node, dict) or step not in node:
        return None
    found = _resolve(node[step], rest)
    return None if found is None else [step] + found


def _at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


def _errors_with(tmp_path, doc, name) -> list[str]:
    import yaml
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    folder = sk.make_study(tmp_path / name, mappings={"lb": text})
    return text, errors_of(folder)


def test_the_full_mapping_passes_every_mapping_check(tmp_path):
    # the raw file is missing: the first error is reading it, so every mapping check passed
    _, errors = _errors_with(tmp_path, _full_mapping(), "base")
    assert errors and all("raw/lab.csv" in e and "not found" in e for e in errors), errors


def _cases():
    from sdtm_rA.sdtm.schema import MAPPING_SCHEMA
    doc = _full_mapping()
    places = list(_schema_places({"type": "dict", "schema": MAPPING_SCHEMA}, []))
    for schema_path, allowed in places:
        path = _resolve(doc, list(schema_path))
        assert path is not None, f"the full mapping does not use {schema_path}: add it"
        yield ".".join(map(str, schema_path)) or "top", path, allowed, ()
    for path, allowed, extra in _rule_places(doc):
        yield ".".join(map(str, path)), path, allowed, extra
    # conditions inside rules and derivation arguments
    for name, rule in doc["variables"].items():
        node, path = rule, ["variables", name]
        while isinstance(node, dict):
            for key, value in node.items():
                if key in ("where", "exposure_where") or (key in ("first_date", "last_date")):
                    where = value if key != "first_date" and key != "last_date" else value.get("where")
                    sub = path + ([key] if key in ("where", "exposure_where") else [key, "where"])
                    if isinstance(where, dict):
                        yield ".".join(map(str, sub)), sub, None, ()
            node, path = node.get("else"), path + ["else"]


CASES = list(_cases())


@pytest.mark.parametrize("where, path, allowed, extra", CASES, ids=[c[0] for c in CASES])
def test_an_unknown_key_at_every_depth_is_refused(tmp_path, where, path, allowed, extra):
    import copy
    doc = copy.deepcopy(_full_mapping())
    node = _at(doc, path)
    if allowed is None:     # a condition: an unknown operator
        node["TEST"] = {UNKNOWN: "X"}
    else:
        node[UNKNOWN] = "X"
    text, errors = _errors_with(tmp_path, doc, "case")
    line = sk.line_of(text, f"{UNKNOWN}:")
    if allowed is None:
        hits = [e for e in errors if f"unknown operator '{UNKNOWN}'" in e]
        assert len(hits) == 1, errors
        assert hits[0].startswith(f"error: mappings/lb.yaml:{line}: "), (hits[0], line)
        assert hits[0].endswith(f"TEST: unknown operator '{UNKNOWN}'; allowed operators: in, not, empty")
        return
    hits = [e for e in errors if f"unknown key '{UNKNOWN}'" in e]
    assert len(hits) == 1, errors
    assert hits[0].startswith(f"error: mappings/lb.yaml:{line}: "), (hits[0], line)
    said = f"; allowed keys: {', '.join(allowed)}"
    assert said in hits[0], hits[0]
    if extra:   # a derivation's own arguments are allowed too, and named
        assert hits[0].endswith(f"{said}; derivation '{extra[0]}' takes: {', '.join(extra[1]) or 'no arguments'}")


def test_a_test_entry_sets_only_variables_of_the_domain(tmp_path):
    tests = """
from: lab.TEST
codelist: LBTESTCD
entries:
  - {match: CRP, testcd: CRP, unit: mg/L, set: {LBCATT: CHEMISTRY}}
"""
    # LBCATT used to become a column of LB of its own
    raw = "SPID;SUBJID;TEST;RESULT;UNIT\nL1;101;CRP;1;mg/L\n"
    assert errors_of(_lab(tmp_path, raw, tests)) == [
        "error: mappings/lb.yaml:8: tests.entries.0.set: LBCATT is not a LB variable in SDTMIG 3.4 "
        "(did you mean 'LBCAT'?)"]
