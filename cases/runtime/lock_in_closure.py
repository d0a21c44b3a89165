CASE = {
    "family": "runtime",
    "summary": "A function closing over a threading.Lock",
    "tags": ["lock", "closure"],
    "expect": "serialize-error",
}
import threading

import dask

lock = threading.Lock()


def guarded(x):
    with lock:
        return x + 1


result = dask.delayed(guarded)(1)
expected = 2
