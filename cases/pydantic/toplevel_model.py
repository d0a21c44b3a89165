CASE = {
    "family": "pydantic",
    "summary": "A pydantic model defined at the top level of the cell, passed to a delayed function",
    "tags": ["pydantic", "namespace-capture", "dask-11448"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"]],
}
import dask
from pydantic import BaseModel


class Point(BaseModel):
    x: int
    y: int


def norm1(p):
    return abs(p.x) + abs(p.y)


result = dask.delayed(norm1)(Point(x=3, y=-4))
expected = 7
