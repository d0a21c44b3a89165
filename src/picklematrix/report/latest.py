"""What the newest releases changed: the newest record of a results directory against the one before it.

    nox -s matrix -- --env "python=3.11 dask=latest cloudpickle=latest pydantic=latest"     (on a schedule)
    nox -s review -- --newest [--step-summary] [--json PATH]

A scheduled run records an env built from the newest releases into a results directory that holds every
earlier scheduled run's records (CI keeps it in a cache). ``--newest`` reviews the record before the newest
against the newest (by file time; A/A copies and env errors are left out), as ``nox -s review`` reviews two
envs: the "Changed" line names the releases, and the cells they fixed or broke follow. When nothing new was
released the matrix session reuses the previous run's record, which the last ``--newest`` already reviewed
(``reviews/newest.reviewed`` names it): "no new release". When the
harness changed between the two records (another fingerprint commit), the review says so: some flips may come
from the harness. Exit status as ``nox -s review``'s: 0 nothing broke, 1 a new release broke a cell, 2 bad
input (fewer than one record).

``--json PATH`` also writes what the day's issue needs (:func:`newest_json`; ``picklematrix alert`` reads one per
job, picklematrix.report.alert): the newest record's versions, the cells the releases flipped, and the newest
record's surprises (cells whose outcome is not what their case expects), which stay while the release does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from picklematrix.report.compare import EXIT_OK, build_review
from picklematrix.report.problems import BadInput
from picklematrix.report.results import load_results
from picklematrix.report.review import render_review_md, write_review

STATE = "newest.reviewed"  # the newest record the last --newest reviewed: reused, it means no new release
KIND = "picklematrix-newest-review"  # the --json document's kind (picklematrix.report.alert reads it)


def newest_pair(rs) -> tuple:
    """(the record before the newest, the newest): the previous is None when there is only one."""
    recs = sorted((r for r in rs.recordings if not r.is_error and not r.replica_of and r.cells),
                  key=lambda r: r.mtime)
    if not recs:
        raise BadInput(f"{rs.results_dir}: no complete record to review (record one first: "
                       '`nox -s matrix -- --env "python=3.11 dask=latest cloudpickle=latest pydantic=latest"`)')
    newest = recs[-1]
    # the record before it of the same corpus: a run of other cases is no earlier state of these
    before = [r for r in recs if (r.commit[:8], r.env_name) != (newest.commit[:8], newest.env_name)
              and r.case_digest == newest.case_digest]
    return (before[-1] if before else None), newest


def _cell(key: tuple, cell: dict) -> dict:
    return {"case": key[0], "method": key[1], "context": key[2], "outcome": cell.get("outcome"),
            "expected": cell.get("expected"), "root_cause": cell.get("root_cause")}


def newest_json(state: str, newest, previous, review: dict | None, status: int, md: str) -> dict:
    """The ``--json`` document: ``state`` is ``first``, ``no-new-release`` or ``reviewed`` (``review`` is the
    review of ``previous`` against ``newest`` then); ``flips`` holds the review's cells by kind (broken, fixed,
    ...), ``surprises`` the newest record's cells that differ from their case's expectation."""
    return {"kind": KIND, "state": state, "python": newest.python, "env": newest.short_label,
            "key": newest.key, "commit": newest.commit, "versions": newest.version_label(),
            "previous": previous.key if previous else None, "exit_status": status,
            "verdict": review["verdict"] if review else md.strip().splitlines()[-1],
            "changed": review["changed"] if review else [],
            "flips": review["flips"] if review else {},
            "surprises": [_cell(k, c) for k, c in sorted(newest.cells.items()) if c.get("surprise")],
            "markdown": md}


def run(args, results: Path) -> int:
    """``review --newest`` (the command line is picklematrix.cli's, the command picklematrix.report.reviewing's):
    print the review, write it beside the results."""

    rs = load_results(results)
    previous, newest = newest_pair(rs)
    label = ", ".join(newest.version_label())
    out_dir = Path(args.out) if args.out else results / "reviews"
    state = out_dir / STATE
    this = f"{newest.machine}/{newest.commit[:8]}-{newest.env_name}"
    seen = state.read_text().strip() if state.is_file() else None
    if seen == this:
        md = (f"## picklematrix: the newest releases\n\nNo new release since the last run: still {label} "
              f"({newest.short_label}).\n")
        status, day, review = EXIT_OK, "no-new-release", None
    elif previous is None:
        md = (f"## picklematrix: the newest releases\n\nFirst record: {label} ({newest.short_label}). The next "
              "scheduled run compares with it.\n")
        status, day, review = EXIT_OK, "first", None
    else:
        review = build_review(rs, previous, newest, args.factor)
        if previous.commit[:8] != newest.commit[:8]:
            review["warnings"].insert(0, f"the harness changed between the two records (fingerprint "
                                         f"{previous.commit[:8]} -> {newest.commit[:8]}): a flip may come from "
                                         "the harness, not from a release")
        if not review["changed"]:
            review["warnings"].insert(0, "no new release: the same versions, recorded again by a newer harness")
        _, html = write_review(review, out_dir)
        md = render_review_md(review, str(html)).replace("## picklematrix review:", "## picklematrix: the newest "
                                                         "releases:", 1)
        status, day = review["exit_status"], "reviewed"
    out_dir.mkdir(parents=True, exist_ok=True)
    state.write_text(this + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(newest_json(day, newest, previous, review, status, md), indent=1,
                                              default=str))
    if not args.quiet:
        print(md)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if args.step_summary and summary:
        with open(summary, "a") as f:
            f.write(md + "\n")
    print(f"review --newest: {newest.key} at {newest.commit[:8]}"
          + (f" against {previous.key} at {previous.commit[:8]}" if previous else ""), file=sys.stderr)
    return status
