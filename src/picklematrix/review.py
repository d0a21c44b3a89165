"""``nox -s review -- --from ENV --to ENV``: what a dependency upgrade changes, told apart from noise.

    python -m picklematrix.review --from ENV --to ENV [--results DIR] [--factor 1.1] [--aa MACHINE]
    python -m picklematrix.review --change pydantic=2.8.2..2.9.2 [--base ENV]
    python -m picklematrix.review --from pydantic=2.8.2..2.9.2

ENV is an env id (``cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11``), asv's env name, ``<machine>/<env>`` when several
machines recorded it, or ``name=version[,name=version]`` (``pydantic=2.8.2``) when that picks one env. A
version change ``NAME=A..B`` reviews the env with NAME=A (the baseline's when it qualifies) against the env
that differs from it only in NAME=B.

It lists the cells that flip (fixed: fail -> pass; broken: pass -> fail; failure changed: another failure
outcome or root cause type; other changes, e.g. pass -> ran-locally) and the timings that changed beyond
``--factor``, decided by asv's own comparison (``asv compare``'s ``_is_result_better``: the factor, and the
99% confidence intervals must not overlap). Noise: when the from-env (or the baseline) was recorded twice
(``PICKLEMATRIX_REPLICATE=2 nox -s matrix`` records a copy under machine ``<machine>-rep2``), the same test runs
on that A/A pair; any change there makes the threshold unsafe, and the review says from which factor on the
A/A pair is quiet.

Writes markdown to stdout and ``<results>/reviews/<from>..<to>.md``, and HTML to ``.html`` next to it
(``nox -s report`` links it from the matrix page). Exit status: 0 nothing broke and nothing got slower beyond
the threshold; 1 something broke or got slower; 2 bad input (unknown env, no results, an env that could not be
built).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

from . import report as rp
from .outcomes import HARNESS_ERROR, PASS

EXIT_OK, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FACTOR = 1.1  # asv compare's default
FACTOR_LADDER = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
VERSION_NAMES = ("python", "cloudpickle", "dask", "distributed", "pydantic")
CHANGE = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<a>[^.,=][^=,]*?)\.\.(?P<b>[^=,]+)$")
BadInput = rp.BadInput


# --------------------------------------------------------------------------- picking the envs


def _versions(rec: rp.Recording) -> dict:
    out = {"python": rec.python}
    out.update({k: rec.versions.get(k) for k in VERSION_NAMES if k != "python"})
    return out


def _matches_version(actual: str | None, wanted: str) -> bool:
    if wanted in ("none", "absent"):
        return actual is None
    if actual is None:
        return False
    # python=3.11 matches 3.11.7
    return actual == wanted or actual.startswith(wanted + ".")


def _describe(recs) -> str:
    return "\n".join(f"  {r.key}  ({r.short_label})" for r in recs) or "  (none)"


def _candidates(rs: rp.ResultSet, include_replicas=False) -> list:
    return [r for r in rs.current() if not r.is_error and (include_replicas or not r.replica_of)]


def resolve_env(rs: rp.ResultSet, spec: str, role: str) -> rp.Recording:
    """The one recording ``spec`` names at the result set's commit; BadInput naming what exists otherwise."""
    spec = spec.strip()
    everything = rs.current()
    if "=" in spec and "/" not in spec.split("=", 1)[0]:
        wanted = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
        unknown = [k for k in wanted if k not in VERSION_NAMES]
        if unknown:
            raise BadInput(f"--{role} {spec}: unknown name(s) {', '.join(unknown)} (use {', '.join(VERSION_NAMES)})")
        found = [r for r in _candidates(rs) if all(_matches_version(_versions(r).get(k), v)
                                                   for k, v in wanted.items())]
    else:
        found = [r for r in everything if spec in (r.key, r.env_name, r.env_id)
                 and (not r.replica_of or spec == r.key)]
    if not found:
        elsewhere = sorted({r.commit[:8] for r in rs.recordings if r.commit != rs.commit
                            and spec in (r.key, r.env_name, r.env_id)})
        hint = (f"\nIt was recorded by harness commit(s) {', '.join(elsewhere)}: add --commit {elsewhere[-1]} "
                "(both envs must come from one harness commit)." if elsewhere else "")
        raise BadInput(f"--{role} {spec}: no such environment recorded at harness commit {rs.commit[:8]} in "
                       f"{rs.results_dir}. Recorded there:\n{_describe(everything)}{hint}")
    if len(found) > 1:
        raise BadInput(f"--{role} {spec}: {len(found)} environments match; name one as <machine>/<env>:\n"
                       f"{_describe(found)}")
    rec = found[0]
    if rec.is_error:
        first = next((ln for ln in rec.error["message"].splitlines() if ln.strip()), "")
        raise BadInput(f"--{role} {spec}: this environment could not be built ({rec.error['stage']}: {first}); "
                       f"see {rec.error_path}. Nothing to review.")
    return rec


def resolve_change(rs: rp.ResultSet, change: str, base: str | None = None) -> tuple:
    """(from, to) for a version change ``name=A..B``."""
    m = CHANGE.match(change.strip())
    if not m:
        raise BadInput(f"{change!r}: a version change reads NAME=A..B, e.g. pydantic=2.8.2..2.9.2")
    name, a, b = m.group("name"), m.group("a"), m.group("b")
    if name not in VERSION_NAMES:
        raise BadInput(f"{change}: {name} is not one of {', '.join(VERSION_NAMES)}")
    if base:
        starts = [resolve_env(rs, base, "base")]
        if not _matches_version(_versions(starts[0]).get(name), a):
            raise BadInput(f"--base {base} has {name} {_versions(starts[0]).get(name)}, not {a}")
    else:
        starts = [r for r in _candidates(rs) if _matches_version(_versions(r).get(name), a)]
    pairs = []
    for r in starts:
        for t in _candidates(rs):
            if t.machine != r.machine or not _matches_version(_versions(t).get(name), b):
                continue
            same = all(_versions(t).get(k) == _versions(r).get(k) for k in VERSION_NAMES
                       if k != name and not (name == "dask" and k == "distributed"))
            if same:
                pairs.append((r, t))
    if not pairs:
        raise BadInput(f"{change}: no two environments recorded at {rs.commit[:8]} differ only in {name} "
                       f"{a} -> {b}. Recorded:\n{_describe(_candidates(rs))}")
    if len(pairs) > 1:
        _, baseline = rp._matrix_order()
        preferred = [p for p in pairs if p[0].env_id == baseline]
        if len(preferred) == 1:
            return preferred[0]
        listing = "\n".join(f"  --from {p[0].key} --to {p[1].key}" for p in pairs)
        raise BadInput(f"{change}: {len(pairs)} pairs of environments differ only in {name}; pick one with "
                       f"--base ENV or:\n{listing}")
    return pairs[0]


def find_replica(rs: rp.ResultSet, rec: rp.Recording, machine: str | None = None) -> rp.Recording | None:
    """The A/A copy of ``rec``: the same env and commit recorded on ``<machine>-rep<i>`` (or ``machine``)."""
    for r in rs.current():
        if r.is_error or r is rec or r.env_name != rec.env_name:
            continue
        if machine is not None:
            if r.machine == machine:
                return r
        elif r.replica_of == rec.machine:
            return r
    return None


# --------------------------------------------------------------------------- comparing


def _kind(outcome: str | None) -> str:
    if outcome is None:
        return "missing"
    if outcome == PASS:
        return "good"
    if outcome in rp.BAD:
        return "bad"
    return "neutral"  # ran-locally, not-applicable, harness-error


def _rc_type(cell: dict) -> str | None:
    rc = cell.get("root_cause")
    return rc.get("type") if isinstance(rc, dict) else None


def classify_flip(before: dict, after: dict) -> str | None:
    """fixed | broken | failure-changed | other, or None when nothing changed."""
    a, b = before["outcome"], after["outcome"]
    ka, kb = _kind(a), _kind(b)
    if ka == "bad" and kb == "good":
        return "fixed"
    if ka == "good" and kb == "bad":
        return "broken"
    if ka == "bad" and kb == "bad":
        if a != b or _rc_type(before) != _rc_type(after):
            return "failure-changed"
        return None
    return "other" if a != b else None


def compare_timings(a: rp.Recording, b: rp.Recording, factor: float) -> dict:
    """Timing changes a -> b beyond ``factor``, decided the way ``asv compare`` decides them."""
    from asv.commands.compare import _is_result_better
    from asv_runner.statistics import get_err

    slower, faster = [], []
    compared = not_comparable = 0
    version_a = a.benchmark_versions.get(rp.TIME_KEY)
    version_b = b.benchmark_versions.get(rp.TIME_KEY)
    for key in sorted(set(a.timings) & set(b.timings), key=rp.cell_sort_key):
        va, sa, xa = a.timings[key]
        vb, sb, xb = b.timings[key]
        if rp._isna(va) or rp._isna(vb):
            continue
        if version_a and version_b and version_a != version_b:
            not_comparable += 1
            continue
        compared += 1
        entry = {"case": key[0], "method": key[1], "context": key[2], "before": va, "after": vb,
                 "ratio": (vb / va) if va else math.inf,
                 "before_err": get_err(va, sa) if sa else None, "after_err": get_err(vb, sb) if sb else None}
        if _is_result_better(va, vb, (sa, xa), (sb, xb), factor):
            slower.append(entry)
        elif _is_result_better(vb, va, (sb, xb), (sa, xa), factor):
            faster.append(entry)
    return {"slower": slower, "faster": faster, "compared": compared, "not_comparable": not_comparable}


def compare_outcomes(a: rp.Recording, b: rp.Recording) -> dict:
    flips = {"fixed": [], "broken": [], "failure-changed": [], "other": []}
    for key in sorted(set(a.cells) & set(b.cells), key=rp.cell_sort_key):
        before, after = a.cells[key], b.cells[key]
        kind = classify_flip(before, after)
        if kind:
            flips[kind].append({"case": key[0], "method": key[1], "context": key[2],
                                "before": rp._cell_view(before), "after": rp._cell_view(after)})
    only_a = [list(k) for k in sorted(set(a.cells) - set(b.cells), key=rp.cell_sort_key)]
    only_b = [list(k) for k in sorted(set(b.cells) - set(a.cells), key=rp.cell_sort_key)]
    harness = [list(k) for k in sorted(b.cells, key=rp.cell_sort_key) if b.cells[k]["outcome"] == HARNESS_ERROR]
    return {"flips": flips, "only_from": only_a, "only_to": only_b, "harness_errors": harness}


def measure_noise(rs, a: rp.Recording, factor: float, aa_machine: str | None) -> dict:
    """The A/A pair's changes at ``factor`` (and the smallest quiet factor on the ladder)."""
    pair = None
    replica = find_replica(rs, a, aa_machine)
    if replica is not None:
        pair = (a, replica)
    elif aa_machine is None:
        _, baseline = rp._matrix_order()
        base = next((r for r in _candidates(rs) if r.env_id == baseline and r.machine == a.machine), None)
        rep = find_replica(rs, base) if base is not None else None
        if rep is not None:
            pair = (base, rep)
    if pair is None:
        hint = (f"no recording of {a.env_name} on machine {aa_machine}" if aa_machine else
                "no A/A pair recorded (record one with PICKLEMATRIX_REPLICATE=2 nox -s \"matrix(<baseline>)\")")
        return {"pair": None, "changes": None, "safe": None, "safe_factor": None, "flaky": [], "compared": 0,
                "changed_cells": [], "message": f"noise not measured: {hint}; timing changes below are unverified"}
    x, y = pair
    timing = compare_timings(x, y, factor)
    changes = len(timing["slower"]) + len(timing["faster"])
    flaky = [dict(f, kind=k) for k, fl in compare_outcomes(x, y)["flips"].items() for f in fl]
    safe_factor = None
    for f in FACTOR_LADDER:
        t = compare_timings(x, y, f)
        if not t["slower"] and not t["faster"]:
            safe_factor = f
            break
    out = {"pair": {"a": x.key, "b": y.key}, "changes": changes, "safe": changes == 0, "safe_factor": safe_factor,
           "flaky": flaky, "compared": timing["compared"], "changed_cells": timing["slower"] + timing["faster"]}
    if changes == 0:
        out["message"] = (f"A/A pair {x.machine} vs {y.machine} ({x.short_label}) shows 0 timing changes at "
                          f"×{factor:g} over {timing['compared']} timed cells: the threshold is safe")
    else:
        better = (f"; it is quiet from ×{safe_factor:g}: re-run with --factor {safe_factor:g}" if safe_factor
                  else f"; no factor up to ×{FACTOR_LADDER[-1]:g} quiets it")
        out["message"] = (f"UNSAFE threshold: the A/A pair {x.machine} vs {y.machine} ({x.short_label}) shows "
                          f"{changes} timing change(s) at ×{factor:g} — the same env, measured twice{better}")
    if flaky:
        out["message"] += f"; {len(flaky)} cell(s) changed outcome between the two A/A runs (flaky)"
    return out


def _env_view(rec: rp.Recording) -> dict:
    versions = _versions(rec)
    return {"key": rec.key, "env_id": rec.env_id, "env_name": rec.env_name, "machine": rec.machine,
            "versions": versions, "label": rec.short_label, "version_label": ", ".join(rec.version_label()),
            "notes": list(rec.notes)}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


def build_review(rs: rp.ResultSet, a: rp.Recording, b: rp.Recording, factor: float = DEFAULT_FACTOR,
                 aa_machine: str | None = None) -> dict:
    """The review of a -> b as data (what the markdown, the HTML and the exit status come from)."""
    outcomes = compare_outcomes(a, b)
    timing = compare_timings(a, b, factor)
    noise = measure_noise(rs, a, factor, aa_machine)
    flaky_keys = {(f["case"], f["method"], f["context"]) for f in noise["flaky"]}
    for flips in outcomes["flips"].values():
        for f in flips:
            f["flaky"] = (f["case"], f["method"], f["context"]) in flaky_keys
    va, vb = _versions(a), _versions(b)
    changed = [{"name": k, "from": va.get(k), "to": vb.get(k)} for k in VERSION_NAMES if va.get(k) != vb.get(k)]
    warnings = []
    files = {str(p) for r in (a, b) for p in (r.asv_path, r.sidecar_path) if p is not None}
    warnings += [str(p) for p in rs.problems if p.path in files]
    for r in (a, b):
        if not r.timings:
            warnings.append(f"{r.key}: no asv timings (asv result missing or unreadable): timing not compared")
    broken = outcomes["flips"]["broken"]
    slower = timing["slower"]
    exit_status = EXIT_CHANGED if (broken or slower) else EXIT_OK
    if broken or slower:
        verdict = ", ".join(x for x in (f"{len(broken)} cell(s) broke" if broken else "",
                                        f"{len(slower)} cell(s) slower beyond ×{factor:g}" if slower else "") if x)
    else:
        verdict = f"nothing broke, nothing got slower beyond ×{factor:g}"
    if noise["safe"] is False and slower:
        verdict += " (threshold unsafe: the A/A pair shows changes too)"
    return {
        "slug": _slug(f"{a.short_label}..{b.short_label}" + (f"@{b.machine}" if a.machine != b.machine else "")),
        "commit": rs.commit, "results_dir": str(rs.results_dir), "factor": factor,
        "from": _env_view(a), "to": _env_view(b), "changed": changed,
        "flips": outcomes["flips"], "only_from": outcomes["only_from"], "only_to": outcomes["only_to"],
        "harness_errors": outcomes["harness_errors"], "timing": timing, "noise": noise, "warnings": warnings,
        "verdict": verdict, "exit_status": exit_status,
        "cells_compared": len(set(a.cells) & set(b.cells)),
    }


# --------------------------------------------------------------------------- rendering

FLIP_TITLES = {"fixed": "Fixed (fail → pass)", "broken": "Broken (pass → fail)",
               "failure-changed": "Failure changed (another failure or root cause)",
               "other": "Other outcome changes"}


def _outcome_md(v: dict | None) -> str:
    if v is None:
        return "–"
    out = v["outcome"]
    if v.get("root_cause") and v["outcome"] != PASS:
        out += " " + rp.md_code(f"{v['root_cause']['type']}: {v['root_cause']['message']}"[:200])
    return out


def _seconds(v) -> str:
    if v is None:
        return "–"
    if v < 1e-3:
        return f"{v * 1e6:.0f} µs"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.3f} s"


def render_review_md(review: dict) -> str:
    a, b = review["from"], review["to"]
    lines = [f"## picklematrix review: {rp.md_code(a['label'])} → {rp.md_code(b['label'])}", ""]
    if review["changed"]:
        lines.append("Changed: " + ", ".join(f"**{c['name']}** {c['from'] or 'absent'} → {c['to'] or 'absent'}"
                                             for c in review["changed"]) + ".")
    lines.append(f"From {rp.md_text(a['version_label'])} on {rp.md_code(a['machine'])}; to "
                 f"{rp.md_text(b['version_label'])} on {rp.md_code(b['machine'])}; harness commit "
                 f"{rp.md_code(review['commit'][:8])}.")
    mark = "❌" if review["exit_status"] else "✅"
    lines += ["", f"**{mark} {rp.md_text(review['verdict'])}** (exit status {review['exit_status']})", ""]
    f, t = review["flips"], review["timing"]
    lines += ["| | cells |", "|---|---:|"]
    for kind in ("fixed", "broken", "failure-changed", "other"):
        lines.append(f"| {FLIP_TITLES[kind]} | {len(f[kind])} |")
    lines.append(f"| Slower beyond ×{review['factor']:g} | {len(t['slower'])} |")
    lines.append(f"| Faster beyond ×{review['factor']:g} | {len(t['faster'])} |")
    lines += ["", f"{review['cells_compared']} cells compared, {t['compared']} timings compared.", "",
              f"**Noise:** {rp.md_text(review['noise']['message'])}.", ""]
    for kind in ("broken", "fixed", "failure-changed", "other"):
        if not f[kind]:
            continue
        lines += [f"### {FLIP_TITLES[kind]}", "", "| case | method | context | before | after |",
                  "|---|---|---|---|---|"]
        for x in f[kind]:
            flaky = " (flaky in A/A)" if x.get("flaky") else ""
            lines.append(f"| {rp.md_code(x['case'])}{flaky} | {rp.md_text(x['method'])} | "
                         f"{rp.md_text(x['context'])} | {_outcome_md(x['before'])} | {_outcome_md(x['after'])} |")
        lines.append("")
    for kind, title in (("slower", "Slower"), ("faster", "Faster")):
        if not t[kind]:
            continue
        lines += [f"### {title} beyond ×{review['factor']:g}", "", "| case | method | context | before | after | ratio |",
                  "|---|---|---|---:|---:|---:|"]
        for x in t[kind]:
            lines.append(f"| {rp.md_code(x['case'])} | {rp.md_text(x['method'])} | {rp.md_text(x['context'])} | "
                         f"{_seconds(x['before'])} | {_seconds(x['after'])} | {x['ratio']:.2f} |")
        lines.append("")
    if review["only_from"] or review["only_to"]:
        lines += [(f"Cells only in the from-env: {len(review['only_from'])}; only in the to-env: "
                   f"{len(review['only_to'])} (different corpus or a partial run)."), ""]
    if review["harness_errors"]:
        lines += [f"Harness errors in the to-env: {len(review['harness_errors'])} cell(s) could not be run.", ""]
    if review["warnings"]:
        lines += ["### Warnings", ""] + [f"- {rp.md_text(w)}" for w in review["warnings"]] + [""]
    return "\n".join(lines)


def render_review_html(review: dict) -> str:
    env = rp.jinja_env()
    env.globals["outcome_class"] = rp.outcome_class
    env.globals["seconds"] = _seconds
    return env.get_template("review.html.j2").render(r=review, titles=FLIP_TITLES,
                                                     css=(rp.TEMPLATES / "picklematrix.css").read_text())


def write_review(review: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{review['slug']}.md"
    html = out_dir / f"{review['slug']}.html"
    md.write_text(render_review_md(review))
    html.write_text(render_review_html(review))
    # what the matrix page shows about it (not .json: asv would try to read that as a result file)
    html.with_suffix(".meta").write_text(json.dumps({
        "from": review["from"]["label"], "to": review["to"]["label"], "verdict": review["verdict"],
        "from_key": review["from"]["key"], "to_key": review["to"]["key"],
        "exit_status": review["exit_status"], "commit": review["commit"]}))
    return md, html


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m picklematrix.review",
                                description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit status: 0 nothing broke or got slower; 1 something did; 2 bad input")
    p.add_argument("--from", dest="from_env", metavar="ENV", help="the env before (or a change NAME=A..B)")
    p.add_argument("--to", dest="to_env", metavar="ENV", help="the env after")
    p.add_argument("--change", metavar="NAME=A..B", help="a version change, e.g. pydantic=2.8.2..2.9.2")
    p.add_argument("--base", metavar="ENV", help="with a version change: the env to start from")
    p.add_argument("--results", default=os.environ.get("PICKLEMATRIX_RESULTS", str(rp.ROOT / "results")),
                   help="results directory (default: $PICKLEMATRIX_RESULTS or ./results)")
    p.add_argument("--commit", help="harness commit to review at (default: the newest results)")
    p.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                   help=f"timing threshold, as in asv compare (default {DEFAULT_FACTOR})")
    p.add_argument("--aa", metavar="MACHINE", help="machine holding the A/A copy of the from-env "
                                                  "(default: <machine>-rep<i>)")
    p.add_argument("--out", help="where the .md/.html go (default: <results>/reviews)")
    p.add_argument("--quiet", action="store_true", help="no markdown on stdout")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.factor <= 1.0 or not math.isfinite(args.factor):
            raise BadInput(f"--factor {args.factor}: must be a number > 1 (1.1 = 10% slower)")
        change = args.change
        if change is None and args.from_env and args.to_env is None and CHANGE.match(args.from_env):
            change = args.from_env
        if change is None and not (args.from_env and args.to_env):
            raise BadInput("say what to review: --from ENV --to ENV, or --change NAME=A..B")
        rs = rp.load_results(args.results, args.commit)
        if change is not None:
            a, b = resolve_change(rs, change, args.base)
        else:
            a = resolve_env(rs, args.from_env, "from")
            b = resolve_env(rs, args.to_env, "to")
        if a.key == b.key:
            raise BadInput(f"--from and --to are the same environment ({a.key})")
        review = build_review(rs, a, b, args.factor, args.aa)
    except BadInput as e:
        print(f"picklematrix review: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out_dir = Path(args.out) if args.out else Path(args.results) / "reviews"
    md, html = write_review(review, out_dir)
    if not args.quiet:
        print(render_review_md(review))
    print(f"review: {md}\n        {html}  (nox -s report links it from the matrix page)", file=sys.stderr)
    return review["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
