"""Faults that must end in one clear error, naming the culprit and what to do: a results directory that cannot
be written, an env the resolver cannot build, a package that is not the one locked.

(A broken case file under `nox -s matrix`, recorded all the same and failing the env loudly, is
tests/test_e2e_matrix.py's test_a_broken_case_file_fails_the_env_and_the_other_cases_are_kept.)

Tests run as root, whom chmod does not stop: an unwritable results directory is a file in its place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from picklematrix import pins
from picklematrix.envs import venvs
from picklematrix.envs.ids import parse_env_id
from picklematrix.record import recording, resultsdir
from picklematrix.report import compare
from picklematrix.report.problems import BadInput
from picklematrix.report.render import render_table_md
from picklematrix.report.results import load_results
from picklematrix.report.table import build_table

from ..conftest import ROOT

ENV = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
UNRESOLVABLE = parse_env_id("cp2.2.1-dask2026.8.0-pyd2.14.4-py3.11")  # dask 2026.8.0 needs cloudpickle >= 3


@pytest.fixture
def repo(repo, monkeypatch):
    """The suite's one-commit repository, recording under machine "box"."""
    monkeypatch.setenv("PICKLEMATRIX_MACHINE", "box")
    return repo


@pytest.fixture
def blocked(tmp_path):
    """A results "directory" that is a file: nothing can be written below it, not even by root."""
    path = tmp_path / "results"
    path.write_text("a file where the results directory should be\n")
    return path


def _one_line_naming(error: Exception, path: Path) -> str:
    text = str(error)
    assert "\n" not in text, text
    assert str(path) in text and "PICKLEMATRIX_RESULTS" in text, text
    return text


# --------------------------------------------------------------------------- 8a: unwritable results


def test_an_unwritable_results_dir_stops_the_recording_before_anything_is_built(repo, blocked, tmp_path):
    with pytest.raises(recording.RecordingError) as err:
        # the interpreter does not exist: reaching the build would be a different error
        recording.record_env(ENV, str(tmp_path / "no-venv" / "bin" / "python"), repo, blocked, tmp_path / "s")
    _one_line_naming(err.value, blocked)


def test_an_env_error_that_cannot_be_written_is_one_line(blocked):
    target = resultsdir.Target(blocked, "f" * 40, "box")
    with pytest.raises(recording.RecordingError) as err:
        resultsdir.record_env_error(target, ENV, "install", "No solution found")
    _one_line_naming(err.value, blocked)


def test_a_merge_into_an_unwritable_results_dir_is_one_line(tmp_path, blocked):
    stage = tmp_path / "stage"
    (stage / "box").mkdir(parents=True)
    for rel in ("benchmarks.json", "box/machine.json", "box/r.json"):
        (stage / rel).write_text("{}")
    with pytest.raises(recording.RecordingError) as err:
        resultsdir.merge_asv_results(stage, blocked, "box", "r.json")
    _one_line_naming(err.value, blocked)


def test_a_merge_whose_machine_dir_is_a_file_is_one_line(tmp_path):
    stage, results = tmp_path / "stage", tmp_path / "results"
    (stage / "box").mkdir(parents=True)
    for rel in ("benchmarks.json", "box/machine.json", "box/r.json", "s.outcomes"):
        (stage / rel).write_text("{}")
    results.mkdir()
    (results / "box").write_text("not a directory")
    with pytest.raises(recording.RecordingError) as err:
        resultsdir.merge_asv_results(stage, results, "box", "r.json", sidecar=stage / "s.outcomes")
    _one_line_naming(err.value, results / "box")


@pytest.mark.slow
def test_under_nox_an_unwritable_results_dir_is_one_line_and_no_traceback(tmp_path, blocked):
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(f'[axes]\npython = ["3.11"]\ncloudpickle = ["3.0.0"]\ndask = ["2024.6.2"]\n'
                      f'pydantic = ["2.8.2"]\n[profiles.default]\nbaseline = "{ENV.env_id}"\n'
                      f'envs = ["{ENV.env_id}"]\n')
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(matrix), PICKLEMATRIX_RESULTS=str(blocked),
               PICKLEMATRIX_DIRTY_LABEL="faults", PICKLEMATRIX_ONLY="functions/lambda_square")
    env.pop(recording.RUN_COMMIT_VAR, None)
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", f"matrix({ENV.env_id})"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out and "PermissionError" not in out and "NotADirectoryError" not in out, out[-5000:]
    assert f"cannot write {blocked}" in out and "PICKLEMATRIX_RESULTS" in out, out[-3000:]


# --------------------------------------------------------------------------- 8b: the resolver's explanation


@pytest.fixture(scope="module")
def unresolvable(tmp_path_factory):
    """A real recording of an env uv cannot resolve, from a clean clone of this checkout's HEAD."""
    tmp = tmp_path_factory.mktemp("unresolvable")
    checkout = tmp / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    venv = tmp / "venv"
    subprocess.run([venvs.uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    saved = {k: os.environ.pop(k, None) for k in (recording.RUN_COMMIT_VAR, "PICKLEMATRIX_DIRTY_LABEL")}
    os.environ["PICKLEMATRIX_MACHINE"], saved["PICKLEMATRIX_MACHINE"] = "box", os.environ.get("PICKLEMATRIX_MACHINE")
    try:
        recording.remember_run_commit(checkout)
        with pytest.raises(recording.RecordingError) as err:
            recording.record_env(UNRESOLVABLE, venvs.venv_python(venv), checkout, tmp / "results", tmp / "s")
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    return tmp / "results", str(err.value)


def _explains(text: str) -> None:
    """The resolver's whole explanation is kept: its reasoning ("because ..." lines), naming both sides of the
    conflict, not only its first line. uv's exact wording (``dask>=2026.8.0`` or ``dask==2026.8.0``) depends on
    which releases the index holds that day, so only what the harness keeps is asserted."""
    because = [line for line in text.splitlines() if "because" in line.lower()]
    assert because, text
    assert any("dask" in line and "cloudpickle" in line for line in because), text


@pytest.mark.slow
def test_the_session_log_and_the_env_error_keep_the_resolver_s_explanation(unresolvable):
    results, message = unresolvable
    _explains(message)
    (error,) = results.glob("box/*.env-error")
    assert f"recorded in {error}" in message
    _explains(json.loads(error.read_text())["message"])


@pytest.mark.slow
def test_the_report_and_the_review_show_the_explanation(unresolvable):
    results, _ = unresolvable
    rs = load_results(results)
    md = render_table_md(build_table(rs))
    row = next(line for line in md.splitlines() if UNRESOLVABLE.env_id in line)
    _explains(row)
    with pytest.raises(BadInput) as err:
        compare.resolve_env(rs, UNRESOLVABLE.env_id, "from")
    _explains(str(err.value))


# --------------------------------------------------------------------------- 8d: hashed locks


def _locked(group: str) -> dict:
    """{name: (version, hashes)} of ``locks/<group>.txt``, marker variants (importlib-metadata ...) merged."""
    entries: dict = {}
    name = None
    for line in pins.lock_path(group).read_text().splitlines():
        text = line.strip().rstrip("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash="):
            entries[name][1].append(text.removeprefix("--hash="))
            continue
        req = Requirement(text)
        name = (canonicalize_name(req.name), str(req.specifier), str(req.marker))
        entries[name] = (str(req.specifier), [])
    return entries


@pytest.mark.parametrize("group", pins.LOCKED)
def test_every_locked_package_has_hashes_and_agrees_with_the_pins(group):
    entries = _locked(group)
    assert entries, group
    for key, (spec, hashes) in entries.items():
        assert spec.startswith("==") and hashes and all(h.startswith("sha256:") for h in hashes), key
    locked = {(name, spec) for name, spec, _ in entries}
    for text in pins.GROUPS[group]:
        pin = Requirement(text)
        assert (canonicalize_name(pin.name), str(pin.specifier)) in locked, (
            f"{group}: {text} is not in {pins.lock_path(group)}: run `python3 src/picklematrix/pins.py lock`")


def _tampered(text: str, package: str) -> str:
    """``text`` (a lock file) with every hash of ``package`` replaced: no file of it can match."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(f"{package}=="))
    j = i + 1
    while lines[j].strip().startswith("--hash="):
        lines[j] = "    --hash=sha256:" + "0" * 64 + (" \\" if lines[j].rstrip().endswith("\\") else "")
        j += 1
    assert j > i + 1, f"no hashes of {package}"
    return "\n".join(lines) + "\n"


def test_the_tools_venv_refuses_a_package_that_is_not_the_one_locked(tmp_path, monkeypatch):
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "tools.txt").write_text(_tampered(pins.lock_path("tools").read_text(), "jinja2"))
    monkeypatch.setattr(pins, "LOCKS_DIR", locks)
    with pytest.raises(venvs.EnvError) as err:
        venvs.tools_python(ROOT, tmp_path / "tools")
    assert "jinja2" in str(err.value) and "hash" in str(err.value).lower(), str(err.value)


@pytest.mark.slow
def test_nox_s_venv_installs_with_require_hashes_from_its_lock(tmp_path):
    """./nox, copied with pins.py and the locks: it builds nox's venv from the lock, and refuses a tampered one."""
    root = tmp_path / "checkout"
    (root / "src" / "picklematrix").mkdir(parents=True)
    shutil.copy2(ROOT / "nox", root / "nox")
    shutil.copy2(ROOT / "src" / "picklematrix" / "pins.py", root / "src" / "picklematrix" / "pins.py")
    shutil.copytree(pins.LOCKS_DIR, root / "src" / "picklematrix" / "locks")
    env = dict(os.environ, PICKLEMATRIX_NOX_VENV=str(tmp_path / "venv"))
    ok = subprocess.run([str(root / "nox"), "--version"], cwd=root, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "lock" in (tmp_path / "venv" / "picklematrix-nox.txt").read_text()

    lock = root / "src" / "picklematrix" / "locks" / "nox.txt"
    lock.write_text(_tampered(lock.read_text(), "nox"))
    env["PICKLEMATRIX_NOX_VENV"] = str(tmp_path / "venv2")
    bad = subprocess.run([str(root / "nox"), "--version"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode != 0 and "hash" in bad.stderr.lower() and str(lock) in bad.stderr, bad.stderr[-3000:]


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([venvs.uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    return venvs.venv_python(venv)


# the tests' own env: uv's cache has every package of it
TESTS_ENV = parse_env_id(f"cp3.1.3-dask2026.8.0-pyd2.8.2-py{sys.version_info[0]}.{sys.version_info[1]}")


@pytest.mark.slow
def test_a_matrix_env_refuses_an_env_package_that_is_not_the_one_locked(bare_venv, tmp_path, monkeypatch):
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "env.txt").write_text(_tampered(pins.lock_path("env").read_text(), "ipykernel"))
    monkeypatch.setattr(pins, "LOCKS_DIR", locks)
    with pytest.raises(venvs.EnvError) as err:
        venvs.prepare(TESTS_ENV, bare_venv, ROOT)
    assert err.value.stage == "install" and "ipykernel" in str(err.value) and "hash" in str(err.value).lower()


@pytest.mark.slow
def test_a_matrix_env_installs_its_env_packages_from_the_lock(bare_venv):
    found = venvs.prepare(TESTS_ENV, bare_venv, ROOT)
    assert found["versions"]["dask"] == "2026.8.0"
    versions = subprocess.run([bare_venv, "-c", "import importlib.metadata as m; print(m.version('ipykernel'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert f"ipykernel=={versions}" in pins.ENV
