"""An env's identity beyond its axes and the case folders it ran: extra pins (picklematrix.envs.matrix) and the content
digest of a user's case folders (picklematrix.record.fingerprint) decide what counts as already recorded
(picklematrix.record.resultsdir.recorded, picklematrix.record.ondemand.find_record)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from picklematrix import pins
from picklematrix.envs import venvs
from picklematrix.envs.ids import Env, asv_env_name, corpus_versions, extra_digest, parse_env_id
from picklematrix.record import fingerprint, ondemand, resultsdir
from picklematrix.run.corpus import case_digest
from picklematrix.sidecar import SidecarWriter
from picklematrix.versions import EXTRA_FILE

from .conftest import ROOT

BASE = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
VERSIONS = {"cloudpickle": "3.0.0", "dask": "2024.6.2", "distributed": "2024.6.2", "pydantic": "2.8.2"}
COMMIT = "0123abcd" * 5


def _record(results, *, extra=None, case_dirs=(), env_id=BASE.env_id):
    """A complete record (asv result and sidecar) as ``picklematrix run`` heads it, named as the recording
    names it."""
    digest = extra_digest(extra or {})
    name = asv_env_name("3.11.7", corpus_versions({**VERSIONS, **({"extra": digest} if digest else {})},
                                                  case_digest(case_dirs)))
    path = results / "box" / f"{COMMIT[:8]}-{name}.outcomes"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text("{}\n")
    writer = SidecarWriter(path, {"env": {"python": "3.11.7", "versions": VERSIONS}, "env_id": env_id,
                                  "commit": COMMIT, "machine": "box", "case_dirs": [str(d) for d in case_dirs],
                                  "broken_cases": [], "extra": extra or {},
                                  "case_digest": case_digest(case_dirs)})
    writer.finish()
    return path


def test_extra_pins_name_another_env_and_a_pin_every_env_has_does_not():
    tornado = Env(**{**BASE.__dict__, "extra": (("Tornado", "6.4.2"),)})
    assert tornado.env_id == f"{BASE.env_id}+{extra_digest({'tornado': '6.4.2'})}"
    harness = Env(**{**BASE.__dict__, "extra": tuple((r.split("==")[0], r.split("==")[1]) for r in pins.ENV)})
    assert harness.env_id == BASE.env_id and harness.identity_extra() == {}
    # versions compare as versions, names as names
    assert extra_digest({"Tornado": "6.4.0"}) == extra_digest({"tornado": "6.4"})
    assert parse_env_id(tornado.env_id) is None  # an id with a digest cannot give the pins back
    name = asv_env_name("3.11.7", {**VERSIONS, "extra": "1a2b3c4d"})
    assert name == ("picklematrix-py3.11.7-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-extra1a2b3c4d-"
                    "pydantic2.8.2")
    assert asv_env_name("3.11.7", VERSIONS) == (
        "picklematrix-py3.11.7-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-pydantic2.8.2")
    # a user's corpus is part of a record's name (its digest); the built-in corpus names none
    assert asv_env_name("3.11.7", corpus_versions(VERSIONS, "0123456789abcdef")) == (
        "picklematrix-py3.11.7-cases01234567-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-pydantic2.8.2")
    assert corpus_versions(VERSIONS, None) == VERSIONS


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A real uv venv of this Python with packaging (the digest's) and six (an extra pin)."""
    where = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([venvs.uv(), "venv", "-q", "-p", sys.executable, str(where)], check=True)
    subprocess.run([venvs.uv(), "pip", "install", "-q", "-p", venvs.venv_python(where), pins.PACKAGING, "six==1.16.0"],
                   check=True)
    return venvs.venv_python(where)


def test_the_probe_reports_a_venvs_extra_pins_and_the_digest_the_orchestrator_computes(venv):
    env = Env(python="3.11", cloudpickle="3.0.0", dask="2024.6.2", pydantic="2.8.2", extra=(("six", "1.16.0"),))
    venvs.name_extra_pins(venv, env)
    found = venvs.installed_versions(venv)
    assert found["extra"] == {"six": "1.16.0"}
    assert found["versions"]["extra"] == extra_digest({"six": "1.16.0"}) == env.env_id.split("+")[1]
    assert not any("six" in w for w in venvs.pin_mismatches(env, found))
    wrong = Env(python="3.11", cloudpickle="3.0.0", dask="2024.6.2", pydantic="2.8.2", extra=(("six", "1.17.0"),))
    venvs.name_extra_pins(venv, wrong)
    assert "six 1.16.0 (pinned 1.17.0)" in venvs.pin_mismatches(wrong, venvs.installed_versions(venv))
    # the harness run (picklematrix run in the env) records the same in its sidecar head
    head = subprocess.run([venv, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); "
                                       "from picklematrix.run.command import run_identity; "
                                       "print(json.dumps(run_identity([])))", str(ROOT / "src")],
                          capture_output=True, text=True, check=True).stdout
    assert json.loads(head) == {"extra": {"six": "1.16.0"}, "case_digest": None}  # installed, not pinned
    venvs.name_extra_pins(venv, BASE)  # no extra pins: nothing named, no digest
    assert not (Path(venv).parents[1] / EXTRA_FILE).exists()
    assert "extra" not in venvs.installed_versions(venv)["versions"]


def test_find_record_matches_extra_pins_by_installed_versions(tmp_path):
    results = tmp_path / "results"
    plain = _record(results)
    tornado = Env(**{**BASE.__dict__, "extra": (("tornado", "6.4.2"),)})
    assert ondemand.find_record(results, COMMIT, BASE).path == plain
    assert ondemand.find_record(results, COMMIT, tornado) is None  # the axes alone do not make it that env
    path = _record(results, extra={"tornado": "6.4.2"}, env_id=tornado.env_id)
    assert path != plain and ondemand.find_record(results, COMMIT, tornado).path == path
    assert ondemand.find_record(results, COMMIT, BASE).path == plain
    other = Env(**{**BASE.__dict__, "extra": (("tornado", "6.4.1"),)})
    assert ondemand.find_record(results, COMMIT, other) is None


def test_case_digest_is_the_content_of_the_folders(tmp_path):
    cases = tmp_path / "cases"
    shutil.copytree(ROOT / "tests" / "data" / "cases", cases)
    first = case_digest([cases])
    assert first and case_digest([]) is None
    copy = tmp_path / "elsewhere"
    shutil.copytree(cases, copy)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert case_digest([copy]) == first  # where they are, and caches, do not count
    case = next(cases.rglob("*.py"))
    case.write_text(case.read_text() + "\n# edited\n")
    assert case_digest([cases]) != first
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "new.py").write_text("CASE = {}\n")
    assert case_digest([copy, tmp_path / "more"]) != first


def test_a_record_of_edited_case_folders_is_not_already_recorded(tmp_path, monkeypatch):
    cases = tmp_path / "cases"
    shutil.copytree(ROOT / "tests" / "data" / "cases", cases)
    results = tmp_path / "results"
    path = _record(results, case_dirs=[cases])
    monkeypatch.setenv(fingerprint.CASES_VAR, str(cases))
    assert resultsdir.recorded(path.with_suffix(".json"), path) is not None
    assert ondemand.find_record(results, COMMIT, BASE) is not None
    case = next(cases.rglob("*.py"))
    case.write_text(case.read_text() + "\n# edited\n")
    assert resultsdir.recorded(path.with_suffix(".json"), path) is None
    assert ondemand.find_record(results, COMMIT, BASE) is None
    why = fingerprint.stale_reason(path.with_suffix(".json"), path)
    assert "case folders changed" in why and str(cases) in why and why.endswith("recording again")
    # the built-in corpus asked for: a record of a user's folders is not it, and the other way round
    monkeypatch.delenv(fingerprint.CASES_VAR)
    assert resultsdir.recorded(path.with_suffix(".json"), path) is None
    assert "built-in corpus" in fingerprint.stale_reason(path.with_suffix(".json"), path)
    builtin = _record(tmp_path / "other")
    assert resultsdir.recorded(builtin.with_suffix(".json"), builtin) is not None
    # an incomplete record says so
    builtin.with_suffix(".json").unlink()
    assert "incomplete" in fingerprint.stale_reason(builtin.with_suffix(".json"), builtin)
