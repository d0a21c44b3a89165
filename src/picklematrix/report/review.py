"""``nox -s review -- --from ENV --to ENV``: what a dependency upgrade changes, told apart from noise.

    python -m picklematrix.report.review --from ENV --to ENV [--results DIR] [--factor 1.1] [--aa MACHINE]
    python -m picklematrix.report.review --change pydantic=2.8.2..2.9.2 [--base ENV]
    python -m picklematrix.report.review --from pydantic=2.8.2..2.9.2
    python -m picklematrix.report.review --base-rev BASE [--head-rev HEAD] [--json PATH]   (a pull request)
    python -m picklematrix.report.review --newest [--step-summary]      (the newest releases, on a schedule)

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
import json
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
from picklematrix.report.render import MD_LIMIT, cell_md, md_code, md_prose, md_text, render_page, short_method
from picklematrix.report.results import BadInput, load_results
from picklematrix.run.corpus import ABSENT

FLIP_TITLES = {"fixed": "Fixed (fail → pass)", "broken": "Broken (pass → fail)",
               "failure-changed": "Failure changed (another failure or root cause)",
               "other": "Other outcome changes"}


def seconds(v) -> str:
    """A timing for people: µs, ms or s; ``–`` for none."""
    if v is None:
        return "–"
    if v < 1e-3:
        return f"{v * 1e6:.0f} µs"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.3f} s"


def _outcome_md(v: dict | None) -> str:
    return cell_md(v, limit=200, mark=False)


CHANGED_MARK = " \\*"  # a still-failing cell whose failure changed (markdown-escaped star)


def _cells_md(cells: list) -> str:
    return ", ".join(f"{short_method(c['method'])} @ {md_text(c['context'])}" for c in cells)


def _rc_md(rc: dict | None, limit: int = 200) -> str:
    return md_code(f"{rc['type']}: {rc['message']}"[:limit]) if rc else "–"


def _sections_md(review: dict) -> list:
    """(title, header lines, row lines) in the order a reviewer needs them: what changed, then what did not."""
    f, t = review["flips"], review["timing"]
    out = []
    flip_head = ["| case | method | context | before | after |", "|---|---|---|---|---|"]

    def flips(kind):
        return [f"| {md_code(x['case'])}{' (flaky in A/A)' if x.get('flaky') else ''} | {md_text(x['method'])} | "
                f"{md_text(x['context'])} | {_outcome_md(x['before'])} | {_outcome_md(x['after'])} |" for x in f[kind]]

    out.append((FLIP_TITLES["broken"], flip_head, flips("broken")))
    missing = review["not_compared"]
    if missing["message"]:
        head = [md_prose(f"Not every cell could be compared: {missing['message']}."), ""]
        if review["only_from"] or review["only_to"]:
            head += [f"Cells only in the from-env: {len(review['only_from'])}; only in the to-env: "
                     f"{len(review['only_to'])} (a different corpus or a partial run).", ""]
        if missing["cells"]:
            head += ["| case | method | context | missing in |", "|---|---|---|---|"]
        out.append(("Not compared", head,
                    [f"| {md_code(c['case'])} | {md_text(c['method'])} | {md_text(c['context'])} | "
                     f"{md_code(c['missing_in'])} |" for c in missing["cells"]]))
    for kind, title in (("slower", "Slower"), ("faster", "Faster")):
        out.append((f"{title} beyond ×{review['factor']:g}",
                    ["| case | method | context | before | after | ratio |", "|---|---|---|---:|---:|---:|"],
                    [f"| {md_code(x['case'])} | {md_text(x['method'])} | {md_text(x['context'])} | "
                     f"{seconds(x['before'])} | {seconds(x['after'])} | {x['ratio']:.2f} |" for x in t[kind]]))
    out.append((FLIP_TITLES["fixed"], flip_head, flips("fixed")))
    still = review["still_failing"]
    n = sum(len(g["cells"]) for g in still)
    out.append((f"Still failing ({n} cell(s) in {len({g['case'] for g in still})} case(s))",
                ["What the change does not fix, by case and root cause after it (* = the failure changed).", "",
                 "| case | outcome after | root cause after | cells |", "|---|---|---|---|"],
                [f"| {md_code(g['case'])}{CHANGED_MARK if g['changed'] else ''} | {md_text(g['outcome'])} | "
                 f"{_rc_md(g['root_cause'])} | {_cells_md(g['cells'])} |" for g in still]))
    out.append((FLIP_TITLES["other"], flip_head, flips("other")))
    return [s for s in out if s[2] or s[0] == "Not compared"]


def render_review_md(review: dict, full_review: str | None = None) -> str:
    """The review as markdown: what stdout shows and ``<slug>.md`` holds.

    It fits a PR comment (GitHub: 65,536 characters) whatever the profile's size: the verdict and the cells
    that changed come first; a section that does not fit ends with how many rows were left out, and the page
    says where the whole review is (``full_review``: the HTML file).
    """
    a, b = review["from"], review["to"]
    lines = [f"## picklematrix review: {md_code(a['label'])} → {md_code(b['label'])}", ""]
    mark = "❌" if review["exit_status"] else "✅"
    counts, meaning = review["verdict_lines"]
    lines += [f"**{mark} {md_prose(counts)}**", "", f"{md_prose(meaning[:1].upper() + meaning[1:])}. "
              f"(exit status {review['exit_status']})", ""]
    if review["changed"]:
        lines.append("Changed: " + ", ".join(f"**{c['name']}** {c['from'] or ABSENT} → {c['to'] or ABSENT}"
                                             for c in review["changed"]) + ".")
    lines += [f"From {md_text(a['version_label'])} on {md_code(a['machine'])}; to "
              f"{md_text(b['version_label'])} on {md_code(b['machine'])}; harness commit "
              f"{md_code(review['commit'][:8])}. {review['cells_compared']} cells compared, "
              f"{review['timing']['compared']} timings compared.", "",
              f"**Noise:** {md_prose(review['noise']['message'])}.", ""]
    if review["warnings"]:
        lines += ["### Warnings", ""] + [f"- {md_prose(w)}" for w in review["warnings"][:20]]
        if len(review["warnings"]) > 20:
            lines.append(f"- … and {len(review['warnings']) - 20} more")
        lines.append("")
    if review["harness_errors"]:
        lines += [f"Harness errors in the to-env: {len(review['harness_errors'])} cell(s) could not be run.", ""]
    where = full_review or f"reviews/{review['slug']}.html"
    budget = MD_LIMIT - 400 - len(where)
    size = sum(len(x) + 1 for x in lines)
    cut = False
    for title, head, rows in _sections_md(review):
        block = [f"### {title}", ""] + head
        cost = sum(len(x) + 1 for x in block)
        if size + cost + 200 > budget:
            lines += [f"### {title}", "", f"{len(rows)} row(s) left out to fit a PR comment.", ""]
            size += 100
            cut = True
            continue
        lines += block
        size += cost
        for i, row in enumerate(rows):
            if size + len(row) + 1 > budget - 200:
                lines.append(f"\n… and {len(rows) - i} more row(s), left out to fit a PR comment.")
                size += 80
                cut = True
                break
            lines.append(row)
            size += len(row) + 1
        lines.append("")
    if cut:
        lines += [f"**The review is cut to fit a PR comment; the whole review is in {md_code(where)}.**", ""]
    return "\n".join(lines)


def render_review_html(review: dict) -> str:
    """The review as a page of the site (``reviews/<slug>.html``, linked from the matrix page)."""
    return render_page("review.html.j2", r=review, titles=FLIP_TITLES, seconds=seconds)


def write_review(review: dict, out_dir: Path) -> tuple[Path, Path]:
    """``<slug>.md``, ``<slug>.html`` and the ``.meta`` the matrix page reads, in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{review['slug']}.md"
    html = out_dir / f"{review['slug']}.html"
    md.write_text(render_review_md(review, str(html)))
    html.write_text(render_review_html(review))
    # what the matrix page shows about it (not .json: asv would try to read that as a result file)
    html.with_suffix(".meta").write_text(json.dumps({
        "from": review["from"]["label"], "to": review["to"]["label"], "verdict": review["verdict"],
        "from_key": review["from"]["key"], "to_key": review["to"]["key"],
        "exit_status": review["exit_status"], "commit": review["commit"]}))
    return md, html


# --------------------------------------------------------------------------- command line


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
