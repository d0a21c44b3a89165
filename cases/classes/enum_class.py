CASE = {
    "family": "classes",
    "summary": "An Enum defined with class syntax in __main__: members travel and come back as the same members",
    "tags": ["enum", "by-value", "identity"],
    "expect": "pass",
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
