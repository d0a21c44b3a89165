CASE = {
    "family": "classes",
    "summary": "An ABC with abstract methods and annotations, and a concrete subclass, both in __main__",
    "tags": ["abc", "annotations", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <class '__main__.Square'>: attribute lookup
    # Square on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
from abc import ABC, abstractmethod

import dask


class Shape(ABC):
    sides: int

    @abstractmethod
    def area(self) -> float: ...


class Square(Shape):
    sides = 4
    side: float

    def __init__(self, side: float):
        self.side = side

    def area(self) -> float:
        return self.side**2


def on_worker(sq):
    base = type(sq).__mro__[1]
    try:
        base()
        abstract_enforced = False
    except TypeError:
        abstract_enforced = True
    return (
        sq.area(),
        isinstance(sq, base),
        sorted(base.__abstractmethods__),
        abstract_enforced,
        type(sq).__annotations__,
        base.__annotations__,
    )


result = dask.delayed(on_worker)(Square(1.5))
expected = (2.25, True, ["area"], True, {"side": float}, {"sides": int})
