CASE = {
    "family": "containers",
    "summary": "A dict holding a delayed value and a Lock: dask.compute keeps the Lock local, Client.compute ships it",
    "tags": ["container", "lock", "path-difference"],
    "expect": "pass",
    "expect_when": [[{"method": "Client.compute"}, "serialize-error"]],
}
import threading

import dask

lock = threading.Lock()
result = {"r": dask.delayed(sum)([1, 2, 3]), "lock": lock}


def check(value):
    return value["r"] == 6 and value["lock"] is lock
