CASE = {
    "family": "pydantic",
    "summary": "A pydantic model defined at the top level of the cell, passed to a delayed function",
    "tags": ["pydantic", "namespace-capture", "dask-11448"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    # In a notebook, pydantic <= 2.8 keeps the defining frame's namespace in
    # Model.__pydantic_parent_namespace__: at the top level of a cell that is the whole notebook
    # namespace (In, Out, get_ipython, client, ...), and the by-value class drags it along; the
    # first unpicklable object is IPython's history sqlite3.Connection (dask/dask#11448). A
    # script's top-level frame has no caller, which pydantic skips. Fixed in 2.9.0 (pydantic#10113).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Point'>: attribute lookup Point on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
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
