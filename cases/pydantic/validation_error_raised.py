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
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"]],
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
