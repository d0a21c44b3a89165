"""What the asv benchmarks do when asv runs them itself; ``benchmarks/`` only declares the suites.

``nox -s matrix`` does not run them: asv discovers them in each env (their names, grid and code versions), and
picklematrix.record.asv_record records the harness run's values under them. They run when asv runs them, by
hand or as asv's built-in matrix (bench/matrix_bench.py --builtin-envs), in asv's benchmark processes with the
env's interpreter. The param grid is case x compute method x context, the same in every environment; a cell
that does not apply says so in ``setup`` with ``NotImplementedError`` (asv shows "n/a").

Outcomes and graph sizes come from a harness run of this environment: the outcome sidecar at
``PICKLEMATRIX_SIDECAR``, else asv's ``setup_cache`` runs the corpus. ``time_compute`` times the compute call
for real, in the benchmark process, against the cluster at ``PICKLEMATRIX_SCHEDULER`` (one cluster for every
benchmark process), else a cluster of the process's own.
"""

from __future__ import annotations

import os
import sys

from picklematrix import preload
from picklematrix.outcomes import OUTCOMES
from picklematrix.run.cell import settle
from picklematrix.run.corpus import BUILTIN_CASES, CONTEXTS, load_corpus, select
from picklematrix.run.methods import METHODS
from picklematrix.run.selection import why_not
from picklematrix.sidecar import cell_key
from picklematrix.sidecar import read as read_sidecar

SIDECAR_VAR = "PICKLEMATRIX_SIDECAR"
if not os.environ.get(SIDECAR_VAR):
    # asv running the benchmarks itself: its forkserver imports this module once and forks a process per
    # benchmark, so dask and distributed are imported here, not lazily (a lazy import would cost every one of
    # those processes the import of distributed, about half a second), with the tracked packages and what
    # every process's first Client would do (picklematrix.preload). With a sidecar (nox -s matrix) asv only
    # discovers the benchmarks and records the harness run's values: none of it is needed, and its discovery
    # is on each recording's way.
    import dask  # noqa: F401
    import distributed  # noqa: F401

    preload.warm()

SCHEDULER_VAR = "PICKLEMATRIX_SCHEDULER"
CASES_VAR = "PICKLEMATRIX_CASES"
ONLY_VAR = "PICKLEMATRIX_ONLY"


def corpus_dirs() -> list[str]:
    """The corpus, as `python -m picklematrix run --cases` takes it: given dirs replace the built-in one."""
    given = [d for d in os.environ.get(CASES_VAR, "").split(os.pathsep) if d]
    return given or [str(BUILTIN_CASES)]


def _corpus():
    cases, _problems = load_corpus(corpus_dirs(), method_names=list(METHODS))
    only = [g for g in os.environ.get(ONLY_VAR, "").split(",") if g]
    return sorted(select(cases, only), key=lambda c: (c.family, c.case_id))


_CASES = None


def cases():
    global _CASES
    if _CASES is None:
        _CASES = {f"{c.family}/{c.case_id}": c for c in _corpus()}
    return _CASES


def params():
    return [list(cases()), list(METHODS), list(CONTEXTS)]


PARAM_NAMES = ["case", "method", "context"]


# With a sidecar (nox -s matrix), its cells are read when this module is imported. asv imports it
# once in its forkserver and forks a process per benchmark and cell: each finds them in memory. (Through
# asv's setup_cache, each would unpickle them from a file, and asv would start one more process, which
# imports dask and distributed, only to read the sidecar; the benchmarks then have no setup_cache.)
SIDECAR_CELLS = (read_sidecar(os.environ[SIDECAR_VAR], outcomes=OUTCOMES).by_key()
                 if os.environ.get(SIDECAR_VAR) else None)


def load_cells() -> dict:
    """{"family/case|method|context": cell dict} for this environment, with no sidecar: asv on its own.

    asv's ``setup_cache`` calls this (e.g. in asv's built-in environments): the
    corpus is run here, on a LocalCluster of its own.
    """
    from picklematrix.cluster.local import OwnedCluster
    from picklematrix.run.runner import run_corpus

    with OwnedCluster() as cluster:
        run = run_corpus(list(cases().values()), list(METHODS), list(CONTEXTS), cluster=cluster, progress=False)
    return {cell_key(c): c for c in (cell.to_json() for cell in run.cells)}


def cell_for(benchmark: str, *args) -> dict:
    """The cell a benchmark measures; ``NotImplementedError`` (asv's n/a) if it cannot measure it.

    ``args`` are what asv passes the benchmark: ``case, method, context``, after ``setup_cache``'s
    cells when there is no sidecar.
    """
    cells = SIDECAR_CELLS if SIDECAR_CELLS is not None else args[0]
    case, method, context = args[-3:]
    cell = cells.get(f"{case}|{method}|{context}")
    reason = why_not(benchmark, cell)
    if reason is not None:
        raise NotImplementedError(f"{case} [{method} @{context}] {reason}")
    return cell


# This process's own __main__, before any cell replaced it (see _own_cluster).
_MAIN = sys.modules.get("__main__")
_OWN_CLUSTER = None


def _own_cluster():
    """asv on its own: one cluster for this benchmark process, whatever asv's setup/teardown rounds.

    asv re-runs setup and teardown around every timing sample; a cluster per
    sample would time nothing more and cost seconds each. The cluster ends with
    the process (distributed's worker processes exit when their parent does).
    It starts under the process's original ``__main__``: its worker is spawned
    (``fork_workers=False``), and spawning re-runs the parent's ``__main__``
    file, which after ``define_cell`` is the case's.
    """
    global _OWN_CLUSTER
    if _OWN_CLUSTER is None:
        from picklematrix.cluster.local import OwnedCluster

        cell_main = sys.modules.get("__main__")
        sys.modules["__main__"] = _MAIN
        try:
            # Spawned, not forked: this process starts its one worker once; a forkserver first would only add.
            _OWN_CLUSTER = OwnedCluster(n_workers=1, fork_workers=False).start()
        finally:
            sys.modules["__main__"] = cell_main
    return _OWN_CLUSTER


_PREPARED: dict = {}


def prepared_cell(cell: dict, case_key: str, method: str, context: str) -> "PreparedCell":
    """The cell ``Compute`` times, connected and defined once per benchmark process.

    asv re-runs ``setup`` (and ``teardown``) around every timing sample. The samples still share one
    client and one definition of the cell, as the harness's own samples do (in the kernel context
    and in a script cell's process): the first sample is a fresh client's first call, the others
    repeat the call, each once the client has released the last one's result (``cell.settle``). A
    client per sample would time only first calls, so the script context's timings would not compare
    with the kernel's, and each sample would cost a connect and a close more. The client is not
    closed: the benchmark process ends right after its samples (asv ends it with ``os._exit``) and
    the scheduler then drops the client.
    """
    key = (case_key, method, context)
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = PreparedCell(cell, case_key, method, context)
    else:
        settle(prepared.client)  # the last sample's futures released: this one computes again
    return prepared


class PreparedCell:
    """A passing cell defined in this (benchmark) process, ready to time its compute call."""

    def __init__(self, cell: dict, case_key: str, method: str, context: str):
        """``cell``: from ``cell_for(..., COMPUTE, ...)``, a passing script cell."""
        from picklematrix.run.cell import connect_client, define_cell

        # A cluster every benchmark process shares (PICKLEMATRIX_SCHEDULER), else one of
        # this process's own (asv on its own: the cost nox -s matrix avoids).
        address = os.environ.get(SCHEDULER_VAR) or _own_cluster().address
        case = cases()[case_key]
        self.method = METHODS[method]
        self.timeout = case.timeout
        self.client = connect_client(address, default=self.method.default_client, timeout=30)
        self.namespace = define_cell(case.source, case.path, self.client)

    def compute(self):
        return self.method.call(self.namespace["result"], self.client, self.timeout)
