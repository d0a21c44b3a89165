"""Reviews of many envs at once: a pull request's (every env at the base against the head, picklematrix.report.revs)
and the scheduled run's (the newest record against the one before it, picklematrix.report.latest)."""

import json
import subprocess
from pathlib import Path

import pytest

from picklematrix.report import compare as rv
from picklematrix.report.results import Recording, ResultSet

from .conftest import ROOT
from .reporting import BROKEN, A, B, recorded
from .test_review import TOPLEVEL_KERNEL, _env_name, review_cli


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return recorded(tmp_path_factory)


# --------------------------------------------------------------------------- a pull request: base against head

BASE_FP, HEAD_FP = "b" * 40, "c" * 40
KERNEL_CELL = ("pydantic/toplevel_model", "Client.compute", "kernel")
SCRIPT_CELL = ("functions/lambda_square", "dask.compute", "script")


def _rec(env_id, commit, outcomes=None, error=False):
    cells = {k: {"outcome": o, "root_cause": None if o == "pass" else {"type": "TypeError", "message": "no"}}
             for k, o in (outcomes or {}).items()}
    r = Recording(machine="m", commit=commit, env_name=f"asv-{env_id}", env_id=env_id, python="3.11.7",
                  versions={"cloudpickle": "3.0.0", "dask": "2024.6.2", "distributed": "2024.6.2",
                            "pydantic": "2.8.2"}, cells=cells)
    if error:
        r.error = {"stage": "build", "message": "no solution found", "env": {}}
    return r


def _pr_review(recordings, base_envs, head_envs, same=False):
    from picklematrix.report.revs import review_revisions

    head_fp = BASE_FP if same else HEAD_FP
    rs = ResultSet(results_dir=Path("results"), recordings=recordings, problems=[], commit=head_fp, benchmarks=None)
    return review_revisions(rs, {"rev": "base", "fingerprint": BASE_FP, "envs": base_envs},
                            {"rev": "HEAD", "fingerprint": head_fp, "envs": head_envs, "profile": "default"}, 1.1)


def test_a_pull_request_review_names_every_env_of_both_profiles():
    passing, failing = {KERNEL_CELL: "pass", SCRIPT_CELL: "pass"}, {KERNEL_CELL: "serialize-error",
                                                                    SCRIPT_CELL: "pass"}
    recs = [_rec("broke", BASE_FP, passing), _rec("broke", HEAD_FP, failing),
            _rec("fixed", BASE_FP, failing), _rec("fixed", HEAD_FP, passing),
            _rec("added", HEAD_FP, passing), _rec("removed", BASE_FP, passing),
            _rec("unrecorded-base", HEAD_FP, passing),
            _rec("unbuildable", BASE_FP, passing), _rec("unbuildable", HEAD_FP, error=True)]
    review = _pr_review(recs, ["broke", "fixed", "removed", "unrecorded-base", "unbuildable"],
                        ["broke", "fixed", "added", "unrecorded-base", "unbuildable"])
    status = {e["env_id"]: e["status"] for e in review["envs"]}
    assert status == {"broke": "compared", "fixed": "compared", "added": "added", "removed": "removed",
                      "unrecorded-base": "not-recorded-base", "unbuildable": "error-head"}
    envs = {e["env_id"]: e for e in review["envs"]}
    assert [(c["case"], c["method"], c["context"]) for c in envs["broke"]["broken"]] == [KERNEL_CELL]
    assert envs["broke"]["broken"][0]["after"]["outcome"] == "serialize-error" and not envs["broke"]["fixed"]
    assert len(envs["fixed"]["fixed"]) == 1 and envs["fixed"]["exit_status"] == 0
    assert "no record at the base's fingerprint bbbbbbbb" in envs["unrecorded-base"]["verdict"]
    assert "could not be built at the head" in envs["unbuildable"]["verdict"]
    assert review["exit_status"] == 1 and review["verdict"].startswith("1 broken, 1 fixed, ")
    assert "2 env(s) and 0 cell(s) not compared" in review["verdict"]
    assert "1 cell(s) broke: they pass at the base and fail at the head" in review["meaning"]
    # the same envs with nothing broken or missing: exit 0
    ok = _pr_review([r for r in recs if r.env_id in ("fixed", "added")], ["fixed"], ["fixed", "added"])
    assert ok["exit_status"] == 0 and "nothing broke" in ok["meaning"] and ok["counts"]["added"] == 1
    # an added env the base's code recorded too is compared as well: a break there is the head's
    added = _pr_review([_rec("new", BASE_FP, passing), _rec("new", HEAD_FP, failing)], [], ["new"])
    new = added["envs"][0]
    assert new["status"] == "added" and len(new["broken"]) == 1 and added["exit_status"] == 1
    assert new["verdict"].startswith("added to the profile by the pull request; at the base's code against")


def test_the_base_record_is_not_a_stale_result_in_the_env_reviews(tmp_path):
    from picklematrix.report.problems import Problem
    from picklematrix.report.revs import review_revisions

    a, b = _rec("e", BASE_FP, {KERNEL_CELL: "pass"}), _rec("e", HEAD_FP, {KERNEL_CELL: "pass"})
    a.sidecar_path, b.sidecar_path = Path("m/bbbbbbbb-asv-e.outcomes"), Path("m/cccccccc-asv-e.outcomes")
    problems = [Problem(str(a.sidecar_path), "recorded by harness commit bbbbbbbb, not cccccccc which this "
                                             "report shows"),
                Problem(str(b.sidecar_path), "unreadable (truncated)")]
    rs = ResultSet(results_dir=tmp_path, recordings=[a, b], problems=problems, commit=HEAD_FP, benchmarks=None)
    review = review_revisions(rs, {"rev": "base", "fingerprint": BASE_FP, "envs": ["e"]},
                              {"rev": "HEAD", "fingerprint": HEAD_FP, "envs": ["e"]}, 1.1, tmp_path)
    md = (tmp_path / review["envs"][0]["review"]["md"]).read_text()
    assert "recorded by harness commit bbbbbbbb" not in md and "unreadable (truncated)" in md


def test_the_same_fingerprint_at_base_and_head_is_no_change():
    recs = [_rec("a", BASE_FP, {KERNEL_CELL: "pass"}), _rec("b", BASE_FP, {KERNEL_CELL: "serialize-error"})]
    review = _pr_review(recs, ["a", "b"], ["a", "b"], same=True)
    assert review["same_fingerprint"] and review["exit_status"] == 0
    assert {e["status"] for e in review["envs"]} == {"same-fingerprint"}
    assert "same fingerprint commit bbbbbbbb" in review["meaning"] and "no change" in review["meaning"]


def test_revisions_are_read_as_fingerprints_and_profiles(repo):
    from picklematrix.report.revs import rev_envs, rev_fingerprint

    from .reporting import MATRIX

    def commit(path, text, message):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        subprocess.run(["git", "add", path], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message],
                       cwd=repo, check=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()

    code = commit("src/picklematrix/run/runner.py", "# code\n", "code")
    commit("matrix.toml", MATRIX, "the matrix")
    smaller = MATRIX.replace(f', "{BROKEN}"]', "]")
    head = commit("matrix.toml", smaller, "an env fewer")
    assert rev_fingerprint(repo, "HEAD~1") == rev_fingerprint(repo, "HEAD") == code  # matrix.toml is not code
    assert rev_envs(repo, "HEAD~1", "default") == [A, B, BROKEN] and rev_envs(repo, head, "default") == [A, B]
    with pytest.raises(rv.BadInput, match="fetch-depth: 0"):
        rev_fingerprint(repo, "no-such-rev")


@pytest.mark.slow
def test_the_pull_request_review_command_on_real_records(rec, tmp_path, monkeypatch):
    """Base and head records in one results directory: env A at the base behaved like B (its kernel cells
    passed), so at the head they broke; B has no base record; the env error is not compared."""
    from picklematrix.report.revs import rev_fingerprint

    results = rec.copy(tmp_path / "results")
    base_rev = f"{rec.commit}~1"
    base_fp = rev_fingerprint(ROOT, base_rev)
    assert base_fp != rec.commit
    sidecar_b = next(p for p in (results / rec.machine).glob("*.outcomes") if json.loads(p.read_text())["env_id"] == B)
    data = json.loads(sidecar_b.read_text())
    data["env_id"] = A
    (results / rec.machine / f"{base_fp[:8]}-{_env_name(rec, A)}.outcomes").write_text(json.dumps(data))
    monkeypatch.setenv("PICKLEMATRIX_MATRIX", str(rec.tmp / "matrix.toml"))
    out = tmp_path / "pr.review.json"
    proc = review_cli(results, "--base-rev", base_rev, "--head-rev", rec.commit, "--json", str(out),
                      out=tmp_path / "reviews")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    review = json.loads(out.read_text())
    envs = {e["env_id"]: e for e in review["envs"]}
    assert {(c["case"], c["method"], c["context"]) for c in envs[A]["broken"]} == TOPLEVEL_KERNEL
    assert envs[B]["status"] == "not-recorded-base" and envs[BROKEN]["status"] == "error-head"
    assert (tmp_path / "reviews" / envs[A]["review"]["html"]).is_file()
    # the base's record is another fingerprint's on purpose: the env's review does not warn about it
    md = (tmp_path / "reviews" / envs[A]["review"]["md"]).read_text()
    assert f"recorded by harness commit {base_fp[:8]}" not in md
    assert proc.stdout.startswith("<!-- picklematrix-review -->") and "### ❌ Broken (pass → fail) (2)" in proc.stdout
    same = review_cli(results, "--base-rev", rec.commit, "--head-rev", rec.commit, "--json", str(out), "--quiet")
    assert same.returncode == 1, same.stderr  # the env error at the head is still not compared
    review = json.loads(out.read_text())
    assert review["same_fingerprint"] and {e["status"] for e in review["envs"]} == {"same-fingerprint", "error-head"}
    bad = review_cli(results, "--base-rev", "no-such-rev")
    assert bad.returncode == 2 and "no-such-rev" in bad.stderr


@pytest.mark.slow
def test_the_newest_record_is_reviewed_against_the_one_before(rec, tmp_path, monkeypatch):
    """A scheduled run against `latest`: yesterday's record (A) against today's (B) names the release."""
    import os

    results = rec.copy(tmp_path / "results")

    def newest_last(*envs):
        for i, env in enumerate(envs):
            for path in (results / rec.machine).glob(f"*-{_env_name(rec, env)}.*"):
                os.utime(path, (1e9 + 1000 * i, 1e9 + 1000 * i))

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    newest_last(A, B)
    doc = tmp_path / "newest-review.json"
    proc = review_cli(results, "--newest", "--step-summary", "--json", str(doc), out=tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"## picklematrix: the newest releases: `{A}` → `{B}`")
    assert "Changed: **pydantic** 2.8.2 → 2.9.2" in proc.stdout and "### Fixed (fail → pass)" in proc.stdout
    assert summary.read_text().startswith("## picklematrix: the newest releases")
    # what the alert job reads (picklematrix.report.alert): the day's flips and the newest record's surprises
    reviewed = json.loads(doc.read_text())
    assert reviewed["kind"] == "picklematrix-newest-review" and reviewed["state"] == "reviewed"
    assert reviewed["env"] == B and reviewed["flips"]["fixed"] and not reviewed["flips"]["broken"]
    assert reviewed["python"].startswith("3.11") and "pydantic 2.9.2" in reviewed["versions"]
    assert isinstance(reviewed["surprises"], list) and reviewed["markdown"].strip() in proc.stdout
    again = review_cli(results, "--newest", "--json", str(doc), out=tmp_path / "out")
    assert again.returncode == 0 and "No new release since the last run: still py3.11" in again.stdout
    assert json.loads(doc.read_text())["state"] == "no-new-release"
    newest_last(B, A)  # the newest release takes the fix back: exit 1, the broken cells named
    broke = review_cli(results, "--newest", out=tmp_path / "out")
    assert broke.returncode == 1, broke.stderr
    assert "Changed: **pydantic** 2.9.2 → 2.8.2" in broke.stdout and "### Broken (pass → fail)" in broke.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert review_cli(empty, "--newest").returncode == 2
