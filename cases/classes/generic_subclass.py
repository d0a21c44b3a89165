CASE = {
    "family": "classes",
    "summary": "A typing.Generic class and a subclass of its parametrization, defined in __main__",
    "tags": ["typing", "Generic", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <class '__main__.IntBox'>: attribute lookup
    # IntBox on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
from typing import Generic, TypeVar, get_args

import dask

T = TypeVar("T")


class Box(Generic[T]):
    def __init__(self, item: T):
        self.item = item

    def get(self) -> T:
        return self.item


class IntBox(Box[int]):
    def doubled(self) -> int:
        return 2 * self.item


def on_worker(b):
    cls = type(b)
    base = cls.__orig_bases__[0]
    return b.doubled(), b.get(), get_args(base), base.__origin__.__name__, base.__origin__.__parameters__[0].__name__


result = dask.delayed(on_worker)(IntBox(21))
expected = (42, 21, (int,), "Box", "T")
