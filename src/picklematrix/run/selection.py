"""Which cells each asv benchmark can measure, from a cell's outcome in the sidecar.

One rule per benchmark, used twice: by ``nox -s matrix``, whose asv record
(picklematrix.record.asv_record) holds a value for exactly the cells the rule
accepts and n/a for the rest, and by the benchmarks' ``setup`` when asv runs
them itself (a cell the rule rejects raises ``NotImplementedError``: asv's "n/a").

Imports nothing heavy (picklematrix.outcomes is standard library only): the
recording and the report use it in the orchestrating environment.
"""

from __future__ import annotations

from picklematrix.outcomes import NOT_APPLICABLE, PASS

OUTCOME = "cells.Outcome.track_outcome"
GRAPH_SIZE = "cells.GraphSize.track_graph_bytes"
COMPUTE = "cells.Compute.time_compute"

# Timing samples per passing cell, in every context (the harness run takes them all).
SAMPLES = 3
# The contexts whose timings asv records (``COMPUTE``), and so the review compares: the script context's,
# as asv would time a cell itself (a benchmark process of its own, a fresh client). The kernel context's
# samples are the sidecar's only.
ASV_TIMED_CONTEXTS = ("script",)


def why_not(benchmark: str, cell: dict | None) -> str | None:
    """Why ``benchmark`` cannot measure ``cell`` (None: it can)."""
    if cell is None:
        return "was not run in this environment"
    if cell["outcome"] == NOT_APPLICABLE:
        return f"not applicable ({cell.get('detail')})"
    if benchmark == GRAPH_SIZE and cell.get("graph_bytes") is None:
        return "no graph reached the scheduler"
    if benchmark == COMPUTE:
        if cell["outcome"] != PASS:
            return f"is {cell['outcome']}: nothing to time"
        if cell["context"] not in ASV_TIMED_CONTEXTS:
            return f"the {cell['context']} context's timings are the sidecar's only"
    return None
