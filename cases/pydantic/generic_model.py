CASE = {
    "family": "pydantic",
    "summary": "A generic pydantic model parametrized at the top level (Box[int]); the worker validates with it",
    "tags": ["pydantic", "generics", "by-value"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    # In a notebook, pydantic <= 2.8: Box, defined at the top level of the cell, captures the
    # notebook namespace (sqlite3.Connection of IPython's history); see toplevel_model.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    # pydantic 2.11.0-2.11.3: a by-value unpickled model class validates to an empty
                    # model (pydantic-core#1616, fixed in 2.11.4): found by the default matrix.
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "task-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Box[int]'>: attribute lookup Box[int] on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
from typing import Generic, TypeVar

import dask
import pydantic
from pydantic import BaseModel

if pydantic.VERSION.startswith("1."):
    from pydantic.generics import GenericModel as GenericBase
else:
    GenericBase = BaseModel

T = TypeVar("T")


class Box(GenericBase, Generic[T]):
    item: T
    label: str = "box"


IntBox = Box[int]


def on_worker(b):
    cls = type(b)
    return cls.__name__, b.item, cls(item="41").item + 1


result = dask.delayed(on_worker)(IntBox(item="3"))
expected = ("Box[int]", 3, 42)
