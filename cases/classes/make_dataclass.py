CASE = {
    "family": "classes",
    "summary": "A class built with dataclasses.make_dataclass (its __module__ is not __main__ on 3.11)",
    "tags": ["dataclass", "dynamic-class", "by-value"],
    "expect": "pass",
    # cloudpickle < 3.0 rebuilt the dataclass field markers by value (fixed by #513 in 3.0.0):
    # on the worker dataclasses.fields() is empty. Seen with cloudpickle 2.2.1 (dask 2024.6.2).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"cloudpickle": "<3"}, "wrong-result"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # cannot rebuild a 3.12 dataclass ('_DataclassParams' object has no attribute 'match_args').
                    [{"python": "3.12", "cluster_python": "3.11"}, "deserialize-error"]],
}
import dataclasses

import dask

Point = dataclasses.make_dataclass(
    "Point",
    [("x", int), ("y", int, dataclasses.field(default=0))],
    namespace={"norm1": lambda self: abs(self.x) + abs(self.y)},
)


def inspect_on_worker(p):
    moved = dataclasses.replace(p, y=10)
    return p.norm1(), moved.norm1(), [f.name for f in dataclasses.fields(p)]


result = dask.delayed(inspect_on_worker)(Point(3, -4))
expected = (7, 13, ["x", "y"])
