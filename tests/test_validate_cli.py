"""`sdtm-ra validate FOLDER` and the validation step of `sdtm-ra convert`: exit status (0 no error,
1 errors, 2 could not run, with a one-line reason and never a traceback), input formats, bad input,
deterministic reports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sdtm_rA.cli import main
from validation_kit import clean_folder, edit

REPO = Path(__file__).resolve().parents[1]


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    # Never a traceback: the command ends through sys.exit, whatever the input.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def assert_input_error(result, *words):
    """Exit 2 with one line on stderr naming the problem."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    assert result.stdout == ""


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def could_not_run(report: dict) -> list[dict]:
    """Rules that crashed (the engine reports them as notices instead of stopping)."""
    return [f for f in report["findings"] if f["message"].startswith("rule could not run")]


@pytest.fixture
def folder(tmp_path):
    return clean_folder(tmp_path)


# ------------------------------------------------------------------------------------------------
# exit status
# ------------------------------------------------------------------------------------------------
def test_clean_folder_exits_0(folder, tmp_path):
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 0, res.output
    data = load_json(report)
    assert data["summary"]["by_severity"]["error"] == 0
    assert not could_not_run(data)
    assert f"report: {report}" in res.stdout
    assert "0 errors" in res.stdout


def test_error_finding_exits_1_and_names_the_row(folder, tmp_path):
    edit(folder, "DM", lambda df: df.assign(SEX=df["SEX"].where(df.index != 1, "Female")))
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    hits = [f for f in load_json(report)["findings"]
            if f["dataset"] == "DM" and f["variable"] == "SEX" and f["value"] == "Female"]
    assert hits and all(h["row"] == 2 and h["severity"] == "error" for h in hits), hits
    assert hits[0]["usubjid"].startswith("RAMSC01-")
    assert "Female" in hits[0]["message"]
    assert hits[0]["rule"] in res.stdout            # the summary table lists the rule
    assert "error" in res.stdout and f"report: {report}" in res.stdout


def test_without_report_prints_the_summary_only(folder):
    res = cli("validate", folder)
    assert res.exit_code == 0, res.output
    assert "validated" in res.stdout and "--report" in res.stdout
    assert not list(folder.glob("*.json")) and not list(folder.glob("*.html"))


def test_nonexistent_folder_exits_2(tmp_path):
    assert_input_error(cli("validate", tmp_path / "nowhere"), "no such folder", "nowhere")


def test_file_instead_of_folder_exits_2(tmp_path):
    f = tmp_path / "dm.xpt"
    f.write_bytes(b"x")
    assert_input_error(cli("validate", f), "not a folder")


def test_folder_without_datasets_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_input_error(cli("validate", tmp_path / "empty"), "no datasets")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("not a dataset")
    (tmp_path / "docs" / "define.xml").write_text("<xml/>")
    assert_input_error(cli("validate", tmp_path / "docs"), "no datasets")


@pytest.mark.parametrize("standard", ["sdtmig-9.9", "adamig-9.9", "nonsense"])
def test_unknown_standard_exits_2(folder, standard):
    assert_input_error(cli("validate", folder, "--standard", standard), "unknown standard", standard)


def test_known_standard_is_accepted(folder):
    assert cli("validate", folder, "--standard", "sdtmig-3.4").exit_code == 0


def test_adamig_standard_is_accepted_and_runs_the_adam_rules(folder, tmp_path):
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--standard", "adamig-1.3", "--report", report)
    assert res.exit_code == 1                       # SDTM data read as ADaM: no ADSL (AD0101)
    assert "AD0101" in {f["rule"] for f in load_json(report)["findings"]}


def test_unknown_rule_exits_2(folder):
    assert_input_error(cli("validate", folder, "--rules", "SD0101,XX9999"), "unknown rule", "XX9999")


def test_unsupported_report_format_exits_2_before_validating(folder, tmp_path):
    assert_input_error(cli("validate", folder, "--report", tmp_path / "r.txt"), ".txt", ".html")
    assert not (tmp_path / "r.txt").exists()


def test_unwritable_report_exits_2(folder, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_input_error(cli("validate", folder, "--report", blocker / "r.json"), "a-file")


def test_empty_rules_option_exits_2(folder):
    assert_input_error(cli("validate", folder, "--rules", " , "), "--rules")


def test_rules_option_runs_only_those_rules(folder, tmp_path):
    from sdtm_rA.validation.engine import load_rules
    rules = sorted(r for r, v in load_rules().items() if "SDTM" in v.standards)   # the folder is SDTM
    if len(rules) < 2:
        pytest.skip("needs at least two rules")
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--rules", f"{rules[0].lower()}, {rules[1]}", "--report", report)
    assert res.exit_code in (0, 1), res.output
    assert load_json(report)["summary"]["rules_run"] == rules[:2]


def test_real_command_line_one_line_reason(tmp_path):
    """Through the console entry point in a separate process: exit 2, one line, no traceback."""
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", str(tmp_path / "missing")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# ------------------------------------------------------------------------------------------------
# input formats and bad input
# ------------------------------------------------------------------------------------------------
def _as(folder: Path, dest: Path, fmt: str) -> Path:
    """The XPT folder re-written as CSV or parquet files."""
    import pyreadstat
    dest.mkdir()
    for p in sorted(folder.glob("*.xpt")):
        df, _ = pyreadstat.read_xport(str(p))
        if fmt == "csv":
            df.to_csv(dest / f"{p.stem}.csv", index=False)
        else:
            df.to_parquet(dest / f"{p.stem}.parquet", index=False)
    return dest


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_folders_are_validated(folder, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    other = _as(folder, tmp_path / fmt, fmt)
    report = tmp_path / "r.json"
    res = cli("validate", other, "--report", report)
    assert res.exit_code in (0, 1), res.output
    data = load_json(report)
    assert [d["file"] for d in data["summary"]["datasets"]] == \
        sorted(f"{p.stem}.{fmt}" for p in folder.glob("*.xpt"))
    assert {d["name"]: d["rows"] for d in data["summary"]["datasets"]}["LB"] == 224
    assert not [f for f in data["findings"] if f["rule"] == "SYS0001"]
    assert not could_not_run(data)


@pytest.mark.parametrize("name", ["dm", "lb"])
def test_truncated_xpt_is_an_error_finding(folder, tmp_path, name):
    """A valid XPT cut in half: a clear error finding naming the file, never a traceback, never a
    silently shorter dataset (pyreadstat reads some truncated files without complaint: lb.xpt cut in
    half at an 80-byte boundary reads as 103 of its 224 rows)."""
    path = folder / f"{name}.xpt"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    found = [f for f in load_json(report)["findings"]
             if f["dataset"] == name.upper() and f["severity"] == "error" and f"{name}.xpt" in f["message"]]
    assert found, "the truncated file is not reported"
    assert not could_not_run(load_json(report))


def test_garbage_file_with_xpt_extension(folder, tmp_path):
    (folder / "xx.xpt").write_bytes(b"this is not a transport file\n" * 10)
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code == 1, res.output
    assert [f for f in load_json(report)["findings"] if f["dataset"] == "XX" and f["rule"] == "SYS0001"]


def test_dataset_without_rows(folder, tmp_path):
    edit(folder, "LB", lambda df: df.iloc[0:0])
    edit(folder, "SUPPAE", lambda df: df.iloc[0:0])
    report = tmp_path / "r.json"
    res = cli("validate", folder, "--report", report)
    assert res.exit_code in (0, 1), res.output
    data = load_json(report)
    assert {d["name"]: d["rows"] for d in data["summary"]["datasets"]}["LB"] == 0
    assert not could_not_run(data)


def test_numeric_seq_stored_as_text_in_csv(folder, tmp_path):
    """LBSEQ is numeric in the IG; in this CSV one value is not a number: a finding on that row."""
    other = _as(folder, tmp_path / "csv", "csv")
    lb = pd.read_csv(other / "lb.csv", dtype=str, keep_default_na=False)
    lb.loc[4, "LBSEQ"] = "five"
    lb.to_csv(other / "lb.csv", index=False)
    report = tmp_path / "r.json"
    res = cli("validate", other, "--report", report)
    assert res.exit_code in (0, 1), res.output
    data = load_json(report)
    assert not could_not_run(data)
    hits = [f for f in data["findings"] if f["dataset"] == "LB" and f["variable"] == "LBSEQ"
            and f["row"] == 5 and f["value"] == "five"]
    assert hits, "the non-numeric LBSEQ is not reported"


def test_numeric_column_where_text_expected(folder, tmp_path):
    """A parquet LB whose LBORRES is a float column and whose LBSEQ is text: no crash."""
    pytest.importorskip("pyarrow")
    other = _as(folder, tmp_path / "pq", "parquet")
    lb = pd.read_parquet(other / "lb.parquet")
    lb["LBORRES"] = pd.to_numeric(lb["LBORRES"], errors="coerce")
    lb["LBSEQ"] = lb["LBSEQ"].map(lambda v: f"{v:g}")
    lb.to_parquet(other / "lb.parquet", index=False)
    report = tmp_path / "r.json"
    res = cli("validate", other, "--report", report)
    assert res.exit_code in (0, 1), res.output
    assert not could_not_run(load_json(report))


# ------------------------------------------------------------------------------------------------
# determinism
# ------------------------------------------------------------------------------------------------
def test_two_runs_give_identical_reports(folder, tmp_path):
    edit(folder, "DM", lambda df: df.assign(SEX=df["SEX"].where(df.index != 1, "Female")))
    edit(folder, "LB", lambda df: df.assign(LBTESTCD=df["LBTESTCD"].where(df.index % 50 != 3, " CRP")))
    texts = []
    for i in range(2):
        r = tmp_path / f"r{i}.json"
        cli("validate", folder, "--report", r, "--report", tmp_path / f"r{i}.csv")
        data = load_json(r)
        assert data["findings"]
        data["summary"].pop("seconds")
        texts.append(json.dumps(data))
        assert (tmp_path / f"r{i}.csv").read_bytes() == (tmp_path / "r0.csv").read_bytes()
    assert texts[0] == texts[1]


# ------------------------------------------------------------------------------------------------
# convert validates what it wrote
# ------------------------------------------------------------------------------------------------
def test_convert_writes_validation_reports_next_to_run_json(tmp_path):
    out = tmp_path / "out"
    res = cli("convert", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert (out / "run.json").exists()
    report = load_json(out / "validation.json")
    assert report["summary"]["folder"] == str(out / "sdtm")
    assert {d["name"] for d in report["summary"]["datasets"]} >= {"DM", "LB", "TS"}
    html_text = (out / "validation.html").read_text(encoding="utf-8")
    assert 'id="by-severity"' in html_text
    assert f"report: {out / 'validation.html'}" in res.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temporary files left

    # --no-validate: no reports, and those of the earlier run (other data) are gone.
    res = cli("convert", "--out", out, "--quiet", "--no-validate")
    assert res.exit_code == 0, res.output
    assert (out / "run.json").exists()
    assert not (out / "validation.json").exists() and not (out / "validation.html").exists()
    assert "validated" not in res.stdout


def test_convert_refuses_to_publish_what_the_validator_calls_an_error(tmp_path, monkeypatch):
    import sdtm_rA.validation as validation
    real = validation.validate_folder

    def with_an_error(folder, **kw):
        res = real(folder, **kw)
        extra = pd.DataFrame([{"rule": "SYS0001", "severity": "error", "dataset": "LB", "variable": "LBORRES",
                               "row": 7, "usubjid": "RAMSC01-01-001", "seq": "", "value": "bad",
                               "message": "injected"}])
        res.findings = pd.concat([res.findings, extra], ignore_index=True)
        return res

    out = tmp_path / "out"
    assert cli("convert", "--out", out, "--quiet").exit_code == 0
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(validation, "validate_folder", with_an_error)
    res = cli("convert", "--out", out, "--quiet")
    assert res.exit_code == 1, res.output
    assert (f"error: {out / 'sdtm'}: LB: SYS0001: injected (1 record(s); row 7 RAMSC01-01-001 LBORRES "
            "value 'bad')") in res.output
    assert ("the validator finds 1 error(s) in the SDTM datasets this run would publish, so nothing was "
            "published; fix the inputs, or publish anyway with --allow-invalid") in res.output
    assert f"conversion refused: the validator found 1 error(s) in the SDTM datasets; nothing was written to {out}" \
        in res.output
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before                                   # the earlier outputs, byte for byte

    res = cli("convert", "--out", out, "--quiet", "--allow-invalid")
    assert res.exit_code == 0, res.output
    assert "validation: 1 error(s) in the datasets published with --allow-invalid" in res.stdout
    assert load_json(out / "validation.json")["summary"]["by_severity"]["error"] >= 1
    assert load_json(out / "run.json")["validation"]["published_with_errors"] is True


def test_a_validator_that_cannot_run_refuses_publication_unless_allowed(tmp_path, monkeypatch):
    import sdtm_rA.validation as validation

    def broken(folder, **kw):
        raise RuntimeError("boom")

    out = tmp_path / "out"
    assert cli("convert", "--out", out, "--quiet").exit_code == 0
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(validation, "validate_folder", broken)
    res = cli("convert", "--out", out, "--quiet")
    assert res.exit_code == 1
    assert (f"error: {out / 'sdtm'}: the validator could not run on the SDTM datasets (RuntimeError: boom), "
            "so nothing was published: unchecked data are not published unless --allow-invalid says so") in res.output
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    res = cli("convert", "--out", out, "--quiet", "--allow-invalid")
    assert res.exit_code == 0, res.output
    assert "validation could not run: RuntimeError: boom" in res.stderr
    assert not (out / "validation.json").exists()          # the earlier run's report described other data
    assert (out / "sdtm" / "dm.xpt").exists()
    assert load_json(out / "run.json")["validation"] == {"error": "RuntimeError: boom", "published_unvalidated": True}
