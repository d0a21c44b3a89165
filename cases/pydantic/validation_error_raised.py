CASE = {
    "family": "pydantic",
    "summary": "A task that raises pydantic's ValidationError: the error must reach the client as a task error",
    "tags": ["pydantic", "ValidationError", "exception"],
    "requires": ["pydantic"],
    "expect": "task-error",
    # Compiled pydantic 1.10 (the usual wheels): the task's by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    # In a notebook, pydantic <= 2.8: `parse` is pickled by value with its global Reading, a
    # top-level model that captured the notebook namespace (sqlite3.Connection of IPython's
    # history): the graph never leaves the client. See toplevel_model.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that
                    # travels by value crashes the 3.11 worker that runs it (SIGSEGV).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask
from pydantic import BaseModel


class Reading(BaseModel):
    sensor: str
    value: float


def parse(raw):
    return Reading(sensor="t1", value=raw).value


result = dask.delayed(parse)("not a number")
expected = None  # never reached: parse raises
