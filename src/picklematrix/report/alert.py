"""The daily run's one issue: opened or updated while the newest releases flip cells, closed when all is clean.

    picklematrix alert DIR [--expect N] [--repo OWNER/NAME] [--details-url URL] [--dry-run]
    ./nox -s alert -- newest --expect 2 --details-url URL

DIR holds what each job of the scheduled run wrote with ``nox -s review -- --newest --json PATH``
(picklematrix.report.latest: one file per Python, found anywhere below DIR). Something is *found* when

- a new release broke a cell today (the review's broken flips: pass -> fail),
- the newest record has surprises: cells whose outcome is not what their case expects. A release that flips a
  cell away from its expectation (broken or fixed) leaves one, and it stays while that release is the newest,
  so the issue stays open on the days with "no new release" and closes once a release or the corpus settles it;
- fewer reviews than ``--expect`` (a job failed before its review: the env could not be built, say).

Found: the open issue labelled :data:`LABEL` whose body carries :data:`MARKER` gets the day's findings as its body
(one issue, however many days it stays open), or it is created; when today's review flipped cells, a comment
says so too, since an edited body notifies nobody. Nothing found: that issue, if open, is closed with a comment.

The GitHub REST API as picklematrix.report.comment uses it (standard library only: it runs in nox's own Python),
with ``$GITHUB_TOKEN`` (never printed; the job needs ``permissions: issues: write``) at ``$GITHUB_API_URL``.
``--dry-run`` prints the body and what would be done, and calls no API. Exit status: 0 done (opened, updated,
closed, or nothing to do); 2 bad input (an unreadable review, no review and no ``--expect``) or the API refused
(the message names the repository, the HTTP status and what to do).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
from pathlib import Path

from picklematrix.report.comment import GitHubError, github_request, next_link
from picklematrix.report.latest import KIND
from picklematrix.report.render import md_code, md_prose, md_text, short_method

MARKER = "<!-- picklematrix-latest -->"
LABEL = "picklematrix-latest"
TITLE = "The newest releases flip cells (picklematrix daily run)"
ROWS = 25  # rows of each table; the rest is counted and linked (the run's artifacts hold every review)
BUDGET = 60000  # bytes: GitHub refuses an issue body over 65,536 characters


def load_reviews(folder: Path) -> list[dict]:
    """Every ``review --newest --json`` document below ``folder``, by Python. Raises ValueError on one that is not."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not readable as JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise ValueError(f"{path}: not a newest-releases review (write it with "
                             "`nox -s review -- --newest --json PATH`)")
        found.append(doc)
    return sorted(found, key=lambda d: str(d.get("python")))


def findings(reviews: list[dict], expect: int | None) -> dict:
    """What keeps the issue open: ``broken`` (today's broken flips), ``surprises``, ``missing`` (reviews fewer
    than expected), with their counts; ``found`` is whether any is there."""
    broken = sum(len((r.get("flips") or {}).get("broken", [])) for r in reviews)
    surprises = sum(len(r.get("surprises", [])) for r in reviews)
    missing = max(0, (expect or 0) - len(reviews))
    return {"broken": broken, "surprises": surprises, "missing": missing, "found": bool(broken or surprises or missing)}


def _flip_row(f: dict) -> str:
    return (f"| {md_code(f['case'])} | {md_text(short_method(f['method']))} @ {md_text(f['context'])} | "
            f"{md_code((f.get('before') or {}).get('outcome'))} | {md_code((f.get('after') or {}).get('outcome'))} |")


def _surprise_row(c: dict) -> str:
    rc = c.get("root_cause") or {}
    why = f"{rc.get('type', '')}: {rc.get('message', '')}"[:120] if rc else ""
    return (f"| {md_code(c['case'])} | {md_text(short_method(c['method']))} @ {md_text(c['context'])} | "
            f"{md_code(c.get('outcome'))} | {md_code(c.get('expected'))} | {md_text(why)} |")


def _table(title: str, head: list[str], rows: list[str]) -> list[str]:
    if not rows:
        return []
    out = ["", f"**{title} ({len(rows)})**", "", *head, *rows[:ROWS]]
    if len(rows) > ROWS:
        out += ["", f"… and {len(rows) - ROWS} more (the run's `results-latest-*` artifacts hold every review)"]
    return out


def render_issue(reviews: list[dict], expect: int | None, details_url: str | None) -> str:
    """The issue's body: what was found, per Python, newest first in each; at most :data:`BUDGET` bytes."""
    found = findings(reviews, expect)
    run = f"[the run]({details_url})" if details_url else "the run"
    lines = [MARKER, "## The newest releases flip cells", "",
             f"Found by the daily run against the newest releases of cloudpickle, dask/distributed and pydantic "
             f"({run}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): "
             f"{found['broken']} cell(s) broken today, {found['surprises']} cell(s) not as their case expects"
             + (f", {found['missing']} job(s) without a review" if found["missing"] else "") + ".", "",
             "Every daily run updates this issue while something is found, and the first run that finds all clean "
             "closes it. A surprise stays while the release that caused it is the newest: a later release, or the "
             "case's expectation (`expect_when`, docs/cases.md), settles it."]
    for r in reviews:
        lines += ["", f"### py{md_text(r.get('python'))}: {md_text(', '.join(r.get('versions') or [])[:300])}", ""]
        if r.get("state") == "reviewed":
            changed = ", ".join(f"**{md_text(c.get('name'))}** {md_text(c.get('from'))} → {md_text(c.get('to'))}"
                                for c in r.get("changed") or [] if isinstance(c, dict))
            lines.append(f"Today: {changed or 'the same versions'}. {md_prose(r.get('verdict', ''))}")
        else:
            lines.append(md_prose(r.get("verdict", "")))
        flips = r.get("flips") or {}
        head = ["| case | cell | before | after |", "|---|---|---|---|"]
        lines += _table("Broken today (pass → fail)", head, [_flip_row(f) for f in flips.get("broken", [])])
        lines += _table("Fixed today (fail → pass)", head, [_flip_row(f) for f in flips.get("fixed", [])])
        lines += _table("Not as their case expects", ["| case | cell | outcome | expected | root cause |",
                                                      "|---|---|---|---|---|"],
                        [_surprise_row(c) for c in r.get("surprises", [])])
    if found["missing"]:
        lines += ["", f"### {found['missing']} of {expect} job(s) wrote no review", "",
                  f"A job failed before its review (the newest releases may not install together): see {run}."]
    body = "\n".join(lines) + "\n"
    if len(body.encode()) > BUDGET:  # (ROWS rows a table keep it far below, but for absurd names) whole lines
        cut = ["", f"… (the rest is cut to fit an issue: see {run})"]
        while lines and len(("\n".join(lines + cut) + "\n").encode()) > BUDGET:
            lines.pop()
        body = "\n".join(lines + cut) + "\n"
    return body


def clean_comment(reviews: list[dict], details_url: str | None) -> str:
    envs = "; ".join(f"py{r.get('python')}: {', '.join(r.get('versions') or [])}" for r in reviews)
    run = f"[the daily run]({details_url})" if details_url else "the daily run"
    return f"{MARKER}\nAll clean: {run} finds every cell as its case expects ({envs}). Closing."


def flipped_comment(reviews: list[dict], details_url: str | None) -> str | None:
    """A comment for today's flips (an edited body notifies nobody), or None when no release flipped a cell today."""
    today = [(r, sum(len(v) for v in (r.get("flips") or {}).values())) for r in reviews if r.get("state") == "reviewed"]
    today = [(r, n) for r, n in today if n]
    if not today:
        return None
    run = f" ([run]({details_url}))" if details_url else ""
    said = "; ".join(f"py{r.get('python')}: {n} cell(s) flipped by "
                     + (", ".join(f"{c.get('name')} {c.get('from')} → {c.get('to')}" for c in r.get("changed") or []
                                  if isinstance(c, dict)) or "a newer harness") for r, n in today)
    return f"{MARKER}\nNew releases today{run}: {md_text(said)}. The issue's body has the cells."


# --------------------------------------------------------------------------- the GitHub REST API


def _explain(e: Exception, repo: str, what: str) -> GitHubError:
    if isinstance(e, urllib.error.HTTPError):
        hint = {401: "the token was refused: the workflow must pass GITHUB_TOKEN (env: GITHUB_TOKEN: "
                     "${{ github.token }})",
                403: "the token may not write issues: give the job `permissions: issues: write`",
                404: f"no repository {repo} visible to this token (or issues are turned off): check --repo "
                     "(OWNER/NAME) and GITHUB_API_URL",
                410: f"issues are turned off in {repo}",
                422: "GitHub refused the body or the label"}.get(e.code, "see GitHub's answer")
        return GitHubError(f"{what} in {repo}: HTTP {e.code} {e.reason}: {hint}")
    return GitHubError(f"{what} in {repo}: cannot reach the GitHub API ({type(e).__name__}: {e}); check GITHUB_API_URL")


def find_issue(repo: str, token: str, api: str) -> dict | None:
    """The open issue labelled :data:`LABEL` whose body carries :data:`MARKER` (every page), or None."""
    url = f"{api}/repos/{repo}/issues?" + urllib.parse.urlencode({"state": "open", "labels": LABEL, "per_page": 100})
    try:
        while url:
            page, link = github_request("GET", url, token)
            for issue in page:
                if "pull_request" not in issue and MARKER in (issue.get("body") or ""):
                    return issue
            url = next_link(link)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _explain(e, repo, "listing the open issues") from None
    return None


def sync_issue(body: str | None, repo: str, token: str, api: str = "https://api.github.com",
               comment: str | None = None, closing: str | None = None) -> dict:
    """Open or update the one issue with ``body``, commenting ``comment`` on an issue that was already open; or,
    with ``body`` None, close the open one (after the comment ``closing``). Returns ``{"action", "number"}``
    (action: created, updated, closed, none). Raises GitHubError."""
    if not token:
        raise GitHubError(f"no GITHUB_TOKEN in the environment: cannot open or close the issue in {repo}; the "
                          "workflow step needs env: GITHUB_TOKEN: ${{ github.token }}")
    api = api.rstrip("/")
    issue = find_issue(repo, token, api)
    what = "creating the issue"
    try:
        if body is None:
            if issue is None:
                return {"action": "none", "number": None}
            what = f"closing issue #{issue['number']}"
            if closing:
                github_request("POST", f"{api}/repos/{repo}/issues/{issue['number']}/comments", token,
                               {"body": closing})
            github_request("PATCH", f"{api}/repos/{repo}/issues/{issue['number']}", token,
                           {"state": "closed", "state_reason": "completed"})
            return {"action": "closed", "number": issue["number"]}
        if issue is None:
            done, _ = github_request("POST", f"{api}/repos/{repo}/issues", token,
                                     {"title": TITLE, "body": body, "labels": [LABEL]})
            return {"action": "created", "number": done["number"], "url": done.get("html_url")}
        what = f"updating issue #{issue['number']}"
        github_request("PATCH", f"{api}/repos/{repo}/issues/{issue['number']}", token, {"body": body})
        if comment:
            github_request("POST", f"{api}/repos/{repo}/issues/{issue['number']}/comments", token, {"body": comment})
        return {"action": "updated", "number": issue["number"], "url": issue.get("html_url")}
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _explain(e, repo, what) from None


# --------------------------------------------------------------------------- command line


def run(args) -> int:
    """``picklematrix alert`` and ``./nox -s alert``: open, update or close the daily run's issue."""
    folder = Path(args.reviews)
    try:
        reviews = load_reviews(folder) if folder.is_dir() else []
    except ValueError as e:
        print(f"picklematrix alert: {e}", file=sys.stderr)
        return 2
    if not reviews and not args.expect:
        print(f"picklematrix alert: no review in {folder} (write one per job with `nox -s review -- --newest --json "
              "PATH`), and no --expect N saying how many there should be", file=sys.stderr)
        return 2
    found = findings(reviews, args.expect)
    body = render_issue(reviews, args.expect, args.details_url) if found["found"] else None
    summary = (f"{len(reviews)} review(s): {found['broken']} broken today, {found['surprises']} surprise(s), "
               f"{found['missing']} missing")
    if args.dry_run:
        print(body if body else clean_comment(reviews, args.details_url))
        print(f"picklematrix alert: {summary}: would {'open or update' if body else 'close'} the issue labelled "
              f"{LABEL} (--dry-run: nothing posted)", file=sys.stderr)
        return 0
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        print(f"picklematrix alert: --repo {repo!r}: write OWNER/NAME (default $GITHUB_REPOSITORY)", file=sys.stderr)
        return 2
    try:
        done = sync_issue(body, repo, os.environ.get("GITHUB_TOKEN", ""),
                          os.environ.get("GITHUB_API_URL") or "https://api.github.com",
                          comment=flipped_comment(reviews, args.details_url),
                          closing=clean_comment(reviews, args.details_url))
    except GitHubError as e:
        print(f"picklematrix alert: {e}", file=sys.stderr)
        return 2
    where = f"{repo}#{done['number']}" if done["number"] else repo
    print(f"picklematrix alert: {summary}: " + {"created": f"opened {where}", "updated": f"updated {where}",
                                                  "closed": f"all clean: closed {where}",
                                                  "none": "all clean, no open issue"}[done["action"]]
          + (f": {done['url']}" if done.get("url") else ""))
    return 0
