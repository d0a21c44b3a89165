CASE = {
    "family": "misc",
    "summary": "A read-only types.MappingProxyType passed to a task that reads (and tries to write) it",
    "tags": ["mappingproxy", "by-value"],
    "expect": "pass",
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
