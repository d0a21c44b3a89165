"""The cells each asv benchmark measures: one rule for the recording's asv record and for the benchmarks' setup."""

import pytest

from picklematrix.run.selection import ASV_TIMED_CONTEXTS, COMPUTE, GRAPH_SIZE, OUTCOME, why_not


def _cell(context, outcome, graph_bytes=None):
    return {"family": "f", "case": "c", "method": "dask.compute", "context": context, "outcome": outcome,
            "graph_bytes": graph_bytes, "detail": "why"}


@pytest.mark.parametrize("benchmark, cell, measured", [
    (OUTCOME, _cell("kernel", "serialize-error"), True),
    (OUTCOME, _cell("script", "not-applicable"), False),
    (OUTCOME, None, False),
    (GRAPH_SIZE, _cell("script", "task-error", 1200), True),
    (GRAPH_SIZE, _cell("script", "serialize-error"), False),
    (COMPUTE, _cell("script", "pass", 900), True),
    (COMPUTE, _cell("kernel", "pass", 900), "kernel" in ASV_TIMED_CONTEXTS),
    (COMPUTE, _cell("script", "ran-locally"), False),
])
def test_each_benchmark_measures_the_cells_its_rule_accepts(benchmark, cell, measured):
    reason = why_not(benchmark, cell)
    assert (reason is None) == measured, reason
    assert reason is None or isinstance(reason, str) and reason


@pytest.mark.parametrize("benchmark", [OUTCOME, GRAPH_SIZE, COMPUTE])
def test_the_benchmark_names_are_the_suites_own(benchmark):
    import benchmarks.cells as suites

    module, cls, method = benchmark.split(".")
    assert module == "cells" and callable(getattr(getattr(suites, cls), method))
