CASE = {
    "family": "runtime",
    "summary": "A finished asyncio.Task (the object in dask/dask#11448's error) passed to a task",
    "tags": ["asyncio", "task", "unpicklable", "dask-11448"],
    "expect": "serialize-error",
}
import asyncio

import dask


async def answer():
    return 42


loop = asyncio.new_event_loop()
task = loop.create_task(answer())
loop.run_until_complete(task)  # done: only its result is wanted


def task_result(t):
    return t.result()


result = dask.delayed(task_result)(task)
expected = 42
