"""A real pip freeze through a review, from a fresh clone: its unreproducible lines skipped and named on the
console, the env recorded with them (the sidecar head's ``requirements``), the review and the matrix page
showing it as approximate. ``--pins needed`` keeps the build small (the faithful default installs torch's 3 GB
too; docs/matrix-toml.md says what each costs)."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

FREEZE = ROOT / "tests" / "data" / "freezes" / "vascular-superenhancement-4d-flow.txt"
ONLY = "notebook/dask_11448_report"


@pytest.mark.slow
def test_a_real_freeze_is_reviewed_as_it_comes_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    results = tmp_path / "results"
    env = dict(os.environ, PICKLEMATRIX_MACHINE="box", PICKLEMATRIX_RESULTS=str(results), PICKLEMATRIX_ONLY=ONLY,
               PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))
    for var in ("_PICKLEMATRIX_RUN_COMMIT", "PICKLEMATRIX_CASES", "PICKLEMATRIX_DIRTY_LABEL", "PICKLEMATRIX_PROFILE"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp_path / "envs"), "-s", "review", "--",
                           "--from", str(FREEZE), "--change", "cloudpickle=3.1.0", "--pins", "needed"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=2400)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-6000:]
    # each line skipped is named once, with its file, line, package and reason
    assert out.count(f"{FREEZE}:242: skipped vascular-superenhancement: an editable install") == 1, out[-6000:]
    assert f"{FREEZE}:138: skipped packaging: the harness installs packaging==26.4" in out
    assert f"{FREEZE}: 127 line(s) skipped: the env is approximate" in out
    # two records, each keeping the file and its lines skipped
    heads = [json.loads(p.read_text()) for p in (results / "box").glob("*.outcomes")]
    assert sorted(h["env"]["versions"]["cloudpickle"] for h in heads) == ["3.1.0", "3.1.1"], out[-4000:]
    for head in heads:
        assert head["requirements"]["file"] == str(FREEZE) and len(head["requirements"]["skipped"]) == 127
        assert head["requirements"]["pins"] == "needed" and "torch" in head["requirements"]["left_out"]
        assert "torch" not in head["extra"] and head["extra"]["toolz"] == "1.0.0"
    # the review says what it compared: the approximate env from the freeze, cloudpickle 3.1.1 -> 3.1.0
    review = next((results / "reviews").glob("*.md")).read_text()
    assert "approximate (127 lines skipped)" in review and "cloudpickle" in review, review[:3000]
    # the matrix page's data: the env labelled approximate, its note naming the skipped lines; --env FREEZE finds
    # the env recorded from it though it could not install all of its lines
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "report", "--results", str(results), "--html",
                           str(tmp_path / "html"), "--checkout", str(clone), "--env", str(FREEZE)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    envs = json.loads((results / "table.json").read_text())["environments"]
    assert [e["versions"]["cloudpickle"] for e in envs] == ["3.1.1"], envs
    assert "approximate (127 lines skipped)" in envs[0]["label"]
    assert any("1 an editable install: vascular-superenhancement (line 242)" in n and "125 a local path: " in n
               for n in envs[0]["notes"]), envs[0]["notes"]
