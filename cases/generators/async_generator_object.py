CASE = {
    "family": "generators",
    "summary": "An async generator object passed to a task that would drain it",
    "tags": ["async-generator", "asyncio", "unpicklable"],
    "expect": "serialize-error",
}
import asyncio

import dask


async def ticks(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def drain(agen):
    async def collect():
        return [i async for i in agen]

    return asyncio.run(collect())


result = dask.delayed(drain)(ticks(3))
expected = [0, 1, 2]
