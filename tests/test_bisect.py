"""nox -s bisect, for real: each step an env built with uv and recorded as nox -s matrix records it, only the
chosen case running. Findings come from running: nothing here tells the bisect what to find."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

BASE = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"  # the dask#11448 env


@pytest.fixture(scope="module")
def bisect_run(tmp_path_factory):
    """``nox -s bisect -- ARGS`` from a clean clone of HEAD (recording needs a committed tree, and the suite's own
    checkout may be in use), with its own envs, tools venv and results; returns (report, markdown, output)."""
    tmp = tmp_path_factory.mktemp("bisect")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = dict(os.environ, PICKLEMATRIX_MACHINE="box", PICKLEMATRIX_RESULTS=str(tmp / "results"),
               PICKLEMATRIX_TOOLS_VENV=str(tmp / "tools"))
    for var in ("_PICKLEMATRIX_RUN_COMMIT", "PICKLEMATRIX_ONLY", "PICKLEMATRIX_CASES", "PICKLEMATRIX_DIRTY_LABEL"):
        env.pop(var, None)

    def run(package, lo, hi, *args):
        proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp / "envs"), "-s", "bisect", "--",
                               "--change", f"{package}={lo}..{hi}", *args], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=1200)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        stem = tmp / "results" / "bisect" / f"{package}-{lo}..{hi}"  # (a version's dots: no with_suffix)
        return (json.loads(stem.with_name(stem.name + ".json").read_text()),
                stem.with_name(stem.name + ".md").read_text(), out)
    return run


@pytest.mark.slow
def test_bisecting_pydantic_on_the_11448_env_names_2_9_0_and_the_kernel_cells(bisect_run):
    report, md, _ = bisect_run("pydantic", "2.8.2", "2.9.2", "--base", BASE, "--only", "notebook/dask_11448_report")
    assert report["releases_between"] == ["2.9.0", "2.9.1"]  # from PyPI, pre-releases left out
    assert report["first_differing"] == "2.9.0" and report["kind"] == "fixed"
    assert {c["cell"] for c in report["cells"]} == {"notebook/dask_11448_report|dask.compute|kernel",
                                                    "notebook/dask_11448_report|Client.compute|kernel"}
    assert all(c["from"] == "serialize-error" and c["to"] == "pass" for c in report["cells"])
    tried = {t["version"]: t for t in report["tried"]}
    assert set(tried) >= {"2.8.2", "2.9.0", "2.9.2"} and tried["2.9.0"]["status"] == "differs"
    # only the chosen case ran in each step
    assert {k.split("|")[0] for t in tried.values() for k in t["outcomes"]} == {"notebook/dask_11448_report"}
    assert "**pydantic 2.9.0** is the first release" in md


@pytest.mark.slow
def test_bisecting_cloudpickle_finds_where_a_main_typing_namedtuple_loads(bisect_run):
    # on a dask 2024.6.2 env: the baseline with cloudpickle changed
    report, _, _ = bisect_run("cloudpickle", "2.1.0", "2.2.1", "--only", "classes/typing_namedtuple")
    assert report["base"]["dask"] == "2024.6.2" and report["releases_between"] == ["2.2.0"]
    found = report["first_differing"]
    assert found in ("2.2.0", "2.2.1") and report["cells"], report
    assert {c["cell"].split("|")[0] for c in report["cells"]} == {"classes/typing_namedtuple"}
    assert any(c["from"] != "pass" and c["to"] == "pass" for c in report["cells"])
