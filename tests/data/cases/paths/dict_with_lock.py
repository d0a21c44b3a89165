CASE = {"family": "paths", "summary": "A dict with a delayed value and a Lock", "expect": "pass",
        "expect_when": [[{"method": "Client.compute"}, "serialize-error"]]}
import threading

import dask

lock = threading.Lock()
result = {"r": dask.delayed(sum)([1, 2]), "lock": lock}


def check(value):
    return value["r"] == 3 and value["lock"] is lock
