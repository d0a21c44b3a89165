"""The GitHub workflows: checked offline by actionlint and zizmor, made only of the project's own, documented
commands, with actions pinned by commit, and no write token where a pull request's code runs."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess

import pytest
import yaml

from picklematrix import cli
from picklematrix.envs import spec as envspec
from picklematrix.workflow_lint import lint, zizmor

from .conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
CI_DOC = ROOT / "docs" / "ci.md"
ENV_ID = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
# What GitHub puts in a `${{ ... }}` expression of a step's env, as a value of the right shape.
EXPRESSIONS = {
    "matrix.session": f"matrix({ENV_ID})", "matrix.env_id": ENV_ID, "matrix.python": "3.11",
    "github.event.pull_request.base.sha": "HEAD~1", "github.event.pull_request.number": "7",
    "github.repository": "octo/picklematrix", "github.server_url": "https://github.com", "github.run_id": "1",
    "github.workspace": str(ROOT), "github.token": "ghs_sample",
}
# GitHub's default environment variables a step may read
DEFAULT_ENV = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/picklematrix",
               "GITHUB_RUN_ID": "1", "GITHUB_WORKSPACE": str(ROOT)}
# The only shell around a command: a command's output into GitHub's files (each runs a tested command).
PLAN_STEP = 'plan="$(./nox -s plan)" && echo "plan=$plan" >> "$GITHUB_OUTPUT"'
PLUMBING = {
    PLAN_STEP: "plan",  # run as written by test_a_failing_plan_fails_its_step
    'cat results/table.md >> "$GITHUB_STEP_SUMMARY"': None,  # written by ./nox -s report (tests/test_report.py)
}
CHECKOUT = "actions/checkout"
BASE_REFS = ("${{ github.event.pull_request.base.sha }}",)
# the events whose runs execute a pull request's code, or run with the base's token beside it
PR_EVENTS = ("pull_request", "pull_request_target", "workflow_run")


def load(path):
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc):
    """(job id, job, step, the step's environment: workflow's, job's, step's) for every step."""
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step, {**doc.get("env", {}), **job.get("env", {}), **step.get("env", {})}


def run_steps(workflow):
    """(where, run, env) of every ``run:`` of a workflow; a multi-line script is refused (it would be inline shell)."""
    out = []
    for job_id, _, step, env in steps(load(workflow)):
        if "run" in step:
            where = f"{workflow.name}: {job_id}: {step['run']}"
            assert "\n" not in step["run"].strip(), f"{where}: a multi-line script"
            out.append((where, step["run"].strip(), env))
    return out


def _expression(value: str, where: str) -> str:
    def sample(m):
        assert m.group(1) in EXPRESSIONS, f"{where}: unknown expression {m.group(0)} (add a sample to EXPRESSIONS)"
        return EXPRESSIONS[m.group(1)]

    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", sample, str(value))


def _expand(run: str, where: str, env: dict) -> str:
    """``run`` with its ``$VAR``s replaced by the step's env (its expressions sampled) or GitHub's defaults."""
    assert "${{" not in run, f"{where}: an expression in the script (template injection): pass it through env:"
    values = {**DEFAULT_ENV, **env}

    def value(m):
        name = m.group(1) or m.group(2)
        assert name in values, f"{where}: ${name} is set nowhere (env: of the step, job or workflow)"
        return _expression(values[name], where)

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, run)


def check_step(run: str, where: str, doc: str, nox_sessions, env=None) -> str | None:
    """The session a ``run:`` step runs, after checking it is one documented, parsing project command."""
    if run in PLUMBING:
        assert PLUMBING[run] is None or nox_sessions(PLUMBING[run]), where
        return PLUMBING[run]
    assert not re.search(r"[;&|<>`]|\$\(", run), f"{where}: shell beyond one command"
    words = shlex.split(_expand(run, where, env or {}))
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


# --------------------------------------------------------------------------- linters


def test_actionlint_finds_nothing_in_the_workflows():
    assert len(WORKFLOWS) >= 3, "no workflow in .github/workflows"
    assert lint(WORKFLOWS) == []


def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    assert "needs: plan" in text
    broken.write_text(text.replace("needs: plan", "needs: no-such-job", 1))
    found = lint([broken])
    assert any("no-such-job" in f["message"] for f in found), found


def test_zizmor_finds_nothing_in_the_workflows_and_dependabot(monkeypatch):
    monkeypatch.delenv("GH_TOKEN", raising=False)  # offline audits: no GitHub from here
    assert zizmor([*WORKFLOWS, DEPENDABOT]) == []


@pytest.mark.parametrize("change, audit", [
    # a tag instead of a commit
    (("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "actions/checkout@v7"), "unpinned-uses"),
    # the token left in the checkout's git config, where an uploaded results/ or a later step could take it
    (("          persist-credentials: false\n", ""), "artipacked"),
    # a pull request's title pasted into a script
    (('run: ./nox -s review -- --newest', 'run: echo "${{ github.event.pull_request.title }}" && ./nox -s review -- '
                                          '--newest'), "template-injection"),
])
def test_zizmor_finds_what_the_workflows_answer(change, audit, tmp_path, monkeypatch):
    monkeypatch.delenv("GH_TOKEN", raising=False)
    name = "latest.yml" if "newest" in change[0] else "matrix.yml"
    text = (ROOT / ".github" / "workflows" / name).read_text()
    assert change[0] in text
    if audit == "template-injection":  # (only a pull request's event carries a title)
        text = text.replace("  schedule:", "  pull_request:\n  schedule:", 1)
    broken = tmp_path / ".github" / "workflows" / name
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(*change))
    found = zizmor([broken])
    assert any(f["kind"] == f"zizmor {audit}" for f in found), found


# --------------------------------------------------------------------------- the steps are the project's commands


def test_every_step_is_a_documented_command_of_the_project(nox_sessions):
    doc = CI_DOC.read_text()
    checked = set()
    for workflow in WORKFLOWS:
        runs = run_steps(workflow)
        assert runs, workflow.name
        for where, run, env in runs:
            checked.add(check_step(run, where, doc, nox_sessions, env))
    # what the workflows are for: plan, record, merge, report; review and comment a pull request; the daily
    # run's issue; the tests and lint of every push
    assert {"plan", "matrix", "merge", "report", "review", "comment", "alert", "tests", "lint"} <= checked, checked


@pytest.mark.parametrize("bad", [
    "./nox -s report && curl -X POST https://example.com",  # shell beyond one command
    "python -c 'print(1)'",  # not a session
    "./nox -s no-such-session",
    "./nox -s review -- --no-such-option",  # the review's parser refuses it
    "./nox -s comment -- --pr 7",  # --review is required
    "./nox -s review -- --base-rev ${{ github.event.pull_request.head.ref }}",  # an expression in the script
    './nox -s review -- --base-rev "$HEAD_REF"',  # a variable set nowhere
    "./nox -s bisect -- --package pydantic --from 2.8.2 --to 2.9.2",  # a session ci.md does not show
])
def test_the_check_refuses_inline_shell_and_undocumented_commands(bad, nox_sessions):
    with pytest.raises(AssertionError):
        check_step(bad, bad, CI_DOC.read_text(), nox_sessions)


def test_a_variable_comes_from_the_steps_env():
    env = {"ENV_ID": "${{ matrix.env_id }}"}
    assert _expand('./nox -s matrix -- --env "$ENV_ID"', "x", env) == f'./nox -s matrix -- --env "{ENV_ID}"'
    with pytest.raises(AssertionError, match="unknown expression"):
        _expand('./nox -s matrix -- --env "$ENV_ID"', "x", {"ENV_ID": "${{ github.event.pull_request.title }}"})


def _plan_step(env, tmp_path):
    output = tmp_path / "github_output"
    output.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", PLAN_STEP], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "GITHUB_OUTPUT": str(output), **env})
    return proc, output.read_text()


def test_a_failing_plan_fails_its_step(tmp_path):
    """The plan step as GitHub runs it (``bash -e``): a bad matrix.toml fails the step with the plan's message and
    writes no output; a good one writes the plan as one line of JSON (the env jobs' ``fromJSON``)."""
    bad = tmp_path / "matrix.toml"
    bad.write_text((ROOT / "matrix.toml").read_text() + "\n[profiles.broken]\nenvs = 3\n")
    proc, written = _plan_step({"PICKLEMATRIX_MATRIX": str(bad)}, tmp_path)
    assert proc.returncode != 0 and written == "", (proc.returncode, written)
    assert "nothing was built" in proc.stderr and "matrix.toml" in proc.stderr, proc.stderr[-2000:]
    proc, written = _plan_step({"PICKLEMATRIX_PROFILE": "no-such-profile"}, tmp_path)
    assert proc.returncode != 0 and written == "", (proc.returncode, written)
    assert "no-such-profile" in proc.stderr, proc.stderr[-2000:]
    proc, written = _plan_step({"PICKLEMATRIX_PROFILE": "smoke"}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert written.count("\n") == 1 and written.startswith("plan=")
    plan = json.loads(written[len("plan="):])
    assert plan["profile"] == "smoke" and plan["include"] and all("session" in e for e in plan["include"])


# --------------------------------------------------------------------------- tokens and pins


def _write_scopes(permissions) -> set:
    """The scopes a ``permissions:`` value grants write to; no ``permissions:`` at all may be write-all (the
    repository's default), so it counts as such."""
    if permissions is None or permissions == "write-all":
        return {"*"}
    if permissions in ("read-all", {}):
        return set()
    return {scope for scope, level in permissions.items() if level == "write"}


def _runs_pr_code(job) -> bool:
    """Whether the job runs code of the pull request: a script or a local action, in a checkout that is not
    the base's (a job without a checkout runs what it downloaded, which a pull request made)."""
    runs = [s for s in job.get("steps", []) if "run" in s or str(s.get("uses", "")).startswith("./")]
    checkouts = [s for s in job.get("steps", []) if str(s.get("uses", "")).split("@")[0] == CHECKOUT]
    trusted = checkouts and all((s.get("with") or {}).get("ref") in BASE_REFS for s in checkouts)
    return bool(runs) and not trusted


def write_tokens_on_pr_code(doc) -> list[str]:
    """The jobs of a workflow that run a pull request's code while holding a write token."""
    if not any(event in (doc["on"] or {}) for event in PR_EVENTS):
        return []
    return [job_id for job_id, job in doc["jobs"].items()
            if _runs_pr_code(job) and _write_scopes(job.get("permissions", doc.get("permissions")))]


def test_no_job_that_runs_a_pull_requests_code_holds_a_write_token():
    for workflow in WORKFLOWS:
        doc = load(workflow)
        assert doc.get("permissions") is not None, f"{workflow.name}: no top-level permissions (the default may write)"
        assert "pull_request_target" not in (doc["on"] or {}), f"{workflow.name}: pull_request_target runs with a " \
                                                               "write token beside the pull request"
        assert write_tokens_on_pr_code(doc) == [], workflow.name
    matrix = load(ROOT / ".github" / "workflows" / "matrix.yml")
    writers = {j: _write_scopes(job.get("permissions", matrix["permissions"])) for j, job in matrix["jobs"].items()}
    # the comment is the only writer on a pull request, and it checks out the base
    assert {j: w for j, w in writers.items() if w} == {"comment": {"pull-requests"}, "pages": {"pages", "id-token"}}
    assert not _runs_pr_code(matrix["jobs"]["comment"])


@pytest.mark.parametrize("breach", ["merge writes", "comment checks out the head", "no permissions anywhere"])
def test_the_token_check_finds_a_writer_on_pull_request_code(breach):
    doc = load(ROOT / ".github" / "workflows" / "matrix.yml")
    bad = copy.deepcopy(doc)
    if breach == "merge writes":
        bad["jobs"]["merge"]["permissions"] = {"contents": "read", "pull-requests": "write"}
        assert write_tokens_on_pr_code(bad) == ["merge"]
    elif breach == "comment checks out the head":
        for step in bad["jobs"]["comment"]["steps"]:
            if str(step.get("uses", "")).startswith(CHECKOUT):
                del step["with"]["ref"]
        assert write_tokens_on_pr_code(bad) == ["comment"]
    else:
        del bad["permissions"]
        assert set(write_tokens_on_pr_code(bad)) == {"plan", "env", "merge"}


def test_every_action_is_pinned_by_commit_and_dependabot_updates_them():
    pinned = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
    seen = {}
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if re.match(r"^\s*(?:- )?uses:", line):
                m = pinned.match(line)
                assert m, f"{workflow.name}: not pinned by commit with its release as a comment: {line.strip()}"
                repo = "/".join(m.group(1).split("/")[:2])  # actions/cache/restore is actions/cache's
                # one commit per action everywhere: Dependabot moves them together
                assert seen.setdefault(repo, m.group(2, 3)) == m.group(2, 3), (workflow.name, line)
    assert {"actions/checkout", "actions/setup-python", "actions/deploy-pages"} <= set(seen)
    dependabot = yaml.safe_load(DEPENDABOT.read_text())
    assert dependabot["version"] == 2
    assert [u for u in dependabot["updates"] if u["package-ecosystem"] == "github-actions" and u["directory"] == "/"]


# --------------------------------------------------------------------------- what the workflows do


def _hash_files_patterns(text: str) -> list[list[str]]:
    """The patterns of every ``hashFiles(...)`` of a workflow, in order."""
    return [re.findall(r"'([^']+)'", m) for m in re.findall(r"hashFiles\(([^)]*)\)", text)]


def _glob(pattern: str) -> re.Pattern:
    """@actions/glob's ``dir/**`` (everything below) and plain paths, as hashFiles reads them here."""
    return re.compile(re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*") + "$")


def test_the_records_cache_is_keyed_by_what_the_fingerprint_covers():
    """The env job's cache key hashes exactly the tracked files picklematrix.record.fingerprint keys results by: a
    file the fingerprint covers and the key misses would let a cache hold records of other code."""
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


def test_a_pull_request_is_reviewed_and_commented_and_main_deploys_the_site():
    matrix = load(ROOT / ".github" / "workflows" / "matrix.yml")
    jobs = matrix["jobs"]
    runs = {job_id: [s["run"] for s in job.get("steps", []) if "run" in s] for job_id, job in jobs.items()}
    assert any("--base-rev" in r for r in runs["merge"]) and any("./nox -s comment" in r for r in runs["comment"])
    assert not any("./nox -s comment" in r for r in runs["merge"])
    assert any(s.get("env", {}).get("GITHUB_TOKEN") == "${{ github.token }}" for s in jobs["comment"]["steps"])
    # the Pages site: uploaded by the merge job, deployed from main only
    assert any("upload-pages-artifact" in s.get("uses", "") for s in jobs["merge"]["steps"])
    pages = jobs["pages"]
    assert "github.ref == 'refs/heads/main'" in pages["if"] and "github.event_name == 'push'" in pages["if"]
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in pages["steps"]] == ["actions/deploy-pages"]


def test_the_newest_releases_on_a_schedule_open_one_issue():
    latest = load(ROOT / ".github" / "workflows" / "latest.yml")
    assert latest["on"]["schedule"][0]["cron"]
    runs = [run for _, run, _ in run_steps(ROOT / ".github" / "workflows" / "latest.yml")]
    assert any("dask=latest cloudpickle=latest pydantic=latest" in r for r in runs)
    assert any("--newest" in r and "--json" in r for r in runs)
    alert = latest["jobs"]["alert"]
    assert alert["permissions"] == {"contents": "read", "issues": "write"}
    # --expect: one review per job of the latest matrix
    (command,) = [s["run"] for s in alert["steps"] if "run" in s]
    expect = int(shlex.split(command)[shlex.split(command).index("--expect") + 1])
    assert expect == len(latest["jobs"]["latest"]["strategy"]["matrix"]["python"])


def test_the_checks_run_the_readmes_test_command_and_lint_on_pull_requests():
    checks = load(ROOT / ".github" / "workflows" / "checks.yml")
    assert "pull_request" in checks["on"] and "push" in checks["on"]
    runs = {job_id: [s["run"] for s in job["steps"] if "run" in s] for job_id, job in checks["jobs"].items()}
    assert runs == {"lint": ["./nox -s lint"], "tests": ["./nox -s tests"]}
    assert "./nox -s tests" in (ROOT / ".ci" / "run").read_text()  # what CI runs here runs there
    # every interpreter the tests build envs on, 3.11 (nox's and the tests session's) last: the default
    (setup,) = [s for s in checks["jobs"]["tests"]["steps"] if "setup-python" in s.get("uses", "")]
    wanted = setup["with"]["python-version"].split()
    local = {".".join(v.split(".")[:2]) for v in (ROOT / ".python-version").read_text().split()}
    assert set(wanted) == local and wanted[-1] == "3.11"
