CASE = {
    "family": "classes",
    "summary": "An Enum made with the functional API (Enum('Animal', 'CAT DOG')) in __main__",
    "tags": ["enum", "functional-api", "by-value", "identity"],
    "expect": "pass",
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
