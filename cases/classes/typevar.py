CASE = {
    "family": "classes",
    "summary": "A typing.TypeVar defined in __main__ (bound and variance) shipped as data and returned",
    "tags": ["typing", "TypeVar", "by-value", "identity"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle +Num: attribute lookup Num on
    # cloudpickle.cloudpickle failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
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
