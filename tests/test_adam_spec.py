"""The ADaM spec language: checks before running (file, line, suggestion) and each step on small
hand-made SDTM data, with expected values worked out by hand."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from sdtm_rA.adam.derive import derive, derive_datasets
from sdtm_rA.adam.spec import load_spec, load_spec_folder
from sdtm_rA.adam.where import evaluate
from sdtm_rA.errors import ConversionError

# ----------------------------------------------------------------------------- a tiny SDTM study

DM = pd.DataFrame({"STUDYID": ["S1"] * 3, "USUBJID": ["S1-1", "S1-2", "S1-3"], "SUBJID": ["1", "2", "3"],
                   "AGE": [30.0, 65.0, np.nan], "ARM": ["Drug", "Drug", ""], "ARMCD": ["D", "D", ""]})
EX = pd.DataFrame({"STUDYID": ["S1"] * 4, "USUBJID": ["S1-1", "S1-1", "S1-2", "S1-2"], "EXSEQ": [1.0, 2.0, 1.0, 2.0],
                   "EXTRT": ["DRUG"] * 4, "EXDOSE": [1.0, 1.0, 0.0, 1.0],
                   "EXSTDTC": ["2021-01-10T09:00", "2021-02-07", "2021-01-05", "2021-01-20T08:30"],
                   "EXENDTC": ["2021-01-10T10:00", "2021-02-07", "2021-01-05", "2021-01-20T09:00"]})
LB = pd.DataFrame({"STUDYID": ["S1"] * 6, "USUBJID": ["S1-1"] * 4 + ["S1-2"] * 2,
                   "LBSEQ": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0], "LBTESTCD": ["CRP"] * 6,
                   "LBSTRESC": ["12", "<5", "6", "0", "0", "3"], "LBSTRESN": [12.0, np.nan, 6.0, 0.0, 0.0, 3.0],
                   "LBSTNRLO": [0.0] * 6, "LBSTNRHI": [5.0] * 6,
                   "LBDTC": ["2021-01-03", "2021-01-10", "2021-02-07", "2021-03-10", "2021-01-20", "2021-02-20"]})
MK = pd.DataFrame({"STUDYID": ["S1"] * 5, "USUBJID": ["S1-1"] * 5, "MKSEQ": [1.0, 2.0, 3.0, 4.0, 5.0],
                   "MKTESTCD": ["TNDRIND"] * 5, "MKORRES": ["Y", "N", "Y", "", ""],
                   "MKSTAT": ["", "", "", "NOT DONE", "NOT DONE"],
                   "VISITNUM": [1.0, 1.0, 1.0, 2.0, 2.0], "MKDTC": ["2021-01-10"] * 3 + ["2021-02-07"] * 2})
SDTM = {"DM": DM, "EX": EX, "LB": LB, "MK": MK}


def spec_file(tmp_path: Path, text: str, name: str = "adsl.yaml") -> Path:
    folder = tmp_path / "spec"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


ADSL = """\
dataset: ADSL
label: Subject-Level Analysis Dataset
class: ADSL
keys: [USUBJID]
steps:
  - {derive: records, dataset: DM, where: {ARMCD: {not: ""}}, keep: [STUDYID, USUBJID, AGE, ARM]}
  - {derive: copy, new: TRT01P, source: ARM}
  - {derive: treatment_dates, dataset: EX}
  - {derive: duration, new: TRTDURD, start: TRTSDT, end: TRTEDT}
  - {derive: exists_flag, new: SAFFL, dataset: EX, where: {EXDOSE: {gt: 0}}}
  - {derive: groups, new: AGEGR1, source: AGE, groups: [{label: "<65", lt: 65}, {label: ">=65", ge: 65}]}
  - {derive: recode, new: AGEGR1N, source: AGEGR1, values: {"<65": 1, ">=65": 2}}
variables:
  STUDYID:
  USUBJID:
  AGE:
  AGEGR1:
  AGEGR1N:
  TRT01P:
  TRTSDT:
  TRTEDT:
  TRTDURD:
  SAFFL:
"""


def derive_one(tmp_path, text, sdtm=None, name="adsl.yaml", extra=()):
    spec_file(tmp_path, text, name)
    for n, t in extra:
        spec_file(tmp_path, t, n)
    specs = load_spec_folder(tmp_path / "spec")
    return derive_datasets(sdtm or SDTM, specs)


def errors_of(tmp_path, text, sdtm=None) -> str:
    with pytest.raises(ConversionError) as exc:
        derive_one(tmp_path, text, sdtm)
    return "\n".join(str(i) for i in exc.value.issues)


# ----------------------------------------------------------------------------- checks before running

def test_unknown_derivation_named_with_line_and_suggestion(tmp_path):
    text = ADSL.replace("{derive: copy, new: TRT01P", "{derive: cpy, new: TRT01P")
    msg = errors_of(tmp_path, text)
    assert "adsl.yaml:7" in msg and "unknown derivation 'cpy'" in msg and "did you mean 'copy'" in msg


def test_unknown_argument_is_an_error(tmp_path):
    msg = errors_of(tmp_path, ADSL.replace("source: ARM}", "sorce: ARM}"))
    assert "adsl.yaml:7" in msg and "unknown key 'sorce'" in msg


def test_variable_read_before_any_step_creates_it(tmp_path):
    text = ADSL.replace("  - {derive: copy, new: TRT01P, source: ARM}\n", "") \
               .replace("  - {derive: duration", "  - {derive: copy, new: TRT01P, source: ARMX}\n  - {derive: duration")
    msg = errors_of(tmp_path, text)
    assert "adsl.yaml:8" in msg and "source: ARMX is not a variable of ADSL at this step" in msg
    assert "did you mean 'ARM'" in msg


def test_source_variable_missing_from_the_sdtm_input(tmp_path):
    msg = errors_of(tmp_path, ADSL.replace("keep: [STUDYID, USUBJID, AGE, ARM]", "keep: [STUDYID, USUBJID, AGEX, ARM]"))
    assert "adsl.yaml:6" in msg and "keep: AGEX is not a variable of DM" in msg


def test_unknown_dataset_lists_what_is_there(tmp_path):
    msg = errors_of(tmp_path, ADSL.replace("dataset: EX, where: {EXDOSE", "dataset: EXX, where: {EXDOSE"))
    assert "dataset: EXX is not in the input" in msg and "DM, EX, LB, MK" in msg


def test_output_variable_nobody_derives(tmp_path):
    msg = errors_of(tmp_path, ADSL + "  ITTFL:\n")
    assert "variables: ITTFL is not created by any step" in msg and "adsl.yaml:24" in msg


def test_label_needed_for_a_non_adamig_variable(tmp_path):
    text = ADSL.replace("  - {derive: recode", "  - {derive: constant, new: MYVAR, value: x}\n  - {derive: recode") + "  MYVAR:\n"
    msg = errors_of(tmp_path, text)
    assert "variables.MYVAR: no label" in msg


def test_variable_created_twice(tmp_path):
    text = ADSL.replace("  - {derive: recode", "  - {derive: copy, new: TRT01P, source: ARM}\n  - {derive: recode")
    assert "TRT01P already exists (created by step 2)" in errors_of(tmp_path, text)


def test_first_step_must_create_records(tmp_path):
    text = ADSL.replace("  - {derive: records, dataset: DM, where: {ARMCD: {not: \"\"}}, keep: [STUDYID, USUBJID, AGE, ARM]}\n", "")
    assert "the first step must create the records" in errors_of(tmp_path, text)


def test_unknown_condition_test(tmp_path):
    msg = errors_of(tmp_path, ADSL.replace("where: {EXDOSE: {gt: 0}}", "where: {EXDOSE: {gtt: 0}}"))
    assert ("adsl.yaml:10: steps[5] (exists_flag): where: EXDOSE: unknown operator 'gtt' (did you mean 'gt'?); "
            "allowed operators: not, empty, in, gt, ge, lt, le") in msg


def test_every_file_reported_together_and_yaml_is_data(tmp_path):
    spec_file(tmp_path, "dataset: ADXX\nlabel: x\nclass: BDS\nkeys: [A]\nsteps: [{derive: records, dataset: DM}]\n"
                        "variables: {A: {label: a}}\nextra: !!python/object/apply:os.system ['true']\n", "a.yaml")
    spec_file(tmp_path, "dataset: adbad\n", "b.yaml")
    with pytest.raises(ConversionError) as exc:
        load_spec_folder(tmp_path / "spec")
    msg = "\n".join(str(i) for i in exc.value.issues)
    assert "a.yaml" in msg and "b.yaml" in msg


def test_formula_inputs_are_checked(tmp_path):
    text = """\
    dataset: ADEFF
    label: Efficacy
    class: BDS
    keys: [USUBJID, PARAMCD]
    steps:
      - {derive: parameter_count, paramcd: TJC28, param: Tender joints, dataset: MK, where: {MKTESTCD: TNDRIND},
         count_where: {MKORRES: Y}}
      - {derive: parameter_computed, paramcd: CDAI, param: CDAI, formula: cdai, by: [USUBJID, VISITNUM],
         inputs: {tjc28: TJC28, sjc28: SJC28, ptga: PTGA}}
    variables: {USUBJID: , PARAMCD: , AVAL: }
    """
    msg = errors_of(tmp_path, text)
    assert "parameter SJC28 is not created by an earlier step" in msg
    assert "cdai has no input 'ptga'" in msg and "cdai needs ptga_mm" in msg


def test_datasets_run_in_dependency_order(tmp_path):
    adae = """\
    dataset: ADLB
    label: Lab Analysis
    class: BDS
    keys: [USUBJID, SRCSEQ]
    steps:
      - {derive: parameter, paramcd: CRP, param: CRP (mg/L), dataset: LB, where: {LBTESTCD: CRP}, aval: LBSTRESN}
      - {derive: merge, dataset: ADSL, keep: [TRTSDT]}
    variables: {USUBJID: , SRCSEQ: , TRTSDT: {label: First dose date}}
    """
    spec_file(tmp_path, adae, "a_adlb.yaml")
    spec_file(tmp_path, ADSL, "z_adsl.yaml")
    assert [s.dataset for s in load_spec_folder(tmp_path / "spec")] == ["ADSL", "ADLB"]


# ----------------------------------------------------------------------------- conditions

def test_where_comparisons_missing_values_and_any():
    df = pd.DataFrame({"A": [1.0, np.nan, 3.0], "B": [2.0, 2.0, 2.0], "C": ["x", "y", ""]})
    assert evaluate({"A": {"gt": 1}}, df).tolist() == [False, False, True]
    assert evaluate({"A": {"le": {"var": "B"}}}, df).tolist() == [True, False, False]
    assert evaluate({"any": [{"C": "y"}, {"A": {"ge": 3}}]}, df).tolist() == [False, True, True]
    assert evaluate({"C": {"empty": False}, "A": {"lt": 5}}, df).tolist() == [True, False, False]


# ----------------------------------------------------------------------------- ADSL steps

def test_adsl_steps_by_hand(tmp_path):
    res = derive_one(tmp_path, ADSL).datasets["ADSL"]
    assert list(res.columns) == ["STUDYID", "USUBJID", "AGE", "AGEGR1", "AGEGR1N", "TRT01P",
                                 "TRTSDT", "TRTEDT", "TRTDURD", "SAFFL"]
    adsl = res.set_index("USUBJID")
    assert list(adsl.index) == ["S1-1", "S1-2"]                       # S1-3 has no arm
    # S1-1: doses 10 Jan and 7 Feb; S1-2: 5 Jan is a zero dose (ignored), 20 Jan counts
    assert adsl.loc["S1-1", "TRTSDT"] == pd.Timestamp("2021-01-10")
    assert adsl.loc["S1-1", "TRTEDT"] == pd.Timestamp("2021-02-07")
    assert adsl.loc["S1-1", "TRTDURD"] == 29                          # 28 days apart + 1
    assert adsl.loc["S1-2", "TRTSDT"] == pd.Timestamp("2021-01-20")
    assert adsl.loc["S1-2", "TRTDURD"] == 1
    assert adsl["SAFFL"].tolist() == ["Y", "Y"]
    assert adsl["AGEGR1"].tolist() == ["<65", ">=65"] and adsl["AGEGR1N"].tolist() == [1.0, 2.0]


def test_flag_unknown_when_value_missing(tmp_path):
    text = ADSL.replace("  - {derive: recode", "  - {derive: flag, new: OLDFL, where: {AGE: {ge: 65}}, "
                        "unknown_if_missing: [AGE]}\n  - {derive: recode") + "  OLDFL: {label: Old}\n"
    dm = DM.assign(ARMCD=["D", "D", "D"])
    res = derive_one(tmp_path, text, {**SDTM, "DM": dm}).datasets["ADSL"]
    assert res["OLDFL"].tolist() == ["N", "Y", ""]


# ----------------------------------------------------------------------------- BDS steps

ADLB = """\
dataset: ADLB
label: Laboratory Analysis Dataset
class: BDS
keys: [USUBJID, PARAMCD, ADT]
steps:
  - {derive: parameter, paramcd: CRPMGDL, param: CRP (mg/dL), dataset: LB, where: {LBTESTCD: CRP},
     aval: LBSTRESN, avalc: LBSTRESC, censored: half, factor: 0.1, low: LBSTNRLO, high: LBSTNRHI,
     keep: {SRCDTC: LBDTC}}
  - {derive: merge, dataset: ADSL, keep: [TRTSDT]}
  - {derive: date, new: ADT, dtc: SRCDTC, flag: false}
  - {derive: study_day, new: ADY, date: ADT, reference: TRTSDT}
  - derive: analysis_visit
    windows:
      - {avisit: BASELINE, avisitn: 0, target: 1, lo: null, hi: 1}
      - {avisit: WEEK 4, avisitn: 4, target: 29, lo: 2, hi: 42}
      - {avisit: WEEK 8, avisitn: 8, target: 57, lo: 43, hi: 70}
  - {derive: range_indicator}
  - {derive: baseline_flag, where: {ANL01FL: Y}}
  - {derive: base}
  - {derive: change, where: {ABLFL: {not: Y}}}
  - {derive: percent_change}
variables:
  USUBJID:
  PARAMCD:
  AVAL:
  AVALC:
  ADT:
  ADY:
  AVISIT:
  AVISITN:
  ANL01FL:
  ANRIND:
  ABLFL:
  BASE:
  CHG:
  PCHG:
"""


def test_bds_parameter_windows_baseline_and_change(tmp_path):
    res = derive_one(tmp_path, ADLB, name="adlb.yaml", extra=[("adsl.yaml", ADSL)]).datasets["ADLB"]
    one = res[res.USUBJID == "S1-1"].set_index("ADT")
    # S1-1 starts 2021-01-10: 3 Jan is day -7, 10 Jan day 1, 7 Feb day 29, 10 Mar day 60
    assert one["ADY"].tolist() == [-7, 1, 29, 60]
    # '<5' mg/L -> LLOQ/2 = 2.5 mg/L -> 0.25 mg/dL; AVALC keeps the censored result in the new unit
    assert one.loc["2021-01-10", "AVAL"] == pytest.approx(0.25) and one.loc["2021-01-10", "AVALC"] == "<0.5"
    assert one.loc["2021-01-03", "AVALC"] == "1.2"
    assert one["AVAL"].tolist() == pytest.approx([1.2, 0.25, 0.6, 0.0])
    assert one["AVISIT"].tolist() == ["BASELINE", "BASELINE", "WEEK 4", "WEEK 8"]
    assert one["ANL01FL"].tolist() == ["", "Y", "Y", "Y"]              # day 1 is nearest the target
    assert one["ABLFL"].tolist() == ["", "Y", "", ""]
    assert one["BASE"].tolist() == pytest.approx([0.25] * 4)
    # CHG restricted to non-baseline records; 0.6 - 0.25 = 0.35; 0 - 0.25 = -0.25
    assert one["CHG"].tolist()[1] is np.nan or np.isnan(one["CHG"].tolist()[1])
    assert one["CHG"].tolist()[2:] == pytest.approx([0.35, -0.25])
    assert one["PCHG"].tolist()[2] == pytest.approx(140.0)
    # range 0-5 mg/L -> 0-0.5 mg/dL: 1.2 HIGH, 0.25 NORMAL; 0 is on the lower limit -> NORMAL
    assert one["ANRIND"].tolist() == ["HIGH", "NORMAL", "HIGH", "NORMAL"]
    two = res[res.USUBJID == "S1-2"].set_index("ADT")
    # S1-2: baseline 0 (day 1) -> PCHG empty, CHG = 0.3
    assert two["BASE"].tolist() == [0.0, 0.0]
    assert two["CHG"].tolist()[1] == pytest.approx(0.3) and np.isnan(two["PCHG"].tolist()[1])


def test_joint_count_ignores_not_done_and_skips_empty_visits(tmp_path):
    text = """\
    dataset: ADEFF
    label: Efficacy
    class: BDS
    keys: [USUBJID, PARAMCD, VISITNUM]
    steps:
      - {derive: parameter_count, paramcd: TJC28, param: Tender Joint Count, dataset: MK,
         where: {MKTESTCD: TNDRIND, MKSTAT: {empty: true}}, count_where: {MKORRES: Y}}
    variables: {USUBJID: , PARAMCD: , AVAL: , VISITNUM: {label: Visit Number}}
    """
    res = derive_one(tmp_path, text, name="adeff.yaml").datasets["ADEFF"]
    assert res[["USUBJID", "VISITNUM", "AVAL"]].values.tolist() == [["S1-1", 1.0, 2.0]]


def _efficacy_sdtm():
    """One subject, two visits, the ACR core set as separate SDTM records (values by hand)."""
    rows = []
    values = {  # test: (baseline, week 16)
        "TJC": (10, 8), "SJC": (5, 4), "PAIN": (50, 40), "PTGA": (60, 48), "PHGA": (40, 40), "CRP": (10, 8)}
    seq = 0
    for test, pair in values.items():
        for visitnum, v in zip((1.0, 2.0), pair):
            seq += 1
            rows.append({"STUDYID": "S1", "USUBJID": "S1-1", "QSSEQ": float(seq), "QSTESTCD": test,
                         "QSSTRESN": float(v), "VISITNUM": visitnum,
                         "QSDTC": "2021-01-10" if visitnum == 1 else "2021-05-02"})
    return {**SDTM, "QS": pd.DataFrame(rows)}


EFF = """\
dataset: ADEFF
label: Efficacy
class: BDS
keys: [USUBJID, PARAMCD, AVISITN]
steps:
  - {derive: parameter, paramcd: TJC28, param: TJC28, dataset: QS, where: {QSTESTCD: TJC}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: parameter, paramcd: SJC28, param: SJC28, dataset: QS, where: {QSTESTCD: SJC}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: parameter, paramcd: PAINVAS, param: Pain, dataset: QS, where: {QSTESTCD: PAIN}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: parameter, paramcd: PTGA, param: PtGA, dataset: QS, where: {QSTESTCD: PTGA}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: parameter, paramcd: PHGA, param: PhGA, dataset: QS, where: {QSTESTCD: PHGA}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: parameter, paramcd: CRP, param: CRP (mg/L), dataset: QS, where: {QSTESTCD: CRP}, aval: QSSTRESN, keep: {SRCDTC: QSDTC}}
  - {derive: merge, dataset: ADSL, keep: [TRTSDT]}
  - {derive: date, new: ADT, dtc: SRCDTC, flag: false}
  - {derive: study_day, new: ADY, date: ADT, reference: TRTSDT}
  - derive: analysis_visit
    windows:
      - {avisit: BASELINE, avisitn: 0, target: 1, lo: null, hi: 1}
      - {avisit: WEEK 16, avisitn: 16, target: 113, lo: 99, hi: 140}
  - {derive: parameter_computed, paramcd: SDAI, param: SDAI, formula: sdai, where: {ANL01FL: Y},
     inputs: {tjc28: TJC28, sjc28: SJC28, ptga_mm: PTGA, phga_mm: PHGA, crp_mg_l: CRP}, carry: [ADT, AVISIT],
     set: {ANL01FL: Y}}
  - {derive: baseline_flag, where: {ANL01FL: Y}}
  - {derive: base}
  - {derive: parameter_acr, paramcd: ACR20, param: ACR20, level: 20, carry: [AVISIT],
     components: {tjc28: TJC28, sjc28: SJC28, pain: PAINVAS, ptga: PTGA, phga: PHGA, crp: CRP}}
  - {derive: parameter_acr, paramcd: ACR50, param: ACR50, level: 50,
     components: {tjc28: TJC28, sjc28: SJC28, pain: PAINVAS, ptga: PTGA, phga: PHGA, crp: CRP}}
variables: {USUBJID: , PARAMCD: , AVAL: , AVALC: , AVISIT: , AVISITN: , ABLFL: , BASE: , PARAMTYP: {label: Parameter Type}}
"""


def test_computed_scores_and_acr_response_by_hand(tmp_path):
    res = derive_one(tmp_path, EFF, _efficacy_sdtm(), name="adeff.yaml", extra=[("adsl.yaml", ADSL)]).datasets["ADEFF"]
    sdai = res[res.PARAMCD == "SDAI"].set_index("AVISITN")["AVAL"]
    # SDAI = TJC + SJC + PtGA/10 + PhGA/10 + CRP mg/dL: 10 + 5 + 6 + 4 + 1.0 = 26; 8 + 4 + 4.8 + 4 + 0.8 = 21.6
    assert sdai.to_dict() == pytest.approx({0.0: 26.0, 16.0: 21.6})
    assert set(res.loc[res.PARAMCD == "SDAI", "PARAMTYP"]) == {"DERIVED"}
    acr = res[res.PARAMCD.isin(["ACR20", "ACR50"])].set_index("PARAMCD")
    # TJC 10->8 and SJC 5->4 are exactly 20 %; pain, PtGA and CRP improve 20 %, PhGA 0 %: 3 of 5 -> ACR20 Y
    assert acr.loc["ACR20", "AVALC"] == "Y" and acr.loc["ACR20", "AVAL"] == 1.0
    assert acr.loc["ACR20", "AVISIT"] == "WEEK 16" and acr.loc["ACR20", "AVISITN"] == 16.0
    assert acr.loc["ACR50", "AVALC"] == "N" and acr.loc["ACR50", "AVAL"] == 0.0
    # responses exist only post-baseline
    assert len(acr) == 2


# ----------------------------------------------------------------------------- files: XPT, run.json, atomicity

def _sdtm_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sdtm"
    folder.mkdir()
    for name, df in SDTM.items():
        df.to_csv(folder / f"{name.lower()}.csv", index=False)
    return folder


def test_derive_writes_xpt_with_dates_labels_and_provenance(tmp_path):
    spec_file(tmp_path, ADSL)
    sdtm = _sdtm_folder(tmp_path)
    out = tmp_path / "out"
    derive(sdtm, out, spec_folder=tmp_path / "spec", command=["test"], xpt_timestamp="2024-01-02T03:04:05")
    df, meta = pyreadstat.read_xport(out / "adam" / "adsl.xpt")
    assert meta.table_name == "ADSL" and meta.file_label == "Subject-Level Analysis Dataset"
    assert meta.column_names_to_labels["TRTSDT"] == "Date of First Exposure to Treatment"
    assert meta.original_variable_types["TRTSDT"].startswith("DATE")
    raw, _ = pyreadstat.read_xport(out / "adam" / "adsl.xpt", disable_datetime_conversion=True)
    # 2021-01-10 is day 22290 after 1960-01-01 (SAS date); computed: 61 years incl. 15 leap days
    assert raw.loc[0, "TRTSDT"] == 22290.0
    run = json.loads((out / "run.json").read_text())
    assert run["adam"]["outputs"]["adam/adsl.xpt"]["rows"] == 2
    assert set(run["adam"]["inputs"]) == {"sdtm/dm.csv", "sdtm/ex.csv", "sdtm/lb.csv", "sdtm/mk.csv",
                                          "adam-specs/adsl.yaml"}
    first = (out / "adam" / "adsl.xpt").read_bytes()
    derive(sdtm, out, spec_folder=tmp_path / "spec", command=["test"], xpt_timestamp="2024-01-02T03:04:05")
    assert (out / "adam" / "adsl.xpt").read_bytes() == first        # reproducible


def test_failed_derive_leaves_previous_output_untouched(tmp_path):
    spec_file(tmp_path, ADSL)
    sdtm = _sdtm_folder(tmp_path)
    out = tmp_path / "out"
    derive(sdtm, out, spec_folder=tmp_path / "spec", command=["test"])
    before = {p.name: p.read_bytes() for p in (out / "adam").iterdir()}
    run_before = (out / "run.json").read_bytes()
    spec_file(tmp_path, ADSL.replace("keys: [USUBJID]", "keys: [TRT01P]"))   # not unique: 2 records share it
    with pytest.raises(ConversionError) as exc:
        derive(sdtm, out, spec_folder=tmp_path / "spec", command=["test"])
    assert "keys ['TRT01P'] are not unique" in str(exc.value)
    assert {p.name: p.read_bytes() for p in (out / "adam").iterdir()} == before
    assert (out / "run.json").read_bytes() == run_before
    assert not [p for p in out.iterdir() if p.name.startswith(".adam")]


def test_steps_reference_is_up_to_date():
    import subprocess
    import sys
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "tools" / "adam_steps_doc.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


LATER = """\
later_steps:
  - {derive: merge, dataset: ADLB, where: {PARAMCD: CRPMGDL, ABLFL: Y}, keep: {CRPBL: AVAL}}
"""


def test_later_steps_complete_adsl_from_a_dataset_that_reads_it(tmp_path):
    adsl = ADSL.replace("variables:\n", LATER + "variables:\n") + "  CRPBL: {label: Baseline CRP (mg/dL)}\n"
    res = derive_one(tmp_path, adsl, extra=[("adlb.yaml", ADLB)])
    # ADLB read ADSL's TRTSDT; ADSL then took the baseline CRP back from ADLB (hand values above)
    assert res.datasets["ADSL"].set_index("USUBJID")["CRPBL"].to_dict() == pytest.approx({"S1-1": 0.25, "S1-2": 0.0})
    assert "CRPBL" not in res.datasets["ADLB"].columns


def test_later_steps_are_checked_too(tmp_path):
    bad = ADSL.replace("variables:\n", LATER.replace("CRPBL: AVAL", "CRPBL: AVALX") + "variables:\n") \
        + "  CRPBL: {label: Baseline CRP}\n"
    spec_file(tmp_path, ADLB, "adlb.yaml")
    msg = errors_of(tmp_path, bad)
    assert "later step 1 (merge): keep: AVALX is not a variable of ADLB" in msg and "adsl.yaml:14" in msg
    missing = ADSL.replace("variables:\n", LATER.replace("dataset: ADLB", "dataset: ADXX") + "variables:\n")
    (tmp_path / "spec" / "adlb.yaml").unlink()
    assert "later_steps read ADXX, which is neither in the input nor specified" in errors_of(tmp_path, missing)


def test_range_indicator_compares_after_rounding_and_the_precision_is_declared():
    from sdtm_rA.adam.steps import STEPS, run_step
    df = pd.DataFrame({"AVAL": [0.1 + 0.2, 0.31, 0.0], "ANRLO": [0.0, 0.0, 0.0], "ANRHI": [0.3, 0.3, 0.3]})
    default = run_step(STEPS["range_indicator"], df, {}, None)["ANRIND"].tolist()
    assert default == ["NORMAL", "HIGH", "NORMAL"]        # 0.30000000000000004 is on the limit at 15 digits
    exact = run_step(STEPS["range_indicator"], df, {"significant_digits": 17}, None)["ANRIND"].tolist()
    assert exact == ["HIGH", "HIGH", "NORMAL"]


# ----------------------------------------------------------------------------- review findings, each pinned

def _run(step_name, df, args, ctx=None):
    from sdtm_rA.adam.steps import STEPS, run_step
    return run_step(STEPS[step_name], df, args, ctx)


def test_recode_matches_numbers_as_where_does():
    df = pd.DataFrame({"AGE": [46.0, 53.0, np.nan]})
    out = _run("recode", df, {"new": "AGEN", "source": "AGE", "values": {46: 1, 53: 2}, "other": 0})
    assert out["AGEN"].tolist() == [1, 2, 0]


def test_coalesce_keeps_dates():
    df = pd.DataFrame({"A": pd.to_datetime(["2021-01-01", None]), "B": pd.to_datetime(["2020-01-01", "2021-06-07"])})
    out = _run("coalesce", df, {"new": "C", "sources": ["A", "B"]})
    assert pd.api.types.is_datetime64_any_dtype(out["C"])
    assert out["C"].tolist() == [pd.Timestamp("2021-01-01"), pd.Timestamp("2021-06-07")]


def test_datetime_step_imputes_the_time_by_default_as_admiral():
    df = pd.DataFrame({"AESTDTC": ["2021-11-03", "2021-11-03T10:20", "2021-11"]})
    out = _run("datetime", df, {"new": "ASTDTM", "dtc": "AESTDTC"})
    assert out["ASTDTM"].tolist()[:2] == [pd.Timestamp("2021-11-03 00:00:00"), pd.Timestamp("2021-11-03 10:20:00")]
    assert pd.isna(out["ASTDTM"].iloc[2])                     # 'h': a missing day is not imputed
    # hours imputed -> H; only seconds imputed -> no flag (admiral >= 1.4: ignore_seconds_flag = TRUE)
    assert out["ASTTMF"].tolist()[:2] == ["H", ""]
    no_flags = _run("date", df, {"new": "ASTDT", "dtc": "AESTDTC"})
    assert "ASTDTF" not in no_flags.columns                    # highest 'n': nothing imputed, no flag


def test_where_on_dates_and_date_text():
    import datetime as dt
    df = pd.DataFrame({"AENDT": pd.to_datetime(["2021-01-01", None]), "AESTDTC": ["2021-05-02", "2021-04"],
                       "RFSTDTC": ["2021-05-01", "2021-05-01"], "N": [1.0, 2.0]})
    assert evaluate({"AENDT": {"empty": True}}, df).tolist() == [False, True]
    assert evaluate({"AESTDTC": {"ge": {"var": "RFSTDTC"}}}, df).tolist() == [True, False]   # partial: never
    assert evaluate({"AENDT": {"le": dt.date(2021, 5, 1)}}, df).tolist() == [True, False]
    with pytest.raises(ValueError, match=r"cannot compare AENDT \(a date\) with N \(a number\)"):
        evaluate({"AENDT": {"le": {"var": "N"}}}, df)


def test_merge_into_an_existing_variable_is_caught_before_running(tmp_path):
    text = ADSL.replace("  - {derive: recode", "  - {derive: merge, dataset: DM, keep: {AGE: SUBJID}}\n  - {derive: recode")
    assert "AGE already exists (created by step 1)" in errors_of(tmp_path, text)


def test_acr_components_are_checked(tmp_path):
    text = EFF.replace("components: {tjc28: TJC28, sjc28: SJC28, pain: PAINVAS, ptga: PTGA, phga: PHGA, crp: CRP}}\n  - {derive: parameter_acr, paramcd: ACR50",
                       "components: {tjc28: TJC28, sjc28: SJC28, pain: PAINVAS, ptga: PTGA, phga: PHGA, cpr: CRP}}\n  - {derive: parameter_acr, paramcd: ACR50")
    spec_file(tmp_path, ADSL, "adsl.yaml")
    spec_file(tmp_path, text, "adeff.yaml")
    with pytest.raises(ConversionError) as exc:
        derive_datasets(_efficacy_sdtm(), load_spec_folder(tmp_path / "spec"))
    assert "unknown component 'cpr' (did you mean 'crp'?)" in str(exc.value)


def test_parameters_from_data_are_not_second_guessed(tmp_path):
    text = """\
    dataset: ADLB
    label: Lab
    class: BDS
    keys: [USUBJID, PARAMCD, VISITNUM]
    steps:
      - {derive: records, dataset: LB, keep: {STUDYID: STUDYID, USUBJID: USUBJID, PARAMCD: LBTESTCD, AVAL: LBSTRESN, VISITNUM: LBSEQ}}
      - {derive: parameter_computed, paramcd: CRP2, param: CRP twice, formula: ratio, by: [USUBJID, VISITNUM],
         inputs: {numerator: CRP, denominator: CRP}}
    variables: {USUBJID: , PARAMCD: , AVAL: , VISITNUM: {label: Visit Number}}
    """
    res = derive_one(tmp_path, text, name="adlb.yaml").datasets["ADLB"]
    assert set(res.PARAMCD) == {"CRP", "CRP2"}


def test_dates_in_xpt_by_format_floor_and_published_permissions(tmp_path):
    text = ADSL.replace("  - {derive: recode", "  - {derive: copy, new: FIRSTDTX, source: TRTSDTM}\n  - {derive: recode") \
        + "  FIRSTDTX: {label: First dose datetime, format: DATETIME20.}\n  TRTSDTM:\n"
    spec_file(tmp_path, text)
    sdtm = _sdtm_folder(tmp_path)
    out = tmp_path / "out"
    derive(sdtm, out, spec_folder=tmp_path / "spec", command=["t"], xpt_timestamp="2024-01-02T03:04:05")
    raw, meta = pyreadstat.read_xport(out / "adam" / "adsl.xpt", disable_datetime_conversion=True)
    # S1-1 first dose 2021-01-10T09:00: day 22290 (not rounded to the 11th); seconds 22290*86400 + 9h
    assert raw.loc[0, "TRTSDT"] == 22290.0
    assert raw.loc[0, "FIRSTDTX"] == 22290 * 86400 + 9 * 3600 == raw.loc[0, "TRTSDTM"]
    assert meta.original_variable_types["FIRSTDTX"].startswith("DATETIME")
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "adam").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (out / "run.json").stat().st_mode & 0o777 == 0o666 & ~umask


def _mini(name, later=None, reads=None):
    steps = "  - {derive: records, dataset: DM, keep: [USUBJID]}\n"
    if reads:
        steps += f"  - {{derive: merge, dataset: {reads}, keep: {{X{reads[-2:]}: USUBJID}}, by: [USUBJID]}}\n"
    text = f"dataset: {name}\nlabel: x\nclass: OTHER\nkeys: [USUBJID]\nsteps:\n{steps}"
    if later:
        text += f"later_steps:\n  - {{derive: merge, dataset: {later}, keep: {{L{later[-2:]}: USUBJID}}}}\n"
    return text + "variables: {USUBJID: {label: Subject}}\n"


def test_later_steps_chain_completes_and_loops_are_reported(tmp_path):
    # ADAA completes from ADBB, which completes from ADCC, which reads ADBB: all complete, in a chain
    for name, later, reads in (("ADAA", "ADBB", None), ("ADBB", "ADCC", None), ("ADCC", None, "ADBB")):
        spec_file(tmp_path, _mini(name, later, reads), f"{name.lower()}.yaml")
    res = derive_datasets(SDTM, load_spec_folder(tmp_path / "spec"))
    assert set(res.datasets) == {"ADAA", "ADBB", "ADCC"}
    # ADXX and ADYY each wait, in their later steps, for the other one to be complete: a loop
    for p in (tmp_path / "spec").iterdir():
        p.unlink()
    spec_file(tmp_path, _mini("ADXX", "ADYY"), "adxx.yaml")
    spec_file(tmp_path, _mini("ADYY", "ADXX"), "adyy.yaml")
    with pytest.raises(ConversionError) as exc:
        derive_datasets(SDTM, load_spec_folder(tmp_path / "spec"))
    msg = str(exc.value)
    assert "adxx.yaml:7: ADXX: later_steps read ADYY" in msg and "(a loop)" in msg and "adyy.yaml:7" in msg


def test_locf_adds_flagged_records_only_after_an_observation():
    df = pd.DataFrame({"USUBJID": ["A", "A", "A", "B"], "PARAMCD": ["P"] * 4, "PARAM": ["Param"] * 4,
                       "AVISIT": ["BASELINE", "WEEK 4", "WEEK 8", "WEEK 4"], "AVISITN": [0.0, 4.0, 8.0, 4.0],
                       "AVAL": [10.0, 8.0, np.nan, 5.0], "ANL01FL": ["Y", "Y", "Y", "Y"]})
    visits = [{"avisit": "BASELINE", "avisitn": 0}, {"avisit": "WEEK 4", "avisitn": 4},
              {"avisit": "WEEK 8", "avisitn": 8}, {"avisit": "WEEK 12", "avisitn": 12}]
    out = _run("locf", df, {"visits": visits, "where": {"ANL01FL": "Y"}, "keep": ["PARAM"], "set": {"ANL01FL": "Y"}})
    new = out[out.DTYPE == "LOCF"][["USUBJID", "AVISIT", "AVAL", "PARAM", "ANL01FL"]].values.tolist()
    # A: week 8 is missing (AVAL empty) and week 12 absent -> both carry week 4's 8; B: no baseline to
    # carry into BASELINE (before its first value), weeks 8 and 12 carry week 4's 5
    assert new == [["A", "WEEK 8", 8.0, "Param", "Y"], ["A", "WEEK 12", 8.0, "Param", "Y"],
                   ["B", "WEEK 8", 5.0, "Param", "Y"], ["B", "WEEK 12", 5.0, "Param", "Y"]]
    assert len(out) == len(df) + 4 and out.loc[:3, "DTYPE"].isna().all()


def test_two_files_for_one_dataset(tmp_path):
    spec_file(tmp_path, ADSL, "a.yaml")
    spec_file(tmp_path, ADSL, "b.yaml")
    with pytest.raises(ConversionError) as exc:
        load_spec_folder(tmp_path / "spec")
    assert "spec/b.yaml:1" in str(exc.value) and "dataset ADSL is also in spec/a.yaml" in str(exc.value)
