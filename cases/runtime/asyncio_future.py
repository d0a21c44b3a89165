CASE = {
    "family": "runtime",
    "summary": "A resolved asyncio.Future passed to a task that reads its result",
    "tags": ["asyncio", "future", "unpicklable"],
    "expect": "serialize-error",
}
import asyncio

import dask

loop = asyncio.new_event_loop()
fut = loop.create_future()
fut.set_result("ready")


def future_result(f):
    return f.result()


result = dask.delayed(future_result)(fut)
expected = "ready"
