"""A plain (non-editable) install works outside the repository: the bundled study, its mappings
and the specs travel inside the package. Skipped where the package is not installed (CI installs it)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _installed_location(cwd: Path) -> Path | None:
    res = subprocess.run([sys.executable, "-c", "import sdtm_rA, sys; sys.stdout.write(sdtm_rA.__file__)"],
                         capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        return None
    return Path(res.stdout).resolve().parent


def test_installed_command_converts_bundled_study_outside_repo(tmp_path):
    location = _installed_location(tmp_path)
    if location is None or location == (REPO / "sdtm_rA").resolve():
        pytest.skip("sdtm_rA is not installed as a package here (CI installs it with pip install .)")
    script = shutil.which("sdtm-ra", path=str(Path(sys.executable).parent)) or shutil.which("sdtm-ra")
    assert script, "the sdtm-ra console script is missing from the installation"
    out = tmp_path / "out"
    res = subprocess.run([script, "convert", "--out", str(out)], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (location / "_specs" / "manifest.json").exists()
    assert (location / "bundled" / "ramsc01" / "mappings" / "dm.yaml").exists()
    run = json.loads((out / "run.json").read_text())
    assert "sdtm/lb.xpt" in run["outputs"] and run["outputs"]["sdtm/dm.xpt"]["rows"] == 6
    # The installed copy gives the same bytes as the checkout.
    ref = tmp_path / "ref"
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "convert", "--out", str(ref)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for path in (ref / "sdtm").glob("*.xpt"):
        assert path.read_bytes() == (out / "sdtm" / path.name).read_bytes(), path.name


def test_installed_command_runs_the_whole_pipeline_outside_repo(tmp_path):
    """`sdtm-ra run` from the installed package finds the bundled ADaM specs inside it and writes the
    same ADaM bytes as the checkout."""
    location = _installed_location(tmp_path)
    if location is None or location == (REPO / "sdtm_rA").resolve():
        pytest.skip("sdtm_rA is not installed as a package here (CI installs it with pip install .)")
    script = shutil.which("sdtm-ra", path=str(Path(sys.executable).parent)) or shutil.which("sdtm-ra")
    out, ref = tmp_path / "out", tmp_path / "ref"
    res = subprocess.run([script, "run", "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (location / "_specs" / "adam" / "ramsc01" / "adeff.yaml").exists()
    assert (out / "summary.html").is_file()
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "run", "--out", str(ref), "--quiet"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in (ref / "adam").glob("*.xpt"))
    assert names == ["adae.xpt", "adeff.xpt", "adlb.xpt", "adsl.xpt"]
    for name in names:
        assert (ref / "adam" / name).read_bytes() == (out / "adam" / name).read_bytes(), name


def test_parquet_input_needs_no_extra():
    """Parquet is a documented input format (validate, derive): its reader comes with a plain install."""
    from importlib.metadata import PackageNotFoundError, requires
    try:
        reqs = requires("sdtm_rA") or []
    except PackageNotFoundError:
        pytest.skip("sdtm_rA is not installed as a package here")
    plain = [r for r in reqs if "extra ==" not in r]
    assert any(r.split(">")[0].split("=")[0].strip() == "pyarrow" for r in plain), reqs
