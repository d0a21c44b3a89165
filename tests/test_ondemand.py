"""Envs on demand, for real: nox -s review builds and records the envs it is asked about (real pip freezes: two
that differ only outside the axes are two envs; then a change of the baseline), the same way nox -s matrix
records them, and reuses them next time."""

import json
import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT

FREEZES = ROOT / "tests" / "data" / "freezes"
ONLY = "notebook/dask_11448_report"


@pytest.mark.slow
def test_reviews_of_requirements_files_and_of_a_change_build_only_what_is_missing(tmp_path):
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
    tornado = FREEZES / "requirements-pyd2.8.2-tornado6.4.2.txt"  # a's freeze with another tornado: same axes
    proc = review("--from", str(a), "--to", str(tornado))
    out = proc.stdout + proc.stderr
    # two envs, two records (their asv names carry the digest of their extra pins), and a review between them
    # that tells them apart by what differs: tornado
    assert proc.returncode in (0, 1), out[-6000:]
    recorded = sorted(p.name for p in (results / "box").glob("*.outcomes"))
    assert len(recorded) == 2 and all("py3.11.7-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-extra" in n
                                      for n in recorded), recorded
    ids = re.findall(r"cp3\.0\.0-dask2024\.6\.2-pyd2\.8\.2-py3\.11\+[0-9a-f]{8}", out)
    assert len(set(ids)) == 2, out[-4000:]
    assert "0 fixed, 0 broken" in out and "tornado 6.6.1" in out and "tornado 6.4.2" in out, out[-4000:]
    heads = [json.loads(p.read_text()) for p in (results / "box").glob("*.outcomes")]
    assert sorted(h["extra"]["tornado"] for h in heads) == ["6.4.2", "6.6.1"]

    # a is already recorded: only b is built; pydantic 2.9 fixes the kernel cells of dask#11448, nothing
    # broke, so the review's status is 0
    proc = review("--from", str(a), "--to", str(b))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "already recorded" in out and "Fixed" in out and "dask_11448_report" in out, out[-4000:]
    assert len(list((results / "box").glob("*.outcomes"))) == 3

    # the baseline (matrix.toml's env, no extra pins: not a's env) and pydantic 2.10.6 are built
    proc = review("--change", "pydantic=2.10.6")
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-6000:]
    assert "cp3.0.0-dask2024.6.2-pyd2.10.6-py3.11: recorded" in out, out[-4000:]
    assert len(list((results / "box").glob("*.outcomes"))) == 5
    # asked again: both are reused, nothing is built
    proc = review("--change", "pydantic=2.10.6")
    out = proc.stdout + proc.stderr
    assert out.count("already recorded") == 2 and len(list((results / "box").glob("*.outcomes"))) == 5, out[-4000:]

    # the report over records with and without extra pins: asv's site is built, and --env with a freeze shows
    # only the env recorded from it, labelled by the tornado that tells it from its sibling
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "report", "--results", str(results), "--html",
                           str(tmp_path / "html"), "--checkout", str(clone), "--env", str(tornado)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [shown] = json.loads((results / "table.json").read_text())["environments"]
    assert shown["label"][-2:] == ["tornado 6.4.2", "+20 other extra pins"] and "+" in shown["env_id"]
    assert (tmp_path / "html" / "index.html").exists()


def test_sessions_that_make_the_same_venv_at_once_both_get_it(tmp_path):
    """Skew pairs of one cluster env start together (nox starts the pairs first): each session makes that env's
    venv if it is missing, and uv refuses a venv directory another has just made."""
    import threading

    from picklematrix.envs.ids import parse_env_id
    from picklematrix.record import ondemand

    env = parse_env_id("cp3.1.3-dask2026.8.0-pyd2.14.4-py3.11")
    for attempt in range(3):
        where = tmp_path / f"on-demand-{attempt}" / env.env_id
        found, errors = [], []

        def make():
            try:
                found.append(ondemand.make_venv(env, where))
            except Exception as e:  # noqa: BLE001 - the test's finding
                errors.append(e)

        threads = [threading.Thread(target=make) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(found) == 4 and len(set(found)) == 1 and os.path.exists(found[0])
