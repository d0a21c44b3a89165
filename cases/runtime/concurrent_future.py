CASE = {
    "family": "runtime",
    "summary": "A resolved concurrent.futures.Future passed to a task that reads its result",
    "tags": ["concurrent-futures", "future", "unpicklable"],
    "expect": "serialize-error",
}
import concurrent.futures

import dask

fut = concurrent.futures.Future()
fut.set_result(99)


def future_result(f):
    return f.result(timeout=1)


result = dask.delayed(future_result)(fut)
expected = 99
