CASE = {
    "family": "misc",
    "summary": "A module built in the cell with types.ModuleType (not importable anywhere) passed as data",
    "tags": ["module", "dynamic-module", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (TypeError: cannot pickle 'module' object); the worker is lost
    # (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import types

import dask

helpers = types.ModuleType("notebook_helpers")
exec(
    "RATE = 0.2\n"
    "def with_tax(x):\n"
    "    return round(x * (1 + RATE), 2)\n",
    helpers.__dict__,
)


def on_worker(mod, x):
    import sys

    return mod.__name__, mod.with_tax(x), mod.RATE, "notebook_helpers" in sys.modules


result = dask.delayed(on_worker)(helpers, 10.0)
expected = ("notebook_helpers", 12.0, 0.2, False)
