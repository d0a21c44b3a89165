"""``picklematrix review`` and ``./nox -s review``: picking the envs to review, reviewing them, writing the review.

    python -m picklematrix.report.reviewing --from ENV --to ENV [--results DIR] [--factor 1.1] [--aa MACHINE]
    python -m picklematrix.report.reviewing --change pydantic=2.8.2..2.9.2 [--base ENV]
    python -m picklematrix.report.reviewing --from pydantic=2.8.2..2.9.2
    python -m picklematrix.report.reviewing --base-rev BASE [--head-rev HEAD] [--json PATH]   (a pull request)
    python -m picklematrix.report.reviewing --newest [--step-summary]      (the newest releases, on a schedule)

ENV is an env id (``cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11``), asv's env name, ``<machine>/<env>`` when several
machines recorded it, or ``name=version[,name=version]`` (``pydantic=2.8.2``, ``pydantic=absent``) when that
picks one env. A version change ``NAME=A..B`` reviews the env with NAME=A (the baseline's when it qualifies)
against the env that differs from it only in NAME=B.

The verdict comes first: a line of counts (cells fixed, broken, still failing, not compared; timings slower and
faster beyond ``--factor``), then what it means. Sections follow, changes first: broken (pass -> fail), not
compared (a partial record, a cell only one side has), slower, faster, fixed (fail -> pass), still failing
(fail -> fail, grouped by case and root cause: what the change does not fix), other changes (e.g.
pass -> ran-locally). Timing changes are decided by asv compare's rule (the factor, and the 99% confidence
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

import argparse
import math
import sys
from pathlib import Path

from picklematrix.report import latest, revs
from picklematrix.report.checkout import CheckoutError, default_results_dir, matrix_order, resolve_checkout
from picklematrix.report.compare import (
    CHANGE,
    DEFAULT_FACTOR,
    EXIT_BAD_INPUT,
    build_review,
    resolve_change,
    resolve_env,
)
from picklematrix.report.problems import BadInput
from picklematrix.report.results import load_results
from picklematrix.report.review import render_review_md, write_review


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picklematrix review",
                                description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit status: 0 nothing broke or got slower, every cell compared; 1 something did, "
                                       "or some cell could not be compared; 2 bad input")
    p.add_argument("--from", dest="from_env", metavar="ENV", help="the env before (or a change NAME=A..B)")
    p.add_argument("--to", dest="to_env", metavar="ENV", help="the env after")
    p.add_argument("--change", metavar="NAME=A..B", help="a version change, e.g. pydantic=2.8.2..2.9.2")
    p.add_argument("--base", metavar="ENV", help="with a version change: the env to start from")
    p.add_argument("--results", help="results directory (default: $PICKLEMATRIX_RESULTS or <checkout>/results)")
    p.add_argument("--checkout", metavar="DIR", help="the picklematrix checkout: its matrix.toml names the "
                                                    "baseline (default: the current directory)")
    p.add_argument("--commit", help="harness commit to review at (default: the checked-out one if it has "
                                    "results, else the one with the most envs)")
    p.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                   help=f"timing threshold, as in asv compare (default {DEFAULT_FACTOR})")
    p.add_argument("--aa", metavar="MACHINE", help="machine holding the A/A copy of the from-env "
                                                  "(default: <machine>-rep<i>)")
    p.add_argument("--out", help="where the .md/.html go (default: <results>/reviews)")
    p.add_argument("--quiet", action="store_true", help="no markdown on stdout")
    pr = p.add_argument_group("a pull request: every env of the profile at one revision against another "
                              "(picklematrix.report.revs)")
    pr.add_argument("--base-rev", metavar="REV", help="the base revision (a pull request's base commit)")
    pr.add_argument("--head-rev", metavar="REV", help="the head revision (default: HEAD)")
    pr.add_argument("--json", metavar="PATH", help="with --base-rev: where the review's JSON goes (default: "
                                                   "<results>/reviews/<base8>..<head8>.review.json)")
    new = p.add_argument_group("the newest releases: the newest record against the one before it "
                               "(picklematrix.report.latest)")
    new.add_argument("--newest", action="store_true", help="review the record before the newest against the "
                                                           "newest (a scheduled run against `latest`)")
    new.add_argument("--step-summary", action="store_true", help="with --newest: append the review to "
                                                                 "$GITHUB_STEP_SUMMARY")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.factor <= 1.0 or not math.isfinite(args.factor):
            raise BadInput(f"--factor {args.factor}: must be a number > 1 (1.1 = 10% slower)")
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
        if change is None and args.from_env and args.to_env is None and CHANGE.match(args.from_env):
            change = args.from_env
        if change is None and not (args.from_env and args.to_env):
            raise BadInput("say what to review: --from ENV --to ENV, or --change NAME=A..B")
        checkout = resolve_checkout(args.checkout)
        results = Path(args.results) if args.results else default_results_dir(checkout)
        _, baseline = matrix_order(checkout)
        rs = load_results(results, args.commit, checkout)
        if change is not None:
            a, b = resolve_change(rs, change, args.base, baseline)
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


if __name__ == "__main__":
    sys.exit(main())
