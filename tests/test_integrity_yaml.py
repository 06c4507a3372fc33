"""YAML that must be refused before it costs anything (alias bombs, recursive aliases, absurd
nesting), and study.yaml values that used to surface as tracebacks later (a CT version we do not
ship, an XPT timestamp that is not a date, windows, epochs, repeated names): each a ConversionError
naming study.yaml (or the YAML file), the line and the value."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import studykit as sk  # noqa: E402

from sdtm_rA.errors import ConversionError  # noqa: E402
from sdtm_rA.sdtm.study import load_study  # noqa: E402
from sdtm_rA.io.yamlio import load_yaml  # noqa: E402


def load_error(path: Path, display: str | None = None) -> str:
    with pytest.raises(ConversionError) as info:
        load_yaml(path, display)
    return sk.error_text(info.value)


def study_error(folder: Path) -> list[str]:
    with pytest.raises(ConversionError) as info:
        load_study(folder)
    return [str(i) for i in info.value.issues]


# ------------------------------------------------------------------------------------------------
# alias bombs
# ------------------------------------------------------------------------------------------------
# Nine lists, each of nine aliases of the list before: list a is 10 nodes (itself and 9 scalars),
# each next one 1 + 9 x the one before: 91, 820, 7,381, 66,430, 597,871, 5,380,840, 48,427,561,
# 435,848,050; together 490,329,054. The root mapping adds itself and its 9 keys: 490,329,064
# nodes. Written are the root, 9 keys, list a with its 9 scalars and the 8 other lists: 28.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([('*' + prev) if prev else 'lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi"))


def test_the_bomb_is_what_the_comment_says():
    assert BOMB.splitlines()[0] == "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
    assert BOMB.splitlines()[1] == "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]"
    assert BOMB.splitlines()[8] == "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]"


def test_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "ae.yaml"
    path.write_text(BOMB, encoding="utf-8")
    t0 = time.perf_counter()
    text = load_error(path, "mappings/ae.yaml")
    assert time.perf_counter() - t0 < 2.0        # a guard against expanding it, not a benchmark
    assert text == ("error: mappings/ae.yaml:2: YAML aliases (*a is the first) would expand this "
                    "document to 490,329,064 nodes, 490,329,036 more than the 28 written (at most "
                    "10,000 more are accepted): an alias may repeat a block, not multiply the document")


def test_alias_bomb_in_study_yaml_is_refused_by_load_study(tmp_path):
    # one more line before the bomb: the root has a 10th key, 'study', whose mapping is 5 nodes;
    # 490,329,064 + 6 = 490,329,070 expanded, 28 + 6 = 34 written; the first alias is on line 3
    folder = sk.make_study(tmp_path, "study: {id: X, title: T}\n" + BOMB)
    t0 = time.perf_counter()
    assert study_error(folder) == [
        "error: study.yaml:3: YAML aliases (*a is the first) would expand this document to "
        "490,329,070 nodes, 490,329,036 more than the 34 written (at most 10,000 more are accepted): "
        "an alias may repeat a block, not multiply the document"]
    assert time.perf_counter() - t0 < 2.0


def test_alias_bomb_in_an_adam_spec_is_refused(tmp_path):
    # 'dataset: ADSL' adds a key and its value: 490,329,066 expanded, 30 written
    from sdtm_rA.adam.spec import load_spec_folder
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "adsl.yaml").write_text("dataset: ADSL\n" + BOMB, encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(ConversionError) as info:
        load_spec_folder(spec)
    assert time.perf_counter() - t0 < 2.0
    assert sk.error_text(info.value) == (
        "error: spec/adsl.yaml:3: YAML aliases (*a is the first) would expand this document to "
        "490,329,066 nodes, 490,329,036 more than the 30 written (at most 10,000 more are accepted): "
        "an alias may repeat a block, not multiply the document")


def test_alias_bomb_in_a_mapping_stops_the_conversion(tmp_path):
    folder = sk.make_study(tmp_path, mappings={"dm": sk.minimal_dm(), "cm": "domain: CM\n" + BOMB},
                           raw={"raw/dm.csv": "SUBJID\n101\n"})
    t0 = time.perf_counter()
    exc = sk.conversion_error(folder)
    assert time.perf_counter() - t0 < 10.0
    assert ("error: mappings/cm.yaml:3: YAML aliases (*a is the first) would expand this document to "
            "490,329,066 nodes, 490,329,036 more than the 30 written") in sk.error_text(exc)


# Just at the limit: list a is 100 nodes (itself and 99 scalars); list b holds 100 aliases of it.
# Written: root, keys a and b, list a and its 99 scalars, list b = 104 nodes; expanded: root, 2 keys,
# 100 (a), list b and 100 x 100 = 10,104; 10,000 more than written: accepted.
AT_LIMIT = ("a: &a [" + ", ".join(["x"] * 99) + "]\n"
            "b: [" + ", ".join(["*a"] * 100) + "]\n")


def test_aliases_up_to_the_limit_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(AT_LIMIT, encoding="utf-8")
    doc = load_yaml(path)
    assert len(doc["b"]) == 100 and doc["b"][99] == ["x"] * 99


def test_one_node_over_the_limit_is_refused(tmp_path):
    # key c and its alias of the scalar s: 2 more nodes expanded (c, s again), 1 more written (c)
    path = tmp_path / "over.yaml"
    path.write_text(AT_LIMIT + "s: &s y\nc: *s\n", encoding="utf-8")
    assert load_error(path) == (
        f"error: {path}:2: YAML aliases (*a is the first) would expand this document to 10,108 "
        f"nodes, 10,001 more than the 107 written (at most 10,000 more are accepted): an alias may "
        f"repeat a block, not multiply the document")


def test_ordinary_anchors_and_merge_keys_still_load(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("defaults: &d {codelist: UNIT, case: upper}\n"
                    "A: *d\n"
                    "B: {<<: *d, numeric: true}\n"
                    "C: [*d, *d]\n", encoding="utf-8")
    doc = load_yaml(path)
    assert doc == {"defaults": {"codelist": "UNIT", "case": "upper"},
                   "A": {"codelist": "UNIT", "case": "upper"},
                   "B": {"codelist": "UNIT", "case": "upper", "numeric": True},
                   "C": [{"codelist": "UNIT", "case": "upper"}] * 2}
    assert doc.key_lines == {"defaults": 1, "A": 2, "B": 3, "C": 4}


def test_large_file_without_aliases_is_unaffected(tmp_path):
    path = tmp_path / "big.yaml"
    entries = [{"match": f"TEST {i}", "testcd": f"T{i:05d}", "unit": "mg/L"} for i in range(20_000)]
    path.write_text(yaml.safe_dump({"entries": entries}), encoding="utf-8")
    doc = load_yaml(path)
    assert len(doc["entries"]) == 20_000 and doc["entries"][19_999]["testcd"] == "T19999"


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("x: 1\na: &a {b: [1, *a]}\n", encoding="utf-8")
    assert load_error(path, "mappings/r.yaml") == (
        "error: mappings/r.yaml:2: YAML alias *a (or a later one) refers to a block that contains "
        "the alias itself: the document would be infinite")


def test_absurd_nesting_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n", encoding="utf-8")
    assert load_error(path, "study.yaml") == "error: study.yaml: YAML nested too deeply to be read"


# ------------------------------------------------------------------------------------------------
# study.yaml values
# ------------------------------------------------------------------------------------------------
def study_text(**replace) -> str:
    config = {k: v for k, v in sk.DEFAULT_STUDY.items()}
    config.update(replace)
    return yaml.safe_dump(config, sort_keys=False)


def test_unknown_ct_version(tmp_path):
    text = study_text(standards={"sdtmig": "3.4", "ct": "1999-01-01"})
    line = sk.line_of(text, "ct: '1999-01-01'")
    assert study_error(sk.make_study(tmp_path, text)) == [
        f"error: study.yaml:{line}: standards.ct: SDTM CT version '1999-01-01' is not available; "
        f"the versions there are: 2025-03-28"]


def test_unknown_ct_version_through_the_command_line(tmp_path):
    folder = sk.make_study(tmp_path, study_text(standards={"sdtmig": "3.4", "ct": "1999-01-01"}),
                           mappings={"dm": sk.minimal_dm()}, raw={"raw/dm.csv": "SUBJID\n101\n"})
    proc = sk.run_cli(folder, tmp_path / "out")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "standards.ct: SDTM CT version '1999-01-01' is not available; the versions there are: " \
           "2025-03-28" in proc.stderr


def test_unquoted_ct_date_and_timestamp_are_accepted(tmp_path):
    text = study_text().replace("ct: '2025-03-28'", "ct: 2025-03-28").replace(
        "xpt_timestamp: '2024-01-02T03:04:05'", "xpt_timestamp: 2024-01-02")
    assert "ct: 2025-03-28\n" in text and "xpt_timestamp: 2024-01-02\n" in text
    study = load_study(sk.make_study(tmp_path, text))
    assert study.ct_version == "2025-03-28" and study.xpt_timestamp == "2024-01-02"


def test_xpt_timestamp_not_a_date(tmp_path):
    text = study_text(study={"id": "X", "title": "T", "xpt_timestamp": "not a date"})
    line = sk.line_of(text, "xpt_timestamp")
    assert study_error(sk.make_study(tmp_path, text)) == [
        f"error: study.yaml:{line}: study.xpt_timestamp: 'not a date' is not an ISO 8601 date or "
        f"date-time (e.g. 2024-06-30 or 2024-06-30T00:00:00)"]


VISITS = ("visits:\n"
          "- {visitnum: 1, visit: SCREENING, day: -14, window: [-1, -28]}\n"         # line 4
          "- {visitnum: 2, visit: DAY 1, day: 0, aliases: [D1]}\n"                   # line 5
          "- {visitnum: 3, visit: WEEK 2, day: 15, window: [16, 20], aliases: [d1]}\n"  # line 6
          "- {visitnum: 3, visit: WEEK 4, day: 29}\n")                               # line 7


def test_visit_schedule_problems(tmp_path):
    text = "study: {id: X, title: T}\nstandards: {ct: '2025-03-28'}\n" + VISITS
    assert study_error(sk.make_study(tmp_path, text)) == [
        "error: study.yaml:4: visits: SCREENING: window [-1, -28] starts after it ends",
        "error: study.yaml:5: visits: DAY 1: day 0 does not exist in SDTM study days (day 1 is the "
        "reference day, day -1 the day before)",
        "error: study.yaml:6: visits: 'D1' names visit 2 (VISITNUM 2) and visit 3 (VISITNUM 3) of the "
        "schedule: a raw visit label must mean one visit",
        "error: study.yaml:6: visits: WEEK 2: planned day 15 is outside its window [16, 20]",
        "error: study.yaml:7: visits: VISITNUM 3 is used twice (visits 3 and 4 of the schedule)",
    ]


EPOCHS = ("epochs:\n"
          "- {epoch: SCREENING, start: rficdtc}\n"            # line 5
          "- {epoch: TREATMENT, start: {visit: WEEK 9}}\n"    # line 6
          "- {epoch: TREATMENT, start: RFXSTDTC}\n"           # line 7
          "- {epoch: FOLLOW-UP, start: {day: 15}}\n")         # line 8


def test_epoch_problems(tmp_path):
    text = ("study: {id: X, title: T}\nvisits:\n- {visitnum: 1, visit: SCREENING, day: -14}\n"
            + EPOCHS + "arms:\n- {armcd: A, arm: Drug}\n- {armcd: A, arm: Placebo}\n")  # lines 9-11
    assert study_error(sk.make_study(tmp_path, text)) == [
        "error: study.yaml:5: epochs: SCREENING: start 'rficdtc' is not a DM date variable (e.g. "
        "RFICDTC, RFXSTDTC) nor {visit: <a visit of the schedule>}",
        "error: study.yaml:6: epochs: TREATMENT: start visit 'WEEK 9' is not in the schedule (SCREENING)",
        "error: study.yaml:7: epochs: epoch 'TREATMENT' is declared twice (epochs 2 and 3)",
        "error: study.yaml:8: epochs: FOLLOW-UP: start {'day': 15} must be a DM date variable (e.g. "
        "RFXSTDTC) or {visit: <a visit of the schedule>}",
        "error: study.yaml:11: arms: ARMCD 'A' is declared twice (arms 1 and 2)",
    ]


def test_the_default_test_study_and_the_bundled_study_pass(tmp_path):
    from sdtm_rA.sdtm.study import bundled_study_folder
    assert load_study(sk.make_study(tmp_path)).ct_version == "2025-03-28"
    bundled = load_study(bundled_study_folder()[0])
    assert [e["epoch"] for e in bundled.epochs] == ["SCREENING", "TREATMENT", "FOLLOW-UP"]


def test_bad_source_date_epoch_is_reported_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    text = study_text(study={"id": "X", "title": "T"})         # no xpt_timestamp
    assert study_error(sk.make_study(tmp_path, text)) == [
        "error: environment: SOURCE_DATE_EPOCH='yesterday' is not a non-negative integer number of "
        "seconds (or set study.xpt_timestamp in study.yaml)"]


def test_empty_visit_name_is_refused(tmp_path):
    """'' would be the visit of every raw record whose visit is blank."""
    text = ("study: {id: X, title: T}\nvisits:\n- {visitnum: 1, visit: SCREENING}\n"
            "- {visitnum: 2, visit: '', aliases: ['']}\n")
    assert study_error(sk.make_study(tmp_path, text)) == [
        "error: study.yaml:4: visits.1.aliases.0: empty values not allowed",
        "error: study.yaml:4: visits.1.visit: empty values not allowed"]


def test_a_key_written_beside_a_yaml_merge_replaces_the_merged_one(tmp_path):
    """`{<<: *ct, item: FRM_CV1}` (YAML merge keys) repeats a block with one key changed: not a
    duplicate key; two keys written side by side still are."""
    from sdtm_rA.io.yamlio import load_yaml
    path = tmp_path / "m.yaml"
    path.write_text("a: &x {file: ct.csv, item: UNIT}\nb: {<<: *x, item: FRM}\n", encoding="utf-8")
    doc = load_yaml(path, "m.yaml")
    assert doc["b"] == {"file": "ct.csv", "item": "FRM"} and doc["a"]["item"] == "UNIT"
    path.write_text("b: {item: UNIT, item: FRM}\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"m.yaml:1: YAML syntax: duplicate key 'item'"):
        load_yaml(path, "m.yaml")
