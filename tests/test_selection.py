"""The cells each asv benchmark measures: one rule for the recording's asv record and for the benchmarks' setup;
and how many samples a cell gets."""

import json
from pathlib import Path

import pytest

from picklematrix.run.selection import ASV_TIMED_CONTEXTS, COMPUTE, GRAPH_SIZE, OUTCOME, why_not

from .conftest import run_cli


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


def test_a_slow_cell_gets_asvs_fewer_samples(tmp_path):
    """asv's ``repeat = (min, max, max_time)``, applied by a real run: a cell whose samples take over
    ``SAMPLE_TIME`` stops at ``MIN_SAMPLES``, a fast one gets every sample asked for, in both contexts."""
    from picklematrix.run.selection import MIN_SAMPLES, SAMPLE_TIME, SAMPLES


    cases = Path(__file__).resolve().parent / "data" / "sampling"
    out = tmp_path / "run.json"
    proc = run_cli("run", "--cases", str(cases), "--context", "all", "--samples", str(SAMPLES), "--no-progress",
                   "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    passing = [c for c in json.loads(out.read_text())["cells"] if c["outcome"] == "pass"]
    assert {(c["case"], c["context"]) for c in passing} == {(case, context) for case in ("fast", "slow")
                                                           for context in ("script", "kernel")}
    for cell in passing:
        if cell["case"] == "slow":
            assert len(cell["samples"]) == MIN_SAMPLES and sum(cell["samples"]) > SAMPLE_TIME, cell
        else:
            assert len(cell["samples"]) == SAMPLES, cell
