"""Rendering: the jinja environment and pages, markdown escaping, and the table as the matrix page and table.md."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from picklematrix.outcomes import OUTCOMES, PASS, RAN_LOCALLY
from picklematrix.report.asv_site import asv_graph_url
from picklematrix.report.naming import error_explanation
from picklematrix.report.table import AS_EXPECTED, BAD, UNEXPECTED, UNKNOWN
from picklematrix.run.selection import COMPUTE, OUTCOME

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Short marks for the table's cells; the legend on the page spells them out.
OUTCOME_MARKS = {
    "pass": "✓", "wrong-result": "W", "serialize-error": "S", "deserialize-error": "D", "task-error": "T",
    "ran-locally": "L", "timeout": "Z", "worker-died": "K", "not-applicable": "·", "harness-error": "H",
    "client-died": "C",
}

MD_LIMIT = 60000  # a GitHub comment holds 65536 characters

# A code span in our own messages (problems, the review's noise line): "re-run `nox -s matrix`".
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def short_method(name: str) -> str:
    return {"dask.compute": "d.c", "dask.compute(client=)": "d.c(client=)", "Client.compute": "C.c"}.get(name, name)


def outcome_class(outcome: str | None) -> str:
    """The CSS class of an outcome's colour (``o-missing`` for a cell that was not run)."""
    return "o-missing" if outcome is None else "o-" + outcome


def html_prose(text):
    """One of our messages as HTML: escaped, its `...` spans as ``<code>``."""
    from markupsafe import Markup, escape

    text = str(text)
    parts, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        parts += [escape(text[pos:m.start()]), Markup("<code>%s</code>") % m.group(2)]
        pos = m.end()
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


@functools.lru_cache(maxsize=None)
def jinja_env():
    """The templates' environment: autoescaping (root causes hold text like ``<lambda>``), strict undefined.

    One per process: each template is compiled once (a report renders a review page per env)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["plural"] = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")
    env.filters["prose"] = html_prose
    env.filters["page_json"] = page_json
    env.globals.update(marks=OUTCOME_MARKS, outcome_list=OUTCOMES, asv_graph_url=asv_graph_url, bar_width=BAR_WIDTH,
                       short_method=short_method, outcome_class=outcome_class,
                       outcome_benchmark=OUTCOME, compute_benchmark=COMPUTE)
    return env


@functools.lru_cache(maxsize=None)
def _stylesheet() -> str:
    return (TEMPLATES / "picklematrix.css").read_text()


def render_page(template: str, **context) -> str:
    """Render one of the package's templates, with the shared stylesheet inlined (the pages stand alone)."""
    css = _stylesheet()
    return jinja_env().get_template(template).render(css=css, **context)


def render_table_html(table: dict, reviews: list) -> str:
    """The matrix page: the table with filters, root causes, links to asv's graphs and to reviews.

    At full-profile size (120 envs x 82 cases x 6 cells: 59,000 cells) the page must open in a browser in seconds.
    The page holds its cells as one compact JSON block (:func:`page_data`); its script draws a row's cells when
    the row comes near the screen, a cell's tooltip when the pointer reaches it and a case's root causes when it
    is opened, and filters on the data, never on the drawn cells.
    """
    families = list(dict.fromkeys(c["family"] for c in table["cases"]))
    base = next((e["key"] for e in table["environments"] if e["baseline"]), None)
    review_for = {r["to_key"]: r for r in reversed(reviews) if r.get("to_key") and r.get("from_key") == base}
    return render_page("matrix.html.j2", t=table, families=families, reviews=reviews, review_for=review_for,
                       differing=differing_rows(table), data=page_data(table),
                       bars={e["key"]: outcome_bar(e) for e in table["environments"] if e["kind"] == "result"})


MISSING_MARK = "-"  # page_data's marks: a cell not run


def page_data(table: dict) -> dict:
    """What the page's script draws the cells from, compactly (a full profile's 59,000 cells in well under a MB).

    ``envs``: the columns in order. ``marks``: per case one character per env and cell (env by env; in an env,
    context by context, method by method): the outcome's index in ``outcomes`` as a capital letter from ``A``, as a
    small letter from ``a`` when the cell is a surprise, ``-`` when it was not run. ``extras``: per case only the cells that have more than
    an outcome, ``[env index, cell index, expected, stage, root cause, path, detail]`` (indices into ``strings``,
    where every text is once; 0 = none).
    """
    strings, index = [None], {None: 0}

    def s(text) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    envs = table["environments"]
    slots = [f"{m}|{c}" for c in table["contexts"] for m in table["methods"]]
    code = {o: i for i, o in enumerate(OUTCOMES)}
    marks, extras = {}, {}
    for case in table["cases"]:
        chars, rows = [], []
        for ei, e in enumerate(envs):
            cells = case["cells"].get(e["key"]) or {}
            for si, slot in enumerate(slots):
                v = cells.get(slot)
                if not v or v["outcome"] not in code:
                    chars.append(MISSING_MARK)
                    continue
                n = code[v["outcome"]]
                chars.append(chr((ord("a") if v["surprise"] else ord("A")) + n))
                rc = v.get("root_cause")
                extra = [s(v["expected"] if v["expected"] != v["outcome"] else None), s(v.get("stage")),
                         s(f"{rc['type']}: {rc['message']}" if rc else None), s(rc.get("path") if rc else None),
                         s(v.get("detail") if v["outcome"] != PASS else None)]
                if any(extra):
                    rows.append([ei, si, *extra])
        marks[case["key"]] = "".join(chars)
        extras[case["key"]] = rows
    return {"outcomes": list(OUTCOMES), "glyphs": [OUTCOME_MARKS.get(o, "?") for o in OUTCOMES],
            "methods": table["methods"], "contexts": table["contexts"], "strings": strings,
            "envs": [{"key": e["key"], "id": e["env_id"] or e["env_name"], "label": ", ".join(e["label"]),
                      "machine": e["machine"], "replica": bool(e["replica_of"]),
                      "error": e["error"]["stage"] if e["kind"] == "env-error" else None} for e in envs],
            "marks": marks, "extras": extras}


def page_json(data: dict) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` as JSON escapes, so
    no text (a root cause's ``</script>``, ``<locals>``) can end the element or read as markup."""
    import json

    from markupsafe import Markup

    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


BAR_WIDTH = 120  # the bar's own units (the SVG scales to its column)


def outcome_bar(env: dict) -> list:
    """One env's outcomes as a stacked bar: segments in the legend's order, a failure's unexpected part (a
    surprise) after its expected part; each ``{outcome, surprise, n, x, w, title}`` in the bar's units."""
    counts, unexpected = env["counts"], env.get("surprises_by_outcome") or {}
    total = sum(counts.values())
    segments, x = [], 0.0
    for outcome in OUTCOMES:
        n = counts.get(outcome, 0)
        if not n:
            continue
        surprises = min(unexpected.get(outcome, 0), n)
        for part, is_surprise in ((n - surprises, False), (surprises, True)):
            if not part:
                continue
            w = BAR_WIDTH * part / total
            what = "differ from their case's expectation" if is_surprise else (
                "as their cases expect" if surprises else "")
            segments.append({"outcome": outcome, "surprise": is_surprise, "n": part, "x": round(x, 3),
                             "w": round(w, 3), "title": f"{outcome}: {part} of {total} cells"
                                                        + (f" ({what})" if what else "") + " — click to show them"})
            x += w
    return segments


def differing_rows(table: dict) -> list:
    """The rows whose outcome differs between envs, each with the cells that differ and their distinct outcomes.

    The page lists them at the top, as anchors: among thousands of rows they are what a reader comes for.
    """
    compared = [e["key"] for e in table["environments"] if e["kind"] == "result" and not e["replica_of"]]
    out = []
    for case in table["cases"]:
        if not case["differs"]:
            continue
        slots = []
        for m in table["methods"]:
            for c in table["contexts"]:
                seen = list(dict.fromkeys((case["cells"][k][f"{m}|{c}"] or {}).get("outcome") for k in compared))
                if len(seen) > 1:
                    slots.append({"slot": f"{short_method(m)} @ {c}", "outcomes": seen})
        out.append({"key": case["key"], "anchor": "case-" + case["key"].replace("/", "--"), "slots": slots})
    return out


def md_code(text) -> str:
    """``text`` as a markdown code span that survives a table cell (``|``) and HTML-looking text (``<lambda>``)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_escape(text: str) -> str:
    # Markdown's own escapes, not HTML entities: "\<" reads as "<" rendered and nearly so in a terminal, and
    # never starts a tag. "_" stays: GFM never reads an underscore inside a word (paths, env vars) as emphasis.
    return re.sub(r"([\\|<>*\[\]`&])", r"\\\1", text)


def md_text(text) -> str:
    """Plain text safe in a markdown table cell: no HTML, no pipes, one line."""
    return _md_escape(" ".join(str(text).split()))


def md_prose(text) -> str:
    """One of our messages in markdown, on one line: its `...` spans stay code spans, the rest is md_text.

    A command in a message (`PICKLEMATRIX_REPLICATE=2 nox -s "matrix(<baseline>)"`) then reads as typed, in a
    terminal and rendered.
    """
    text = " ".join(str(text).split())
    parts, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        parts += [_md_escape(text[pos:m.start()]), md_code(m.group(2))]
        pos = m.end()
    parts.append(_md_escape(text[pos:]))
    return "".join(parts)


def cell_md(v: dict | None, limit: int = 160, mark: bool = True) -> str:
    """One cell's outcome (and root cause, unless it passed) for a markdown table; ``–`` when not run."""
    if v is None:
        return "–"
    out = f"{OUTCOME_MARKS.get(v['outcome'], '?')} {v['outcome']}" if mark else v["outcome"]
    if mark and v.get("surprise"):
        out += f" ❗(expected {v.get('expected')})"
    if v.get("root_cause") and v["outcome"] != PASS:
        out += " " + md_code(f"{v['root_cause']['type']}: {v['root_cause']['message']}"[:limit])
    return out


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def render_table_md(table: dict) -> str:
    """table.md: per-env counts, the cells that differ between envs, the surprises, the problems."""
    envs = table["environments"]
    results = [e for e in envs if e["kind"] == "result"]
    compared = [e for e in results if not e["replica_of"]]
    copies = len(results) - len(compared)
    ncells = len(table["methods"]) * len(table["contexts"])
    lines = [f"## picklematrix outcome table (harness commit `{table['commit'][:8]}`)", "",
             f"{len(compared)} environment{_plural(len(compared), '', 's')}"
             + (f" (+{copies} A/A cop{_plural(copies, 'y', 'ies')})" if copies else "")
             + (f", {len(envs) - len(results)} could not be built" if len(envs) > len(results) else "")
             + f"; {len(table['cases'])} cases × {ncells} cell{_plural(ncells, '', 's')} "
             + f"({', '.join(table['methods'])} × {', '.join(table['contexts'])}).",
             "", "| environment | versions | pass | failing as expected | failing unexpectedly | ran locally | other "
                 "| surprises |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in envs:
        name = md_code(e["env_id"] or e["env_name"]) + (" (baseline)" if e["baseline"] else "") + \
            (f" (A/A copy, {md_text(e['machine'])})" if e["replica_of"] else "")
        if e["kind"] == "env-error":
            # the resolver's explanation, not just its first line ("cannot install ...")
            lines.append(f"| {name} | could not be built ({md_text(e['error']['stage'])}) | "
                         f"{md_code(error_explanation(e['error']['message'], 600))} | | | | | |")
            continue
        c, failing = e["counts"], e["failing"]
        other = sum(n for o, n in c.items() if o not in BAD and o not in (PASS, RAN_LOCALLY))
        notes = (" — " + "; ".join(md_text(n) for n in e["notes"])) if e["notes"] else ""
        unexpected = f"{failing[UNEXPECTED]}" + (f" (+{failing[UNKNOWN]} with no recorded expectation)"
                                                 if failing[UNKNOWN] else "")
        lines.append(f"| {name} | {md_text(', '.join(e['label']))}{notes} | {c.get(PASS, 0)} | "
                     f"{failing[AS_EXPECTED]} | {unexpected} | {c.get(RAN_LOCALLY, 0)} | {other} | {e['surprises']} |")
    lines += _differing_md(table, compared) + _surprises_md(table, compared)
    if table["problems"]:
        lines += ["", f"### Problems with the results ({len(table['problems'])})", ""]
        lines += [f"- {md_code(p['file'])}: {md_prose(p['message'])}" for p in table["problems"]]
    lines += ["", "Outcome marks: " + ", ".join(f"{m} {o}" for o, m in OUTCOME_MARKS.items()) + ".", ""]
    text = "\n".join(lines)
    if len(text) > MD_LIMIT:
        cut = text.rfind("\n", 0, MD_LIMIT - 200)
        text = text[:cut] + "\n\n… cut to fit a PR comment: the whole table is in table.json and matrix.html.\n"
    return text


def _differing_md(table: dict, compared: list) -> list:
    differing = [c for c in table["cases"] if c["differs"]]
    if not (compared and differing):
        return []
    lines = ["", "### Cells whose outcome differs between environments", "",
             "| case | method @ context | " + " | ".join(md_code(e["env_id"] or e["env_name"]) for e in compared)
             + " |", "|---|---|" + "---|" * len(compared)]
    for case in differing:
        for m in table["methods"]:
            for c in table["contexts"]:
                values = [case["cells"][e["key"]][f"{m}|{c}"] for e in compared]
                if len({(v or {}).get("outcome") for v in values}) > 1:
                    lines.append(f"| {md_code(case['key'])} | {md_text(m)} @ {md_text(c)} | "
                                 + " | ".join(cell_md(v) for v in values) + " |")
    return lines


def _surprises_md(table: dict, compared: list) -> list:
    surprises = [(case, e, slot, v) for case in table["cases"] for e in compared
                 for slot, v in case["cells"].get(e["key"], {}).items() if (v or {}).get("surprise")]
    if not surprises:
        return []
    lines = ["", f"### Surprises: {len(surprises)} cells differ from their case's expectation", ""]
    for case, e, slot, v in surprises:
        m, c = slot.split("|")
        lines.append(f"- {md_code(case['key'])} {md_text(m)} @ {md_text(c)} on {md_code(e['env_id'])}: {cell_md(v)}")
    return lines
