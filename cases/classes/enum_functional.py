CASE = {
    "family": "classes",
    "summary": "An Enum made with the functional API (Enum('Animal', 'CAT DOG')) in __main__",
    "tags": ["enum", "functional-api", "by-value", "identity"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <enum 'Animal'>: attribute lookup Animal on
    # __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import enum

import dask

Animal = enum.Enum("Animal", "CAT DOG OWL")
assert Animal.__module__ == "__main__"


def loudest(a):
    cls = type(a)
    return cls(len(cls)), [m.name for m in cls], a.value


result = dask.delayed(loudest)(Animal.DOG)


def check(value):
    member, names, v = value
    return member is Animal.OWL and names == ["CAT", "DOG", "OWL"] and v == 2
