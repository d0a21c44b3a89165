"""Which cells each asv benchmark can measure, from a cell's outcome in the sidecar.

One rule per benchmark, used twice: by the benchmarks' ``setup`` (a cell the
rule rejects raises ``NotImplementedError``: asv's "n/a"), and by ``nox -s
matrix``, which passes asv only the cells the rule accepts (``asv run -b``).
asv starts one process per benchmark and cell; the ones it is not given are
recorded as n/a without a process, which is what their setup would have said.

Imports nothing heavy (picklematrix.outcomes is standard library only): picklematrix.record.recording uses it in
the orchestrating environment.
"""

from __future__ import annotations

import re

from picklematrix.outcomes import NOT_APPLICABLE, PASS

OUTCOME = "cells.Outcome.track_outcome"
GRAPH_SIZE = "cells.GraphSize.track_graph_bytes"
COMPUTE = "cells.Compute.time_compute"

# Timing samples per passing cell, in every context.
SAMPLES = 3
# The contexts whose passing cells asv times (``COMPUTE``: SAMPLES repeats in
# its own benchmark processes). The harness run takes the samples of the other
# contexts itself; in these its one compute call is enough.
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
            return f"the {cell['context']} context is timed by the harness run only"
    return None


# Linux refuses a single argument over 128 KiB; stay well under it.
_MAX_PATTERN = 32_000


def asv_patterns(cells: list, benchmarks=(OUTCOME, GRAPH_SIZE, COMPUTE)) -> list[str]:
    """``asv run -b`` patterns selecting, per benchmark, the cells it can measure.

    asv matches ``-b`` against ``name(param, param, param)`` with each param
    as its repr. A benchmark that can measure no cell keeps all of them: asv
    then still lists it, every cell n/a by its setup.
    """
    patterns = []
    for benchmark in benchmarks:
        groups: dict = {}
        for cell in cells:
            if why_not(benchmark, cell) is None:
                key = (cell["method"], cell["context"])
                groups.setdefault(key, []).append(f"{cell['family']}/{cell['case']}")
        if not groups:
            patterns.append(f"^{re.escape(benchmark)}\\(")
            continue
        for (method, context), cases in sorted(groups.items()):
            tail = re.escape(f", {method!r}, {context!r})")
            chunk: list = []
            for case in sorted(cases) + [None]:
                if case is not None:
                    chunk.append(re.escape(repr(case)))
                if chunk and (case is None or sum(len(c) + 1 for c in chunk) > _MAX_PATTERN):
                    patterns.append(f"^{re.escape(benchmark)}\\((?:{'|'.join(chunk)}){tail}$")
                    chunk = []
    return patterns
