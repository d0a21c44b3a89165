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
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"]],
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
