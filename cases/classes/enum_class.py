CASE = {
    "family": "classes",
    "summary": "An Enum defined with class syntax in __main__: members travel and come back as the same members",
    "tags": ["enum", "by-value", "identity"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import enum

import dask


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


def next_color(c):
    members = list(type(c))
    return members[(members.index(c) + 1) % len(members)], c.name, type(c)["BLUE"].value


result = dask.delayed(next_color)(Color.RED)


def check(value):
    member, name, blue = value
    # The member computed on the worker must be *this* cell's Color.GREEN again.
    return member is Color.GREEN and name == "RED" and blue == 3
