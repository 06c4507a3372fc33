"""Tests for sdtm_rA.dates.  Every expected value is written by hand from the rules
(SDTMIG 4.4.4 for partial dates, --DY definition, completed years for age)."""
import numpy as np
import pandas as pd
import pytest

from sdtm_rA.dates import (
    DateIssue,
    age_in_years,
    compare_dtc,
    dtc_date,
    dtc_precision,
    format_iso,
    is_iso8601,
    study_day,
    to_iso8601,
)


def convert(values, fmt, times=None, time_format=None, **kw):
    dates = pd.Series(values, index=[f"r{i}" for i in range(len(values))], dtype="str")
    if times is not None:
        times = pd.Series(times, index=dates.index, dtype="str")
    return to_iso8601(dates, times, date_format=fmt, time_format=time_format, **kw)


def one(value, fmt, **kw):
    """ISO text and issues of a single raw value."""
    out, issues = convert([value], fmt, **kw)
    return out.iloc[0], issues


# ---------------------------------------------------------------- to_iso8601: partial dates

@pytest.mark.parametrize("raw, expected", [
    ("UN-JUN-1968", "1968-06"),
    ("UN-UNK-1980", "1980"),
    ("20-UNK-2019", "2019---20"),
    ("UN JAN 2022", "2022-01"),
    ("un-jun-1968", "1968-06"),
    ("15-Mar-2021", "2021-03-15"),
    ("15/MAR/2021", "2021-03-15"),
    ("15.mar.2021", "2021-03-15"),
    ("UNKNOWN-MAR-2021", "2021-03"),
    ("---MAR-2021", "2021-03"),
    ("  15-MAR-2021 ", "2021-03-15"),
])
def test_text_month_partial_and_separator_tolerance(raw, expected):
    out, issues = one(raw, "dd-MMM-yyyy")
    assert out == expected
    assert issues == []


@pytest.mark.parametrize("raw, fmt, expected", [
    ("15/03/2021", "dd/MM/yyyy", "2021-03-15"),
    ("00/06/1968", "dd/MM/yyyy", "1968-06"),
    ("UN/UN/1980", "dd/MM/yyyy", "1980"),
    ("5/3/2021", "d/M/yyyy", "2021-03-05"),
    ("2021-03-15", "yyyy-MM-dd", "2021-03-15"),
    ("2021-06-UN", "yyyy-MM-dd", "2021-06"),
    ("20210315", "yyyyMMdd", "2021-03-15"),
    ("19680600", "yyyyMMdd", "1968-06"),
    ("MAR-2021", "MMM-yyyy", "2021-03"),
    ("2021", "yyyy", "2021"),
])
def test_numeric_and_short_formats(raw, fmt, expected):
    out, issues = one(raw, fmt)
    assert out == expected
    assert issues == []


def test_numeric_separators_are_strict():
    out, issues = one("15-03-2021", "dd/MM/yyyy")
    assert out == ""
    assert issues[0].severity == "error"
    assert "does not match" in issues[0].reason


def test_missing_is_empty_string_without_issue():
    out, issues = convert([None, "", "   ", "15-MAR-2021"], "dd-MMM-yyyy")
    assert out.tolist() == ["", "", "", "2021-03-15"]
    assert out.dtype == "str"
    assert issues == []


def test_entirely_unknown_date_is_empty_with_warning():
    out, issues = one("UN-UNK-UNKN", "dd-MMM-yyyy")
    assert out == ""
    assert [i.severity for i in issues] == ["warning"]


def test_unknown_year_with_known_month_is_error():
    out, issues = one("15-MAR-UNKN", "dd-MMM-yyyy")
    assert out == ""
    assert issues[0].severity == "error"
    assert "year" in issues[0].reason


def test_unknown_tokens_are_configurable():
    out, issues = one("NK-MAR-2021", "dd-MMM-yyyy", unknown=("NK",))
    assert (out, issues) == ("2021-03", [])
    out, issues = one("UN-MAR-2021", "dd-MMM-yyyy", unknown=("NK",))
    assert out == "" and issues[0].severity == "error"


def test_zero_is_unknown_can_be_switched_off():
    out, issues = one("00/06/1968", "dd/MM/yyyy", zero_is_unknown=False)
    assert out == ""
    assert "day 0" in issues[0].reason


# ---------------------------------------------------------------- to_iso8601: times

def test_separate_time_hhmm():
    out, issues = convert(["15-Mar-2021"], "dd-MMM-yyyy", times=["0945"], time_format="HHmm")
    assert out.tolist() == ["2021-03-15T09:45"]
    assert issues == []


def test_blank_time_gives_date_only():
    out, issues = convert(["15-Mar-2021", "16-Mar-2021"], "dd-MMM-yyyy",
                          times=["", None], time_format="HH:mm")
    assert out.tolist() == ["2021-03-15", "2021-03-16"]
    assert issues == []


@pytest.mark.parametrize("time, fmt, expected", [
    ("09:45", "HH:mm", "2021-03-15T09:45"),
    ("9:05", "H:mm", "2021-03-15T09:05"),
    ("09:45:30", "HH:mm:ss", "2021-03-15T09:45:30"),
    ("10:UN", "HH:mm", "2021-03-15T10"),
    ("10UN", "HHmm", "2021-03-15T10"),
    ("UN:30", "HH:mm", "2021-03-15T-:30"),
    ("10:UN:15", "HH:mm:ss", "2021-03-15T10:-:15"),
    ("UN:UN", "HH:mm", "2021-03-15"),
    ("00:00", "HH:mm", "2021-03-15T00:00"),
])
def test_time_formats_and_unknown_parts(time, fmt, expected):
    out, issues = convert(["15-MAR-2021"], "dd-MMM-yyyy", times=[time], time_format=fmt)
    assert out.tolist() == [expected]
    assert issues == []


def test_time_2400_is_error():
    out, issues = convert(["15-MAR-2021"], "dd-MMM-yyyy", times=["2400"], time_format="HHmm")
    assert out.tolist() == [""]
    assert [(i.severity, i.field, i.value) for i in issues] == [("error", "time", "2400")]
    assert "hour 24" in issues[0].reason


def test_minute_60_is_error():
    out, issues = convert(["15-MAR-2021"], "dd-MMM-yyyy", times=["10:60"], time_format="HH:mm")
    assert out.tolist() == [""]
    assert "minute 60" in issues[0].reason


def test_time_without_date_is_error():
    out, issues = convert([""], "dd-MMM-yyyy", times=["09:45"], time_format="HH:mm")
    assert out.tolist() == [""]
    assert issues[0].severity == "error" and "without a date" in issues[0].reason


def test_time_with_partial_date_is_dropped_with_warning():
    out, issues = convert(["UN-MAR-2021"], "dd-MMM-yyyy", times=["09:45"], time_format="HH:mm")
    assert out.tolist() == ["2021-03"]
    assert [i.severity for i in issues] == ["warning"]
    assert issues[0].index == "r0"


def test_datetime_in_one_column_time_optional():
    out, issues = convert(["15-MAR-2021 09:45", "16 MAR 2021", "UN-MAR-2021 10:00"],
                          "dd-MMM-yyyy HH:mm")
    assert out.tolist() == ["2021-03-15T09:45", "2021-03-16", "2021-03"]
    assert [(i.index, i.severity) for i in issues] == [("r2", "warning")]


# ---------------------------------------------------------------- to_iso8601: errors

@pytest.mark.parametrize("raw, fmt, words", [
    ("30-FEB-2021", "dd-MMM-yyyy", ["February", "30"]),
    ("29-FEB-2021", "dd-MMM-yyyy", ["February", "29"]),
    ("2021-13-01", "yyyy-MM-dd", ["month 13"]),
    ("31/04/2021", "dd/MM/yyyy", ["April", "31"]),
    ("32/01/2021", "dd/MM/yyyy", ["January", "32"]),
    ("32-UNK-2021", "dd-MMM-yyyy", ["day 32"]),
    ("2021-03-15", "dd/MM/yyyy", ["does not match"]),
    ("15-ABC-2021", "dd-MMM-yyyy", ["ABC"]),
    ("15-03-2021", "dd-MMM-yyyy", ["does not match"]),
    ("5/3/2021", "dd/MM/yyyy", ["does not match"]),
])
def test_impossible_or_unreadable_dates_are_errors(raw, fmt, words):
    out, issues = one(raw, fmt)
    assert out == ""
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.index, issue.value, issue.severity) == ("r0", raw, "error")
    for word in words:
        assert word in issue.reason


def test_leap_day_in_leap_year_is_fine():
    assert one("29-FEB-2020", "dd-MMM-yyyy") == ("2020-02-29", [])


def test_issues_name_every_row_with_its_label():
    dates = pd.Series(["30-FEB-2021", "15-MAR-2021", "30-FEB-2021"], index=[10, 11, 12])
    out, issues = to_iso8601(dates, date_format="dd-MMM-yyyy")
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist() == ["", "2021-03-15", ""]
    assert [i.index for i in issues] == [10, 12]
    assert all(isinstance(i, DateIssue) for i in issues)


@pytest.mark.parametrize("fmt", ["dd-MMM-yy", "dd/MM/yy", "dd-MMMM-yyyy", "dd-MM-yyyy hh:mm", "dd-XX-yyyy"])
def test_bad_format_declarations_are_refused(fmt):
    with pytest.raises(ValueError):
        to_iso8601(pd.Series(["01-01-2021"]), date_format=fmt)


def test_already_parsed_datetimes_are_refused():
    with pytest.raises(TypeError):
        to_iso8601(pd.Series(pd.to_datetime(["2021-03-15"])), date_format="yyyy-MM-dd")


def test_time_format_required_with_times():
    with pytest.raises(ValueError):
        to_iso8601(pd.Series(["15-MAR-2021"]), pd.Series(["09:45"]), date_format="dd-MMM-yyyy")


# ---------------------------------------------------------------- is_iso8601

@pytest.mark.parametrize("value, ok", [
    ("", True),
    ("2021", True),
    ("2021-03", True),
    ("2021-03-15", True),
    ("2021-03-15T09", True),
    ("2021-03-15T09:45", True),
    ("2021-03-15T09:45:00", True),
    ("2021-03-15T09:45:00.123", True),
    ("2003-12-15T13:15:17", True),
    ("2003-12-15T-:15", True),
    ("2003-12-15T13:-:17", True),
    ("2003---15", True),
    ("--12-15", True),
    ("-----T07:15", True),
    ("2019-07--T10:30", True),
    ("2020-02-29", True),
    ("2021-03-15T09:45Z", True),
    ("2021-03-15T09:45+01:00", True),
    ("2021-02-29", False),
    ("2021-1-5", False),
    ("2021-13-01", False),
    ("2021-04-31", False),
    ("2021-03-15T25:00", False),
    ("2021-03-15T24:00", False),
    ("2021-03-15T09:60", False),
    ("2021-03-15 09:45", False),
    ("2021-03-", False),
    ("2021---", False),
    ("2021-03T10:00", False),
    ("-----", False),
    ("T07:15", False),
    ("21-03-15", False),
    ("0000-01-01", False),
    ("15-MAR-2021", False),
    (" 2021-03-15", False),
    ("2021-03-15/2021-03-20", False),
    ("P3D", False),
])
def test_is_iso8601(value, ok):
    assert is_iso8601(pd.Series([value])).tolist() == [ok]


def test_is_iso8601_keeps_index_and_treats_nan_as_missing():
    s = pd.Series(["2021-03-15", np.nan, "bad"], index=["a", "b", "c"], dtype="str")
    result = is_iso8601(s)
    assert result.dtype == bool
    assert result.to_dict() == {"a": True, "b": True, "c": False}


# ---------------------------------------------------------------- precision and date part

def test_dtc_precision():
    values = ["2021", "2021-03", "2021-03-15", "2021-03-15T09", "2021-03-15T09:45",
              "2021-03-15T09:45:00.5", "2019---20", "2019-07--T10:30", "--12-15", "", "junk"]
    assert dtc_precision(pd.Series(values)).tolist() == [
        "year", "month", "day", "hour", "minute", "second", "year", "month", "", "", ""]


def test_dtc_date():
    result = dtc_date(pd.Series(["2021-03-15T09:45", "2021-03", "", "2019---20", "2020-02-29"]))
    assert str(result.dtype) == "datetime64[ns]"
    assert result.iloc[0] == pd.Timestamp("2021-03-15")
    assert result.iloc[4] == pd.Timestamp("2020-02-29")
    assert result.iloc[1:4].isna().all()


# ---------------------------------------------------------------- study day

@pytest.mark.parametrize("dtc, ref, day", [
    ("2021-03-15", "2021-03-15", 1),
    ("2021-03-16", "2021-03-15", 2),
    ("2021-03-14", "2021-03-15", -1),
    ("2021-03-01", "2021-03-15", -14),
    ("2022-03-15", "2021-03-15", 366),
    ("2021-03-16T08:00", "2021-03-15", 2),
    ("2021-03-15T00:01", "2021-03-15T23:59", 1),
    ("2020-03-01", "2020-02-28", 3),
])
def test_study_day(dtc, ref, day):
    assert study_day(pd.Series([dtc]), pd.Series([ref])).tolist() == [day]


def test_study_day_partial_or_missing_is_na():
    result = study_day(pd.Series(["2021-03", "", "2021-03-20", "2021---15"]),
                       pd.Series(["2021-03-15", "2021-03-15", "", "2021-03-15"]))
    assert str(result.dtype) == "Int64"
    assert result.isna().tolist() == [True, True, True, True]


def test_study_day_aligns_by_index():
    dtc = pd.Series(["2021-03-16", "2021-04-01"], index=["b", "a"])
    ref = pd.Series(["2021-03-31", "2021-03-15"], index=["a", "b"])
    assert study_day(dtc, ref).to_dict() == {"b": 2, "a": 2}


# ---------------------------------------------------------------- compare

@pytest.mark.parametrize("a, b, expected", [
    ("2021-10", "2021-09-30", 1),
    ("2021-09-30", "2021-10", -1),
    ("2021-10", "2021-10-15", pd.NA),
    ("2021-10-15", "2021-10-15", 0),
    ("2021-10-15", "2021-10-16", -1),
    ("2021-10-15", "2021-10-15T08:00", pd.NA),
    ("2021-10-15T08:00", "2021-10-15T08:00", 0),
    ("2021-10-15T08:00", "2021-10-15T07:59", 1),
    ("2021-10-15T08", "2021-10-15T09:00", -1),
    ("2021", "2022-01-01", -1),
    ("2021", "2021", 0),
    ("2019---20", "2019---20", pd.NA),
    ("2019---20", "2020-01", -1),
    ("2021-03-15T10:00+01:00", "2021-03-15T09:30Z", -1),
    ("2021-03-15T10:00+01:00", "2021-03-15T09:30", pd.NA),
    ("", "2021-10-15", pd.NA),
    ("junk", "2021-10-15", pd.NA),
])
def test_compare_dtc(a, b, expected):
    result = compare_dtc(pd.Series([a]), pd.Series([b]))
    assert str(result.dtype) == "Int64"
    if expected is pd.NA:
        assert result.isna().all()
    else:
        assert result.tolist() == [expected]


# ---------------------------------------------------------------- age

@pytest.mark.parametrize("birth, ref, age, ambiguous", [
    ("1968-06", "2021-05-10", 52, False),
    ("1968-05", "2021-05-10", None, True),
    ("1980", "2021-06-01", None, True),
    ("1980-05-10", "2021-05-10", 41, False),
    ("1980-05-11", "2021-05-10", 40, False),
    ("1980-05-09", "2021-05-10T08:00", 41, False),
    ("1968-04", "2021-05-10", 53, False),
    ("", "2021-05-10", None, False),
    ("1980-05-10", "", None, False),
])
def test_age_in_years(birth, ref, age, ambiguous):
    ages, amb = age_in_years(pd.Series([birth]), pd.Series([ref]))
    assert str(ages.dtype) == "Int64"
    assert (None if pd.isna(ages.iloc[0]) else int(ages.iloc[0])) == age
    assert amb.tolist() == [ambiguous]


# ---------------------------------------------------------------- format_iso

def test_format_iso():
    ts = pd.Series(pd.to_datetime(["2021-03-15 09:45:30", None]))
    assert format_iso(ts, "minute").tolist() == ["2021-03-15T09:45", ""]
    assert format_iso(ts, "day").tolist() == ["2021-03-15", ""]
