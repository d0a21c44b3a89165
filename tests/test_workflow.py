"""The GitHub workflows: checked offline by actionlint, and made only of the project's own, documented commands."""

from __future__ import annotations

import re
import shlex

import pytest

from picklematrix import cli
from picklematrix.envs import spec as envspec
from picklematrix.workflow_lint import lint

from .conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI_DOC = ROOT / "docs" / "ci.md"
ENV_ID = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
# What GitHub puts in a `${{ ... }}` expression, as a value of the right shape.
EXPRESSIONS = {
    "matrix.session": f"matrix({ENV_ID})", "matrix.env_id": ENV_ID, "matrix.python": "3.11",
    "github.event.pull_request.base.sha": "HEAD~1", "github.event.pull_request.number": "7",
    "github.repository": "octo/picklematrix", "github.server_url": "https://github.com", "github.run_id": "1",
}
# The only shell around a command: a command's output into GitHub's files (each runs a tested command).
PLUMBING = {
    'echo "plan=$(./nox -s plan 2>/dev/null)" >> "$GITHUB_OUTPUT"': "plan",
    'cat results/table.md >> "$GITHUB_STEP_SUMMARY"': None,  # written by ./nox -s report (tests/test_report.py)
}


def run_steps(workflow):
    """Every ``run:`` of a workflow, as written; a multi-line script is refused (it would be inline shell)."""
    runs = []
    for line in workflow.read_text().splitlines():
        m = re.match(r"^\s*(?:- )?run:\s*(.*)$", line)
        if m:
            assert m.group(1) and m.group(1)[0] not in "|>", f"{workflow.name}: a multi-line script: {line.strip()}"
            runs.append(m.group(1))
    return runs


def _expand(run: str, where: str) -> str:
    def value(m):
        assert m.group(1) in EXPRESSIONS, f"{where}: unknown expression {m.group(0)} (add a sample to EXPRESSIONS)"
        return EXPRESSIONS[m.group(1)]

    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", value, run)


def test_actionlint_finds_nothing_in_the_workflows():
    assert len(WORKFLOWS) >= 2, "no workflow in .github/workflows"
    assert lint(WORKFLOWS) == []


def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    assert "needs: plan" in text
    broken.write_text(text.replace("needs: plan", "needs: no-such-job", 1))
    found = lint([broken])
    assert any("no-such-job" in f["message"] for f in found), found


def check_step(run: str, where: str, doc: str, nox_sessions) -> str | None:
    """The session a ``run:`` step runs, after checking it is one documented, parsing project command."""
    if run in PLUMBING:
        assert PLUMBING[run] is None or nox_sessions(PLUMBING[run]), where
        return PLUMBING[run]
    assert not re.search(r"[;&|<>`]|\$\(", run), f"{where}: shell beyond one command"
    words = shlex.split(_expand(run, where))
    assert words[:2] == ["./nox", "-s"] and len(words) >= 3, f"{where}: not a ./nox session"
    session = words[2]
    assert nox_sessions(session), f"{where}: no such session {session!r}"
    name = session.split("(")[0]
    assert f"./nox -s {name}" in doc or f'./nox -s "{name}(' in doc, f"{where}: docs/ci.md does not show it"
    assert words[3:4] in ([], ["--"]), f"{where}: nox options in a workflow step"
    posargs = words[4:]
    for option in (w for w in posargs if w.startswith("--")):
        assert option in doc, f"{where}: docs/ci.md does not mention {option}"
    try:  # the session's arguments, by the same parser as the session's (picklematrix.cli)
        cli.parse(name, posargs)
    except SystemExit:
        raise AssertionError(f"{where}: its arguments do not parse") from None
    if name == "matrix":
        for i, word in enumerate(posargs):
            if word == "--env":
                envspec.parse(posargs[i + 1])  # raises SpecError on a spec the session would refuse
    return name


def test_every_step_is_a_documented_command_of_the_project(nox_sessions):
    doc = CI_DOC.read_text()
    checked = set()
    for workflow in WORKFLOWS:
        runs = run_steps(workflow)
        assert runs, workflow.name
        for run in runs:
            checked.add(check_step(run, f"{workflow.name}: {run}", doc, nox_sessions))
    # what the workflows are for: plan, record, merge, report; review and comment a pull request
    assert {"plan", "matrix", "merge", "report", "review", "comment"} <= checked, checked


@pytest.mark.parametrize("bad", [
    "./nox -s report && curl -X POST https://example.com",  # shell beyond one command
    "python -c 'print(1)'",  # not a session
    "./nox -s no-such-session",
    "./nox -s review -- --no-such-option",  # the review's parser refuses it
    "./nox -s comment -- --pr 7",  # --review is required
    "./nox -s review -- --base-rev ${{ github.event.pull_request.head.ref }}",  # an expression nobody sampled
    "./nox -s bisect -- --package pydantic --from 2.8.2 --to 2.9.2",  # a session ci.md does not show
])
def test_the_check_refuses_inline_shell_and_undocumented_commands(bad, nox_sessions):
    with pytest.raises(AssertionError):
        check_step(bad, bad, CI_DOC.read_text(), nox_sessions)


def _hash_files_patterns(text: str) -> list[list[str]]:
    """The patterns of every ``hashFiles(...)`` of a workflow, in order."""
    return [re.findall(r"'([^']+)'", m) for m in re.findall(r"hashFiles\(([^)]*)\)", text)]


def _glob(pattern: str) -> re.Pattern:
    """@actions/glob's ``dir/**`` (everything below) and plain paths, as hashFiles reads them here."""
    return re.compile(re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*") + "$")


def test_the_records_cache_is_keyed_by_what_the_fingerprint_covers():
    """The env job's cache key hashes exactly the tracked files picklematrix.record.fingerprint keys results by: a
    file the fingerprint covers and the key misses would let a cache hold records of other code."""
    import subprocess

    from picklematrix.record.fingerprint import pathspec

    head, base = _hash_files_patterns((ROOT / ".github" / "workflows" / "matrix.yml").read_text())
    assert base == [f"!base/{p[1:]}" if p.startswith("!") else f"base/{p}" for p in head]

    def ls(*args):
        return set(subprocess.run(["git", "ls-files", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.split())

    covered = ls("--", *pathspec())
    keyed = {f for f in ls() if any(_glob(p).match(f) for p in head if not p.startswith("!"))
             and not any(_glob(p[1:]).match(f) for p in head if p.startswith("!"))}
    assert covered, "no fingerprinted file found"
    assert keyed == covered, {"fingerprinted, not in the key": sorted(covered - keyed)[:20],
                              "in the key, not fingerprinted": sorted(keyed - covered)[:20]}


def test_a_pull_request_is_reviewed_and_commented_and_the_newest_releases_on_a_schedule():
    matrix = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    assert "pull-requests: write" in matrix and "GITHUB_TOKEN: ${{ github.token }}" in matrix
    assert "--base-rev" in matrix and "./nox -s comment" in matrix and "fetch-depth: 0" in matrix
    latest = (ROOT / ".github" / "workflows" / "latest.yml").read_text()
    assert re.search(r"^\s+schedule:\n\s+- cron: ", latest, flags=re.M)
    assert "dask=latest cloudpickle=latest pydantic=latest" in latest and "--newest" in latest
