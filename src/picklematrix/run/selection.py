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

# Timing samples per passing cell in a recording (the harness run takes them all): asv's ``repeat`` in the
# contexts asv records (``COMPUTE``), and so the review compares: the script context's, as asv would time a
# cell itself (a benchmark process of its own, a fresh client). In the other contexts the compute call is
# timed once, as every cell's is: its time is the sidecar's and the matrix page's only, and nothing compares
# it, so further samples would cost a recording time and tell nobody anything.
SAMPLES = 3
ASV_TIMED_CONTEXTS = ("script",)
UNTIMED_SAMPLES = 1
# asv's rule for when to stop sampling, ``repeat = (min, max, max_time)``: at most the samples asked for
# (``SAMPLES`` in a recording), but once ``SAMPLE_TIME`` seconds have passed since the first sample began, no
# more than ``MIN_SAMPLES``. A cell of a few milliseconds gets all of them; one that computes for half a
# second gets two, as asv would give it: its samples are each as good, and a third would cost the run more
# than the rest of the case together.
MIN_SAMPLES = 2
SAMPLE_TIME = 1.0
REPEAT = (MIN_SAMPLES, SAMPLES, SAMPLE_TIME)


def recording_samples(context: str) -> int:
    """How many timing samples a recording takes of a passing cell in ``context``."""
    return SAMPLES if context in ASV_TIMED_CONTEXTS else UNTIMED_SAMPLES


def recording_samples_args(contexts) -> list[str]:
    """``picklematrix run``'s ``--samples`` arguments for a recording's samples in ``contexts``."""
    return ["--samples", str(SAMPLES), *(a for c in contexts if recording_samples(c) != SAMPLES
                                         for a in ("--samples", f"{c}={recording_samples(c)}"))]


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
