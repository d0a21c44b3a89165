"""The daily run's one issue (picklematrix.report.alert): opened while the newest releases flip cells, updated in
place, closed when all is clean, through GitHub's REST API.

GitHub is not reachable from here: a local HTTP server on 127.0.0.1 implements the endpoints the alert uses
(list a repository's open issues by label, page by page; create one; update one; comment on one), and checks the
token on every request. The reviews are made by picklematrix.report.latest's own ``--json`` writer from records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from picklematrix.report import alert
from picklematrix.report.compare import build_review
from picklematrix.report.latest import newest_json
from picklematrix.report.results import Recording, ResultSet

from .conftest import ROOT

TOKEN = "ghs_alert-token-that-must-never-be-printed"
REPO = "octo/picklematrix"
CELL = ("pydantic/toplevel_model", "Client.compute", "kernel")
OTHER = ("functions/lambda_square", "dask.compute", "script")


# --------------------------------------------------------------------------- reviews, as latest.py writes them


def _rec(pydantic: str, outcomes: dict, python="3.11.7", mtime=1.0, surprises=()):
    cells = {k: {"outcome": o, "expected": "pass", "surprise": k in surprises,
                 "root_cause": None if o == "pass" else {"type": "TypeError", "message": "cannot pickle 'Task'"}}
             for k, o in outcomes.items()}
    short = python.rsplit(".", 1)[0]
    env_id = f"cp3.1.3-dask2026.8.0-pyd{pydantic}-py{short}"
    return Recording(machine="gha-latest", commit="c" * 40, env_name=f"asv-{env_id}", env_id=env_id, python=python,
                     versions={"cloudpickle": "3.1.3", "dask": "2026.8.0", "distributed": "2026.8.0",
                               "pydantic": pydantic}, cells=cells, mtime=mtime)


def review_doc(day: str, before: Recording | None, newest: Recording) -> dict:
    """What ``review --newest --json`` writes for ``day`` (``reviewed``, ``no-new-release``, ``first``)."""
    rs = ResultSet(results_dir=Path("results-latest"), recordings=[r for r in (before, newest) if r], problems=[],
                   commit=newest.commit, benchmarks=None)
    review = build_review(rs, before, newest, 1.1) if day == "reviewed" else None
    status = review["exit_status"] if review else 0
    md = "## picklematrix: the newest releases\n\n" + (review["verdict"] if review else "No new release.") + "\n"
    return json.loads(json.dumps(newest_json(day, newest, before, review, status, md), default=str))


OK = {CELL: "pass", OTHER: "pass"}
BROKEN = {CELL: "serialize-error", OTHER: "pass"}


def write(folder: Path, *docs) -> Path:
    """The alert job's download: one artifact folder per job, each holding its newest-review.json."""
    for doc in docs:
        job = folder / f"newest-review-py{doc['python'].rsplit('.', 1)[0]}"
        job.mkdir(parents=True, exist_ok=True)
        (job / "newest-review.json").write_text(json.dumps(doc))
    return folder


# --------------------------------------------------------------------------- a stand-in for GitHub's REST API


class FakeIssues:
    """The issue endpoints the alert uses, on 127.0.0.1, with issues in memory and pages of ``per_page``."""

    def __init__(self, per_page=2):
        self.issues, self.comments, self.requests = [], [], []
        self.per_page, self.next_number = per_page, 40
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, data, headers=()):
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _route(self, method):
                url = urlparse(self.path)
                fake.requests.append((method, url.path, url.query))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"message": "Bad credentials"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if not url.path.startswith(f"/api/v3/repos/{REPO}/issues"):
                    return self._send(404, {"message": "Not Found"})
                rest = url.path[len(f"/api/v3/repos/{REPO}/issues"):]
                if rest == "" and method == "GET":
                    q = parse_qs(url.query)
                    wanted = set(q.get("labels", [""])[0].split(",")) - {""}
                    state = q.get("state", ["open"])[0]
                    found = [i for i in fake.issues if (state == "all" or i["state"] == state)
                             and wanted <= {lb["name"] for lb in i["labels"]}]
                    page = int(q.get("page", ["1"])[0])
                    chunk = found[(page - 1) * fake.per_page: page * fake.per_page]
                    more = len(found) > page * fake.per_page
                    link = [("Link", f'<http://127.0.0.1:{fake.port}{url.path}?{url.query}&page={page + 1}>; '
                                     'rel="next"')] if more else []
                    return self._send(200, chunk, link)
                if rest == "" and method == "POST":
                    fake.next_number += 1
                    issue = {"number": fake.next_number, "title": body["title"], "body": body["body"], "state": "open",
                             "labels": [{"name": n} for n in body.get("labels", [])],
                             "html_url": f"https://x/issues/{fake.next_number}"}
                    fake.issues.append(issue)
                    return self._send(201, issue)
                m = re.fullmatch(r"/(\d+)(/comments)?", rest)
                issue = next((i for i in fake.issues if m and i["number"] == int(m.group(1))), None)
                if issue is None:
                    return self._send(404, {"message": "Not Found"})
                if m.group(2) and method == "POST":
                    fake.comments.append((issue["number"], body["body"]))
                    return self._send(201, {"id": len(fake.comments)})
                if not m.group(2) and method == "PATCH":
                    issue.update({k: v for k, v in body.items() if k in ("body", "title", "state")})
                    return self._send(200, issue)
                return self._send(404, {"message": "Not Found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PATCH(self):
                self._route("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.api = f"http://127.0.0.1:{self.port}/api/v3"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ours(self, state="open"):
        return [i for i in self.issues if alert.MARKER in i["body"] and i["state"] == state and "pull_request" not in i]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github():
    fake = FakeIssues()
    # other issues fill the first pages: one with the label but not ours, a pull request, a plain issue
    fake.issues = [
        {"number": 1, "title": "a bug", "body": "x", "state": "open", "labels": []},
        {"number": 2, "title": "by hand", "body": "the label, not the marker", "state": "open",
         "labels": [{"name": alert.LABEL}]},
        {"number": 3, "title": "a pr", "body": alert.MARKER, "state": "open", "labels": [{"name": alert.LABEL}],
         "pull_request": {"url": "x"}},
        {"number": 4, "title": "an old one", "body": alert.MARKER, "state": "closed", "labels": [{"name": alert.LABEL}]},
    ]
    yield fake
    fake.close()


def alert_cli(folder, api, *args, token=TOKEN, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_TOKEN=token, GITHUB_API_URL=api, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "picklematrix", "alert", str(folder), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


# --------------------------------------------------------------------------- the issue's life


def test_one_issue_opened_by_a_flip_kept_while_the_surprise_stays_closed_when_clean(github, tmp_path):
    day0_11, day0_13 = _rec("2.14.4", OK), _rec("2.14.4", OK, python="3.13.1")
    broke_11 = _rec("2.15.0", BROKEN, mtime=2.0, surprises=(CELL,))
    broke_13 = _rec("2.15.0", BROKEN, python="3.13.1", mtime=2.0, surprises=(CELL,))
    args = ("--expect", "2", "--repo", REPO, "--details-url", "https://github.example/run/9")

    # day 1: pydantic 2.15.0 breaks a cell on both Pythons: the issue is opened, with the label, naming them
    day1 = write(tmp_path / "day1", review_doc("reviewed", day0_11, broke_11), review_doc("reviewed", day0_13, broke_13))
    proc = alert_cli(day1, github.api, *args)
    assert proc.returncode == 0, proc.stderr
    assert "opened octo/picklematrix#41" in proc.stdout and TOKEN not in proc.stdout + proc.stderr
    (issue,) = github.ours()
    assert issue["title"] == alert.TITLE and issue["labels"] == [{"name": alert.LABEL}]
    body = issue["body"]
    assert body.startswith(alert.MARKER) and "https://github.example/run/9" in body
    assert "### py3.11" in body and "### py3.13" in body and "pydantic 2.15.0" in body
    assert "**pydantic** 2.14.4 → 2.15.0" in body and "**Broken today (pass → fail) (1)**" in body
    assert "| `pydantic/toplevel_model` | C.c @ kernel | `pass` | `serialize-error` |" in body
    assert "**Not as their case expects (1)**" in body and "cannot pickle 'Task'" in body
    assert github.comments == []  # a new issue notifies by itself

    # day 2: no new release, the surprise stays: the same issue, its body updated, nobody pinged
    day2 = write(tmp_path / "day2", review_doc("no-new-release", day0_11, broke_11),
                 review_doc("no-new-release", day0_13, broke_13))
    proc = alert_cli(day2, github.api, *args)
    assert proc.returncode == 0 and "updated octo/picklematrix#41" in proc.stdout, proc.stderr
    assert [i["number"] for i in github.ours()] == [41] and github.comments == []
    assert "Broken today" not in github.ours()[0]["body"] and "Not as their case expects (1)" in github.ours()[0]["body"]

    # day 3: a release flips another cell on py3.13 while the issue is open: updated, and a comment says so
    worse = _rec("2.15.1", {CELL: "serialize-error", OTHER: "task-error"}, python="3.13.1", mtime=3.0,
                 surprises=(CELL, OTHER))
    day3 = write(tmp_path / "day3", review_doc("no-new-release", day0_11, broke_11),
                 review_doc("reviewed", broke_13, worse))
    proc = alert_cli(day3, github.api, *args)
    assert proc.returncode == 0 and "updated octo/picklematrix#41" in proc.stdout, proc.stderr
    assert len(github.ours()) == 1 and len(github.comments) == 1
    number, said = github.comments[0]
    assert number == 41 and "py3.13.1: 1 cell(s) flipped by pydantic 2.15.0 → 2.15.1" in said

    # day 4: a release fixes it (the fixed cell is as its case expects): all clean, the issue is closed
    fixed_11 = _rec("2.15.2", OK, mtime=4.0)
    fixed_13 = _rec("2.15.2", OK, python="3.13.1", mtime=4.0)
    day4 = write(tmp_path / "day4", review_doc("reviewed", broke_11, fixed_11), review_doc("reviewed", worse, fixed_13))
    proc = alert_cli(day4, github.api, *args)
    assert proc.returncode == 0 and "all clean: closed octo/picklematrix#41" in proc.stdout, proc.stderr
    assert github.ours() == [] and [i["number"] for i in github.ours("closed")] == [4, 41]
    assert "All clean" in github.comments[-1][1] and "pydantic 2.15.2" in github.comments[-1][1]

    # day 5: clean again, nothing open: nothing to do
    day5 = write(tmp_path / "day5", review_doc("no-new-release", broke_11, fixed_11),
                 review_doc("no-new-release", worse, fixed_13))
    n = len(github.requests)
    proc = alert_cli(day5, github.api, *args)
    assert proc.returncode == 0 and "all clean, no open issue" in proc.stdout, proc.stderr
    assert {r[0] for r in github.requests[n:]} == {"GET"} and len(github.issues) == 5
    # every listing asked for the label and the open ones, and went through the pages
    assert all("labels=picklematrix-latest" in q and "state=open" in q for m, _, q in github.requests if m == "GET")


def test_a_job_without_its_review_keeps_the_issue_open(github, tmp_path):
    """--expect 2 and one review: the other job failed before its review (the newest releases did not install)."""
    clean = write(tmp_path / "one", review_doc("reviewed", _rec("2.14.4", OK), _rec("2.15.0", OK, mtime=2.0)))
    proc = alert_cli(clean, github.api, "--expect", "2", "--repo", REPO)
    assert proc.returncode == 0, proc.stderr
    (issue,) = github.ours()
    assert "### 1 of 2 job(s) wrote no review" in issue["body"] and "1 job(s) without a review" in issue["body"]
    # no artifact was downloaded at all: both missing
    proc = alert_cli(tmp_path / "nothing", github.api, "--expect", "2", "--repo", REPO)
    assert proc.returncode == 0 and "updated" in proc.stdout, proc.stderr
    assert "### 2 of 2 job(s) wrote no review" in github.ours()[0]["body"]


def test_the_body_fits_an_issue_however_many_cells_flip(monkeypatch):
    many = {(f"family{i % 9}/case_{i:04d}", "Client.compute", "kernel"): "serialize-error" for i in range(3000)}
    before = _rec("2.14.4", dict.fromkeys(many, "pass"))
    after = _rec("2.15.0", many, mtime=2.0, surprises=tuple(many))
    doc = review_doc("reviewed", before, after)
    body = alert.render_issue([doc, dict(doc, python="3.13.1")], 2, "https://github.example/run/9")
    assert len(body.encode()) <= alert.BUDGET
    assert body.count(f"… and {3000 - alert.ROWS} more") == 4  # broken and surprises, on each Python
    # and a budget the tables overflow: cut between lines, saying so
    monkeypatch.setattr(alert, "BUDGET", 4000)
    cut = alert.render_issue([doc], 2, None)
    assert len(cut.encode()) <= 4000 and cut.rstrip().endswith("(the rest is cut to fit an issue: see the run)")
    assert all(line.startswith("| ") == line.endswith(" |") for line in cut.splitlines())


def test_bad_input_and_refusals_are_named_and_the_token_never_printed(github, tmp_path):
    good = write(tmp_path / "good", review_doc("reviewed", _rec("2.14.4", OK), _rec("2.15.0", BROKEN, mtime=2.0)))
    proc = alert_cli(good, github.api, "--repo", REPO, token="ghs_wrong-token-secret")
    assert proc.returncode == 2 and "HTTP 401" in proc.stderr and REPO in proc.stderr
    assert "GITHUB_TOKEN" in proc.stderr and "ghs_wrong-token-secret" not in proc.stdout + proc.stderr
    proc = alert_cli(good, github.api, "--repo", "octo/elsewhere")
    assert proc.returncode == 2 and "HTTP 404" in proc.stderr and "check --repo" in proc.stderr
    proc = alert_cli(good, "http://127.0.0.1:9/api/v3", "--repo", REPO)
    assert proc.returncode == 2 and "cannot reach the GitHub API" in proc.stderr and TOKEN not in proc.stderr
    proc = alert_cli(good, github.api, "--repo", REPO, token="")
    assert proc.returncode == 2 and "no GITHUB_TOKEN" in proc.stderr
    (good / "stray.json").write_text(json.dumps({"kind": "picklematrix-pr-review"}))
    proc = alert_cli(good, github.api, "--repo", REPO)
    assert proc.returncode == 2 and "stray.json" in proc.stderr and "--newest --json" in proc.stderr
    proc = alert_cli(tmp_path / "nothing", github.api, "--repo", REPO)
    assert proc.returncode == 2 and "--expect" in proc.stderr
    assert github.ours() == []


def test_dry_run_prints_the_body_and_calls_no_api(tmp_path):
    folder = write(tmp_path / "r", review_doc("reviewed", _rec("2.14.4", OK), _rec("2.15.0", BROKEN, mtime=2.0)))
    proc = alert_cli(folder, "http://127.0.0.1:9/api/v3", "--dry-run", token="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(alert.MARKER) and "would open or update" in proc.stderr


def test_the_nox_session_is_the_command(tmp_path):
    """``./nox -s alert`` (what the workflow runs) passes its arguments and exit status through."""
    folder = write(tmp_path / "r", review_doc("reviewed", _rec("2.14.4", OK), _rec("2.15.0", OK, mtime=2.0)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "alert", "--", str(folder), "--dry-run"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All clean" in proc.stdout and "would close" in proc.stderr
    refused = subprocess.run([sys.executable, "-m", "nox", "-s", "alert", "--", str(folder), "--repo", REPO],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2 and "no GITHUB_TOKEN" in refused.stderr
