"""``picklematrix review`` and ``./nox -s review``: picking the envs to review, reviewing them, writing the review.

    picklematrix review --from ENV --to ENV [--results DIR] [--factor 1.1] [--aa MACHINE]
    picklematrix review --change pydantic=2.8.2..2.9.2 [--base ENV]
    picklematrix review --change pydantic=2.9.2 [--from ENV | --base ENV]
    picklematrix review --base-rev BASE [--head-rev HEAD] [--json PATH]   (a pull request)
    picklematrix review --newest [--step-summary]      (the newest releases, on a schedule)

The command line is picklematrix.cli's (``./nox -s review -- ...`` parses the same; the session records envs
named on demand first, picklematrix.record.sessions). ENV is an env id (``cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11``),
asv's env name, ``<machine>/<env>`` when several machines recorded it, or ``name=version[,name=version]``
(``pydantic=2.8.2``, ``pydantic=absent``) when that picks one env. A version change ``NAME=A..B`` reviews the env
with NAME=A (the baseline's when it qualifies) against the env that differs from it only in NAME=B; ``NAME=B``
starts from ``--from``, else ``--base``, else the profile's baseline.

The verdict comes first: a line of counts (cells fixed, broken, still failing unexpectedly with the ones failing
as their cases expect in brackets, not compared; timings slower and faster beyond ``--factor``), then what it
means. Sections follow, changes first: broken (pass -> fail), not compared (a partial record, a cell only one side
has), slower, faster, fixed (fail -> pass), still failing unexpectedly (fail -> fail where the case expects
otherwise, grouped by case and root cause), other changes (e.g. pass -> ran-locally), and the count of cells
failing as their cases expect. Timing changes are decided by asv compare's rule (the factor, and the 99% confidence
intervals must not overlap: :func:`picklematrix.report.compare.faster_beyond`). Noise: when the from-env (or the
baseline) was recorded twice (``PICKLEMATRIX_REPLICATE=2 nox -s matrix`` records a copy under machine
``<machine>-rep2``), the same test runs on that A/A pair; any change there makes the threshold unsafe, and the
review says from which factor on the A/A pair is quiet.

Writes markdown to stdout and ``<results>/reviews/<from>..<to>.md``, and HTML to ``.html`` next to it
(``nox -s report`` links it from the matrix page). The markdown fits a PR comment (65,536 characters) for any
profile: a section that does not fit says how many rows it left out, and the end names the HTML file, which has
everything. Exit status: 0 nothing broke, nothing got slower beyond the threshold, every cell compared; 1 some cell
broke or got slower, or some cell could not be compared; 2 bad input (unknown env, no results, an env that could
not be built).
"""

from __future__ import annotations

import sys
from pathlib import Path

from picklematrix.report import latest, revs
from picklematrix.report.checkout import CheckoutError, default_results_dir, matrix_order, resolve_checkout
from picklematrix.report.compare import (
    EXIT_BAD_INPUT,
    build_review,
    resolve_change,
    resolve_env,
)
from picklematrix.report.problems import BadInput
from picklematrix.report.results import load_results, only_corpus
from picklematrix.report.review import render_review_md, write_review


def run(args) -> int:
    """``picklematrix review`` and ``./nox -s review``: pick the envs, review them, write the review."""
    try:
        if args.base_rev or args.head_rev:
            if not args.base_rev or args.from_env or args.to_env or args.change:
                raise BadInput("--base-rev REV [--head-rev REV] reviews every env of the profile between two "
                               "revisions; it takes no --from/--to/--change")
            checkout = resolve_checkout(args.checkout)
            return revs.run(args, checkout, Path(args.results) if args.results else default_results_dir(checkout))
        if args.newest:
            if args.from_env or args.to_env or args.change:
                raise BadInput("--newest reviews the two newest records; it takes no --from/--to/--change")
            return latest.run(args, Path(args.results) if args.results else default_results_dir(
                resolve_checkout(args.checkout)))
        change = args.change
        if change is not None and args.to_env:
            raise BadInput(f"--change {change} names the env after the change: give it or --to, not both")
        if change is None and not (args.from_env and args.to_env):
            raise BadInput("say what to review: --from ENV --to ENV, or --change NAME=[A..]B")
        checkout = resolve_checkout(args.checkout)
        results = Path(args.results) if args.results else default_results_dir(checkout)
        _, baseline = matrix_order(checkout, args.profile)
        # like with like: the records of the corpus asked for (--cases, else the built-in one)
        rs = only_corpus(load_results(results, args.commit, checkout), getattr(args, "cases", None))
        if change is not None:
            a, b = resolve_change(rs, change, args.base, baseline, start=args.from_env)
        else:
            a = resolve_env(rs, args.from_env, "from")
            b = resolve_env(rs, args.to_env, "to")
        if a.key == b.key:
            raise BadInput(f"--from and --to are the same environment ({a.key})")
        review = build_review(rs, a, b, args.factor, args.aa, baseline)
    except (BadInput, CheckoutError) as e:
        print(f"picklematrix review: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    md, html = write_review(review, Path(args.out) if args.out else results / "reviews")
    if not args.quiet:
        print(render_review_md(review, str(html)))
    print(f"review: {md}\n        {html}  (nox -s report links it from the matrix page)", file=sys.stderr)
    return review["exit_status"]

