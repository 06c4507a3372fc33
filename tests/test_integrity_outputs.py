"""Issue 8: a run never destroys or misdescribes files - the user's inputs, the earlier outputs, run.json.

Real `sdtm-ra` processes are stopped at named stages (SDTM_RA_PAUSE_AT, see publish.checkpoint) and
killed with SIGKILL, SIGINT or SIGTERM; the output folder is then compared byte for byte with what it
held before. Expected messages are written out by hand.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import studykit as sk

CLI = sk.CLI

DM_RAW = "SUBJID,SEX\n101,F\n102,M\n"


def small_study(tmp_path, name="study", raw=None, study_yaml=None, mappings=None):
    return sk.make_study(tmp_path, study_yaml, mappings or {"dm": sk.minimal_dm()},
                         raw or {"raw/dm.csv": DM_RAW}, name=name)


def cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("SOURCE_DATE_EPOCH", None)
    full.update(env or {})
    return subprocess.run([sys.executable, str(CLI), *map(str, args)], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=300)


def start(*args, pause: str, marker: Path) -> subprocess.Popen:
    """A run in its own process group, told to stop at checkpoint `pause`."""
    env = dict(os.environ, SDTM_RA_PAUSE_AT=pause, SDTM_RA_PAUSE_FILE=str(marker))
    env.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.Popen([sys.executable, str(CLI), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its checkpoint: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("checkpoint never reached")
        time.sleep(0.02)


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) of a process group, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def no_processes_left(pgid: int, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`, hidden ones too: file bytes, 'dir', or the target of a link."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                out[rel] = "link->" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def converted(tmp_path, *extra) -> tuple[Path, Path, dict]:
    """A small study converted once into OUT: (study, OUT, snapshot of OUT)."""
    study = small_study(tmp_path)
    out = tmp_path / "out"
    res = cli("convert", study, "--out", out, "--allow-invalid", *extra)
    assert res.returncode == 0, res.stderr
    return study, out, snapshot(out)


def broken_study(tmp_path) -> Path:
    """Converts as far as reading its raw file, then fails (after OUT has been opened)."""
    return small_study(tmp_path, name="broken", mappings={"dm": sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX}")},
                       raw={"raw/dm.csv": "SUBJID,SEX\n101,F\n102,Mal\n"})


# ================================================================== outputs among the inputs
def test_run_into_the_study_folder_is_refused_and_the_specs_survive(tmp_path):
    study = small_study(tmp_path)
    (study / "adam").mkdir()
    (study / "adam" / "adsl.yaml").write_text("dataset: ADSL\n", encoding="utf-8")
    before = snapshot(study)
    res = cli("run", study, "--out", study)
    assert res.returncode == 1
    assert (f"error: {study}: the output folder is the study folder: outputs there would overwrite or mix "
            "with the inputs; choose another --out") in res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(study) == before


def test_an_output_folder_holding_the_study_is_refused(tmp_path):
    study = small_study(tmp_path)
    before = snapshot(tmp_path)
    res = cli("convert", study, "--out", tmp_path)
    assert res.returncode == 1
    assert (f"error: {tmp_path}: the output folder holds the study folder {study}: outputs there would "
            "overwrite or mix with the inputs; choose another --out") in res.stderr
    assert snapshot(tmp_path) == before


def test_derive_into_its_own_sdtm_folder_is_refused_but_out_sdtm_is_its_input(tmp_path):
    out = tmp_path / "out"
    assert cli("convert", "--out", out, "--quiet").returncode == 0
    sdtm = tmp_path / "copy"
    shutil.copytree(out / "sdtm", sdtm)
    before = snapshot(sdtm)
    res = cli("derive", sdtm, "--out", sdtm, "--quiet")
    assert res.returncode == 1
    assert (f"error: {sdtm}: the output folder is the SDTM folder: outputs there would overwrite or mix "
            "with the inputs; choose another --out") in res.stderr
    assert snapshot(sdtm) == before
    res = cli("derive", out / "sdtm", "--out", out, "--quiet")      # the documented use
    assert res.returncode == 0, res.stderr
    adam = json.loads((out / "run.json").read_text())["adam"]
    assert adam["sdtm_folder"] == str(out / "sdtm")
    from sdtm_rA.adam.derive import bundled_adam_specs
    assert adam["spec_folder"] == os.path.abspath(bundled_adam_specs())
    assert sorted(adam["inputs"])[:2] == ["adam-specs/adae.yaml", "adam-specs/adeff.yaml"]
    assert sorted(p.name for p in (out / "adam").iterdir()) == ["adae.xpt", "adeff.xpt", "adlb.xpt", "adsl.xpt"]
    assert (out / "adam-validation.html").exists() and (out / "summary.html").exists()


def test_out_inside_the_study_is_allowed_and_run_json_lists_only_what_was_read(tmp_path):
    study = small_study(tmp_path)
    (study / "raw" / "unused.csv").write_text("A\n1\n", encoding="utf-8")
    out = study / "out"
    for _ in range(2):                        # the second run sees the first one's outputs in the study
        res = cli("convert", study, "--out", out, "--allow-invalid", "--quiet")
        assert res.returncode == 0, res.stderr
    run = json.loads((out / "run.json").read_text())
    assert sorted(run["inputs"]) == ["mappings/dm.yaml", "study/raw/dm.csv", "study/study.yaml"]
    assert "input_locations" not in run
    import hashlib
    assert run["inputs"]["study/raw/dm.csv"] == hashlib.sha256(DM_RAW.encode()).hexdigest()


# ================================================================== where inputs may come from
def _dm_from(path: str) -> str:
    return sk.minimal_dm(source="{file: %s}" % path)


def test_a_raw_file_outside_the_study_is_refused_unless_declared(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "dm.csv").write_text(DM_RAW, encoding="utf-8")
    text = _dm_from("../shared/dm.csv")
    study = small_study(tmp_path, mappings={"dm": text})
    res = cli("convert", study, "--out", tmp_path / "out", "--allow-invalid")
    assert res.returncode == 1
    assert (f"error: mappings/dm.yaml:{sk.line_of(text, '../shared')}: '../shared/dm.csv' is outside the "
            f"study folder ({shared / 'dm.csv'}); list its folder under `external_inputs:` in study.yaml to "
            "read it from there") in res.stderr
    assert not (tmp_path / "out").exists()

    declared = dict(sk.DEFAULT_STUDY, external_inputs=["../shared"])
    study2 = small_study(tmp_path, name="study2", study_yaml=declared, mappings={"dm": text})
    res = cli("convert", study2, "--out", tmp_path / "out", "--allow-invalid", "--quiet")
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    import hashlib
    assert run["inputs"][str(shared / "dm.csv")] == hashlib.sha256(DM_RAW.encode()).hexdigest()


def test_an_absolute_raw_path_and_a_synonym_table_outside_are_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "dm.csv").write_text(DM_RAW, encoding="utf-8")
    (shared / "sex.yaml").write_text("synonyms: {Female: F}\n", encoding="utf-8")
    text = sk.minimal_dm(source="{file: %s}" % (shared / "dm.csv"),
                         SEX="{from: dm.SEX, codelist: SEX, synonyms: ../../shared/sex.yaml}")
    study = small_study(tmp_path, mappings={"dm": text})
    res = cli("convert", study, "--out", tmp_path / "out")
    assert res.returncode == 1
    assert f"'{shared / 'dm.csv'}' is outside the study folder ({shared / 'dm.csv'})" in res.stderr
    assert (f"error: mappings/dm.yaml:{sk.line_of(text, 'SEX:')}: '../../shared/sex.yaml' is outside the study "
            f"folder ({shared / 'sex.yaml'})") in res.stderr


def test_a_synonym_table_that_is_a_folder_is_an_error(tmp_path):
    text = sk.minimal_dm(SEX="{from: dm.SEX, codelist: SEX, synonyms: terms}")
    study = small_study(tmp_path, mappings={"dm": text})
    (study / "mappings" / "terms").mkdir()
    res = cli("convert", study, "--out", tmp_path / "out")
    assert res.returncode == 1
    assert f"error: mappings/dm.yaml:{sk.line_of(text, 'SEX:')}: 'terms' is a folder, not a file" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_linked_raw_folder_is_read_hashed_and_located(tmp_path):
    shared = tmp_path / "storage" / "raw"
    shared.mkdir(parents=True)
    (shared / "dm.csv").write_text(DM_RAW, encoding="utf-8")
    study = small_study(tmp_path)
    shutil.rmtree(study / "raw")
    os.symlink(shared, study / "raw")
    res = cli("convert", study, "--out", tmp_path / "out", "--allow-invalid", "--quiet")
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "study/raw/dm.csv" in run["inputs"]
    assert run["input_locations"] == {"study/raw/dm.csv": str(shared / "dm.csv")}


# ================================================================== a linked output folder
def test_a_linked_output_folder_stays_a_link_and_its_target_is_replaced(tmp_path):
    study, out, _ = converted(tmp_path)
    storage = tmp_path / "storage"
    storage.mkdir()
    shutil.move(out / "sdtm", storage / "sdtm")
    os.symlink(storage / "sdtm", out / "sdtm")
    old_dm = (storage / "sdtm" / "dm.xpt").read_bytes()
    (study / "raw" / "dm.csv").write_text(DM_RAW + "103,F\n", encoding="utf-8")
    res = cli("convert", study, "--out", out, "--allow-invalid", "--quiet")
    assert res.returncode == 0, res.stderr
    assert (out / "sdtm").is_symlink() and os.readlink(out / "sdtm") == str(storage / "sdtm")
    assert sorted(p.name for p in (storage / "sdtm").iterdir()) == ["dm.xpt", "ts.xpt"]
    assert (storage / "sdtm" / "dm.xpt").read_bytes() != old_dm
    assert hidden(out) == [] and hidden(storage) == []
    run = json.loads((out / "run.json").read_text())
    import hashlib
    assert run["outputs"]["sdtm/dm.xpt"]["sha256"] == hashlib.sha256((storage / "sdtm" / "dm.xpt").read_bytes()).hexdigest()


# ================================================================== only what sdtm-ra wrote is replaced
def test_a_file_no_run_wrote_in_out_sdtm_refuses_the_run(tmp_path):
    study, out, _ = converted(tmp_path)
    (out / "sdtm" / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(out)
    res = cli("convert", study, "--out", out, "--allow-invalid")
    assert res.returncode == 1
    assert (f"error: {out}: sdtm/ holds files no sdtm-ra run wrote (notes.txt); this run would replace the "
            "folder and lose them: move them away or choose another --out") in res.stderr
    assert snapshot(out) == before


def test_an_output_folder_sdtm_ra_did_not_write_is_left_alone(tmp_path):
    """--out pointed at a project folder: its adam/ (specs) and summary.html are not "stale outputs"."""
    study = small_study(tmp_path)
    shared = tmp_path / "shared"
    (shared / "adam").mkdir(parents=True)
    (shared / "adam" / "adsl.yaml").write_text("dataset: ADSL\n", encoding="utf-8")
    (shared / "summary.html").write_text("<p>mine</p>", encoding="utf-8")
    before = snapshot(shared)
    res = cli("convert", study, "--out", shared, "--allow-invalid")
    assert res.returncode == 1
    assert (f"error: {shared}: adam is already in the output folder and no sdtm-ra run wrote it (the folder "
            "has no run.json of sdtm-ra): this run would replace or remove it; choose another --out, or move "
            "it away") in res.stderr
    assert snapshot(shared) == before
    (shared / "run.json").write_text('{"tool": "other"}', encoding="utf-8")
    res = cli("convert", study, "--out", shared, "--allow-invalid")
    assert res.returncode == 1
    assert "(its run.json was not written by sdtm-ra)" in res.stderr


# ================================================================== one run at a time
def test_a_second_run_into_a_busy_output_folder_is_refused(tmp_path):
    study, out, before = converted(tmp_path)
    marker = tmp_path / "paused"
    first = start("convert", study, "--out", out, "--allow-invalid", pause="locked", marker=marker)
    try:
        wait_for(marker, first)
        second = cli("convert", study, "--out", out, "--allow-invalid")
        assert second.returncode == 1
        assert f"error: {out}: another sdtm-ra run is writing to this output folder (pid {first.pid}, " \
               f"`sdtm-ra convert {study} --out {out} --allow-invalid`, started " in second.stderr
        assert f"conversion not started: {out} is in use" in second.stderr
        os.kill(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130
    assert "interrupted (Ctrl-C): nothing was published; the output folder is as it was before this run" in err
    assert snapshot(out) == before


# ================================================================== killed and interrupted runs
@pytest.mark.parametrize("stage", ["convert:reading", "convert:built", "commit:journal", "commit:aside:sdtm",
                                   "commit:applied"])
def test_sigkill_at_any_stage_then_the_next_run_restores_the_earlier_outputs(tmp_path, stage):
    study, out, before = converted(tmp_path)
    (study / "raw" / "dm.csv").write_text("SUBJID,SEX\n101,F\n102,M\n103,F\n", encoding="utf-8")
    marker = tmp_path / "paused"
    proc = start("convert", study, "--out", out, "--allow-invalid", pause=stage, marker=marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert no_processes_left(proc.pid), "a worker outlived its killed run"
    # the next run that opens OUT undoes what the killed run left, says so, and then fails itself
    res = cli("convert", broken_study(tmp_path), "--out", out)
    assert res.returncode == 1
    if stage.startswith("commit:"):
        assert (f"note: an earlier run (pid {proc.pid}, `sdtm-ra convert {study} --out {out} --allow-invalid`) "
                "was interrupted while publishing its outputs: the outputs it was replacing were restored") in res.stderr
    assert f"note: removed the temporary files of an interrupted run: .sdtm-ra-stage-{proc.pid}" in res.stderr
    assert snapshot(out) == before


def test_an_input_changed_during_the_run_refuses_publication(tmp_path):
    study, out, before = converted(tmp_path)
    marker = tmp_path / "paused"
    proc = start("convert", study, "--out", out, "--allow-invalid", pause="convert:built", marker=marker)
    wait_for(marker, proc)
    with open(study / "raw" / "dm.csv", "a", encoding="utf-8") as fh:    # a sync job still writing
        fh.write("103,F\n")
    marker.unlink()                                                        # the run goes on
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert ("error: study/raw/dm.csv: changed while this run was reading it (its size or modification time "
            "is not what it was when the run started), so the outputs may mix two versions of it: nothing "
            "was published; run again once the file is complete") in err
    assert snapshot(out) == before


def test_a_killed_run_leaves_no_worker_reading_a_workbook(tmp_path):
    """The bundled study's HAQ workbook is read by a forked process: it dies with the run."""
    out = tmp_path / "out"
    marker = tmp_path / "paused"
    proc = start("convert", "--out", out, pause="convert:reading", marker=marker)
    wait_for(marker, proc)
    workers = [p for p in group_members(proc.pid) if p != proc.pid]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert no_processes_left(proc.pid), "a worker outlived its killed run"
    assert workers or os.environ.get("SDTM_RA_WORKERS") == "1"


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_run_cleans_up_and_exits_with_the_signal_status(tmp_path, sig, code, name):
    study, out, before = converted(tmp_path)
    marker = tmp_path / "paused"
    proc = start("convert", study, "--out", out, "--allow-invalid", pause="convert:built", marker=marker)
    wait_for(marker, proc)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted ({name}): nothing was published; the output folder is as it was before this run" in err
    assert "Traceback" not in err
    assert snapshot(out) == before                 # no staging folder left either
    assert no_processes_left(proc.pid)


def test_ctrl_c_during_publication_completes_it_first(tmp_path):
    study, out, _ = converted(tmp_path)
    (study / "raw" / "dm.csv").write_text("SUBJID,SEX\n101,F\n102,M\n103,F\n", encoding="utf-8")
    reference = tmp_path / "reference"
    assert cli("convert", study, "--out", reference, "--allow-invalid").returncode == 0
    marker = tmp_path / "paused"
    proc = start("convert", study, "--out", out, "--allow-invalid", pause="commit:journal", marker=marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"interrupted (Ctrl-C): the outputs had just been published in full ({out})" in err
    got, want = snapshot(out), snapshot(reference)
    assert sorted(got) == sorted(want)       # the same files (the reports name their folder: not compared)
    assert {k: v for k, v in got.items() if k.startswith("sdtm")} == {k: v for k, v in want.items() if k.startswith("sdtm")}
    assert json.loads(got["run.json"])["outputs"] == json.loads(want["run.json"])["outputs"]


def test_ctrl_c_during_validate_exits_130_and_writes_no_report(tmp_path):
    _, out, _ = converted(tmp_path)
    marker = tmp_path / "paused"
    report = tmp_path / "report.html"
    proc = start("validate", out / "sdtm", "--report", report, pause="validate:rules", marker=marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert ("interrupted (Ctrl-C): the validation did not finish (each report file is either whole or not "
            "written)") in err
    assert not report.exists() and list(tmp_path.glob(".report*")) == []


def test_leftovers_of_earlier_versions_are_restored_or_removed(tmp_path):
    study, out, before = converted(tmp_path)
    os.replace(out / "sdtm", out / ".sdtm-old-4242")          # killed between its two renames
    (out / ".sdtm-k2j4h5g6").mkdir()
    (out / ".run.json.a1b2c3d4.tmp").write_bytes(b"")
    (out / ".my-own-notes").write_text("keep me", encoding="utf-8")   # not ours: never touched
    res = cli("convert", broken_study(tmp_path), "--out", out)
    assert res.returncode == 1
    assert "note: restored sdtm/ from .sdtm-old-4242, where an interrupted run had moved it" in res.stderr
    assert ("note: removed the temporary files of an interrupted run: .run.json.a1b2c3d4.tmp, .sdtm-k2j4h5g6"
            in res.stderr)
    assert snapshot(out) == {**before, ".my-own-notes": b"keep me"}


def test_an_earlier_version_killed_between_its_folder_and_run_json_swaps(tmp_path):
    """That version published sdtm/ and then run.json: its staged run.json is the one that
    describes sdtm/, and is put in place (an unfinished journal's temporary file is removed)."""
    study, out, _ = converted(tmp_path)
    new_run = json.loads((out / "run.json").read_text())
    (out / ".sdtm-q1w2e3r4-run.json").write_text(json.dumps(new_run), encoding="utf-8")
    (out / "run.json").write_text(json.dumps({**new_run, "outputs": {}}), encoding="utf-8")   # the stale one
    os.makedirs(out / ".sdtm-old-77")
    (out / ".sdtm-ra-journal.json.tmp").write_text("{", encoding="utf-8")
    res = cli("convert", broken_study(tmp_path), "--out", out)
    assert res.returncode == 1
    assert ("note: put .sdtm-q1w2e3r4-run.json in place as run.json: an interrupted run had published sdtm/ "
            "but not yet the run.json describing it") in res.stderr
    assert json.loads((out / "run.json").read_text()) == new_run
    assert ("note: removed .sdtm-ra-journal.json.tmp, the unfinished journal of a run interrupted before it "
            "moved any output") in res.stderr
    assert hidden(out) == []


def test_a_failed_rename_during_publication_is_undone_before_the_error(tmp_path, monkeypatch):
    from sdtm_rA.io import publish
    out = tmp_path / "out"
    (out / "sdtm").mkdir(parents=True)
    (out / "sdtm" / "dm.xpt").write_bytes(b"old dm")
    (out / "run.json").write_text(json.dumps({"tool": "sdtm_rA", "outputs": {"sdtm/dm.xpt": {}}}))
    before = snapshot(out)
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 3:                  # the journal written, sdtm moved aside; the new sdtm fails
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real(src, dst)

    with publish.OutputFolder(out, ["test"]) as dest:
        (dest.stage_folder("sdtm") / "dm.xpt").write_bytes(b"new dm")
        dest.stage_file("run.json").write_text("{}")
        monkeypatch.setattr(publish.os, "replace", failing)
        with pytest.raises(PermissionError) as info:
            dest.commit()
        monkeypatch.setattr(publish.os, "replace", real)
        message = str(publish.write_failure(out, info.value, dest).issues[0])
    assert snapshot(out) == before
    assert message == (f"error: {out}: the outputs could not be written (nothing was published): "
                       "Operation not permitted (sdtm)")


def test_signals_wait_for_the_end_of_the_held_block():
    from sdtm_rA.io.signals import HeldSignals
    got = []
    with pytest.raises(KeyboardInterrupt):
        with HeldSignals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            got.append("still running")
    assert got == ["still running"]


def test_recovery_works_from_another_working_directory(tmp_path):
    """The journal names OUT's entries relative to OUT: a killed run started with a relative --out is
    undone by a run started elsewhere, and nothing outside OUT is touched."""
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    p1.mkdir()
    study = small_study(p1)
    assert cli("convert", study, "--out", "out", "--allow-invalid", cwd=p1).returncode == 0
    before = snapshot(p1 / "out")
    (p2 / "out" / "sdtm").mkdir(parents=True)
    (p2 / "out" / "sdtm" / "other-project.xpt").write_bytes(b"theirs")
    (study / "raw" / "dm.csv").write_text(DM_RAW + "103,F\n", encoding="utf-8")
    marker = tmp_path / "paused"
    env = dict(os.environ, SDTM_RA_PAUSE_AT="commit:applied", SDTM_RA_PAUSE_FILE=str(marker))
    proc = subprocess.Popen([sys.executable, str(CLI), "convert", str(study), "--out", "out", "--allow-invalid"],
                            cwd=p1, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    res = cli("convert", broken_study(tmp_path), "--out", p1 / "out", cwd=p2)
    assert "were restored" in res.stderr
    assert snapshot(p1 / "out") == before
    assert (p2 / "out" / "sdtm" / "other-project.xpt").read_bytes() == b"theirs"


def test_a_linked_output_folder_may_be_derived_into(tmp_path):
    _, real_out, _ = converted(tmp_path)
    link = tmp_path / "linkout"
    os.symlink(real_out, link)
    from sdtm_rA.io.inputs import check_output
    for _ in range(8):                   # the decision never depends on an iteration order
        check_output(link, [("SDTM folder", link / "sdtm")], own_sdtm=link / "sdtm")
        check_output(link, [("SDTM folder", real_out / "sdtm")], own_sdtm=link / "sdtm")


def test_an_output_folder_holding_a_raw_file_is_refused(tmp_path):
    study = small_study(tmp_path)
    before = snapshot(study)
    res = cli("convert", study, "--out", study / "raw", "--allow-invalid")
    assert res.returncode == 1
    assert (f"error: {study / 'raw'}: the output folder holds the input file {study / 'raw' / 'dm.csv'}: outputs "
            "there would overwrite or mix with the inputs; choose another --out") in res.stderr
    assert snapshot(study) == before


def test_a_failed_conversion_never_waits_for_a_background_reader(tmp_path):
    """A raw file read in the background, its frame waiting in the pipe, when the conversion fails
    elsewhere: the reader is stopped at once (it does not inherit the CLI's SIGTERM handler, which
    would make it catch the stop and block on the pipe again) and the run ends."""
    big = tmp_path / "big.csv"
    big.write_text("A,B\n" + "".join(f"{i},value number {i}\n" for i in range(200000)), encoding="utf-8")
    script = f"""
import signal, sys
from pathlib import Path
from sdtm_rA.cli import _terminate
from sdtm_rA.io.sources import Prefetch
signal.signal(signal.SIGTERM, _terminate)            # as `sdtm-ra` installs it
options = dict(sep=None, encoding=None, header_row=1, sheet=None, decimal=".")
try:
    with Prefetch() as pf:
        if not pf.start(Path({str(big)!r}), "raw/big.csv", **options):
            print("no background reading here"); sys.exit(0)
        while not pf.ready(Path({str(big)!r}), options):    # the frame is on its way: the pipe is full
            pass
        raise RuntimeError("a mapping error elsewhere")
except RuntimeError:
    print("ended")
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=sk.ROOT)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert out.strip() in ("ended", "no background reading here")
    assert "Traceback" not in err
    assert no_processes_left(proc.pid)


# ================================================================== run: one publication
@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("full")
    out = base / "out"
    res = cli("run", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr
    return out


def test_convert_after_run_removes_the_adam_outputs_of_the_replaced_sdtm(full_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    res = cli("convert", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr
    assert (f"removed adam, adam-validation.json, adam-validation.html, summary.html of an earlier run from "
            f"{out}: derived from the SDTM this run replaced") in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "sdtm", "validation.html", "validation.json"]
    assert "adam" not in json.loads((out / "run.json").read_text())


def test_a_run_whose_adam_step_fails_publishes_nothing(full_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    before = snapshot(out)
    from sdtm_rA.adam.derive import bundled_adam_specs
    specs = tmp_path / "specs"
    shutil.copytree(bundled_adam_specs(), specs)
    text = (specs / "adae.yaml").read_text(encoding="utf-8")
    (specs / "adae.yaml").write_text(text.replace("derive: ", "derive: no_such_step_", 1), encoding="utf-8")
    res = cli("run", "--out", out, "--spec", specs, "--quiet")
    assert res.returncode == 1
    assert "no_such_step_" in res.stderr and f"run failed:" in res.stderr
    assert snapshot(out) == before


# ================================================================== where OUT cannot be written
def test_out_below_a_regular_file(tmp_path, full_run):
    study = small_study(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    below = tmp_path / "afile" / "out"
    for command in (["convert", study, "--allow-invalid"], ["derive", full_run / "sdtm"]):
        res = cli(*command, "--out", below)
        assert res.returncode == 1, res.stderr
        assert (f"error: {below}: cannot create the output folder: a file is in its path: Not a directory"
                in res.stderr)
        assert "Traceback" not in res.stderr
    res = cli("convert", study, "--out", tmp_path / "afile")
    assert res.returncode == 1
    assert (f"error: {tmp_path / 'afile'}: cannot create the output folder: a file of that name is in the way: "
            "File exists") in res.stderr


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name: str, options: str) -> Path:
        where = tmp_path / name
        if not _mount_tmpfs(where, options):
            pytest.skip("needs a tmpfs mount (root with mount rights); not available here")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_output_location(tmp_path, tmpfs):
    study = small_study(tmp_path)
    ro = tmpfs("ro", "ro,size=1m")
    res = cli("convert", study, "--out", ro / "out")
    assert res.returncode == 1
    assert (f"error: {ro / 'out'}: cannot create the output folder: Read-only file system") in res.stderr
    res = cli("convert", study, "--out", ro)
    assert res.returncode == 1
    assert f"error: {ro}: cannot write to the output folder: Read-only file system" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_full_disk_publishes_nothing_and_leaves_nothing(tmp_path, tmpfs):
    small = tmpfs("small", "size=96k")
    res = cli("run", "--out", small / "out", "--quiet")
    assert res.returncode == 1
    assert f"error: {small / 'out'}: the outputs could not be written (nothing was published): " in res.stderr
    assert "(the disk is full)" in res.stderr and "Traceback" not in res.stderr
    assert list(small.iterdir()) == []
    # an earlier output on a device that fills up during the next run stays as it was
    study = small_study(tmp_path)
    assert cli("convert", study, "--out", small / "out", "--allow-invalid").returncode == 0
    before = snapshot(small / "out")
    try:                                            # fill the device to the last byte
        with open(small / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass
    res = cli("convert", study, "--out", small / "out", "--allow-invalid")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(small / "out") == before


def test_derive_on_a_full_disk_publishes_nothing(full_run, tmpfs):
    small = tmpfs("small", "size=64k")
    res = cli("derive", full_run / "sdtm", "--out", small / "out", "--quiet")
    assert res.returncode == 1
    assert f"error: {small / 'out'}: the outputs could not be written (nothing was published): " in res.stderr
    assert "(the disk is full)" in res.stderr and "Traceback" not in res.stderr
    assert list(small.iterdir()) == []


@pytest.mark.parametrize("stage", ["derive:built", "commit:aside:adam"])
def test_a_killed_run_of_the_whole_pipeline_is_undone(full_run, tmp_path, stage):
    out = tmp_path / "out"
    shutil.copytree(full_run, out, symlinks=True)
    before = snapshot(out)
    marker = tmp_path / "paused"
    proc = start("run", "--out", out, "--quiet", pause=stage, marker=marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert no_processes_left(proc.pid)
    res = cli("convert", broken_study(tmp_path), "--out", out)
    assert res.returncode == 1
    assert f"note: removed the temporary files of an interrupted run: .sdtm-ra-stage-{proc.pid}" in res.stderr
    assert snapshot(out) == before
