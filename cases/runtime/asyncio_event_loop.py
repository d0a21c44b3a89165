CASE = {
    "family": "runtime",
    "summary": "An asyncio event loop (new_event_loop) passed to a task that runs a coroutine on it",
    "tags": ["asyncio", "event-loop", "unpicklable"],
    "expect": "serialize-error",
}
import asyncio

import dask

# The cell runs in a non-main thread: asyncio.get_event_loop() may raise there.
loop = asyncio.new_event_loop()


async def add(a, b):
    await asyncio.sleep(0)
    return a + b


def run_on(lp, a, b):
    return lp.run_until_complete(add(a, b))


result = dask.delayed(run_on)(loop, 2, 3)
expected = 5
