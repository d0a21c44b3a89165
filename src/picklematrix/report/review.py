"""The review as markdown and as a page: what a dependency upgrade changes, told apart from noise.

The verdict comes first: a line of counts (cells fixed, broken, still failing unexpectedly with the ones failing
as their cases expect in brackets, not compared; timings slower and faster beyond the factor), then what it
means. Sections follow, changes first: broken (pass -> fail), not compared (a partial record, a cell only one side
has), slower, faster, fixed (fail -> pass), still failing unexpectedly (fail -> fail where the case expects
otherwise, grouped by case and root cause: what the change does not fix), other changes (e.g.
pass -> ran-locally), and the count of cells failing as their cases expect (listed in the HTML only). The HTML
also draws the timing changes as a chart (:func:`timing_chart`). The review as data is picklematrix.report.compare's; the command that picks what to review
is picklematrix.report.reviewing's.

The markdown fits a PR comment (65,536 characters) for any profile: a section that does not fit says how many
rows it left out, and the end names the HTML file, which has everything.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from picklematrix.report.render import MD_LIMIT, cell_md, md_code, md_prose, md_text, render_page, short_method
from picklematrix.report.table import AS_EXPECTED
from picklematrix.versions import ABSENT

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
EXPECTED_TITLE = "Failing as expected"


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
    loud = [g for g in review["still_failing"] if g["expectation"] != AS_EXPECTED]
    n = sum(len(g["cells"]) for g in loud)
    out.append((f"Still failing unexpectedly ({n} cell(s) in {len({g['case'] for g in loud})} case(s))",
                ["What the change does not fix and the case does not expect, by case and root cause after it "
                 "(* = the failure changed).", "",
                 "| case | outcome after | the case expects | root cause after | cells |", "|---|---|---|---|---|"],
                [f"| {md_code(g['case'])}{CHANGED_MARK if g['changed'] else ''} | {md_text(g['outcome'])} | "
                 f"{md_text(g['expected'] or 'not recorded')} | {_rc_md(g['root_cause'])} | {_cells_md(g['cells'])} |"
                 for g in loud]))
    out.append((FLIP_TITLES["other"], flip_head, flips("other")))
    quiet = [g for g in review["still_failing"] if g["expectation"] == AS_EXPECTED]
    if quiet:  # a count, never a list: these fail as their cases say they must
        out.append((EXPECTED_TITLE, [f"{sum(len(g['cells']) for g in quiet)} cell(s) in "
                                     f"{len({g['case'] for g in quiet})} case(s) fail before and after, as their cases "
                                     "expect; the HTML review lists them."], []))
    return [s for s in out if s[2] or s[0] in ("Not compared", EXPECTED_TITLE)]


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
              f"{md_code(review['commit'][:8])}; {md_text(review.get('corpus') or 'the built-in corpus')}. "
              f"{review['cells_compared']} cells compared, "
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


CHART = {"width": 960, "height": 260, "left": 64, "right": 16, "top": 14, "bottom": 34}
TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def timing_chart(review: dict) -> dict | None:
    """The timing changes as a chart's geometry (the review page draws it as inline SVG): one dot per timed cell,
    in case order, at its ratio after/before on a log scale (up: slower), the dashed lines of ``--factor`` either
    way, and the A/A pair's range of ratios as a band (the noise: the same env measured twice). None without a
    timed cell on both sides."""
    cells = [c for c in review["timing"].get("cells", []) if c["ratio"] == c["ratio"]]  # (NaN: nothing to draw)
    if not cells:
        return None
    g = dict(CHART)
    top, bottom = g["top"], g["height"] - g["bottom"]
    left, right = g["left"], g["width"] - g["right"]
    factor, band = review["factor"], review["noise"].get("band")
    limit = math.log(100.0)

    def log(r):
        return max(-limit, min(limit, math.log(r))) if r > 0 else -limit

    span = max([abs(log(c["ratio"])) for c in cells] + [math.log(factor) * 1.6, math.log(1.25)]
               + ([abs(log(band[0])), abs(log(band[1]))] if band else []))

    def y(r):
        return round(top + (span - log(r)) / (2 * span) * (bottom - top), 2)

    step = (right - left) / len(cells)
    dot = 3.5 if len(cells) <= 120 else 2.5 if len(cells) <= 400 else 1.8
    g["points"] = [{"x": round(left + (i + 0.5) * step, 2), "y": y(c["ratio"]), "r": dot, "change": c["change"] or "same",
                    "ratio": c["ratio"], "title": f"{c['case']} {c['method']} @ {c['context']}: {seconds(c['before'])} → "
                                                  f"{seconds(c['after'])} (×{c['ratio']:.2f})"
                                                  + (f", {c['change']} beyond ×{factor:g}" if c["change"] else "")}
                   for i, c in enumerate(cells)]
    g["band"] = ({"y": y(band[1]), "h": round(y(band[0]) - y(band[1]), 2), "lo": band[0], "hi": band[1]}
                 if band else None)
    # the labels outside the band between the two lines: "slower" above its line, "faster" below its own
    g["lines"] = [{"y": y(factor), "label": f"×{factor:g} slower", "label_y": y(factor) - 4},
                  {"y": y(1 / factor), "label": f"×{factor:g} faster", "label_y": y(1 / factor) + 12}]
    g["one"] = y(1.0)
    g["ticks"] = [{"y": y(t), "label": f"×{t:g}"} for t in TICKS if abs(math.log(t)) <= span]
    g["plot"] = {"left": left, "right": right, "top": top, "bottom": bottom}
    g["counts"] = {k: sum(1 for c in cells if c["change"] == k) for k in ("slower", "faster")}
    g["n"] = len(cells)
    return g


def render_review_html(review: dict) -> str:
    """The review as a page of the site (``reviews/<slug>.html``, linked from the matrix page)."""
    return render_page("review.html.j2", r=review, titles=FLIP_TITLES, seconds=seconds, chart=timing_chart(review))


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


