"""The GitHub workflow: checked offline by actionlint, and made only of the project's own commands."""

from __future__ import annotations

import re

from picklematrix.workflow_lint import lint

from .conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_actionlint_finds_nothing_in_the_workflows():
    assert WORKFLOWS, "no workflow in .github/workflows"
    assert lint(WORKFLOWS) == []


def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("needs: plan", "needs: no-such-job", 1))
    found = lint([broken])
    assert any("no-such-job" in f["message"] for f in found), found


def test_every_step_is_a_command_of_the_project(nox_sessions):
    for workflow in WORKFLOWS:
        runs = re.findall(r"^\s*(?:- )?run: (.+)$", workflow.read_text(), flags=re.M)
        assert runs
        for run in runs:
            sessions = re.findall(r"\./nox -s \"?([\w$.{}() -]+?)\"?(?: --|\s|$|\))", run)
            if not sessions:  # the only other step: the report's summary into the job summary
                assert run == 'cat results/table.md >> "$GITHUB_STEP_SUMMARY"', run
                continue
            for session in sessions:
                if "${{" not in session:
                    assert nox_sessions(session), f"{workflow.name}: {run}: no such session {session!r}"
