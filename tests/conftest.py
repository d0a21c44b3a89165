import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from picklematrix.record.recording import RUN_COMMIT_VAR

# `nox -s tests` hands its own nox run's commit to pytest in this variable (every nox process of one
# run records under one commit). The nox runs the tests start are runs of their own, at whatever HEAD
# is when they start: inherited, a commit made while the suite runs would make them refuse to record.
os.environ.pop(RUN_COMMIT_VAR, None)


@pytest.fixture(autouse=True)
def _run_commit_stays_in_its_test():
    """A test that takes a repository's commit as "this nox run's" (recording.remember_run_commit sets it in
    os.environ) must not hand it to the nox runs of every later test, which would then refuse to record."""
    yield
    os.environ.pop(RUN_COMMIT_VAR, None)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FIXTURE_CASES = DATA / "cases"
BROKEN_CASES = DATA / "broken"


@pytest.fixture(scope="session")
def cluster():
    """One real LocalCluster (worker processes) shared by the runner tests."""
    from picklematrix.cluster.local import OwnedCluster

    with OwnedCluster(n_workers=2) as c:
        yield c


@pytest.fixture(scope="session")
def runner(cluster, tmp_path_factory):
    from picklematrix.run.runner import CellRunner

    return CellRunner(cluster, log_dir=str(tmp_path_factory.mktemp("cell-logs")))


@pytest.fixture(scope="session")
def fixture_cases():
    from picklematrix.run.corpus import load_corpus

    cases, problems = load_corpus([FIXTURE_CASES])
    assert not problems, problems
    return {c.case_id: c for c in cases}


def run_cli(*args, timeout=600, cwd=ROOT):
    import subprocess

    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "picklematrix", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def nox_sessions():
    """``exists(name)``: does ``nox -s name`` name a session (nox lists only the default ones unless asked)."""
    known = {}

    def exists(name: str) -> bool:
        if name not in known:
            proc = subprocess.run([sys.executable, "-m", "nox", "--list", "--json", "-s", name], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            known[name] = proc.returncode == 0 and bool(json.loads(proc.stdout or "[]"))
        return known[name]

    return exists


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A real git repository with one commit, taken as this nox run's commit."""
    from picklematrix.record import recording

    path = tmp_path / "repo"
    path.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                                  "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    for var in (recording.RUN_COMMIT_VAR, "PICKLEMATRIX_DIRTY_LABEL", "PICKLEMATRIX_MACHINE",
                "PICKLEMATRIX_REPLICATE"):
        monkeypatch.delenv(var, raising=False)
    recording.remember_run_commit(path)
    return path
