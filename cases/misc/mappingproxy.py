CASE = {
    "family": "misc",
    "summary": "A read-only types.MappingProxyType passed to a task that reads (and tries to write) it",
    "tags": ["mappingproxy", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import types

import dask

defaults = types.MappingProxyType({"retries": 3, "timeout": 1.5})


def on_worker(mp):
    try:
        mp["retries"] = 10
        read_only = False
    except TypeError:
        read_only = True
    return type(mp).__name__, dict(mp), read_only


result = dask.delayed(on_worker)(defaults)
expected = ("mappingproxy", {"retries": 3, "timeout": 1.5}, True)
