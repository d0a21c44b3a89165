"""The pull request's comment: its size budget at the full profile, and posting it through GitHub's REST API.

GitHub is not reachable from here: a local HTTP server on 127.0.0.1 implements the four endpoints the comment
uses (list a PR's comments, page by page; create one; update one), and checks the token on every request.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from picklematrix.report import comment as cm
from picklematrix.report.revs import summarize

from .conftest import ROOT

TOKEN = "ghs_test-token-that-must-never-be-printed"
REPO, PR = "octo/picklematrix", 7
METHODS = ("dask.compute", "dask.compute(client=)", "Client.compute")


def _cell(outcome, message=None):
    rc = ({"type": "TypeError", "message": message, "path": None} if message else None)
    return {"outcome": outcome, "expected": "pass", "surprise": False, "root_cause": rc, "stage": None,
            "detail": None, "seconds": 0.01, "graph_bytes": 100}


def _flip(i, before, after, message):
    return {"case": f"family{i % 12}/case_{i:03d}", "method": METHODS[i % 3], "context": ("script", "kernel")[i % 2],
            "before": _cell(before, message if before != "pass" else None),
            "after": _cell(after, message if after != "pass" else None)}


def synthetic_review(n_envs=120, cells=480, changed=60):
    """A review of the full profile: ``n_envs`` envs of ``cells`` cells, ``changed`` of them changed in each."""
    long = "cannot pickle '_asyncio.Task' object <locals> | with a long tail " + "x" * 150
    envs = []
    for e in range(n_envs):
        env_id = f"cp3.{e % 4}.0-dask2024.{e % 12}.1-pyd2.{e}.2-py3.{10 + e % 4}"
        entry = {"env_id": env_id, "in_base": True, "in_head": True, "status": "compared", "exit_status": 1,
                 "verdict": "...", "label": env_id, "review": None, "not_compared": 0, "still_failing": cells // 10,
                 "broken": [_flip(i, "pass", "serialize-error", long) for i in range(changed // 3)],
                 "fixed": [_flip(i, "task-error", "pass", long) for i in range(changed // 3)],
                 "failure-changed": [_flip(i, "task-error", "serialize-error", long) for i in range(changed // 6)],
                 "other": [_flip(i, "pass", "ran-locally", None) for i in range(changed // 6)],
                 "slower": [{"case": f"f/c{i}", "method": "Client.compute", "context": "script", "before": 0.01,
                             "after": 0.03, "ratio": 3.0} for i in range(5)], "faster": []}
        if e % 10 == 9:
            entry.update(status="not-recorded-base", verdict="no record at the base's fingerprint 0123abcd: not compared")
        envs.append(entry)
    base = {"rev": "b" * 40, "commit": "b" * 40, "fingerprint": "b" * 40, "envs": [e["env_id"] for e in envs]}
    head = {"rev": "HEAD", "commit": "c" * 40, "fingerprint": "c" * 40, "envs": base["envs"], "profile": "full"}
    return summarize(base, head, envs, 1.1)


def test_the_full_profile_fits_one_comment_verdict_and_broken_cells_first():
    review = synthetic_review()
    assert review["counts"]["broken"] == 120 * 20 and review["exit_status"] == 1
    body = cm.render_comment(review, "https://github.example/octo/picklematrix/actions/runs/1")
    assert len(body) < 65536 and len(body.encode()) <= cm.BUDGET
    lines = body.splitlines()
    assert lines[0] == cm.MARKER
    assert lines[3].startswith("**❌ 2400 broken, 2400 fixed, ")  # the verdict, right under the title
    broken = body.index("### ❌ Broken (pass → fail) (2400)")
    assert broken < body.index("### Envs not compared") < body.index("### ✅ Fixed")
    first = review["envs"][0]["broken"][0]
    row = lines[lines.index("### ❌ Broken (pass → fail) (2400)") + 4]
    assert f"`{first['case']}`" in row and review["envs"][0]["env_id"] in row and "serialize-error" in row
    assert re.search(r"… and \d+ more \(see the whole review\)", body)
    # every env the verdict cannot vouch for is named, whatever the changed cells take
    assert "### Envs not compared, added or removed (12)" in body and body.count("| not-recorded-base |") == 12
    assert "row(s) are left out to fit a comment" in body
    assert body.rstrip().endswith("https://github.example/octo/picklematrix/actions/runs/1)")


def _tables(body):
    """Every markdown table of ``body``: runs of lines starting with ``|``."""
    tables, current = [], []
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("budget", [9000, cm.BUDGET])
def test_tables_are_cut_between_rows_never_inside_one(budget):
    body = cm.render_comment(synthetic_review(), None, budget=budget)
    assert len(body.encode()) <= budget
    tables = _tables(body)
    assert tables
    for table in tables:
        # a header, its separator, and whole rows of the header's width (escaped pipes are not columns)
        assert len(table) >= 3 and re.fullmatch(r"\|(-+:?\|)+", table[1]), table[:2]
        width = table[0].count("|")
        assert all(row.endswith(" |") and row.replace("\\|", "").count("|") == width for row in table[2:])
        assert all(row.count("`") % 2 == 0 for row in table)
    # beyond the first rows of a section, the rest folds into <details>, each fold a whole table
    assert body.count("<details>") == body.count("</details>") >= (1 if budget == cm.BUDGET else 0)


def test_a_small_review_is_shown_whole():
    review = synthetic_review(n_envs=2, changed=6)
    body = cm.render_comment(review)
    assert "more (see the whole review)" not in body and "left out" not in body
    assert body.count("| `family") == 2 * (2 + 2 + 1 + 1)


def test_cells_still_failing_unexpectedly_are_listed_and_the_expected_ones_counted():
    """A cell that fails at both ends where its case expects it to pass is a finding; the cells that fail as their
    cases expect are only a number in the verdict."""
    review = synthetic_review(n_envs=3, changed=6)
    env = review["envs"][0]
    unexpected = {"case": "containers/dict_with_lock", "method": "Client.compute", "context": "script",
                  "before": {"outcome": "serialize-error", "root_cause": None},
                  "after": {"outcome": "serialize-error", "expected": "pass",
                            "root_cause": {"type": "TypeError", "message": "cannot pickle '_thread.lock' object"}}}
    env["still-failing-unexpected"], env["still_failing_expected"] = [unexpected], 40
    review = summarize(review["base"], review["head"], review["envs"], 1.1)
    assert review["counts"]["still-failing-unexpected"] == 1 and review["counts"]["still_failing_expected"] == 40
    assert review["verdict"].startswith("6 broken, 6 fixed, 1 still failing unexpectedly (40 as expected), ")
    body = cm.render_comment(review)
    section = body.split("### ❗ Still failing unexpectedly")[1].split("###")[0]
    row = next(line for line in section.splitlines() if "dict_with_lock" in line)
    assert env["env_id"] in row and "_thread.lock" in row and "(the case expects pass)" in row
    assert body.index("### ✅ Fixed") < body.index("### ❗ Still failing unexpectedly")


def test_same_fingerprint_is_no_change():
    envs = [{"env_id": "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "in_base": True, "in_head": True,
             "status": "same-fingerprint", "exit_status": 0, "verdict": "same record at base and head: no change",
             "label": "", "review": None, "not_compared": 0, "still_failing": 0, "broken": [], "fixed": [],
             "failure-changed": [], "other": [], "slower": [], "faster": []}]
    side = {"rev": "x", "commit": "a" * 40, "fingerprint": "f" * 40, "envs": [envs[0]["env_id"]]}
    review = summarize(side, dict(side, rev="HEAD"), envs, 1.1)
    assert review["exit_status"] == 0 and review["same_fingerprint"]
    body = cm.render_comment(review)
    assert "**✅ 0 broken" in body and "same fingerprint commit ffffffff" in body
    assert "No change: the head's records are the base's." in body


# --------------------------------------------------------------------------- a stand-in for GitHub's REST API


class FakeGitHub:
    """The endpoints the comment uses, on 127.0.0.1, with comments in memory and pages of ``per_page``."""

    def __init__(self, per_page=2, token=TOKEN):
        self.comments = []  # {"id", "body"}
        self.requests = []  # (method, path, authorization header)
        self.per_page, self.token, self.next_id = per_page, token, 100
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
                fake.requests.append((method, url.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"message": "Bad credentials"})
                if self.headers.get("Accept") != "application/vnd.github+json":
                    return self._send(415, {"message": "wrong Accept"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                m = re.fullmatch(rf"/api/v3/repos/{REPO}/issues/{PR}/comments", url.path)
                if m and method == "GET":
                    page = int(parse_qs(url.query).get("page", ["1"])[0])
                    chunk = fake.comments[(page - 1) * fake.per_page: page * fake.per_page]
                    more = len(fake.comments) > page * fake.per_page
                    link = [("Link", f'<http://127.0.0.1:{fake.port}{url.path}?per_page=100&page={page + 1}>; '
                                     f'rel="next"')] if more else []
                    return self._send(200, chunk, link)
                if m and method == "POST":
                    fake.next_id += 1
                    fake.comments.append({"id": fake.next_id, "body": body["body"]})
                    return self._send(201, {"id": fake.next_id, "html_url": f"https://x/c/{fake.next_id}"})
                m = re.fullmatch(rf"/api/v3/repos/{REPO}/issues/comments/(\d+)", url.path)
                if m and method == "PATCH":
                    for c in fake.comments:
                        if c["id"] == int(m.group(1)):
                            c["body"] = body["body"]
                            return self._send(200, {"id": c["id"], "html_url": f"https://x/c/{c['id']}"})
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

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github():
    fake = FakeGitHub()
    yield fake
    fake.close()


def test_post_creates_then_updates_one_comment_across_pages(github):
    # other people's comments fill the first pages: the marker is found on a later page
    github.comments = [{"id": i, "body": f"a reviewer's comment {i}"} for i in range(1, 6)]
    first = cm.post_comment(f"{cm.MARKER}\nfirst", REPO, PR, TOKEN, github.api)
    assert first["action"] == "created"
    second = cm.post_comment(f"{cm.MARKER}\nsecond", REPO, PR, TOKEN, github.api)
    assert second == {"action": "updated", "id": first["id"], "url": f"https://x/c/{first['id']}"}
    ours = [c for c in github.comments if cm.MARKER in c["body"]]
    assert len(ours) == 1 and ours[0]["body"].endswith("second") and len(github.comments) == 6
    gets = [r for r in github.requests if r[0] == "GET"]
    # 2 comments a page: three pages the first time (no marker), and three again to find it on the third
    assert len(gets) == 3 + 3, gets
    assert all(r[2] == f"Bearer {TOKEN}" for r in github.requests)


def _comment_cli(tmp_path, api, *args, token=TOKEN):
    review = tmp_path / "pr.review.json"
    if not review.exists():
        review.write_text(json.dumps(synthetic_review()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_TOKEN=token, GITHUB_API_URL=api, PYTHONPATH=str(ROOT / "src"),
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    return subprocess.run([sys.executable, "-m", "picklematrix", "comment", "--review", str(review), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_command_posts_and_never_prints_the_token(github, tmp_path):
    for _ in range(2):
        proc = _comment_cli(tmp_path, github.api, "--repo", REPO, "--pr", str(PR), "--step-summary",
                            "--details-url", "https://github.example/run/1")
        assert proc.returncode == 0, proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr
    assert "created comment" in proc.stdout or "updated comment" in proc.stdout
    assert len(github.comments) == 1 and github.comments[0]["body"].startswith(cm.MARKER)
    assert len(github.comments[0]["body"]) < 65536
    assert (tmp_path / "summary.md").read_text().count(cm.MARKER) == 2


def test_a_refused_token_is_a_401_naming_the_pr_and_what_to_do(github, tmp_path):
    proc = _comment_cli(tmp_path, github.api, "--repo", REPO, "--pr", str(PR), token="ghs_wrong-token-secret")
    assert proc.returncode == 2
    assert f"{REPO}#{PR}" in proc.stderr and "HTTP 401" in proc.stderr and "GITHUB_TOKEN" in proc.stderr
    assert "ghs_wrong-token-secret" not in proc.stdout + proc.stderr
    assert github.comments == []


def test_an_unknown_pr_is_a_404_naming_the_repo_and_pr(github, tmp_path):
    proc = _comment_cli(tmp_path, github.api, "--repo", REPO, "--pr", "999")
    assert proc.returncode == 2
    assert f"{REPO}#999" in proc.stderr and "HTTP 404" in proc.stderr and "check --repo" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_no_token_and_no_server_are_named(tmp_path):
    proc = _comment_cli(tmp_path, "http://127.0.0.1:9/api/v3", "--repo", REPO, "--pr", str(PR), token="")
    assert proc.returncode == 2 and "no GITHUB_TOKEN" in proc.stderr and f"{REPO}#{PR}" in proc.stderr
    proc = _comment_cli(tmp_path, "http://127.0.0.1:9/api/v3", "--repo", REPO, "--pr", str(PR))
    assert proc.returncode == 2 and "cannot reach the GitHub API" in proc.stderr and TOKEN not in proc.stderr


def test_a_missing_review_posts_a_comment_saying_so(github, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=github.api, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "comment", "--review",
                           str(tmp_path / "none.json"), "--repo", REPO, "--pr", str(PR)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "no review there" in proc.stderr
    assert len(github.comments) == 1 and "No review" in github.comments[0]["body"]


def test_the_nox_session_is_the_command(tmp_path):
    """``./nox -s comment`` (what the workflow runs) passes its arguments and exit status through."""
    review = tmp_path / "pr.review.json"
    review.write_text(json.dumps(synthetic_review(n_envs=3, changed=6)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "comment", "--", "--review", str(review), "--dry-run"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(cm.MARKER) and "### ❌ Broken (pass → fail) (6)" in proc.stdout
    refused = subprocess.run([sys.executable, "-m", "nox", "-s", "comment", "--", "--review", str(review),
                              "--repo", REPO, "--pr", str(PR)], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    assert refused.returncode == 2 and "no GITHUB_TOKEN" in refused.stderr
