CASE = {
    "family": "classes",
    "summary": "An ABC with abstract methods and annotations, and a concrete subclass, both in __main__",
    "tags": ["abc", "annotations", "by-value"],
    "expect": "pass",
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
