"""A pull request's review: every env of the profile at the base's code against the same env at the head's.

    picklematrix review --base-rev BASE [--head-rev HEAD] [--json PATH]    (./nox -s review -- ...)

Results are keyed by fingerprint commit (picklematrix.record.fingerprint), so one results directory holds the base's
and the head's records side by side. BASE and HEAD are git revisions of the checkout; each is read as its
fingerprint commit and its profile's envs (``matrix.toml`` at that revision, profile ``$PICKLEMATRIX_PROFILE``;
``$PICKLEMATRIX_MATRIX`` names one file for both). Every env in both profiles is reviewed as
``nox -s review`` reviews two envs (env@base -> env@head); envs only in the head's profile are "added" (and
compared too when the base's code recorded them), only in the base's "removed". When both revisions have the same fingerprint the records are the same records: nothing
is compared and the verdict is "no change" (the envs added or removed are still named).

Writes the review as JSON (``--json``, default ``<results>/reviews/<base8>..<head8>.review.json``; what
``picklematrix comment`` renders and posts) and each compared env's review (``.md``/``.html``)
beside it. Exit status: 0 nothing broke, nothing got slower, every env of the head's profile compared; 1
otherwise; 2 bad input (an unknown revision, no results at the head's fingerprint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from picklematrix.envs.matrix import MatrixError, load_matrix
from picklematrix.record.fingerprint import pathspec
from picklematrix.report.compare import EXIT_CHANGED, EXIT_OK, build_review
from picklematrix.report.problems import BadInput
from picklematrix.report.results import ResultSet, load_results, only_corpus
from picklematrix.report.review import write_review
from picklematrix.report.table import AS_EXPECTED

KIND = "picklematrix-pr-review"
FLIP_KINDS = ("broken", "fixed", "failure-changed", "other")
STILL_UNEXPECTED = "still-failing-unexpected"  # fail -> fail where the case expects otherwise


def _git(checkout: Path, *args) -> str:
    proc = subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode:
        raise BadInput(f"git {' '.join(args[:3])} failed in {checkout}: {proc.stderr.strip()} (a pull request's "
                       "review needs both revisions in the checkout: actions/checkout with fetch-depth: 0)")
    return proc.stdout.strip()


def rev_fingerprint(checkout: Path, rev: str) -> str:
    """The fingerprint commit of revision ``rev``: the last commit at or before it touching fingerprinted code."""
    full = _git(checkout, "rev-parse", "--verify", f"{rev}^{{commit}}")
    return _git(checkout, "log", "-1", "--format=%H", full, "--", *pathspec()) or full


def rev_envs(checkout: Path, rev: str, profile: str) -> list[str]:
    """The env ids of ``profile`` in ``matrix.toml`` at ``rev`` (or in ``$PICKLEMATRIX_MATRIX``), in order: its
    envs, then its client/cluster skew pairs (their record ids, ``<client>~<cluster>``)."""
    path = os.environ.get("PICKLEMATRIX_MATRIX")
    with tempfile.TemporaryDirectory(prefix="picklematrix-rev-") as tmp:
        if not path:
            path = Path(tmp) / "matrix.toml"
            path.write_text(_git(checkout, "show", f"{rev}:matrix.toml") + "\n")
        try:
            chosen = load_matrix(path).profile(profile)
            return [e.env_id for e in chosen.envs] + [pair.env_id for pair in chosen.skew]
        except (MatrixError, OSError) as e:
            raise BadInput(f"matrix.toml at {rev}: profile {profile!r}: {e}") from None


def _records(rs: ResultSet, fingerprint: str) -> dict:
    """{env id: recording} at ``fingerprint`` (one machine's, not A/A copies; the first machine by name)."""
    out: dict = {}
    for r in sorted(rs.recordings, key=lambda r: (r.machine, r.env_name)):
        if r.commit[:8] == fingerprint[:8] and not r.replica_of and r.env_id:
            out.setdefault(r.env_id, r)
    return out


def _cells(flips: list) -> list:
    return [{k: f[k] for k in ("case", "method", "context", "before", "after")} for f in flips]


def _env_entry(env_id: str, in_base: bool, in_head: bool) -> dict:
    return {"env_id": env_id, "in_base": in_base, "in_head": in_head, "status": None, "exit_status": EXIT_OK,
            "verdict": "", "label": env_id, "review": None, **{k: [] for k in FLIP_KINDS},
            "slower": [], "faster": [], "not_compared": 0, "still_failing": 0, STILL_UNEXPECTED: [],
            "still_failing_expected": 0}


def _unexpected_cells(still: list) -> list:
    """The still-failing cells whose case expects otherwise, as the comment's rows (case, cell, base, head)."""
    return [{"case": g["case"], "method": c["method"], "context": c["context"],
             "before": {"outcome": c["before"], "root_cause": None},
             "after": {"outcome": g["outcome"], "root_cause": g["root_cause"], "expected": g["expected"]}}
            for g in still if g["expectation"] != AS_EXPECTED for c in g["cells"]]


def _review_env(entry: dict, rs: ResultSet, a, b, factor: float, out_dir: Path | None) -> None:

    review = build_review(rs, a, b, factor)
    entry.update(status="compared", exit_status=review["exit_status"], verdict=review["verdict"],
                 label=review["to"]["version_label"] or entry["env_id"],
                 slower=review["timing"]["slower"], faster=review["timing"]["faster"],
                 not_compared=len(review["not_compared"]["cells"]) + len(review["not_compared"]["partial"]),
                 not_compared_message=review["not_compared"]["message"],
                 still_failing=sum(len(g["cells"]) for g in review["still_failing"]),
                 still_failing_expected=review["still_failing_counts"][AS_EXPECTED],
                 **{STILL_UNEXPECTED: _unexpected_cells(review["still_failing"])},
                 **{k: _cells(review["flips"][k]) for k in FLIP_KINDS})
    if out_dir is not None:
        review["slug"] = f"{a.commit[:8]}.{entry['env_id']}..{b.commit[:8]}.{entry['env_id']}"
        md, html = write_review(review, out_dir)
        entry["review"] = {"md": md.name, "html": html.name}


def _missing(entry: dict, side: str, fingerprint: str, rec) -> None:
    entry["status"] = f"error-{side}" if rec is not None else f"not-recorded-{side}"
    entry["exit_status"] = EXIT_CHANGED
    entry["verdict"] = (f"could not be built at the {side} ({rec.error['stage']}): not compared" if rec is not None
                        else f"no record at the {side}'s fingerprint {fingerprint[:8]}: not compared")


def review_revisions(rs: ResultSet, base: dict, head: dict, factor: float, out_dir: Path | None = None) -> dict:
    """The review of every env: ``base``/``head`` are ``{"rev", "fingerprint", "envs"}``; the review as data."""
    same = base["fingerprint"] == head["fingerprint"]
    # the base's records are another fingerprint's on purpose: not a problem of the results
    rs.problems = [p for p in rs.problems
                   if not p.message.startswith(f"recorded by harness commit {base['fingerprint'][:8]},")]
    at_base, at_head = _records(rs, base["fingerprint"]), _records(rs, head["fingerprint"])
    order = list(dict.fromkeys([*head["envs"], *base["envs"]]))
    envs = []
    for env_id in order:
        entry = _env_entry(env_id, env_id in base["envs"], env_id in head["envs"])
        envs.append(entry)
        a, b = at_base.get(env_id), at_head.get(env_id)
        if not entry["in_head"]:
            entry.update(status="removed", verdict="removed from the profile by the pull request")
        elif b is None or b.is_error:
            _missing(entry, "head", head["fingerprint"], b)
        elif not entry["in_base"]:
            # CI records every env at the base's code too (--env builds any env): then it is compared as well
            if not same and a is not None and not a.is_error:
                _review_env(entry, rs, a, b, factor, out_dir)
                entry.update(status="added", verdict="added to the profile by the pull request; at the base's "
                                                     f"code against the head's: {entry['verdict']}")
            else:
                entry.update(status="added", verdict="added to the profile by the pull request: nothing to "
                                                     "compare with")
        elif same:
            entry.update(status="same-fingerprint", verdict="same record at base and head: no change")
        elif a is None or a.is_error:
            _missing(entry, "base", base["fingerprint"], a)
        else:
            _review_env(entry, rs, a, b, factor, out_dir)
        if b is not None and not b.is_error:
            entry["label"] = ", ".join(b.version_label())
    return summarize(base, head, envs, factor)


def summarize(base: dict, head: dict, envs: list, factor: float) -> dict:
    """The pull request's verdict over ``envs``: counts, what they mean, and the exit status."""
    counts = {k: sum(len(e[k]) for e in envs) for k in (*FLIP_KINDS, "slower", "faster")}
    counts["not_compared_envs"] = sum(e["status"] in ("not-recorded-base", "not-recorded-head", "error-base",
                                                      "error-head") for e in envs)
    counts["not_compared_cells"] = sum(e["not_compared"] for e in envs)
    counts["still_failing"] = sum(e["still_failing"] for e in envs)
    counts[STILL_UNEXPECTED] = sum(len(e.get(STILL_UNEXPECTED, [])) for e in envs)
    counts["still_failing_expected"] = sum(e.get("still_failing_expected", 0) for e in envs)
    for status in ("compared", "same-fingerprint", "added", "removed"):
        counts[status] = sum(e["status"] == status for e in envs)
    same = base["fingerprint"] == head["fingerprint"]
    exit_status = EXIT_CHANGED if any(e["exit_status"] for e in envs) else EXIT_OK
    # what a reviewer acts on first; the cells failing as their cases expect are only a count in brackets
    verdict = (f"{counts['broken']} broken, {counts['fixed']} fixed, {counts[STILL_UNEXPECTED]} still failing "
               f"unexpectedly ({counts['still_failing_expected']} as expected), {counts['failure-changed']} failing "
               f"differently, {counts['other']} other changes, {counts['slower']} slower beyond ×{factor:g}, "
               f"{counts['not_compared_envs']} env(s) and {counts['not_compared_cells']} cell(s) not compared; "
               f"{len(envs)} env(s): {counts['compared']} compared, {counts['added']} added, "
               f"{counts['removed']} removed")
    said = []
    if same:
        said.append(f"base and head have the same fingerprint commit {head['fingerprint'][:8]}: the pull request "
                    "changes nothing a recording depends on, so every env's record is the same record (no change)")
    if counts["broken"]:
        said.append(f"{counts['broken']} cell(s) broke: they pass at the base and fail at the head")
    if counts["slower"]:
        said.append(f"{counts['slower']} timing(s) got slower beyond ×{factor:g}")
    if counts["not_compared_envs"] or counts["not_compared_cells"]:
        said.append("not everything could be compared (see the envs below)")
    if not exit_status and not same:
        said.append("nothing broke, nothing got slower, every env compared")
    if counts["fixed"]:
        said.append(f"the pull request fixes {counts['fixed']} cell(s)")
    if counts[STILL_UNEXPECTED]:
        said.append(f"{counts[STILL_UNEXPECTED]} cell(s) fail at both ends where their cases expect otherwise")
    return {"kind": KIND, "base": base, "head": head, "same_fingerprint": same, "factor": factor,
            "profile": head.get("profile"), "counts": counts, "verdict": verdict, "meaning": "; ".join(said),
            "exit_status": exit_status, "envs": envs}


def run(args, checkout: Path, results: Path) -> int:
    """``review --base-rev`` (the command line is picklematrix.cli's, the command picklematrix.report.reviewing's):
    write the JSON and each env's review."""
    from picklematrix.report.comment import render_comment

    if checkout is None:
        raise BadInput("--base-rev needs the picklematrix checkout (run from it, or --checkout DIR)")
    profile = getattr(args, "profile", None) or os.environ.get("PICKLEMATRIX_PROFILE") or "default"
    sides = {}
    for name, rev in (("base", args.base_rev), ("head", args.head_rev or "HEAD")):
        sides[name] = {"rev": rev, "commit": _git(checkout, "rev-parse", "--verify", f"{rev}^{{commit}}"),
                       "fingerprint": rev_fingerprint(checkout, rev), "envs": rev_envs(checkout, rev, profile),
                       "profile": profile}
    head_fp = sides["head"]["fingerprint"]
    try:
        rs = only_corpus(load_results(results, head_fp, checkout), getattr(args, "cases", None))
    except BadInput as e:
        raise BadInput(f"no results at the head's fingerprint {head_fp[:8]} (of {sides['head']['rev']}): record "
                       f"the profile first (`nox -s matrix`): {e}") from None
    out_dir = Path(args.out) if args.out else results / "reviews"
    review = review_revisions(rs, sides["base"], sides["head"], args.factor, out_dir)
    slug = f"{sides['base']['fingerprint'][:8]}..{head_fp[:8]}"
    path = Path(args.json) if args.json else out_dir / f"{slug}.review.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(review, indent=1, default=str) + "\n")
    if not args.quiet:
        print(render_comment(review))
    print(f"review: {path}", file=sys.stderr)
    return review["exit_status"]

