CASE = {
    "family": "classes",
    "summary": "A collections.namedtuple class made in __main__, used by attribute on the worker",
    "tags": ["namedtuple", "by-value"],
    "expect": "pass",
}
from collections import namedtuple

import dask

Pair = namedtuple("Pair", "left right", defaults=[0])


def on_worker(p):
    swapped = p._replace(left=p.right, right=p.left)
    return p.left + p.right, tuple(swapped), p._asdict(), type(p)(5).right


result = dask.delayed(on_worker)(Pair(1, 2))
expected = (3, (2, 1), {"left": 1, "right": 2}, 0)
