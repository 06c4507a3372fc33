"""Tests of tools/build_specs.py and sdtm_rA.specs.

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

from sdtm_rA import specs as S

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
    shutil.copy(REPO / "sdtm_rA" / "specs.py", pkg / "specs.py")
    shutil.copytree(REPO / "specs", pkg / "_specs")  # no __init__.py, as setuptools installs it
    code = textwrap.dedent("""
        from sdtm_rA import specs
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
    assert tree(REPO / "specs") == a


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
    for name in ("sdtmig-3.4", "adamig-1.3"):
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
