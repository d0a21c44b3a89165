"""Results survive commits that cannot change them: a docs-only commit re-runs nothing, a new env runs alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from picklematrix.run.corpus import case_digest

from .conftest import ROOT

A = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
B = "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"


def _matrix(envs: list[str]) -> str:
    return textwrap.dedent(f"""
        [axes]
        python = ["3.11"]
        cloudpickle = ["3.0.0"]
        dask = ["2024.6.2"]
        pydantic = ["2.8.2", "2.9.2"]

        [profiles.default]
        baseline = "{A}"
        envs = {json.dumps(envs)}
    """)


@pytest.mark.slow
def test_a_docs_only_commit_reuses_every_result_and_a_new_env_runs_alone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    env = dict(os.environ, PICKLEMATRIX_RESULTS=str(tmp_path / "results"), PICKLEMATRIX_MACHINE="box",
               PICKLEMATRIX_ONLY="functions/lambda_square", PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))

    def nox(*args):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp_path / "envs"), *args], cwd=clone,
                              env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        return proc.stdout + proc.stderr, time.monotonic() - started

    def commit(path: str, text: str, message: str):
        (clone / path).write_text(text)
        subprocess.run([*git, "commit", "-qam", message], check=True, timeout=60)

    commit("matrix.toml", _matrix([A]), "the profile: one env")
    nox("-s", "matrix")
    results = tmp_path / "results" / "box"
    recorded = sorted(p.name for p in results.glob("*.outcomes"))
    assert len(recorded) == 1

    # a docs-only commit: nothing is recorded again, and the report shows the env with no problem
    commit("README.md", (clone / "README.md").read_text() + "\nA line of docs.\n", "docs only")
    log, seconds = nox("-s", "matrix")
    assert f"{A}: already recorded" in log
    assert sorted(p.name for p in results.glob("*.outcomes")) == recorded
    assert seconds < 60, f"a run with nothing to record took {seconds:.0f} s"
    report = subprocess.run([sys.executable, "-m", "picklematrix", "report", "--results", str(tmp_path / "results"),
                             "--html", str(tmp_path / "html"), "--checkout", str(clone)],
                            capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stdout + report.stderr
    table = json.loads((tmp_path / "results" / "table.json").read_text())
    assert [e["env_id"] for e in table["environments"]] == [A] and table["problems"] == []

    # an env added to matrix.toml, committed: only that env runs
    commit("matrix.toml", _matrix([A, B]), "the profile: a second env")
    log, _ = nox("-s", "matrix")
    assert log.count("already recorded") == 1 and f"{A}: already recorded" in log
    now = sorted(p.name for p in results.glob("*.outcomes"))
    assert len(now) == 2 and set(recorded) < set(now)


@pytest.mark.slow
def test_editing_a_case_in_a_users_own_folder_records_the_env_again(tmp_path):
    """A maintainer's case folder outside the checkout: no commit of the checkout sees it, its content does."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    (clone / "matrix.toml").write_text(_matrix([A]))
    subprocess.run([*git, "commit", "-qam", "the profile: one env"], check=True, timeout=60)
    cases = tmp_path / "my-cases"
    cases.mkdir()
    case = cases / "lambda_square.py"
    shutil.copyfile(ROOT / "cases" / "functions" / "lambda_square.py", case)
    env = dict(os.environ, PICKLEMATRIX_RESULTS=str(tmp_path / "results"), PICKLEMATRIX_MACHINE="box",
               PICKLEMATRIX_CASES=str(cases), PICKLEMATRIX_ONLY="functions/lambda_square",
               PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))
    for var in ("_PICKLEMATRIX_RUN_COMMIT", "PICKLEMATRIX_DIRTY_LABEL", "PICKLEMATRIX_PROFILE", "PICKLEMATRIX_REPLICATE"):
        env.pop(var, None)

    def nox():
        proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp_path / "envs"), "-s", "matrix"],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        return proc.stdout + proc.stderr

    def record():  # the record of the case folder as it is now (a corpus is part of a record's name)
        found = [json.loads(p.read_text()) for p in (tmp_path / "results" / "box").glob("*.outcomes")]
        return [r for r in found if r["case_digest"] == case_digest([cases])]

    nox()
    [first] = record()
    assert first["extra"] == {}
    outcomes = {c["outcome"] for c in first["cells"]}
    assert "pass" in outcomes and "wrong-result" not in outcomes
    assert f"{A}: already recorded" in nox()  # the same folder, unchanged: nothing is recorded again

    # the maintainer edits the case: what it expects now differs from what it computes
    case.write_text(case.read_text().replace("expected = 49", "expected = 50"))
    log = nox()
    assert "already recorded" not in log and "the case folders changed since it was recorded" in log, log[-3000:]
    assert "the record of the folders as they were stays beside it" in log, log[-3000:]
    [again] = record()
    assert again["case_digest"] != first["case_digest"]
    assert len(list((tmp_path / "results" / "box").glob("*.outcomes"))) == 2  # the edit replaced no record
    assert again["commit"] == first["commit"]  # the checkout's fingerprint did not move; the folder did
    outcomes = {c["outcome"] for c in again["cells"]}
    assert "wrong-result" in outcomes and "pass" not in outcomes
