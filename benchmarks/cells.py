"""Every cell of the corpus: case x compute method x context.

Thin on purpose: the logic lives in picklematrix.run.suite. Outcome codes
(track_outcome) map to names in picklematrix.outcomes.OUTCOME_CODES:
0 pass, 1 wrong-result, 2 serialize-error, 3 deserialize-error, 4 task-error,
5 ran-locally, 6 timeout, 7 worker-died, 8 not-applicable, 9 harness-error.
"""

from picklematrix.outcomes import OUTCOME_CODES
from picklematrix.run import selection, suite


class CellSuite:
    params = suite.params()
    param_names = suite.PARAM_NAMES
    timeout = 120

    if suite.SIDECAR_CELLS is None:
        # asv on its own (no sidecar from nox -s matrix): the corpus runs once, here, and asv
        # passes its cells to every benchmark before the params (hence the *args below).
        def setup_cache(self):
            return suite.load_cells()

        setup_cache.timeout = 3600


class Outcome(CellSuite):
    def setup(self, *args):
        self.cell = suite.cell_for(selection.OUTCOME, *args)

    def track_outcome(self, *args):
        return OUTCOME_CODES[self.cell["outcome"]]

    track_outcome.unit = "outcome code"


class GraphSize(CellSuite):
    def setup(self, *args):
        self.cell = suite.cell_for(selection.GRAPH_SIZE, *args)

    def track_graph_bytes(self, *args):
        return self.cell["graph_bytes"]

    track_graph_bytes.unit = "bytes"


class Compute(CellSuite):
    number = 1
    repeat = selection.REPEAT
    rounds = 1
    warmup_time = 0

    def setup(self, *args):
        # asv re-runs this before every sample: the samples share one client (see prepared_cell)
        cell = suite.cell_for(selection.COMPUTE, *args)
        self.prepared = suite.prepared_cell(cell, *args[-3:])

    def time_compute(self, *args):
        self.prepared.compute()
