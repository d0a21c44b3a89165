"""The cells each asv benchmark is given: one rule for the benchmarks' setup and for `asv run -b`."""

import itertools
import types

import pytest
from asv.benchmarks import Benchmarks

from picklematrix.run import selection
from picklematrix.run.selection import COMPUTE, GRAPH_SIZE, OUTCOME, asv_patterns, why_not

METHODS = ["dask.compute", "dask.compute(client=)", "Client.compute"]
CONTEXTS = ["script", "kernel"]


def _cell(case, method, context, outcome, graph_bytes=None):
    family, name = case.split("/")
    return {"family": family, "case": name, "method": method, "context": context, "outcome": outcome,
            "graph_bytes": graph_bytes, "detail": None}


def _asv_selection(cells, patterns):
    """What asv itself selects with these -b patterns, as {benchmark: {(case, method, context)}}."""
    cases = sorted({f"{c['family']}/{c['case']}" for c in cells})
    params = [[repr(c) for c in cases], [repr(m) for m in METHODS], [repr(c) for c in CONTEXTS]]
    listed = [{"name": name, "params": params} for name in (OUTCOME, GRAPH_SIZE, COMPUTE)]
    found = Benchmarks(types.SimpleNamespace(benchmark_dir="."), listed, regex=patterns)
    combos = list(itertools.product(cases, METHODS, CONTEXTS))
    return {name: {combos[i] for i in (found.benchmark_selection.get(name) or [])} for name in found}


def test_each_benchmark_gets_exactly_the_cells_it_can_measure():
    cells = [
        _cell("functions/lambda_square", "dask.compute", "script", "pass", 900),
        _cell("functions/lambda_square", "dask.compute", "kernel", "pass", 950),
        _cell("functions/lambda_square", "dask.compute(client=)", "script", "ran-locally"),
        _cell("pydantic/toplevel_model", "Client.compute", "kernel", "serialize-error"),
        _cell("pydantic/toplevel_model", "Client.compute", "script", "task-error", 1200),
        _cell("notebook/it's_quoted", "dask.compute", "script", "not-applicable"),
        _cell("notebook/it's_quoted", "dask.compute", "kernel", "pass", 10),
    ]
    chosen = _asv_selection(cells, asv_patterns(cells))
    key = lambda c: (f"{c['family']}/{c['case']}", c["method"], c["context"])  # noqa: E731
    for name in (OUTCOME, GRAPH_SIZE, COMPUTE):
        assert chosen[name] == {key(c) for c in cells if why_not(name, c) is None}, name
    assert chosen[COMPUTE] == {("functions/lambda_square", "dask.compute", "script")}
    assert ("notebook/it's_quoted", "dask.compute", "script") not in chosen[OUTCOME]
    assert ("notebook/it's_quoted", "dask.compute", "kernel") in chosen[OUTCOME]


def test_a_benchmark_with_nothing_to_measure_keeps_every_cell():
    # asv then still lists it (all n/a by its setup) instead of leaving it out of the results
    cells = [_cell("misc/sleep_forever", m, c, "timeout") for m in METHODS for c in CONTEXTS]
    chosen = _asv_selection(cells, asv_patterns(cells))
    assert len(chosen[COMPUTE]) == len(cells)
    assert len(chosen[OUTCOME]) == len(cells)


def test_a_large_corpus_is_split_into_patterns_the_os_accepts(monkeypatch):
    monkeypatch.setattr(selection, "_MAX_PATTERN", 2000)
    cells = [_cell(f"family/case_{i:04d}_{'x' * 40}", m, c, "pass", 1) for i in range(300)
             for m in METHODS for c in CONTEXTS]
    patterns = asv_patterns(cells)
    assert max(len(p) for p in patterns) < 4000
    chosen = _asv_selection(cells, patterns)
    assert len(chosen[OUTCOME]) == len(cells) and len(chosen[GRAPH_SIZE]) == len(cells)
    assert len(chosen[COMPUTE]) == 300 * len(METHODS)


@pytest.mark.parametrize("benchmark", [OUTCOME, GRAPH_SIZE, COMPUTE])
def test_the_benchmark_names_are_the_suites_own(benchmark):
    import benchmarks.cells as suites

    module, cls, method = benchmark.split(".")
    assert module == "cells" and callable(getattr(getattr(suites, cls), method))
