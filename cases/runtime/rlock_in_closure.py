CASE = {
    "family": "runtime",
    "summary": "A function closing over a threading.RLock",
    "tags": ["lock", "rlock", "closure", "unpicklable"],
    "expect": "serialize-error",
}
import threading

import dask

rlock = threading.RLock()


def guarded_twice(x):
    with rlock:
        with rlock:  # re-entrant
            return x * 10


result = dask.delayed(guarded_twice)(4)
expected = 40
