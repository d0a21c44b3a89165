"""Comparing two recorded envs: picking them, outcome flips, timing changes, A/A noise, the review as data."""

from __future__ import annotations

import math
import re

from picklematrix.envs import skew
from picklematrix.envs import spec as envspec
from picklematrix.envs.ids import parse_env_id
from picklematrix.outcomes import HARNESS_ERROR, PASS
from picklematrix.report.asv_results import isna
from picklematrix.report.envmatch import matcher
from picklematrix.report.naming import error_explanation, name_cells
from picklematrix.report.problems import BadInput
from picklematrix.report.results import Recording, ResultSet, corpus_name
from picklematrix.report.table import (
    AS_EXPECTED,
    BAD,
    UNEXPECTED,
    UNKNOWN,
    cell_sort_key,
    cell_view,
    expectation,
)
from picklematrix.run.selection import COMPUTE
from picklematrix.versions import ABSENT, AXES, TRACKED

EXIT_OK, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FACTOR = 1.1  # asv compare's default
FACTOR_LADDER = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
VERSION_NAMES = TRACKED
CHANGE = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<a>[^.,=][^=,]*?)\.\.(?P<b>[^=,]+)$")
CHANGE_TO = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<b>[^.,=][^=,]*)$")  # NAME=B: from the env it starts at
AA_HINT = ("record one with `PICKLEMATRIX_REPLICATE=2 nox -s \"matrix(<baseline>)\"`, or with the matrix: a "
           "profile with `aa_pair = true` in matrix.toml, as the default profile has, records it")


# --------------------------------------------------------------------------- picking the envs


def versions_of(rec: Recording) -> dict:
    """{python, cloudpickle, dask, distributed, pydantic: installed version or None}."""
    return {"python": rec.python, **{k: rec.versions.get(k) for k in VERSION_NAMES if k != "python"}}


def changed_versions(a: Recording, b: Recording) -> list:
    """What differs from ``a`` to ``b``: the axes, the extra pins (a requirements file's), and, when either
    computes on another env's cluster (picklematrix.envs.skew), the cluster's side, named ``cluster <package>``."""
    va, vb = versions_of(a), versions_of(b)
    skewed = any(skew.SEPARATOR in (r.env_id or "") for r in (a, b))
    changed = [{"name": f"client {k}" if skewed else k, "from": va.get(k), "to": vb.get(k)}
               for k in VERSION_NAMES if va.get(k) != vb.get(k)]
    ea, eb = a.extra or {}, b.extra or {}
    changed += [{"name": k, "from": ea.get(k), "to": eb.get(k)} for k in sorted(set(ea) | set(eb))
                if ea.get(k) != eb.get(k)]
    if skewed:
        sides = [parse_env_id(skew.split_env_id(r.env_id or "")[1] or (r.env_id or "")) for r in (a, b)]
        if None not in sides:
            changed += [{"name": f"cluster {k}", "from": getattr(sides[0], k), "to": getattr(sides[1], k)}
                        for k in AXES
                        if getattr(sides[0], k) != getattr(sides[1], k)]
    return changed


def _matches_version(actual: str | None, wanted: str) -> bool:
    if wanted == ABSENT:
        return actual is None
    if actual is None:
        return False
    # python=3.11 matches 3.11.7
    return actual == wanted or actual.startswith(wanted + ".")


def _describe(recs) -> str:
    return "\n".join(f"  {r.key}  ({r.short_label})" for r in recs) or "  (none)"


def _candidates(rs: ResultSet) -> list:
    return [r for r in rs.current() if not r.is_error and not r.replica_of]


def resolve_env(rs: ResultSet, spec: str, role: str) -> Recording:
    """The one recording ``spec`` names at the result set's commit; BadInput naming what exists otherwise."""
    spec = spec.strip()
    everything = rs.current()
    is_file = envspec.split_file(spec)[0] is not None
    if is_file or ("=" in spec and "/" not in spec.split("=", 1)[0]):
        # versions (``pydantic=2.9.2 python=3.11``, commas too) or a requirements file: picked by what is installed
        test = matcher(spec if is_file else spec.replace(",", " "))
        found = [r for r in _candidates(rs) if test(r)]
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
        raise BadInput(f"--{role} {spec}: this environment could not be built ({rec.error['stage']}: "
                       f"{error_explanation(rec.error['message'])}); see {rec.error_path}. Nothing to review.")
    return rec


def resolve_change(rs: ResultSet, change: str, base: str | None = None, baseline: str | None = None,
                   start: str | None = None) -> tuple:
    """(from, to) among the recorded envs for a version change ``NAME=A..B``, or ``NAME=B`` from ``start`` (an env,
    default ``base``, default ``baseline``); for ``A..B`` without ``base``, ``baseline`` wins when several pairs
    fit. The to-env differs from the from-env only in NAME (dask moves distributed with it)."""
    m = CHANGE.match(change.strip()) or CHANGE_TO.match(change.strip())
    if not m:
        raise BadInput(f"{change!r}: a version change reads NAME=B or NAME=A..B, e.g. pydantic=2.9.2 or "
                       "pydantic=2.8.2..2.9.2")
    name, a, b = m.group("name"), m.groupdict().get("a"), m.group("b")
    if name not in VERSION_NAMES:
        raise BadInput(f"{change}: {name} is not one of {', '.join(VERSION_NAMES)}")
    if a is None:  # NAME=B: from the env named, else the base, else the baseline
        first = start or base or baseline
        if first is None:
            raise BadInput(f"{change}: say which env it changes: --from ENV or --base ENV (no baseline is known)")
        starts = [resolve_env(rs, first, "from")]
        a = versions_of(starts[0]).get(name) or ABSENT
    elif base or start:
        starts = [resolve_env(rs, start or base, "base")]
        if not _matches_version(versions_of(starts[0]).get(name), a):
            raise BadInput(f"--base {start or base} has {name} {versions_of(starts[0]).get(name)}, not {a}")
    else:
        starts = [r for r in _candidates(rs) if _matches_version(versions_of(r).get(name), a)]
    pairs = []
    for r in starts:
        for t in _candidates(rs):
            if t.machine != r.machine or not _matches_version(versions_of(t).get(name), b):
                continue
            if all(versions_of(t).get(k) == versions_of(r).get(k) for k in VERSION_NAMES
                   if k != name and not (name == "dask" and k == "distributed")):
                pairs.append((r, t))
    if not pairs:
        raise BadInput(f"{change}: no two environments recorded at {rs.commit[:8]} differ only in {name} "
                       f"{a} -> {b}. Recorded:\n{_describe(_candidates(rs))}")
    if len(pairs) > 1:
        preferred = [p for p in pairs if p[0].env_id == baseline]
        if len(preferred) == 1:
            return preferred[0]
        listing = "\n".join(f"  --from {p[0].key} --to {p[1].key}" for p in pairs)
        raise BadInput(f"{change}: {len(pairs)} pairs of environments differ only in {name}; pick one with "
                       f"--base ENV or:\n{listing}")
    return pairs[0]


def find_replica(rs: ResultSet, rec: Recording, machine: str | None = None) -> Recording | None:
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


def faster_beyond(a: float, b: float, a_stats: dict | None, b_stats: dict | None, factor: float) -> bool:
    """Whether timing ``a`` is faster than ``b`` by more than ``factor``, as ``asv compare`` decides it.

    asv 0.6.6's rule (``asv.commands.compare._is_result_better``, private to asv, hence restated here):
    ``a < b / factor``, and, when both results carry statistics of more than one sample, their 99% confidence
    intervals (``ci_99_a``..``ci_99_b``) must not overlap. With one sample there is nothing to test: the factor
    decides. (asv runs a Mann-Whitney U test instead of the interval test when both sides have 6 or more raw
    samples; a cell here has ``selection.SAMPLES`` = 3, where asv uses the intervals too.)
    """
    if a_stats and b_stats and a_stats.get("repeat", 0) != 1 and b_stats.get("repeat", 0) != 1:
        overlap = a_stats["ci_99_b"] >= b_stats["ci_99_a"] and a_stats["ci_99_a"] <= b_stats["ci_99_b"]
        if overlap:
            return False
    return a < b / factor


def _kind(outcome: str | None) -> str:
    if outcome is None:
        return "missing"
    if outcome == PASS:
        return "good"
    if outcome in BAD:
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


def compare_timings(a: Recording, b: Recording, factor: float) -> dict:
    """Timing changes a -> b beyond ``factor``, decided the way ``asv compare`` decides them."""
    from asv_runner.statistics import get_err

    slower, faster, cells = [], [], []
    compared = not_comparable = 0
    version_a, version_b = a.benchmark_versions.get(COMPUTE), b.benchmark_versions.get(COMPUTE)
    for key in sorted(set(a.timings) & set(b.timings), key=cell_sort_key):
        va, sa, _ = a.timings[key]
        vb, sb, _ = b.timings[key]
        if isna(va) or isna(vb):
            continue
        if version_a and version_b and version_a != version_b:
            not_comparable += 1
            continue
        compared += 1
        entry = {"case": key[0], "method": key[1], "context": key[2], "before": va, "after": vb,
                 "ratio": (vb / va) if va else math.inf,
                 "before_err": get_err(va, sa) if sa else None, "after_err": get_err(vb, sb) if sb else None}
        if faster_beyond(va, vb, sa, sb, factor):
            slower.append(entry)
            entry["change"] = "slower"
        elif faster_beyond(vb, va, sb, sa, factor):
            faster.append(entry)
            entry["change"] = "faster"
        else:
            entry["change"] = None
        cells.append(entry)
    return {"slower": slower, "faster": faster, "compared": compared, "not_comparable": not_comparable,
            "cells": cells}


def compare_outcomes(a: Recording, b: Recording) -> dict:
    """The cells whose outcome flips a -> b, by kind, and the cells only one side has."""
    flips = {"fixed": [], "broken": [], "failure-changed": [], "other": []}
    for key in sorted(set(a.cells) & set(b.cells), key=cell_sort_key):
        before, after = a.cells[key], b.cells[key]
        kind = classify_flip(before, after)
        if kind:
            flips[kind].append({"case": key[0], "method": key[1], "context": key[2],
                                "before": cell_view(before), "after": cell_view(after)})
    only_a = [list(k) for k in sorted(set(a.cells) - set(b.cells), key=cell_sort_key)]
    only_b = [list(k) for k in sorted(set(b.cells) - set(a.cells), key=cell_sort_key)]
    harness = [list(k) for k in sorted(b.cells, key=cell_sort_key) if b.cells[k]["outcome"] == HARNESS_ERROR]
    return {"flips": flips, "only_from": only_a, "only_to": only_b, "harness_errors": harness}


def _aa_pair(rs: ResultSet, a: Recording, aa_machine: str | None, baseline: str | None):
    replica = find_replica(rs, a, aa_machine)
    if replica is not None:
        return a, replica
    if aa_machine is None:
        base = next((r for r in _candidates(rs) if r.env_id == baseline and r.machine == a.machine), None)
        rep = find_replica(rs, base) if base is not None else None
        if rep is not None:
            return base, rep
    return None


def measure_noise(rs: ResultSet, a: Recording, factor: float, aa_machine: str | None,
                  baseline: str | None = None) -> dict:
    """The A/A pair's changes at ``factor`` (and the smallest quiet factor on the ladder).

    The pair is ``a`` and its copy (on ``aa_machine`` if given), else the ``baseline`` env and its copy.
    """
    pair = _aa_pair(rs, a, aa_machine, baseline)
    if pair is None:
        hint = f"no recording of {a.env_name} on machine {aa_machine}" if aa_machine else f"no A/A pair recorded ({AA_HINT})"
        return {"pair": None, "changes": None, "safe": None, "safe_factor": None, "flaky": [], "compared": 0,
                "changed_cells": [], "band": None, "message": f"noise not measured: {hint}; timing changes below are unverified"}
    x, y = pair
    timing = compare_timings(x, y, factor)
    changes = len(timing["slower"]) + len(timing["faster"])
    flaky = [dict(f, kind=k) for k, fl in compare_outcomes(x, y)["flips"].items() for f in fl]
    safe_factor = next((f for f in FACTOR_LADDER if not any(compare_timings(x, y, f)[k] for k in ("slower", "faster"))),
                       None)
    ratios = [c["ratio"] for c in timing["cells"] if math.isfinite(c["ratio"]) and c["ratio"] > 0]
    out = {"pair": {"a": x.key, "b": y.key}, "changes": changes, "safe": changes == 0, "safe_factor": safe_factor,
           "flaky": flaky, "compared": timing["compared"], "changed_cells": timing["slower"] + timing["faster"],
           # the ratios the same env shows measured twice: what the review's timing chart draws as the noise
           "band": [min(ratios), max(ratios)] if ratios else None}
    if changes == 0:
        out["message"] = (f"A/A pair {x.machine} vs {y.machine} ({x.short_label}) shows 0 timing changes at "
                          f"×{factor:g} over {timing['compared']} timed cells: the threshold is safe")
    else:
        better = (f"; it is quiet from ×{safe_factor:g}: re-run with `--factor {safe_factor:g}`" if safe_factor
                  else f"; no factor up to ×{FACTOR_LADDER[-1]:g} quiets it")
        out["message"] = (f"UNSAFE threshold: the A/A pair {x.machine} vs {y.machine} ({x.short_label}) shows "
                          f"{changes} timing change(s) at ×{factor:g} — the same env, measured twice{better}")
    if flaky:
        out["message"] += f"; {len(flaky)} cell(s) changed outcome between the two A/A runs (flaky)"
    return out


def not_compared(a: Recording, b: Recording, outcomes: dict) -> dict:
    """What keeps the review from vouching for every cell: cells one side lacks, partial records.

    A partial record (the harness stopped before the end) may lack cells the other side lacks too, so it
    counts even when both sides hold the same cells.
    """
    cells = [{"case": k[0], "method": k[1], "context": k[2], "missing_in": side.short_label}
             for side, keys in ((b, outcomes["only_from"]), (a, outcomes["only_to"])) for k in keys]
    partial = [r.short_label for r in (a, b) if not r.complete]
    reasons = []
    if cells:
        keys = [(c["case"], c["method"], c["context"]) for c in cells]
        reasons.append(f"{len(cells)} cell(s) recorded on one side only: {name_cells(keys)}")
    for label in partial:
        reasons.append(f"the record of {label} is partial (the harness stopped before the end; re-record it "
                       "with `nox -s matrix`)")
    return {"cells": cells, "partial": partial, "message": "; ".join(reasons)}


def still_failing(a: Recording, b: Recording) -> list:
    """The cells that fail before and after, grouped by case, by whether the after-side fails as its case expects,
    and by the after-side's outcome and root cause.

    This is the decision an upgrade review leaves to the reviewer: what the upgrade does *not* fix. Most such
    cells fail as their case says they must (a lock cannot be pickled): those are only counted; the ones that
    fail unexpectedly (a surprise in the after-env) are what a reviewer reads. Grouping keeps it short for a large
    profile (a case usually fails the same way in every method and context).
    """
    groups: dict = {}
    for key in sorted(set(a.cells) & set(b.cells), key=cell_sort_key):
        before, after = a.cells[key], b.cells[key]
        if _kind(before["outcome"]) != "bad" or _kind(after["outcome"]) != "bad":
            continue
        view = cell_view(after)
        rc = view["root_cause"]
        expect = expectation(after)
        group = groups.setdefault((key[0], expect, view["outcome"], rc["type"] if rc else None,
                                   rc["message"] if rc else None),
                                  {"case": key[0], "outcome": view["outcome"], "root_cause": rc, "cells": [],
                                   "changed": False, "expectation": expect, "expected": view["expected"]})
        group["cells"].append({"method": key[1], "context": key[2], "before": before["outcome"]})
        group["changed"] |= classify_flip(before, after) == "failure-changed"
    return list(groups.values())


def still_failing_counts(still: list) -> dict:
    """{as-expected, unexpected, unknown: cells} of :func:`still_failing`'s groups."""
    counts = {AS_EXPECTED: 0, UNEXPECTED: 0, UNKNOWN: 0}
    for g in still:
        counts[g["expectation"]] += len(g["cells"])
    return counts


def verdict_lines(fixed: int, broken: int, still: list, missing: dict, timing: dict, noise: dict,
                  factor: float) -> list:
    """The verdict: a line of counts, then what it means for the reviewer (first line: the matrix page's too).

    It leads with what a reviewer acts on: fixed, broken, and the cells still failing *unexpectedly*; the cells
    that fail as their cases expect are a count in brackets, never a list. "Nothing broke" only when every cell
    was compared: a cell never run on one side could have broken.
    """
    n = still_failing_counts(still)
    nmissing = len(missing["cells"])
    slower, faster = len(timing["slower"]), len(timing["faster"])
    trust = ("" if noise.get("safe") else
             " (threshold unsafe: the A/A pair changes too)" if noise.get("safe") is False else " (noise not measured)")
    quiet = [f"{n[AS_EXPECTED]} as expected"] + ([f"{n[UNKNOWN]} with no recorded expectation"] if n[UNKNOWN] else [])
    counts = (f"{fixed} fixed, {broken} broken, {n[UNEXPECTED]} still failing unexpectedly ({', '.join(quiet)}), "
              f"{nmissing} not compared" + (" (partial record)" if missing["partial"] else "")
              + f"; timings: {slower} slower, {faster} faster beyond ×{factor:g}{trust}")
    said = []
    if broken:
        said.append(f"{broken} cell(s) broke: they pass before and fail after")
    if nmissing or missing["partial"]:
        said.append(f"{nmissing} cell(s) could not be compared" if nmissing
                    else "not every cell could be compared (partial record)")
    if slower:
        said.append(f"{slower} cell(s) got slower beyond ×{factor:g}")
    if said:
        meaning = "; ".join(said)
    else:
        meaning = f"nothing broke, every cell compared, nothing got slower beyond ×{factor:g}"
    meaning += (f"; the change fixes {fixed} cell(s)" if fixed else "; the change fixes nothing")
    if n[UNEXPECTED]:
        cases = len({g["case"] for g in still if g["expectation"] == UNEXPECTED})
        meaning += f"; {n[UNEXPECTED]} cell(s) in {cases} case(s) still fail unexpectedly"
    elif n[AS_EXPECTED] or n[UNKNOWN]:
        meaning += "; nothing still fails unexpectedly"
    if n[AS_EXPECTED]:
        meaning += f"; {n[AS_EXPECTED]} cell(s) fail as their cases expect"
    if n[UNKNOWN]:
        meaning += f"; {n[UNKNOWN]} failing cell(s) have no recorded expectation (no outcome sidecar)"
    return [counts, meaning]


def _env_view(rec: Recording) -> dict:
    return {"key": rec.key, "env_id": rec.env_id, "env_name": rec.env_name, "machine": rec.machine,
            "versions": versions_of(rec), "label": rec.short_label, "version_label": ", ".join(rec.version_label()),
            "notes": list(rec.notes), "requirements": dict(rec.requirements),
            "approximate": len(rec.requirements.get("skipped") or [])}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


def build_review(rs: ResultSet, a: Recording, b: Recording, factor: float = DEFAULT_FACTOR,
                 aa_machine: str | None = None, baseline: str | None = None, noise: dict | None = None) -> dict:
    """The review of a -> b as data (what the markdown, the HTML and the exit status come from).

    ``baseline``: matrix.toml's baseline env id, whose A/A pair measures the noise when ``a`` has none.
    ``noise``: :func:`measure_noise`'s answer for ``a``, when the caller already has it (the report reviews the
    baseline against every env: one A/A pair, measured once).
    """
    outcomes = compare_outcomes(a, b)
    timing = compare_timings(a, b, factor)
    if noise is None:
        noise = measure_noise(rs, a, factor, aa_machine, baseline)
    flaky_keys = {(f["case"], f["method"], f["context"]) for f in noise["flaky"]}
    for flips in outcomes["flips"].values():
        for f in flips:
            f["flaky"] = (f["case"], f["method"], f["context"]) in flaky_keys
    changed = changed_versions(a, b)
    files = {str(p) for r in (a, b) for p in (r.asv_path, r.sidecar_path, r.partial_path) if p is not None}
    warnings = [str(p) for p in rs.problems if p.path in files]
    warnings += [f"{r.key}: no asv timings (asv result missing or unreadable): timing not compared"
                 for r in (a, b) if not r.timings]
    broken, slower = outcomes["flips"]["broken"], timing["slower"]
    missing = not_compared(a, b, outcomes)
    uncompared = bool(missing["cells"] or missing["partial"])
    still = still_failing(a, b)
    verdict = verdict_lines(len(outcomes["flips"]["fixed"]), len(broken), still, missing, timing, noise, factor)
    exit_status = EXIT_CHANGED if (broken or slower or uncompared) else EXIT_OK
    return {
        "slug": _slug(f"{a.short_label}..{b.short_label}" + (f"@{b.machine}" if a.machine != b.machine else "")),
        "commit": rs.commit, "results_dir": str(rs.results_dir), "factor": factor,
        "from": _env_view(a), "to": _env_view(b), "changed": changed,
        "flips": outcomes["flips"], "only_from": outcomes["only_from"], "only_to": outcomes["only_to"],
        "harness_errors": outcomes["harness_errors"], "timing": timing, "noise": noise, "warnings": warnings,
        "not_compared": missing,
        "still_failing": still, "still_failing_counts": still_failing_counts(still),
        "verdict": verdict[0], "verdict_lines": verdict, "exit_status": exit_status,
        "corpus": corpus_name(b),
        "cells_compared": len(set(a.cells) & set(b.cells)),
    }
