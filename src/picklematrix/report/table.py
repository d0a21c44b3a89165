"""The outcome table as data: cases x environments, each cell every compute method x context (table.json)."""

from __future__ import annotations

import datetime
from pathlib import Path

from picklematrix.outcomes import FAILURES, OUTCOMES, TIMEOUT
from picklematrix.report.asv_results import isna
from picklematrix.report.results import Recording, ResultSet
from picklematrix.run.corpus import BUILTIN_CASES, CONTEXTS, CorpusError, load_corpus
from picklematrix.run.methods import METHODS

TABLE_JSON_FORMAT = 1

# Outcomes that count as "the object did not make it" when comparing envs; a timeout is one too.
BAD = frozenset(FAILURES | {TIMEOUT})

# the order the harness runs them in
METHOD_ORDER = tuple(METHODS)
CONTEXT_ORDER = CONTEXTS


def order_envs(recordings: list, order: list, baseline: str | None) -> list[Recording]:
    """Baseline first, then matrix.toml's order, then the rest; each A/A copy right after its original."""

    def rank(r: Recording):
        eid = r.env_id or ""
        pos = order.index(eid) if eid in order else len(order)
        return (eid != baseline, pos, r.is_error, r.python or "", sorted((r.versions or {}).items(),
                                                                        key=str), r.replica_of is not None,
                r.machine)

    return sorted(recordings, key=rank)


def cell_view(cell: dict | None) -> dict | None:
    """What the table (and a review) shows of one sidecar cell; None for a cell that was not run."""
    if cell is None:
        return None
    rc = cell.get("root_cause")
    return {"outcome": cell["outcome"], "expected": cell.get("expected"), "surprise": bool(cell.get("surprise")),
            "root_cause": ({"type": str(rc.get("type")), "message": str(rc.get("message")),
                            "path": str(rc["path"]) if rc.get("path") else None}
                           if isinstance(rc, dict) else None),
            "stage": cell.get("stage"), "detail": cell.get("detail"), "seconds": cell.get("seconds"), "graph_bytes": cell.get("graph_bytes")}


AS_EXPECTED, UNEXPECTED, UNKNOWN = "as-expected", "unexpected", "unknown"


def expectation(cell: dict | None) -> str | None:
    """Whether a cell's outcome is what its case expects: as-expected, unexpected (a surprise), or unknown (a cell
    rebuilt from asv's outcome codes carries no expectation); None for a cell that was not run."""
    if cell is None:
        return None
    if cell.get("surprise"):
        return UNEXPECTED
    return AS_EXPECTED if cell.get("expected") is not None else UNKNOWN


def cell_sort_key(key: tuple) -> tuple:
    """(family/case, method, context) in the order the harness runs them; unknown names after, by name."""
    case, method, context = key
    return (case, METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method,
            CONTEXT_ORDER.index(context) if context in CONTEXT_ORDER else len(CONTEXT_ORDER), context)


def _ordered(values, preferred) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in preferred if v in seen] + sorted(v for v in seen if v not in preferred)


def _case_summaries(recordings) -> dict:
    """{family/case: summary} from the corpus (built-in plus any case dirs the sidecars name)."""
    dirs = [BUILTIN_CASES]
    for r in recordings:
        dirs += [Path(d) for d in r.case_dirs if Path(d).is_dir() and Path(d) not in dirs]
    try:
        cases, _ = load_corpus(dirs)
    except (CorpusError, OSError, ValueError):  # summaries are a nicety: never fail the report over them
        return {}
    return {f"{c.family}/{c.case_id}": c.summary for c in cases}


def _env_entry(r: Recording, baseline: str | None, keys: set) -> dict:
    counts: dict[str, int] = {}
    failing = {AS_EXPECTED: 0, UNEXPECTED: 0, UNKNOWN: 0}  # the failed cells, by what their case expects
    surprises: dict[str, int] = {}
    for c in r.cells.values():
        counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
        if c["outcome"] in BAD:
            failing[expectation(c)] += 1
        if c.get("surprise"):
            surprises[c["outcome"]] = surprises.get(c["outcome"], 0) + 1
    replica_key = f"{r.replica_of}/{r.env_name}" if r.replica_of else None
    return {
        "key": r.key, "machine": r.machine, "env_name": r.env_name, "env_id": r.env_id, "python": r.python,
        "versions": r.versions, "label": r.version_label(), "kind": "env-error" if r.is_error else "result",
        "baseline": bool(baseline and r.env_id == baseline and not r.replica_of),
        "replica_of": replica_key if replica_key in keys else None,
        "complete": r.complete, "notes": list(r.notes),
        "files": {k: str(p) for k, p in (("asv", r.asv_path), ("sidecar", r.sidecar_path),
                                          ("env_error", r.error_path)) if p is not None},
        "error": ({"stage": r.error["stage"], "message": r.error["message"]} if r.is_error else None),
        "counts": counts, "failing": failing, "surprises": sum(surprises.values()), "surprises_by_outcome": surprises,
        "timed_cells": sum(1 for v in r.timings.values() if not isna(v[0])),
    }


def build_table(rs: ResultSet, order=(), baseline: str | None = None) -> dict:
    """The table as data: what table.json holds and the matrix page and table.md render.

    ``order`` and ``baseline`` come from matrix.toml (:func:`picklematrix.report.checkout.matrix_order`).
    """
    order = list(order)
    recs = order_envs(rs.current(), order, baseline)
    methods = _ordered([k[1] for r in recs for k in r.cells], METHOD_ORDER)
    contexts = _ordered([k[2] for r in recs for k in r.cells], CONTEXT_ORDER)
    case_keys = sorted({k[0] for r in recs for k in r.cells})
    summaries = _case_summaries(recs)
    keys = {r.key for r in recs}
    envs = [_env_entry(r, baseline, keys) for r in recs]
    compared = [r for r in recs if not r.is_error and not r.replica_of]
    slots = {f"{m}|{c}": (m, c) for m in methods for c in contexts}
    cases = []
    for case in case_keys:
        family, _, case_id = case.partition("/")
        cells = {r.key: {slot: cell_view(r.cells.get((case, m, c))) for slot, (m, c) in slots.items()}
                 for r in recs if not r.is_error}
        outcomes = {slot: {(cells[r.key][slot] or {}).get("outcome") for r in compared} for slot in slots}
        cases.append({
            "key": case, "family": family, "case": case_id, "summary": summaries.get(case, ""),
            "differs": any(len(v) > 1 for v in outcomes.values()),
            "surprise": any((v or {}).get("surprise") for cc in cells.values() for v in cc.values()),
            "cells": cells,
        })
    return {
        "format": TABLE_JSON_FORMAT,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "results_dir": str(rs.results_dir), "commit": rs.commit, "baseline": baseline,
        "outcomes": list(OUTCOMES), "failures": sorted(FAILURES), "methods": methods, "contexts": contexts,
        "environments": envs, "cases": cases,
        "problems": [{"file": p.path, "message": p.message} for p in rs.problems],
    }
