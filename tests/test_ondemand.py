"""Envs on demand, for real: nox -s review builds and records the envs it is asked about (two real pip freezes,
then a change of the baseline), the same way nox -s matrix records them, and reuses them next time."""

import os
import subprocess
import sys

import pytest

from .conftest import ROOT

FREEZES = ROOT / "tests" / "data" / "freezes"
ONLY = "notebook/dask_11448_report"


@pytest.mark.slow
def test_review_of_two_requirements_files_then_of_a_change_builds_only_what_is_missing(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    results = tmp_path / "results"
    env = dict(os.environ, PICKLEMATRIX_MACHINE="box", PICKLEMATRIX_RESULTS=str(results), PICKLEMATRIX_ONLY=ONLY,
               PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))
    for var in ("_PICKLEMATRIX_RUN_COMMIT", "PICKLEMATRIX_CASES", "PICKLEMATRIX_DIRTY_LABEL", "PICKLEMATRIX_PROFILE"):
        env.pop(var, None)

    def review(*args):
        return subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp_path / "envs"), "-s", "review", "--",
                               *args], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)

    a, b = FREEZES / "requirements-pyd2.8.2.txt", FREEZES / "requirements-pyd2.9.2.txt"
    proc = review("--from", str(a), "--to", str(b))
    out = proc.stdout + proc.stderr
    # pydantic 2.9 fixes the kernel cells of dask#11448: nothing broke, so the review's status is 0
    assert proc.returncode == 0, out[-6000:]
    assert "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11" in out and "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11" in out
    assert "Fixed" in out and "dask_11448_report" in out, out[-4000:]
    recorded = sorted(p.name for p in (results / "box").glob("*.outcomes"))
    assert len(recorded) == 2 and all("py3.11.7-cloudpickle3.0.0-dask2024.6.2" in n for n in recorded)

    # the baseline is the 2.8.2 env already recorded: only pydantic 2.10.6 is built
    proc = review("--change", "pydantic=2.10.6")
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-6000:]
    assert "already recorded" in out and "cp3.0.0-dask2024.6.2-pyd2.10.6-py3.11: recorded" in out, out[-4000:]
    assert len(list((results / "box").glob("*.outcomes"))) == 3
