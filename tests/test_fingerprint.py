"""Results keyed by what they depend on (picklematrix.record.fingerprint): the report picks the checkout's fingerprint,
and shows an env recorded only under an older one, marked with it, never dropping it."""

import subprocess

from picklematrix.envs.ids import asv_env_name
from picklematrix.record import fingerprint
from picklematrix.report.results import load_results
from picklematrix.sidecar import SidecarWriter


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def _commit(repo, files, message):
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", *files)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _sidecar(results, commit, env_id, pydantic, outcome):
    versions = {"cloudpickle": "3.0.0", "dask": "2024.6.2", "distributed": "2024.6.2", "pydantic": pydantic}
    path = results / "box" / f"{commit[:8]}-{asv_env_name('3.11.7', versions)}.outcomes"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = SidecarWriter(path, {"env": {"python": "3.11.7", "versions": versions}, "env_id": env_id,
                                  "commit": commit, "machine": "box", "case_dirs": [], "broken_cases": []})
    writer.add({"case": "c", "family": "f", "method": "Client.compute", "context": "script", "outcome": outcome,
                "expected": "pass", "surprise": outcome != "pass", "root_cause": None, "seconds": 0.01,
                "samples": [0.01], "graph_bytes": 1, "detail": None})
    writer.finish()
    return path


def test_an_env_recorded_under_an_older_fingerprint_is_shown_marked(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "asv.conf.json").write_text("{}\n")
    old = _commit(repo, {"asv.conf.json": "{}\n", "src/picklematrix/run/runner.py": "1\n"}, "old code")
    new = _commit(repo, {"src/picklematrix/run/runner.py": "2\n"}, "new code")
    _commit(repo, {"README.md": "docs\n", "matrix.toml": "# an env more\n"}, "docs and matrix only")
    assert fingerprint.fingerprint_commit(repo) == new != _git(repo, "rev-parse", "HEAD")
    results = tmp_path / "results"
    _sidecar(results, old, "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "2.8.2", "serialize-error")
    _sidecar(results, old, "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11", "2.9.2", "pass")
    _sidecar(results, new, "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11", "2.9.2", "pass")

    rs = load_results(results, checkout=repo)
    assert rs.commit == new  # HEAD is a docs-only commit: its fingerprint is the code commit
    shown = {r.env_id: r for r in rs.current()}
    assert set(shown) == {"cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"}
    older = shown["cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"]
    assert older.commit == old and old[:8] in older.fingerprint_note and older.fingerprint_note in older.notes
    assert shown["cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"].commit == new  # the newer record wins, not both
    assert any("shown, marked" in p.message for p in rs.problems)
    # --commit shows exactly that commit
    assert {r.commit for r in load_results(results, commit=old[:8], checkout=repo).current()} == {old}


def test_a_bisects_files_in_the_results_dir_are_not_a_machine(tmp_path):
    results = tmp_path / "results"
    commit = "0123456789abcdef0123456789abcdef01234567"
    _sidecar(results, commit, "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "2.8.2", "pass")
    (results / "bisect").mkdir()
    (results / "bisect" / "pydantic-2.8.2..2.9.2.json").write_text('{"package": "pydantic"}\n')
    rs = load_results(results)
    assert [r.machine for r in rs.current()] == ["box"]
    assert not any("/bisect/" in p.path for p in rs.problems), rs.problems
