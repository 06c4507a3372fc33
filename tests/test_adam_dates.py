"""ADaM date imputation (sdtm_rA.adam.dates) against hand-computed expectations.

Expected values are worked out by hand from admiral's documented rules and the
examples on its reference pages (impute_dtc_dt, impute_dtc_dtm, compute_dtf,
compute_tmf, derive_vars_dt, derive_vars_dtm).
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from sdtm_rA.adam.dates import (
    compute_dtf,
    compute_tmf,
    derive_vars_dt,
    derive_vars_dtm,
    impute_dtc_dt,
    impute_dtc_dtm,
    study_day,
)

# admiral's example vector
DATES = pd.Series([
    "2019-07-18T15:25:40", "2019-07-18T15:25", "2019-07-18T15", "2019-07-18",
    "2019-02", "2019", "2019---07", "",
])
FULL = ["2019-07-18"] * 4


def s(*values):
    return pd.Series(list(values), dtype=object)


def ts(*values):
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


# ------------------------------------------------------------------ impute_dtc_dt

def test_dt_no_imputation_keeps_only_complete_dates():
    assert impute_dtc_dt(DATES).tolist() == FULL + ["", "", "", ""]


def test_dt_highest_m_first():
    out = impute_dtc_dt(DATES, highest_imputation="M", date_imputation="first")
    assert out.tolist() == FULL + ["2019-02-01", "2019-01-01", "2019-01-01", ""]
    # "01-01" is the same as "first"
    assert impute_dtc_dt(DATES, "M", "01-01").tolist() == out.tolist()


def test_dt_highest_m_last_and_leap_year():
    out = impute_dtc_dt(DATES, "M", "last")
    assert out.tolist() == FULL + ["2019-02-28", "2019-12-31", "2019-12-31", ""]
    assert impute_dtc_dt(s("2019-07", "2020-02", "2021-02", "2019-04"), "M", "last").tolist() == [
        "2019-07-31", "2020-02-29", "2021-02-28", "2019-04-30"]


def test_dt_mid():
    out = impute_dtc_dt(DATES, "M", "mid")
    assert out.tolist() == FULL + ["2019-02-15", "2019-06-30", "2019-06-30", ""]


def test_dt_partial_month_first():
    assert impute_dtc_dt(s("2019-07"), "M", "first").tolist() == ["2019-07-01"]
    assert impute_dtc_dt(s("2019-07"), "D", "first").tolist() == ["2019-07-01"]


def test_dt_month_day_format():
    # month missing -> 06-15; only day missing -> day 15
    assert impute_dtc_dt(s("2019", "2019-02"), "M", "06-15").tolist() == ["2019-06-15", "2019-02-15"]


def test_dt_day_format_only_with_highest_d():
    assert impute_dtc_dt(DATES, "D", "10").tolist() == FULL + ["2019-02-10", "", "", ""]
    with pytest.raises(ValueError):
        impute_dtc_dt(DATES, "M", "10")


def test_dt_level_check():
    # year-only: month missing -> needs "M" (or "Y"); "D" is not enough
    assert impute_dtc_dt(s("2019"), "D").tolist() == [""]
    assert impute_dtc_dt(s("2019"), "M").tolist() == ["2019-01-01"]
    assert impute_dtc_dt(s("2019-07"), "n").tolist() == [""]
    # a missing year needs "Y"
    assert impute_dtc_dt(s("--07-18"), "M").tolist() == [""]


def test_dt_missing_month_known_day_discards_day_by_default():
    # admiral: "2019---07" -> month and day imputed together (preserve = FALSE)
    assert impute_dtc_dt(s("2019---20"), "M", "first").tolist() == ["2019-01-01"]
    assert impute_dtc_dt(s("2019---20"), "M", "last").tolist() == ["2019-12-31"]
    assert impute_dtc_dt(s("2019---20"), "M", "mid").tolist() == ["2019-06-30"]
    assert impute_dtc_dt(s("2019---20"), "D").tolist() == [""]  # month missing
    # preserve = TRUE keeps the day ("2019---07" mid -> "2019-06-07" in admiral's docs)
    assert impute_dtc_dt(s("2019---07"), "M", "mid", preserve=True).tolist() == ["2019-06-07"]
    assert impute_dtc_dt(s("2019---20"), "M", "last", preserve=True).tolist() == ["2019-12-20"]


def test_dt_missing_and_invalid_values():
    out = impute_dtc_dt(s(None, float("nan"), "", "2019-13", "2019-02-30", "junk", "2019-7-1"), "M")
    assert out.tolist() == [""] * 7


def test_dt_min_dates_clamp_ae_start():
    dtc = s("2021-10", "2021-10", "2021-10", "2021-10-05", "2021")
    trtsdt = ts("2021-10-13", "2021-11-02", None, "2021-10-13", "2021-03-04")
    out = impute_dtc_dt(dtc, "M", "first", min_dates=[trtsdt])
    # in range -> clamped; out of range or missing -> ignored; complete date untouched
    assert out.tolist() == ["2021-10-13", "2021-10-01", "2021-10-01", "2021-10-05", "2021-03-04"]


def test_dt_min_dates_admiral_example():
    out = impute_dtc_dt(s("2020-12"), "M", min_dates=[ts("2020-12-06"), ts("2020-11-11")])
    assert out.tolist() == ["2020-12-06"]


def test_dt_max_dates_clamp():
    dtc = s("2021-10", "2021-10", "2021")
    cutoff = ts("2021-10-20", "2021-09-30", "2021-05-15")
    out = impute_dtc_dt(dtc, "M", "last", max_dates=[cutoff])
    assert out.tolist() == ["2021-10-20", "2021-10-31", "2021-05-15"]


def test_dt_several_bounds_and_scalar_bound():
    dtc = s("2021-10", "2021-10")
    out = impute_dtc_dt(dtc, "M", "first",
                        min_dates=[ts("2021-10-05", "2021-10-25"), "2021-10-10"])
    assert out.tolist() == ["2021-10-10", "2021-10-25"]


def test_dt_highest_y():
    # admiral's example: completely missing date imputed from a bound
    out = impute_dtc_dt(
        pd.Series(["2020-12", None]),
        "Y",
        "first",
        min_dates=[ts("2020-12-06", "2020-01-01"), ts("2020-11-11", None)],
    )
    assert out.tolist() == ["2020-12-06", "2020-01-01"]
    # year known, bound outside the year -> ordinary first imputation
    out = impute_dtc_dt(s("2019", None), "Y", "first", min_dates=[ts("2018-05-01", None)])
    assert out.tolist() == ["2019-01-01", ""]
    out = impute_dtc_dt(s("2019", "--06-10"), "Y", "last", max_dates=[ts("2022-01-01", "2022-01-01")])
    assert out.tolist() == ["2019-12-31", "2022-01-01"]


def test_dt_highest_y_requires_bounds():
    with pytest.raises(ValueError):
        impute_dtc_dt(s("2019"), "Y", "first")
    with pytest.raises(ValueError):
        impute_dtc_dt(s("2019"), "Y", "mid", min_dates=[ts("2019-01-01")])


def test_dt_bad_arguments():
    with pytest.raises(ValueError):
        impute_dtc_dt(s("2019"), "h")
    with pytest.raises(ValueError):
        impute_dtc_dt(s("2019"), "M", "13-01")
    with pytest.raises(ValueError):  # imputation yields 2019-02-31
        impute_dtc_dt(s("2019-02"), "M", "02-31")
    with pytest.raises(ValueError):
        impute_dtc_dt(s("2021-10"), "M", min_dates=[ts("2021-10-01", "2021-10-02")])


def test_dt_keeps_index_and_maps_distinct_values():
    dtc = pd.Series(["2019-07", "2019", "2019-07"] * 1000, index=range(5, 3005))
    out = impute_dtc_dt(dtc, "M", "last")
    assert out.index.equals(dtc.index)
    assert out.iloc[:3].tolist() == ["2019-07-31", "2019-12-31", "2019-07-31"]


# ---------------------------------------------------------------------- compute_dtf

def test_compute_dtf():
    dtc = s("2019-07", "2019", "--06-01T00:00", "2022-06--T00:00", "2022---01T00:00",
            "2022----T00:00", "2019-07-18", "2019-07", "bad")
    dt = s("2019-07-18", "2019-07-18", "2022-06-01", "2022-06-01", "2022-06-01",
           "2022-06-01", "2019-07-18", "", "2019-01-01")
    assert compute_dtf(dtc, dt).tolist() == ["D", "M", "Y", "D", "M", "M", "", "", ""]
    # datetime input works too
    assert compute_dtf(s("2019"), ts("2019-01-01")).tolist() == ["M"]


# ------------------------------------------------------------------ impute_dtc_dtm

def test_dtm_default_highest_h():
    out = impute_dtc_dtm(DATES)
    assert out.tolist() == [
        "2019-07-18T15:25:40", "2019-07-18T15:25:00", "2019-07-18T15:00:00",
        "2019-07-18T00:00:00", "", "", "", "",
    ]


def test_dtm_time_last():
    out = impute_dtc_dtm(s("2019-07-18", "2019-07-18T15", "2019-07-18T15:25"), "h",
                         time_imputation="last")
    assert out.tolist() == ["2019-07-18T23:59:59", "2019-07-18T15:59:59", "2019-07-18T15:25:59"]


def test_dtm_time_custom_and_date_parts():
    out = impute_dtc_dtm(s("2019-07-18T15", "2019-02", "2019"), "M", "last", "12:34:56")
    assert out.tolist() == ["2019-07-18T15:34:56", "2019-02-28T12:34:56", "2019-12-31T12:34:56"]


def test_dtm_level_checks():
    assert impute_dtc_dtm(s("2019-07-18T15"), "n").tolist() == [""]
    assert impute_dtc_dtm(s("2019-07-18T15:25:40"), "n").tolist() == ["2019-07-18T15:25:40"]
    assert impute_dtc_dtm(s("2019-07-18T15"), "s").tolist() == [""]  # minute missing
    assert impute_dtc_dtm(s("2019-07-18T15:25"), "s").tolist() == ["2019-07-18T15:25:00"]
    assert impute_dtc_dtm(s("2019-07-18T15"), "m").tolist() == ["2019-07-18T15:00:00"]
    assert impute_dtc_dtm(s("2019-07"), "h").tolist() == [""]
    assert impute_dtc_dtm(s("2019-07"), "D").tolist() == ["2019-07-01T00:00:00"]


def test_dtm_min_dates_admiral_example():
    out = impute_dtc_dtm(s("2020-11"), "M",
                         min_dates=[ts("2020-12-06T12:12:12"), ts("2020-11-11T11:11:11")])
    assert out.tolist() == ["2020-11-11T11:11:11"]


def test_dtm_date_only_bounds():
    # date-only bounds: min at 00:00:00, max at 23:59:59
    out = impute_dtc_dtm(s("2021-10", "2021-10"), "M", "last", "last",
                         max_dates=[[date(2021, 10, 20), "2021-10-21"]])
    assert out.tolist() == ["2021-10-20T23:59:59", "2021-10-21T23:59:59"]
    out = impute_dtc_dtm(s("2021-10"), "M", "first", min_dates=[[date(2021, 10, 13)]])
    assert out.tolist() == ["2021-10-13T00:00:00"]


# ---------------------------------------------------------------------- compute_tmf

def test_compute_tmf_admiral_examples():
    dtc = s("2019-07-18T15:25", "2019-07-18T15", "2019-07-18", "2022-05--T00:00",
            "2022-05--T23:00", "2019-07-18T15:25:40", "2019-07")
    dtm = s("2019-07-18T15:25:00", "2019-07-18T15:25:00", "2019-07-18T00:00:00",
            "2022-05-15T23:59:00", "2022-05-15T23:59:00", "2019-07-18T15:25:40", "")
    assert compute_tmf(dtc, dtm).tolist() == ["", "M", "H", "H", "M", "", ""]


def test_compute_tmf_seconds_flag():
    dtc = s("2022-05--T23:59:00", "2019-07-18T15:25")
    dtm = ts("2022-05-15T23:59:59", "2019-07-18T15:25:00")
    assert compute_tmf(dtc, dtm, ignore_seconds_flag=False).tolist() == ["S", "S"]
    assert compute_tmf(dtc, dtm).tolist() == ["", ""]


# --------------------------------------------------------------- derive_vars_dt(m)

def test_derive_vars_dt():
    df = pd.DataFrame({
        "AESTDTC": ["2019-07-18", "2019-07", "2019", "2021-10", ""],
        "TRTSDT": pd.to_datetime(["2019-01-01", "2019-01-01", "2019-01-01", "2021-10-13", None]),
    })
    out = derive_vars_dt(df, "AST", "AESTDTC", highest_imputation="M",
                         date_imputation="first", min_dates=["TRTSDT"])
    assert "ASTDT" not in df.columns
    assert str(out["ASTDT"].dtype) == "datetime64[ns]"
    assert out["ASTDT"].tolist()[:4] == list(pd.to_datetime(
        ["2019-07-18", "2019-07-01", "2019-01-01", "2021-10-13"]))
    assert pd.isna(out["ASTDT"].iloc[4])
    assert out["ASTDTF"].tolist() == ["", "D", "M", "D", ""]


def test_derive_vars_dt_flags():
    df = pd.DataFrame({"X": ["2019-07", "2019-07-18"]})
    out = derive_vars_dt(df, "A", "X")
    assert "ADTF" not in out.columns  # auto + highest "n"
    assert pd.isna(out["ADT"].iloc[0]) and out["ADT"].iloc[1] == pd.Timestamp("2019-07-18")
    assert "ADTF" in derive_vars_dt(df, "A", "X", flag_imputation="date").columns
    assert "ADTF" not in derive_vars_dt(df, "A", "X", "M", flag_imputation="none").columns
    out = derive_vars_dt(df, "A", "X", "M", "last")
    assert out["ADT"].iloc[0] == pd.Timestamp("2019-07-31")
    assert out["ADTF"].tolist() == ["D", ""]


def test_derive_vars_dtm():
    df = pd.DataFrame({"X": ["2019-07-18T15", "2019-07-18", "2019-07", "2019-07-18T15:25:40"]})
    out = derive_vars_dtm(df, "AST", "X")  # highest "h": only TMF
    assert str(out["ASTDTM"].dtype) == "datetime64[ns]"
    assert "ASTDTF" not in out.columns
    assert out["ASTTMF"].tolist() == ["M", "H", "", ""]
    assert out["ASTDTM"].iloc[0] == pd.Timestamp("2019-07-18 15:00:00")
    assert pd.isna(out["ASTDTM"].iloc[2])
    out = derive_vars_dtm(df, "AEN", "X", "M", "last", "last")
    assert out["AENDTM"].tolist() == list(pd.to_datetime([
        "2019-07-18 15:59:59", "2019-07-18 23:59:59", "2019-07-31 23:59:59", "2019-07-18 15:25:40"]))
    assert out["AENDTF"].tolist() == ["", "", "D", ""]
    assert out["AENTMF"].tolist() == ["M", "H", "H", ""]
    out = derive_vars_dtm(df, "A", "X", "M", flag_imputation="date")
    assert "ADTF" in out.columns and "ATMF" not in out.columns


def test_derive_vars_dtm_min_dates_column():
    df = pd.DataFrame({
        "AESTDTC": ["2020-12", "2020-11"],
        "TRTSDTM": pd.to_datetime(["2020-12-06 12:12:12", "2020-12-06 12:12:12"]),
    })
    out = derive_vars_dtm(df, "AST", "AESTDTC", "M", min_dates=["TRTSDTM"])
    assert out["ASTDTM"].tolist() == list(pd.to_datetime(["2020-12-06 12:12:12", "2020-11-01 00:00:00"]))
    assert out["ASTDTF"].tolist() == ["D", "D"]
    assert out["ASTTMF"].tolist() == ["H", "H"]


# ------------------------------------------------------------------------ study_day

def test_study_day():
    ref = pd.Timestamp("2020-01-10")
    d = ts("2020-01-10", "2020-01-11", "2020-01-09", "2020-01-01", "2020-02-10", None)
    assert study_day(d, ref).tolist() == [1, 2, -1, -9, 32, pd.NA]
    assert str(study_day(d, ref).dtype) == "Int64"
    # series reference, times ignored
    out = study_day(ts("2020-01-10 23:00", "2019-12-31"), ts("2020-01-10 08:00", "2020-01-01"))
    assert out.tolist() == [1, -1]


def test_study_day_text_and_missing():
    out = study_day(pd.Series(["2020-01-10", "2020-01-09T10:00", None, ""]), "2020-01-10")
    assert out.tolist() == [1, -1, pd.NA, pd.NA]


@pytest.mark.parametrize("dtype", ["string", "str", object])
def test_string_dtypes_and_missing(dtype):
    x = pd.Series(["2019-07", None, "2019"], dtype=dtype)
    imputed = impute_dtc_dt(x, "M")
    assert imputed.tolist() == ["2019-07-01", "", "2019-01-01"]
    assert compute_dtf(x, imputed).tolist() == ["D", "", "M"]
    assert impute_dtc_dtm(x, "M").tolist() == ["2019-07-01T00:00:00", "", "2019-01-01T00:00:00"]


def test_bounds_align_by_label_then_position():
    x = pd.Series(["2021-10", "2021-10"], index=[10, 11])
    by_pos = pd.Series(pd.to_datetime(["2021-10-05", "2021-10-25"]))
    assert impute_dtc_dt(x, "M", min_dates=[by_pos]).tolist() == ["2021-10-05", "2021-10-25"]
    by_label = pd.Series(pd.to_datetime(["2021-10-05", "2021-10-25"]), index=[11, 10])
    assert impute_dtc_dt(x, "M", min_dates=[by_label]).tolist() == ["2021-10-25", "2021-10-05"]
