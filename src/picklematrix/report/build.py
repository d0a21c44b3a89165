"""``nox -s report`` and ``picklematrix report``: the whole report built in order (asv's site, web assets, reviews,
the table). The command line is picklematrix.cli's; ``python -m picklematrix.report`` is the same command.

    picklematrix report [--results DIR] [--html DIR] [--commit REV] [--checkout DIR] [--env SPEC] [--strict]

Runs in the orchestrating environment (asv 0.6.6, jinja2; see ``picklematrix.envs.venvs.tools_python``), from the
checkout (or with ``--checkout``): asv's configuration and matrix.toml are the checkout's.

- ``asv publish`` runs over a *staged* copy of the results holding only files that load, so one truncated
  or foreign file costs that file, named in the report, and never the whole site.
- asv's pages are made to work offline from pinned npm packages (:mod:`picklematrix.report.assets`).
- The matrix page (``<html>/matrix.html``), ``<results>/table.md`` and ``<results>/table.json`` show the
  outcome table of one harness commit: rows are cases, columns environments, a cell holds the outcome of
  every compute method x context.

Exit status: 0 built (problems with individual result files are listed, not fatal); 1 built only in part
(asv publish or the web assets failed; or ``--strict`` and some result file had a problem); 2 bad input
(no results, unknown ``--commit``, a ``--checkout`` that is not one, an ``--env`` that matches no recorded env).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from picklematrix.record.asvconf import AsvConfigError, default_html_dir
from picklematrix.report.assets import AssetError, localize_site, remote_loads
from picklematrix.report.asv_site import add_graph_fixes, add_nav_link, start_publish
from picklematrix.report.checkout import CheckoutError, default_results_dir, matrix_order, resolve_checkout
from picklematrix.report.compare import DEFAULT_FACTOR, build_review, measure_noise
from picklematrix.report.envmatch import select_envs
from picklematrix.report.problems import BadInput, Problem
from picklematrix.report.render import render_table_html, render_table_md
from picklematrix.report.results import ResultSet, load_results
from picklematrix.report.review import render_review_html
from picklematrix.report.table import build_table

EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT = 0, 1, 2
TABLE_FILES = ("table.json", "table.md")


@dataclass
class ReportOutcome:
    """What ``build_report`` made, and what went wrong on the way."""

    site: Path
    table: dict
    problems: list  # Problems with result files
    failures: list  # parts of the report that could not be built
    assets: list = field(default_factory=list)


def site_dir(results_dir: Path, html_dir=None, checkout: Path | None = None) -> Path:
    """``html_dir``, else the checkout's asv ``html_dir`` for its own results, else ``<results>/../html``."""
    if html_dir:
        return Path(html_dir).resolve()
    if checkout is not None:
        try:
            return default_html_dir(checkout, results_dir)
        except AsvConfigError:
            pass  # start_publish names the unreadable configuration
    return results_dir.resolve().parent / "html"


def build_report(results_dir, html_dir=None, commit=None, asset_cache=None, checkout: Path | None = None,
                 log=print, envs=()) -> ReportOutcome:
    """Everything ``nox -s report`` writes. Raises BadInput when there is nothing to report, or when one of
    ``envs`` (env specs, picklematrix.report.envmatch) matches no recorded env; with ``envs``, the table, the
    matrix page and the baseline reviews show only the envs they match (asv's own site shows every env)."""
    results_dir = Path(results_dir).resolve()
    site = site_dir(results_dir, html_dir, checkout)
    everything = load_results(results_dir, commit, checkout)
    rs = select_envs(everything, list(envs))  # before anything is written: an unmatched spec changes nothing
    failures: list[str] = []
    site.parent.mkdir(parents=True, exist_ok=True)
    # asv writes its site (replacing the directory) while the report renders its own pages: they are written after
    publishing = start_publish(everything, site, checkout)
    for key, added in publishing.widened.items():
        rs.problems.append(Problem(str(results_dir / "benchmarks.json"),
                                   f"lists fewer params for {key} than the results have (an `asv run` with "
                                   f"PICKLEMATRIX_ONLY rewrote it); widened for the report by {added}"))
    order, baseline = matrix_order(checkout)
    table = build_table(rs, order, baseline)
    saved = saved_reviews(results_dir)
    made, pages = baseline_reviews(rs, table, failures, skip={r["href"] for r in saved})
    reviews = saved + made
    texts = {"matrix.html": render_table_html(table, reviews),
             # compact: the C encoder (an indented dump is pure Python, seconds for a full profile)
             "table.json": json.dumps(table, separators=(",", ":")) + "\n", "table.md": render_table_md(table)}
    ok, output = publishing.wait()
    assets = []
    if not ok:
        failures.append(f"asv publish failed; the matrix page is still written:\n{output[-4000:]}")
        site.mkdir(parents=True, exist_ok=True)
    else:
        log(f"asv publish: {site / 'index.html'}")
        try:
            assets = localize_site(site, Path(asset_cache) if asset_cache else None)
        except (AssetError, OSError) as e:
            failures.append(f"asv's pages still load their scripts from CDNs (no internet, no graphs): {e}")
        index = site / "index.html"
        # one harness commit: asv's default x axis (commits) is one column of points; show the methods instead
        commits = {r.commit for r in everything.recordings if r.asv_path is not None}
        index.write_text(add_graph_fixes(add_nav_link(index.read_text()), site,
                                         default_x_axis="method" if len(commits) <= 1 else None))
    if saved or pages:
        (site / "reviews").mkdir(exist_ok=True)
    for review in saved:
        shutil.copy2(results_dir / review["href"], site / review["href"])
    for name, page in pages.items():
        (site / name).write_text(page)
    (site / "matrix.html").write_text(texts.pop("matrix.html"))
    for where in (results_dir, site):
        for name, text in texts.items():
            (where / name).write_text(text)
    if ok and not any("CDNs" in f for f in failures):
        for page in site.glob("*.html"):
            remote = remote_loads(page.read_text())
            if remote:
                failures.append(f"{page} still loads from other hosts: {', '.join(remote)}")
    return ReportOutcome(site, table, rs.problems, failures, assets)


def baseline_reviews(rs: ResultSet, table: dict, failures: list, skip=frozenset()) -> tuple[list, dict]:
    """A review of baseline -> each other env (same machine), linked from the matrix page's column headers:
    (what the matrix page shows of each, {path in the site: its page}).

    A review of the same pair saved by ``nox -s review`` (in ``skip``) is kept as it is.
    """
    base = next((e for e in table["environments"] if e["baseline"]), None)
    if base is None:
        return [], {}
    by_key = {r.key: r for r in rs.current()}
    out, pages = [], {}
    noise = None  # every review here starts from the baseline: its A/A pair is measured once
    for e in table["environments"]:
        if e["kind"] != "result" or e["replica_of"] or e["key"] == base["key"] or e["machine"] != base["machine"]:
            continue
        if by_key[e["key"]].case_digest != by_key[base["key"]].case_digest:  # like with like: one corpus
            continue
        try:
            if noise is None:
                noise = measure_noise(rs, by_key[base["key"]], DEFAULT_FACTOR, None, table["baseline"])
            review = build_review(rs, by_key[base["key"]], by_key[e["key"]], baseline=table["baseline"], noise=noise)
            name = f"reviews/{review['slug']}.html"
            if name in skip:
                continue
            pages[name] = render_review_html(review)
        except Exception as exc:  # noqa: BLE001 -- one review must not cost the page; the failure is reported
            failures.append(f"review {base['env_id']} -> {e['env_id']}: {type(exc).__name__}: {exc}")
            continue
        out.append({"href": name, "from": review["from"]["label"], "to": review["to"]["label"],
                    "from_key": base["key"], "to_key": e["key"], "verdict": review["verdict"],
                    "status": review["exit_status"]})
    return out, pages


def saved_reviews(results_dir: Path) -> list:
    """Reviews written by ``nox -s review`` (``<results>/reviews/*.html``), as the matrix page lists them (the
    report copies them into the site)."""
    out = []
    for page in sorted((results_dir / "reviews").glob("*.html")):
        try:
            info = json.loads(page.with_suffix(".meta").read_text())
        except (OSError, ValueError):
            info = {}
        out.append({"href": f"reviews/{page.name}", "from": info.get("from", page.stem), "to": info.get("to", ""),
                    "from_key": info.get("from_key"), "to_key": info.get("to_key"),
                    "verdict": info.get("verdict", ""), "status": info.get("exit_status")})
    return out


def run(args) -> int:
    """``picklematrix report`` and ``./nox -s report``: the whole report, from parsed arguments."""
    try:
        checkout = resolve_checkout(args.checkout)
        results = Path(args.results) if args.results else default_results_dir(checkout)
        out = build_report(results, args.html, args.commit, args.asset_cache, checkout, envs=args.env or [])
    except (BadInput, CheckoutError) as e:
        print(f"picklematrix report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for p in out.problems:
        print(f"warning: {p}", file=sys.stderr)
    for f in out.failures:
        print(f"error: {f}", file=sys.stderr)
    # the last line says how to look at it: `preview` finds the site where the report put it by default
    default = site_dir(results.resolve(), None, checkout) == out.site
    print(f"matrix page: {out.site / 'matrix.html'}\nasv site:    {out.site / 'index.html'}\n"
          f"table:       {', '.join(str(results / name) for name in TABLE_FILES)}\n"
          f"preview:     ./nox -s preview{'' if default else f' -- --html {out.site}'}   "
          f"(or: picklematrix preview --html {out.site})")
    if out.failures or (args.strict and out.problems):
        return EXIT_PARTIAL
    return EXIT_OK
