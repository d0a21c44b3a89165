CASE = {
    "family": "pydantic",
    "summary": "A ValidationError caught in the cell and passed to a task that inspects its errors",
    "tags": ["pydantic", "ValidationError", "exception"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic_core').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code raises on
                    # the 3.11 worker (AttributeError: 'pydantic_core._pydantic_core.ValidationError' object has no
                    # attribute 'type').
                    [{"python": "3.12", "cluster_python": "3.11"}, "task-error"]],
}
import dask
from pydantic import BaseModel, ValidationError


class Reading(BaseModel):
    sensor: str
    value: float


try:
    Reading(sensor="t1", value="not a number")
except ValidationError as e:
    err = e


def on_worker(e):
    errors = e.errors()
    return type(e).__name__, len(errors), tuple(errors[0]["loc"])


result = dask.delayed(on_worker)(err)
expected = ("ValidationError", 1, ("value",))
