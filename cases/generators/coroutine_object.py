CASE = {
    "family": "generators",
    "summary": "A coroutine object (called, never awaited) passed to a task that would run it",
    "tags": ["coroutine", "asyncio", "unpicklable"],
    "expect": "serialize-error",
}
import asyncio

import dask


async def slow_double(x):
    await asyncio.sleep(0)
    return 2 * x


coro = slow_double(21)
result = dask.delayed(asyncio.run)(coro)
expected = 42
