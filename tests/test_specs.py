"""Tests of tools/build_specs.py and sdtm_rA.standards.specs.

Expected values were read by hand from the reference files in ../shared/standards (SDTMIG v3.4
Variables.csv, ADaMIG v1.3 Variables.csv, NCI EVS SDTM/ADaM CT 2025-03-28), not from specs/.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sdtm_rA.standards import specs as S

REPO = Path(__file__).resolve().parents[1]
STANDARDS = Path(__file__).parents[1].parent / "shared" / "standards"
BUILD = REPO / "tools" / "build_specs.py"

needs_standards = pytest.mark.skipif(
    not (STANDARDS / "sdtmig-3.4" / "Variables.csv").is_file(),
    reason=f"reference standards not found at {STANDARDS}",
)


def build(out: Path, *args: str, standards: Path = STANDARDS) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BUILD), "--standards", str(standards), "--out", str(out), *args],
        capture_output=True, text=True, check=True,
    )


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- SDTMIG


@pytest.fixture(scope="module")
def ig():
    return S.load_sdtmig()


def test_specs_dir_is_the_checkout_specs():
    assert S.specs_dir() == REPO / "specs"
    assert S.manifest()["versions"] == {"sdtmig": "3.4", "adamig": "1.3", "ct": "2025-03-28"}


def test_dm_rfstdtc(ig):
    dm = ig.dataset("DM")
    assert dm.label == "Demographics"
    assert dm.class_ == "Special-Purpose"
    assert dm.structure == "One record per subject"
    v = dm.variable("RFSTDTC")
    assert (v.label, v.type, v.core, v.order, v.role) == (
        "Subject Reference Start Date/Time", "Char", "Exp", 5, "Record Qualifier")
    assert v.codelists == ()
    assert v.value_domain == "ISO 8601 datetime or interval"
    assert dm.names[:5] == ["STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC"]
    assert dm.variable("SEX").codelists == ("C66731",)
    assert dm.variable("SEX").core == "Req"
    assert dm.variable("NOSUCHVAR") is None


def test_aeseq_num_req(ig):
    v = ig.dataset("ae").variable("aeseq")
    assert (v.dataset, v.name, v.label, v.type, v.core, v.role) == (
        "AE", "AESEQ", "Sequence Number", "Num", "Req", "Identifier")


def test_several_codelists_are_split(ig):
    assert ig.dataset("DS").variable("DSDECOD").codelists == ("C66727", "C114118", "C150811")
    assert ig.dataset("BS").variable("BSSPEC").codelists == ("C78734", "C111114")


def test_variables_frozen(ig):
    v = ig.dataset("DM").variable("SEX")
    with pytest.raises(AttributeError):
        v.label = "changed"


def test_suppae(ig):
    supp = ig.dataset("SUPPAE")
    assert supp.name == "SUPPAE"
    assert supp.label == "Supplemental Qualifiers for AE"
    assert supp.names == ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL",
                          "QNAM", "QLABEL", "QVAL", "QORIG", "QEVAL"]
    assert all(v.dataset == "SUPPAE" for v in supp.variables)
    assert supp.variable("RDOMAIN").codelists == ("C66734",)
    assert supp.variable("QEVAL").core == "Exp"
    assert ig.dataset("SUPPDM").label == "Supplemental Qualifiers for DM"
    assert ig.has("SUPPDM") and ig.has("suppae")
    # the generic dataset itself is untouched
    assert ig.dataset("SUPPQUAL").label == "Supplemental Qualifiers for [domain name]"
    assert ig.dataset("SUPPQUAL").variables[0].dataset == "SUPPQUAL"


def test_unknown_dataset(ig):
    assert not ig.has("XX")
    with pytest.raises(KeyError, match="DM"):
        ig.dataset("DMM")


def test_ig_counts(ig):
    # Datasets.csv has 63 datasets, Variables.csv 1917 rows.
    assert len(ig.names) == 63
    assert sum(len(ig.dataset(n).variables) for n in ig.names) == 1917


def test_unknown_ig_version():
    with pytest.raises(FileNotFoundError, match="3.4"):
        S.load_sdtmig("9.9")


# --------------------------------------------------------------------------- SDTM model
#
# Expectations read by hand from ../shared/standards/sdtm-2.0/Variables.csv and
# sdtmig-3.4/Variables.csv.  Ordering rule under test (DatasetSpec.model_variables): the model's
# sequence for a class is 'General Observations' identifiers, the class's variables, 'General
# Observations' timing variables, each in the model's Variable Order; a model-only variable M goes
# right after the IG variable of its role group (identifiers / topic+qualifiers / timing) that is
# nearest before M in that sequence, else right before the nearest one after M.


def test_sdtm_model_in_manifest():
    m = S.manifest()
    assert m["sdtm_model"] == {"version": "2.0", "sdtmig": "3.4"}
    assert m["files"]["sdtm-2.0/variables.csv"]["rows"] == 527
    assert m["files"]["sdtm-2.0/datasets.csv"]["rows"] == 26
    assert m["files"]["sdtm-2.0/variables.csv"]["source"] == "sdtm-2.0/Variables.csv"


def test_sdtm_model_facts(ig):
    model = S.load_sdtm_model("2.0")
    assert ig.model is model and ig.dataset("EX").model is model
    assert model.classes == ["Associated Persons", "Events", "Findings", "Findings About",
                             "General Observations", "Interventions"]
    go = model.class_variables("General Observations")
    assert len(go) == 64
    assert [v.name for v in go[:3]] == ["STUDYID", "DOMAIN", "USUBJID"]
    visitnum = go[16]
    assert (visitnum.order, visitnum.name, visitnum.label, visitnum.type, visitnum.role) == (
        17, "VISITNUM", "Visit Number", "Num", "Timing")
    stdtc = go[26]
    assert (stdtc.name, stdtc.value_domain, stdtc.usage_restrictions) == (
        "--STDTC", "ISO 8601 datetime or interval", "Not in Findings class domains")
    dose = next(v for v in model.class_variables("Interventions") if v.name == "--DOSE")
    assert (dose.order, dose.label, dose.type, dose.role) == (17, "Dose", "Num", "Record Qualifier")
    assert len(model.class_variables("Findings")) == 100
    assert [v.name for v in model.class_variables("Findings About")] == ["--OBJ"]
    assert len(model.dataset_variables("DM")) == 38
    assert model.datasets["SUPPQUAL"] == ("Supplemental Qualifiers", "Relationship")
    # Events --STAT: the source has a literal '\n' after the text; it is folded away
    stat = next(v for v in model.class_variables("Events") if v.name == "--STAT")
    assert stat.usage_restrictions == "Not in AE domain"


def test_ex_visitnum_is_model_permissible(ig):
    ex = ig.dataset("EX")
    assert ex.variable("VISITNUM") is None  # the IG's EX table does not list it
    assert "VISITNUM" not in ex  # __contains__ stays IG-only
    v = ex.model_variable("visitnum")
    assert (v.dataset, v.name, v.label, v.type, v.role, v.core, v.source, v.codelists) == (
        "EX", "VISITNUM", "Visit Number", "Num", "Timing", "Perm", "model", ())
    order = {x.name: x.order for x in ex.model_variables()}
    # EX IG: ... 25 EXADJ (last qualifier), 26 TAETORD, 27 EPOCH, 28 EXSTDTC, 29 EXENDTC, 30 EXSTDY.
    # Model timing: VISITNUM 17, VISIT 18, VISITDY 19, TAETORD 20, EPOCH 21, --DTC 26, --STDTC 27,
    # --ENDTC 28, --DY 29, --STDY 30: nothing of EX precedes VISITNUM, so it goes before TAETORD.
    assert order["EXADJ"] < order["VISITNUM"] < order["VISIT"] < order["VISITDY"] < order["TAETORD"]
    assert order["EPOCH"] < order["EXDTC"] < order["EXSTDTC"]
    assert order["EXENDTC"] < order["EXDY"] < order["EXSTDY"]
    # Interventions: --DOSFRQ 23, --DOSTOT 24, --DOSRGM 25; EX has EXDOSFRQ 17, EXDOSRGM 18.
    assert order["EXDOSFRQ"] < order["EXDOSTOT"] < order["EXDOSRGM"]
    dostot = ex.model_variable("EXDOSTOT")
    assert (dostot.label, dostot.type, dostot.role) == ("Total Daily Dose", "Num", "Record Qualifier")
    # identifiers: POOLID 4, SPDEVID 5 ... --SEQ 9, --GRPID 10, --REFID 11, --RECID 12, --SPID 13
    assert order["USUBJID"] < order["SPDEVID"] < order["EXSEQ"]
    assert order["EXREFID"] < order["EXRECID"] < order["EXSPID"]


def test_model_variables_keep_ig_order(ig):
    for name in ig.names:
        ds = ig.dataset(name)
        allowed = ds.model_variables()
        assert [v.name for v in allowed if v.source == "IG"] == ds.names, name
        assert [v.name for v in allowed] == ds.allowed_names()
        assert all(isinstance(v.order, int) for v in ds.variables), name
        orders = [v.order for v in allowed]
        assert orders == sorted(orders) and len(set(orders)) == len(orders), name
        assert len(set(ds.allowed_names())) == len(allowed), name


def test_model_variable_lb_and_findings_restrictions(ig):
    lb = ig.dataset("LB")
    tpt = lb.model_variable("LBTPT")  # in the IG table (order 56)
    assert (tpt.source, tpt.order, tpt.label) == ("IG", 56, "Planned Time Point Name")
    pos = lb.model_variable("LBPOS")  # Findings --POS 26, between --SCAT 24 and --ORRES 28
    assert (pos.label, pos.type, pos.role, pos.source) == (
        "Position of Subject During Observation", "Char", "Record Qualifier", "model")
    assert lb.variable("LBSCAT").order < pos.order < lb.variable("LBORRES").order
    assert lb.model_variable("LBSTDTC") is None  # 'Not in Findings class domains'
    assert lb.model_variable("LBSTDY") is None
    assert lb.model_variable("LBBEATNO") is None  # 'EG Domain only'
    assert ig.dataset("EG").model_variable("EGBEATNO").source == "IG"
    assert lb.model_variable("FETUSID") is None  # 'Not in human clinical trials'
    assert lb.model_variable("LBDTHREL") is None  # idem
    assert ig.dataset("QS").model_variable("QSEVAL") is None  # 'Not in QS, FT, and ...'
    assert ig.dataset("VS").model_variable("VSEVAL").source == "model"
    assert ig.dataset("GF").model_variable("GFINHERT") is not None  # 'GF domain only'
    assert lb.model_variable("LBINHERT") is None
    assert ig.dataset("PC").model_variable("PCPTFL") is not None  # specimen-based only
    assert ig.dataset("VS").model_variable("VSPTFL") is None
    # Findings About: Findings variables plus --OBJ; the Findings restriction applies too
    fa = ig.dataset("FA")
    assert fa.model_variable("FAOBJ").source == "IG"
    assert fa.model_variable("FAPOS").source == "model"
    assert fa.model_variable("FASTDTC") is None


def test_model_variable_events(ig):
    ae = ig.dataset("AE")
    assert ae.model_variable("AEDOSE") is None  # --DOSE is an Interventions variable
    assert ae.model_variable("AEOCCUR") is None  # 'Not in AE domain'
    assert ae.model_variable("AESINTV").source == "IG"
    tox = ae.model_variable("AETOX")  # Events --CONTRT 53, --TOX 54, --TOXGR 55
    assert (tox.label, tox.role, tox.source) == ("Toxicity", "Variable Qualifier", "model")
    assert ae.variable("AECONTRT").order < tox.order < ae.variable("AETOXGR").order
    ce = ig.dataset("CE")
    assert ce.model_variable("CEEVDTYP") is None  # 'MH domain only'
    assert ig.dataset("MH").model_variable("MHEVDTYP").source == "IG"
    assert ce.model_variable("CESINTV") is None  # 'AE domain only'
    assert ce.model_variable("CELLT").source == "model"  # 'Not in nonclinical trials'
    assert ig.dataset("CM").model_variable("CMDOSE").source == "IG"
    assert ig.dataset("CM").model_variable("CMDOSE").label == "Dose per Administration"  # IG's


def test_model_variable_not_general_observation(ig):
    dm = ig.dataset("DM")
    assert dm.model_variable("VISITNUM") is None  # DM is Special-Purpose: its IG table is the list
    assert dm.model_variable("AGETXT") is None  # in the model's DM table, not the IG's
    assert dm.model_variable("AGE").source == "IG"
    assert dm.allowed_names() == dm.names
    assert ig.dataset("SV").model_variable("SVDY") is None
    assert ig.dataset("TS").model_variable("VISITNUM") is None
    assert ig.dataset("SUPPAE").model_variable("VISITNUM") is None
    assert ig.dataset("EX").model_variable("EXFOO") is None
    assert ig.dataset("EX").model_variable("EXMETHOD") is None  # 'Not in human clinical trials; EX ...'
    assert ig.dataset("EX").model_variable("AEDOSE") is None  # wrong prefix
    adsl = S.load_adamig().dataset("ADSL")
    assert adsl.model_variable("TRT01P").label == "Planned Treatment for Period 01"
    assert adsl.model_variable("VISITNUM") is None


def test_model_variable_split_dataset(ig):
    from dataclasses import replace
    lbch = replace(ig.dataset("LB"), name="LBCH")
    assert lbch.domain_prefix == "LB"
    v = lbch.model_variable("LBPOS")
    assert (v.dataset, v.name) == ("LBCH", "LBPOS")
    assert lbch.model_variable("LBCHPOS") is None
    qsgi = replace(ig.dataset("QS"), name="QSGI")
    assert qsgi.model_variable("QSEVAL") is None
    assert qsgi.model_variable("QSPOS").source == "model"


def test_every_usage_restriction_is_understood(ig):
    model = ig.model
    for name in ig.names:
        ds = ig.dataset(name)
        for mv, _ in model.sequence(ds.class_):
            assert mv.allowed_in(ds.domain_prefix, ds.class_) is not None, (name, mv)


def test_usage_allows():
    f = S._usage_allows
    assert f("", "LB", "Findings") is True
    assert f("Not in nonclinical trials", "AE", "Events") is True
    assert f("Not in human clinical trials", "LB", "Findings") is False
    assert f("Not in human clinical trials; EX domain only", "EX", "Interventions") is False
    assert f("EG Domain only", "EG", "Findings") is True
    assert f("EG Domain only", "LB", "Findings") is False
    assert f("CP, IS, and LB domains only", "IS", "Findings") is True
    assert f("CP, IS, and LB domains only", "VS", "Findings") is False
    assert f("Only in Findings class specimen-based domains: BS, CP, GF, IS, LB, MB, MS, MI, PC, PP",
             "MI", "Findings") is True
    assert f("Not in Findings class domains", "FA", "Findings About") is False
    assert f("Not in Findings class domains", "CM", "Interventions") is True
    assert f("Not in AE domain", "AE", "Events") is False
    assert f("Not in AE domain", "MH", "Events") is True
    assert f("Only on Tuesdays", "AE", "Events") is None


@needs_standards
def test_generator_sdtm_model(tmp_path):
    build(tmp_path)
    with (tmp_path / "sdtm-2.0" / "variables.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["class", "dataset", "order", "variable", "label", "type", "role",
                             "value_domain", "usage_restrictions"]
    assert len(rows) == 527
    visitnum = [r for r in rows if r["variable"] == "VISITNUM"]
    go = [r for r in visitnum if r["class"] == "General Observations"]
    assert go == [{"class": "General Observations", "dataset": "", "order": "17", "variable": "VISITNUM",
                   "label": "Visit Number", "type": "Num", "role": "Timing", "value_domain": "",
                   "usage_restrictions": ""}]
    assert {(r["class"], r["dataset"]) for r in visitnum} == {
        ("General Observations", ""), ("Special-Purpose", "SV"), ("Trial Design", "TV")}
    text = (tmp_path / "sdtm-2.0" / "variables.csv").read_text(encoding="utf-8")
    # Definition and Notes of VISITNUM are prose: dropped
    assert "aligns to the chronological order" not in text
    assert "Numeric version of VISIT" not in text
    assert "\\n" not in text
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sdtm_model"] == {"version": "2.0", "sdtmig": "3.4"}
    entry = manifest["files"]["sdtm-2.0/variables.csv"]
    src = STANDARDS / "sdtm-2.0" / "Variables.csv"
    assert entry["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


@needs_standards
def test_generator_needs_the_paired_model(tmp_path):
    std = tmp_path / "standards"
    std.mkdir()
    for name in ("sdtmig-3.4", "adamig-1.3", "ct"):
        (std / name).symlink_to(STANDARDS / name)
    bad = subprocess.run([sys.executable, str(BUILD), "--standards", str(std), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "sdtm-2.0" in bad.stderr
    bad = subprocess.run([sys.executable, str(BUILD), "--standards", str(std), "--out", str(tmp_path / "out"),
                          "--sdtmig-version", "9.9"], capture_output=True, text=True)
    assert bad.returncode == 1 and "--sdtm-version" in bad.stderr


# --------------------------------------------------------------------------- ADaMIG


def test_adamig():
    adam = S.load_adamig()
    assert adam.names == ["ADSL", "BDS", "TTE"]
    adsl = adam.dataset("ADSL")
    assert adsl.label == "Subject-Level Analysis Dataset Structure"
    sex = adsl.variable("SEX")
    assert (sex.type, sex.core, sex.codelists) == ("Char", "Req", ("C66731",))
    assert adsl.names[:3] == ["STUDYID", "USUBJID", "SUBJID"]
    trt = adsl.variable("TRT01P")
    assert (trt.name, trt.label, trt.type, trt.core) == (
        "TRT01P", "Planned Treatment for Period 01", "Char", "Req")
    assert adsl.variable("TRTxxP").label == "Planned Treatment for Period xx"
    aval = adam.dataset("BDS").variable("AVAL")
    assert (aval.type, aval.core, aval.variable_set) == ("Num", "Cond", "Analysis Parameter")
    assert adam.dataset("BDS").variable("ANL01FL").label == "Analysis Flag 01"
    tte = adam.dataset("TTE")
    assert tte.subclass == "TIME-TO-EVENT"
    assert tte.variable("CNSR").label == "Censor"


# --------------------------------------------------------------------------- CT


@pytest.fixture(scope="module")
def ct():
    return S.load_ct()


def test_sex_codelist(ct):
    sex = ct.codelist("SEX")
    assert sex is ct.codelist("C66731") is ct.codelist("sex")
    assert (sex.code, sex.short_name, sex.name, sex.extensible) == ("C66731", "SEX", "Sex", False)
    assert sex.values == {"F", "M", "U", "INTERSEX"}
    assert sex.term_by_code("C16576").value == "F"
    assert sex.term_by_code("C45908").synonyms == ()
    assert sex.term_by_code("C17998").synonyms == ("U", "UNK", "Unknown")


def test_sex_lookup(ct):
    sex = ct.codelist("SEX")
    assert sex.lookup("F") == "F"
    assert sex.lookup("female") == "F"  # CDISC synonym 'Female'
    assert sex.lookup("  Male ") == "M"
    assert sex.lookup("unk") == "U"
    assert sex.lookup("intersex") == "INTERSEX"
    assert sex.lookup("woman") is None
    assert sex.lookup("") is None
    assert sex.lookup(None) is None
    assert sex.lookup(float("nan")) is None


def test_unit_lookup(ct):
    unit = ct.codelist("UNIT")
    assert unit.code == "C71620" and unit.extensible
    # In CT 2025-03-28 mm/h's only synonym is 'Millimeter per Hour': 'mm/hr' is not a synonym.
    assert unit.lookup("mm/hr") is None
    assert unit.lookup("MM/H") == "mm/h"
    assert unit.lookup("millimeter per hour") == "mm/h"
    assert unit.lookup("hr") == "HOURS"  # synonyms of HOURS: h; Hours; hr
    # 'Pa' (Pascal, C42547) and 'PA' (Per Year, C74924) differ only by case.
    assert unit.lookup("Pa") == "Pa"
    assert unit.lookup("PA") == "PA"
    assert unit.lookup("pa") is None


def test_ambiguous_synonym(ct):
    # 'SAP' is a synonym of both AMYLOIDP (C81998) and SH2D1A (C165983).
    assert ct.codelist("LBTESTCD").lookup("SAP") is None
    assert ct.codelist("LBTESTCD").lookup("crp") == "CRP"


def test_paired_value(ct):
    assert ct.paired_value("LBTESTCD", "CRP", "LBTEST") == "C Reactive Protein"
    assert ct.paired_value("C65047", "CRP", "C67154") == "C Reactive Protein"
    assert ct.paired_value("LBTESTCD", "NOTATEST", "LBTEST") is None


def test_unknown_codelist(ct):
    with pytest.raises(KeyError, match="SEX"):
        ct.codelist("SEXX")
    assert not ct.has("SEXX")
    assert ct.has("SEX") and ct.has("C66731")


def test_ct_counts(ct):
    # sdtm-ct-2025-03-28.tsv: 1158 codelist rows, 43698 term rows.
    assert len(ct) == 1158
    assert sum(len(c.terms) for c in ct) == 43698
    assert ct.version == "2025-03-28"


def test_ct_short_names_unique(ct):
    names = [c.short_name.upper() for c in ct]
    assert len(names) == len(set(names))


def test_ct_loads_fast():
    S._load_ct.cache_clear()
    start = time.perf_counter()
    S.load_ct("sdtm", "2025-03-28")
    assert time.perf_counter() - start < 1.0
    assert S.load_ct() is S.load_ct("sdtm", "2025-03-28")


def test_adam_ct():
    adam = S.load_ct("adam")
    dtype = adam.codelist("DTYPE")
    assert (dtype.code, dtype.extensible) == ("C81224", True)
    assert dtype.lookup("last observation carried forward") == "LOCF"
    with pytest.raises(FileNotFoundError):
        S.load_ct("adam", "1999-01-01")


# --------------------------------------------------------------------------- installed layout


def test_installed_layout(tmp_path):
    """With the specs installed as package data (sdtm_rA._specs), the loader uses them."""
    pkg = tmp_path / "sdtm_rA"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "standards").mkdir()
    (pkg / "standards" / "__init__.py").write_text("")
    shutil.copy(REPO / "sdtm_rA" / "standards" / "specs.py", pkg / "standards" / "specs.py")
    shutil.copytree(REPO / "specs", pkg / "_specs")  # no __init__.py, as setuptools installs it
    code = textwrap.dedent("""
        from sdtm_rA.standards import specs
        print(specs.specs_dir())
        print(specs.load_ct().codelist("SEX").lookup("female"))
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert Path(out[0]) == pkg / "_specs"
    assert out[1] == "F"


# --------------------------------------------------------------------------- generator


@needs_standards
def test_generator_deterministic_and_matches_checkout(tmp_path):
    ct_version = json.loads((REPO / "specs" / "manifest.json").read_text())["versions"]["ct"]
    build(tmp_path / "a", "--ct-version", ct_version)
    build(tmp_path / "b", "--ct-version", ct_version)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b
    # specs/ in the repository is exactly what the generator makes: nobody edited it by hand
    # (except specs/adam/, the authored ADaM specs of the bundled study, which it never touches)
    generated = {k: v for k, v in tree(REPO / "specs").items() if not k.startswith("adam/")}
    assert generated == a


@needs_standards
def test_generator_output_format(tmp_path):
    build(tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"\r" not in data, path
            data.decode("utf-8")
    with (tmp_path / "ct" / "sdtm-ct-2025-03-28.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["codelist_code", "codelist", "codelist_name", "extensible", "code",
                             "value", "synonyms"]
    sex = {r["value"]: r for r in rows if r["codelist_code"] == "C66731"}
    assert sorted(sex) == ["F", "INTERSEX", "M", "U"]
    assert sex["U"]["synonyms"] == "U; UNK; Unknown"  # as in the source
    assert {r["extensible"] for r in sex.values()} == {"N"}
    assert {r["codelist"] for r in sex.values()} == {"SEX"}


@needs_standards
def test_generator_drops_prose(tmp_path):
    build(tmp_path)
    prose_headers = {"definition", "notes", "preferred", "cdisc notes", "nci preferred term"}
    for path in tmp_path.rglob("*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        assert not [h for h in header if any(p in h.lower() for p in prose_headers)], path
    everything = "\n".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    # CDISC Notes of AE.AESEQ, CDISC Definition of SEX 'F', NCI preferred term of LBTESTCD CRP
    assert "Sequence number given to ensure uniqueness" not in everything
    assert "normally produces ova" not in everything
    assert "C-Reactive Protein Measurement" not in everything


@needs_standards
def test_generator_manifest(tmp_path):
    build(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["versions"] == {"sdtmig": "3.4", "adamig": "1.3", "ct": "2025-03-28"}
    src = STANDARDS / "ct" / "sdtm-ct-2025-03-28.tsv"
    entry = manifest["files"]["ct/sdtm-ct-2025-03-28.csv"]
    assert entry["source"] == "ct/sdtm-ct-2025-03-28.tsv"
    assert entry["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert entry["rows"] == 43698
    assert manifest["files"]["sdtmig-3.4/variables.csv"]["rows"] == 1917
    assert manifest["files"]["sdtmig-3.4/datasets.csv"]["rows"] == 63
    for rel, info in manifest["files"].items():
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == info["sha256"], rel
    assert (tmp_path / "README.md").is_file()


@needs_standards
def test_generator_picks_newest_ct_and_removes_stale(tmp_path):
    """A newer CT file in the standards dir is picked up by default; --ct-version pins one."""
    std = tmp_path / "standards"
    (std / "ct").mkdir(parents=True)
    for name in ("sdtmig-3.4", "sdtm-2.0", "adamig-1.3"):
        (std / name).symlink_to(STANDARDS / name)
    (std / "ct" / "sdtm-ct-2025-03-28.tsv").symlink_to(STANDARDS / "ct" / "sdtm-ct-2025-03-28.tsv")
    (std / "ct" / "sdtm-ct-2099-01-01.tsv").symlink_to(STANDARDS / "ct" / "sdtm-ct-2025-03-28.tsv")
    out = tmp_path / "out"

    build(out, "--ct-version", "2025-03-28", standards=std)
    assert (out / "ct" / "sdtm-ct-2025-03-28.csv").is_file()

    build(out, standards=std)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["versions"]["ct"] == "2099-01-01"
    assert manifest["ct_packages"] == ["sdtm"]
    assert (out / "ct" / "sdtm-ct-2099-01-01.csv").is_file()
    assert not (out / "ct" / "sdtm-ct-2025-03-28.csv").exists()

    bad = subprocess.run([sys.executable, str(BUILD), "--standards", str(std), "--out", str(out),
                          "--ct-version", "2000-01-01"], capture_output=True, text=True)
    assert bad.returncode == 1 and "2099-01-01" in bad.stderr
