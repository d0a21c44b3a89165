CASE = {
    "family": "classes",
    "summary": "A typing.TypeVar defined in __main__ (bound and variance) shipped as data and returned",
    "tags": ["typing", "TypeVar", "by-value", "identity"],
    "expect": "pass",
}
from typing import TypeVar

import dask

Num = TypeVar("Num", bound=float, covariant=True)


def describe(tv):
    return tv, tv.__name__, tv.__bound__, tv.__covariant__


result = dask.delayed(describe)(Num)


def check(value):
    tv, name, bound, covariant = value
    return tv is Num and name == "Num" and bound is float and covariant is True
