CASE = {
    "family": "generators",
    "summary": "An async def function shipped as data and run with asyncio.run on the worker",
    "tags": ["coroutine", "asyncio", "by-value"],
    "expect": "pass",
}
import asyncio

import dask


async def slow_double(x):
    await asyncio.sleep(0)
    return 2 * x


def run_coroutine_function(fn, x):
    return asyncio.run(fn(x))


result = dask.delayed(run_coroutine_function)(slow_double, 21)
expected = 42
