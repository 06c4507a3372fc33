"""The expression language as docs/expressions.md describes it, tested from the outside.

Only the public API of `sdtm_rA.expression` is used (Expression, ExpressionError, the type names).
Every expected value is worked out by hand from the document: the syntax table, the rules on types
and missing values, the partial-date table and the generated function table.  Columns are small
pandas frames: text is object dtype with '' for missing, numbers are float, dates are either text
declared as DATE or datetime64.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from sdtm_rA.expression import ANY, BOOL, DATE, NUMBER, TEXT, Expression, ExpressionError


# ============================================================================ helpers

def _frame(cols: dict) -> pd.DataFrame:
    """A frame of the given columns (one row when there are none); integers become floats."""
    if not cols:
        return pd.DataFrame(index=range(1))
    df = pd.DataFrame(cols)
    for name in df.columns:
        if pd.api.types.is_integer_dtype(df[name]):
            df[name] = df[name].astype(float)
    return df


def _run(method: str, text: str, dates, cols: dict):
    df = _frame(cols)
    return getattr(Expression(text), method)(lambda name: df[name],
                                             lambda name: DATE if name in dates else None, len(df))


def where(text: str, dates=(), **cols) -> list[bool]:
    """The records a `where:` keeps."""
    return _run("mask", text, dates, cols).tolist()


def truth(text: str, dates=(), **cols) -> list:
    """A condition per record: True, False or None for unknown."""
    data = _run("evaluate", text, dates, cols).data
    return [None if pd.isna(x) else bool(x) for x in data]


def value(text: str, dates=(), **cols) -> list:
    """The value per record; numbers rounded to 9 decimals and NaN as None, so lists compare."""
    out = _run("values", text, dates, cols).tolist()
    return [None if isinstance(x, float) and math.isnan(x) else round(x, 9) if isinstance(x, float)
            else x for x in out]


def one(text: str, **cols):
    """The value of an expression with one record."""
    (v,) = value(text, **{k: [x] for k, x in cols.items()})
    return v


def type_of(**types):
    return lambda name: types.get(name)


def check_error(text: str, types=None) -> ExpressionError:
    """The error raised before any data: on parsing, or by check() with the given types."""
    with pytest.raises(ExpressionError) as info:
        Expression(text).check(types or (lambda name: None))
    return info.value


def syntax_error(text: str) -> ExpressionError:
    """The error raised by parsing alone."""
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    return info.value


def data_error(method: str, text: str, dates=(), **cols) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        _run(method, text, dates, cols)
    return info.value


# ============================================================================ syntax: comparisons

AGES = [10.0, 18.0, 30.0]


@pytest.mark.parametrize("op, expected", [
    ("=", [False, True, False]), ("<>", [True, False, True]), ("!=", [True, False, True]),
    ("^=", [True, False, True]), ("<", [True, False, False]), ("<=", [True, True, False]),
    (">", [False, False, True]), (">=", [False, True, True]),
    ("eq", [False, True, False]), ("ne", [True, False, True]), ("lt", [True, False, False]),
    ("le", [True, True, False]), ("gt", [False, False, True]), ("ge", [False, True, True]),
    ("EQ", [False, True, False]), ("Ge", [False, True, True]),
])
def test_comparison_operators(op, expected):
    assert where(f"AGE {op} 18", AGE=AGES) == expected


def test_text_equality_and_inequality():
    assert where("SEX = 'F'", SEX=["F", "M", ""]) == [True, False, False]
    assert where("SEX <> 'F'", SEX=["F", "M", ""]) == [False, True, True]
    assert where('SEX = "M"', SEX=["F", "M", ""]) == [False, True, False]


def test_true_and_false_literals():
    assert where("true", X=[1.0, 2.0]) == [True, True]
    assert where("false", X=[1.0, 2.0]) == [False, False]
    assert where("true and not false", X=[1.0]) == [True]
    assert where("TRUE or FALSE", X=[1.0]) == [True]


# ============================================================================ syntax: logic

def test_and_binds_tighter_than_or():
    # X = 1 or (X = 2 and X = 3): true for 1; ((X = 1 or X = 2) and X = 3) would be false everywhere
    assert where("X = 1 or X = 2 and X = 3", X=[1.0, 2.0, 3.0]) == [True, False, False]
    assert where("X = 3 and X = 2 or X = 1", X=[1.0, 2.0, 3.0]) == [True, False, False]


def test_not_binds_tighter_than_and():
    # (not X = 1) and X = 2: only 2; not (X = 1 and X = 2) would also keep 1 and 3
    assert where("not X = 1 and X = 2", X=[1.0, 2.0, 3.0]) == [False, True, False]


def test_parentheses_override_precedence():
    assert where("(X = 1 or X = 2) and X = 2", X=[1.0, 2.0, 3.0]) == [False, True, False]
    assert where("not (X = 1 or X = 2)", X=[1.0, 2.0, 3.0]) == [False, False, True]


def test_and_or_not_on_mixed_columns():
    df = dict(AGE=[17.0, 40.0, 40.0, 70.0], SEX=["F", "F", "M", "F"])
    assert where("AGE > 18 and SEX = 'F'", **df) == [False, True, False, True]
    assert where("AGE > 65 or SEX = 'M'", **df) == [False, False, True, True]
    assert where("not SEX = 'F'", **df) == [False, False, True, False]


# ============================================================================ syntax: in, between

def test_in_and_not_in_with_texts():
    visits = ["WEEK 4", "WEEK 12", "WEEK 8", ""]
    assert where("VISIT in ('WEEK 4', 'WEEK 8')", VISIT=visits) == [True, False, True, False]
    # a text comparison is never unknown: '' is simply not in the list
    assert where("VISIT not in ('WEEK 4', 'WEEK 8')", VISIT=visits) == [False, True, False, True]


def test_in_with_numbers_and_a_single_element():
    assert where("AGE in (18, 30)", AGE=AGES) == [False, True, True]
    assert where("AGE not in (18)", AGE=AGES) == [True, False, True]


def test_between_includes_both_ends():
    ages = [17.0, 18.0, 40.0, 65.0, 66.0]
    assert where("AGE between 18 and 65", AGE=ages) == [False, True, True, True, False]
    # the `and` of between does not end the condition: the second `and` is logic
    assert where("AGE between 18 and 65 and AGE <> 40", AGE=ages) == [False, True, False, True, False]


def test_between_reads_raw_text_as_numbers():
    assert where("ae.AGE between 18 and 65", **{"ae.AGE": ["17", "18", "65", "66"]}) == \
        [False, True, True, False]


# ============================================================================ syntax: missing values

def test_is_missing_and_is_not_missing_on_text_and_numbers():
    assert where("T is missing", T=["", "A"]) == [True, False]
    assert where("T is not missing", T=["", "A"]) == [False, True]
    assert where("X is missing", X=[np.nan, 0.0]) == [True, False]
    assert where("X is not missing", X=[np.nan, 0.0]) == [False, True]


def test_is_null_is_is_missing():
    assert where("T is null", T=["", "A"]) == [True, False]
    assert where("X IS NULL", X=[np.nan, 0.0]) == [True, False]


# ============================================================================ syntax: like

def test_like_percent_is_any_text_and_the_whole_text_must_match():
    terms = ["HEADACHE", "HEAD", "SEVERE HEADACHE", "HEAVY"]
    assert where("AETERM like 'HEAD%'", AETERM=terms) == [True, True, False, False]
    assert where("AETERM like '%ACHE'", AETERM=terms) == [True, False, True, False]
    assert where("AETERM like 'HEAD'", AETERM=terms) == [False, True, False, False]
    assert where("AETERM like 'H%E'", AETERM=terms) == [True, False, False, False]


def test_like_underscore_is_exactly_one_character():
    terms = ["A1C", "AC", "A12C", "A.C"]
    assert where("T like 'A_C'", T=terms) == [True, False, False, True]
    # other characters are themselves, not regular-expression syntax
    assert where("T like 'A.C'", T=terms) == [False, False, False, True]
    assert where("T like 'A(%'", T=["A(B", "AB"]) == [True, False]
    assert where("T like 'A+B*'", T=["A+B*", "AAB", "A+B"]) == [True, False, False]


# ============================================================================ syntax: arithmetic, ||

@pytest.mark.parametrize("text, expected", [
    ("2 + 3 * 4", 14.0), ("(2 + 3) * 4", 20.0), ("2 ** 3", 8.0), ("2 * 3 ** 2", 18.0),
    ("10 - 4 - 3", 3.0), ("8 / 2 / 2", 2.0), ("7 / 2", 3.5), ("0.25 * 4", 1.0), ("1e-3 * 1000", 1.0),
    ("9 ** 0.5", 3.0), ("1 + 2 * 3 - 4 / 2", 5.0),
])
def test_arithmetic_and_precedence(text, expected):
    assert one(text) == expected


def test_unary_minus_and_negative_powers():
    assert value("-X + 1", X=[2.0, -3.0]) == [-1.0, 4.0]
    assert one("2 ** -1") == 0.5
    assert one("abs(-2)") == 2.0


def test_arithmetic_on_columns_keeps_missing():
    assert value("(value - 32) * 5 / 9", value=[212.0, 32.0, np.nan]) == [100.0, 0.0, None]


def test_arithmetic_result_is_a_float_series_with_the_given_index():
    df = pd.DataFrame({"X": [1.0, 2.0]}, index=[10, 20])
    out = Expression("X * 2").values(lambda name: df[name], lambda name: None, 2, index=df.index)
    assert out.dtype == float
    assert out.to_dict() == {10: 2.0, 20: 4.0}


def test_a_constant_is_repeated_for_every_record():
    assert value("1 + 1", X=[0.0, 0.0, 0.0]) == [2.0, 2.0, 2.0]
    assert value("'Y'", X=[0.0, 0.0]) == ["Y", "Y"]


def test_joining_text():
    assert value("A || B", A=["x", "", "x"], B=["y", "y", ""]) == ["xy", "y", "x"]
    assert value("A || '-' || B", A=["x"], B=["y"]) == ["x-y"]
    # || binds tighter than a comparison
    assert where("A || B = 'xy'", A=["x", "x"], B=["y", "z"]) == [True, False]


# ============================================================================ syntax: case

def test_case_with_else():
    expr = "case when AGE < 18 then 'CHILD' when AGE < 65 then 'ADULT' else 'ELDERLY' end"
    assert value(expr, AGE=[5.0, 17.0, 18.0, 64.0, 65.0, 90.0]) == \
        ["CHILD", "CHILD", "ADULT", "ADULT", "ELDERLY", "ELDERLY"]


def test_case_without_else_is_missing():
    assert value("case when AGE < 18 then 'CHILD' end", AGE=[5.0, 40.0]) == ["CHILD", ""]
    assert value("case when X > 0 then X * 10 end", X=[2.0, -1.0]) == [20.0, None]


def test_case_first_true_branch_wins():
    assert value("case when X > 1 then 'A' when X > 0 then 'B' else 'C' end", X=[5.0, 0.5, 0.0]) == \
        ["A", "B", "C"]


# ============================================================================ syntax: names and text

def test_quoted_names_with_backticks():
    e = Expression("`Systolic BP` > 120")
    assert e.names == ["Systolic BP"]
    assert where("`Systolic BP` > 120", **{"Systolic BP": [130.0, 110.0]}) == [True, False]


def test_a_backtick_name_may_be_a_keyword():
    assert Expression("`and` = 'x' and AE_1 = 'y'").names == ["and", "AE_1"]
    assert where("`and` = 'x' and AE_1 = 'y'", **{"and": ["x", "x"], "AE_1": ["y", "z"]}) == [True, False]


def test_names_in_order_once_each_with_source_prefix():
    assert Expression("B > 1 and ae.AETERM = 'X' or B < 0 and A = ae.AETERM").names == \
        ["B", "ae.AETERM", "A"]


def test_names_are_case_sensitive():
    assert Expression("AGE > 1 and age > 2").names == ["AGE", "age"]


def test_function_names_are_not_names():
    assert Expression("upper(scan(dm.PATNUM, 1, '-'))").names == ["dm.PATNUM"]


def test_a_quote_inside_text_is_doubled():
    assert one("'PARKINSON''S'") == "PARKINSON'S"
    assert one('"say ""hi"""') == 'say "hi"'
    assert one("'it''s' || \"\"\"q\"\"\"") == "it's\"q\""
    assert where("T = 'PARKINSON''S'", T=["PARKINSON'S", "PARKINSON"]) == [True, False]


def test_the_other_quote_inside_text_needs_no_doubling():
    assert one("\"PARKINSON'S\"") == "PARKINSON'S"


def test_keywords_and_function_names_are_case_insensitive():
    df = dict(AGE=[17.0, 40.0, np.nan], SEX=["F", "F", "M"])
    assert where("AGE > 18 AND SEX = 'F'", **df) == [False, True, False]
    assert where("AGE > 65 Or NOT SEX = 'F'", **df) == [False, False, True]
    assert where("SEX IN ('M')", **df) == [False, False, True]
    assert where("SEX Not In ('M')", **df) == [True, True, False]
    assert where("AGE BETWEEN 18 AND 65", **df) == [False, True, False]
    assert where("AGE Is Missing", **df) == [False, False, True]
    assert where("AGE IS NOT MISSING", **df) == [True, True, False]
    assert where("SEX LIKE 'F%'", **df) == [True, True, False]
    assert value("CASE WHEN SEX = 'F' THEN 'W' ELSE 'O' END", **df) == ["W", "W", "O"]
    assert value("UPPER(Lower('aB')) || Scan('x-y', 2, '-')", **df) == ["ABy"] * 3


# ============================================================================ syntax errors

def test_unclosed_text():
    for text in ("AETERM = 'HEAD", 'AETERM = "HEAD'):
        e = syntax_error(text)
        assert e.pos in (9, len(text))  # the opening quote, or the end where the closing one is missing
        assert re.search(r"(?i)quote|unclosed|unterminated|not closed|never closed", e.message), e.message


def test_missing_closing_parenthesis():
    e = syntax_error("(AGE > 18 and SEX = 'F'")
    assert "')'" in e.message
    assert e.pos in (0, 23)
    e = syntax_error("upper(AETERM = 'X'")
    assert "')'" in e.message


def test_trailing_tokens():
    e = syntax_error("AGE > 18 19")
    assert e.pos == 9
    assert "19" in e.message
    e = syntax_error("AGE > 18)")
    assert e.pos == 8
    assert "')'" in e.message


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_expression(text):
    e = syntax_error(text)
    assert re.search(r"(?i)empty|nothing|no expression", e.message), e.message


def test_ampersand_instead_of_and():
    e = syntax_error("AGE > 18 & SEX = 'F'")
    assert e.pos == 9
    assert re.search(r"(?i)\band\b", e.message), e.message


def test_unknown_function_with_a_suggestion():
    text = "uper(AETERM) = 'X'"
    e = check_error(text)
    assert e.pos == 0
    assert e.message.startswith("unknown function 'uper' (did you mean 'upper'?); the functions are ")
    assert "abs" in e.message and "year" in e.message
    assert e.located() == e.message + " (at character 1: \"⟦u⟧per(AETERM) = 'X'\")"


def test_unknown_function_position_inside_the_expression():
    e = check_error("AGE > 1 and lenght(AETERM) > 3")
    assert e.pos == 12
    assert "unknown function 'lenght'" in e.message
    assert "did you mean 'length'?" in e.message


@pytest.mark.parametrize("text, function", [
    ("substr(AETERM)", "substr"), ("abs(AGE, 2)", "abs"), ("round(AGE, 1, 2)", "round"),
    ("upper()", "upper"), ("contains(AETERM)", "contains"),
])
def test_wrong_number_of_arguments(text, function):
    e = check_error(text)
    assert function in e.message
    assert re.search(r"(?i)argument", e.message), e.message
    assert e.pos == 0


@pytest.mark.parametrize("text", [
    "matches(X, '[a-')", "extract(X, '(\\d+')", "regex_replace(X, '*a', 'b')",
])
def test_a_pattern_that_does_not_compile(text):
    e = check_error(text)
    assert e.pos == text.index("'")
    assert re.search(r"(?i)regular expression|pattern|regex", e.message), e.message


@pytest.mark.parametrize("text, pos", [
    ("substr(X, N)", 10), ("round(X, N)", 9), ("scan(X, N)", 8), ("scan(X, 1, D)", 11),
    ("catx(S, A, B)", 5), ("replace(X, A, 'b')", 11), ("replace(X, 'a', B)", 16), ("matches(X, P)", 11),
])
def test_arguments_that_must_be_written_in_the_expression(text, pos):
    """Whole numbers, delimiters, separators, replacement texts and patterns are literals."""
    e = check_error(text, type_of(X=TEXT, N=NUMBER, D=TEXT, S=TEXT, A=TEXT, B=TEXT, P=TEXT))
    assert e.pos == pos
    assert text[:text.index("(")] in e.message


# ============================================================================ types

def test_text_meeting_a_number_is_read_as_a_number():
    assert where("ae.DOSE > 0", **{"ae.DOSE": ["5", "0", "-1.5", "0.25"]}) == [True, False, False, True]
    assert value("lab.RESULT * 2", **{"lab.RESULT": ["5", "1.25"]}) == [10.0, 2.5]
    assert where("ae.DOSE = 5", **{"ae.DOSE": ["5", "5.0", "50"]}) == [True, True, False]


def test_text_that_is_not_a_number_is_an_error_naming_the_value():
    e = data_error("mask", "ae.DOSE > 0", **{"ae.DOSE": ["5", "abc", "2"]})
    assert "'abc'" in e.message
    e = data_error("values", "lab.RESULT * 2", **{"lab.RESULT": ["1", "1O"]})
    assert "'1O'" in e.message


def test_every_value_that_is_not_a_number_is_named():
    e = data_error("mask", "ae.DOSE > 0", **{"ae.DOSE": ["abc", "5", "x1", "abc"]})
    assert "'abc'" in e.message and "'x1'" in e.message
    assert "'5'" not in e.message


def test_missing_text_meeting_a_number_is_missing_not_an_error():
    assert truth("ae.DOSE > 0", **{"ae.DOSE": ["", "3"]}) == [None, True]
    assert value("number(T)", T=["", "3"]) == [None, 3.0]


@pytest.mark.parametrize("op", ["<", ">", "<=", ">="])
def test_ordering_two_texts_is_an_error_before_data(op):
    text = f"lab.RESULT {op} lab.LOW"
    e = check_error(text, type_of(**{"lab.RESULT": TEXT, "lab.LOW": TEXT}))
    assert e.message.startswith(f"'{op}' between two texts would compare them letter by letter")
    assert e.pos == 11


def test_ordering_two_texts_message_of_the_doc():
    e = check_error("lab.RESULT < lab.LOW", type_of(**{"lab.RESULT": TEXT, "lab.LOW": TEXT}))
    assert e.message == ("'<' between two texts would compare them letter by letter ('10' < '9'); "
                         "write number(lab.RESULT) or date(lab.RESULT)")
    assert e.located().startswith(e.message + " (at character 12: ")


def test_ordering_two_text_literals_is_an_error():
    e = check_error("'10' < '9'")
    assert e.pos == 5
    assert e.message.startswith("'<' between two texts would compare them letter by letter")


def test_ordering_two_text_columns_is_an_error_on_data_too():
    data_error("mask", "A < B", A=["10"], B=["9"])


def test_a_text_column_against_a_date_like_text_is_still_two_texts():
    """Without date(...) or a DATE declaration, '2021-03-01' is text, and so is the column."""
    e = data_error("mask", "X >= '2021-03-01'", X=["2021-03-04"])
    assert e.message.startswith("'>=' between two texts")
    assert where("date(X) >= '2021-03-01'", X=["2021-03-04", "2021-02-28"]) == [True, False]


def test_equality_of_two_texts_is_fine():
    assert Expression("A = B").check(type_of(A=TEXT, B=TEXT)) == BOOL
    assert Expression("A <> B").check(type_of(A=TEXT, B=TEXT)) == BOOL


def test_text_meeting_a_number_passes_the_check():
    assert Expression("ae.DOSE > 0").check(type_of(**{"ae.DOSE": TEXT})) == BOOL
    assert Expression("lab.RESULT * 2").check(type_of(**{"lab.RESULT": TEXT})) == NUMBER


@pytest.mark.parametrize("text", [
    "(AGE > 18) + 1", "upper(AGE > 18)", "(AGE > 18) || 'x'", "true * 2", "(AGE > 1) = 'Y'",
])
def test_a_condition_where_a_value_is_needed(text):
    e = check_error(text, type_of(AGE=NUMBER))
    assert "condition" in e.message


@pytest.mark.parametrize("text, pos", [
    ("AGE and SEX = 'F'", 0), ("SEX = 'F' or AGE", 13), ("not AGE", 4), ("case when AGE then 'A' end", 10),
])
def test_a_value_where_a_condition_is_needed(text, pos):
    e = check_error(text, type_of(AGE=NUMBER, SEX=TEXT))
    assert e.pos == pos
    assert "AGE" in e.message and "condition" in e.message


def test_a_value_is_not_a_where():
    assert Expression("SEX").check(type_of(SEX=TEXT)) == TEXT
    data_error("mask", "SEX", SEX=["F"])


def test_a_condition_is_not_a_value():
    data_error("values", "AGE > 18", AGE=[20.0])


@pytest.mark.parametrize("text", ["AESTDTC > 5", "AESTDTC = AGE", "AGE <= AESTDTC", "AESTDTC between 1 and 2"])
def test_date_against_a_number_is_an_error(text):
    e = check_error(text, type_of(AESTDTC=DATE, AGE=NUMBER))
    assert "date" in e.message and "number" in e.message


@pytest.mark.parametrize("text", [
    "X > 5", "X < Y", "X + Y", "X || Y", "date(X) - date(Y)", "X like 'A%'", "X is missing",
    "upper(X) = 'A' and Y between 1 and 2", "number(X) > 5", "X >= '2021-03-01'",
    "case when X > 1 then Y end", "X * 2 > Y",
])
def test_check_with_unknown_types_does_not_raise(text):
    assert Expression(text).check(lambda name: None) in (NUMBER, TEXT, DATE, BOOL, ANY)


@pytest.mark.parametrize("text, types, expected", [
    ("AGE > 18 and SEX = 'F'", dict(AGE=NUMBER, SEX=TEXT), BOOL),
    ("AGE + 1", dict(AGE=NUMBER), NUMBER),
    ("upper(SEX)", dict(SEX=TEXT), TEXT),
    ("SEX || 'x'", dict(SEX=TEXT), TEXT),
    ("date(X)", dict(X=TEXT), DATE),
    ("AESTDTC + 1", dict(AESTDTC=DATE), DATE),
    ("ADT - TRTSDT + 1", dict(ADT=DATE, TRTSDT=DATE), NUMBER),
    ("length(SEX)", dict(SEX=TEXT), NUMBER),
    ("contains(SEX, 'F')", dict(SEX=TEXT), BOOL),
    ("case when AGE < 18 then 'CHILD' end", dict(AGE=NUMBER), TEXT),
    ("coalesce(A, B)", dict(A=TEXT, B=TEXT), TEXT),
    ("coalesce(A, 0)", dict(A=NUMBER), NUMBER),
    ("year(AESTDTC)", dict(AESTDTC=DATE), NUMBER),
    ("text(AGE)", dict(AGE=NUMBER), TEXT),
    ("X is missing", {}, BOOL),
    ("date(X) - date(Y)", dict(X=TEXT, Y=TEXT), NUMBER),
    ("AESTDTC + AGE", dict(AESTDTC=DATE, AGE=NUMBER), DATE),
    ("round(AGE / 7, 1)", dict(AGE=NUMBER), NUMBER),
    ("scan(SEX, 1)", dict(SEX=TEXT), TEXT),
])
def test_check_gives_the_result_type(text, types, expected):
    assert Expression(text).check(type_of(**types)) == expected


# ============================================================================ missing values, logic

def test_comparison_with_a_missing_number_is_unknown():
    assert truth("X > 1", X=[2.0, np.nan, 0.0]) == [True, None, False]
    assert truth("X = 1", X=[np.nan]) == [None]


@pytest.mark.parametrize("text, expected", [
    ("X > 1 and false", False), ("false and X > 1", False), ("X > 1 and true", None),
    ("X > 1 or true", True), ("true or X > 1", True), ("X > 1 or false", None),
    ("not X > 1", None), ("not (X > 1)", None), ("X > 1 and X < 5", None), ("X > 1 or X < 5", None),
])
def test_three_valued_logic(text, expected):
    assert truth(text, X=[np.nan]) == [expected]


def test_where_keeps_only_true():
    df = pd.DataFrame({"X": [2.0, np.nan, 0.0]})
    mask = Expression("X > 1").mask(lambda name: df[name], lambda name: None, 3)
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    assert mask.tolist() == [True, False, False]
    data = Expression("X > 1").evaluate(lambda name: df[name], lambda name: None, 3).data
    assert isinstance(data, pd.arrays.BooleanArray)
    assert data.isna().tolist() == [False, True, False]
    # not unknown is still unknown, so the missing record is kept by neither
    assert where("not (X > 1)", X=[2.0, np.nan, 0.0]) == [False, False, True]


def test_missing_text_equals_empty_text():
    assert truth("T = ''", T=["", "A"]) == [True, False]
    assert truth("T <> ''", T=["", "A"]) == [False, True]
    # a text comparison is never unknown
    assert truth("T = 'A'", T=["", "A"]) == [False, True]


def test_is_missing_is_never_unknown():
    assert truth("X is missing", X=[np.nan, 1.0]) == [True, False]
    assert truth("X is not missing", X=[np.nan, 1.0]) == [False, True]
    assert truth("D is missing", dates={"D"}, D=["", "2021", "2021-03-04"]) == [True, False, False]


def test_arithmetic_with_missing_is_missing():
    assert value("X + 1", X=[np.nan, 1.0]) == [None, 2.0]


# ============================================================================ short-circuit

def test_and_does_not_evaluate_its_right_side_where_the_left_is_false():
    x = ["abc", "7", "3", ""]
    assert where("is_number(X) and number(X) > 5", X=x) == [False, True, False, False]
    assert where("false and number(X) > 5", X=x) == [False, False, False, False]


def test_or_does_not_evaluate_its_right_side_where_the_left_is_true():
    x = ["abc", "7", "3", ""]
    assert where("not is_number(X) or number(X) > 5", X=x) == [True, True, False, True]
    assert where("X = 'abc' or X > 5", X=x) == [True, True, False, False]


def test_guards_protect_date_reading_and_nested_conditions():
    x = ["UNK", "2021-03-04", "", "2020-12-31"]
    assert where("X <> 'UNK' and X <> '' and date(X) > '2021-01-01'", X=x) == [False, True, False, False]
    assert value("case when X in ('UNK', '') then 'none' else text(date(X) + 1) end", X=x) == \
        ["none", "2021-03-05", "none", "2021-01-01"]
    y = ["abc", "7", "-3", "2"]
    assert where("Y <> 'abc' and (number(Y) > 5 or number(Y) < 0)", Y=y) == [False, True, True, False]
    assert where("not (is_number(Y) and number(Y) > 5)", Y=y) == [True, False, True, True]


def test_without_the_guard_the_bad_value_is_an_error():
    e = data_error("mask", "number(X) > 5", X=["abc", "7"])
    assert "'abc'" in e.message


def test_case_branches_are_evaluated_only_on_their_records():
    x = ["abc", "7", "", "2.5"]
    assert value("case when is_number(X) then number(X) * 2 else 0 end", X=x) == [0.0, 14.0, 0.0, 5.0]
    assert value("case when X = 'abc' then -1 when X = '' then -2 else number(X) end", X=x) == \
        [-1.0, 7.0, -2.0, 2.5]


# ============================================================================ dates

DOC_TABLE = dict(AESTDTC=["2021-03", "2021-03", "2021-03-04", "2021-03-04"],
                 RFXSTDTC=["2021-02-15", "2021-03-15", "2021-03-04T10:00", "2021-03-04"])
BOTH = {"AESTDTC", "RFXSTDTC"}


def test_partial_date_table_of_the_doc():
    assert truth("AESTDTC > RFXSTDTC", BOTH, **DOC_TABLE) == [True, None, None, False]
    assert truth("AESTDTC >= RFXSTDTC", BOTH, **DOC_TABLE) == [True, None, None, True]


def test_partial_dates_with_the_other_operators():
    assert truth("AESTDTC < RFXSTDTC", BOTH, **DOC_TABLE) == [False, None, None, False]
    assert truth("AESTDTC <= RFXSTDTC", BOTH, **DOC_TABLE) == [False, None, None, True]
    assert truth("AESTDTC = RFXSTDTC", BOTH, **DOC_TABLE) == [False, None, None, True]
    assert truth("AESTDTC <> RFXSTDTC", BOTH, **DOC_TABLE) == [True, None, None, False]


def test_date_keeps_the_day():
    assert value("date(RFXSTDTC)", BOTH, **DOC_TABLE) == ["2021-02-15", "2021-03-15", "2021-03-04", "2021-03-04"]
    assert truth("date(AESTDTC) >= date(RFXSTDTC)", BOTH, **DOC_TABLE) == [True, None, True, True]


def test_year_only_and_missing_dates():
    d = dict(A=["2021", "2021", "", "2021-06-01T08:00"],
             B=["2020-12-31", "2021-06-30", "2021-01-01", "2021-06-01T07:59"])
    assert truth("A > B", {"A", "B"}, **d) == [True, None, None, True]


def test_text_meeting_a_date_is_read_as_iso_8601():
    d = ["2021-03-01", "2021-02", "2021-03-01T10:00", "2021", ""]
    assert truth("AESTDTC >= '2021-03-01'", {"AESTDTC"}, AESTDTC=d) == [True, False, None, None, None]


# A partial date stands for each of its days ("every day of March is after 15 February"), and two
# dates of the same day compare as that day (the last row of the doc's table: `>` is false, `>=` true).
# (A, B, {operator: A op B})
COMPLETIONS = [
    ("2021-03", "2021-03-01", {">=": True, "<=": None, ">": None, "<": False}),
    ("2021-03", "2021-03-31", {">=": None, "<=": True, ">": False, "<": None}),
    ("2021-03", "2021-04-01", {">=": False, "<=": True, ">": False, "<": True}),
    ("2021", "2021-01-01", {">=": True, "<=": None, ">": None, "<": False}),
    ("2021", "2021-12-31", {">=": None, "<=": True, ">": False, "<": None}),
    ("2021-03-04", "2021-03", {">=": None, "<=": None, ">": None, "<": None}),
]


def _completion_cases():
    for a, b, results in COMPLETIONS:
        for op, expected in results.items():
            yield pytest.param(a, op, b, expected, id=f"{a}{op}{b}")


@pytest.mark.parametrize("a, op, b, expected", list(_completion_cases()))
def test_partial_dates_complete_to_the_days_they_stand_for(a, op, b, expected):
    assert truth(f"A {op} B", {"A", "B"}, A=[a], B=[b]) == [expected]


def test_a_month_against_its_first_day_literal():
    assert truth("AESTDTC >= '2021-03-01'", {"AESTDTC"}, AESTDTC=["2021-03"]) == [True]
    assert truth("AESTDTC < '2021-03-01'", {"AESTDTC"}, AESTDTC=["2021-03"]) == [False]


def test_a_partial_date_against_itself():
    # one completion each at month precision (March): equal, so < is false and <= true
    assert truth("A < B", {"A", "B"}, A=["2021-03"], B=["2021-03"]) == [False]
    assert truth("A <= B", {"A", "B"}, A=["2021-03"], B=["2021-03"]) == [True]
    assert truth("A = B", {"A", "B"}, A=["2021-03"], B=["2021-03"]) == [True]
    # a hyphenated gap (day known, month not) is never equal, even to itself
    assert truth("A = B", {"A", "B"}, A=["2019---20"], B=["2019---20"]) == [None]


def test_text_that_is_not_a_date_is_an_error():
    e = data_error("values", "date(ae.ONSET)", **{"ae.ONSET": ["2021-03-04", "yesterday"]})
    assert "'yesterday'" in e.message


def test_date_plus_and_minus_whole_days():
    d = ["2021-03-04", "2020-02-28", "2021-12-31", "2021-03-04T10:00"]
    assert value("AESTDTC + 30", {"AESTDTC"}, AESTDTC=d) == \
        ["2021-04-03", "2020-03-29", "2022-01-30", "2021-04-03T10:00"]
    assert value("AESTDTC + 1", {"AESTDTC"}, AESTDTC=d) == \
        ["2021-03-05", "2020-02-29", "2022-01-01", "2021-03-05T10:00"]
    assert value("AESTDTC - 4", {"AESTDTC"}, AESTDTC=d) == \
        ["2021-02-28", "2020-02-24", "2021-12-27", "2021-02-28T10:00"]


def test_date_plus_days_with_less_than_a_full_day_is_missing():
    assert value("AESTDTC + 1", {"AESTDTC"}, AESTDTC=["2021-03", "2021", ""]) == ["", "", ""]


def test_date_minus_date_is_the_number_of_days():
    d = dict(A=["2021-03-04", "2021-01-01", "2021-03-04T10:00", "2021-03", "2021-03-04", ""],
             B=["2021-02-15", "2021-01-10", "2021-03-01T23:00", "2021-02-15", "2021-02", "2021-01-01"])
    assert value("A - B", {"A", "B"}, **d) == [17.0, -9.0, 3.0, None, None, None]


def test_date_minus_date_counts_calendar_days_not_hours():
    d = dict(ADTM=pd.to_datetime(["2021-03-04 01:00", "2021-03-04 23:00"]),
             TRTSDTM=pd.to_datetime(["2021-03-03 23:00", "2021-03-04 01:00"]))
    assert value("ADTM - TRTSDTM", **d) == [1.0, 0.0]


def test_text_that_is_not_a_date_against_a_date_is_an_error():
    with pytest.raises(ExpressionError) as info:
        Expression("AESTDTC >= 'yesterday'").check(type_of(AESTDTC=DATE))
        _run("mask", "AESTDTC >= 'yesterday'", {"AESTDTC"}, dict(AESTDTC=["2021-03-04"]))
    assert "'yesterday'" in info.value.message


def test_a_fraction_of_a_day_is_an_error():
    with pytest.raises(ExpressionError):
        _run("values", "AESTDTC + 0.5", {"AESTDTC"}, dict(AESTDTC=["2021-03-04"]))
    with pytest.raises(ExpressionError):
        _run("values", "AESTDTC + N", {"AESTDTC"}, dict(AESTDTC=["2021-03-04", "2021-03-05"], N=[1.0, 0.5]))


def test_datetime64_columns_of_whole_days():
    d = dict(ADT=pd.to_datetime(["2021-01-10", "2020-12-31", "2021-03-02"]),
             TRTSDT=pd.to_datetime(["2021-01-01", "2021-01-01", "2021-01-01"]),
             TRTEDT=pd.to_datetime(["2021-01-31", "2021-01-31", "2021-01-31"]))
    assert value("ADT - TRTSDT + 1", **d) == [10.0, 0.0, 61.0]
    assert value("ADT", **d) == ["2021-01-10", "2020-12-31", "2021-03-02"]
    assert value("TRTEDT + 30", **d) == ["2021-03-02"] * 3
    assert where("ADT >= TRTSDT and ADT <= TRTEDT + 30", **d) == [True, False, True]
    assert where("TRTEDT + 30 >= ADT", **d) == [True, True, True]


def test_datetime64_with_times_and_not_a_time():
    d = dict(ADTM=pd.to_datetime(["2021-03-04 10:00", "2021-03-05 00:00", None]))
    assert value("date(ADTM)", **d) == ["2021-03-04", "2021-03-05", ""]
    # a timed value on the day of a day-only date: the day could be any time of that day
    assert truth("ADTM >= '2021-03-04'", **d) == [None, True, None]
    assert truth("ADTM is missing", **d) == [False, False, True]


def test_dates_are_written_as_iso_text_at_their_precision():
    d = ["2021", "2021-03", "2021-03-04", "2021-03-04T10:00", ""]
    assert value("AESTDTC", {"AESTDTC"}, AESTDTC=d) == d
    assert value("date(X)", X=["2021", "2021-03", "2021-03-04", ""]) == ["2021", "2021-03", "2021-03-04", ""]
    assert value("text(AESTDTC)", {"AESTDTC"}, AESTDTC=d) == d


# ============================================================================ functions

def test_abs():
    assert value("abs(CHG)", CHG=[-2.5, 3.0, np.nan]) == [2.5, 3.0, None]


def test_catx_skips_empty_and_blank_parts_and_strips():
    cols = {"cm.IND1": [" x ", "", "a", ""], "cm.IND2": ["", " ", "b", ""], "cm.IND3": ["y", "z", " ", ""]}
    assert value("catx(', ', cm.IND1, cm.IND2, cm.IND3)", **cols) == ["x, y", "z", "a, b", ""]


def test_ceil():
    assert value("ceil(ADY / 7)", ADY=[15.0, 14.0, -1.0, np.nan]) == [3.0, 2.0, 0.0, None]
    assert one("ceil(-2.1)") == -2.0


def test_coalesce():
    assert value("coalesce(A, B, 'none')", A=["", "", "a"], B=["", "b", "c"]) == ["none", "b", "a"]
    assert value("coalesce(X, 0)", X=[np.nan, 5.0]) == [0.0, 5.0]
    assert value("coalesce(X, Y)", X=[np.nan, np.nan], Y=[np.nan, 2.0]) == [None, 2.0]


def test_coalesce_of_dates_is_a_date():
    assert value("coalesce(D1, D2)", {"D1", "D2"}, D1=["", "2021-03"], D2=["2021-01-01", "2021-02-02"]) == \
        ["2021-01-01", "2021-03"]
    assert Expression("coalesce(D1, D2)").check(type_of(D1=DATE, D2=DATE)) == DATE


def test_contains():
    assert where("contains(upper(CMINDC), 'ARTHRITIS')", CMINDC=["rheumatoid arthritis", "gout"]) == [True, False]


def test_date_function_from_text():
    assert value("date(X)", X=["2021-03-04T10:00", "2021-03-04", "2021-03"]) == \
        ["2021-03-04", "2021-03-04", "2021-03"]


def test_day_month_year_of_partial_dates():
    d = ["2021-03-04", "2021-03", "2021", "", "2021-12-31T23:59"]
    assert value("day(D)", {"D"}, D=d) == [4.0, None, None, None, 31.0]
    assert value("month(D)", {"D"}, D=d) == [3.0, 3.0, None, None, 12.0]
    assert value("year(D)", {"D"}, D=d) == [2021.0, 2021.0, 2021.0, None, 2021.0]
    adt = pd.to_datetime(["2020-02-29", None])
    assert value("year(ADT) * 10000 + month(ADT) * 100 + day(ADT)", ADT=adt) == [20200229.0, None]


def test_ends_with_and_starts_with():
    assert where("ends_with(FORM, '_LOG')", FORM=["AE_LOG", "LOG_AE", "AE_LOGS"]) == [True, False, False]
    assert where("starts_with(VISIT, 'UNSCH')", VISIT=["UNSCHEDULED 1", "WEEK 1", "X UNSCH"]) == \
        [True, False, False]


def test_exp():
    assert value("exp(X)", X=[0.0, 1.0]) == [1.0, round(math.e, 9)]


def test_extract_with_a_group():
    assert value(r"extract(dm.PATNUM, '^(\d+)-')", **{"dm.PATNUM": ["123-45", "ABC", "7-8-9"]}) == \
        ["123", "", "7"]


def test_extract_without_a_group_gives_the_whole_match():
    assert value(r"extract(X, '\d+')", X=["AB12-345", "none"]) == ["12", ""]


def test_extract_with_a_group_number():
    assert value(r"extract(X, '(\d+)-(\d+)', 2)", X=["12-34", "12"]) == ["34", ""]


def test_floor():
    assert value("floor(AGE)", AGE=[65.9, -0.5, 3.0]) == [65.0, -1.0, 3.0]


def test_is_number():
    x = ["12", "-1.5", "0.25", "abc", "", "12a", "1.2.3"]
    assert truth("is_number(LBORRES)", LBORRES=x) == [True, True, True, False, False, False, False]


def test_length_ignores_trailing_blanks():
    assert value("length(AETERM)", AETERM=["abc  ", "", "  ab", "a b"]) == [3.0, 0.0, 4.0, 3.0]


def test_log_and_log10():
    assert value("log(X)", X=[1.0, math.e ** 2, 0.0, -1.0]) == [0.0, 2.0, None, None]
    assert value("log10(X)", X=[1000.0, 0.01, 0.0, -5.0]) == [3.0, -2.0, None, None]


def test_lower_and_upper():
    assert value("lower(cm.ROUTE)", **{"cm.ROUTE": ["ORAL", "Iv"]}) == ["oral", "iv"]
    assert value("upper(ae.TERM)", **{"ae.TERM": ["aspirin", "Head Ache"]}) == ["ASPIRIN", "HEAD ACHE"]


def test_matches_anywhere_unless_anchored():
    assert where("matches(LBORRES, '^[<>]')", LBORRES=["<5", "5", ">10", "5<"]) == [True, False, True, False]
    assert where("matches(X, 'b')", X=["abc", "ac"]) == [True, False]
    assert where("matches(X, '^b')", X=["abc", "bc"]) == [False, True]


def test_max_and_min_ignore_missing():
    assert value("max(AVAL, 0)", AVAL=[-1.0, 5.0, np.nan]) == [0.0, 5.0, 0.0]
    assert value("min(AVAL, 100)", AVAL=[150.0, 5.0, np.nan]) == [100.0, 5.0, 100.0]
    assert value("max(X, Y, Z)", X=[1.0, np.nan], Y=[7.0, np.nan], Z=[3.0, np.nan]) == [7.0, None]
    assert value("min(X, Y, Z)", X=[4.0, np.nan], Y=[-2.0, 8.0], Z=[9.0, np.nan]) == [-2.0, 8.0]


def test_number():
    assert value("number(lab.RESULT)", **{"lab.RESULT": ["12.5", "-3", "0"]}) == [12.5, -3.0, 0.0]
    assert where("number(lab.RESULT) > number(lab.HIGH)",
                 **{"lab.RESULT": ["12", "9", "100"], "lab.HIGH": ["10", "10", "99.5"]}) == [True, False, True]


def test_regex_replace():
    assert value(r"regex_replace(TERM, '\s+', ' ')", TERM=["a   b\tc", "ab"]) == ["a b c", "ab"]
    assert value(r"regex_replace(X, '(\d+)-(\d+)', '\2-\1')", X=["12-34 and 5-6"]) == ["34-12 and 6-5"]


def test_replace_every_occurrence_literally():
    assert value("replace(VSORRESU, 'deg ', '')", VSORRESU=["deg C", "deg F deg ", "C"]) == ["C", "F ", "C"]
    assert value("replace(X, '.', '-')", X=["a.b.c", "abc"]) == ["a-b-c", "abc"]


@pytest.mark.parametrize("text, expected", [
    ("round(2.5)", 3.0), ("round(-2.5)", -3.0), ("round(0.5)", 1.0), ("round(1.5)", 2.0),
    ("round(-0.5)", -1.0), ("round(2.4)", 2.0), ("round(2.675, 2)", 2.68), ("round(1.005, 2)", 1.01),
    ("round(-2.675, 2)", -2.68), ("round(1.25, 1)", 1.3), ("round(1234.5678, 2)", 1234.57),
    ("round(7)", 7.0),
])
def test_round_halves_away_from_zero(text, expected):
    assert one(text) == expected


def test_round_on_a_column():
    assert value("round(AVAL, 1)", AVAL=[2.45, -2.45, np.nan, 3.14159]) == [2.5, -2.5, None, 3.1]


def test_scan():
    pat = {"dm.PATNUM": ["ABC-101-003", "XYZ", ""]}
    assert value("scan(dm.PATNUM, 1, '-')", **pat) == ["ABC", "XYZ", ""]
    assert value("scan(dm.PATNUM, 2, '-')", **pat) == ["101", "", ""]
    assert value("scan(dm.PATNUM, 3, '-')", **pat) == ["003", "", ""]


def test_scan_negative_counts_from_the_end():
    pat = {"dm.PATNUM": ["ABC-101-003", "XYZ"]}
    assert value("scan(dm.PATNUM, -1, '-')", **pat) == ["003", "XYZ"]
    assert value("scan(dm.PATNUM, -3, '-')", **pat) == ["ABC", ""]


def test_scan_with_fewer_words_is_empty():
    pat = {"dm.PATNUM": ["ABC-101-003"]}
    assert value("scan(dm.PATNUM, 4, '-')", **pat) == [""]
    assert value("scan(dm.PATNUM, -4, '-')", **pat) == [""]


def test_scan_default_blank_and_several_delimiters():
    assert value("scan(X, 2)", X=["hello big world"]) == ["big"]
    assert value("scan(X, 3, '-/')", X=["a-b/c"]) == ["c"]
    assert value("scan(X, 2, '-/')", X=["a-b/c"]) == ["b"]


def test_sqrt():
    assert value("sqrt(HEIGHT * WEIGHT / 3600)", HEIGHT=[180.0, 100.0], WEIGHT=[80.0, 36.0]) == [2.0, 1.0]
    assert value("sqrt(X)", X=[16.0, 0.0, -1.0]) == [4.0, 0.0, None]


def test_strip():
    assert value("strip(dm.SITE)", **{"dm.SITE": ["  a b  ", "c", ""]}) == ["a b", "c", ""]


def test_substr():
    assert value("substr(dm.PATNUM, 5)", **{"dm.PATNUM": ["ABC-101", "ABC"]}) == ["101", ""]
    assert value("substr(X, 2, 3)", X=["ABCDEF", "AB"]) == ["BCD", "B"]
    assert value("substr(X, 2, 10)", X=["ABC"]) == ["BC"]
    assert value("substr(X, 1, 1)", X=["ABC"]) == ["A"]


def test_text_of_numbers_and_dates():
    assert value("text(AGE) || ' YEARS'", AGE=[2.0, 2.5, 65.0]) == ["2 YEARS", "2.5 YEARS", "65 YEARS"]
    assert value("text(D)", {"D"}, D=["2021-03", "2021-03-04"]) == ["2021-03", "2021-03-04"]
    assert value("text(X)", X=[0.1, -3.0, 100.0]) == ["0.1", "-3", "100"]


def test_title():
    assert value("title(AVISIT)", AVISIT=["WEEK 4 visit", "mcDONALD", ""]) == ["Week 4 Visit", "Mcdonald", ""]


# ============================================================================ vectorisation

def test_two_hundred_thousand_rows():
    n = 200_000
    x = np.arange(n, dtype=float)
    t = np.array(["S-1", "S-2"] * (n // 2), dtype=object)
    d = pd.Series(pd.Timestamp("2021-01-01") + pd.to_timedelta(np.arange(n) % 365, unit="D"))
    df = pd.DataFrame({"X": x, "T": t, "D": d})
    col = lambda name: df[name]  # noqa: E731
    assert int(Expression("X >= 100000 and X < 150000").mask(col, lambda name: None, n).sum()) == 50_000
    assert int(Expression("scan(T, 2, '-') = '2'").mask(col, lambda name: None, n).sum()) == 100_000
    # days 0..364 of 2021 repeat; 1 December is day 334.  200,000 = 547 * 365 + 345: 547 whole
    # Decembers, and days 334..344 (11) of the last partial year
    december = 547 * 31 + 11
    assert int(Expression("month(D) = 12").mask(col, lambda name: None, n).sum()) == december
    out = Expression("X * 2 + 1").values(col, lambda name: None, n)
    assert len(out) == n and out.iloc[-1] == 2 * (n - 1) + 1
