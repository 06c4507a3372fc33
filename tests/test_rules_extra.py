"""Defect catalogue for SD0134 (DOMAIN a CDISC term) and SD0338 (reference dates with an arm)."""
from __future__ import annotations

import validation_kit as vk


def test_clean_folder_has_neither(tmp_path):
    f = vk.clean_folder(tmp_path)
    found = vk.run(f, only=["SD0134", "SD0338"])
    assert found.empty


def test_domain_not_a_cdisc_term(tmp_path):
    f = vk.clean_folder(tmp_path)
    # a custom domain with an X code is allowed; a made-up two-letter code is not
    vk.edit(f, "AE", lambda df: df.__setitem__("DOMAIN", ["AE"] * (len(df) - 1) + ["QQ"]))
    found = vk.run(f, only=["SD0134"])
    assert list(zip(found.dataset, found.variable, found.row, found.value)) == [("AE", "DOMAIN", 9, "QQ")]


def test_rfendtc_missing_for_an_assigned_subject(tmp_path):
    f = vk.clean_folder(tmp_path)

    def fn(df):
        df.loc[2, "RFENDTC"] = ""                     # row 3: assigned to BMCMSC
        df.loc[4, ["ARMCD", "RFSTDTC"]] = ["SCRNFAIL", ""]   # row 5: a screen failure may have none
    vk.edit(f, "DM", fn)
    found = vk.run(f, only=["SD0338"])
    assert list(zip(found.variable, found.row, found.value)) == [("RFENDTC", 3, "BMCMSC")]
