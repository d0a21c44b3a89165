CASE = {
    "family": "misc",
    "summary": "The math module passed as data (pickled by reference as an import)",
    "tags": ["module", "by-reference"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (TypeError: cannot pickle 'module' object); the worker is lost
    # (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import math

import dask


def on_worker(mod, x):
    import sys

    return mod.__name__, mod.sqrt(x), mod is sys.modules["math"]


result = dask.delayed(on_worker)(math, 16.0)
expected = ("math", 4.0, True)
