CASE = {
    "family": "generators",
    "summary": "An async def function shipped as data and run with asyncio.run on the worker",
    "tags": ["coroutine", "asyncio", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
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
