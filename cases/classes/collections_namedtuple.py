CASE = {
    "family": "classes",
    "summary": "A collections.namedtuple class made in __main__, used by attribute on the worker",
    "tags": ["namedtuple", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): unpickling what travels by value crashes
    # the 3.11 scheduler (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
from collections import namedtuple

import dask

Pair = namedtuple("Pair", "left right", defaults=[0])


def on_worker(p):
    swapped = p._replace(left=p.right, right=p.left)
    return p.left + p.right, tuple(swapped), p._asdict(), type(p)(5).right


result = dask.delayed(on_worker)(Pair(1, 2))
expected = (3, (2, 1), {"left": 1, "right": 2}, 0)
