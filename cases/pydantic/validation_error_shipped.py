CASE = {
    "family": "pydantic",
    "summary": "A ValidationError caught in the cell and passed to a task that inspects its errors",
    "tags": ["pydantic", "ValidationError", "exception"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"]],
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
