"""The pull request's comment: the review, rendered to fit one GitHub comment, and posted or updated in place.

    picklematrix comment --review REVIEW.json --repo OWNER/NAME --pr N [--details-url URL]
    ./nox -s comment -- --review results/reviews/pr.review.json --repo OWNER/NAME --pr N

REVIEW.json is what ``nox -s review -- --base-rev BASE`` writes (picklematrix.report.revs). The comment starts
with the verdict, then the changed cells (broken, not compared, slower, fixed, still failing where the case expects
otherwise, failing differently, other; the cells failing as their cases expect are only counted), then
the envs that were not simply compared; every list is cut whole rows at a time with "… and N more", so the
comment stays under :data:`BUDGET` bytes (GitHub refuses a body over 65,536 characters) at any profile size, and
links the rest (``--details-url``: the run's summary, its results artifact and the Pages site).

Posting: the GitHub REST API, with ``$GITHUB_TOKEN`` (never printed) at ``$GITHUB_API_URL`` (default
https://api.github.com). It lists the pull request's comments (every page), finds the one carrying
:data:`MARKER`, and updates it, or creates it: one comment per pull request, however often the workflow runs.
``--out FILE`` writes the body, ``--dry-run`` posts nothing; ``--step-summary`` appends it to
``$GITHUB_STEP_SUMMARY``. Exit status: 0 posted (or written); 1 the review is missing (a comment saying so is
posted); 2 bad input or the API refused (the message names the repository, the pull request and what to do).
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from picklematrix.report.render import cell_md, md_code, md_prose, md_text, short_method

MARKER = "<!-- picklematrix-review -->"
BUDGET = 60000  # bytes of UTF-8: under GitHub's 65,536 characters whatever it counts
SECTIONS = (("broken", "❌ Broken (pass → fail)"), ("slower", "🐢 Slower"), ("fixed", "✅ Fixed (fail → pass)"),
            ("still-failing-unexpected", "❗ Still failing unexpectedly (fail → fail, the case expects otherwise)"),
            ("failure-changed", "Failing differently (another failure or root cause)"),
            ("other", "Other outcome changes"), ("faster", "Faster"))
TIMEOUT = 30
FIRST_ROWS = 10  # rows every section shows before the budget goes to the first sections


def _size(text: str) -> int:
    return len(text.encode())


def _cell_row(env: dict, c: dict, expects: bool = False) -> str:
    after = cell_md(c["after"], limit=120, mark=False)
    if expects and c["after"].get("expected"):
        after += f" (the case expects {md_text(c['after']['expected'])})"
    return (f"| {md_code(env['env_id'])} | {md_code(c['case'])} | {md_text(short_method(c['method']))} @ "
            f"{md_text(c['context'])} | {cell_md(c['before'], limit=120, mark=False)} | {after} |")


def _timing_row(env: dict, t: dict) -> str:
    return (f"| {md_code(env['env_id'])} | {md_code(t['case'])} | {md_text(short_method(t['method']))} @ "
            f"{md_text(t['context'])} | {t['before']:.3g} s | {t['after']:.3g} s (×{t['ratio']:.2f}) |")


def _sections(review: dict) -> list:
    """(title, header lines, rows) in the order a reviewer needs them."""
    envs = review["envs"]
    out = []
    for kind, title in SECTIONS:
        if kind in ("slower", "faster"):
            rows = [_timing_row(e, t) for e in envs for t in e.get(kind, [])]
            head = ["| env | case | cell | base | head |", "|---|---|---|---:|---:|"]
        else:
            rows = [_cell_row(e, c, expects=kind == "still-failing-unexpected") for e in envs for c in e.get(kind, [])]
            head = ["| env | case | cell | base | head |", "|---|---|---|---|---|"]
        if kind == "slower" and rows:
            title += f" beyond ×{review['factor']:g}"
        out.append((kind, title, head, rows))
    # not simply compared: errors, missing records, partial records, added and removed envs
    odd = [e for e in envs if e["status"] not in ("compared", "same-fingerprint") or e["not_compared"]]
    rows = [f"| {md_code(e['env_id'])} | {md_text(e['status'])} | {md_prose(e.get('not_compared_message') or e['verdict'])} |"
            for e in odd]
    out.insert(1, ("envs", "Envs not compared, added or removed", ["| env | status | why |", "|---|---|---|"], rows))
    return [s for s in out if s[3]]


def render_comment(review: dict, details_url: str | None = None, budget: int = BUDGET) -> str:
    """The comment's markdown: at most ``budget`` bytes, verdict first, tables cut between rows only."""
    if review.get("kind") != "picklematrix-pr-review":
        raise ValueError("not a pull request review (expected the JSON of `nox -s review -- --base-rev REV`)")
    base, head = review["base"], review["head"]
    mark = "❌" if review["exit_status"] else "✅"
    lines = [MARKER, f"## picklematrix review: base {md_code(base['fingerprint'][:8])} → head "
                     f"{md_code(head['fingerprint'][:8])} (profile {md_code(review.get('profile') or '?')})", "",
             f"**{mark} {md_prose(review['verdict'])}**", ""]
    if review["meaning"]:
        lines += [md_prose(review["meaning"][:1].upper() + review["meaning"][1:]) + ".", ""]
    if review["same_fingerprint"] and not any(review["counts"][k] for k in ("added", "removed")):
        lines += ["No change: the head's records are the base's.", ""]
    where = (f"The whole review (every env, every cell; per-env `.md`/`.html` reviews in the `results` artifact, the "
             f"matrix page in the Pages artifact): [{details_url}]({details_url})" if details_url
             else "The whole review: the per-env reviews beside the review's JSON, and `nox -s report`'s matrix page.")
    footer = ["", where, "", "**0000000 row(s) are left out to fit a comment.**"]
    sections = _sections(review)
    blocks = [["", f"### {title} ({len(rows)})", "", *head] for _, title, head, rows in sections]
    # the rows after the first FIRST_ROWS fold away: a second, whole table inside <details>
    folds = [["", f"<details><summary>{len(rows)} more row(s)</summary>", "", *head, "", "</details>"] if len(rows) >
             FIRST_ROWS else [] for _, _, head, rows in sections]
    more = [f"\n… and {len(rows)} more (see the whole review)" for *_, rows in sections]
    free = budget - _size("\n".join(lines + footer)) - sum(_size("\n".join(b + f)) + _size(m) + 3
                                                           for b, f, m in zip(blocks, folds, more)) - 16
    taken = [0] * len(sections)
    # every section shows its first rows (so a long list of one kind never hides the others), then the
    # rest of the budget goes to the sections in order: broken first
    # (in the second round the envs that were not compared come first: one row an env, and the reason a
    # verdict cannot vouch for them)
    order = sorted(range(len(sections)), key=lambda i: sections[i][0] != "envs")
    for quota in (FIRST_ROWS, None):
        for i in (range(len(sections)) if quota else order):
            rows = sections[i][3]
            while taken[i] < len(rows) and (quota is None or taken[i] < quota):
                cost = _size(rows[taken[i]]) + 1
                if cost > free:
                    break
                free -= cost
                taken[i] += 1
    left_out = 0
    for (_, title, head, rows), block, n in zip(sections, blocks, taken):
        if n == 0:
            lines.append(f"\n**{title}: {len(rows)}** (left out here; see the whole review)")
        else:
            lines += block + rows[:min(n, FIRST_ROWS)]
        if n > FIRST_ROWS:
            lines += ["", f"<details><summary>{n - FIRST_ROWS} more row(s)</summary>", "", *head, *rows[FIRST_ROWS:n],
                      "", "</details>"]
        if n < len(rows):
            if n:
                lines.append(f"\n… and {len(rows) - n} more (see the whole review)")
            left_out += len(rows) - n
    footer.pop()
    if left_out:
        footer[1:1] = [f"**{left_out} row(s) are left out to fit a comment.**", ""]
    body = "\n".join(lines + footer)
    assert _size(body) <= budget, _size(body)
    return body


def missing_review_body(path: Path, details_url: str | None) -> str:
    return "\n".join([MARKER, "## picklematrix review", "", f"**❌ No review: {md_code(str(path))} was not written "
                      "(the review step failed before it could compare anything).**", "",
                      f"See the run's log: [{details_url}]({details_url})" if details_url else "See the run's log.",
                      ""])


# --------------------------------------------------------------------------- the GitHub REST API


class GitHubError(Exception):
    """The API refused or could not be reached; the message names the repository, the PR and what to do."""


def github_request(method: str, url: str, token: str, body: dict | None = None):
    """One GitHub REST call: (the decoded JSON answer, its ``Link`` header). Raises urllib's errors: each caller
    says which repository, pull request or issue, and what to do (here and in picklematrix.report.alert)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "picklematrix-review",
        **({"Content-Type": "application/json"} if data is not None else {})})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        return json.loads(resp.read() or b"null"), resp.headers.get("Link", "")


def next_link(link: str) -> str | None:
    """The ``rel="next"`` page of a paginated answer's ``Link`` header, or None on the last page."""
    m = re.search(r'<([^>]+)>\s*;\s*rel="next"', link or "")
    return m.group(1) if m else None


def _explain(e: Exception, repo: str, pr: int, what: str) -> GitHubError:
    where = f"{repo}#{pr}"
    if isinstance(e, urllib.error.HTTPError):
        hint = {401: "the token was refused: the workflow must pass GITHUB_TOKEN (env: GITHUB_TOKEN: "
                     "${{ github.token }}) and it must not have expired",
                403: "the token may not write comments: give the job `permissions: pull-requests: write` (a pull "
                     "request from a fork gets a read-only token: its comment cannot be posted)",
                404: f"no repository {repo} with an issue or pull request {pr} visible to this token: check --repo "
                     "(OWNER/NAME), --pr and GITHUB_API_URL",
                422: "GitHub refused the body (too long?)"}.get(e.code, "see GitHub's answer")
        return GitHubError(f"{what} on {where}: HTTP {e.code} {e.reason}: {hint}")
    return GitHubError(f"{what} on {where}: cannot reach the GitHub API ({type(e).__name__}: {e}); check GITHUB_API_URL")


def post_comment(body: str, repo: str, pr: int, token: str, api: str = "https://api.github.com") -> dict:
    """Update the comment carrying :data:`MARKER` on pull request ``pr`` of ``repo``, or create it.

    Returns ``{"action": "updated"|"created", "id", "url"}``. Raises GitHubError.
    """
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise GitHubError(f"--repo {repo!r}: write OWNER/NAME (the workflow passes ${{{{ github.repository }}}})")
    if not token:
        raise GitHubError(f"no GITHUB_TOKEN in the environment: cannot comment on {repo}#{pr}; the workflow step "
                          "needs env: GITHUB_TOKEN: ${{ github.token }}")
    api = api.rstrip("/")
    url = f"{api}/repos/{repo}/issues/{pr}/comments?per_page=100"
    found = None
    try:
        while url and found is None:
            page, link = github_request("GET", url, token)
            found = next((c for c in page if MARKER in (c.get("body") or "")), None)
            url = next_link(link)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _explain(e, repo, pr, "listing the comments") from None
    try:
        if found is not None:
            done, _ = github_request("PATCH", f"{api}/repos/{repo}/issues/comments/{found['id']}", token,
                                     {"body": body})
            return {"action": "updated", "id": done["id"], "url": done.get("html_url")}
        done, _ = github_request("POST", f"{api}/repos/{repo}/issues/{pr}/comments", token, {"body": body})
        return {"action": "created", "id": done["id"], "url": done.get("html_url")}
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _explain(e, repo, pr, "updating the review comment" if found else "creating the review comment") from None


# --------------------------------------------------------------------------- command line


def run(args) -> int:
    """``picklematrix comment`` and ``./nox -s comment``: post (or update) the review comment."""
    path = Path(args.review)
    status = 0
    try:
        review = json.loads(path.read_text())
        body = render_comment(review, args.details_url)
    except FileNotFoundError:
        print(f"picklematrix comment: {path}: no review there (the review step failed; see its log)", file=sys.stderr)
        body, status = missing_review_body(path, args.details_url), 1
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"picklematrix comment: {path}: not a pull request's review ({type(e).__name__}: {e}); write it "
              "with `nox -s review -- --base-rev REV --json PATH`", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(body)
    if args.step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(body + "\n")
    if args.dry_run:
        print(body)
        return status
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if args.pr is None:
        print("picklematrix comment: say which pull request: --pr N", file=sys.stderr)
        return 2
    try:
        done = post_comment(body, repo, args.pr, os.environ.get("GITHUB_TOKEN", ""),
                            os.environ.get("GITHUB_API_URL") or "https://api.github.com")
    except GitHubError as e:
        print(f"picklematrix comment: {e}", file=sys.stderr)
        return 2
    print(f"picklematrix comment: {done['action']} comment {done['id']} on {repo}#{args.pr} ({_size(body)} bytes)"
          + (f": {done['url']}" if done.get("url") else ""))
    return status

